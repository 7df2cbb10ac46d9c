//! Rotation: the [`Generator`] of new values and the [`RotationHandle`] of a schedule.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use strongroom_core::{Error, SecretName, SecretValue};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use crate::Secrets;

/// How many random bytes [`Generator::default`] draws.
pub const DEFAULT_ROTATION_BYTES: usize = 32;

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
    /// The caller's function (a password with a policy, a key pair, a new database user).
    Custom(Arc<Custom>),
}

impl Generator {
    /// `bytes` random bytes, base64-encoded.
    pub fn random(bytes: usize) -> Self {
        Self::Random { bytes }
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
    pub fn generate(&self) -> Result<SecretValue, Error> {
        match self {
            Self::Random { bytes } => {
                let mut raw = Zeroizing::new(vec![0u8; *bytes]);
                SystemRandom::new()
                    .fill(&mut raw)
                    .map_err(|_| Error::Backend {
                        backend: "rotation",
                        message: "the system random generator failed".into(),
                        source: None,
                    })?;
                let encoded = base64::engine::general_purpose::STANDARD.encode(&*raw);
                Ok(SecretValue::from(encoded))
            }
            Self::Custom(generate) => generate(),
        }
    }
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
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// A running rotation schedule, from [`Secrets::rotate_every`]. Dropping it (or
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
