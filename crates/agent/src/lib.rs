//! `strongroom serve` as a library: a local HTTP agent that serves a
//! [`Secrets`](strongroom_facade::Secrets) (any store, with its cache, single flight,
//! stale-if-error, mirror, audit and metrics) to programs in any language, through the
//! read API of the AWS Secrets Manager Agent, so callers written for that agent work
//! unchanged whatever the store.
//!
//! # Quickstart
//!
//! ```
//! use strongroom_agent::{Agent, Listen, Token};
//! use strongroom_facade::Secrets;
//! use strongroom_local::EnvStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), strongroom_core::Error> {
//! let secrets = Secrets::builder()
//!     .store(EnvStore::from_vars([("APP_DB_PASSWORD", "hunter2")]))
//!     .build()?;
//! // In production: Token::from_env() reads AWS_TOKEN (the value, or file://PATH).
//! let token = Token::new("a-long-random-token")?;
//! let agent = Agent::builder(secrets, token)
//!     .listen("127.0.0.1:0".parse::<Listen>()?)
//!     .bind()
//!     .await?;
//! println!("listening on {}", agent.local_addr());
//! // Serves until the future completes (a signal, in a program), then drains.
//! agent.serve(async {}).await?;
//! # Ok(()) }
//! ```
//!
//! # The HTTP API
//!
//! | request | answer |
//! |---|---|
//! | `GET /ping` | `healthy` (text; the only request that needs no token) |
//! | `GET /secretsmanager/get?secretId=NAME` | the GetSecretValue JSON document |
//! | `GET /v1/NAME` | the same; `NAME` may hold `/` and is percent-decoded |
//! | `GET /health` | the facade's [`Health`](strongroom_facade::Health) and counters as JSON: 200 when `healthy` or `degraded`, 503 when `unhealthy` |
//! | `GET /metrics` | the `metrics` counters in Prometheus text format (see [`meter`]; 404 unless the agent was given an exporter) |
//!
//! Both read forms take `versionId`, `versionStage` and `refreshNow=true` in the query.
//! The document has the fields of the AWS API: `ARN`, `Name`, `VersionId`, `SecretString`
//! (a UTF-8 value) or `SecretBinary` (any other value, base64), `VersionStages` and
//! `CreatedDate` (seconds since the epoch with their fraction; absent when the store
//! does not record it).
//!
//! # Checks, in order
//!
//! 1. `X-Forwarded-For` present: **400** (the request came through a proxy).
//! 2. A method other than GET: **405**.
//! 3. `/ping`: answered.
//! 4. No `X-Aws-Parameters-Secrets-Token` (or `X-Vault-Token`) header carrying the token:
//!    **403**. The token is compared in constant time ([`Token`]).
//! 5. An unknown route: **404**; an unknown secret: **404**; a store unreachable with
//!    nothing cached: **503**.
//!
//! Over the connection limit a new connection gets **429** and is closed. A request head
//! over [`MAX_REQUEST_HEAD`] bytes gets 431; a head not sent within the header read
//! timeout closes the connection. Errors are JSON, `{"__type": "...", "message": "..."}` as
//! AWS error bodies are, and never hold a value or the token; no value is logged.
//!
//! # Versions and stages on every store
//!
//! - `VersionId` is the store's own version id (Vault's version number, the local store's
//!   version number, Secrets Manager's version id).
//! - No version asked, or `versionStage=AWSCURRENT`: the current version, served from the
//!   cache; `VersionStages` is `["AWSCURRENT"]`.
//! - `versionId=V`: that version (cached per version); `VersionStages` is `["AWSCURRENT"]`
//!   when V is the current version, else `[]` (finding out more would cost a call to the
//!   store on every request).
//! - `versionStage=AWSPREVIOUS`: on a store that labels versions (Secrets Manager), the
//!   version labelled so; on others (Vault, local), the version just before the current one
//!   in the store's history, if it is readable (not deleted or destroyed). Any other stage
//!   is found on a labelling store only, else **404**. A stage other than `AWSCURRENT` asks
//!   the store for the history on every request (it is not cached), so it fails with
//!   **503** while the store is down.
//! - `versionId` and `versionStage` together must name the same version (else 400).
//! - `refreshNow=true` drops the cached copy first, so the answer comes from the store
//!   (one call however many ask together); while the store is down it is **503**, not a
//!   stale copy: the caller asked for a fresh value.
//! - `ARN` is `arn:strongroom:<backend>:::secret:<name>` on every store, Secrets Manager
//!   included: the `strongroom` partition says it is not an AWS ARN (the facade does not
//!   carry the store's ARN). Such an ARN is accepted back as `secretId`.
//!
//! # Cargo features
//!
//! - `prometheus` (default): `install_prometheus` and `AgentBuilder::metrics`, on
//!   metrics-exporter-prometheus (no HTTP listener or push gateway of its own). Without it,
//!   [`AgentBuilder::metrics_renderer`] takes any exporter's text.
//!
//! # Decisions
//!
//! - The token is checked through an HMAC under a random key made at start
//!   ([`ring::hmac::verify`], constant time); the agent keeps no copy of the token itself.
//! - `AWS_TOKEN` only: the AWS agent also falls back to `AWS_SESSION_TOKEN`, an AWS
//!   credential, which must not become a password every local caller holds.
//! - Accepted TCP sockets get IP TTL 1 (IPv6: unicast hop limit 1), as the AWS agent sets:
//!   an answer cannot leave the host even if the agent listens beyond loopback.
//! - Query values are strictly percent-decoded: `+` stays a plus sign (AWS names may hold
//!   one); a space is `%20`.
//! - Replacing the served [`Secrets`](strongroom_facade::Secrets) ([`SecretsSlot`]) is how a
//!   configuration reload works: requests in flight finish on the one they took.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod listen;
pub mod meter;
mod response;
mod routes;
mod server;
mod token;

pub use listen::{DEFAULT_LISTEN, Listen};
#[cfg(feature = "prometheus")]
pub use meter::install_prometheus;
/// The Prometheus recorder's handle (from metrics-exporter-prometheus).
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub use metrics_exporter_prometheus::PrometheusHandle;
pub use server::{
    Agent, AgentBuilder, DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT, MAX_REQUEST_HEAD, SecretsSlot,
};
pub use token::{MAX_TOKEN_LEN, TOKEN_HEADERS, TOKEN_VAR, Token};
