//! The hot-key table of `cargo xtask bench` (issue 20, item 1): cached reads of one hot key
//! and of 64 keys read uniformly, on 1 and 2 threads, through each of strongroom's paths
//! (criterion bench `hot_key` of `strongroom-benches`) beside bare quick_cache and beside
//! AWS's in-process cache for Secrets Manager, `aws_secretsmanager_caching`
//! (`strongroom-bench-peers aws-caching`, cache hits after one fetch from LocalStack).
//!
//! The figures go to results.json under `hot_key`, one shape for every path:
//! `hot_key.PATH.KEYS.THREADS = {"ns_per_read": f64, "reads_per_s": f64}` or `null` when
//! not measured, with PATH one of [`PATHS`] or [`AWS_CACHING`], KEYS `1key` or `64keys`,
//! THREADS `1t` or `2t`. `ns_per_read` is the time per read per thread (the slowest
//! thread's wall time over its reads); `reads_per_s` the aggregate of all threads,
//! `threads * 1e9 / ns_per_read`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::{criterion, fmt_ns, fmt_ratio, json_line, ratio, run_ok, verdict};

/// strongroom's paths and bare quick_cache: the name in results.json and in the criterion
/// ids (`hot_key/{name}_{threads}t`, `hot_key/{name}_64keys_{threads}t`), and a label.
pub(super) const PATHS: &[(&str, &str)] = &[
    ("facade", "`Secrets::get` (facade)"),
    ("cache", "`CachedStore::cached`, per-thread copies"),
    (
        "cache_no_copies",
        "`CachedStore::cached`, `thread_copies(0)` (no copies)",
    ),
    ("quick_cache", "bare quick_cache get + clone + drop"),
];

/// The AWS caching client's name in results.json.
pub(super) const AWS_CACHING: &str = "aws_caching";

/// The key sets: the name in results.json, the suffix of the criterion id, a label.
const KEYS: [(&str, &str, &str); 2] = [
    ("1key", "", "1 hot key"),
    ("64keys", "_64keys", "64, uniform"),
];

/// Two threads must do at least this many times the reads of one, on one hot key.
const TARGET: f64 = 1.8;

/// Runs the criterion bench `hot_key` and reads its medians into the `hot_key` shape (the
/// AWS caching client is added by [`with_aws_caching`]).
pub(super) fn run_criterion() -> Result<Value, String> {
    criterion::run_bench("hot_key")?;
    let mut out = serde_json::Map::new();
    for &(path, _) in PATHS {
        let mut by_keys = serde_json::Map::new();
        for (keys, suffix, _) in KEYS {
            let mut by_threads = serde_json::Map::new();
            for threads in [1_u32, 2] {
                let ns = criterion::median(&format!("hot_key/{path}{suffix}_{threads}t"))?;
                by_threads.insert(format!("{threads}t"), figure(threads, ns));
            }
            by_keys.insert(keys.to_owned(), Value::Object(by_threads));
        }
        out.insert(path.to_owned(), Value::Object(by_keys));
    }
    Ok(Value::Object(out))
}

/// One figure in the results' shape; `null` when not measured.
fn figure(threads: u32, ns: Option<f64>) -> Value {
    match ns {
        Some(ns) if ns > 0.0 => json!({
            "ns_per_read": ns,
            "reads_per_s": f64::from(threads) * 1e9 / ns,
        }),
        _ => Value::Null,
    }
}

/// Runs `strongroom-bench-peers aws-caching` against the LocalStack of `env`. A failure
/// leaves the row "not measured" (with the reason on stderr) rather than ending the run.
pub(super) fn run_aws_caching(peers: &Path, env: &BTreeMap<String, String>) -> Value {
    eprintln!("bench: hot key, aws_secretsmanager_caching (LocalStack): Rust peers");
    let outcome = run_ok(
        Command::new(peers).arg("aws-caching").envs(env),
        "peers aws-caching",
    )
    .and_then(|out| json_line(&out, "peers aws-caching"));
    match outcome {
        Ok(value) => value,
        Err(message) => {
            eprintln!("bench: the AWS caching client is not measured: {message}");
            Value::Null
        }
    }
}

