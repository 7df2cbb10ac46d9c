//! Opening and creating an encrypted store through its key slots: one [`KeySpec`] per slot,
//! local (a master key, a passphrase) or a key service (AWS KMS, Vault/OpenBao Transit).
//!
//! A store opens with one call to a key service: the slot's data key is unwrapped once and
//! the [`FileStore`] keeps it (zeroized when dropped) for the life of the handle, so reads
//! and writes never go back to the service. The specs are tried in order; the first that
//! opens a slot wins, so a recovery passphrase opens the store when KMS is unreachable.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use strongroom_core::{Error, KeyContext, KeyProvider};
use strongroom_envelope::{DataKey, KEY_LEN, KeySlot, SlotKind, SlotTable, StoreId};
use strongroom_local::{FileStore, FileStoreBuilder, StoreSlots, key_context, key_error};
use zeroize::Zeroizing;

use crate::config::KeySource;
use crate::key_spec::KeySpec;
use crate::master_key::{KeyOrigin, PASSPHRASE_VAR, PassphrasePrompt, resolve_in, resolve_key};

/// A store file's slot table (or format-1 header), read at most once however many of the
/// decisions before opening it ask: whether it opens through key-service slots, which kind
/// of local key it takes, which slots a key service may unwrap. Opening a store with no key
/// named used to read the file for each (three times, then the store's own load).
pub(crate) struct StoreFile<'a> {
    path: &'a Path,
    slots: OnceLock<Result<StoreSlots, Error>>,
    /// How often the file was read, for the test that keeps it at one.
    #[cfg(test)]
    reads: std::sync::atomic::AtomicUsize,
}

