//! The Google Cloud Secret Manager backend (`kind = "gcp"`): a [`GcpStore`] from a
//! [`GcpConfig`] over the environment, the Google way.

use std::sync::Arc;

use strongroom_core::{Error, SecretStore};
use strongroom_gcp::{GcpStore, GcpStoreBuilder};

use crate::config::GcpConfig;

/// Opens the Secret Manager store `config` describes (no request is made: credentials are
/// loaded now and used at the first call).
pub(crate) fn open(config: &GcpConfig) -> Result<Arc<dyn SecretStore>, Error> {
    let store: GcpStore = builder(config, GcpStoreBuilder::from_env())
        .build()
        .map_err(Error::from)?;
    Ok(Arc::new(store))
}

/// `env` (a builder filled from the environment) with what `config` sets on top: the file
/// wins over the variables.
pub(crate) fn builder(config: &GcpConfig, env: GcpStoreBuilder) -> GcpStoreBuilder {
    let mut builder = env;
    if let Some(project) = &config.project {
        builder = builder.project(project);
    }
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint(endpoint);
    }
    if let Some(prefix) = &config.prefix {
        builder = builder.prefix(prefix);
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BackendConfig, Config};
    use strongroom_gcp::Credentials;

    fn gcp(toml: &str) -> GcpConfig {
        match Config::from_toml_str(toml).unwrap().backend {
            BackendConfig::Gcp(gcp) => gcp,
            other => panic!("{}", other.kind()),
        }
    }

    #[test]
    fn every_file_setting_reaches_the_builder_over_the_environment() {
        let config = gcp(r#"
            [backend]
            kind = "gcp"
            project = "file-project"
            prefix = "prod/app"
            endpoint = "http://127.0.0.1:9"
        "#);
        let env = GcpStoreBuilder::new()
            .project("env-project")
            .endpoint("https://env.example")
            .prefix("env/folder");
        let shown = format!("{:?}", builder(&config, env));
        for want in ["file-project", "prod/app", "http://127.0.0.1:9"] {
            assert!(shown.contains(want), "{want} missing from {shown}");
        }
        for gone in ["env-project", "env.example", "env/folder"] {
            assert!(
                !shown.contains(gone),
                "{gone} should be replaced in {shown}"
            );
        }
        let store = builder(&config, GcpStoreBuilder::new())
            .credentials(Credentials::anonymous())
            .build()
            .unwrap();
        assert_eq!(store.backend(), "gcp");
    }

    #[test]
    fn what_the_file_leaves_out_comes_from_the_environment_and_a_project_is_needed() {
        let config = gcp("[backend]\nkind = \"gcp\"\n");
        let kept = format!(
            "{:?}",
            builder(&config, GcpStoreBuilder::new().project("env-project"))
        );
        assert!(kept.contains("env-project"), "{kept}");
        let err = builder(&config, GcpStoreBuilder::new())
            .credentials(Credentials::anonymous())
            .build()
            .map_err(Error::from)
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        let unknown = Config::from_toml_str("[backend]\nkind = \"gcp\"\nregion = \"x\"\n");
        assert!(unknown.is_err(), "an unknown gcp key is an error");
    }
}
