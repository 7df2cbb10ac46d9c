//! `strongroom serve`: the agent (strongroom-agent) over a full `Secrets` (cache, audit,
//! mirror) built from the same configuration as `Secrets::from_env` / a TOML file. SIGTERM
//! and SIGINT drain and exit; SIGHUP rebuilds the `Secrets` from the configuration and
//! swaps it in, keeping the old one if that fails.

use std::sync::Arc;

use strongroom_agent::{Agent, Listen, SecretsSlot, Token};
use strongroom_core::Error;
use strongroom_facade::{CONFIG_VAR, Config, Secrets};

use crate::args::{Global, Serve};
use crate::store;

/// The variable naming the log level of `serve` (error, warn, info, debug, trace).
const LOG_VAR: &str = "STRONGROOM_LOG";

/// Runs the agent until SIGTERM or SIGINT.
pub(crate) async fn run(global: Global, args: Serve) -> Result<(), Error> {
    start_logging()?;
    // First what needs no store: a missing token or a bad address fails at once.
    let token = Token::from_env()?;
    let listen: Listen = args.listen.parse()?;
    listen.check(args.allow_non_loopback)?;
    let global = Arc::new(global);
    let secrets = load(&global).await?;
    let metrics = strongroom_agent::install_prometheus()?;
    let max_connections = usize::try_from(args.max_connections)
        .map_err(|_| Error::config("--max-connections is too large"))?;
    let agent = Agent::builder(secrets, token)
        .listen(listen)
        .allow_non_loopback(args.allow_non_loopback)
        .max_connections(max_connections)
        .metrics(metrics)
        .bind()
        .await?;
    let slot = agent.secrets();
    let reloader = tokio::spawn(reload_on_hangup(Arc::clone(&global), slot.clone()));
    let result = agent.serve(stop_signal()).await;
    reloader.abort();
    slot.current().flush_audit();
    tracing::info!("agent stopped");
    result
}

/// The configuration `serve` runs on: `--config FILE` (or `STRONGROOM_CONFIG`) whole, or
/// else the cache, audit and mirror settings of the environment as `Secrets::from_env`
/// reads them; the store is the one the global options name, as for every command.
fn config(global: &Global) -> Result<Config, Error> {
    let mut config = match &global.config {
        Some(file) => Config::from_toml_file(file)?,
        // The backend comes from the command line below, so the environment's backend
        // settings are not needed here (`env` needs no store to parse).
        None => Config::from_env_with(|name| match name {
            CONFIG_VAR => None,
            "STRONGROOM_BACKEND" => Some("env".to_owned()),
            _ => std::env::var(name).ok(),
        })?,
    };
    config.backend = store::backend_config(global)?;
    Ok(config)
}

/// Builds the `Secrets` (opening a store can block: files, key derivation).
async fn load(global: &Arc<Global>) -> Result<Secrets, Error> {
    let global = Arc::clone(global);
    tokio::task::spawn_blocking(move || Secrets::from_config(&config(&global)?))
        .await
        .map_err(|e| Error::backend("cli", "opening the store failed", e))?
}

/// Rebuilds the `Secrets` on every SIGHUP; a failed reload is logged and changes nothing.
async fn reload_on_hangup(global: Arc<Global>, slot: SecretsSlot) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(err) => {
                tracing::warn!(error = %err, "cannot watch SIGHUP: no configuration reloads");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            match load(&global).await {
                Ok(secrets) => {
                    let backend = secrets.backend();
                    slot.replace(secrets).flush_audit();
                    tracing::info!(backend, "configuration reloaded");
                }
                Err(err) => tracing::error!(
                    error = %err,
                    "configuration reload failed: still serving the previous one"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (global, slot);
        std::future::pending::<()>().await;
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: draining"),
                    _ = int.recv() => tracing::info!("SIGINT: draining"),
                }
            }
            _ => {
                tracing::warn!("cannot watch SIGTERM/SIGINT: stop with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Logs to stderr at the level `STRONGROOM_LOG` names (default `info`, which includes one
/// audit line per read: names, never values).
fn start_logging() -> Result<(), Error> {
    let level = match std::env::var(LOG_VAR) {
        Ok(text) if !text.is_empty() => text.parse::<tracing::Level>().map_err(|_| {
            Error::config(format!(
                "{LOG_VAR}={text:?}: expected error, warn, info, debug or trace"
            ))
        })?,
        _ => tracing::Level::INFO,
    };
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| Error::backend("cli", "cannot start logging", e))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::args::{Cli, Command};

    #[test]
    fn serve_takes_its_options_and_the_global_ones() {
        let cli = Cli::try_parse_from([
            "strongroom",
            "serve",
            "--listen",
            "unix:/run/s.sock",
            "--max-connections",
            "5",
            "--config",
            "/etc/strongroom.toml",
        ])
        .unwrap();
        let Command::Serve(serve) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(serve.listen, "unix:/run/s.sock");
        assert_eq!(serve.max_connections, 5);
        assert!(!serve.allow_non_loopback);
        assert!(cli.global.config.is_some());
        assert!(Cli::try_parse_from(["strongroom", "serve", "--max-connections", "0"]).is_err());
    }
}
