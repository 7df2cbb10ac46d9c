//! Rotation: the [`Generator`] of new values, the [`RotationPolicy`] that says when a key is
//! due (by age or on a [`CronSchedule`]), and the [`RotationHandle`] that follows one.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use strongroom_core::{Error, PutOptions, Secret, SecretName, SecretStore, SecretValue, VersionId};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use crate::Secrets;

/// How many random bytes [`Generator::default`] draws.
pub const DEFAULT_ROTATION_BYTES: usize = 32;

/// The most random bytes or password characters a [`Generator`] makes at once.
pub const MAX_GENERATED_LEN: usize = 65_536;

/// The alphabet of [`Generator::password`] when none is given: letters and digits.
pub const DEFAULT_PASSWORD_ALPHABET: &str =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

type Custom = dyn Fn() -> Result<SecretValue, Error> + Send + Sync;

/// Where a rotated secret's new value comes from.
#[derive(Clone)]
#[non_exhaustive]
pub enum Generator {
    /// `bytes` random bytes from the system's secure generator (ring), standard base64.
    Random {
        /// How many bytes.
        bytes: usize,
    },
    /// `bytes` random bytes as they are (a binary value).
    RawBytes {
        /// How many bytes.
        bytes: usize,
    },
    /// `bytes` random bytes, lowercase hex (twice as many characters).
    Hex {
        /// How many bytes.
        bytes: usize,
    },
    /// `length` characters drawn uniformly from `alphabet` (see [`Generator::password`]).
    Password {
        /// The distinct characters to draw from.
        alphabet: Arc<[char]>,
        /// How many characters.
        length: usize,
    },
    /// The caller's function (a password with a policy, a key pair, a new database user).
    Custom(Arc<Custom>),
}

impl Generator {
    /// `bytes` random bytes, base64-encoded.
    pub fn random(bytes: usize) -> Self {
        Self::Random { bytes }
    }

    /// `bytes` random bytes, unencoded.
    pub fn raw_bytes(bytes: usize) -> Self {
        Self::RawBytes { bytes }
    }

    /// `bytes` random bytes, lowercase hex.
    pub fn hex(bytes: usize) -> Self {
        Self::Hex { bytes }
    }

    /// `length` characters drawn uniformly (rejection sampling, no modulo bias) from the
    /// distinct characters of `alphabet`.
    ///
    /// # Errors
    /// [`Error::Config`] when the alphabet has fewer than 2 or more than 256 distinct
    /// characters, or `length` is 0 or over [`MAX_GENERATED_LEN`].
    pub fn password(alphabet: &str, length: usize) -> Result<Self, Error> {
        let mut chars: Vec<char> = alphabet.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        if !(2..=256).contains(&chars.len()) {
            return Err(Error::config(format!(
                "a password alphabet needs 2 to 256 distinct characters, not {}",
                chars.len()
            )));
        }
        if !(1..=MAX_GENERATED_LEN).contains(&length) {
            return Err(Error::config(format!(
                "a password length must be 1 to {MAX_GENERATED_LEN}, not {length}"
            )));
        }
        Ok(Self::Password {
            alphabet: chars.into(),
            length,
        })
    }

    /// Values from `generate`.
    pub fn custom(
        generate: impl Fn() -> Result<SecretValue, Error> + Send + Sync + 'static,
    ) -> Self {
        Self::Custom(Arc::new(generate))
    }

    /// A new value.
    ///
    /// # Errors
    /// [`Error::Backend`] when the system's random generator fails; the custom function's
    /// error.
    /// [`Error::Config`] when a length is over [`MAX_GENERATED_LEN`].
    pub fn generate(&self) -> Result<SecretValue, Error> {
        match self {
            Self::Random { bytes } => {
                let raw = random_bytes(*bytes)?;
                let encoded = base64::engine::general_purpose::STANDARD.encode(&*raw);
                Ok(SecretValue::from(encoded))
            }
            Self::RawBytes { bytes } => Ok(SecretValue::from(random_bytes(*bytes)?)),
            Self::Hex { bytes } => {
                let raw = random_bytes(*bytes)?;
                let mut hex = Zeroizing::new(String::with_capacity(raw.len() * 2));
                for byte in raw.iter() {
                    for nibble in [byte >> 4, byte & 0x0f] {
                        hex.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                    }
                }
                Ok(SecretValue::from(std::mem::take(&mut *hex)))
            }
            Self::Password { alphabet, length } => password(alphabet, *length),
            Self::Custom(generate) => generate(),
        }
    }
}

