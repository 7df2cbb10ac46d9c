//! [`TransitKeyProvider`]: a [`KeyProvider`] on Vault/OpenBao's Transit engine, which wraps
//! an encrypted store's data key with a Transit key, so the key that opens the store lives
//! in Vault and never on disk.
//!
//! It goes through a [`VaultClient`], so auth (token, AppRole, Kubernetes), renewal,
//! namespaces, TLS, retries and several addresses work as for the KV store.
//!
//! | [`KeyProvider`] | Transit (mount `transit` unless configured) |
//! |---|---|
//! | [`wrap`](KeyProvider::wrap) | `POST transit/encrypt/:name` |
//! | [`unwrap`](KeyProvider::unwrap) | `POST transit/decrypt/:name` |
//! | [`generate`](KeyProvider::generate) | `POST transit/datakey/plaintext/:name` (16, 32 or 64 bytes; other lengths: `None`, and the caller wraps its own key) |
//! | [`rewrap`](KeyProvider::rewrap) | `POST transit/rewrap/:name`: the data key never leaves Vault |
//!
//! The wrapped key is Transit's ciphertext exactly as Vault returned it, as UTF-8 bytes:
//! `vault:v<key version>:<base64>`, so `bao write transit/decrypt/:name` opens it by hand
//! (docs/keys-providers.md shows the commands).
//!
//! # How a wrapped key is bound to its store: derived keys
//!
//! The [`KeyContext`] goes to Transit as the **key-derivation `context`** (base64 of
//! [`KeyContext::to_bytes`]), and the Transit key must be created with `derived=true`
//! (`bao write transit/keys/app derived=true`): Transit then encrypts each data key with a
//! key derived (HKDF) from its own key and the context, so a wrapped key opened with another
//! context fails authentication (`cipher: message authentication failed`, [`Error::Decrypt`]).
//!
//! Transit's `associated_data` was the first choice and is not used, because `rewrap` does
//! not take it: on OpenBao 2.7 `transit/encrypt` and `transit/decrypt` honour
//! `associated_data` on an AES-GCM key, but `transit/rewrap` (single or `batch_input`) has
//! no such parameter, decrypts without it and fails with `message authentication failed`,
//! so a key bound that way could only be rewrapped by bringing the data key out of Vault.
//! `context` is taken by encrypt, decrypt, rewrap and datakey alike.
//!
//! A key created without `derived=true` **ignores** `context` silently (encrypt and decrypt
//! succeed, and nothing is bound), so the provider reads the key's configuration
//! (`GET transit/keys/:name`) once, before its first wrap, generate or rewrap, and refuses a
//! key that is not derived with [`Error::Config`] naming it. Unwrap does not read it (a
//! store opens with one call): a wrapped key exists only because a wrap checked its key, and
//! a derived key cannot be turned into a plain one. Because the context cannot be empty on
//! a derived key, an empty [`KeyContext`] is refused with [`Error::InvalidValue`].
//!
//! The policy a provider needs on key `app` (mount `transit`):
//!
//! ```hcl
//! path "transit/keys/app"            { capabilities = ["read"] }
//! path "transit/encrypt/app"         { capabilities = ["update"] }
//! path "transit/decrypt/app"         { capabilities = ["update"] }
//! path "transit/rewrap/app"          { capabilities = ["update"] }
//! path "transit/datakey/plaintext/app" { capabilities = ["update"] }
//! ```
//!
//! A reader that only opens stores needs `transit/decrypt/app` alone.
//!
//! # Errors
//!
//! | Vault says | [`Error`] |
//! |---|---|
//! | 400 `cipher: message authentication failed`, `invalid ciphertext: ...` (tampered, another key or context, a version the key no longer decrypts) | `Decrypt` |
//! | 400 `encryption key not found`, 404 (no such key or mount), a key that is not derived or cannot encrypt | `Config`, naming the key |
//! | 403 | `PermissionDenied` (`Unauthenticated` when the token itself is bad) |
//! | sealed, standby, 429, 5xx, connection failures, timeouts | `Unavailable` |
//!
//! # Secrets and sizes
//!
//! Request bodies that carry the data key are built once at their final size and wiped
//! after the call; answers are wiped when dropped, and the base64 of a plaintext is moved
//! out of the parsed answer into a zeroized string, decoded straight into the
//! [`SecretValue`] returned. No error, log line or `Debug` output holds a data key or a
//! token. A data key is 1 to [`MAX_DATA_KEY_LEN`] bytes, a wrapped key at most
//! [`MAX_WRAPPED_LEN`] bytes and must look like a Transit ciphertext, and a generated key
//! must have exactly the length asked for.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::Method;
use serde_json::Value;
use strongroom_core::{Error, GeneratedKey, KeyContext, KeyProvider, SecretValue, async_trait};
use strongroom_http::Retry;
use tokio::sync::OnceCell;
use zeroize::Zeroizing;

