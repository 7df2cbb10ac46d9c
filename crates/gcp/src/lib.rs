//! Google Cloud Secret Manager for strongroom: [`GcpStore`] implements
//! [`SecretStore`](strongroom_core::SecretStore) on the Secret Manager v1 REST API, and
//! [`Credentials`] gets its access tokens the Google way. There is no Google SDK
//! underneath: requests go through `strongroom-http` (timeouts, bounded retries with
//! jitter, TLS by rustls), service-account JWTs are signed with ring.
//!
//! ```no_run
//! use strongroom_core::{SecretName, SecretStore, SecretValue};
//! use strongroom_gcp::{Credentials, GcpStore};
//!
//! # async fn demo() -> Result<(), strongroom_core::Error> {
//! // GOOGLE_CLOUD_PROJECT, credentials from GOOGLE_APPLICATION_CREDENTIALS, gcloud's
//! // application default credentials or the metadata server.
//! let store = GcpStore::from_env()?;
//! let key = SecretName::new("app/db/password")?;
//! let version = store.put(&key, SecretValue::from("hunter2")).await?;
//! assert_eq!(store.get(&key).await?.value.expose(), b"hunter2");
//!
//! // An emulator on this machine, no credentials, a store scoped to `myapp/`.
//! let local = GcpStore::builder()
//!     .project("test-project")
//!     .endpoint("http://127.0.0.1:8085")
//!     .credentials(Credentials::anonymous())
//!     .prefix("myapp")
//!     .build()?;
//! # drop((version, local)); Ok(()) }
//! ```
//!
//! # Configuration
//!
//! [`GcpStoreBuilder::from_env`] reads:
//!
//! | variable | meaning |
//! |---|---|
//! | `GOOGLE_CLOUD_PROJECT` (`GCLOUD_PROJECT`, `CLOUDSDK_CORE_PROJECT`) | the project |
//! | `STRONGROOM_GCP_ENDPOINT`, else `CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER` | the endpoint (plain `http` only to loopback) |
//! | `STRONGROOM_GCP_PREFIX` | the folder the store is scoped to |
//! | `STRONGROOM_GCP_REPLICATION` | `automatic`, or the locations of user-managed replication (`us-east1,us-west1`) |
//! | `GOOGLE_OAUTH_ACCESS_TOKEN` | a token given directly |
//! | `GOOGLE_APPLICATION_CREDENTIALS` | a service-account key or authorized-user file |
//! | `CLOUDSDK_CONFIG` | where gcloud's `application_default_credentials.json` is (else `~/.config/gcloud`) |
//! | `GOOGLE_CLOUD_QUOTA_PROJECT` | the project billed for quota (`x-goog-user-project`; else an authorized-user file's `quota_project_id`) |
//! | `GCE_METADATA_HOST` | the metadata server's `host[:port]` (else `169.254.169.254`) |
//!
//! # Names
//!
//! Secret ids allow only letters, digits, `-` and `_`. A name made of those alone (and not
//! starting with `__`) is its own id; `app/db/password` is `__app__db__password`; see
//! [the mapping](#secret-ids) below. A prefix is part of the name: under the prefix
//! `myapp`, the key `db` is the name `myapp/db`, the id `__myapp__db`.
//!
//! ## Secret ids
//!
//! 1. **Plain.** A name of only ASCII letters, digits, `-` and `_`, at most 255 bytes, not
//!    starting with `__`, is its own id.
//! 2. **Encoded.** Any other name is `__` followed by its bytes, where letters, digits and
//!    `-` stand for themselves, `/` is `__`, and every other byte (`_` too) is `_` and two
//!    upper-case hex digits: `my_app/key` is `__my_5Fapp__key`, `clé` is `__cl_C3_A9`.
//! 3. **Hashed.** A name whose encoding would pass 255 is `___h` and the hex SHA-256 of the
//!    name; the name is kept in the annotation `strongroom-name`.
//!
//! The three never collide (plain ids never start with `__`; `_h` is not a token of the
//! encoding), and `list` decodes ids back to names, leaving out ids it did not make.
//!
//! # Metadata
//!
//! The description is the annotation `strongroom-description`. A tag that is a valid label
//! (lower-case name and value of letters, digits, `_`, `-`) is a label; another is an
//! annotation. Labels and annotations whose names start `strongroom-` are the store's own.
//!
//! See [`GcpStore`]'s module docs for the mapping of each operation, what `delete`,
//! `undelete` and `purge` do (a recoverable delete disables the current version), and how
//! check-and-set uses the secret's etag.
//!
//! # What is tested where
//!
//! No test here talks to Google. `tests/drongo.rs` runs against drongo, the Secret Manager
//! emulator: the conformance checks except `metadata` and `longest_name` (drongo drops
//! annotations, which both need), scoping, ids as other clients see them, delete / put /
//! undelete, per-version disable / enable / destroy, labels, replication, the 64 KiB limit.
//! What drongo does not do (etags, annotations, paging, `dataCrc32c`) and what no emulator
//! here serves (Google's token endpoint, the metadata server) is tested against a loopback
//! responder inside the unit tests that checks each request as Google would: it verifies the
//! service-account JWT's RS256 signature with the key's public half and its claims (`iss`,
//! `scope`, `aud`, `iat`, `exp`), the refresh-token form, the `Metadata-Flavor` header, the
//! etag and claim of a check-and-set, the CRC32C of a payload.
//!
//! # Secrets
//!
//! Access tokens, private keys, refresh tokens and client secrets are held zeroized, print
//! as `[REDACTED]`, and are put in no error message or tracing event; request bodies with a
//! secret value or a grant are built in buffers of their final size and wiped after the
//! request; access answers are wiped once parsed.

// Nothing from outside is trusted in arithmetic: every `+ - * / %` here is checked or
// saturating, and clippy refuses one that is not.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

mod api;
mod auth;
mod config;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod labels;
mod secret_id;
mod store;
#[cfg(test)]
mod test_responder;

pub use api::Replication;
pub use auth::{
    AccessToken, CLOUD_PLATFORM_SCOPE, Credentials, DEFAULT_METADATA_HOST, DEFAULT_TOKEN_URI,
};
pub use config::{DEFAULT_ENDPOINT, GcpStoreBuilder};
pub use error::Error;
pub use store::GcpStore;
