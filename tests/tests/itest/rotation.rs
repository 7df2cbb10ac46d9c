//! Rotation policies by age (and on a cron schedule) across a fleet of processes, over
//! OpenBao's KV v2 and over Secrets Manager on moto: every process checks the same due key
//! at the same moment, and exactly one rotates (a check-and-set on the version it saw); the
//! others read the winner's version.
//!
//! The processes are this test binary started again, running only `fleet_member`, which
//! does nothing unless the variables below are set.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use strongroom_aws::{CreateSecret, DeleteMode, RotateSecret, RotationRules, SecretsManagerStore};
use strongroom_core::{SecretName, SecretStore};
use strongroom_facade::{RotationOutcome, RotationPolicy, Secrets};
use strongroom_itests::ItestEnv;
use strongroom_vault::{VaultClient, VaultStore};

use crate::{aws, raw};

const MEMBER_BACKEND: &str = "STRONGROOM_ITEST_ROTATION_BACKEND";
const MEMBER_KEY: &str = "STRONGROOM_ITEST_ROTATION_KEY";
const MEMBER_START: &str = "STRONGROOM_ITEST_ROTATION_START_MS";
const MEMBER_SCHEDULE: &str = "STRONGROOM_ITEST_ROTATION_SCHEDULE";

/// The age of the policy every member follows.
const AGE: Duration = Duration::from_secs(1);

/// The cron schedule of the policy every member follows in the cron race: every minute, so
/// the key is due at the first minute boundary after it was written.
const EVERY_MINUTE: &str = "* * * * *";

/// The policy of the fleet: by [`AGE`] (`schedule` "age") or on [`EVERY_MINUTE`] ("cron").
fn fleet_policy(key: SecretName, schedule: &str) -> RotationPolicy {
    match schedule {
        "age" => RotationPolicy::older_than(key, AGE),
        "cron" => RotationPolicy::cron(key, EVERY_MINUTE).unwrap(),
        other => panic!("no such fleet schedule {other:?}"),
    }
    .named("fleet")
}

/// How many processes race.
const FLEET: usize = 5;

fn store(env: &ItestEnv, backend: &str) -> Arc<dyn SecretStore> {
    match backend {
        "openbao" => {
            let client = VaultClient::builder()
                .address(&env.vault_addr)
                .token(env.vault_token.as_str())
                .build()
                .expect("vault client");
            Arc::new(VaultStore::new(&client, &env.vault_kv_mount).expect("vault store"))
        }
        "moto" => Arc::new(SecretsManagerStore::new(aws::moto(
            env,
            &env.moto_secret_access_key,
        ))),
        other => panic!("no such fleet backend {other:?}"),
    }
}

/// One member of a fleet; a no-op unless a fleet test started this process.
#[tokio::test]
#[allow(clippy::print_stdout)] // stdout is how a member reports to the fleet test
async fn fleet_member() {
    let (Ok(backend), Ok(key), Ok(start), Ok(schedule)) = (
        std::env::var(MEMBER_BACKEND),
        std::env::var(MEMBER_KEY),
        std::env::var(MEMBER_START),
        std::env::var(MEMBER_SCHEDULE),
    ) else {
        return;
    };
    let env = ItestEnv::load();
    let secrets = Secrets::builder()
        .store(store(&env, &backend))
        .build()
        .unwrap();
    let start = SystemTime::UNIX_EPOCH + Duration::from_millis(start.parse().unwrap());
    if let Ok(wait) = start.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    let policy = fleet_policy(SecretName::new(key).unwrap(), &schedule);
    let outcome = secrets.rotate_if_due(&policy).await.unwrap();
    let what = match outcome {
        RotationOutcome::Rotated { .. } => "rotated",
        RotationOutcome::RotatedElsewhere { .. } => "elsewhere",
        RotationOutcome::NotDue { .. } => "not-due",
        _ => "other",
    };
    println!("FLEET-OUTCOME {what} {}", outcome.version());
}

