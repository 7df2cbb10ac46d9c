//! [`ConfigError`]: a cache configuration that cannot work.

/// Why [`CacheConfigBuilder::build`](crate::CacheConfigBuilder::build) refused a setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TTL is zero: nothing would ever be served from the cache.
    #[error("cache ttl must be greater than zero")]
    ZeroTtl,
    /// The bound is zero entries or zero bytes: nothing could be cached.
    #[error("cache bound must be greater than zero ({what})")]
    ZeroBound {
        /// `max_entries` or `max_bytes`.
        what: &'static str,
    },
    /// The refresh-ahead fraction is not strictly between 0 and 1.
    #[error("refresh_ahead must be a fraction of the ttl strictly between 0 and 1, got {fraction}")]
    RefreshFraction {
        /// The refused fraction.
        fraction: f64,
    },
    /// The negative-caching TTL is zero (leave it unset to turn negative caching off).
    #[error("negative_ttl must be greater than zero; leave it unset to disable negative caching")]
    ZeroNegativeTtl,
    /// A duration that must be more than zero is zero.
    #[error("{what} must be greater than zero")]
    ZeroDuration {
        /// Which setting.
        what: &'static str,
    },
}

impl From<ConfigError> for strongroom_core::Error {
    fn from(err: ConfigError) -> Self {
        Self::config(err.to_string())
    }
}
