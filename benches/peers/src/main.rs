//! End-to-end reads against the real servers `cargo xtask services up` starts, strongroom
//! next to the clients a user would pick instead, interleaved in one process so they see
//! the same server and the same machine load. Prints one JSON object on stdout.
//!
//! - `strongroom-bench-peers vault`: OpenBao KV v2 read over a reused connection:
//!   strongroom `VaultStore::get` and `Kv2::read`, raw hyper (GET + JSON parse), vaultrs 0.8.
//! - `strongroom-bench-peers aws`: LocalStack GetSecretValue: aws-sdk-secretsmanager, raw
//!   hyper (aws-sigv4 signing + POST + JSON parse) and, built with `--features aws`,
//!   strongroom-aws.
//! - `strongroom-bench-peers ssm` (`--features aws`): moto GetParameter: strongroom-aws's
//!   `SsmStore`, raw hyper, and `SecretsManagerStore` on the same server; see [`ssm`].
//! - `strongroom-bench-peers gcp` (`--features gcp`): drongo's Secret Manager: strongroom-gcp's
//!   `GcpStore` and raw hyper; see `gcp`.
//!
//! - `strongroom-bench-peers aws-caching`: cache hits of AWS's `aws_secretsmanager_caching`
//!   client on 1 and 2 threads, one hot key and 64 keys, after one fetch each from
//!   LocalStack; see [`aws_caching`].
//!
//! - `strongroom-bench-peers http-load|http-sweep|http-put ...`: one HTTP client against
//!   local agents (`strongroom serve`, `bao proxy`); see [`http_load`].
//!
//! Each is run on a current-thread and on a 2-worker multi-thread tokio runtime. For each
//! client: p50/p90 of per-read wall time, its distribution as 16 percentiles
//! (`latency_percentiles_us`, min to max), and client CPU per read (user + system time of
//! this process from getrusage, over all its threads, divided by the reads).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

/// Reads before measuring (connections, token lookups, JIT-free but caches warm).
const WARMUP: usize = 200;
/// Rounds; in each round every client does [`BATCH`] reads in turn.
const ROUNDS: usize = 10;
/// Reads per client per round.
const BATCH: usize = 100;

type BoxFut<'a> = Pin<Box<dyn Future<Output = Result<usize, String>> + 'a>>;

/// One client under test: a name and a read that returns the secret's length.
struct Client<'a> {
    name: &'static str,
    read: Box<dyn FnMut() -> BoxFut<'a> + 'a>,
}

fn cpu_now() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
    };
    tv(usage.user_time()) + tv(usage.system_time())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

/// The percentiles of per-read time each client reports (0 is the fastest read, 100 the
/// slowest): enough to draw its distribution (xtask/src/bench/charts.rs) without keeping
/// every sample in results.json. bench.py reports the same set.
const PERCENTILES: [f64; 16] = [
    0.0, 1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 95.0, 99.0, 99.9, 100.0,
];

/// `[[percent, µs], ...]` for [`PERCENTILES`] of `sorted`, to 0.1 µs (short in results.json).
fn latency_percentiles(sorted: &[Duration]) -> Value {
    PERCENTILES
        .iter()
        .map(|&p| json!([p, (percentile(sorted, p / 100.0) * 10.0).round() / 10.0]))
        .collect()
}

/// Runs every client `WARMUP` times, then `ROUNDS` rounds of `BATCH` reads each, in turn.
async fn measure(clients: &mut [Client<'_>], expect_len: usize) -> Result<Value, String> {
    for client in clients.iter_mut() {
        for _ in 0..WARMUP {
            let len = (client.read)()
                .await
                .map_err(|e| format!("{}: {e}", client.name))?;
            if len != expect_len {
                return Err(format!(
                    "{}: read {len} bytes, expected {expect_len}",
                    client.name
                ));
            }
        }
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); clients.len()];
    let mut cpu = vec![Duration::ZERO; clients.len()];
    for _ in 0..ROUNDS {
        for (i, client) in clients.iter_mut().enumerate() {
            let cpu_start = cpu_now();
            for _ in 0..BATCH {
                let start = Instant::now();
                (client.read)()
                    .await
                    .map_err(|e| format!("{}: {e}", client.name))?;
                samples[i].push(start.elapsed());
            }
            cpu[i] += cpu_now() - cpu_start;
        }
    }
    let mut out = serde_json::Map::new();
    for (i, client) in clients.iter().enumerate() {
        samples[i].sort();
        let reads = samples[i].len() as f64;
        out.insert(
            client.name.to_owned(),
            json!({
                "reads": samples[i].len(),
                "p50_us": percentile(&samples[i], 0.5),
                "p90_us": percentile(&samples[i], 0.9),
                "latency_percentiles_us": latency_percentiles(&samples[i]),
                "cpu_us_per_read": cpu[i].as_secs_f64() * 1e6 / reads,
            }),
        );
    }
    Ok(Value::Object(out))
}