/// `len` bytes from the system's secure generator.
fn random_bytes(len: usize) -> Result<Zeroizing<Vec<u8>>, Error> {
    if len > MAX_GENERATED_LEN {
        return Err(Error::config(format!(
            "a rotation generator makes at most {MAX_GENERATED_LEN} bytes, not {len}"
        )));
    }
    let mut raw = Zeroizing::new(vec![0u8; len]);
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| Error::Backend {
            backend: "rotation",
            message: "the system random generator failed".into(),
            source: None,
        })?;
    Ok(raw)
}

/// `length` characters from `alphabet` (2 to 256 entries): each random byte is kept only
/// when below the largest multiple of the alphabet's size, so every character is equally
/// likely.
fn password(alphabet: &[char], length: usize) -> Result<SecretValue, Error> {
    let size = alphabet.len();
    if !(2..=256).contains(&size) || length > MAX_GENERATED_LEN {
        return Err(Error::config(
            "a password generator needs 2 to 256 characters and a length within the limit",
        ));
    }
    let limit = 256 - 256 % size;
    let mut out = Zeroizing::new(String::with_capacity(length));
    let mut produced = 0;
    while produced < length {
        for byte in random_bytes(length.max(16))?.iter() {
            let byte = usize::from(*byte);
            if byte < limit && produced < length {
                out.push(alphabet[byte % size]);
                produced += 1;
            }
        }
    }
    Ok(SecretValue::from(std::mem::take(&mut *out)))
}

impl Default for Generator {
    /// [`DEFAULT_ROTATION_BYTES`] random bytes, base64-encoded.
    fn default() -> Self {
        Self::random(DEFAULT_ROTATION_BYTES)
    }
}

