//! Test support for stores and for code that uses them (the `testing` feature).
//!
//! - [`MemoryStore`]: an in-memory store that keeps the whole [`SecretStore`](crate::SecretStore)
//!   contract (versions, check-and-set, soft delete, undelete, purge, metadata), with a
//!   [`Hook`] to count, fail or hold its calls. Test a wrapper over it rather than over a
//!   store of your own.
//! - [`conformance`]: the contract as async checks. A new backend runs them against itself
//!   (and against a real server in its integration tests) to show it behaves like every
//!   other store.
//!
//! Enable it for tests only:
//!
//! ```toml
//! [dev-dependencies]
//! strongroom-core = { version = "0.1", features = ["testing"] }
//! ```

pub mod conformance;
mod memory;

pub use memory::{Hook, MemoryStore, Operation};