use crate::client::{Call, VaultClient};
use crate::error::{Context, malformed};
use crate::json;
use crate::path::clean_mount;

/// The kind a Transit key slot is written with, and the scheme of its `--key` value
/// (`vault-transit:app`).
pub const TRANSIT_KIND: &str = "vault-transit";

/// The Transit mount used unless another is configured.
pub const DEFAULT_TRANSIT_MOUNT: &str = "transit";

/// The variable [`TransitKeyProvider::from_env`] reads the mount from.
pub const TRANSIT_MOUNT_VAR: &str = "STRONGROOM_TRANSIT_MOUNT";

/// The largest data key wrapped, in bytes (a data key is 32).
pub const MAX_DATA_KEY_LEN: usize = 4096;

/// The largest wrapped key accepted, in bytes: `vault:v<version>:` and the base64 of a
/// nonce, [`MAX_DATA_KEY_LEN`] bytes and a tag fit well within it.
pub const MAX_WRAPPED_LEN: usize = 8192;

/// The longest Transit key name accepted, in characters.
pub const MAX_KEY_NAME_LEN: usize = 256;

/// What every Transit ciphertext starts with.
const CIPHERTEXT_PREFIX: &str = "vault:v";

/// A [`KeyProvider`] that wraps data keys with one Vault/OpenBao Transit key; see the
/// [module docs](self) for the calls, the binding, the policy and the errors.
///
/// Cheap to clone; clones share the client (and its token) and the key check.
///
/// ```no_run
/// use strongroom_core::{KeyContext, KeyProvider};
/// use strongroom_vault::TransitKeyProvider;
///
/// # async fn demo() -> Result<(), strongroom_core::Error> {
/// // VAULT_ADDR, VAULT_TOKEN (or AppRole / Kubernetes), STRONGROOM_TRANSIT_MOUNT.
/// let transit = TransitKeyProvider::from_env("app")?;
/// let context = KeyContext::new().with("store", "/srv/app/secrets.sr");
/// let wrapped = transit.wrap(&[7u8; 32], &context).await?;
/// assert!(wrapped.starts_with(b"vault:v"));
/// assert_eq!(transit.unwrap(&wrapped, &context).await?.expose(), &[7u8; 32]);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TransitKeyProvider {
    inner: Arc<Inner>,
}

struct Inner {
    client: VaultClient,
    /// The mount as configured (trimmed), for messages.
    mount: String,
    /// The mount, encoded for URLs.
    mount_path: String,
    key_name: String,
    /// Set once the key was found derived and able to encrypt.
    checked: OnceCell<()>,
}

impl fmt::Debug for TransitKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransitKeyProvider")
            .field("address", &self.inner.client.address())
            .field("mount", &self.inner.mount)
            .field("key_name", &self.inner.key_name)
            .finish_non_exhaustive()
    }
}

/// Configures a [`TransitKeyProvider`]: the key, the mount, and the client (or the
/// environment the client is built from).
#[must_use]
pub struct TransitKeyProviderBuilder {
    key_name: String,
    mount: Option<String>,
    client: Option<VaultClient>,
}

impl fmt::Debug for TransitKeyProviderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransitKeyProviderBuilder")
            .field("key_name", &self.key_name)
            .field("mount", &self.mount)
            .field("client", &self.client)
            .finish()
    }
}

