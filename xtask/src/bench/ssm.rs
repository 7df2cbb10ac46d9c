//! The SSM Parameter Store rows of `cargo xtask bench`: an uncached `SsmStore::get` from
//! moto (the only server here that serves SSM), next to the same GetParameter built by hand
//! (raw hyper + aws-sigv4) and to strongroom's Secrets Manager store reading from the same
//! moto, all measured in one process by `strongroom-bench-peers ssm` (benches/peers).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{Table, fmt_ratio, fmt_us, json_line, ratio, run_ok};

/// Runs `strongroom-bench-peers ssm` against the servers of `env`; `None` (and no run) when
/// the peers were built without strongroom-aws.
pub(super) fn run(
    peers: &Path,
    env: &BTreeMap<String, String>,
    aws_note: &Option<String>,
) -> Result<Option<Value>, String> {
    if aws_note.is_some() {
        return Ok(None);
    }
    eprintln!("bench: end to end, ssm (moto): Rust peers");
    let out = run_ok(Command::new(peers).arg("ssm").envs(env), "peers ssm")?;
    json_line(&out, "peers ssm").map(Some)
}

/// The SSM tables, one per tokio runtime flavour; `ssm` is what [`run`] returned.
pub(super) fn render(ssm: &Value, aws_note: &Option<String>) -> String {
    store_read_tables(
        ssm,
        aws_note,
        "moto SSM GetParameter (SecureString, decrypted), uncached, reused connection",
        ("strongroom_ssm", "SsmStore::get"),
        &[
            (
                "raw_hyper",
                "the same GetParameter by hand (raw hyper + aws-sigv4)",
            ),
            (
                "strongroom_aws",
                "strongroom's Secrets Manager GetSecretValue on the same moto",
            ),
        ],
    )
}

/// One store's uncached read against its peers, measured in one process: p50 and client
/// CPU per read, one table per tokio runtime flavour, ratios reported (the server's own time
/// dominates these emulators, so no target is set). `ours` is the result's key and how the
/// rows name it; `peers` the same for each peer.
pub(super) fn store_read_tables(
    figures: &Value,
    note: &Option<String>,
    title: &str,
    ours: (&str, &str),
    peers: &[(&str, &str)],
) -> String {
    let mut doc = String::new();
    for flavor in ["current_thread", "multi_thread"] {
        let mut t = Table::new(&format!("{title}: tokio {flavor} runtime"));
        let rust = &figures[flavor];
        let p50 = |name: &str| rust[name]["p50_us"].as_f64();
        let cpu = |name: &str| rust[name]["cpu_us_per_read"].as_f64();
        let show = |v: Option<f64>| match (note, v) {
            (Some(note), None) => note.clone(),
            _ => fmt_us(v),
        };
        let (key, label) = ours;
        let ours_p50 = p50(key);
        let ours_cpu = cpu(key);
        for &(peer, peer_label) in peers {
            t.row([
                &format!("{label} p50 vs {peer_label}"),
                &show(ours_p50),
                &fmt_us(p50(peer)),
                &fmt_ratio(ratio(ours_p50, p50(peer))),
                "reported",
                "",
            ]);
            t.row([
                &format!("{label} client CPU per read vs {peer_label}"),
                &show(ours_cpu),
                &fmt_us(cpu(peer)),
                &fmt_ratio(ratio(ours_cpu, cpu(peer))),
                "reported",
                "",
            ]);
        }
        doc.push_str(&t.0);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_show_each_figure_and_say_why_one_is_missing() {
        let figures = serde_json::json!({
            "current_thread": {
                "strongroom_ssm": {"p50_us": 2000.0, "cpu_us_per_read": 100.0},
                "raw_hyper": {"p50_us": 1000.0, "cpu_us_per_read": 50.0},
                "strongroom_aws": {"p50_us": 4000.0, "cpu_us_per_read": 100.0},
            }
        });
        let doc = render(&figures, &None);
        assert!(doc.contains("current_thread"), "{doc}");
        assert!(
            doc.contains("| 2.00x |") && doc.contains("| 0.50x |"),
            "ratios: {doc}"
        );
        let note = Some("not measured: no strongroom-aws".to_owned());
        let missing = render(&Value::Null, &note);
        assert!(
            missing.contains("not measured: no strongroom-aws"),
            "{missing}"
        );
    }
}
