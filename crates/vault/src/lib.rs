//! A Vault / OpenBao client for strongroom: KV v2 on any mount, token, AppRole and
//! Kubernetes auth, and a token kept alive in the background.
//!
//! - [`VaultClient`]: address, namespace (`X-Vault-Namespace`), auth, TLS and timeouts
//!   (through `strongroom-http`; reads retried with backoff and jitter, writes only when
//!   they cannot have reached the server: see [Retries](#retries)). Its token is renewed at
//!   a fraction of its TTL ([`RenewPolicy`]), replaced by a new login when renewal is
//!   refused or the max TTL is near, and on a 403 caused by an expired or revoked token the
//!   client logs in once (concurrent callers share that login) and retries the request
//!   once. [`VaultClient::stats`] counts logins and renewals (see [Renewal](#renewal)).
//! - [`Kv2`]: read latest or a version, write with check-and-set, JSON merge patch, soft
//!   delete (latest or versions), undelete, destroy, metadata read/write/delete, list and
//!   recursive walk.
//! - [`VaultStore`]: the [`SecretStore`](strongroom_core::SecretStore) on one mount, with a
//!   builder and [`VaultStore::from_env`].
//! - [`TransitKeyProvider`]: a [`KeyProvider`](strongroom_core::KeyProvider) on the Transit
//!   engine (`transit/encrypt`, `transit/decrypt`, `transit/rewrap`, `transit/datakey`) that
//!   wraps an encrypted store's data key with a derived Transit key, bound to the store by
//!   the derivation context; see the [`transit`] module.
//!
//! Tokens, secret ids and JWTs are zeroized and print as `[REDACTED]`; no error message or
//! tracing event holds a token or a secret value.
//!
//! ```no_run
//! use strongroom_core::{SecretName, SecretStore, SecretValue};
//! use strongroom_vault::VaultStore;
//!
//! # async fn run() -> Result<(), strongroom_core::Error> {
//! // VAULT_ADDR, VAULT_TOKEN (or AppRole / Kubernetes variables), VAULT_KV_MOUNT...
//! let store = VaultStore::from_env()?;
//! let key = SecretName::new("app/db/password")?;
//! let version = store.put(&key, SecretValue::from("s3cret")).await?;
//! assert_eq!(store.get(&key).await?.version, version);
//! # Ok(()) }
//! ```
//!
//! # Values in KV v2
//!
//! A [`SecretValue`](strongroom_core::SecretValue) is stored as the data map
//! `{"value": "<text>"}`, or `{"value_base64": "<base64>"}` when it is not UTF-8 (see
//! [`SecretData`]). Secrets with several fields are read and written whole with
//! [`VaultStore::read_data`] / [`VaultStore::write_data`] or [`Kv2`]. Description and tags
//! ([`Metadata`](strongroom_core::Metadata)) live in the secret's custom metadata: the
//! `description` key plus one key per tag.
//!
//! # Setups
//!
//! Every setup needs a policy on the KV v2 paths it uses. The one copy of the policy a
//! [`VaultStore`] needs is in the repository's `docs/security.md` ("Least privilege"); an
//! integration test creates an OpenBao policy from that very text and runs every store
//! operation through it. Tokens need the `default` policy too (`lookup-self`,
//! `renew-self`).
//!
//! **Token** (`VAULT_TOKEN`): `vault token create -policy=app -period=24h` gives a
//! periodic token that the client renews for as long as it runs.
//!
//! ```no_run
//! # fn f() -> Result<(), strongroom_core::Error> {
//! let client = strongroom_vault::VaultClient::builder()
//!     .address("https://vault.example.com:8200")
//!     .token("hvs.…")
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! **AppRole** (`VAULT_ROLE_ID`, `VAULT_SECRET_ID` or `VAULT_SECRET_ID_FILE`):
//! `vault auth enable approle`,
//! `vault write auth/approle/role/app token_policies=app token_ttl=1h token_max_ttl=24h`,
//! then `vault read auth/approle/role/app/role-id` and
//! `vault write -f auth/approle/role/app/secret-id`.
//!
//! ```no_run
//! use strongroom_vault::{AppRole, Credential, VaultClient};
//! # fn f() -> Result<(), strongroom_core::Error> {
//! let client = VaultClient::builder()
//!     .address("https://vault.example.com:8200")
//!     .approle(AppRole::new(
//!         Credential::value("role-id"),
//!         Credential::file("/run/secrets/secret-id"),
//!     ))
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! **Kubernetes** (`VAULT_K8S_ROLE`, optional `VAULT_K8S_TOKEN_PATH`, `VAULT_K8S_MOUNT`):
//! `vault auth enable kubernetes`, `vault write auth/kubernetes/config
//! kubernetes_host=https://$KUBERNETES_SERVICE_HOST`, and
//! `vault write auth/kubernetes/role/app bound_service_account_names=app
//! bound_service_account_namespaces=prod token_policies=app token_ttl=1h`.
//!
//! ```no_run
//! use strongroom_vault::{Kubernetes, VaultClient};
//! # fn f() -> Result<(), strongroom_core::Error> {
//! let client = VaultClient::builder()
//!     .address("https://vault.vault.svc:8200")
//!     .kubernetes(Kubernetes::new("app"))
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! # Retries
//!
//! Which requests are sent again after a failure, and when:
//!
//! | Request | Method | Retried |
//! |---|---|---|
//! | KV read, version read, metadata read, list, `lookup-self` | `GET` (`?list=true`) | after a refused connection, a timeout, a broken connection, 429 or 5xx ([`RetryPolicy`]: bounded attempts and total time, exponential backoff, full jitter, `Retry-After` honoured within the budget) |
//! | KV write (`data/`), patch, soft delete (`DELETE data/`, `delete/`), undelete, destroy, metadata write and delete | `POST`, `PUT` (Vault treats `PUT` as `POST`), `PATCH`, `DELETE` | only when no connection could be opened ([`strongroom_http::Retry::Unsent`]): once a request may have reached the server, its outcome is returned as it is, never sent twice |
//! | AppRole and Kubernetes login | `POST` | only when no connection could be opened: a one-use `secret_id` is never spent by a retry |
//! | `revoke-self`, [`VaultClient::request_json`] with any method but `GET` | | as writes |
//! | `renew-self` | `POST` | like a read ([`strongroom_http::Retry::Always`]): renewing twice only sets the same expiry again (now plus the increment, capped by the max TTL); the renewal task also retries it itself (see [Renewal](#renewal)) |
//!
//! A write that fails with `Unavailable` may or may not have been applied; read the secret
//! (or write with check-and-set) before writing again. With several addresses, what moves
//! to another node is said under [Clusters](#clusters); one address behaves as this table
//! says.
//!
//! # Clusters
//!
//! `VAULT_ADDR` (or [`VaultClientBuilder::address`]) may list a cluster's nodes separated
//! by commas, `https://a:8200,https://b:8200,https://c:8200`, or
//! [`VaultClientBuilder::addresses`] takes them as a list; one address behaves exactly as
//! before. Requests go to the node that answered last. When a node is down (connection
//! refused), sealed (503), or a standby that cannot reach the active node (307, 5xx,
//! timeouts while an election runs), the request moves to the next address within the same
//! request timeout and retry budget; see [`default_cluster_retry`] for the budget (25 s:
//! an election takes about 10 s, docs/reliability.md has the measurements) and
//! [`VaultClient::node_health`] for each node's `sys/health`. A redirect is never
//! followed; when it names a configured node, that node is simply tried next, and the
//! token never goes to an address outside the list.
//!
//! Which requests may move on after the node may have handled them (a timeout, a broken
//! connection, a 5xx, or a standby's 307, which it also sends when it forwarded the request
//! and then lost the leader): reads, token renewal, and **check-and-set writes**
//! (`cas`, [`PutOptions::if_version`](strongroom_core::PutOptions::if_version) /
//! `if_absent`), whose second application the server refuses. A plain write moves on only
//! when the node certainly did not handle it (refused connection, sealed); otherwise it
//! returns `Unavailable` and may have been applied. **Check-and-set is the way to write
//! exactly once**: write `if_version(v)` with a value you can recognise; after
//! `Unavailable`, read version `v + 1`: it holds your value if and only if your write was
//! applied. A check-and-set write that moved on after an unknown outcome and then meets a
//! version mismatch returns `Unavailable` ("read the secret back"), not `Conflict`: the
//! mismatch may be its own first attempt, and a caller that retried on `Conflict` would
//! apply its change twice.
//!
//! Read-after-write needs the servers' help: OpenBao 2.x standbys answer reads from their
//! own copy of the data by default, so a read that lands on a standby right after a write
//! can miss it (`NotFound`, or the previous version). Set `disable_standby_reads = true` in
//! each node's configuration (every request is then forwarded to the active node), as the
//! cluster suite does; docs/reliability.md shows what happened without it.
//!
//! # Renewal
//!
//! The background task renews the token at its refresh point ([`RenewPolicy`]), for every
//! auth method, including a static `VAULT_TOKEN` that is renewable and has a TTL (a
//! periodic token, say: its lease is learnt with `lookup-self`, itself retried until it
//! answers). When a renewal fails:
//!
//! - for a reason that may pass (refused connection, timeout, 5xx, 429, a sealed or
//!   standby node, a garbage answer), it is tried again after a jittered exponential pause
//!   (250 ms doubling up to 30 s, half of it random, never past the token's expiry), until
//!   it succeeds or the token expires;
//! - on a definitive refusal (401, 403: the token is revoked or invalid), or once the token
//!   has expired: a client that can log in (AppRole, Kubernetes) logs in again, with the
//!   same backoff while that fails; a static token's renewal stops, and
//!   [`VaultClient::renewal_error`] and the error of the next request that needs the token
//!   say why.
//!
//! The task cannot die silently: a panic inside it (a bug; nothing in it is meant to
//! panic) is caught, counted in [`TokenStats::renewal_task_panics`], logged at error
//! level, and the task starts over ([`VaultClient::renewal_task_running`]).
//!
//! # Arithmetic on server data
//!
//! Nothing the server sends is trusted in arithmetic. `lease_duration` and `ttl` become
//! durations only through one function that refuses negatives and non-numbers (a
//! `Backend` error naming the field) and clamps the rest to [`MAX_TTL`] (ten years), and
//! instants are computed from them only with checked addition. Version numbers and counts
//! are read as `u64` and only compared. A recursive list stops after [`MAX_WALK_FOLDERS`]
//! folders or past the longest secret name, whatever the server's answers. The whole crate (tests aside) is built with
//! `clippy::arithmetic_side_effects`, so CI (`clippy -D warnings`) rejects a new unchecked
//! `+`, `-`, `*` or `/`: use `checked_*` or `saturating_*`.
//!
//! # Errors
//!
//! Everything returns [`strongroom_core::Error`]: 404 is `NotFound` (with `deleted: true`
//! for a soft-deleted version), 403 is `PermissionDenied` (`Unauthenticated` when the token
//! itself is bad), a check-and-set mismatch is `Conflict`, a sealed or standby server, 5xx,
//! 429, refused connections and timeouts are `Unavailable`. Messages keep the server's
//! `errors` text and the key, never a token or a value.