impl TransitKeyProviderBuilder {
    /// The Transit mount (default [`DEFAULT_TRANSIT_MOUNT`]).
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = Some(mount.into());
        self
    }

    /// The client to talk through (shared with a [`VaultStore`](crate::VaultStore), say).
    pub fn client(mut self, client: VaultClient) -> Self {
        self.client = Some(client);
        self
    }

    /// Builds the provider from the `VAULT_*` variables `lookup` gives (the same as
    /// [`VaultStore::from_env`](crate::VaultStore::from_env): address, namespace, TLS, auth,
    /// timeouts, renewal) and [`TRANSIT_MOUNT_VAR`] for the mount unless one was set. A
    /// client given with [`client`](Self::client) is used as it is.
    ///
    /// # Errors
    /// As [`build`](Self::build), and [`Error::Config`] for missing or malformed variables.
    pub fn build_from_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<TransitKeyProvider, Error> {
        if self.mount.is_none() {
            self.mount = lookup(TRANSIT_MOUNT_VAR).filter(|m| !m.trim().is_empty());
        }
        if self.client.is_none() {
            // The store builder is the one place the VAULT_* variables are read; building
            // the store sends nothing, and only its client is kept.
            let store = crate::VaultStoreBuilder::from_lookup(&lookup)?.build()?;
            self.client = Some(store.client().clone());
        }
        self.build()
    }

    /// Builds the provider. Sends nothing: the key is checked before its first use.
    ///
    /// # Errors
    /// [`Error::Config`] when no client was given, or for a mount or key name Vault would
    /// not route (a key name is 1 to [`MAX_KEY_NAME_LEN`] of letters, digits, `_`, `-`
    /// and `.`, beginning and ending with a letter, digit or `_`).
    pub fn build(self) -> Result<TransitKeyProvider, Error> {
        let client = self.client.ok_or_else(|| {
            Error::config(
                "the Vault Transit key provider needs a Vault client: call \
                 TransitKeyProviderBuilder::client, or build it from the environment",
            )
        })?;
        check_key_name(&self.key_name)?;
        let mount = self
            .mount
            .unwrap_or_else(|| DEFAULT_TRANSIT_MOUNT.to_owned());
        let mount_path = clean_mount(&mount)?;
        Ok(TransitKeyProvider {
            inner: Arc::new(Inner {
                client,
                mount: mount.trim_matches('/').to_owned(),
                mount_path,
                key_name: self.key_name,
                checked: OnceCell::new(),
            }),
        })
    }
}

/// Refuses a key name Transit's routes would not match (`\w(([\w-.]+)?\w)?`).
fn check_key_name(name: &str) -> Result<(), Error> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let valid = !name.is_empty()
        && name.chars().count() <= MAX_KEY_NAME_LEN
        && name.chars().all(|c| word(c) || c == '-' || c == '.')
        && name.chars().next().is_some_and(word)
        && name.chars().last().is_some_and(word);
    if valid {
        Ok(())
    } else {
        Err(Error::config(format!(
            "{:?} is not a Vault Transit key name: 1 to {MAX_KEY_NAME_LEN} of letters, \
             digits, `_`, `-` and `.`, beginning and ending with a letter, digit or `_`",
            name.chars().take(MAX_KEY_NAME_LEN).collect::<String>()
        )))
    }
}

impl TransitKeyProvider {
    /// A builder for the Transit key `key_name`.
    pub fn builder(key_name: impl Into<String>) -> TransitKeyProviderBuilder {
        TransitKeyProviderBuilder {
            key_name: key_name.into(),
            mount: None,
            client: None,
        }
    }

    /// A provider for `key_name` on the default mount, through `client`.
    ///
    /// # Errors
    /// As [`TransitKeyProviderBuilder::build`].
    pub fn new(client: VaultClient, key_name: impl Into<String>) -> Result<Self, Error> {
        Self::builder(key_name).client(client).build()
    }

    /// A provider for `key_name` configured by the process environment: the `VAULT_*`
    /// variables of [`VaultStore::from_env`](crate::VaultStore::from_env), and
    /// [`TRANSIT_MOUNT_VAR`] (`STRONGROOM_TRANSIT_MOUNT`, default `transit`).
    ///
    /// # Errors
    /// As [`TransitKeyProviderBuilder::build_from_lookup`].
    pub fn from_env(key_name: impl Into<String>) -> Result<Self, Error> {
        Self::builder(key_name).build_from_lookup(|name| std::env::var(name).ok())
    }

    /// The mount.
    pub fn mount(&self) -> &str {
        &self.inner.mount
    }

    /// The client requests go through.
    pub fn client(&self) -> &VaultClient {
        &self.inner.client
    }

