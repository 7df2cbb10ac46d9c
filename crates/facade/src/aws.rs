//! Opening an AWS Secrets Manager store from an [`AwsConfig`], or an SSM Parameter Store
//! from an [`SsmConfig`] (the `aws` feature).
//!
//! The store builder starts from what the environment says
//! ([`StoreBuilder::from_env_with`]: `STRONGROOM_AWS_PREFIX`, ...; region, endpoint,
//! profile and credentials the AWS way when built), and every setting the file names
//! replaces it through the builder's setter. Nothing copies or fakes the environment.

use std::sync::Arc;
use std::time::Duration;

use strongroom_aws::{
    AssumeRoleRequest, ParameterTier, SecretsManagerStore, SsmStore, SsmStoreBuilder, StoreBuilder,
};
use strongroom_core::{Error, SecretStore};
use strongroom_sigv4::Env;

use crate::config::{AssumeRoleConfig, AwsConfig, SsmConfig};

pub(crate) fn open(config: &AwsConfig) -> Result<Arc<dyn SecretStore>, Error> {
    // Credentials load on the first call: a facade is built synchronously at startup, and
    // the default chain may need the network (IMDS, STS).
    let store: SecretsManagerStore = builder(config, Env::process())?.build_lazy()?;
    Ok(Arc::new(store))
}

/// The builder `config` describes over the environment `env`.
pub(crate) fn builder(config: &AwsConfig, env: Env) -> Result<StoreBuilder, Error> {
    let mut builder = StoreBuilder::from_env_with(env)?;
    if let Some(region) = &config.region {
        builder = builder.region(region);
    }
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint(endpoint);
    }
    if let Some(profile) = &config.profile {
        builder = builder.profile(profile);
    }
    if let Some(prefix) = &config.prefix {
        builder = builder.prefix(prefix);
    }
    if let Some(key) = &config.kms_key_id {
        builder = builder.kms_key_id(key);
    }
    if let Some(days) = config.recovery_window_days {
        builder = builder.recovery_window_days(days);
    }
    if let Some(role) = &config.assume_role {
        builder = builder.assume_role(assume_role_request(role));
    }
    let requests = config.requests();
    if let Some(secs) = requests.request_timeout_secs {
        builder = builder.request_timeout(Duration::from_secs(secs));
    }
    if let Some(secs) = requests.connect_timeout_secs {
        builder = builder.connect_timeout(Duration::from_secs(secs));
    }
    if let Some(n) = requests.retry_max_attempts {
        builder = builder.retry_max_attempts(n);
    }
    if let Some(secs) = requests.retry_max_total_secs {
        builder = builder.retry_max_total(Duration::from_secs(secs));
    }
    Ok(builder)
}

/// Opens the SSM Parameter Store `config` describes (credentials load on the first call).
pub(crate) fn open_ssm(config: &SsmConfig) -> Result<Arc<dyn SecretStore>, Error> {
    let store: SsmStore = ssm_builder(config, Env::process())?.build_lazy()?;
    Ok(Arc::new(store))
}

/// The SSM builder `config` describes over the environment `env` (the file wins).
pub(crate) fn ssm_builder(config: &SsmConfig, env: Env) -> Result<SsmStoreBuilder, Error> {
    let mut builder = SsmStoreBuilder::from_env_with(env)?;
    if let Some(region) = &config.region {
        builder = builder.region(region);
    }
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint(endpoint);
    }
    if let Some(profile) = &config.profile {
        builder = builder.profile(profile);
    }
    if let Some(prefix) = &config.prefix {
        builder = builder.prefix(prefix);
    }
    if let Some(key) = &config.kms_key_id {
        builder = builder.kms_key_id(key);
    }
    if let Some(tier) = &config.tier {
        builder = builder.tier(ParameterTier::parse(tier)?);
    }
    if let Some(role) = &config.assume_role {
        builder = builder.assume_role(assume_role_request(role));
    }
    let requests = config.requests();
    if let Some(secs) = requests.request_timeout_secs {
        builder = builder.request_timeout(Duration::from_secs(secs));
    }
    if let Some(secs) = requests.connect_timeout_secs {
        builder = builder.connect_timeout(Duration::from_secs(secs));
    }
    if let Some(n) = requests.retry_max_attempts {
        builder = builder.retry_max_attempts(n);
    }
    if let Some(secs) = requests.retry_max_total_secs {
        builder = builder.retry_max_total(Duration::from_secs(secs));
    }
    Ok(builder)
}

