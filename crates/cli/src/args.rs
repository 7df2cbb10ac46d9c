//! The command line, as clap parses it. docs/cli.md is the user-facing description.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use strongroom_facade::KeySpec;

/// Store, read, version and rotate secrets.
///
/// The local backend (an AES-256-GCM encrypted file) is the default: nothing needs to run.
#[derive(Debug, Parser)]
#[command(name = "strongroom", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes, before or after its name.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The store: the encrypted file (local), the directory (dir) or the variable prefix (env);
    /// the vault, aws, ssm and gcp backends read their settings from VAULT_* / AWS_* /
    /// GOOGLE_* variables instead.
    #[arg(long, global = true, env = "STRONGROOM_STORE", value_name = "PATH")]
    pub(crate) store: Option<PathBuf>,

    /// Which kind of store to use.
    #[arg(long, global = true, env = "STRONGROOM_BACKEND", value_enum, default_value_t = Backend::Local)]
    pub(crate) backend: Backend,

    /// The master key file of the local store (32 raw bytes or base64, mode 0600).
    #[arg(long, global = true, env = "STRONGROOM_KEY_FILE", value_name = "PATH")]
    pub(crate) key_file: Option<PathBuf>,

    /// A key slot of the local store, repeatable, tried in order: file:PATH, env:VAR,
    /// passphrase, aws-kms:KEY_ID_OR_ARN, vault-transit:[MOUNT/]KEY. With `init`, one slot
    /// each; otherwise the slots that may open the store (STRONGROOM_KEY: comma-separated).
    #[arg(
        long = "key",
        global = true,
        env = "STRONGROOM_KEY",
        value_delimiter = ',',
        value_name = "KEY",
        value_parser = key_spec_arg
    )]
    pub(crate) keys: Vec<KeySpec>,

    /// Output format of read commands.
    #[arg(long, global = true, env = "STRONGROOM_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub(crate) output: Output,

    /// A TOML configuration file (docs/configuration.md): its backend table replaces --backend
    /// and --store; the options below still apply on top.
    #[arg(long, global = true, env = "STRONGROOM_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Scope every command to this folder of the store, the `prefix` of the configuration
    /// (`prod/app`: the key `db/pw` is `prod/app/db/pw`, and nothing outside `prod/app/` is
    /// visible). Vault and AWS also take STRONGROOM_VAULT_PREFIX / STRONGROOM_AWS_PREFIX.
    /// (Not `--prefix`: `ls PREFIX` and `migrate --prefix` filter names within the scope.)
    #[arg(long, global = true, env = "STRONGROOM_PREFIX", value_name = "FOLDER")]
    pub(crate) scope: Option<String>,

    #[command(flatten)]
    pub(crate) remote: Remote,
}

/// Settings of the remote backends (Vault, AWS); each also has a variable, read by the
/// backend itself (docs/configuration.md).
#[derive(Debug, Args)]
pub(crate) struct Remote {
    /// Seconds for one attempt of one request (default 5).
    #[arg(long, global = true, value_name = "SECS")]
    pub(crate) request_timeout: Option<u64>,

    /// Attempts per request, the first included (default 3; 1 never retries).
    #[arg(long, global = true, value_name = "N")]
    pub(crate) retry_max_attempts: Option<u32>,

    /// Seconds one request may take, every attempt and wait included (default 10).
    #[arg(long, global = true, value_name = "SECS")]
    pub(crate) retry_max_total: Option<u64>,

    /// The Vault KV v2 mount (else VAULT_KV_MOUNT, else `secret`).
    #[arg(long, global = true, value_name = "MOUNT")]
    pub(crate) vault_mount: Option<String>,

    /// The Vault namespace (else VAULT_NAMESPACE).
    #[arg(long, global = true, value_name = "NAMESPACE")]
    pub(crate) vault_namespace: Option<String>,

