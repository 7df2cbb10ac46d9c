//! [`Subscription`]: the changes to one key.

use strongroom_cache::Change;
use strongroom_core::SecretName;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

/// The changes to one key, from [`Secrets::subscribe`](crate::Secrets::subscribe).
///
/// A change carries the key and versions, never the value: read the secret again to get it.
#[derive(Debug)]
pub struct Subscription {
    key: SecretName,
    receiver: broadcast::Receiver<Change>,
}

impl Subscription {
    pub(crate) fn new(key: SecretName, receiver: broadcast::Receiver<Change>) -> Self {
        Self { key, receiver }
    }

    /// The key watched.
    pub fn key(&self) -> &SecretName {
        &self.key
    }

    /// The next change to the key.
    ///
    /// # Errors
    /// [`RecvError::Lagged`] when this subscriber fell so far behind that changes were lost
    /// (re-read the secret, then keep receiving); [`RecvError::Closed`] when every
    /// `Secrets` is gone.
    pub async fn recv(&mut self) -> Result<Change, RecvError> {
        loop {
            let change = self.receiver.recv().await?;
            if change.key == self.key {
                return Ok(change);
            }
        }
    }

    /// The next change already received, without waiting.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] when there is none yet; otherwise as [`recv`](Self::recv).
    pub fn try_recv(&mut self) -> Result<Change, TryRecvError> {
        loop {
            let change = self.receiver.try_recv()?;
            if change.key == self.key {
                return Ok(change);
            }
        }
    }
}