/// A hyper client (hyper-util's pooled client over plain TCP, HTTP/1.1): one connection,
/// kept alive and reused for every request, re-opened only if the server closes it.
type RawClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

fn raw_client() -> RawClient {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector)
}

/// The raw client's exchange, the same for Vault and Secrets Manager: send, require a 2xx,
/// read the whole body, parse it as JSON.
async fn raw_json(
    sender: &RawClient,
    request: http::Request<Full<Bytes>>,
) -> Result<Value, String> {
    let response = sender.request(request).await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// An AWS JSON 1.1 POST (`x-amz-target: TARGET`) of `body` to `endpoint`, SigV4-signed by
/// hand with aws-sigv4 for `service`: the raw floor every AWS comparison measures against.
fn signed_json_post(
    endpoint: &str,
    target: &str,
    service: &str,
    body: &str,
    identity: &aws_smithy_runtime_api::client::identity::Identity,
    region: &str,
) -> Result<http::Request<Full<Bytes>>, String> {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut request = http::Request::post(format!("{endpoint}/"))
        .header("host", host)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", target)
        .body(body.to_owned())
        .map_err(|e| e.to_string())?;
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or_default()))
        .collect();
    let signable = aws_sigv4::http_request::SignableRequest::new(
        "POST",
        request.uri().to_string(),
        headers.into_iter(),
        aws_sigv4::http_request::SignableBody::Bytes(request.body().as_bytes()),
    )
    .map_err(|e| e.to_string())?;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(aws_sigv4::http_request::SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    instructions.apply_to_request_http1x(&mut request);
    Ok(request.map(|b| Full::new(Bytes::from(b))))
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set: run through `cargo xtask bench`"))
}

/// The secret value every client reads: 64 bytes, like the in-process benchmarks.
const VALUE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