impl<'a> StoreFile<'a> {
    /// The store at `path`, not read yet.
    pub(crate) fn new(path: &'a Path) -> Self {
        Self {
            path,
            slots: OnceLock::new(),
            #[cfg(test)]
            reads: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub(crate) fn path(&self) -> &'a Path {
        self.path
    }

    /// Its slots as [`FileStore::read_slots`] reads them (an error for a missing or
    /// unreadable file), read on the first call.
    pub(crate) fn slots(&self) -> Result<&StoreSlots, Error> {
        self.slots
            .get_or_init(|| {
                #[cfg(test)]
                self.reads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                FileStore::read_slots(self.path)
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The key service a remote spec names, configured from the process environment (`AWS_*`
/// for KMS, `VAULT_*` for Transit).
///
/// # Errors
/// [`Error::Config`] for a local spec, or for a service this build lacks (the facade's
/// `aws` or `vault` feature); the service's own configuration errors otherwise.
pub fn key_provider(spec: &KeySpec) -> Result<Arc<dyn KeyProvider>, Error> {
    match spec {
        #[cfg(feature = "aws")]
        KeySpec::AwsKms(key) => Ok(Arc::new(
            strongroom_aws::KmsKeyProvider::builder(key.as_str()).build_lazy()?,
        )),
        #[cfg(feature = "vault")]
        KeySpec::VaultTransit { mount, key } => Ok(Arc::new(
            strongroom_vault::TransitKeyProvider::builder(key.as_str())
                .mount(mount.as_str())
                .build_from_lookup(|name| std::env::var(name).ok())?,
        )),
        #[cfg(not(feature = "aws"))]
        KeySpec::AwsKms(_) => Err(Error::config(
            "aws-kms keys need strongroom-facade's `aws` feature",
        )),
        #[cfg(not(feature = "vault"))]
        KeySpec::VaultTransit { .. } => Err(Error::config(
            "vault-transit keys need strongroom-facade's `vault` feature",
        )),
        local => Err(Error::config(format!(
            "{local} is not a key service; it opens the store without one"
        ))),
    }
}

/// The spec that names the service key of a remote `slot` as it was written
/// (`aws-kms:alias/app`); `None` for a local slot or a kind this build does not know.
pub fn slot_spec(slot: &KeySlot) -> Option<KeySpec> {
    match slot.kind() {
        SlotKind::AwsKms | SlotKind::VaultTransit => {
            format!("{}:{}", slot.kind().name(), slot.key_id())
                .parse()
                .ok()
        }
        _ => None,
    }
}

/// The key id written in a remote slot for `spec`: what follows `aws-kms:` or
/// `vault-transit:`, so that [`slot_spec`] gives `spec` back.
fn slot_key_id(spec: &KeySpec) -> String {
    let text = spec.to_string();
    text.split_once(':')
        .map_or(text.clone(), |(_, id)| id.to_owned())
}

/// The wrapping key of a local spec: a master key from a file or variable, or a passphrase
/// (`STRONGROOM_PASSPHRASE`, else `prompt`).
///
/// # Errors
/// [`Error::Config`] naming the source that failed (never the key); for a remote spec.
pub fn local_key(
    spec: &KeySpec,
    prompt: PassphrasePrompt<'_>,
) -> Result<(strongroom_envelope::WrappingKey, KeyOrigin), Error> {
    let source = match spec {
        KeySpec::File(path) => KeySource::file(path.clone()),
        KeySpec::Env(var) => KeySource::env(var.clone()),
        KeySpec::Passphrase => {
            if std::env::var_os(PASSPHRASE_VAR).is_none()
                && let Some(ask) = prompt
            {
                return Ok((ask()?.into(), KeyOrigin::Prompt));
            }
            KeySource {
                passphrase_env: Some(PASSPHRASE_VAR.to_owned()),
                ..KeySource::default()
            }
        }
        remote => {
            return Err(Error::config(format!(
                "{remote} is a key service, not a local key"
            )));
        }
    };
    // The store path only matters when the source names nothing, which it always does here.
    resolve_key(&source, Path::new(""), None)
}

/// Whether the store `key` describes opens through [`open_keyed`]: key specs are named
/// (`--key`, `STRONGROOM_KEY`, TOML `keys`), or none is, no master key or passphrase source
/// is named either, and the store's only slots are remote (the store says what opens it).
/// Otherwise [`resolve_key`]'s order applies.
pub(crate) fn opens_through_slots(file: &StoreFile<'_>, key: &KeySource) -> bool {
    if !key.keys.is_empty() {
        return true;
    }
    !key.names_local_key() && remote_slots_only(file).is_some()
}

/// The specs of a store's remote slots when it has no local slot (the store says what opens
/// it); `None` otherwise, or when there is no readable slotted store at `path`.
fn remote_slots_only(file: &StoreFile<'_>) -> Option<Vec<KeySpec>> {
    let StoreSlots::Slotted(table) = file.slots().ok()? else {
        return None;
    };
    if table.slots().iter().any(|slot| slot.kind().is_local()) {
        return None;
    }
    Some(table.slots().iter().filter_map(slot_spec).collect())
}

/// Opens (or, with `create_if_missing`, creates) the store at `path` with the first of the
/// specs `key` names that opens one of its slots; with none named, the store's own slots say
/// (a store with only remote slots opens through them; otherwise [`resolve_key`]'s order).
///
/// # Errors
/// When no spec opens the store: [`Error::Decrypt`] if a slot was tried and refused the key
/// (tampered, another store's slot, the wrong key), else the last spec's error
/// ([`Error::Unavailable`] for an unreachable service, [`Error::PermissionDenied`] for a
/// refused one, [`Error::Config`] for a missing key).
pub async fn open_keyed(
    builder: FileStoreBuilder,
    path: &Path,
    key: &KeySource,
    create_if_missing: bool,
    prompt: PassphrasePrompt<'_>,
) -> Result<(FileStore, KeyOrigin), Error> {
    open_keyed_in(
        builder,
        &StoreFile::new(path),
        key,
        create_if_missing,
        prompt,
    )
    .await
}

/// [`open_keyed`] on a store file whose slots may have been read already.
async fn open_keyed_in(
    builder: FileStoreBuilder,
    file: &StoreFile<'_>,
    key: &KeySource,
    create_if_missing: bool,
    prompt: PassphrasePrompt<'_>,
) -> Result<(FileStore, KeyOrigin), Error> {
    let path = file.path();
    let specs = if key.keys.is_empty() {
        match remote_slots_only(file) {
            Some(specs) if !key.names_local_key() => specs,
            _ => {
                let (wrapping, origin) = resolve_in(key, file, prompt)?;
                let store = builder
                    .create_if_missing(create_if_missing)
                    .open(wrapping)?;
                return Ok((store, origin));
            }
        }
    } else {
        key.keys.clone()
    };
    if !path.exists() {
        if !create_if_missing {
            return Err(Error::config(format!(
                "no store at {}; create one with `strongroom init`",
                path.display()
            )));
        }
        let store = create_keyed(builder, &specs, prompt).await?;
        return Ok((store, KeyOrigin::Spec(specs[0].clone())));
    }
    let slots = file.slots()?;
    let mut failure: Option<Error> = None;
    for spec in &specs {
        let attempt = if spec.is_remote() {
            open_remote(builder.clone(), path, spec, slots).await
        } else {
            local_key(spec, prompt).and_then(|(wrapping, origin)| {
                builder.clone().open(wrapping).map(|store| (store, origin))
            })
        };
        match attempt {
            Ok((store, origin)) => {
                if let Some(err) = &failure {
                    tracing::warn!(
                        store = %path.display(),
                        opened_with = %spec,
                        earlier = %err,
                        "an earlier key did not open the store; a later one did"
                    );
                }
                return Ok((store, origin));
            }
            Err(err) => {
                // A refused slot says more than "that service is down" or "no such slot".
                if !matches!(failure, Some(Error::Decrypt { .. })) {
                    failure = Some(err);
                }
            }
        }
    }
    Err(failure.unwrap_or_else(|| Error::config("no key was named")))
}

/// [`open_keyed`] for the synchronous constructors ([`open_store`](crate::open_store),
/// `Secrets::from_env`, the mirror): runs it to completion on a short-lived thread with its
/// own runtime, so it works inside and outside an async context alike. It blocks the caller
/// for the one key-service call (bounded by the service client's timeouts and retries),
/// once, when the store is opened.
pub(crate) fn open_keyed_blocking(
    builder: FileStoreBuilder,
    file: &StoreFile<'_>,
    key: &KeySource,
    create_if_missing: bool,
    prompt: PassphrasePrompt<'_>,
) -> Result<(FileStore, KeyOrigin), Error> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|err| {
                        Error::config(format!("cannot start a runtime to open the store: {err}"))
                    })?;
                runtime.block_on(open_keyed_in(builder, file, key, create_if_missing, prompt))
            })
            .join()
            .unwrap_or_else(|_| Err(Error::config("opening the store's key slots panicked")))
    })
}