impl fmt::Debug for Generator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Random { bytes } => f.debug_struct("Random").field("bytes", bytes).finish(),
            Self::RawBytes { bytes } => f.debug_struct("RawBytes").field("bytes", bytes).finish(),
            Self::Hex { bytes } => f.debug_struct("Hex").field("bytes", bytes).finish(),
            Self::Password { alphabet, length } => f
                .debug_struct("Password")
                .field("alphabet_len", &alphabet.len())
                .field("length", length)
                .finish(),
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// A running rotation schedule, from [`Secrets::start_rotation`] (or the older
/// [`Secrets::rotate_every`]). Dropping it (or
/// [`stop`](Self::stop)) ends the schedule; a rotation already under way completes first, so
/// a write is never cut off halfway.
#[derive(Debug)]
pub struct RotationHandle {
    key: SecretName,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RotationHandle {
    pub(crate) fn start(
        secrets: Secrets,
        key: SecretName,
        interval: Duration,
        generator: Generator,
    ) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task_key = key.clone();
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now() + interval;
            let mut ticks = tokio::time::interval_at(start, interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    _ = stopped.changed() => break,
                    _ = ticks.tick() => {}
                }
                if *stopped.borrow() {
                    break;
                }
                // Failures are audited by rotate_with itself; the schedule goes on.
                if let Err(err) = secrets.rotate_with(&task_key, &generator).await {
                    tracing::warn!(key = %task_key, error = %err, "scheduled rotation failed");
                }
            }
        });
        Self {
            key,
            stop,
            task: Some(task),
        }
    }

    /// Follows `policy`: looks at the store now, then again when the current version falls
    /// due (at most [`MAX_CHECK_INTERVAL`] later, [`RETRY_AFTER_FAILURE`] after a failure).
    pub(crate) fn follow(secrets: Secrets, policy: RotationPolicy) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let key = policy.key().clone();
        let task = tokio::spawn(async move {
            loop {
                let wait = match secrets.rotate_if_due(&policy).await {
                    Ok(RotationOutcome::NotDue { next_due, .. }) => next_due
                        .duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO),
                    Ok(outcome) => {
                        tracing::info!(policy = policy.name(), key = %policy.key(), version = %outcome.version(), rotated_here = outcome.rotated(), "rotation policy applied");
                        // The version now current is about this old: next due one age (or
                        // the next scheduled instant) from now; the cap below re-checks sooner.
                        let now = SystemTime::now();
                        policy
                            .due_at(now)
                            .duration_since(now)
                            .unwrap_or(Duration::ZERO)
                    }
                    Err(err) => {
                        tracing::warn!(policy = policy.name(), key = %policy.key(), error = %err, "rotation policy check failed");
                        RETRY_AFTER_FAILURE
                    }
                };
                // A floor keeps a zero age from spinning; the cap notices clock steps.
                let wait = wait.clamp(MIN_CHECK_INTERVAL, MAX_CHECK_INTERVAL);
                tokio::select! {
                    biased;
                    _ = stopped.changed() => break,
                    () = tokio::time::sleep(wait) => {}
                }
                if *stopped.borrow() {
                    break;
                }
            }
        });
        Self {
            key,
            stop,
            task: Some(task),
        }
    }

    /// The key being rotated.
    pub fn key(&self) -> &SecretName {
        &self.key
    }

    /// Ends the schedule and waits for a rotation under way to finish.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RotationHandle {
    fn drop(&mut self) {
        // The task sees this at its next wake-up; an in-flight rotation completes first.
        let _ = self.stop.send(true);
    }
}

/// How long a [`RotationHandle`] of a policy sleeps at most between two looks at the store,
/// so a clock step, or a rotation by another process, is noticed within this time.
pub const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// How long a [`RotationHandle`] of a policy sleeps at least between two looks.
pub const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// How long a [`RotationHandle`] waits before looking again after a failed check.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// Parses a rotation age: a humantime duration (`90d`, `12h`, `1w`) or whole seconds.
///
/// # Errors
/// [`Error::Config`] when it is neither, or is zero.
pub fn parse_age(text: &str) -> Result<Duration, Error> {
    let text = text.trim();
    let age = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(text).map_err(|e| {
            Error::config(format!(
                "the rotation age {text:?} is not a duration ({e}): write e.g. \"90d\", \"12h\" or whole seconds"
            ))
        })?,
    };
    if age.is_zero() {
        return Err(Error::config(
            "a rotation age must be more than zero (it would rotate on every check)",
        ));
    }
    Ok(age)
}

/// A point far in the future that stands for "never" when a due time overflows.
fn far_future() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 64)
}

/// The longest cron expression accepted (far more than any real one needs).
const MAX_CRON_LEN: usize = 256;

/// A cron schedule in UTC: five fields, `minute hour day-of-month month day-of-week`
/// (`0 3 * * 1` is Mondays at 03:00 UTC), parsed and searched by the `cron-parser` crate.
///
/// Fields take numbers, `*`, lists (`1,15`), ranges (`1-5`) and steps (`*/15`, `0-30/10`);
/// day-of-week is `0`-`6` (Sunday is `0`) or `Sun`-`Sat`. The shorthands `@hourly`,
/// `@daily` (`@midnight`), `@weekly`, `@monthly` and `@yearly` (`@annually`) stand for
/// their usual five fields. Times are UTC, so there is no daylight-saving gap or repeat.
///
/// An expression that restricts both day-of-month and day-of-week (`0 0 1 * 1`) is refused:
/// Vixie cron runs it on either day, other crons only on days that are both, and a rotation
/// schedule should not depend on which reading its author had in mind. Write one of the two
/// as `*`.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use strongroom_facade::CronSchedule;
///
/// let mondays: CronSchedule = "0 3 * * 1".parse()?;
/// // 2026-12-02 is a Wednesday; the next Monday 03:00 UTC is 2026-12-07.
/// let wednesday = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_212_800);
/// let next = mondays.next_after(wednesday).unwrap();
/// assert_eq!(next, SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_612_400));
/// assert!("0 0 1 * 1".parse::<CronSchedule>().is_err());
/// # Ok::<(), strongroom_core::Error>(())
/// ```
#[derive(Clone)]
pub struct CronSchedule {
    text: Arc<str>,
    schedule: Arc<cron_parser::Schedule>,
}

