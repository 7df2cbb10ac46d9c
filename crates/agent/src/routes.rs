//! What the agent answers to each request: the checks every request passes, then the
//! routes (`/ping`, `/secretsmanager/get`, `/v1/NAME`, `/health`, `/metrics`).

use std::borrow::Cow;
use std::time::Instant;

use http::{HeaderMap, Method, Request, StatusCode};
use percent_encoding::percent_decode_str;
use strongroom_core::{SecretName, VersionId};
use strongroom_facade::Secrets;

use crate::response::{self, Refusal, Reply};
use crate::server::Shared;
use crate::token::TOKEN_HEADERS;

/// The stage of the current version.
pub(crate) const AWSCURRENT: &str = "AWSCURRENT";
/// The stage of the version before it.
pub(crate) const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// Where the path form of a read starts, as the AWS agent's default `path_prefix`.
const PATH_PREFIX: &str = "/v1/";

/// Answers one request. Never fails: every refusal is a JSON reply.
pub(crate) async fn answer<B>(shared: &Shared, request: Request<B>) -> Reply {
    let started = Instant::now();
    let (route, reply) = match check(shared, &request) {
        Err(refusal) => ("refused", refusal.reply()),
        Ok(Route::Ping) => (
            "ping",
            response::text(StatusCode::OK, "healthy", "text/plain; charset=utf-8"),
        ),
        Ok(route) => {
            let name = route.name();
            let secrets = shared.secrets.current();
            let work = serve(shared, &secrets, route, request.uri().query());
            match tokio::time::timeout(shared.request_timeout, work).await {
                Ok(Ok(reply)) => (name, reply),
                Ok(Err(refusal)) => (name, refusal.reply()),
                Err(_) => (
                    name,
                    Refusal::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ServiceUnavailableException",
                        format!(
                            "the store did not answer within {} ms",
                            shared.request_timeout.as_millis()
                        ),
                    )
                    .reply(),
                ),
            }
        }
    };
    crate::meter::request(route, reply.status());
    tracing::debug!(
        target: "strongroom_agent",
        method = %request.method(),
        route,
        status = reply.status().as_u16(),
        latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    reply
}

/// What a request asks for, once it passed the checks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Ping,
    /// `/secretsmanager/get` (the name is in the query).
    Get,
    /// `/v1/NAME`, the name percent-decoded.
    Path(String),
    Health,
    Metrics,
}

impl Route {
    fn name(&self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Get | Self::Path(_) => "get",
            Self::Health => "health",
            Self::Metrics => "metrics",
        }
    }
}

/// The checks every request passes, in this order: no `X-Forwarded-For` (400), GET only
/// (405), `/ping` needs nothing more, the token (403), a known route (404).
pub(crate) fn check<B>(shared: &Shared, request: &Request<B>) -> Result<Route, Refusal> {
    if request.headers().contains_key("x-forwarded-for") {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestException",
            "a request with X-Forwarded-For came through a proxy: the agent serves local callers only",
        ));
    }
    if request.method() != Method::GET {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowedException",
            format!(
                "{} is not served: the agent answers GET only",
                request.method()
            ),
        ));
    }
    let path = request.uri().path();
    if path == "/ping" {
        return Ok(Route::Ping);
    }
    admit(shared, request.headers())?;
    match path {
        "/secretsmanager/get" => Ok(Route::Get),
        "/health" => Ok(Route::Health),
        "/metrics" => Ok(Route::Metrics),
        _ => match path.strip_prefix(PATH_PREFIX) {
            Some(name) if !name.is_empty() => {
                Ok(Route::Path(decode(name, "the secret name")?.into_owned()))
            }
            _ => Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                "no such route: the agent serves /ping, /secretsmanager/get?secretId=NAME, /v1/NAME, /health and /metrics",
            )),
        },
    }
}

/// 403 unless a token header carries the token.
fn admit(shared: &Shared, headers: &HeaderMap) -> Result<(), Refusal> {
    let mut presented = false;
    for name in TOKEN_HEADERS {
        for value in headers.get_all(name) {
            presented = true;
            if shared.guard.admits(value.as_bytes()) {
                return Ok(());
            }
        }
    }
    let message = if presented {
        "the token is wrong"
    } else {
        "no token: send it in the X-Aws-Parameters-Secrets-Token header"
    };
    Err(Refusal::new(
        StatusCode::FORBIDDEN,
        "AccessDeniedException",
        message,
    ))
}

/// The routes past the checks.
async fn serve(
    shared: &Shared,
    secrets: &Secrets,
    route: Route,
    query: Option<&str>,
) -> Result<Reply, Refusal> {
    match route {
        Route::Ping => Ok(response::text(StatusCode::OK, "healthy", "text/plain")),
        Route::Get => {
            let query = Query::parse(query)?;
            let id = query.secret_id.as_deref().ok_or_else(|| {
                Refusal::bad_parameter("secretId is missing: /secretsmanager/get?secretId=NAME")
            })?;
            read(secrets, id, &query).await
        }
        Route::Path(name) => read(secrets, &name, &Query::parse(query)?).await,
        Route::Health => Ok(response::health(&secrets.health().await, &secrets.stats())),
        Route::Metrics => match &shared.metrics {
            Some(render) => {
                // The circuit breaker's gauge and counters are read from the cache now.
                secrets.record_metrics();
                Ok(response::text(
                    StatusCode::OK,
                    render(),
                    "text/plain; version=0.0.4; charset=utf-8",
                ))
            }
            None => Err(Refusal::not_found(
                "metrics are off: this agent was given no metrics exporter",
            )),
        },
    }
}

