//! `cargo xtask demo`: the README's first command. Builds the CLI and runs the local path
//! end to end in a scratch store under `target/demo`, printing each command as a user would
//! type it, so a new reader sees strongroom work before reading any code.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::{cargo, layout};

/// Builds `strongroom` and runs init, put, get, ls, rotate, versions, rm and restore.
pub(crate) fn run() -> Result<(), String> {
    cargo::run(
        cargo::command().args(["build", "--quiet", "-p", "strongroom-cli"]),
        "building strongroom-cli",
    )?;
    let binary = layout::target_dir().join("debug").join("strongroom");
    let dir = layout::target_dir().join("demo");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    layout::ensure_dir(&dir)?;
    let demo = Demo {
        binary,
        store: dir.join("secrets.enc"),
    };

    demo.step(&["init"], None)?;
    demo.step(&["put", "app/db/password"], Some("s3cret-from-stdin\n"))?;
    demo.step(&["get", "app/db/password"], None)?;
    demo.step(
        &["put", "app/db/password", "--value", "rotated-by-hand"],
        None,
    )?;
    demo.step(&["get", "app/db/password", "--version", "1"], None)?;
    demo.step(&["rotate", "app/api-key", "--bytes", "24"], None)?;
    demo.step(&["ls", "app/"], None)?;
    demo.step(&["versions", "app/db/password"], None)?;
    demo.step(&["get", "app/db/password", "--output", "json"], None)?;
    demo.step(&["rm", "app/db/password"], None)?;
    demo.step(&["restore", "app/db/password"], None)?;
    println!(
        "\nThe store is {} and its key {}.key: both are mode 0600, and the store holds nothing in clear.",
        demo.store.display(),
        demo.store.display()
    );
    Ok(())
}

struct Demo {
    binary: PathBuf,
    store: PathBuf,
}

impl Demo {
    fn step(&self, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
        let shown = args.join(" ");
        match stdin {
            Some(input) => println!("\n$ echo '{}' | strongroom {shown}", input.trim_end()),
            None => println!("\n$ strongroom {shown}"),
        }
        let mut child = Command::new(&self.binary)
            .args(args)
            .env("STRONGROOM_STORE", &self.store)
            .env_remove("STRONGROOM_KEY_FILE")
            .env_remove("STRONGROOM_MASTER_KEY")
            .env_remove("STRONGROOM_BACKEND")
            .env_remove("STRONGROOM_OUTPUT")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())
                .map_err(|e| format!("cannot write to strongroom: {e}"))?;
        }
        let output = child
            .wait_with_output()
            .map_err(|e| format!("strongroom {shown}: {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout);
        print!("{text}");
        if !text.ends_with('\n') && !text.is_empty() {
            println!();
        }
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`strongroom {shown}` failed with {}",
                output.status
            ))
        }
    }
}