    /// The version of the Transit key that made `wrapped` (the `N` of `vault:vN:`), or
    /// `None` when `wrapped` is not a Transit ciphertext. After a key rotation,
    /// [`rewrap`](KeyProvider::rewrap) gives a wrapped key with the newest version.
    pub fn wrapped_key_version(wrapped: &[u8]) -> Option<u64> {
        let text = std::str::from_utf8(wrapped).ok()?;
        let rest = text.strip_prefix(CIPHERTEXT_PREFIX)?;
        let (digits, _) = rest.split_once(':')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    fn url(&self, operation: &str) -> String {
        // The name was checked at build: it needs no encoding, and holds no `/`.
        [
            &*self.inner.mount_path,
            "/",
            operation,
            "/",
            &*self.inner.key_name,
        ]
        .concat()
    }

    /// One POST whose body holds `fields` (wiped after sending); returns the answer's
    /// `data`, with every string in the rest of the answer wiped.
    async fn post(
        &self,
        operation: &'static str,
        path: &str,
        fields: &[(&str, Zeroizing<String>)],
    ) -> Result<Value, Error> {
        let started = Instant::now();
        let ctx = Context::key(operation, &self.inner.key_name);
        // Encrypt, decrypt, rewrap and datakey change nothing in Vault (the key exists:
        // it was checked, or decrypt would fail): repeating one after a timeout is safe.
        let call = Call::new(Method::POST, self.url(path))
            .sensitive_body(json::sensitive_object(fields))
            .retry(Retry::Always);
        let result = match self.inner.client.execute(call, &ctx).await {
            Ok(answer) => {
                let parsed = answer.json(&ctx);
                drop(answer);
                parsed.and_then(|mut value| {
                    let data = value.get_mut("data").map_or(Value::Null, Value::take);
                    json::scrub(&mut value);
                    if data.is_object() {
                        Ok(data)
                    } else {
                        Err(malformed(&ctx, "no data in the answer"))
                    }
                })
            }
            Err(e) => Err(self.map_error(e)),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind().as_str(),
        };
        tracing::debug!(
            backend = TRANSIT_KIND,
            operation,
            key_name = %self.inner.key_name,
            mount = %self.inner.mount,
            outcome,
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "key provider call"
        );
        result
    }

    /// Transit's refusals in the provider's terms; see the module docs' table.
    fn map_error(&self, error: Error) -> Error {
        let key = &self.inner.key_name;
        let mount = &self.inner.mount;
        match error {
            Error::InvalidValue { message } if is_decrypt_failure(&message) => Error::Decrypt {
                what: format!(
                    "the data key wrapped by Vault Transit key {key:?} on mount {mount:?} \
                     (modified, made by another key, or bound to another context: {message})"
                ),
            },
            Error::InvalidValue { message } if message.contains("encryption key not found") => {
                Error::config(format!(
                    "there is no Vault Transit key {key:?} on mount {mount:?}: create it with \
                     `bao write transit/keys/{key} derived=true` ({message})"
                ))
            }
            Error::NotFound { .. } => Error::config(format!(
                "Vault answered 404 for Transit key {key:?} on mount {mount:?}: no such mount \
                 (enable it with `bao secrets enable -path={mount} transit`) or no such key \
                 (create it with `bao write transit/keys/{key} derived=true`)"
            )),
            other => other,
        }
    }

    /// Reads the key's configuration once, refusing a key that is not derived (it would
    /// ignore the context: nothing would be bound) or cannot encrypt.
    async fn check_key(&self) -> Result<(), Error> {
        self.inner
            .checked
            .get_or_try_init(|| async {
                let ctx = Context::key("transit read key", &self.inner.key_name);
                let call = Call::new(Method::GET, self.url("keys"));
                let answer = self
                    .inner
                    .client
                    .execute(call, &ctx)
                    .await
                    .map_err(|e| self.map_error(e))?;
                let value = answer.json(&ctx)?;
                check_key_config(&value, &self.inner.key_name, &self.inner.mount)
            })
            .await
            .map(|_| ())
    }
}

/// The key configuration `GET transit/keys/:name` answered, checked: derived, and able to
/// encrypt and decrypt.
pub(crate) fn check_key_config(answer: &Value, key: &str, mount: &str) -> Result<(), Error> {
    let data = answer
        .get("data")
        .filter(|d| d.is_object())
        .ok_or_else(|| {
            malformed(
                &Context::key("transit read key", key),
                "no data in the answer",
            )
        })?;
    let flag = |name: &str| data.get(name).and_then(Value::as_bool).unwrap_or(false);
    let kind = data
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    if !(flag("supports_encryption") && flag("supports_decryption")) {
        return Err(Error::config(format!(
            "Vault Transit key {key:?} on mount {mount:?} is of type {kind}, which cannot \
             encrypt and decrypt: use an aes256-gcm96 (default) or chacha20-poly1305 key"
        )));
    }
    if !flag("derived") {
        return Err(Error::config(format!(
            "Vault Transit key {key:?} on mount {mount:?} is not a derived key, so it would \
             ignore the context that binds a wrapped key to its store: create a key with \
             `bao write transit/keys/<name> derived=true` (a key cannot be made derived later)"
        )));
    }
    Ok(())
}

/// Whether a 400's text says the ciphertext did not decrypt.
fn is_decrypt_failure(message: &str) -> bool {
    message.contains("message authentication failed")
        || message.contains("invalid ciphertext")
        || message.contains("cipher:")
        || message.contains("unable to decrypt")
        || (message.contains("ciphertext") && message.contains("disallowed by policy"))
}

/// The `context` field: base64 of the context's canonical bytes, never empty.
fn derivation_context(context: &KeyContext) -> Result<Zeroizing<String>, Error> {
    if context.pairs().len() == 0 {
        return Err(Error::InvalidValue {
            message: "Vault Transit binds a wrapped key to its store through the derived-key \
                      context, which cannot be empty: give the KeyContext at least one pair"
                .to_owned(),
        });
    }
    Ok(Zeroizing::new(STANDARD.encode(context.to_bytes())))
}

/// A wrapped key as text, checked to look like a Transit ciphertext.
pub(crate) fn ciphertext_text<'a>(wrapped: &'a [u8], key: &str) -> Result<&'a str, Error> {
    let not_transit = |why: &str| Error::Decrypt {
        what: format!("the data key wrapped by Vault Transit key {key:?} ({why})"),
    };
    if wrapped.len() > MAX_WRAPPED_LEN {
        return Err(not_transit(&format!(
            "{} bytes, more than {MAX_WRAPPED_LEN}",
            wrapped.len()
        )));
    }
    let text = std::str::from_utf8(wrapped).map_err(|_| not_transit("not UTF-8"))?;
    if TransitKeyProvider::wrapped_key_version(wrapped).is_none()
        || !text.is_ascii()
        || text
            .bytes()
            .any(|b| b.is_ascii_control() || b == b'"' || b == b'\\')
    {
        return Err(not_transit("not a vault:v<N>: ciphertext"));
    }
    Ok(text)
}

