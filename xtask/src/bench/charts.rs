//! The charts of `cargo xtask bench`: SVG files under docs/perf/ that docs/performance.md
//! shows next to its tables.
//!
//! - `latency-{openbao,localstack}-{current_thread,multi_thread}.svg`: the distribution of
//!   per-read time of every end-to-end client, as a cumulative distribution on a log time
//!   axis, from the `latency_percentiles_us` each client reports (benches/peers).
//! - `hot-key-threads.svg`: aggregate cached reads per second against reader threads, per
//!   read path, for one hot key and for 64 keys (criterion `hot_key/{path}[_64keys]_{n}t`).
//! - `group-commit-writers.svg`: puts per second to the file store on disk against
//!   concurrent writers (criterion `group_commit/put_disk_{n}w`, one iteration = n puts).
//!
//! Criterion medians are taken from `results.json` when the run put them there (under
//! `criterion` or under the group's own key) and otherwise from
//! `target/criterion/<id>/new/estimates.json`, so a chart follows whichever run last
//! measured that group. A chart without data is skipped with a note, and its old file is
//! left in place. Output is deterministic: the same results give the same bytes.
//!
//! plotters draws text with its built-in size estimate (no font files: the `ttf` feature is
//! off) and the SVG backend writes it as `<text>`, so the viewer's sans-serif font renders it.

use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use serde_json::Value;

use crate::layout;

/// Chart sizes in pixels: wide enough to read on a GitHub page without zooming.
const LATENCY_SIZE: (u32, u32) = (860, 500);
const HOT_KEY_SIZE: (u32, u32) = (960, 460);
const GROUP_COMMIT_SIZE: (u32, u32) = (760, 460);

/// The folder under docs/ the charts go to.
const FOLDER: &str = "perf";

/// Writes every chart it has data for into `docs_dir/perf/`; the files written.
pub(crate) fn write(results: &Value, docs_dir: &Path) -> Result<Vec<PathBuf>, String> {
    let criterion = layout::target_dir().join("criterion");
    write_from(results, &criterion, &docs_dir.join(FOLDER))
}

/// [`write`] with the criterion folder given (tests point it at a temporary one).
fn write_from(results: &Value, criterion: &Path, out: &Path) -> Result<Vec<PathBuf>, String> {
    layout::ensure_dir(out)?;
    let medians = Medians { results, criterion };
    let mut charts: Vec<(String, Result<String, String>)> = Vec::new();
    for (server, server_title) in [
        ("vault", "OpenBao KV v2 read"),
        ("aws", "LocalStack GetSecretValue"),
    ] {
        for flavor in ["current_thread", "multi_thread"] {
            let file = format!("latency-{}-{flavor}.svg", file_stem(server));
            let title = format!("{server_title}, uncached: per-read time, tokio {flavor}");
            charts.push((file, latency_chart(results, server, flavor, &title)));
        }
    }
    charts.push(("hot-key-threads.svg".to_owned(), hot_key_chart(&medians)));
    charts.push((
        "group-commit-writers.svg".to_owned(),
        group_commit_chart(&medians),
    ));

    let mut written = Vec::new();
    for (file, chart) in charts {
        match chart {
            Ok(svg) => {
                let path = out.join(&file);
                std::fs::write(&path, svg)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                written.push(path);
            }
            Err(why) => eprintln!("bench: chart {file} not drawn: {why}"),
        }
    }
    Ok(written)
}

fn file_stem(server: &str) -> &'static str {
    if server == "vault" {
        "openbao"
    } else {
        "localstack"
    }
}

// ---------------------------------------------------------------------------------------
// Data

/// Criterion medians (nanoseconds) by benchmark id, from the run's results or from disk.
struct Medians<'a> {
    results: &'a Value,
    criterion: &'a Path,
}

