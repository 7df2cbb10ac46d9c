//! Opening a Vault / OpenBao store from a [`VaultConfig`] (the `vault` feature).
//!
//! The file's settings are laid over the `VAULT_*` environment that
//! `strongroom_vault::VaultStore::from_lookup` reads, so a setting missing from the file
//! comes from the environment just as the `vault` CLI would take it. When the file names an
//! auth method, the other methods' variables are hidden so the file's choice wins.

use std::sync::Arc;

use strongroom_core::{Error, SecretStore};
use strongroom_vault::VaultStore;

use crate::config::{VaultAuthConfig, VaultConfig};
use crate::prefixed::Prefixed;

const APPROLE_VARS: [&str; 5] = [
    "VAULT_ROLE_ID",
    "VAULT_ROLE_ID_FILE",
    "VAULT_SECRET_ID",
    "VAULT_SECRET_ID_FILE",
    "VAULT_APPROLE_MOUNT",
];
const K8S_VARS: [&str; 3] = ["VAULT_K8S_ROLE", "VAULT_K8S_TOKEN_PATH", "VAULT_K8S_MOUNT"];

pub(crate) fn open(config: &VaultConfig) -> Result<Arc<dyn SecretStore>, Error> {
    let env = |name: &str| std::env::var(name).ok();
    let store = VaultStore::from_lookup(|name| overlay(config, name, env))?;
    match config.prefix.as_deref().map(|p| p.trim_matches('/')) {
        Some(prefix) if !prefix.is_empty() => Ok(Arc::new(Prefixed::new(store, prefix)?)),
        _ => Ok(Arc::new(store)),
    }
}

/// The value of the variable `name` once `config` is laid over `env`.
fn overlay(
    config: &VaultConfig,
    name: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let set = |value: &Option<String>| value.clone().or_else(|| env(name));
    match name {
        "VAULT_ADDR" => return set(&config.address),
        "VAULT_NAMESPACE" => return set(&config.namespace),
        "VAULT_KV_MOUNT" => return set(&config.mount),
        "VAULT_CACERT" => {
            return set(&config.ca_cert.as_ref().map(|p| p.display().to_string()));
        }
        _ => {}
    }
    match &config.auth {
        None => env(name),
        Some(VaultAuthConfig::Token { token_env }) => {
            if APPROLE_VARS.contains(&name) || K8S_VARS.contains(&name) {
                None
            } else if name == "VAULT_TOKEN" {
                env(token_env.as_deref().unwrap_or("VAULT_TOKEN"))
            } else {
                env(name)
            }
        }
        Some(VaultAuthConfig::AppRole {
            role_id,
            secret_id_env,
            mount,
        }) => match name {
            "VAULT_ROLE_ID" => Some(role_id.clone()),
            "VAULT_SECRET_ID" => env(secret_id_env),
            "VAULT_APPROLE_MOUNT" => set(mount),
            "VAULT_ROLE_ID_FILE" | "VAULT_SECRET_ID_FILE" | "VAULT_TOKEN" => None,
            _ if K8S_VARS.contains(&name) => None,
            _ => env(name),
        },
        Some(VaultAuthConfig::Kubernetes {
            role,
            jwt_path,
            mount,
        }) => match name {
            "VAULT_K8S_ROLE" => Some(role.clone()),
            "VAULT_K8S_TOKEN_PATH" => set(&jwt_path.as_ref().map(|p| p.display().to_string())),
            "VAULT_K8S_MOUNT" => set(mount),
            "VAULT_TOKEN" => None,
            _ if APPROLE_VARS.contains(&name) => None,
            _ => env(name),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approle() -> VaultConfig {
        VaultConfig {
            address: Some("http://127.0.0.1:8200".into()),
            mount: Some("kv".into()),
            auth: Some(VaultAuthConfig::AppRole {
                role_id: "role-1".into(),
                secret_id_env: "MY_SECRET_ID".into(),
                mount: None,
            }),
            ..VaultConfig::default()
        }
    }

    #[test]
    fn the_file_wins_over_the_environment() {
        let env = |name: &str| match name {
            "VAULT_ADDR" => Some("http://elsewhere:8200".to_owned()),
            "VAULT_TOKEN" => Some("env-token".to_owned()),
            "VAULT_K8S_ROLE" => Some("k8s".to_owned()),
            "MY_SECRET_ID" => Some("sid".to_owned()),
            "VAULT_NAMESPACE" => Some("ns".to_owned()),
            _ => None,
        };
        let config = approle();
        let get = |name| overlay(&config, name, env);
        assert_eq!(get("VAULT_ADDR").as_deref(), Some("http://127.0.0.1:8200"));
        assert_eq!(get("VAULT_KV_MOUNT").as_deref(), Some("kv"));
        assert_eq!(get("VAULT_NAMESPACE").as_deref(), Some("ns"));
        assert_eq!(get("VAULT_ROLE_ID").as_deref(), Some("role-1"));
        assert_eq!(get("VAULT_SECRET_ID").as_deref(), Some("sid"));
        assert_eq!(get("VAULT_TOKEN"), None);
        assert_eq!(get("VAULT_K8S_ROLE"), None);

        let token = VaultConfig {
            auth: Some(VaultAuthConfig::Token {
                token_env: Some("APP_VAULT_TOKEN".into()),
            }),
            ..VaultConfig::default()
        };
        let env = |name: &str| (name == "APP_VAULT_TOKEN").then(|| "t".to_owned());
        assert_eq!(overlay(&token, "VAULT_TOKEN", env).as_deref(), Some("t"));
    }
}