#![forbid(unsafe_code)]
// docs.rs (`--cfg docsrs`) labels items that need a cargo feature.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::arithmetic_side_effects))]

mod auth;
mod client;
mod data;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod json;
mod kv2;
mod lifecycle;
mod nodes;
mod path;
mod store;
pub mod transit;
mod ttl;

pub use auth::{AppRole, Auth, Credential, DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH, Kubernetes, Token};
pub use client::{MAX_RESPONSE_BYTES, TokenInfo, VaultClient, VaultClientBuilder};
pub use data::{SecretData, VALUE_BASE64_FIELD, VALUE_FIELD};
pub(crate) use error::BACKEND;
pub use kv2::{Kv2, KvMetadata, KvSecret, MAX_WALK_FOLDERS, MetadataUpdate, VersionMetadata};
pub use lifecycle::{RenewPolicy, TokenStats};
pub use nodes::{NodeHealth, NodeState, default_cluster_retry};
pub use store::{DEFAULT_KV_MOUNT, DESCRIPTION_KEY, PREFIX_VAR, VaultStore, VaultStoreBuilder};
/// Re-exported: [`VaultClient::request_json`] takes a method, the builder a retry policy.
pub use strongroom_http::{RetryPolicy, http::Method};
pub use transit::{
    DEFAULT_TRANSIT_MOUNT, TRANSIT_KIND, TRANSIT_MOUNT_VAR, TransitKeyProvider,
    TransitKeyProviderBuilder,
};
pub use ttl::MAX_TTL;