impl Medians<'_> {
    /// The median of `id` (`group/name`), if any run measured it.
    fn get(&self, id: &str) -> Option<f64> {
        let (group, name) = id.split_once('/')?;
        let from_results = [
            &self.results["criterion"][id],
            &self.results[group][id],
            &self.results[group][name],
        ]
        .into_iter()
        .find_map(median_of);
        from_results.or_else(|| {
            let path = self.criterion.join(id).join("new/estimates.json");
            let text = std::fs::read_to_string(path).ok()?;
            let estimates: Value = serde_json::from_str(&text).ok()?;
            estimates["median"]["point_estimate"]
                .as_f64()
                .filter(|ns| ns.is_finite() && *ns > 0.0)
        })
    }
}

/// A median in nanoseconds: a bare number, or an object holding one under a usual name.
fn median_of(value: &Value) -> Option<f64> {
    let ns = value.as_f64().or_else(|| {
        ["median_ns", "median", "ns"]
            .into_iter()
            .find_map(|k| value[k].as_f64())
    })?;
    (ns.is_finite() && ns > 0.0).then_some(ns)
}

/// `[[percent, µs], ...]` as points, dropping anything that is not a positive finite time
/// or a percent in 0..=100 (a log axis cannot place zero).
fn percentile_points(value: &Value) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|pair| Some((pair[1].as_f64()?, pair[0].as_f64()?)))
        .filter(|(us, pct)| us.is_finite() && *us > 0.0 && (0.0..=100.0).contains(pct))
        .collect();
    points.sort_by(|a, b| a.1.total_cmp(&b.1));
    points
}

