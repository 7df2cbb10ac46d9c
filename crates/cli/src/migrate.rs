//! `strongroom migrate`: copy every secret from one store to another, with a progress bar on
//! a terminal and one line per key otherwise.

use std::io::IsTerminal as _;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use strongroom_core::{Error, SecretStore};
use strongroom_facade::{KeyOutcome, MigrationOptions, MigrationReport, StoreSpec, migrate};

use crate::args::Migrate;
use crate::output::Printer;

pub(crate) async fn run(args: Migrate, out: &Printer) -> Result<(), Error> {
    let from = open(&args.from)?;
    let to = open(&args.to)?;
    let options = MigrationOptions::new()
        .dry_run(args.dry_run)
        .all_versions(args.all_versions)
        .prefix(args.prefix);

    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::no_length();
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let report = migrate(&*from, &*to, &options, |step| match &bar {
        Some(bar) => {
            bar.set_length(step.total as u64);
            bar.set_position(step.done as u64);
            bar.set_message(step.key.to_string());
        }
        None => plain_line(step.done, step.total, step.key.as_str(), step.outcome),
    })
    .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    print_report(&report, &args.from, &args.to, out)?;
    if report.is_success() {
        Ok(())
    } else {
        // The failures are listed above; the exit code says "some keys failed".
        Err(Error::Backend {
            backend: "cli",
            message: format!("{} of the keys could not be copied", report.failed.len()),
            source: None,
        })
    }
}

/// Opens a store spec through the same configuration path as every other command (a
/// local store finds its key with the facade's `resolve_key`, asking for a passphrase on a
/// terminal).
fn open(text: &str) -> Result<Arc<dyn SecretStore>, Error> {
    crate::store::open_config(&StoreSpec::parse(text)?.to_backend_config())
}

#[allow(
    clippy::print_stderr,
    reason = "progress lines go to stderr, results to stdout"
)]
fn plain_line(done: usize, total: usize, key: &str, outcome: KeyOutcome) {
    let what = match outcome {
        KeyOutcome::Copied => "copied",
        KeyOutcome::Skipped => "unchanged",
        _ => "FAILED",
    };
    eprintln!("[{done}/{total}] {what} {key}");
}

fn print_report(
    report: &MigrationReport,
    from: &str,
    to: &str,
    out: &Printer,
) -> Result<(), Error> {
    let verb = if report.dry_run {
        "would copy"
    } else {
        "copied"
    };
    let mut text = format!(
        "{verb} {} secret(s) ({} version(s) written) from {from} to {to}; {} unchanged, {} failed",
        report.copied.len(),
        report.versions_written,
        report.skipped.len(),
        report.failed.len()
    );
    for failure in &report.failed {
        text.push_str(&format!("\n  {}: {}", failure.key, failure.message));
    }
    let names = |keys: &[strongroom_core::SecretName]| {
        keys.iter()
            .map(|k| k.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    out.done(
        &text,
        json!({
            "ok": report.is_success(),
            "dry_run": report.dry_run,
            "copied": names(&report.copied),
            "skipped": names(&report.skipped),
            "versions_written": report.versions_written,
            "failed": report.failed.iter().map(|f| json!({
                "key": f.key.as_str(),
                "kind": f.kind.as_str(),
                "message": f.message,
            })).collect::<Vec<_>>(),
        }),
    )
}