/// Opens with a remote spec: unwraps the first slot of its kind that the service opens
/// (an exact key id first), then opens the store with that data key.
async fn open_remote(
    builder: FileStoreBuilder,
    path: &Path,
    spec: &KeySpec,
    slots: &StoreSlots,
) -> Result<(FileStore, KeyOrigin), Error> {
    let StoreSlots::Slotted(table) = slots else {
        return Err(Error::config(format!(
            "{} has no key slots yet (written by strongroom 0.1): open it with its master key \
             or passphrase and add a {spec} slot with `strongroom key add`",
            path.display()
        )));
    };
    let wanted = slot_key_id(spec);
    let mut candidates: Vec<&KeySlot> = table
        .slots()
        .iter()
        .filter(|slot| slot.kind().name() == spec.kind())
        .collect();
    if candidates.is_empty() {
        return Err(Error::config(format!(
            "{} has no {} slot; `strongroom key list` shows its slots",
            path.display(),
            spec.kind()
        )));
    }
    // KMS ciphertexts name their key, so an ARN opens a slot written with an alias: try
    // the exact id first, then the rest of the kind.
    candidates.sort_by_key(|slot| slot.key_id() != wanted);
    let provider = key_provider(spec)?;
    let context = key_context(&table.store_id());
    let mut failure = None;
    for slot in candidates {
        match unwrap_slot(provider.as_ref(), slot, &context).await {
            Ok(data_key) => {
                let store = builder.open_with_data_key(data_key)?;
                return Ok((store, KeyOrigin::Spec(spec.clone())));
            }
            Err(err) => failure = Some(err),
        }
    }
    Err(failure.unwrap_or_else(|| Error::config("no slot matched")))
}

async fn unwrap_slot(
    provider: &dyn KeyProvider,
    slot: &KeySlot,
    context: &KeyContext,
) -> Result<DataKey, Error> {
    let plaintext = provider.unwrap(slot.wrapped(), context).await?;
    DataKey::from_bytes(plaintext.expose()).map_err(key_error)
}

