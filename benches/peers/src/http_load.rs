//! `strongroom-bench-peers http-load`: the same HTTP client against two or more local
//! servers (`strongroom serve`, `bao proxy`), interleaved so they see the same machine load.
//!
//! ```text
//! strongroom-bench-peers http-load CONNECTIONS SECONDS ROUNDS \
//!     NAME URL HEADER VALUE [NAME URL HEADER VALUE ...]
//! strongroom-bench-peers http-sweep CONNECTIONS URL_PREFIX COUNT HEADER VALUE
//! strongroom-bench-peers http-put CONNECTIONS URL_PREFIX COUNT HEADER VALUE BODY
//! ```
//!
//! `http-load`: for each round, each target in turn gets CONNECTIONS tasks, each on its own
//! kept-alive HTTP/1.1 connection, sending GET URL (with one header, the token) back to back
//! for SECONDS. Every answer must be 200 with a body. Prints one JSON object: per target,
//! requests per second, p50 and p99 latency in microseconds, over all rounds.
//!
//! `http-sweep` GETs `URL_PREFIX{0..COUNT}` once each (to fill a cache); `http-put` PUTs
//! BODY to each of them (to seed a server). Both print the elapsed seconds as JSON.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::{RawClient, raw_client};

/// One server under load.
struct Target {
    name: String,
    url: String,
    header: String,
    value: String,
}

fn parse<T: std::str::FromStr>(arg: Option<&String>, what: &str) -> Result<T, String> {
    arg.ok_or_else(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| format!("{what} is not a number"))
}

/// Sends one request and requires a 2xx with a non-empty body; returns the body length.
async fn exchange(
    client: &RawClient,
    method: http::Method,
    url: &str,
    header: &str,
    value: &str,
    body: Bytes,
) -> Result<usize, String> {
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .header(header, value)
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("{url}: status {status}"));
    }
    if body.is_empty() && status != http::StatusCode::NO_CONTENT {
        return Err(format!("{url}: empty body"));
    }
    Ok(body.len())
}

/// CONNECTIONS clients (one pooled connection each) sending GETs for `seconds`.
async fn load(target: &Target, connections: usize, seconds: f64) -> Result<Vec<Duration>, String> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let client = raw_client();
        let (url, header, value) = (
            target.url.clone(),
            target.header.clone(),
            target.value.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                let start = Instant::now();
                exchange(
                    &client,
                    http::Method::GET,
                    &url,
                    &header,
                    &value,
                    Bytes::new(),
                )
                .await?;
                samples.push(start.elapsed());
            }
            Ok::<_, String>(samples)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    Ok(all)
}

/// `http-load`.
pub(crate) async fn http_load(args: &[String]) -> Result<Value, String> {
    let connections: usize = parse(args.first(), "CONNECTIONS")?;
    let seconds: f64 = parse(args.get(1), "SECONDS")?;
    let rounds: usize = parse(args.get(2), "ROUNDS")?;
    let rest = args.get(3..).unwrap_or_default();
    if rest.is_empty() || rest.len() % 4 != 0 {
        return Err("expected NAME URL HEADER VALUE groups".to_owned());
    }
    let targets: Vec<Target> = rest
        .chunks(4)
        .map(|c| Target {
            name: c[0].clone(),
            url: c[1].clone(),
            header: c[2].clone(),
            value: c[3].clone(),
        })
        .collect();
    // Warm every target (connections, caches) before anything is measured.
    for target in &targets {
        load(target, connections, 1.0)
            .await
            .map_err(|e| format!("{}: {e}", target.name))?;
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); targets.len()];
    for _ in 0..rounds {
        for (i, target) in targets.iter().enumerate() {
            samples[i].extend(
                load(target, connections, seconds)
                    .await
                    .map_err(|e| format!("{}: {e}", target.name))?,
            );
        }
    }
    let mut report = serde_json::Map::new();
    for (target, mut all) in targets.iter().zip(samples) {
        if all.is_empty() {
            return Err(format!("{}: no request completed", target.name));
        }
        all.sort_unstable();
        let total = seconds * rounds as f64;
        report.insert(
            target.name.clone(),
            json!({
                "requests": all.len(),
                "rps": all.len() as f64 / total,
                "p50_us": crate::percentile(&all, 0.50),
                "p99_us": crate::percentile(&all, 0.99),
                "connections": connections,
            }),
        );
    }
    Ok(Value::Object(report))
}

/// `http-sweep` (GET) and `http-put` (PUT BODY): COUNT requests to `URL_PREFIX{i}`,
/// CONNECTIONS at a time.
pub(crate) async fn http_each(method: http::Method, args: &[String]) -> Result<Value, String> {
    let connections: usize = parse(args.first(), "CONNECTIONS")?;
    let prefix = args.get(1).ok_or("missing URL_PREFIX")?.clone();
    let count: usize = parse(args.get(2), "COUNT")?;
    let header = args.get(3).ok_or("missing HEADER")?.clone();
    let value = args.get(4).ok_or("missing VALUE")?.clone();
    let body = Bytes::from(args.get(5).cloned().unwrap_or_default());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let client = raw_client();
        let (prefix, header, value, body, next, method) = (
            prefix.clone(),
            header.clone(),
            value.clone(),
            body.clone(),
            Arc::clone(&next),
            method.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, String>(());
                }
                let url = format!("{prefix}{i}");
                exchange(&client, method.clone(), &url, &header, &value, body.clone()).await?;
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(json!({ "count": count, "seconds": started.elapsed().as_secs_f64() }))
}