impl CronSchedule {
    /// Parses a five-field expression (or an `@` shorthand) in UTC.
    ///
    /// # Errors
    /// [`Error::Config`] saying what is wrong: the number of fields, a value out of range,
    /// a schedule no calendar date matches, both day fields restricted.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let wrong = |what: &dyn fmt::Display| {
            Error::config(format!("the cron schedule {text:?} is not valid: {what}"))
        };
        if text.len() > MAX_CRON_LEN {
            return Err(Error::config(format!(
                "a cron schedule has at most {MAX_CRON_LEN} characters, not {}",
                text.len()
            )));
        }
        let expanded = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(wrong(
                    &"the shorthands are @hourly, @daily, @midnight, @weekly, @monthly, @yearly and @annually",
                ));
            }
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.contains(&"?") {
            return Err(wrong(
                &"? is Quartz's \"no specific value\", not cron's: write * instead",
            ));
        }
        if let [_, _, day_of_month, _, day_of_week] = fields[..]
            && !day_of_month.starts_with('*')
            && !day_of_week.starts_with('*')
        {
            return Err(wrong(&format_args!(
                "day-of-month ({day_of_month}) and day-of-week ({day_of_week}) are both \
                 restricted, which crons read differently (either day, or both): write one \
                 of them as *"
            )));
        }
        let schedule = cron_parser::Schedule::parse(expanded).map_err(|e| {
            wrong(&format_args!(
                "{e} (five fields in UTC: minute hour day-of-month month day-of-week, \
                 e.g. \"0 3 * * 1\")"
            ))
        })?;
        Ok(Self {
            text: text.into(),
            schedule: Arc::new(schedule),
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first scheduled instant strictly after `after`; `None` when there is none that a
    /// calendar can represent. A time before 1970 counts as 1970-01-01.
    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        let since_epoch = after
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let after = chrono::DateTime::from_timestamp(
            i64::try_from(since_epoch.as_secs()).ok()?,
            since_epoch.subsec_nanos(),
        )?;
        let next = self.schedule.next_after(&after)?;
        let secs = u64::try_from(next.timestamp()).ok()?;
        SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, next.timestamp_subsec_nanos()))
    }
}

impl FromStr for CronSchedule {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        Self::parse(text)
    }
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronSchedule").field(&self.text).finish()
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for CronSchedule {}

/// When a [`RotationPolicy`]'s key falls due, measured from the creation time of its current
/// version (the store's, not a process's).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationSchedule {
    /// Due once the current version is older than this.
    OlderThan(Duration),
    /// Due once an instant of this schedule has passed since the current version was
    /// created: a version written at 02:59 is due at 03:00 on `0 3 * * *`, one written at
    /// 03:00:05 (by that rotation) at 03:00 the next day.
    Cron(CronSchedule),
}

impl RotationSchedule {
    /// When a version created at `created` is due (saturating far in the future).
    pub fn due_at(&self, created: SystemTime) -> SystemTime {
        match self {
            Self::OlderThan(age) => created.checked_add(*age),
            Self::Cron(cron) => cron.next_after(created),
        }
        .unwrap_or_else(far_future)
    }
}

impl fmt::Display for RotationSchedule {
    /// `every 90days` or `cron 0 3 * * 1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OlderThan(age) => write!(f, "every {}", humantime::format_duration(*age)),
            Self::Cron(cron) => write!(f, "cron {cron}"),
        }
    }
}