/// `criterion` (from [`run_criterion`]) with the peer's figures added as [`AWS_CACHING`],
/// in the same shape (the peer's bookkeeping, samples and iterations, is dropped).
pub(super) fn with_aws_caching(criterion: Value, peer: &Value) -> Value {
    let mut out = match criterion {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    let mut by_keys = serde_json::Map::new();
    for (keys, _, _) in KEYS {
        let mut by_threads = serde_json::Map::new();
        for threads in [1_u32, 2] {
            let ns = peer[keys][format!("{threads}t")]["ns_per_read"].as_f64();
            by_threads.insert(format!("{threads}t"), figure(threads, ns));
        }
        by_keys.insert(keys.to_owned(), Value::Object(by_threads));
    }
    out.insert(AWS_CACHING.to_owned(), Value::Object(by_keys));
    Value::Object(out)
}

/// The table; `hot_key` is the results' `hot_key`, `aws_version` the crate's version.
pub(super) fn render(hot_key: &Value, aws_version: &str) -> String {
    let mut doc = String::from(
        "\n### Hot keys across threads: cached reads of one hot key and of 64 keys on 1 and 2 threads\n\n",
    );
    let _ = writeln!(
        doc,
        "Time per read per thread (the slowest thread's wall time over its reads) and aggregate \
         reads per second of all threads. strongroom's paths and bare quick_cache: criterion \
         medians of `benches/benches/hot_key.rs`; the AWS caching client \
         (aws_secretsmanager_caching {aws_version}, `get_secret_value` hits after one fetch of \
         each secret from LocalStack): `strongroom-bench-peers aws-caching`, medians of 30 \
         samples, in the same run.\n"
    );
    doc.push_str(
        "| path | keys | 1 thread, ns/read | 2 threads, ns/read per thread | aggregate reads/s, 1 thread | aggregate reads/s, 2 threads | 2 threads / 1 thread | target | verdict |\n",
    );
    doc.push_str("|---|---|---|---|---|---|---|---|---|\n");
    let aws_label = format!("aws_secretsmanager_caching {aws_version} `get_secret_value` hit");
    let rows = PATHS
        .iter()
        .map(|&(name, label)| (name, label.to_owned()))
        .chain([(AWS_CACHING, aws_label)]);
    for (name, label) in rows {
        for (keys, _, keys_label) in KEYS {
            let at = |threads: &str| &hot_key[name][keys][threads];
            let ns = |threads| at(threads)["ns_per_read"].as_f64();
            let per_s = |threads| at(threads)["reads_per_s"].as_f64();
            let scaling = ratio(per_s("2t"), per_s("1t"));
            let (target, met) = if name == "facade" && keys == "1key" {
                (
                    format!("≥ {TARGET}x"),
                    verdict(scaling, TARGET, false).to_owned(),
                )
            } else {
                (String::new(), String::new())
            };
            let _ = writeln!(
                doc,
                "| {label} | {keys_label} | {} | {} | {} | {} | {} | {target} | {met} |",
                fmt_ns_plain(ns("1t")),
                fmt_ns_plain(ns("2t")),
                fmt_rate(per_s("1t")),
                fmt_rate(per_s("2t")),
                bold(&fmt_ratio(scaling)),
            );
        }
    }
    // The second condition (one thread no worse) and the peer, in words.
    let ns = |name: &str, threads: &str| hot_key[name]["1key"][threads]["ns_per_read"].as_f64();
    let per_s = |name: &str| hot_key[name]["1key"]["2t"]["reads_per_s"].as_f64();
    let _ = writeln!(
        doc,
        "\nOne thread, one hot key: the facade's read takes {} the time of a bare quick_cache \
         get ({} against {}; the cached-read table's target is ≤ 2x). The AWS caching client's \
         hit takes {} the facade's time on one thread, and on two threads does {} the facade's \
         aggregate reads per second.",
        fmt_ratio(ratio(ns("facade", "1t"), ns("quick_cache", "1t"))),
        fmt_ns(ns("facade", "1t")),
        fmt_ns(ns("quick_cache", "1t")),
        fmt_ratio(ratio(ns(AWS_CACHING, "1t"), ns("facade", "1t"))),
        fmt_ratio(ratio(per_s(AWS_CACHING), per_s("facade"))),
    );
    doc
}

fn fmt_ns_plain(ns: Option<f64>) -> String {
    ns.map_or_else(|| "not measured".to_owned(), |ns| format!("{ns:.1}"))
}

fn fmt_rate(per_s: Option<f64>) -> String {
    per_s.map_or_else(
        || "not measured".to_owned(),
        |r| format!("{:.1} M", r / 1e6),
    )
}

fn bold(text: &str) -> String {
    if text == "n/a" {
        text.to_owned()
    } else {
        format!("**{text}**")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(ns: f64, threads: u32) -> Value {
        figure(threads, Some(ns))
    }

    fn path(one_key: (f64, f64), many: (f64, f64)) -> Value {
        json!({
            "1key": {"1t": one(one_key.0, 1), "2t": one(one_key.1, 2)},
            "64keys": {"1t": one(many.0, 1), "2t": one(many.1, 2)},
        })
    }

    fn canned() -> Value {
        json!({
            "facade": path((90.7, 97.5), (90.9, 90.6)),
            "cache": path((70.6, 94.8), (68.5, 71.1)),
            "cache_no_copies": path((83.8, 801.8), (83.3, 258.0)),
            "quick_cache": path((60.3, 776.8), (57.5, 223.4)),
        })
    }

    #[test]
    fn aggregate_throughput_is_threads_over_the_time_per_read() {
        let f = one(100.0, 2);
        assert_eq!(f["reads_per_s"].as_f64(), Some(2e7));
        assert_eq!(figure(1, None), Value::Null);
        assert_eq!(figure(1, Some(0.0)), Value::Null);
    }

    #[test]
    fn the_facade_hot_key_row_has_the_target_and_the_others_do_not() {
        let peer = json!({
            "1key": {"1t": {"ns_per_read": 400.0}, "2t": {"ns_per_read": 1600.0}},
            "64keys": {"1t": {"ns_per_read": 420.0}, "2t": {"ns_per_read": 900.0}},
            "samples": 30,
        });
        let results = with_aws_caching(canned(), &peer);
        let doc = render(&results, "2.1.0");
        let row = |start: &str| {
            doc.lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("no row {start:?} in {doc}"))
                .to_owned()
        };
        // 2 * 90.7 / 97.5 = 1.86x: met.
        let facade = row("| `Secrets::get` (facade) | 1 hot key |");
        assert!(
            facade.contains("| 90.7 | 97.5 | 11.0 M | 20.5 M | **1.86x** | ≥ 1.8x | met |"),
            "{facade}"
        );
        let many = row("| `Secrets::get` (facade) | 64, uniform |");
        assert!(many.ends_with("| **2.01x** |  |  |"), "{many}");
        let bare = row("| bare quick_cache get + clone + drop | 1 hot key |");
        assert!(bare.contains("**0.16x**"), "{bare}");
        // The peer: 2 * 400 / 1600 = 0.50x, and its bookkeeping is not a path.
        let aws = row("| aws_secretsmanager_caching 2.1.0 `get_secret_value` hit | 1 hot key |");
        assert!(
            aws.contains("| 400.0 | 1600.0 | 2.5 M | 1.2 M | **0.50x** |"),
            "{aws}"
        );
        assert_eq!(
            results[AWS_CACHING].as_object().map(serde_json::Map::len),
            Some(2)
        );
        assert!(
            doc.contains("takes 1.50x the time of a bare quick_cache get (90.7 ns against 60.3 ns"),
            "{doc}"
        );
        assert!(doc.contains("hit takes 4.41x the facade's time"), "{doc}");
    }

    #[test]
    fn a_missed_target_and_missing_figures_say_so() {
        let mut results = canned();
        results["facade"]["1key"]["2t"] = one(120.0, 2);
        let results = with_aws_caching(results, &Value::Null);
        assert_eq!(results[AWS_CACHING]["1key"]["1t"], Value::Null);
        let doc = render(&results, "2.1.0");
        assert!(doc.contains("| **1.51x** | ≥ 1.8x | **missed** |"), "{doc}");
        assert!(
            doc.contains(
                "| 1 hot key | not measured | not measured | not measured | not measured | n/a |"
            ),
            "{doc}"
        );
        let empty = render(&Value::Null, "?");
        assert!(empty.contains("| n/a | ≥ 1.8x | not measured |"), "{empty}");
    }
}
