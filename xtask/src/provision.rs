//! Python venvs for the servers, made once and reused.
//!
//! Each venv holds a marker file listing the pins it was made with; a venv whose marker
//! matches [`crate::versions`] is reused as is, so a warm `services up` starts in seconds.
//! A failed install leaves no marker, so the next run tries again.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::layout;
use crate::process::log_tail;
use crate::versions;

/// The marker file inside a venv; its content is [`marker_text`].
const MARKER: &str = ".strongroom-pins";

/// One venv to provision.
pub(crate) struct Venv {
    /// Folder name under target/xtask/venvs, also used in messages.
    pub(crate) name: &'static str,
    /// The pip requirement specifiers.
    pub(crate) pins: &'static [&'static str],
    /// The Python minor version the pins need, when they need one.
    pub(crate) needs_python: Option<&'static str>,
}

/// What the marker of a venv made from `venv` must say.
fn marker_text(venv: &Venv) -> String {
    let mut text = format!("python {}\n", versions::PYTHON);
    for pin in venv.pins {
        text.push_str(pin);
        text.push('\n');
    }
    text
}

/// Makes the venv unless an identical one exists; returns its folder. `Ok((dir, reused))`.
pub(crate) fn ensure(venv: &Venv) -> Result<(PathBuf, bool), String> {
    let dir = layout::venv_dir(venv.name);
    let marker = dir.join(MARKER);
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(marker_text(venv).as_str())
        && dir.join("bin/python").exists()
    {
        return Ok((dir, true));
    }
    if let Some(wanted) = venv.needs_python {
        let found = python_version()?;
        if found != wanted {
            return Err(format!(
                "{} needs Python {wanted}, but `{}` is Python {found}",
                venv.name,
                versions::PYTHON
            ));
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot remove stale venv {}: {e}", dir.display()))?;
    }
    layout::ensure_dir(dir.parent().expect("venv has a parent"))?;
    let log = layout::log_file(&format!("pip-{}", venv.name));
    layout::ensure_dir(log.parent().expect("log has a parent"))?;
    run_logged(
        Command::new(versions::PYTHON)
            .args(["-m", "venv"])
            .arg(&dir),
        &log,
    )
    .map_err(|e| {
        format!(
            "cannot create the {} venv at {}: {e}",
            venv.name,
            dir.display()
        )
    })?;
    let pip = run_logged(
        Command::new(dir.join("bin/pip"))
            .args(["install", "--disable-pip-version-check", "--no-input"])
            .args(venv.pins),
        &log,
    );
    if let Err(e) = pip {
        return Err(format!(
            "could not install {} into {} ({e}; is PyPI reachable?)\n{}",
            venv.pins.join(" "),
            dir.display(),
            log_tail(&log, 15)
        ));
    }
    std::fs::write(&marker, marker_text(venv))
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    Ok((dir, false))
}

/// Runs `command` with its output appended to `log`; an error says how it ended.
fn run_logged(command: &mut Command, log: &Path) -> Result<(), String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let file2 = file.try_clone().map_err(|e| e.to_string())?;
    let status = command
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(file2)
        .status()
        .map_err(|e| format!("cannot run {:?}: {e}", command.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed with {status}", command.get_program()))
    }
}

/// The `major.minor` of the interpreter venvs are made with.
fn python_version() -> Result<String, String> {
    let output = Command::new(versions::PYTHON)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", versions::PYTHON))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The `site-packages` folder of a venv (its `lib/pythonX.Y/` name depends on the interpreter).
pub(crate) fn site_packages(venv: &Path) -> Result<PathBuf, String> {
    let lib = venv.join("lib");
    let entries =
        std::fs::read_dir(&lib).map_err(|e| format!("cannot read {}: {e}", lib.display()))?;
    for entry in entries.flatten() {
        let path = entry.path().join("site-packages");
        if path.is_dir() {
            return Ok(path);
        }
    }
    Err(format!("no site-packages under {}", lib.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_changes_with_the_pins() {
        let a = Venv {
            name: "a",
            pins: &["x==1"],
            needs_python: None,
        };
        let b = Venv {
            name: "a",
            pins: &["x==2"],
            needs_python: None,
        };
        assert_ne!(marker_text(&a), marker_text(&b));
        assert!(marker_text(&a).contains("x==1"));
    }

    #[test]
    fn failed_command_is_reported_with_its_status() {
        let log = std::env::temp_dir().join(format!("xtask-run-{}.log", std::process::id()));
        let err = run_logged(Command::new("false").arg("x"), &log).unwrap_err();
        assert!(err.contains("failed"), "{err}");
        std::fs::remove_file(log).unwrap();
    }
}