/// "Rotate `key` when its current version is older than `max_age`", or "... when an instant
/// of a cron schedule has passed since its current version was created".
///
/// The age is the store's: the creation time of the current version
/// ([`Secret::created`](strongroom_core::Secret::created)), not the time a process started.
/// So a restart neither resets nor repeats a rotation, and several processes holding the
/// same policy rotate once: the write is a check-and-set on the version they saw
/// ([`PutOptions::if_version`]); the processes that lose the race read the winner's version
/// and leave it alone.
///
/// ```
/// use std::time::Duration;
/// use strongroom_facade::{Generator, RotationPolicy};
///
/// let policy = RotationPolicy::older_than(
///     "app/api-key".parse()?,
///     Duration::from_secs(90 * 24 * 3600),
/// )
/// .generator(Generator::hex(32))
/// .named("api-key-quarterly");
/// assert_eq!(policy.name(), "api-key-quarterly");
///
/// // Mondays at 03:00 UTC.
/// let weekly = RotationPolicy::cron("app/token".parse()?, "0 3 * * 1")?;
/// assert_eq!(weekly.max_age(), None);
/// # Ok::<(), strongroom_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RotationPolicy {
    name: Option<String>,
    key: SecretName,
    schedule: RotationSchedule,
    generator: Generator,
}

impl RotationPolicy {
    /// Rotate `key` with the default generator once its current version is older than
    /// `max_age`. A key that does not exist yet is due at once (its first value is written
    /// with [`PutOptions::if_absent`]).
    pub fn older_than(key: SecretName, max_age: Duration) -> Self {
        Self::on_schedule(key, RotationSchedule::OlderThan(max_age))
    }

    /// Rotate `key` with the default generator once an instant of the cron schedule
    /// `expression` (UTC; see [`CronSchedule`]) has passed since its current version was
    /// created. A key that does not exist yet is due at once.
    ///
    /// # Errors
    /// [`Error::Config`] when the expression is not valid.
    pub fn cron(key: SecretName, expression: &str) -> Result<Self, Error> {
        Ok(Self::on_schedule(
            key,
            RotationSchedule::Cron(CronSchedule::parse(expression)?),
        ))
    }

    /// Rotate `key` with the default generator when `schedule` says.
    pub fn on_schedule(key: SecretName, schedule: RotationSchedule) -> Self {
        Self {
            name: None,
            key,
            schedule,
            generator: Generator::default(),
        }
    }

    /// New values come from `generator`.
    #[must_use]
    pub fn generator(mut self, generator: Generator) -> Self {
        self.generator = generator;
        self
    }

    /// The name audit lines and logs give this policy (default: the key).
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The policy's name: the one given to [`named`](Self::named), else the key.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.key.as_str())
    }

    /// The key rotated.
    pub fn key(&self) -> &SecretName {
        &self.key
    }

    /// When the key falls due.
    pub fn schedule(&self) -> &RotationSchedule {
        &self.schedule
    }

    /// The age at which the current version is due; `None` for a cron schedule.
    pub fn max_age(&self) -> Option<Duration> {
        match &self.schedule {
            RotationSchedule::OlderThan(age) => Some(*age),
            RotationSchedule::Cron(_) => None,
        }
    }

    /// Where new values come from.
    pub fn value_generator(&self) -> &Generator {
        &self.generator
    }

    /// When a version created at `created` is due (saturating far in the future).
    pub fn due_at(&self, created: SystemTime) -> SystemTime {
        self.schedule.due_at(created)
    }

    /// Whether a version created at `created` is due at `now`.
    pub fn is_due(&self, created: SystemTime, now: SystemTime) -> bool {
        self.due_at(created) <= now
    }

    /// Decides from a fresh read of the key whether it is due at `now`.
    ///
    /// # Errors
    /// The read's error other than `NotFound`; [`Error::Unsupported`] when the backend did
    /// not say when the current version was created (the policy cannot be followed).
    pub(crate) fn check(
        &self,
        current: Result<Secret, Error>,
        backend: &'static str,
        now: SystemTime,
    ) -> Result<Check, Error> {
        let secret = match current {
            Ok(secret) => secret,
            Err(err) if err.is_not_found() => return Ok(Check::Missing),
            Err(err) => return Err(err),
        };
        let Some(created) = secret.created else {
            return Err(Error::Unsupported {
                backend,
                operation: match self.schedule {
                    RotationSchedule::OlderThan(_) => {
                        "rotation by age (the backend gives no creation time)"
                    }
                    RotationSchedule::Cron(_) => {
                        "rotation on a cron schedule (the backend gives no creation time)"
                    }
                },
            });
        };
        let next_due = self.due_at(created);
        if next_due <= now {
            Ok(Check::Due(secret.version))
        } else {
            Ok(Check::NotDue {
                version: secret.version,
                next_due,
            })
        }
    }
}