/// The `ciphertext` of an answer, checked and bounded.
pub(crate) fn ciphertext_of(
    data: &Value,
    operation: &'static str,
    key: &str,
) -> Result<Vec<u8>, Error> {
    let ctx = Context::key(operation, key);
    let text = data
        .get("ciphertext")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(&ctx, "no ciphertext"))?;
    if text.len() > MAX_WRAPPED_LEN
        || TransitKeyProvider::wrapped_key_version(text.as_bytes()).is_none()
    {
        return Err(malformed(
            &ctx,
            &format!(
                "the ciphertext is not vault:v<N>:... of at most {MAX_WRAPPED_LEN} bytes ({} bytes)",
                text.len()
            ),
        ));
    }
    Ok(text.as_bytes().to_vec())
}

/// The `plaintext` of an answer, moved out of it into a zeroized string, decoded into a
/// zeroized buffer and bounded by `max` (exactly `exact` bytes when given).
pub(crate) fn plaintext_of(
    data: &mut Value,
    operation: &'static str,
    key: &str,
    max: usize,
    exact: Option<usize>,
) -> Result<SecretValue, Error> {
    let ctx = Context::key(operation, key);
    let text = match data.get_mut("plaintext").map(Value::take) {
        Some(Value::String(text)) => Zeroizing::new(text),
        _ => return Err(malformed(&ctx, "no plaintext")),
    };
    if text.len() > max.div_ceil(3).saturating_mul(4) {
        return Err(malformed(&ctx, "the plaintext is too long"));
    }
    let mut buffer = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(text.len())]);
    let len = STANDARD
        .decode_slice(text.as_bytes(), &mut buffer[..])
        .map_err(|_| malformed(&ctx, "the plaintext is not base64"))?;
    let fits = match exact {
        Some(exact) => len == exact,
        None => (1..=max).contains(&len),
    };
    if !fits {
        return Err(malformed(
            &ctx,
            &format!("the plaintext has {len} bytes, not the length of a data key asked for"),
        ));
    }
    buffer.truncate(len);
    Ok(SecretValue::new(std::mem::take(&mut *buffer)))
}

