//! Crash-state exploration of the file store (issue #21).
//!
//! Each scenario (`store.rs`) runs real store operations (store creation, put, put with
//! check-and-set, delete, undelete, purge, version pruning, rekey, key-slot add and remove,
//! and the mirror's writes) on a [`FileStore`](crate::FileStore) whose file operations are
//! recorded (`recording.rs`). For every point of the recorded sequence, [`model`] builds
//! every state a crash there could leave on disk, under the strict POSIX model and under
//! ext4 `data=ordered`; each distinct state is written to a temporary directory and opened
//! by the real store code with every key of the scenario. What it finds must be exactly
//! what the store held after the last acknowledged operation or after the one in flight:
//! never a torn or undecryptable file, never a lost acknowledged put.
//!
//! `broken.rs` holds write paths with the classic mistakes (no directory fsync, writing in
//! place, renaming before the data is fsynced); the tests show each is reported.
//!
//! `cargo test` runs the bounded form; `STRONGROOM_CRASH_EXPLORE=full` (what
//! `cargo xtask crash --explore` sets) explores larger files with a higher cap, and prints
//! the report docs/reliability.md quotes (the broken paths stay bounded: they only have to
//! be caught).
//!
//! Only [`model`] exists outside this crate's tests, behind the hidden `crash-model`
//! feature: it is pure (an operation log in, file contents out), so the facade's tests use
//! it for the audit log's crash states (crates/facade/src/audit/crash.rs) without the
//! library's file operations changing under any feature.

pub mod model;

#[cfg(test)]
pub(crate) mod broken;
#[cfg(test)]
pub(crate) mod recording;
#[cfg(test)]
mod store;

#[cfg(test)]
pub(crate) use store::Variant;