/// Creates a new store with one slot per spec, its data key from the first spec's key
/// service when that is remote (KMS `GenerateDataKey`), else from the system RNG. Every
/// remote slot is unwrapped once before the store is written, so a store is never created
/// with a slot that does not open it.
///
/// # Errors
/// [`Error::Config`] for an empty list, a store that exists, a missing local key; the
/// service's errors for a remote spec.
pub async fn create_keyed(
    builder: FileStoreBuilder,
    specs: &[KeySpec],
    prompt: PassphrasePrompt<'_>,
) -> Result<FileStore, Error> {
    let Some(first) = specs.first() else {
        return Err(Error::config("a new store needs at least one key"));
    };
    let store_id = StoreId::generate().map_err(key_error)?;
    let context = key_context(&store_id);
    let mut slots = Vec::with_capacity(specs.len());
    let data_key = if first.is_remote() {
        let provider = key_provider(first)?;
        match provider.generate(KEY_LEN, &context).await? {
            Some(generated) => {
                let data_key =
                    DataKey::from_bytes(generated.plaintext.expose()).map_err(key_error)?;
                slots.push(remote_slot(first, generated.wrapped)?);
                data_key
            }
            None => DataKey::generate().map_err(key_error)?,
        }
    } else {
        DataKey::generate().map_err(key_error)?
    };
    if let Some(generated) = slots.first() {
        verify(first, generated, &data_key, &context).await?;
    }
    for spec in &specs[slots.len()..] {
        slots.push(new_slot(spec, &data_key, &context, prompt).await?);
    }
    let table = SlotTable::new(store_id, slots).map_err(key_error)?;
    builder.create_with_data_key(data_key, table)
}

/// A slot for `spec` holding `data_key`, bound to `context`. A remote slot is unwrapped
/// once through its service before it is returned, so a slot that would not open the store
/// is never written.
///
/// # Errors
/// As [`local_key`] and the key service.
pub async fn new_slot(
    spec: &KeySpec,
    data_key: &DataKey,
    context: &KeyContext,
    prompt: PassphrasePrompt<'_>,
) -> Result<KeySlot, Error> {
    if spec.is_remote() {
        let provider = key_provider(spec)?;
        let bytes: Zeroizing<[u8; KEY_LEN]> = data_key.expose_bytes();
        let wrapped = provider.wrap(&bytes[..], context).await?;
        let slot = remote_slot(spec, wrapped)?;
        verify(spec, &slot, data_key, context).await?;
        Ok(slot)
    } else {
        let (wrapping, _) = local_key(spec, prompt)?;
        KeySlot::wrap_local(data_key, &wrapping).map_err(key_error)
    }
}

/// Checks that `slot` unwraps to `data_key` through its service.
async fn verify(
    spec: &KeySpec,
    slot: &KeySlot,
    data_key: &DataKey,
    context: &KeyContext,
) -> Result<(), Error> {
    let provider = key_provider(spec)?;
    let unwrapped = unwrap_slot(provider.as_ref(), slot, context).await?;
    if *unwrapped.expose_bytes() != *data_key.expose_bytes() {
        return Err(Error::Decrypt {
            what: format!("the new {spec} slot (it unwraps to another key)"),
        });
    }
    Ok(())
}

