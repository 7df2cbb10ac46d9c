//! Single flight: one backend load per slot at a time, its result handed to every reader
//! that waited for it, errors included.
//!
//! quick_cache's own `get_value_or_guard_async` coalesces misses, but it does not fit here:
//! an expired entry is still resident, so it hands out the old value instead of a guard, and
//! a guard dropped after a failed load wakes the waiters one by one to retry, which is N
//! backend calls for N readers when the backend is failing. A [`Flight`] instead holds the
//! load's [`Outcome`] in a `tokio::sync::OnceCell` that every reader of the slot awaits; if the
//! reader running the load is cancelled, the next waiter runs it (the cell allows that).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use strongroom_core::{Error, Secret};
use tokio::sync::OnceCell;

/// One load in progress (or just finished) for one slot.
#[derive(Default)]
pub(crate) struct Flight {
    pub(crate) outcome: OnceCell<Outcome>,
    /// Set by an invalidation that raced the load: its result is still handed to the readers
    /// that were waiting (they started before the write finished) but is not cached.
    invalidated: AtomicBool,
}

impl Flight {
    pub(crate) fn invalidate(&self) {
        self.invalidated.store(true, Ordering::Release);
    }

    pub(crate) fn is_invalidated(&self) -> bool {
        self.invalidated.load(Ordering::Acquire)
    }
}

/// What one load produced, for all its readers.
pub(crate) enum Outcome {
    /// The backend answered with the secret.
    Loaded(Secret),
    /// The backend was unavailable; this expired value was within `max_stale`.
    Stale(Secret),
    /// The backend failed, and no stale value could stand in.
    Failed(Arc<Error>),
}

/// A copy of a shared error for one reader: same variant and fields; a `Backend` error's
/// cause is kept, shared. `Error` is not `Clone` because of that boxed cause.
pub(crate) fn duplicate(err: &Arc<Error>) -> Error {
    match &**err {
        Error::NotFound {
            key,
            version,
            deleted,
        } => Error::NotFound {
            key: key.clone(),
            version: version.clone(),
            deleted: *deleted,
        },
        Error::InvalidKey { key, problem } => Error::InvalidKey {
            key: key.clone(),
            problem: *problem,
        },
        Error::InvalidValue { message } => Error::InvalidValue {
            message: message.clone(),
        },
        Error::Unauthenticated { backend, message } => Error::Unauthenticated {
            backend,
            message: message.clone(),
        },
        Error::PermissionDenied {
            backend,
            key,
            message,
        } => Error::PermissionDenied {
            backend,
            key: key.clone(),
            message: message.clone(),
        },
        Error::Conflict { key, message } => Error::Conflict {
            key: key.clone(),
            message: message.clone(),
        },
        Error::Unavailable {
            backend,
            message,
            retry_after,
        } => Error::Unavailable {
            backend,
            message: message.clone(),
            retry_after: *retry_after,
        },
        Error::Decrypt { what } => Error::Decrypt { what: what.clone() },
        Error::Config { message } => Error::Config {
            message: message.clone(),
        },
        Error::Unsupported { backend, operation } => Error::Unsupported { backend, operation },
        Error::Backend {
            backend,
            message,
            source,
        } => Error::Backend {
            backend,
            message: message.clone(),
            source: source.as_ref().map(|_| {
                Box::new(SharedCause {
                    error: Arc::clone(err),
                    whole: false,
                }) as _
            }),
        },
        // A variant added to core after this crate was written: keep its text and itself as
        // the cause, so nothing is lost but the variant.
        other => Error::Backend {
            backend: "cache",
            message: other.to_string(),
            source: Some(Box::new(SharedCause {
                error: Arc::clone(err),
                whole: true,
            })),
        },
    }
}

/// A shared error standing as the cause of a copy: either the whole error, or (for
/// `Backend`) the error's own cause, so that the copy's chain reads like the original's.
struct SharedCause {
    error: Arc<Error>,
    whole: bool,
}

impl SharedCause {
    fn target(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if self.whole {
            Some(&*self.error)
        } else {
            std::error::Error::source(&*self.error)
        }
    }
}

impl fmt::Debug for SharedCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.target() {
            Some(target) => fmt::Debug::fmt(target, f),
            None => f.write_str("SharedCause"),
        }
    }
}

impl fmt::Display for SharedCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.target() {
            Some(target) => fmt::Display::fmt(target, f),
            None => Ok(()),
        }
    }
}

impl std::error::Error for SharedCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.target().and_then(std::error::Error::source)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::time::Duration;

    use strongroom_core::{NameProblem, VersionId};

    use super::*;

    #[test]
    fn duplicates_keep_variant_fields_and_cause() {
        let io = std::io::Error::other("connection reset");
        let originals = vec![
            Error::NotFound {
                key: "a".into(),
                version: Some(VersionId::from(3)),
                deleted: true,
            },
            Error::invalid_key("a//b", NameProblem::EmptySegment),
            Error::InvalidValue {
                message: "m".into(),
            },
            Error::Unauthenticated {
                backend: "vault",
                message: "expired".into(),
            },
            Error::PermissionDenied {
                backend: "aws",
                key: Some("k".into()),
                message: "no".into(),
            },
            Error::Conflict {
                key: "k".into(),
                message: "cas".into(),
            },
            Error::Unavailable {
                backend: "vault",
                message: "sealed".into(),
                retry_after: Some(Duration::from_secs(3)),
            },
            Error::Decrypt { what: "f".into() },
            Error::config("c"),
            Error::unsupported("env", "put"),
            Error::backend("local", "read failed", io),
        ];
        for original in originals {
            let text = original.to_string();
            let kind = original.kind();
            let source = original.source().map(ToString::to_string);
            let shared = Arc::new(original);
            let copy = duplicate(&shared);
            assert_eq!(copy.to_string(), text);
            assert_eq!(copy.kind(), kind);
            assert_eq!(copy.source().map(ToString::to_string), source, "{text}");
        }
        let retry = duplicate(&Arc::new(Error::Unavailable {
            backend: "vault",
            message: "sealed".into(),
            retry_after: Some(Duration::from_secs(3)),
        }));
        assert!(matches!(
            retry,
            Error::Unavailable {
                retry_after: Some(d),
                ..
            } if d == Duration::from_secs(3)
        ));
    }
}
