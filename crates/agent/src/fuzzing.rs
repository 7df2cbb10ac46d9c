//! Entry points into the agent's request parsing, for the cargo-fuzz targets in `fuzz/` only
//! (the `fuzzing` feature). Not part of the API: names and shapes may change.

use strongroom_core::SecretName;

use crate::response::name_from_id;
use crate::routes::{Query, decode};

/// Parses a request target the way the routes do once a request is admitted: the `/v1/NAME`
/// path form (percent-decoded) and the `/secretsmanager/get` query (`secretId`, `versionId`,
/// `versionStage`, `refreshNow`), then the id (a name or an ARN) down to a secret name.
pub fn request_target(target: &str) {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    if let Some(name) = path.strip_prefix("/v1/")
        && let Ok(name) = decode(name, "the secret name")
    {
        let _ = SecretName::new(name_from_id(&name));
    }
    if let Ok(query) = Query::parse(query)
        && let Some(id) = &query.secret_id
    {
        let _ = SecretName::new(name_from_id(id));
    }
}