#[async_trait]
impl KeyProvider for TransitKeyProvider {
    fn kind(&self) -> &'static str {
        TRANSIT_KIND
    }

    fn key_id(&self) -> &str {
        &self.inner.key_name
    }

    async fn wrap(&self, data_key: &[u8], context: &KeyContext) -> Result<Vec<u8>, Error> {
        const OP: &str = "transit encrypt";
        if data_key.is_empty() || data_key.len() > MAX_DATA_KEY_LEN {
            return Err(Error::InvalidValue {
                message: format!(
                    "a data key wrapped by Vault Transit must be 1 to {MAX_DATA_KEY_LEN} bytes, \
                     not {}",
                    data_key.len()
                ),
            });
        }
        let derivation = derivation_context(context)?;
        self.check_key().await?;
        let plaintext = Zeroizing::new(STANDARD.encode(data_key));
        let data = self
            .post(
                OP,
                "encrypt",
                &[("plaintext", plaintext), ("context", derivation)],
            )
            .await?;
        ciphertext_of(&data, OP, &self.inner.key_name)
    }

    async fn unwrap(&self, wrapped: &[u8], context: &KeyContext) -> Result<SecretValue, Error> {
        const OP: &str = "transit decrypt";
        let text = ciphertext_text(wrapped, &self.inner.key_name)?;
        let derivation = derivation_context(context)?;
        let mut data = self
            .post(
                OP,
                "decrypt",
                &[
                    ("ciphertext", Zeroizing::new(text.to_owned())),
                    ("context", derivation),
                ],
            )
            .await?;
        let result = plaintext_of(&mut data, OP, &self.inner.key_name, MAX_DATA_KEY_LEN, None);
        json::scrub(&mut data);
        result
    }

    async fn generate(
        &self,
        len: usize,
        context: &KeyContext,
    ) -> Result<Option<GeneratedKey>, Error> {
        const OP: &str = "transit datakey";
        // `bits` takes 128, 256 and 512 only.
        let bits = match len {
            16 => "128",
            32 => "256",
            64 => "512",
            _ => return Ok(None),
        };
        let derivation = derivation_context(context)?;
        self.check_key().await?;
        let mut data = self
            .post(
                OP,
                "datakey/plaintext",
                &[
                    ("context", derivation),
                    ("bits", Zeroizing::new(bits.to_owned())),
                ],
            )
            .await?;
        let result = plaintext_of(&mut data, OP, &self.inner.key_name, len, Some(len)).and_then(
            |plaintext| {
                let wrapped = ciphertext_of(&data, OP, &self.inner.key_name)?;
                Ok(GeneratedKey { plaintext, wrapped })
            },
        );
        json::scrub(&mut data);
        result.map(Some)
    }

    async fn rewrap(&self, wrapped: &[u8], context: &KeyContext) -> Result<Vec<u8>, Error> {
        const OP: &str = "transit rewrap";
        let text = ciphertext_text(wrapped, &self.inner.key_name)?;
        let derivation = derivation_context(context)?;
        self.check_key().await?;
        let data = self
            .post(
                OP,
                "rewrap",
                &[
                    ("ciphertext", Zeroizing::new(text.to_owned())),
                    ("context", derivation),
                ],
            )
            .await?;
        ciphertext_of(&data, OP, &self.inner.key_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_core::ErrorKind;

    /// A data key that must never show up in any text.
    const DATA_KEY: &[u8; 32] = b"PLAINTEXT-DATA-KEY-0123456789abc";

    fn client() -> VaultClient {
        VaultClient::builder()
            .address("http://127.0.0.1:1")
            .token("hvs.TOKEN-TEXT")
            .build()
            .unwrap()
    }

    fn provider() -> TransitKeyProvider {
        TransitKeyProvider::builder("app")
            .mount("/kms/transit/")
            .client(client())
            .build()
            .unwrap()
    }

    #[test]
    fn builder_checks_names_and_mounts() {
        let p = provider();
        assert_eq!(p.mount(), "kms/transit");
        assert_eq!(p.key_id(), "app");
        assert_eq!(p.kind(), "vault-transit");
        assert_eq!(p.url("rewrap"), "kms/transit/rewrap/app");
        assert_eq!(
            TransitKeyProvider::new(client(), "a.b-c_1")
                .unwrap()
                .url("encrypt"),
            "transit/encrypt/a.b-c_1"
        );
        let long = "k".repeat(MAX_KEY_NAME_LEN + 1);
        for bad in [
            "",
            "a/b",
            "-a",
            "a-",
            ".a",
            "a b",
            "é",
            "a?b",
            long.as_str(),
        ] {
            let err = TransitKeyProvider::new(client(), bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}");
        }
        for bad in ["", "/", "a/../b"] {
            let err = TransitKeyProvider::builder("app")
                .mount(bad)
                .client(client())
                .build()
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}");
        }
        let err = TransitKeyProvider::builder("app").build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    }

    #[test]
    fn the_environment_gives_the_client_and_the_mount() {
        let vars = [
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "hvs.TOKEN-TEXT"),
            (TRANSIT_MOUNT_VAR, "keys/transit"),
        ];
        let lookup = |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let p = TransitKeyProvider::builder("app")
            .build_from_lookup(lookup)
            .unwrap();
        assert_eq!(p.mount(), "keys/transit");
        assert_eq!(p.client().address(), "http://127.0.0.1:8200");
        let p = TransitKeyProvider::builder("app")
            .mount("other")
            .build_from_lookup(lookup)
            .unwrap();
        assert_eq!(p.mount(), "other");
        let err = TransitKeyProvider::builder("app")
            .build_from_lookup(|_| None)
            .unwrap_err();
        assert!(err.to_string().contains("VAULT_ADDR"), "{err}");
    }

    #[test]
    fn key_versions_are_read_from_the_prefix() {
        let version = TransitKeyProvider::wrapped_key_version;
        assert_eq!(version(b"vault:v1:abc="), Some(1));
        assert_eq!(version(b"vault:v12:abc="), Some(12));
        for bad in [
            &b"vault:v:abc"[..],
            b"vault:vx:abc",
            b"vault:v1",
            b"vault:v99999999999999999999999:a",
            b"vault:v+1:a",
            b"v1:abc",
            b"\xff",
        ] {
            assert_eq!(version(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn wrapped_keys_must_look_like_transit_ciphertexts() {
        assert!(ciphertext_text(b"vault:v3:AAAA", "app").is_ok());
        let long = [b"vault:v1:".as_slice(), &vec![b'A'; MAX_WRAPPED_LEN]].concat();
        for bad in [
            &b"AAAA"[..],
            b"vault:v1:\"x",
            b"vault:v1:\\x",
            b"vault:v1:a\nb",
            b"vault:v1:\xff",
            long.as_slice(),
        ] {
            let err = ciphertext_text(bad, "app").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Decrypt, "{bad:?}");
        }
    }

    #[test]
    fn the_context_is_the_canonical_bytes_and_never_empty() {
        let context = KeyContext::new().with("k", "v");
        assert_eq!(
            *derivation_context(&context).unwrap(),
            STANDARD.encode([0, 0, 0, 1, b'k', 0, 0, 0, 1, b'v'])
        );
        let err = derivation_context(&KeyContext::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn answers_are_decoded_and_bounded() {
        let plain = STANDARD.encode(DATA_KEY);
        let answer = || serde_json::json!({"ciphertext": "vault:v2:AAAA", "plaintext": plain});
        let mut data = answer();
        let key = plaintext_of(&mut data, "d", "app", 32, Some(32)).unwrap();
        assert_eq!(key.expose(), DATA_KEY);
        assert_eq!(
            data["plaintext"],
            Value::Null,
            "the plaintext was moved out"
        );
        assert_eq!(
            ciphertext_of(&answer(), "d", "app").unwrap(),
            b"vault:v2:AAAA"
        );
        for (max, exact) in [(16, Some(16)), (64, Some(64)), (31, None)] {
            let err = plaintext_of(&mut answer(), "d", "app", max, exact).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Backend, "{max} {exact:?}");
            let text = format!("{err} {err:?}");
            assert!(!text.contains(&plain), "{text}");
            assert!(
                !text.contains(std::str::from_utf8(DATA_KEY).unwrap()),
                "{text}"
            );
        }
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"plaintext": 5, "ciphertext": 5}),
            serde_json::json!({"plaintext": "%%%", "ciphertext": "AAAA"}),
            serde_json::json!({"plaintext": "", "ciphertext": "vault:v:AAAA"}),
        ] {
            assert!(plaintext_of(&mut bad.clone(), "d", "app", 32, None).is_err());
            assert!(ciphertext_of(&bad, "d", "app").is_err());
        }
    }

    #[test]
    fn key_configurations_are_checked() {
        let config = |derived: bool, encrypts: bool| {
            serde_json::json!({"data": {
                "type": if encrypts { "aes256-gcm96" } else { "ed25519" },
                "derived": derived,
                "supports_encryption": encrypts,
                "supports_decryption": encrypts,
            }})
        };
        assert!(check_key_config(&config(true, true), "app", "transit").is_ok());
        let err = check_key_config(&config(false, true), "app", "transit").unwrap_err();
        assert!(
            err.kind() == ErrorKind::Config && err.to_string().contains("derived=true"),
            "{err}"
        );
        let err = check_key_config(&config(true, false), "app", "transit").unwrap_err();
        assert!(err.to_string().contains("ed25519"), "{err}");
        let err = check_key_config(&serde_json::json!({}), "app", "transit").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Backend);
    }

    #[test]
    fn transit_refusals_map_onto_core_errors() {
        let p = provider();
        let invalid = |text: &str| Error::InvalidValue {
            message: format!("transit decrypt \"app\": HTTP 400: {text}"),
        };
        let table = [
            (
                invalid("cipher: message authentication failed"),
                ErrorKind::Decrypt,
            ),
            (
                invalid("invalid ciphertext: could not decode base64"),
                ErrorKind::Decrypt,
            ),
            (
                invalid("invalid ciphertext: version is too new"),
                ErrorKind::Decrypt,
            ),
            (
                invalid("ciphertext or signature version is disallowed by policy (too old)"),
                ErrorKind::Decrypt,
            ),
            (invalid("encryption key not found"), ErrorKind::Config),
            (invalid("missing plaintext"), ErrorKind::InvalidValue),
            (Error::not_found("transit decrypt"), ErrorKind::Config),
            (
                Error::PermissionDenied {
                    backend: "vault",
                    key: Some("app".into()),
                    message: "permission denied".into(),
                },
                ErrorKind::PermissionDenied,
            ),
            (
                Error::unavailable("vault", "Vault is sealed"),
                ErrorKind::Unavailable,
            ),
        ];
        for (error, kind) in table {
            let shown = error.to_string();
            let mapped = p.map_error(error);
            assert_eq!(mapped.kind(), kind, "{shown} -> {mapped}");
        }
        let mapped = p.map_error(invalid("cipher: message authentication failed"));
        assert!(mapped.to_string().contains("\"app\""), "{mapped}");
    }

    #[tokio::test]
    async fn bad_input_is_refused_before_any_call() {
        // The address refuses connections: each of these must fail before sending.
        let p = provider();
        let context = KeyContext::new().with("store", "s");
        for len in [0, MAX_DATA_KEY_LEN + 1] {
            let err = p.wrap(&vec![1; len], &context).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidValue, "{len}");
        }
        let err = p.wrap(DATA_KEY, &KeyContext::new()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
        let err = p.unwrap(b"not transit", &context).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decrypt);
        let err = p.rewrap(b"not transit", &context).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decrypt);
        assert!(p.generate(24, &context).await.unwrap().is_none());
    }

    #[test]
    fn debug_shows_no_token() {
        let p = provider();
        let shown = format!("{p:?} {:?}", TransitKeyProvider::builder("app"));
        assert!(
            shown.contains("app") && shown.contains("kms/transit"),
            "{shown}"
        );
        assert!(!shown.contains("TOKEN-TEXT"), "{shown}");
    }
}
