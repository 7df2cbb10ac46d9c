//! Running one criterion bench target of `strongroom-benches` and reading its medians back
//! from `target/criterion/GROUP/ID/new/estimates.json`, for the tables that have a bench
//! target of their own ([`super::hot_key`], [`super::group_commit`]).

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::layout;

/// Whether benches/Cargo.toml declares the `[[bench]]` target `name` (a bench another
/// branch adds is run once it is merged, and skipped before).
pub(super) fn has_bench(name: &str) -> bool {
    let manifest = layout::root().join("benches/Cargo.toml");
    std::fs::read_to_string(manifest).is_ok_and(|text| declares_bench(&text, name))
}

/// Whether the manifest `text` has a `[[bench]]` table whose `name` is `name`.
fn declares_bench(text: &str, name: &str) -> bool {
    let mut in_bench = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bench = line == "[[bench]]";
        } else if in_bench
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "name"
            && value.trim().trim_matches('"') == name
        {
            return true;
        }
    }
    false
}

/// `cargo bench -p strongroom-benches --bench NAME`, with the disk folder the file-store
/// benchmarks write to under the target folder (as the `hot_paths` run has it).
pub(super) fn run_bench(name: &str) -> Result<(), String> {
    let disk = layout::target_dir().join("bench/disk");
    layout::ensure_dir(&disk)?;
    crate::cargo::run(
        crate::cargo::command()
            .args(["bench", "-p", "strongroom-benches", "--bench", name])
            .env("STRONGROOM_BENCH_DISK_DIR", &disk)
            .stdout(Stdio::inherit()),
        &format!("cargo bench -p strongroom-benches --bench {name}"),
    )
}

/// The median (ns) criterion recorded for `id` (`group/function`), `None` when it has no
/// estimates: a benchmark that this tree does not have, or one left out of the run.
pub(super) fn median(id: &str) -> Result<Option<f64>, String> {
    median_in(&layout::target_dir().join("criterion"), id)
}

fn median_in(root: &Path, id: &str) -> Result<Option<f64>, String> {
    let path = root.join(id).join("new/estimates.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let estimates: Value =
        serde_json::from_str(&text).map_err(|e| format!("bad {}: {e}", path.display()))?;
    estimates["median"]["point_estimate"]
        .as_f64()
        .map(Some)
        .ok_or_else(|| format!("no median in {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bench_target_is_found_by_its_name_only_in_a_bench_table() {
        let manifest = "[package]\nname = \"group_commit\"\n\n[[bench]]\nname = \"hot_paths\"\n\
                        harness = false\n\n[[bench]]\nname = \"hot_key\"\nharness = false\n";
        assert!(declares_bench(manifest, "hot_key"));
        assert!(declares_bench(manifest, "hot_paths"));
        // The package's own name is not a bench target.
        assert!(!declares_bench(manifest, "group_commit"));
        assert!(!declares_bench(manifest, "hot"));
    }

    #[test]
    fn a_median_is_read_and_a_missing_benchmark_is_none() {
        let root = std::env::temp_dir().join(format!("xtask-criterion-{}", std::process::id()));
        let dir = root.join("hot_key/facade_1t/new");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("estimates.json"),
            r#"{"mean":{"point_estimate":99.0},"median":{"point_estimate":90.5}}"#,
        )
        .unwrap();
        assert_eq!(median_in(&root, "hot_key/facade_1t").unwrap(), Some(90.5));
        assert_eq!(median_in(&root, "hot_key/facade_2t").unwrap(), None);
        std::fs::write(dir.join("estimates.json"), "{}").unwrap();
        assert!(median_in(&root, "hot_key/facade_1t").is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
