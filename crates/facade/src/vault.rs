//! Opening a Vault / OpenBao store from a [`VaultConfig`] (the `vault` feature).
//!
//! The store builder starts from what the environment says
//! ([`VaultStoreBuilder::from_lookup`]: `VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_KV_MOUNT`,
//! `STRONGROOM_VAULT_PREFIX`, ...), as the `vault` CLI would take it, and every setting the
//! file names replaces it through the builder's setters. An auth method named in the file
//! replaces the one the environment gave. Nothing copies or fakes the environment.

use std::sync::Arc;
use std::time::Duration;

use strongroom_core::{Error, SecretStore};
use strongroom_vault::{AppRole, Credential, Kubernetes, RenewPolicy, Token, VaultStoreBuilder};

use crate::config::{VaultAuthConfig, VaultConfig};

pub(crate) fn open(config: &VaultConfig) -> Result<Arc<dyn SecretStore>, Error> {
    let env = |name: &str| std::env::var(name).ok();
    Ok(Arc::new(builder(config, env)?.build()?))
}

/// The builder `config` describes over the variables `env` returns.
pub(crate) fn builder(
    config: &VaultConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<VaultStoreBuilder, Error> {
    let mut builder = VaultStoreBuilder::from_lookup(&env)?;
    if let Some(mount) = &config.mount {
        builder = builder.mount(mount);
    }
    if let Some(prefix) = &config.prefix {
        builder = builder.prefix(prefix);
    }
    let auth = config
        .auth
        .as_ref()
        .map(|auth| auth_of(auth, &env))
        .transpose()?;
    let renew = config
        .renew
        .as_deref()
        .map(str::parse::<RenewPolicy>)
        .transpose()?;
    let requests = config.requests();
    Ok(builder.client(|mut client| {
        if let Some(address) = &config.address {
            client = client.address(address);
        }
        if let Some(namespace) = &config.namespace {
            client = client.namespace(namespace);
        }
        if let Some(ca) = &config.ca_cert {
            client = client.ca_file(ca);
        }
        if let Some(auth) = auth {
            client = client.auth(auth);
        }
        if let Some(allow) = config.allow_plain_http {
            client = client.allow_plain_http(allow);
        }
        if let Some(renew) = renew {
            client = client.renew_policy(renew);
        }
        if let Some(secs) = requests.request_timeout_secs {
            client = client.request_timeout(Duration::from_secs(secs));
        }
        if let Some(secs) = requests.connect_timeout_secs {
            client = client.connect_timeout(Duration::from_secs(secs));
        }
        if let Some(n) = requests.retry_max_attempts {
            client = client.retry_max_attempts(n);
        }
        if let Some(secs) = requests.retry_max_total_secs {
            client = client.retry_max_total(Duration::from_secs(secs));
        }
        client
    }))
}

/// The auth method the file names; credentials come from the variables it names.
fn auth_of(
    auth: &VaultAuthConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<strongroom_vault::Auth, Error> {
    let required = |var: &str, what: &str| {
        env(var).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            Error::config(format!(
                "the Vault {what} variable {var} (named in the configuration) is unset or empty"
            ))
        })
    };
    Ok(match auth {
        VaultAuthConfig::Token { token_env } => {
            let var = token_env.as_deref().unwrap_or("VAULT_TOKEN");
            Token::new(required(var, "token")?.trim().to_owned()).into()
        }
        VaultAuthConfig::AppRole {
            role_id,
            secret_id_env,
            mount,
        } => {
            let secret_id = Credential::value(required(secret_id_env, "AppRole secret id")?);
            let mut approle = AppRole::new(Credential::value(role_id.as_str()), secret_id);
            if let Some(mount) = mount {
                approle = approle.mount(mount);
            }
            approle.into()
        }
        VaultAuthConfig::Kubernetes {
            role,
            jwt_path,
            mount,
        } => {
            let mut k8s = Kubernetes::new(role);
            if let Some(path) = jwt_path {
                k8s = k8s.jwt_file(path);
            }
            if let Some(mount) = mount {
                k8s = k8s.mount(mount);
            }
            k8s.into()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BackendConfig, Config};

    fn vault(toml: &str) -> VaultConfig {
        match Config::from_toml_str(toml).unwrap().backend {
            BackendConfig::Vault(vault) => vault,
            other => panic!("{}", other.kind()),
        }
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn every_file_setting_reaches_the_builder() {
        let config = vault(
            r#"
            [backend]
            kind = "vault"
            address = "http://vault.default.svc:8200"
            namespace = "team-a"
            mount = "kv"
            prefix = "prod/app/"
            allow_plain_http = true
            renew = "60s"
            request_timeout_secs = 9
            connect_timeout_secs = 1
            retry_max_attempts = 5
            retry_max_total_secs = 20
            [backend.auth]
            method = "approle"
            role_id = "role-1"
            secret_id_env = "MY_SECRET_ID"
        "#,
        );
        let vars = env(&[("MY_SECRET_ID", "sid-value"), ("VAULT_TOKEN", "env-token")]);
        let built = builder(&config, vars).unwrap();
        let shown = format!("{built:?}");
        for want in [
            "addresses: [\"http://vault.default.svc:8200\"]",
            "namespace: Some(\"team-a\")",
            "mount: Some(\"kv\")",
            "prefix: Some(\"prod/app/\")",
            "allow_plain_http: true",
            "BeforeExpiry(60s)",
            "request_timeout: 9s",
            "max_attempts: 5",
            "max_total: 20s",
            "approle",
        ] {
            assert!(shown.contains(want), "{want} in {shown}");
        }
        assert!(
            !shown.contains("sid-value") && !shown.contains("env-token"),
            "{shown}"
        );
        let store = built.build().unwrap();
        assert_eq!(store.scope().folder(), "prod/app/");
        assert_eq!(store.kv().mount(), "kv");
    }

    #[test]
    fn the_file_wins_over_the_environment_and_the_environment_fills_the_rest() {
        let config = vault("[backend]\nkind = \"vault\"\nmount = \"kv\"\n");
        let store = builder(
            &config,
            env(&[
                ("VAULT_ADDR", "http://127.0.0.1:8200"),
                ("VAULT_TOKEN", "t"),
                ("VAULT_KV_MOUNT", "elsewhere"),
                ("STRONGROOM_VAULT_PREFIX", "/prod/app"),
            ]),
        )
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(store.kv().mount(), "kv");
        assert_eq!(store.scope().folder(), "prod/app/");
    }

    #[test]
    fn plain_http_elsewhere_is_refused_with_the_switch_named() {
        let config = vault(
            "[backend]\nkind = \"vault\"\naddress = \"http://vault.default.svc:8200\"\n\
             [backend.auth]\nmethod = \"token\"\n",
        );
        let err = builder(&config, env(&[("VAULT_TOKEN", "t")]))
            .unwrap()
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("allow_plain_http = true"), "{err}");
    }

    #[test]
    fn a_named_credential_variable_must_be_set() {
        let config = vault(
            "[backend]\nkind = \"vault\"\naddress = \"http://127.0.0.1:8200\"\n\
             [backend.auth]\nmethod = \"token\"\ntoken_env = \"APP_TOKEN\"\n",
        );
        let err = builder(&config, env(&[("VAULT_TOKEN", "t")])).unwrap_err();
        assert!(err.to_string().contains("APP_TOKEN"), "{err}");
        let config = vault("[backend]\nkind = \"vault\"\nrenew = \"often\"\n");
        let err = builder(&config, env(&[])).unwrap_err();
        assert!(err.to_string().contains("often"), "{err}");
    }
}