/// One line of a chart: its legend text, colour and points.
struct Series {
    label: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

/// Legend text and colour of each end-to-end client, in legend order: strongroom first,
/// then the raw floor, then the other Rust client, then Python.
const CLIENTS: &[(&str, &str, RGBColor)] = &[
    (
        "strongroom_vaultstore",
        "strongroom VaultStore::get",
        RGBColor(31, 119, 180),
    ),
    (
        "strongroom_kv2",
        "strongroom Kv2::read",
        RGBColor(23, 190, 207),
    ),
    (
        "strongroom_aws",
        "strongroom SecretsManagerStore::get",
        RGBColor(31, 119, 180),
    ),
    ("raw_hyper", "raw hyper (the floor)", RGBColor(44, 160, 44)),
    ("vaultrs", "vaultrs", RGBColor(255, 127, 14)),
    ("aws_sdk", "aws-sdk-secretsmanager", RGBColor(255, 127, 14)),
    ("hvac", "hvac (Python, one thread)", RGBColor(214, 39, 40)),
    ("boto3", "boto3 (Python, one thread)", RGBColor(214, 39, 40)),
];

/// Colours for clients not in [`CLIENTS`].
const OTHER_COLORS: &[RGBColor] = &[
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
];

fn latency_series(results: &Value, server: &str, flavor: &str) -> Vec<Series> {
    let e2e = &results["end_to_end"][server];
    let mut found: Vec<(&str, &Value)> = Vec::new();
    if let Some(rust) = e2e["rust"][flavor].as_object() {
        found.extend(rust.iter().map(|(name, v)| (name.as_str(), v)));
    }
    if let Some(python) = e2e["python"].as_object() {
        found.extend(python.iter().map(|(name, v)| (name.as_str(), v)));
    }
    let rank = |name: &str| {
        CLIENTS
            .iter()
            .position(|(n, _, _)| *n == name)
            .unwrap_or(CLIENTS.len())
    };
    found.sort_by(|a, b| rank(a.0).cmp(&rank(b.0)).then(a.0.cmp(b.0)));
    let mut others = OTHER_COLORS.iter().cycle();
    found
        .into_iter()
        .filter_map(|(name, value)| {
            let points = percentile_points(&value["latency_percentiles_us"]);
            if points.is_empty() {
                return None;
            }
            let (label, color) = match CLIENTS.iter().find(|(n, _, _)| *n == name) {
                Some((_, label, color)) => ((*label).to_owned(), *color),
                None => (name.to_owned(), *others.next().unwrap_or(&BLACK)),
            };
            Some(Series {
                label,
                color,
                points,
            })
        })
        .collect()
}

/// The read paths of the hot_key benchmark (benches/benches/hot_key.rs), legend text, colour.
const HOT_KEY_PATHS: &[(&str, &str, RGBColor)] = &[
    ("facade", "Secrets::get (facade)", RGBColor(31, 119, 180)),
    (
        "cache",
        "CachedStore::cached, per-thread copies",
        RGBColor(23, 190, 207),
    ),
    (
        "cache_no_copies",
        "CachedStore::cached, thread_copies(0)",
        RGBColor(255, 127, 14),
    ),
    (
        "quick_cache",
        "bare quick_cache get + clone",
        RGBColor(127, 127, 127),
    ),
];

/// Thread counts looked for in the hot_key ids.
const THREADS: &[u32] = &[1, 2, 4, 8, 16];

/// Aggregate reads per second (millions) against threads, per path; `keys` is `""` for the
/// one hot key and `"_64keys"` for 64.
fn hot_key_series(medians: &Medians<'_>, keys: &str) -> Vec<Series> {
    HOT_KEY_PATHS
        .iter()
        .filter_map(|(path, label, color)| {
            let points: Vec<(f64, f64)> = THREADS
                .iter()
                .filter_map(|&t| {
                    // The median is the time of one read per thread, all threads reading at once.
                    let ns = medians.get(&format!("hot_key/{path}{keys}_{t}t"))?;
                    Some((f64::from(t), f64::from(t) * 1e3 / ns))
                })
                .collect();
            (!points.is_empty()).then(|| Series {
                label: (*label).to_owned(),
                color: *color,
                points,
            })
        })
        .collect()
}

/// Concurrent writers in the group_commit ids.
const WRITERS: &[u32] = &[1, 4, 16, 64];

// ---------------------------------------------------------------------------------------
// Drawing

/// Renders into an SVG string; `draw` gets the whole drawing area.
fn render(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Result<(), String>,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A time in microseconds as an axis label.
fn time_label(us: f64) -> String {
    if us >= 1000.0 {
        format!("{} ms", trim(us / 1000.0))
    } else {
        format!("{} µs", trim(us))
    }
}

/// A number without a trailing `.0`, with at most one decimal.
fn trim(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// 1-2-5 steps per decade between `lo` and `hi`: the labelled ticks of a log time axis.
fn one_two_five(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if v >= lo && v <= hi {
                ticks.push(v);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// Draws `series` as lines with a dot at each point, and the legend.
fn draw_series<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    series: &[Series],
    legend: SeriesLabelPosition,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    for s in series {
        let color = s.color;
        chart
            .draw_series(
                LineSeries::new(s.points.iter().copied(), color.stroke_width(2)).point_size(3),
            )
            .map_err(|e| e.to_string())?
            .label(s.label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(legend)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(|e| e.to_string())
}

fn latency_chart(
    results: &Value,
    server: &str,
    flavor: &str,
    title: &str,
) -> Result<String, String> {
    let series = latency_series(results, server, flavor);
    if series.is_empty() {
        return Err(format!(
            "no latency_percentiles_us under end_to_end.{server} ({flavor})"
        ));
    }
    let times = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let lo = times.clone().fold(f64::INFINITY, f64::min) * 0.85;
    let hi = times.fold(0.0, f64::max) * 1.15;
    let ticks = one_two_five(lo, hi);
    render(LATENCY_SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d((lo..hi).log_scale().with_key_points(ticks), 0.0..100.0)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("time per read (log scale)")
            .y_desc("reads this fast or faster (%)")
            .y_labels(11)
            .x_label_formatter(&|us| time_label(*us))
            .y_label_formatter(&|p| format!("{p:.0}%"))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(|e| e.to_string())?;
        draw_series(&mut chart, &series, SeriesLabelPosition::LowerRight)
    })
}

fn hot_key_chart(medians: &Medians<'_>) -> Result<String, String> {
    let panels = [
        ("one hot key", hot_key_series(medians, "")),
        (
            "64 keys, read uniformly",
            hot_key_series(medians, "_64keys"),
        ),
    ];
    if panels.iter().all(|(_, s)| s.is_empty()) {
        return Err("no hot_key/* criterion estimates (cargo bench --bench hot_key)".to_owned());
    }
    let all = panels
        .iter()
        .flat_map(|(_, s)| s.iter().flat_map(|s| &s.points));
    let max_threads = all.clone().fold(1.0, |m: f64, p| m.max(p.0));
    // Headroom for the legend, which sits above the one-thread points.
    let top = all.fold(0.0, |m: f64, p| m.max(p.1)) * 1.5;
    let thread_ticks: Vec<f64> = THREADS
        .iter()
        .map(|&t| f64::from(t))
        .filter(|t| *t <= max_threads)
        .collect();
    render(HOT_KEY_SIZE, |root| {
        let root = root
            .titled(
                "Cached reads: aggregate reads per second against reader threads",
                ("sans-serif", 22),
            )
            .map_err(|e| e.to_string())?;
        for (area, (name, series)) in root.split_evenly((1, 2)).iter().zip(&panels) {
            let mut chart = ChartBuilder::on(area)
                .caption(*name, ("sans-serif", 18))
                .margin(14)
                .x_label_area_size(44)
                .y_label_area_size(60)
                .build_cartesian_2d(
                    // Log scale: each doubling of threads is one step.
                    (0.8..max_threads * 1.25)
                        .log_scale()
                        .with_key_points(thread_ticks.clone()),
                    0.0..top,
                )
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .x_desc("reader threads")
                .y_desc("reads per second, all threads (millions)")
                .x_label_formatter(&|t| format!("{t:.0}"))
                .y_label_formatter(&|m| format!("{m:.0} M"))
                .label_style(("sans-serif", 14))
                .axis_desc_style(("sans-serif", 15))
                .draw()
                .map_err(|e| e.to_string())?;
            draw_series(&mut chart, series, SeriesLabelPosition::UpperLeft)?;
        }
        Ok(())
    })
}

fn group_commit_chart(medians: &Medians<'_>) -> Result<String, String> {
    let points: Vec<(f64, f64)> = WRITERS
        .iter()
        .filter_map(|&n| {
            // One iteration is n puts made at once: puts per second = n / its median time.
            let ns = medians.get(&format!("group_commit/put_disk_{n}w"))?;
            Some((f64::from(n), f64::from(n) * 1e9 / ns))
        })
        .collect();
    if points.is_empty() {
        return Err(
            "no group_commit/put_disk_*w criterion estimates (the group commit bench)".to_owned(),
        );
    }
    let mut series = vec![Series {
        label: "file store on disk: puts/s with N concurrent writers".to_owned(),
        color: RGBColor(31, 119, 180),
        points: points.clone(),
    }];
    // What N writers would get if every put waited for its own fsync: one writer's rate.
    if let Some(&(1.0, one)) = points.first() {
        series.push(Series {
            label: "one writer's rate (each put its own fsync)".to_owned(),
            color: RGBColor(127, 127, 127),
            points: WRITERS.iter().map(|&n| (f64::from(n), one)).collect(),
        });
    }
    let top = points.iter().fold(0.0, |m: f64, p| m.max(p.1)) * 1.2;
    let ticks: Vec<f64> = WRITERS.iter().map(|&n| f64::from(n)).collect();
    render(GROUP_COMMIT_SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Local file store: puts per second against concurrent writers",
                ("sans-serif", 20),
            )
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d((0.8..80.0).log_scale().with_key_points(ticks), 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("concurrent writers (log scale)")
            .y_desc("puts per second")
            .x_label_formatter(&|n| format!("{n:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(|e| e.to_string())?;
        draw_series(&mut chart, &series, SeriesLabelPosition::UpperLeft)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A client's report as benches/peers prints it, its times scaled by `scale`.
    fn client(scale: f64) -> Value {
        let percentiles: Vec<Value> = [0.0, 1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 100.0]
            .iter()
            .map(|&p| json!([p, scale * (200.0 + 10.0 * p)]))
            .collect();
        json!({"p50_us": scale * 700.0, "latency_percentiles_us": percentiles})
    }

    /// Results shaped like target/bench/results.json: end-to-end reports for both servers,
    /// hot_key medians under `criterion`, and only some group_commit medians.
    fn canned() -> Value {
        let vault = json!({
            "strongroom_vaultstore": client(1.0),
            "strongroom_kv2": client(1.02),
            "raw_hyper": client(0.95),
            "vaultrs": client(1.1),
        });
        let aws = json!({
            "strongroom_aws": client(2.0),
            "raw_hyper": client(1.9),
            "aws_sdk": client(2.3),
        });
        let mut criterion = serde_json::Map::new();
        for (path, _, _) in HOT_KEY_PATHS {
            for keys in ["", "_64keys"] {
                criterion.insert(format!("hot_key/{path}{keys}_1t"), json!(80.0));
                criterion.insert(format!("hot_key/{path}{keys}_2t"), json!(95.0));
            }
        }
        json!({
            "criterion": criterion,
            "group_commit": {"put_disk_1w": 2.0e6, "put_disk_4w": {"median_ns": 2.5e6}},
            "end_to_end": {
                "vault": {"rust": {"current_thread": vault, "multi_thread": vault},
                          "python": {"hvac": client(3.0)}},
                "aws": {"rust": {"current_thread": aws, "multi_thread": aws},
                        "python": {"boto3": client(6.0)}},
            },
        })
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-charts-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Whether `svg` is well-formed enough to be XML: one `<svg>` root, every element closed
    /// in order, nothing after the root.
    fn well_formed(svg: &str) -> Result<(), String> {
        let mut open: Vec<&str> = Vec::new();
        let mut rest = svg.trim();
        let mut closed_root = false;
        while let Some(start) = rest.find('<') {
            if closed_root {
                return Err(format!("content after the root: {rest:.40}"));
            }
            let end = rest[start..].find('>').ok_or("unclosed tag")? + start;
            let tag = &rest[start + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('?') || tag.starts_with('!') {
                continue;
            }
            if let Some(closing) = tag.strip_prefix('/') {
                let top = open.pop().ok_or("closing tag without an opening one")?;
                if top != closing.trim() {
                    return Err(format!("<{top}> closed by </{closing}>"));
                }
                closed_root = open.is_empty();
            } else if !tag.ends_with('/') {
                let element = tag.split_whitespace().next().ok_or("empty tag")?;
                if open.is_empty() && element != "svg" {
                    return Err(format!("root is <{element}>"));
                }
                open.push(element);
            }
        }
        if open.is_empty() && closed_root {
            Ok(())
        } else {
            Err(format!("unclosed: {open:?}"))
        }
    }

    #[test]
    fn every_chart_is_drawn_from_canned_results_with_its_series_named() {
        let out = temp_dir("all");
        let criterion = out.join("no-criterion-here");
        let written = write_from(&canned(), &criterion, &out).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "latency-openbao-current_thread.svg",
                "latency-openbao-multi_thread.svg",
                "latency-localstack-current_thread.svg",
                "latency-localstack-multi_thread.svg",
                "hot-key-threads.svg",
                "group-commit-writers.svg",
            ]
        );
        let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
        for name in &names {
            let svg = read(name);
            well_formed(&svg)
                .map_err(|e| format!("{name}: {e}"))
                .unwrap();
            assert!(svg.contains("<text"), "{name} has no text");
        }
        let vault = read("latency-openbao-multi_thread.svg");
        for label in [
            "strongroom VaultStore::get",
            "strongroom Kv2::read",
            "raw hyper (the floor)",
            "vaultrs",
            "hvac (Python, one thread)",
            "time per read (log scale)",
        ] {
            assert!(vault.contains(label), "no {label:?} in the OpenBao chart");
        }
        let aws = read("latency-localstack-current_thread.svg");
        for label in [
            "strongroom SecretsManagerStore::get",
            "aws-sdk-secretsmanager",
            "boto3 (Python, one thread)",
        ] {
            assert!(aws.contains(label), "no {label:?} in the LocalStack chart");
        }
        assert!(!aws.contains("vaultrs") && !aws.contains("hvac"));
        let hot = read("hot-key-threads.svg");
        for (_, label, _) in HOT_KEY_PATHS {
            assert!(hot.contains(label), "no {label:?} in the hot key chart");
        }
        assert!(hot.contains("one hot key") && hot.contains("64 keys"));
        let group = read("group-commit-writers.svg");
        assert!(group.contains("concurrent writers"));
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn the_same_results_give_the_same_bytes() {
        let (a, b) = (temp_dir("same-a"), temp_dir("same-b"));
        let none = a.join("none");
        write_from(&canned(), &none, &a).unwrap();
        write_from(&canned(), &none, &b).unwrap();
        for entry in std::fs::read_dir(&a).unwrap() {
            let name = entry.unwrap().file_name();
            assert_eq!(
                std::fs::read(a.join(&name)).unwrap(),
                std::fs::read(b.join(&name)).unwrap(),
                "{name:?} differs"
            );
        }
        std::fs::remove_dir_all(&a).unwrap();
        std::fs::remove_dir_all(&b).unwrap();
    }

    #[test]
    fn charts_without_data_are_skipped_and_their_old_files_kept() {
        let out = temp_dir("skip");
        std::fs::write(out.join("group-commit-writers.svg"), "old").unwrap();
        let mut results = canned();
        results["group_commit"] = Value::Null;
        results["end_to_end"]["aws"] = Value::Null;
        let written = write_from(&results, &out.join("none"), &out).unwrap();
        assert_eq!(written.len(), 3, "{written:?}");
        assert!(!out.join("latency-localstack-current_thread.svg").exists());
        assert_eq!(
            std::fs::read_to_string(out.join("group-commit-writers.svg")).unwrap(),
            "old"
        );
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn medians_missing_from_the_results_are_read_from_criterion_estimates() {
        let dir = temp_dir("criterion");
        let estimates = dir.join("group_commit/put_disk_16w/new");
        std::fs::create_dir_all(&estimates).unwrap();
        std::fs::write(
            estimates.join("estimates.json"),
            r#"{"median": {"point_estimate": 4000000.0}}"#,
        )
        .unwrap();
        let results = canned();
        let medians = Medians {
            results: &results,
            criterion: &dir,
        };
        assert_eq!(medians.get("group_commit/put_disk_16w"), Some(4e6));
        assert_eq!(medians.get("group_commit/put_disk_4w"), Some(2.5e6));
        assert_eq!(medians.get("hot_key/facade_2t"), Some(95.0));
        assert_eq!(medians.get("group_commit/put_disk_64w"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn percentiles_that_cannot_be_placed_are_dropped() {
        let points = percentile_points(&json!([[50, 300.0], [0, 0.0], [101, 5.0], [1, 200.0]]));
        assert_eq!(points, [(200.0, 1.0), (300.0, 50.0)]);
        assert_eq!(one_two_five(150.0, 2500.0), [200.0, 500.0, 1000.0, 2000.0]);
        assert_eq!(time_label(1500.0), "1.5 ms");
        assert_eq!(time_label(200.0), "200 µs");
    }

    #[test]
    fn the_well_formedness_check_catches_broken_svg() {
        assert!(well_formed("<svg><text>a</text><line/></svg>").is_ok());
        assert!(well_formed("<svg><text>a</svg>").is_err());
        assert!(well_formed("<svg></svg><svg></svg>").is_err());
        assert!(well_formed("<g></g>").is_err());
    }
}