/// Writes a first version, starts [`FLEET`] members that follow the policy `schedule`
/// ("age" or "cron") and check it together once it is due, and returns their outcomes
/// ("rotated VERSION", "elsewhere VERSION", ...).
async fn race(backend: &str, schedule: &str) -> (SecretName, Vec<String>) {
    let env = ItestEnv::load();
    let key = SecretName::new(format!("rotation/{}", raw::unique(backend))).unwrap();
    let store = store(&env, backend);
    store.put(&key, "first".into()).await.unwrap();
    // Due by the server's creation time; the members start together 1.5 s after that.
    let created = store.get(&key).await.unwrap().created.unwrap();
    let due = fleet_policy(key.clone(), schedule).due_at(created);
    let start = due.max(SystemTime::now()) + Duration::from_millis(1500);
    let start_ms = start
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let exe = std::env::current_exe().unwrap();
    let members: Vec<_> = (0..FLEET)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "rotation::fleet_member",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(MEMBER_BACKEND, backend)
                .env(MEMBER_KEY, key.as_str())
                .env(MEMBER_START, &start_ms)
                .env(MEMBER_SCHEDULE, schedule)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut outcomes = Vec::new();
    for member in members {
        let output = tokio::task::spawn_blocking(move || member.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(output.status.success(), "a fleet member failed: {stdout}");
        let line = stdout
            .split("FLEET-OUTCOME ")
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .unwrap_or_else(|| panic!("no outcome in {stdout:?}"))
            .to_owned();
        outcomes.push(line);
    }
    let rotated = outcomes
        .iter()
        .filter(|o| o.starts_with("rotated "))
        .count();
    assert_eq!(rotated, 1, "exactly one member rotates: {outcomes:?}");
    let versions: Vec<&str> = outcomes
        .iter()
        .map(|o| o.split_once(' ').unwrap().1)
        .collect();
    assert!(versions.iter().all(|v| *v == versions[0]), "{outcomes:?}");
    let current = store.get(&key).await.unwrap();
    assert_eq!(current.version.as_str(), versions[0]);
    assert_ne!(current.value.expose_str().unwrap(), "first");
    (key, outcomes)
}

#[tokio::test]
async fn a_fleet_over_openbao_rotates_once() {
    let (key, _) = race("openbao", "age").await;
    let env = ItestEnv::load();
    let history = store(&env, "openbao").versions(&key).await.unwrap();
    assert_eq!(history.len(), 2, "one rotation in KV v2's history");
}

/// The same race on a cron schedule (every minute): due once the minute after the write
/// begins, by KV v2's `created_time`; one member rotates. Waits up to a minute.
#[tokio::test]
async fn a_fleet_over_openbao_rotates_once_on_a_cron_schedule() {
    // A member that checks after the winner sees a version from this minute: not due,
    // with the winner's version, which race() accepts.
    let (key, _) = race("openbao", "cron").await;
    let env = ItestEnv::load();
    let history = store(&env, "openbao").versions(&key).await.unwrap();
    assert_eq!(history.len(), 2, "one rotation in KV v2's history");
}

#[tokio::test]
async fn a_fleet_over_moto_secrets_manager_rotates_once() {
    let (key, _) = race("moto", "age").await;
    let env = ItestEnv::load();
    let store = store(&env, "moto");
    // A loser's version is written without stages before its move of AWSCURRENT is
    // refused, so the history may hold it; the current version is the one winner's.
    let history = store.versions(&key).await.unwrap();
    assert_eq!(history.iter().filter(|v| v.current).count(), 1);
    store.purge(&key).await.unwrap();
}

fn rotation_name(server: &str) -> String {
    format!("rotation/{}", raw::unique(server))
}

/// With rules and no function, RotateImmediately=false.
fn thirty_days_later() -> RotateSecret {
    RotateSecret::new()
        .rules(RotationRules::after_days(30))
        .rotate_immediately(false)
}

const MISSING_LAMBDA: &str = "arn:aws:lambda:us-east-1:123456789012:function:strongroom-missing";

/// moto: `create_secret_with_rotation` (CreateSecret + RotateSecret with RotationRules and
/// RotateImmediately=false) read back by DescribeSecret (RotationEnabled, RotationRules,
/// NextRotationDate); CancelRotateSecret refused without a function and accepted with
/// one; a rotation Lambda that does not exist refused.
#[tokio::test]
async fn secrets_manager_rotation_settings_on_moto() {
    let env = ItestEnv::load();
    let client = aws::moto(&env, &env.moto_secret_access_key);
    let name = rotation_name("moto");
    let before = SystemTime::now();
    client
        .create_secret_with_rotation(
            &CreateSecret::new(&name, "first".into()),
            &thirty_days_later(),
        )
        .await
        .unwrap();
    let described = client.describe_secret(&name).await.unwrap();
    assert!(described.rotation_enabled, "{described:?}");
    assert_eq!(
        described
            .rotation_rules
            .as_ref()
            .and_then(|r| r.automatically_after_days),
        Some(30)
    );
    let next = described.next_rotation.expect("NextRotationDate");
    let thirty_days = Duration::from_secs(30 * 86_400);
    assert!(
        next >= before + thirty_days - Duration::from_secs(3600)
            && next <= SystemTime::now() + thirty_days + Duration::from_secs(3600),
        "next rotation {next:?}"
    );

    let cancel = client.cancel_rotate_secret(&name).await.unwrap_err();
    assert_eq!(cancel.code(), Some("InvalidRequestException"), "{cancel}");

    let missing = client
        .rotate_secret(&name, &RotateSecret::new().lambda(MISSING_LAMBDA))
        .await
        .unwrap_err();
    assert_eq!(
        missing.code(),
        Some("ResourceNotFoundException"),
        "{missing}"
    );

    // moto keeps the ARN of the refused call (AWS does not), so cancelling now succeeds.
    client.cancel_rotate_secret(&name).await.unwrap();
    let cancelled = client.describe_secret(&name).await.unwrap();
    assert!(!cancelled.rotation_enabled, "{cancelled:?}");
    client
        .delete_secret(&name, DeleteMode::Force)
        .await
        .unwrap();
}

/// LocalStack: RotateSecret without a function is refused as AWS refuses it, so
/// `create_secret_with_rotation` leaves the secret created without rotation (DescribeSecret:
/// RotationEnabled false, no NextRotationDate); a missing Lambda is refused; there is then
/// nothing to cancel.
#[tokio::test]
async fn secrets_manager_rotation_settings_on_localstack() {
    let env = ItestEnv::load();
    let client = aws::localstack(&env);
    let name = rotation_name("localstack");
    let refused = client
        .create_secret_with_rotation(
            &CreateSecret::new(&name, "first".into()),
            &thirty_days_later(),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("InvalidRequestException"), "{refused}");
    let described = client.describe_secret(&name).await.unwrap();
    assert!(!described.rotation_enabled, "{described:?}");
    assert!(described.next_rotation.is_none(), "{described:?}");

    let missing = client
        .rotate_secret(&name, &RotateSecret::new().lambda(MISSING_LAMBDA))
        .await
        .unwrap_err();
    assert_eq!(
        missing.code(),
        Some("ResourceNotFoundException"),
        "{missing}"
    );
    // Unlike moto, the refused call left no function behind: there is nothing to cancel.
    let cancel = client.cancel_rotate_secret(&name).await.unwrap_err();
    assert_eq!(cancel.code(), Some("InvalidRequestException"), "{cancel}");
    client
        .delete_secret(&name, DeleteMode::Force)
        .await
        .unwrap();
}