    /// Allow plain http:// to a Vault host that is not this machine (such as
    /// `http://vault.default.svc:8200`): the token crosses the network unencrypted.
    #[arg(long, global = true)]
    pub(crate) vault_allow_plain_http: bool,

    /// The AWS region (else AWS_REGION, AWS_DEFAULT_REGION, the profile's).
    #[arg(long, global = true, value_name = "REGION")]
    pub(crate) aws_region: Option<String>,

    /// The AWS shared-config profile (else AWS_PROFILE).
    #[arg(long, global = true, value_name = "PROFILE")]
    pub(crate) aws_profile: Option<String>,

    /// The Google Cloud project of the gcp backend (else GOOGLE_CLOUD_PROJECT).
    #[arg(long, global = true, value_name = "PROJECT")]
    pub(crate) gcp_project: Option<String>,
}

/// The kinds of store the CLI can open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Backend {
    /// An AES-256-GCM encrypted file: read-write, versioned.
    Local,
    /// Environment variables (`app/db_password` is `APP_DB_PASSWORD`); read-only.
    Env,
    /// One file per secret under a directory, like a Kubernetes secret volume; read-only.
    Dir,
    /// Vault or OpenBao KV v2, configured by VAULT_ADDR, VAULT_TOKEN (or AppRole/Kubernetes
    /// variables), VAULT_NAMESPACE, VAULT_KV_MOUNT.
    Vault,
    /// AWS Secrets Manager: region, endpoint and credentials the AWS way (AWS_REGION,
    /// AWS_PROFILE, the default credential chain...), name prefix STRONGROOM_AWS_PREFIX.
    Aws,
    /// AWS SSM Parameter Store (SecureString parameters; `app/db` is `/app/db`): AWS
    /// settings as for aws (endpoint AWS_ENDPOINT_URL_SSM), folder STRONGROOM_SSM_PREFIX,
    /// KMS key STRONGROOM_SSM_KMS_KEY_ID, tier STRONGROOM_SSM_TIER.
    Ssm,
    /// Google Cloud Secret Manager: project GOOGLE_CLOUD_PROJECT (or --gcp-project),
    /// credentials the Google way (GOOGLE_OAUTH_ACCESS_TOKEN, GOOGLE_APPLICATION_CREDENTIALS,
    /// application default credentials, the metadata server), endpoint STRONGROOM_GCP_ENDPOINT.
    Gcp,
}