/// What a fresh read says about a policy's key.
#[derive(Debug)]
pub(crate) enum Check {
    /// The key does not exist: write its first value.
    Missing,
    /// The current version, which is due.
    Due(VersionId),
    /// The current version and when it will be due.
    NotDue {
        version: VersionId,
        next_due: SystemTime,
    },
}

impl Check {
    /// The write that makes the rotation a check-and-set on what was seen, or the outcome
    /// when nothing is due.
    pub(crate) fn into_write(self) -> Result<PutOptions, RotationOutcome> {
        match self {
            Self::Missing => Ok(PutOptions::default().if_absent()),
            Self::Due(version) => Ok(PutOptions::default().if_version(version)),
            Self::NotDue { version, next_due } => {
                Err(RotationOutcome::NotDue { version, next_due })
            }
        }
    }
}

/// What [`Secrets::rotate_if_due`] (or [`rotate_if_due`]) did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationOutcome {
    /// The current version is not due yet (younger than the policy's age, or no scheduled
    /// instant since it was created); nothing was written.
    NotDue {
        /// The current version.
        version: VersionId,
        /// When it will be due.
        next_due: SystemTime,
    },
    /// This call wrote the new version.
    Rotated {
        /// The new version.
        version: VersionId,
    },
    /// The key was due, but another writer (another process of the fleet) changed it first;
    /// this call wrote nothing and `version` is the winner's.
    RotatedElsewhere {
        /// The version now current.
        version: VersionId,
    },
}

impl RotationOutcome {
    /// The version current after the call.
    pub fn version(&self) -> &VersionId {
        match self {
            Self::NotDue { version, .. }
            | Self::Rotated { version }
            | Self::RotatedElsewhere { version } => version,
        }
    }

    /// Whether this call wrote a new version.
    pub fn rotated(&self) -> bool {
        matches!(self, Self::Rotated { .. })
    }
}

/// Applies `policy` to a plain store (no cache, audit or notifications; a [`Secrets`] has
/// [`Secrets::rotate_if_due`] for that): reads the key, and when it is due writes a new
/// value with a check-and-set on the version read.
///
/// # Errors
/// The read's or write's error (a lost race is not one: it is
/// [`RotationOutcome::RotatedElsewhere`]); [`Error::Unsupported`] when the store gives no
/// creation time or has no conditional writes.
pub async fn rotate_if_due(
    store: &dyn SecretStore,
    policy: &RotationPolicy,
) -> Result<RotationOutcome, Error> {
    let check = policy.check(
        store.get(policy.key()).await,
        store.backend(),
        SystemTime::now(),
    )?;
    let options = match check.into_write() {
        Ok(options) => options,
        Err(not_due) => return Ok(not_due),
    };
    let value = policy.generator.generate()?;
    match store.put_with(policy.key(), value, &options).await {
        Ok(version) => Ok(RotationOutcome::Rotated { version }),
        Err(Error::Conflict { .. }) => Ok(RotationOutcome::RotatedElsewhere {
            version: store.get(policy.key()).await?.version,
        }),
        Err(err) => Err(err),
    }
}
