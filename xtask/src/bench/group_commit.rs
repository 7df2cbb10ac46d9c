//! The group-commit table of `cargo xtask bench`: puts to the local file store on disk by
//! 1, 4, 16 and 64 concurrent writers (criterion bench `group_commit` of
//! `strongroom-benches`, ids `group_commit/put_disk_{N}w`; one iteration is N concurrent
//! puts, so puts per second = N / median), against one writer, and one writer against
//! `file_store/put_disk` of `hot_paths` (one put, the path before group commit).
//!
//! The figures go to results.json under `group_commit`, `null` when the bench target is not
//! in this tree:
//! `{"writers": {"1": W, "4": W, "16": W, "64": W}, "file_store_put_disk_ns": f64 | null}`
//! with `W = {"ns_per_iteration": f64, "puts_per_s": f64}` or `null` when not measured.

use serde_json::{Value, json};

use super::{Table, criterion, fmt_ns, fmt_ratio, ratio, verdict};

/// Concurrent writers per iteration, as the bench names them (`put_disk_{N}w`).
pub(super) const WRITERS: [u32; 4] = [1, 4, 16, 64];

/// 64 writers must do at least this many times the puts per second of one.
const TARGET: f64 = 10.0;

/// Runs the criterion bench `group_commit` when benches/Cargo.toml has it and reads its
/// medians; `put_disk` is `file_store/put_disk` of the same run. `Null` when the bench
/// target does not exist.
pub(super) fn run(put_disk: Option<f64>) -> Result<Value, String> {
    if !criterion::has_bench("group_commit") {
        eprintln!("bench: no group_commit bench target in benches/Cargo.toml; not run");
        return Ok(Value::Null);
    }
    eprintln!("bench: criterion group_commit (concurrent puts on disk)");
    criterion::run_bench("group_commit")?;
    let mut medians = Vec::new();
    for n in WRITERS {
        medians.push((
            n,
            criterion::median(&format!("group_commit/put_disk_{n}w"))?,
        ));
    }
    Ok(figures(&medians, put_disk))
}

/// The results' shape from `(writers, median ns per iteration)` pairs.
fn figures(medians: &[(u32, Option<f64>)], put_disk: Option<f64>) -> Value {
    let mut writers = serde_json::Map::new();
    for &(n, median) in medians {
        let figure = match median {
            Some(ns) if ns > 0.0 => json!({
                "ns_per_iteration": ns,
                "puts_per_s": f64::from(n) * 1e9 / ns,
            }),
            _ => Value::Null,
        };
        writers.insert(n.to_string(), figure);
    }
    json!({"writers": writers, "file_store_put_disk_ns": put_disk})
}

/// The table; `group_commit` is the results' `group_commit`.
pub(super) fn render(group_commit: &Value) -> String {
    let title =
        "Group commit: puts to the file store on disk by concurrent writers (criterion medians)";
    if group_commit.is_null() {
        return format!(
            "\n### {title}\n\nNot run: this tree has no `group_commit` bench target \
             (benches/benches/group_commit.rs).\n"
        );
    }
    let mut t = Table::new(title);
    let writers = &group_commit["writers"];
    let puts = |n: u32| writers[n.to_string()]["puts_per_s"].as_f64();
    let one = puts(1);
    for n in WRITERS {
        let r = ratio(puts(n), one);
        let (target, met) = if n == 64 {
            ("≥ 10x 1 writer", verdict(r, TARGET, false))
        } else {
            ("", "")
        };
        t.row([
            &format!(
                "puts per second, {n} concurrent writer{}",
                if n == 1 { "" } else { "s" }
            ),
            &fmt_puts(puts(n)),
            &if n == 1 {
                String::new()
            } else {
                format!("1 writer {}", fmt_puts(one))
            },
            &fmt_ratio(r),
            target,
            met,
        ]);
    }
    // One writer is one put per iteration: its time per put against the put of hot_paths.
    let single = writers["1"]["ns_per_iteration"].as_f64();
    let put_disk = group_commit["file_store_put_disk_ns"].as_f64();
    let r = ratio(single, put_disk);
    t.row([
        "one writer, time per put vs `file_store/put_disk` (hot_paths, same run)",
        &fmt_ns(single),
        &fmt_ns(put_disk),
        &fmt_ratio(r),
        "≤ 1x (no slower)",
        verdict(r, 1.0, true),
    ]);
    t.0
}

fn fmt_puts(per_s: Option<f64>) -> String {
    per_s.map_or_else(|| "not measured".to_owned(), |r| format!("{r:.0} puts/s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(doc: &'a str, start: &str) -> &'a str {
        doc.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no row {start:?} in {doc}"))
    }

    #[test]
    fn puts_per_second_are_writers_over_the_median_and_compared_with_one_writer() {
        // 1 writer: 2.5 ms a put (400/s); 64 writers: 6.4 ms for 64 puts (10,000/s, 25x).
        let medians = [
            (1, Some(2.5e6)),
            (4, Some(4.0e6)),
            (16, Some(4.0e6)),
            (64, Some(6.4e6)),
        ];
        let figures = figures(&medians, Some(2.46e6));
        assert_eq!(
            figures["writers"]["64"]["puts_per_s"].as_f64(),
            Some(10_000.0)
        );
        let doc = render(&figures);
        assert_eq!(
            row(&doc, "| puts per second, 64 concurrent writers |"),
            "| puts per second, 64 concurrent writers | 10000 puts/s | 1 writer 400 puts/s | 25.00x | ≥ 10x 1 writer | met |"
        );
        assert!(row(&doc, "| puts per second, 4 ").ends_with("| 2.50x |  |  |"));
        // 2.5 ms against 2.46 ms: slower, so missed.
        assert!(
            row(&doc, "| one writer")
                .ends_with("| 2.50 ms | 2.46 ms | 1.02x | ≤ 1x (no slower) | **missed** |"),
            "{doc}"
        );
    }

    #[test]
    fn a_bench_that_is_not_there_says_so_and_a_missing_figure_is_not_measured() {
        assert!(render(&Value::Null).contains("Not run: this tree has no `group_commit`"));
        let figures = figures(&[(1, Some(2e6)), (64, None)], None);
        assert_eq!(figures["writers"]["64"], Value::Null);
        let doc = render(&figures);
        assert!(
            row(&doc, "| puts per second, 64").ends_with("| n/a | ≥ 10x 1 writer | not measured |"),
            "{doc}"
        );
        assert!(
            row(&doc, "| one writer").ends_with("| not measured |"),
            "{doc}"
        );
    }
}