/// How read commands print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// For people: values raw, lists one per line.
    Text,
    /// One JSON document, for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a new local store and its master key (or, with --key, one key slot per key).
    Init {
        /// Protect the store with a passphrase (STRONGROOM_PASSPHRASE or asked) instead of a key file.
        #[arg(long)]
        passphrase: bool,
    },
    /// Write a new version of a secret; the value comes from stdin unless given otherwise.
    Put(Put),
    /// Print a secret's value.
    Get {
        /// The secret's name, like app/db/password.
        key: String,
        /// A given version instead of the current one.
        #[arg(long)]
        version: Option<String>,
        /// Print one field of a value that is a JSON object.
        #[arg(long, value_name = "FIELD")]
        json_field: Option<String>,
    },
    /// List secret names starting with a prefix.
    #[command(alias = "list")]
    Ls {
        /// A plain string prefix (`app/` or `app/d`); all names when absent.
        #[arg(default_value = "")]
        prefix: String,
    },
    /// Delete a secret (recoverable with `restore` unless --purge).
    Rm {
        /// The secret's name.
        key: String,
        /// Remove the secret and all its versions for good.
        #[arg(long)]
        purge: bool,
    },
    /// Bring back a deleted secret.
    Restore {
        /// The secret's name.
        key: String,
    },
    /// Show a secret's version history.
    Versions {
        /// The secret's name.
        key: String,
    },
    /// Write a new random value (base64) as the secret's next version.
    Rotate {
        /// The secret's name.
        key: String,
        /// How many random bytes (before base64).
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(8..=4096))]
        bytes: u16,
        /// Only when the current version is older than AGE (90d, 12h, or seconds), as a
        /// check-and-set on the version read: of several callers racing, one rotates.
        #[arg(long, value_name = "AGE", value_parser = age_arg)]
        if_older_than: Option<std::time::Duration>,
    },
    /// The rotation policies of the configuration file ([[rotation]] tables) or STRONGROOM_ROTATION.
    Rotation {
        /// What to do with them.
        #[command(subcommand)]
        command: RotationCommand,
    },
    /// Copy every secret from one store to another.
    ///
    /// A store is `local:PATH`, `env:[PREFIX]`, `dir:PATH`, `vault:[MOUNT[/PREFIX]]`, `aws:[PREFIX]`,
    /// `ssm:[/PREFIX]` or `gcp:[PROJECT][/PREFIX]`;
    /// remote settings come from the usual VAULT_* / AWS_* / GOOGLE_* variables.
    Migrate(Migrate),
    /// Run a command with secrets in its environment (never on its command line).
    ///
    /// strongroom exec --env DB_PASSWORD=app/db#password --env-prefix app/ -- CMD ARGS...
    Exec(crate::exec::ExecArgs),
    /// Render a template holding secrets into a file (mode 0600, replaced atomically).
    Render(crate::render::RenderArgs),
    /// The key slots of the local store: list, add and remove the keys that open it.
    Key {
        /// What to do with them.
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Re-encrypt the local store under a new master key or passphrase.
    Rekey {
        /// Re-wrap one key slot only: a key service's slot through the service (Transit
        /// `rewrap` after its key was rotated), or a passphrase slot under a new passphrase.
        #[arg(long, value_name = "KEY", value_parser = key_spec_arg, conflicts_with = "new_key_file")]
        slot: Option<KeySpec>,
        /// Use a new passphrase (STRONGROOM_NEW_PASSPHRASE or asked) instead of a new key file.
        #[arg(long, conflicts_with = "new_key_file")]
        passphrase: bool,
        /// Where to write the new key file (default: replace the current key file).
        #[arg(long, value_name = "PATH")]
        new_key_file: Option<PathBuf>,
    },
    /// Serve secrets to local programs over HTTP, as the AWS Secrets Manager Agent does
    /// (docs/agent.md). Callers send the token from AWS_TOKEN (the value, or file://PATH).
    Serve(Serve),
}

/// `rotation`'s subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum RotationCommand {
    /// Each policy's key, current version and next due time (UTC).
    Status,
}

/// `key`'s subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// The store's key slots (read without any key).
    #[command(alias = "ls")]
    List,
    /// Add a slot for KEY (the store opens with --key / STRONGROOM_KEY or its usual key).
    Add {
        /// The new slot's key: file:PATH (a new key file when PATH does not exist), env:VAR,
        /// passphrase (STRONGROOM_NEW_PASSPHRASE or asked), aws-kms:KEY, vault-transit:KEY.
        #[arg(value_parser = key_spec_arg)]
        key: KeySpec,
    },
    /// Remove a slot: its number in `key list`, or the key that opens it. The last slot
    /// cannot be removed.
    #[command(alias = "rm")]
    Remove {
        /// The slot's number (1, 2...) or a key (aws-kms:alias/app, file:PATH...).
        slot: String,
    },
}

/// A `--key` value.
fn key_spec_arg(text: &str) -> Result<KeySpec, String> {
    text.parse::<KeySpec>().map_err(|e| e.to_string())
}

/// A rotation age: humantime (`90d`) or whole seconds.
fn age_arg(text: &str) -> Result<std::time::Duration, String> {
    strongroom_facade::parse_age(text).map_err(|e| e.to_string())
}

