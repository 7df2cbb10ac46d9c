//! The `publish` phase of `cargo xtask ci`: what a registry user gets must build.
//!
//! - `cargo doc --workspace --no-deps` with warnings denied, so a broken intra-doc link or a
//!   missing doc fails CI rather than docs.rs;
//! - `cargo package` for every publishable crate (those without `publish = false`), which
//!   builds each one from its packaged tarball against the newest compatible versions of its
//!   dependencies on crates.io, with the workspace's unpublished crates standing in for the
//!   registry: a file the package forgets, a path dependency without a version, or an API
//!   that a newer dependency release breaks fails here.

use crate::cargo;

pub(crate) fn run() -> Result<(), String> {
    let packages = publishable()?;
    // Libraries only: docs.rs documents those; the CLI's documentation is its --help.
    let mut docs = cargo::command();
    docs.args(["doc", "--no-deps", "--all-features", "--lib"])
        .env("RUSTDOCFLAGS", "-D warnings");
    for package in packages.iter().filter(|p| p.library) {
        docs.args(["-p", &package.name]);
    }
    cargo::run(&mut docs, "cargo doc")?;
    let mut package = cargo::command();
    package.arg("package");
    for name in &packages {
        package.args(["-p", &name.name]);
    }
    cargo::run(&mut package, "cargo package")
}

/// A workspace member that a registry would accept.
struct Publishable {
    name: String,
    /// Whether it has a library target (docs.rs documents only those).
    library: bool,
}

/// The workspace members a registry would accept: every package but those that say
/// `publish = false` (cargo metadata gives `"publish": []` for them).
fn publishable() -> Result<Vec<Publishable>, String> {
    let output = cargo::command()
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo metadata failed ({})", output.status));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed something other than JSON: {e}"))?;
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata has no packages")?;
    let names: Vec<Publishable> = packages
        .iter()
        .filter(|p| p["publish"].as_array().is_none_or(|r| !r.is_empty()))
        .filter_map(|p| {
            let library = p["targets"].as_array().is_some_and(|targets| {
                targets.iter().any(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "lib"))
                })
            });
            Some(Publishable {
                name: p["name"].as_str()?.to_owned(),
                library,
            })
        })
        .collect();
    if names.is_empty() {
        return Err("cargo metadata lists no publishable package".to_owned());
    }
    Ok(names)
}