/// The query parameters of a read.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Query {
    pub(crate) secret_id: Option<String>,
    pub(crate) version_id: Option<String>,
    pub(crate) version_stage: Option<String>,
    pub(crate) refresh_now: bool,
}

impl Query {
    /// Parses `secretId`, `versionId`, `versionStage` and `refreshNow` (strict
    /// percent-decoding: `+` is a plus sign, as AWS secret names may hold one). Other
    /// parameters are ignored; a repeated one is refused.
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, Refusal> {
        let mut parsed = Self::default();
        let mut refresh: Option<String> = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "secretId" => &mut parsed.secret_id,
                "versionId" => &mut parsed.version_id,
                "versionStage" => &mut parsed.version_stage,
                "refreshNow" => &mut refresh,
                _ => continue,
            };
            if slot.is_some() {
                return Err(Refusal::bad_parameter(format!("{name} is given twice")));
            }
            let value = decode(value, name)?;
            if value.is_empty() {
                return Err(Refusal::bad_parameter(format!("{name} is empty")));
            }
            *slot = Some(value.into_owned());
        }
        parsed.refresh_now = match refresh.as_deref() {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(_) => return Err(Refusal::bad_parameter("refreshNow must be true or false")),
        };
        Ok(parsed)
    }
}

pub(crate) fn decode<'a>(text: &'a str, what: &str) -> Result<Cow<'a, str>, Refusal> {
    percent_decode_str(text)
        .decode_utf8()
        .map_err(|_| Refusal::bad_parameter(format!("{what} is not UTF-8 once percent-decoded")))
}

/// One GetSecretValue: the version the query names, from the cache when it can be.
async fn read(secrets: &Secrets, id: &str, query: &Query) -> Result<Reply, Refusal> {
    let name = response::name_from_id(id);
    let key = SecretName::new(name).map_err(|e| Refusal::from_store(&e))?;
    if query.refresh_now {
        // The next read asks the store (one call however many ask together). The stale
        // copy goes too: a caller asking for a fresh value wants an error, not an old one.
        secrets.cache().invalidate(&key);
    }
    let stage = query.version_stage.as_deref();
    let store_err = |e: strongroom_core::Error| Refusal::from_store(&e);
    let (secret, stages): (_, Vec<&str>) = match (query.version_id.as_deref(), stage) {
        (None, None | Some(AWSCURRENT)) => (
            secrets.get(&key).await.map_err(store_err)?,
            vec![AWSCURRENT],
        ),
        (None, Some(stage)) => {
            let (version, stages) = by_stage(secrets, &key, stage).await?;
            let secret = secrets
                .get_version(&key, &version)
                .await
                .map_err(store_err)?;
            (secret, stages)
        }
        (Some(version), stage) => {
            let version = VersionId::from(version);
            if let Some(stage) = stage {
                let (staged, _) = by_stage(secrets, &key, stage).await?;
                if staged != version {
                    return Err(Refusal::bad_parameter(format!(
                        "versionId {version} does not have the stage {stage} (version {staged} has it)"
                    )));
                }
            }
            let secret = secrets
                .get_version(&key, &version)
                .await
                .map_err(store_err)?;
            // AWSCURRENT when it is the current version (a cached read); nothing more is
            // known without asking the store for the history.
            let current = secrets.get(&key).await.ok();
            let stages = match current {
                Some(current) if current.version == secret.version => vec![AWSCURRENT],
                _ => Vec::new(),
            };
            (secret, stages)
        }
    };
    Ok(response::secret(
        secrets.backend(),
        key.as_str(),
        &secret,
        &stages,
    ))
}

/// The version that has `stage`, and the stages to report for it.
///
/// A store that labels versions (AWS Secrets Manager's staging labels) is asked for the
/// label. A store that does not (Vault, the local file, ...) has one stage besides
/// `AWSCURRENT`: `AWSPREVIOUS`, the version just before the current one in its history,
/// if it is readable. Any other stage is not found there.
async fn by_stage<'s>(
    secrets: &Secrets,
    key: &SecretName,
    stage: &'s str,
) -> Result<(VersionId, Vec<&'s str>), Refusal> {
    if stage == AWSCURRENT {
        let secret = secrets
            .get(key)
            .await
            .map_err(|e| Refusal::from_store(&e))?;
        return Ok((secret.version, vec![AWSCURRENT]));
    }
    let versions = secrets
        .versions(key)
        .await
        .map_err(|e| Refusal::from_store(&e))?;
    let missing = || {
        Refusal::not_found(format!(
            "no readable version of {key} has the stage {stage}"
        ))
    };
    let labelled = versions.iter().any(|v| !v.labels.is_empty());
    let found = if labelled {
        versions
            .iter()
            .find(|v| v.labels.iter().any(|l| l == stage))
    } else if stage == AWSPREVIOUS {
        versions
            .iter()
            .position(|v| v.current)
            .and_then(|at| at.checked_sub(1))
            .and_then(|before| versions.get(before))
    } else {
        None
    };
    match found {
        Some(info) if !info.deleted && !info.destroyed => Ok((info.version.clone(), vec![stage])),
        _ => Err(missing()),
    }
}