/// `migrate`'s options.
#[derive(Debug, Args)]
pub(crate) struct Migrate {
    /// The store to copy from.
    #[arg(long, value_name = "SPEC")]
    pub(crate) from: String,
    /// The store to copy to.
    #[arg(long, value_name = "SPEC")]
    pub(crate) to: String,
    /// Only keys starting with this prefix.
    #[arg(long, default_value = "")]
    pub(crate) prefix: String,
    /// Read and compare everything, write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Copy every readable version, oldest first, not only the latest.
    #[arg(long)]
    pub(crate) all_versions: bool,
}

/// `serve`'s options; the store, cache, audit and mirror come from --config or the
/// environment, as for `Secrets::from_env`.
#[derive(Debug, Args)]
pub(crate) struct Serve {
    /// Where to listen: ADDR:PORT (loopback unless --allow-non-loopback) or unix:PATH.
    #[arg(
        long,
        env = "STRONGROOM_LISTEN",
        default_value = "127.0.0.1:2773",
        value_name = "ADDR:PORT|unix:PATH"
    )]
    pub(crate) listen: String,
    /// Allow a TCP address that is not loopback: anyone who reaches it with the token reads
    /// every secret the agent can.
    #[arg(long)]
    pub(crate) allow_non_loopback: bool,
    /// Connections served at once; one more is answered 429.
    #[arg(long, default_value_t = 800, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) max_connections: u32,
}

/// `put`'s options. `Debug` is written by hand: it never shows `--value`.
#[derive(Args)]
pub(crate) struct Put {
    /// The secret's name.
    pub(crate) key: String,
    /// Read the value from this file, byte for byte.
    #[arg(long, value_name = "PATH", conflicts_with = "value")]
    pub(crate) file: Option<PathBuf>,
    /// The value itself. Other users can see it in the process list: prefer stdin.
    #[arg(long)]
    pub(crate) value: Option<String>,
    /// Keep the trailing newline of a value read from stdin.
    #[arg(long)]
    pub(crate) keep_newline: bool,
    /// Only write if the secret does not exist yet.
    #[arg(long, conflicts_with = "if_version")]
    pub(crate) if_absent: bool,
    /// Only write if the current version is this one.
    #[arg(long, value_name = "VERSION")]
    pub(crate) if_version: Option<String>,
    /// Set the secret's description.
    #[arg(long)]
    pub(crate) description: Option<String>,
    /// Set a tag (repeatable).
    #[arg(long = "tag", value_name = "NAME=VALUE", value_parser = parse_tag)]
    pub(crate) tags: Vec<(String, String)>,
}

impl std::fmt::Debug for Put {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Put")
            .field("key", &self.key)
            .field("file", &self.file)
            .field("value", &self.value.as_ref().map(|_| "[REDACTED]"))
            .field("keep_newline", &self.keep_newline)
            .field("if_absent", &self.if_absent)
            .field("if_version", &self.if_version)
            .field("description", &self.description)
            .field("tags", &self.tags)
            .finish()
    }
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err("a tag is NAME=VALUE".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_command() {
        for argv in [
            &["strongroom", "--store", "/s", "--output", "json", "ls"][..],
            &["strongroom", "ls", "--store", "/s", "--output", "json"][..],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap();
            assert_eq!(
                cli.global.store.as_deref(),
                Some(std::path::Path::new("/s"))
            );
            assert_eq!(cli.global.output, Output::Json);
        }
    }

    #[test]
    fn debug_of_a_put_never_shows_the_value() {
        let cli = Cli::try_parse_from(["strongroom", "put", "k", "--value", "hunter2"]).unwrap();
        let shown = format!("{cli:?}");
        assert!(
            shown.contains("[REDACTED]") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn bad_tags_and_sizes_are_usage_errors() {
        for argv in [
            &["strongroom", "put", "k", "--tag", "novalue"][..],
            &["strongroom", "rotate", "k", "--bytes", "4"][..],
            &["strongroom", "put", "k", "--value", "v", "--file", "f"][..],
        ] {
            let err = Cli::try_parse_from(argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{argv:?}");
        }
    }
}