async fn vault() -> Result<Value, String> {
    let addr = env("VAULT_ADDR")?;
    let token = env("VAULT_TOKEN")?;
    let mount = "secret";
    let path = "bench/peer";

    let client = strongroom_vault::VaultClient::builder()
        .address(addr.clone())
        .token(token.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let store = strongroom_vault::VaultStore::new(&client, mount).map_err(|e| e.to_string())?;
    let kv = client.kv2(mount).map_err(|e| e.to_string())?;
    let key = strongroom_core::SecretName::new(path).map_err(|e| e.to_string())?;
    {
        use strongroom_core::SecretStore;
        store
            .put(&key, strongroom_core::SecretValue::from(VALUE))
            .await
            .map_err(|e| e.to_string())?;
    }

    let uri = format!("{}/v1/{mount}/data/{path}", addr.trim_end_matches('/'));
    let vaultrs_client = vaultrs::client::VaultClient::new(
        vaultrs::client::VaultClientSettingsBuilder::default()
            .address(addr.clone())
            .token(token.clone())
            .build()
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;

    let (store, kv, key, uri, token, vaultrs_client) =
        (&store, &kv, &key, &uri, &token, &vaultrs_client);
    let raw_sender = &raw_client();
    let mut clients = vec![
        Client {
            name: "strongroom_vaultstore",
            read: Box::new(move || {
                Box::pin(async move {
                    use strongroom_core::SecretStore;
                    let secret = store.get(key).await.map_err(|e| e.to_string())?;
                    Ok(secret.value.len())
                })
            }),
        },
        Client {
            name: "strongroom_kv2",
            read: Box::new(move || {
                Box::pin(async move {
                    let secret = kv.read(key.as_str()).await.map_err(|e| e.to_string())?;
                    Ok(secret.data.get_str("value").map_or(0, str::len))
                })
            }),
        },
        Client {
            name: "raw_hyper",
            read: Box::new(move || {
                Box::pin(async move {
                    let request = http::Request::get(uri.as_str())
                        .header("x-vault-token", token.as_str())
                        .body(Full::new(Bytes::new()))
                        .map_err(|e| e.to_string())?;
                    let parsed = raw_json(raw_sender, request).await?;
                    Ok(parsed["data"]["data"]["value"].as_str().map_or(0, str::len))
                })
            }),
        },
        Client {
            name: "vaultrs",
            read: Box::new(move || {
                Box::pin(async move {
                    let data: HashMap<String, String> =
                        vaultrs::kv2::read(vaultrs_client, "secret", "bench/peer")
                            .await
                            .map_err(|e| e.to_string())?;
                    Ok(data.get("value").map_or(0, String::len))
                })
            }),
        },
    ];
    measure(&mut clients, VALUE.len()).await
}

async fn aws() -> Result<Value, String> {
    let endpoint = env("STRONGROOM_ITEST_AWS_ENDPOINT")?;
    let access = env("STRONGROOM_ITEST_AWS_ACCESS_KEY_ID")?;
    let secret_key = env("STRONGROOM_ITEST_AWS_SECRET_ACCESS_KEY")?;
    let region = "us-east-1";
    let name = "bench/peer";

    let credentials =
        aws_credential_types::Credentials::new(&access, &secret_key, None, None, "bench");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint.clone())
        .region(aws_config::Region::new(region))
        .credentials_provider(credentials.clone())
        .load()
        .await;
    let sdk = aws_sdk_secretsmanager::Client::new(&config);
    match sdk
        .create_secret()
        .name(name)
        .secret_string(VALUE)
        .send()
        .await
    {
        Ok(_) => {}
        Err(err) => {
            let service = err.into_service_error();
            if !service.is_resource_exists_exception() {
                return Err(format!("create_secret: {service}"));
            }
            sdk.put_secret_value()
                .secret_id(name)
                .secret_string(VALUE)
                .send()
                .await
                .map_err(|e| format!("put_secret_value: {e}"))?;
        }
    }

    let identity: aws_smithy_runtime_api::client::identity::Identity = credentials.into();
    let raw_sender = raw_client();
    let (raw_sender, identity, endpoint, sdk) = (&raw_sender, &identity, &endpoint, &sdk);
    let body = format!(r#"{{"SecretId":"{name}"}}"#);
    let body = &body;

    #[cfg(feature = "aws")]
    let strongroom_store = strongroom_aws_store(endpoint, &access, &secret_key, region)?;
    #[cfg(feature = "aws")]
    let strongroom_store = &strongroom_store;
    #[cfg(feature = "aws")]
    let key = &strongroom_core::SecretName::new(name).map_err(|e| e.to_string())?;

    let mut clients = vec![
        Client {
            name: "aws_sdk",
            read: Box::new(move || {
                Box::pin(async move {
                    let out = sdk
                        .get_secret_value()
                        .secret_id(name)
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(out.secret_string().map_or(0, str::len))
                })
            }),
        },
        Client {
            name: "raw_hyper",
            read: Box::new(move || {
                Box::pin(async move {
                    let request = signed_json_post(
                        endpoint,
                        "secretsmanager.GetSecretValue",
                        "secretsmanager",
                        body,
                        identity,
                        region,
                    )?;
                    let parsed = raw_json(raw_sender, request).await?;
                    Ok(parsed["SecretString"].as_str().map_or(0, str::len))
                })
            }),
        },
        #[cfg(feature = "aws")]
        Client {
            name: "strongroom_aws",
            read: Box::new(move || {
                Box::pin(async move {
                    use strongroom_core::SecretStore;
                    let secret = strongroom_store.get(key).await.map_err(|e| e.to_string())?;
                    Ok(secret.value.len())
                })
            }),
        },
    ];
    measure(&mut clients, VALUE.len()).await
}

#[cfg(feature = "aws")]
include!("strongroom_aws.rs");

mod aws_caching;
#[cfg(feature = "gcp")]
mod gcp;
mod http_load;
#[cfg(feature = "aws")]
mod ssm;

/// The `http-*` modes: one 2-worker runtime, JSON on stdout.
fn http_mode(what: &str, args: &[String]) -> ! {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(async {
        match what {
            "http-load" => http_load::http_load(args).await,
            "http-sweep" => http_load::http_each(http::Method::GET, args).await,
            _ => http_load::http_each(http::Method::PUT, args).await,
        }
    });
    match result {
        Ok(value) => {
            println!("{value}");
            std::process::exit(0)
        }
        Err(message) => {
            eprintln!("strongroom-bench-peers {what}: {message}");
            std::process::exit(1)
        }
    }
}

fn main() {
    let what = std::env::args().nth(1).unwrap_or_default();
    if matches!(what.as_str(), "http-load" | "http-sweep" | "http-put") {
        let args: Vec<String> = std::env::args().skip(2).collect();
        http_mode(&what, &args);
    }
    if what == "aws-caching" {
        aws_caching::run_mode();
    }
    let mut report = BTreeMap::new();
    for flavor in ["current_thread", "multi_thread"] {
        let rt = if flavor == "current_thread" {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
        }
        .expect("tokio runtime");
        let result = match what.as_str() {
            // block_on, as `#[tokio::main]` does: on the multi-thread runtime the reads run on
            // this thread and the I/O driver on the workers.
            "vault" => rt.block_on(vault()),
            "aws" => rt.block_on(aws()),
            #[cfg(feature = "aws")]
            "ssm" => rt.block_on(ssm::ssm()),
            #[cfg(feature = "gcp")]
            "gcp" => rt.block_on(gcp::gcp()),
            other => Err(format!("expected vault, aws, ssm or gcp, got {other:?}")),
        };
        match result {
            Ok(value) => {
                report.insert(flavor, value);
            }
            Err(message) => {
                eprintln!("strongroom-bench-peers {what} ({flavor}): {message}");
                std::process::exit(1);
            }
        }
    }
    println!("{}", serde_json::to_string(&report).expect("json"));
}
