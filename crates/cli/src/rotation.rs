//! `rotate --if-older-than` and `rotation status`: rotation policies by the store's age or
//! on a cron schedule (strongroom-facade's [`RotationPolicy`]), applied once or shown.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use strongroom_core::{Error, SecretName, SecretStore};
use strongroom_facade::{
    Config, Generator, ROTATION_VAR, RotationOutcome, RotationPolicy, RotationSchedule,
    RotationSettings, rotate_if_due,
};

use crate::args::Global;
use crate::output::{Printer, rfc3339};
use crate::store;

/// `rotate --if-older-than AGE KEY`: rotates `key` only when its current version is older
/// than `age`, with a check-and-set on the version read (so of several callers racing, one
/// writes).
pub(crate) async fn rotate_if_older(
    global: &Global,
    key: SecretName,
    age: Duration,
    bytes: u16,
    out: &Printer,
) -> Result<(), Error> {
    let policy = RotationPolicy::older_than(key.clone(), age)
        .generator(Generator::random(usize::from(bytes)));
    let store = store::open(global)?;
    let outcome = rotate_if_due(&*store, &policy).await?;
    let (message, state, next_due) = match &outcome {
        RotationOutcome::Rotated { version } => (format!("{version}"), "rotated", None),
        RotationOutcome::RotatedElsewhere { version } => (
            format!("{version} (rotated by another writer just now)"),
            "rotated-elsewhere",
            None,
        ),
        RotationOutcome::NotDue { version, next_due } => (
            format!("{version} (not due until {})", rfc3339(*next_due)),
            "not-due",
            Some(rfc3339(*next_due)),
        ),
        _ => (outcome.version().to_string(), "other", None),
    };
    let mut fields = json!({
        "key": key.as_str(),
        "version": outcome.version().as_str(),
        "outcome": state,
    });
    if let Some(next_due) = next_due {
        fields["next_due"] = Value::String(next_due);
    }
    out.done(&message, fields)
}

/// `rotation status`: every policy of the configuration file's `[[rotation]]` tables (or,
/// without a file, of `STRONGROOM_ROTATION`), its key's current version and when it falls due.
pub(crate) async fn status(global: &Global, out: &Printer) -> Result<(), Error> {
    let policies = match (&global.config, std::env::var(ROTATION_VAR)) {
        (Some(file), _) => Config::from_toml_file(file)?.rotation_policies()?,
        (None, Ok(list)) if !list.trim().is_empty() => RotationSettings::parse_list(&list)?
            .iter()
            .map(RotationSettings::policy)
            .collect::<Result<_, _>>()?,
        (None, _) => {
            return Err(Error::config(format!(
                "rotation status reads the [[rotation]] tables of --config FILE (or \
                 STRONGROOM_CONFIG), or the policies of {ROTATION_VAR}"
            )));
        }
    };
    let store = store::open(global)?;
    let now = SystemTime::now();
    let mut lines = String::new();
    let mut rows = Vec::with_capacity(policies.len());
    for policy in &policies {
        let row = policy_status(&*store, policy, now).await?;
        lines.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            policy.name(),
            policy.key(),
            policy.schedule(),
            row["version"].as_str().unwrap_or("-"),
            match (row["due"].as_bool(), row["next_due"].as_str()) {
                (Some(true), _) => "due now".to_owned(),
                (_, Some(at)) => format!("due {at}"),
                _ => "-".to_owned(),
            }
        ));
        rows.push(row);
    }
    if policies.is_empty() {
        lines.push_str("no rotation policies in the configuration\n");
    }
    out.done(lines.trim_end(), json!({ "policies": rows }))
}

/// One policy's row: the current version, its creation time, when it is due.
async fn policy_status(
    store: &dyn SecretStore,
    policy: &RotationPolicy,
    now: SystemTime,
) -> Result<Value, Error> {
    let mut row = json!({
        "name": policy.name(),
        "key": policy.key().as_str(),
    });
    match policy.schedule() {
        RotationSchedule::OlderThan(age) => row["every_secs"] = json!(age.as_secs()),
        RotationSchedule::Cron(cron) => row["cron"] = json!(cron.as_str()),
        _ => {}
    }
    match store.get(policy.key()).await {
        Ok(secret) => {
            row["version"] = Value::String(secret.version.to_string());
            let Some(created) = secret.created else {
                return Err(Error::Unsupported {
                    backend: store.backend(),
                    operation: "rotation policies (the backend gives no creation time)",
                });
            };
            let due = policy.due_at(created);
            row["created"] = Value::String(rfc3339(created));
            row["next_due"] = Value::String(rfc3339(due));
            row["due"] = Value::Bool(due <= now);
        }
        Err(err) if err.is_not_found() => {
            row["version"] = Value::Null;
            row["due"] = Value::Bool(true);
        }
        Err(err) => return Err(err),
    }
    Ok(row)
}
