//! Opening an AWS Secrets Manager store from an [`AwsConfig`] (the `aws` feature).
//!
//! The file's settings are laid over the process environment the AWS way: `region` is
//! `AWS_REGION`, `endpoint` is `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `profile` is
//! `AWS_PROFILE`; anything the file leaves out comes from the environment, and credentials
//! come from the default chain (environment, profiles, web identity, ECS, IMDS).

use std::sync::Arc;

use strongroom_aws::SecretsManagerStore;
use strongroom_core::{Error, SecretStore};
use strongroom_sigv4::Env;

use crate::config::AwsConfig;

pub(crate) fn open(config: &AwsConfig) -> Result<Arc<dyn SecretStore>, Error> {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    for (name, value) in [
        ("AWS_REGION", &config.region),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &config.endpoint),
        ("AWS_PROFILE", &config.profile),
    ] {
        if let Some(value) = value {
            vars.retain(|(n, _)| n != name);
            vars.push((name.to_owned(), value.clone()));
        }
    }
    let mut builder = SecretsManagerStore::builder().env(Env::from_vars(vars));
    if let Some(prefix) = config.prefix.as_deref().filter(|p| !p.is_empty()) {
        builder = builder.prefix(prefix);
    }
    // Credentials load on the first call: a facade is built synchronously at startup, and
    // the default chain may need the network (IMDS, STS).
    Ok(Arc::new(builder.build_lazy()?))
}