/// The STS AssumeRole request of a `[backend.assume_role]` table (Secrets Manager and SSM).
fn assume_role_request(role: &AssumeRoleConfig) -> AssumeRoleRequest {
    let mut request = AssumeRoleRequest::new(&role.role_arn);
    if let Some(name) = &role.session_name {
        request = request.session_name(name);
    }
    if let Some(secs) = role.duration_secs {
        request = request.duration(Duration::from_secs(secs));
    }
    if let Some(id) = &role.external_id {
        request = request.external_id(id);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BackendConfig, Config};

    fn aws(toml: &str) -> AwsConfig {
        match Config::from_toml_str(toml).unwrap().backend {
            BackendConfig::Aws(aws) => aws,
            other => panic!("{}", other.kind()),
        }
    }

    #[test]
    fn every_file_setting_reaches_the_builder() {
        let config = aws(r#"
            [backend]
            kind = "aws"
            region = "eu-west-1"
            endpoint = "http://127.0.0.1:4566"
            prefix = "/prod/app/"
            kms_key_id = "alias/app"
            recovery_window_days = 7
            request_timeout_secs = 9
            connect_timeout_secs = 1
            retry_max_attempts = 5
            retry_max_total_secs = 20
            [backend.assume_role]
            role_arn = "arn:aws:iam::123456789012:role/app"
            session_name = "app"
            duration_secs = 900
            external_id = "ext"
        "#);
        let shown = format!(
            "{:?}",
            builder(&config, Env::from_vars([("X", "y")])).unwrap()
        );
        for want in [
            "region: Some(\"eu-west-1\")",
            "endpoint: Some(\"http://127.0.0.1:4566\")",
            "prefix: \"/prod/app/\"",
            "kms_key_id: Some(\"alias/app\")",
            "recovery_window_days: Some(7)",
            "request_timeout: Some(9s)",
            "retry_max_attempts: Some(5)",
            "retry_max_total: Some(20s)",
            "role_arn: \"arn:aws:iam::123456789012:role/app\"",
            "session_name: \"app\"",
            "duration: Some(900s)",
            "external_id: Some(\"ext\")",
        ] {
            assert!(shown.contains(want), "{want} in {shown}");
        }
    }

    #[test]
    fn the_file_wins_over_the_environment_and_the_environment_fills_the_rest() {
        let config = aws("[backend]\nkind = \"aws\"\nrecovery_window_days = 10\n");
        let env = Env::from_vars([
            ("STRONGROOM_AWS_PREFIX", "prod/app"),
            ("STRONGROOM_AWS_RECOVERY_WINDOW_DAYS", "20"),
        ]);
        let shown = format!("{:?}", builder(&config, env).unwrap());
        assert!(shown.contains("prefix: \"prod/app\""), "{shown}");
        assert!(shown.contains("recovery_window_days: Some(10)"), "{shown}");
    }

    #[test]
    fn ssm_settings_reach_the_builder_over_the_environment() {
        let BackendConfig::Ssm(config) = Config::from_toml_str(
            r#"
            [backend]
            kind = "ssm"
            region = "eu-west-1"
            endpoint = "http://127.0.0.1:5000"
            prefix = "/prod/app"
            kms_key_id = "alias/app"
            tier = "advanced"
            request_timeout_secs = 9
            connect_timeout_secs = 1
            retry_max_attempts = 5
            retry_max_total_secs = 20
            [backend.assume_role]
            role_arn = "arn:aws:iam::123456789012:role/app"
            session_name = "app"
            duration_secs = 900
            external_id = "ext"
        "#,
        )
        .unwrap()
        .backend
        else {
            panic!("not ssm")
        };
        let env = Env::from_vars([
            ("STRONGROOM_SSM_PREFIX", "other"),
            ("STRONGROOM_SSM_TIER", "standard"),
            ("STRONGROOM_REQUEST_TIMEOUT_SECS", "3"),
            ("STRONGROOM_AWS_ROLE_SESSION_NAME", "from-env"),
        ]);
        let shown = format!("{:?}", ssm_builder(&config, env).unwrap());
        for want in [
            "region: Some(\"eu-west-1\")",
            "endpoint: Some(\"http://127.0.0.1:5000\")",
            "prefix: \"/prod/app\"",
            "kms_key_id: Some(\"alias/app\")",
            "tier: Advanced",
            "request_timeout: Some(9s)",
            "connect_timeout: Some(1s)",
            "retry_max_attempts: Some(5)",
            "retry_max_total: Some(20s)",
            "role_arn: \"arn:aws:iam::123456789012:role/app\"",
            "session_name: \"app\"",
            "duration: Some(900s)",
            "external_id: Some(\"ext\")",
        ] {
            assert!(shown.contains(want), "{want} in {shown}");
        }
        let bad = SsmConfig {
            tier: Some("premium".to_owned()),
            ..SsmConfig::default()
        };
        assert!(ssm_builder(&bad, Env::from_vars([("X", "y")])).is_err());
        let store = ssm_builder(&config, Env::from_vars([("X", "y")]))
            .unwrap()
            .build_lazy()
            .unwrap();
        assert_eq!(store.backend(), "ssm");
    }

    #[test]
    fn a_bad_setting_is_a_config_error() {
        let config =
            aws("[backend]\nkind = \"aws\"\nregion = \"eu-west-1\"\nrecovery_window_days = 3\n");
        let err = builder(&config, Env::from_vars([("X", "y")]))
            .unwrap()
            .build_lazy()
            .unwrap_err();
        assert!(err.to_string().contains("recovery window"), "{err}");
    }
}