fn remote_slot(spec: &KeySpec, wrapped: Vec<u8>) -> Result<KeySlot, Error> {
    let kind = SlotKind::from_name(spec.kind())
        .ok_or_else(|| Error::config(format!("{spec} is not a slot kind this build knows")))?;
    KeySlot::new(kind, slot_key_id(spec), wrapped).map_err(key_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_slots_name_their_spec() {
        for text in [
            "aws-kms:alias/app",
            "vault-transit:app",
            "vault-transit:team/transit/app",
        ] {
            let spec: KeySpec = text.parse().unwrap();
            let slot = remote_slot(&spec, vec![1, 2, 3]).unwrap();
            assert_eq!(slot_spec(&slot), Some(spec), "{text}");
        }
    }

    fn key_file(dir: &Path, name: &str) -> KeySpec {
        let path = dir.join(name);
        strongroom_envelope::MasterKey::generate()
            .unwrap()
            .write_new_file(&path)
            .unwrap();
        KeySpec::File(path)
    }

    #[tokio::test]
    async fn each_slot_opens_the_store_and_a_stranger_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.enc");
        let (one, two) = (key_file(dir.path(), "one"), key_file(dir.path(), "two"));
        let specs = [one.clone(), two.clone()];
        let store = create_keyed(FileStore::builder(&path), &specs, None)
            .await
            .unwrap();
        let name = strongroom_core::SecretName::new("a/b").unwrap();
        strongroom_core::SecretStore::put(&store, &name, "v".into())
            .await
            .unwrap();
        assert!(opens_through_slots(
            &StoreFile::new(&path),
            &KeySource::keys([two.clone()])
        ));
        for spec in [one, two] {
            let (store, origin) = open_keyed(
                FileStore::builder(&path),
                &path,
                &KeySource::keys([spec.clone()]),
                false,
                None,
            )
            .await
            .unwrap();
            assert_eq!(
                origin,
                KeyOrigin::File(match &spec {
                    KeySpec::File(p) => p.clone(),
                    _ => unreachable!(),
                })
            );
            let got = strongroom_core::SecretStore::get(&store, &name)
                .await
                .unwrap();
            assert_eq!(got.value.expose(), b"v");
        }
        // A key of no slot, tried after one that is missing: the refusal is what is reported.
        let stranger = key_file(dir.path(), "three");
        let missing = KeySpec::File(dir.path().join("absent"));
        let err = open_keyed(
            FileStore::builder(&path),
            &path,
            &KeySource::keys([stranger, missing]),
            false,
            None,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Decrypt { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_service_key_on_a_store_without_slots_says_how_to_add_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.enc");
        let key = strongroom_envelope::MasterKey::generate().unwrap();
        std::fs::write(
            &path,
            strongroom_envelope::seal(&key.into(), b"{}").unwrap(),
        )
        .unwrap();
        let slots = FileStore::read_slots(&path).unwrap();
        let err = open_remote(
            FileStore::builder(&path),
            &path,
            &KeySpec::AwsKms("alias/app".into()),
            &slots,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("strongroom key add"), "{err}");
        assert!(!opens_through_slots(
            &StoreFile::new(&path),
            &KeySource::default()
        ));
    }

    #[test]
    fn the_blocking_open_works_inside_a_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.enc");
        let spec = key_file(dir.path(), "k");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let source = KeySource::keys([spec]);
        let (store, _) = runtime
            .block_on(async {
                open_keyed_blocking(
                    FileStore::builder(&path),
                    &StoreFile::new(&path),
                    &source,
                    true,
                    None,
                )
            })
            .unwrap();
        assert_eq!(store.path(), path);
    }

    /// With no key named, deciding how a store opens (through key-service slots? which
    /// local key?) reads its file once, whichever kind of key sealed it.
    #[test]
    fn deciding_how_a_store_opens_reads_it_once() {
        use std::sync::atomic::Ordering;

        use strongroom_envelope::Passphrase;

        let dir = tempfile::tempdir().unwrap();
        let keyed = dir.path().join("keyed.enc");
        let key = strongroom_envelope::MasterKey::generate().unwrap();
        key.write_new_file(strongroom_local::default_key_file(&keyed))
            .unwrap();
        FileStore::create(&keyed, key).unwrap();
        let sealed = dir.path().join("sealed.enc");
        FileStore::create(&sealed, Passphrase::new("pw").with_iterations(1000)).unwrap();
        let prompt = || Ok(Passphrase::new("pw"));
        for (path, want) in [
            (
                &keyed,
                KeyOrigin::File(strongroom_local::default_key_file(&keyed)),
            ),
            (&sealed, KeyOrigin::Prompt),
        ] {
            let file = StoreFile::new(path);
            let none = KeySource::default();
            assert!(!opens_through_slots(&file, &none));
            let (_, origin) = resolve_in(&none, &file, Some(&prompt)).unwrap();
            assert_eq!(origin, want);
            assert_eq!(file.reads.load(Ordering::Relaxed), 1, "{}", path.display());
        }
    }

    #[test]
    fn local_specs_are_not_services() {
        let err = key_provider(&KeySpec::Passphrase).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err}");
    }
}
