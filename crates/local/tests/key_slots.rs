//! Key slots of the file store: several keys open one store, slots are added, removed and
//! re-wrapped on an open store, a data key unwrapped elsewhere opens it, and a version-1
//! file is upgraded by its next write.
//!
//! A remote slot (AWS KMS, Vault Transit) is the key service's ciphertext; its service is
//! tested in strongroom-aws and strongroom-vault against moto and OpenBao. Here it is
//! stood in for by the data key sealed under a key only the test holds: the file store never
//! looks inside a remote slot, so what matters is that the caller's unwrapped data key opens
//! the store and that the slot's bytes are kept as they were given.

use std::path::Path;

use strongroom_core::{Error, ErrorKind, SecretName, SecretStore};
use strongroom_envelope::{
    DataKey, KeySlot, MasterKey, Passphrase, SlotKind, SlotTable, StoreId, WrappingKey,
};
use strongroom_local::{FileStore, StoreSlots, key_context};

fn name(text: &str) -> SecretName {
    SecretName::new(text).unwrap()
}

fn passphrase(text: &str) -> WrappingKey {
    Passphrase::new(text).with_iterations(1000).into()
}

fn slots_of(path: &Path) -> SlotTable {
    match FileStore::read_slots(path).unwrap() {
        StoreSlots::Slotted(table) => table,
        other => panic!("expected a slotted store, got {other:?}"),
    }
}

/// What stands for a key service's ciphertext here: the data key sealed under a key only
/// this wrapper holds, bound to the context's byte form as KMS and Transit bind it. Not a
/// mock of a service (the file store never calls one); the real ones are tested in
/// strongroom-aws and strongroom-vault.
struct TestWrapper(DataKey);

impl TestWrapper {
    fn new() -> Self {
        TestWrapper(DataKey::generate().unwrap())
    }

    fn wrap(&self, data_key: &DataKey, store_id: &StoreId) -> KeySlot {
        let context = key_context(store_id).to_bytes();
        let wrapped = self
            .0
            .seal_with_context(&data_key.expose_bytes()[..], &context)
            .unwrap();
        KeySlot::new(SlotKind::AwsKms, "alias/test", wrapped).unwrap()
    }

    fn unwrap(
        &self,
        slot: &KeySlot,
        store_id: &StoreId,
    ) -> Result<DataKey, strongroom_envelope::Error> {
        let context = key_context(store_id).to_bytes();
        let bytes = self.0.open_with_context(slot.wrapped(), &context)?;
        DataKey::from_bytes(&bytes)
    }
}

#[tokio::test]
async fn any_slot_opens_the_store_and_slots_come_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.enc");
    let master: WrappingKey = MasterKey::generate().unwrap().into();
    let store = FileStore::create(&path, master.clone()).unwrap();
    store.put(&name("app/db"), "hunter2".into()).await.unwrap();
    let first = slots_of(&path);
    assert_eq!(first.slots().len(), 1);
    assert_eq!(first.slots()[0].kind(), SlotKind::MasterKey);

    store.add_key(passphrase("recovery")).await.unwrap();
    let table = slots_of(&path);
    assert_eq!(
        table.store_id(),
        first.store_id(),
        "the store id never changes"
    );
    assert_eq!(table.slots().len(), 2);
    assert_eq!(table.slots()[1].iterations(), Some(1000));
    let by_passphrase = FileStore::open(&path, passphrase("recovery")).unwrap();
    assert_eq!(
        by_passphrase.get(&name("app/db")).await.unwrap().value,
        "hunter2".into()
    );

    // Remove the master key's slot: the passphrase still opens, the master key no longer.
    store.remove_slot(&table.slots()[0]).await.unwrap();
    assert!(matches!(
        FileStore::open(&path, master.clone()),
        Err(Error::Decrypt { .. })
    ));
    // The handle that was opened with it keeps its data key and keeps working.
    store.put(&name("app/db"), "second".into()).await.unwrap();
    assert_eq!(
        by_passphrase.get(&name("app/db")).await.unwrap().value,
        "second".into()
    );

    // The last slot is not removed, and the file is left as it was.
    let last = slots_of(&path).slots()[0].clone();
    let before = std::fs::read(&path).unwrap();
    let err = store.remove_slot(&last).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("last key slot"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // A slot that is no longer there (read before another change) is a conflict.
    let err = store.remove_slot(&table.slots()[0]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn a_data_key_from_a_key_service_opens_and_creates_stores() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.enc");
    let service = TestWrapper::new();

    // `strongroom init --key aws-kms:... --key passphrase`, as the facade does it.
    let data_key = DataKey::generate().unwrap();
    let store_id = StoreId::generate().unwrap();
    let slots = SlotTable::new(
        store_id,
        vec![
            service.wrap(&data_key, &store_id),
            KeySlot::wrap_local(&data_key, &passphrase("offline")).unwrap(),
        ],
    )
    .unwrap();
    let store = FileStore::create_with_data_key(&path, data_key, slots.clone()).unwrap();
    store.put(&name("app/token"), "t0k3n".into()).await.unwrap();
    assert_eq!(slots_of(&path), slots, "the slots are written as given");

    // Open: read the slots without a key, unwrap the remote one, open with its data key.
    let table = slots_of(&path);
    let remote = &table.slots()[0];
    assert_eq!(
        (remote.kind(), remote.key_id()),
        (SlotKind::AwsKms, "alias/test")
    );
    let unwrapped = service.unwrap(remote, &table.store_id()).unwrap();
    let reopened = FileStore::open_with_data_key(&path, unwrapped).unwrap();
    assert_eq!(
        reopened.get(&name("app/token")).await.unwrap().value,
        "t0k3n".into()
    );
    // A slot bound to another store's id does not unwrap at the service.
    assert!(
        service
            .unwrap(remote, &StoreId::generate().unwrap())
            .is_err()
    );
    // The passphrase slot opens it too (the service is unreachable, say).
    let offline = FileStore::open(&path, passphrase("offline")).unwrap();
    assert_eq!(
        offline.get(&name("app/token")).await.unwrap().value,
        "t0k3n".into()
    );

    // A wrong data key, and a data-key handle asked to rotate a key it does not have.
    let err = FileStore::open_with_data_key(&path, DataKey::generate().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decrypt, "{err}");
    let err = reopened
        .rotate_key(MasterKey::generate().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let missing = dir.path().join("missing.enc");
    let err = FileStore::open_with_data_key(&missing, DataKey::generate().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let err =
        FileStore::create_with_data_key(&path, DataKey::generate().unwrap(), slots).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

#[tokio::test]
async fn a_remote_slot_is_added_replaced_and_kept_by_other_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.enc");
    let master: WrappingKey = MasterKey::generate().unwrap().into();
    let store = FileStore::create(&path, master.clone()).unwrap();
    let other = FileStore::open(&path, master.clone()).unwrap();
    let service = TestWrapper::new();

    let (store_id, data_key) = store.data_key().await.unwrap();
    assert_eq!(store_id, slots_of(&path).store_id());
    let slot = service.wrap(&data_key, &store_id);
    drop(data_key);
    // For another store's id: refused, nothing written.
    let err = store
        .add_slot(slot.clone(), StoreId::generate().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(slots_of(&path).slots().len(), 1);
    store.add_slot(slot.clone(), store_id).await.unwrap();

    // Another handle, opened before the slot was added, writes: the slot survives.
    other.put(&name("a"), "1".into()).await.unwrap();
    assert_eq!(slots_of(&path).slots()[1], slot);
    let by_service =
        FileStore::open_with_data_key(&path, service.unwrap(&slot, &store_id).unwrap()).unwrap();
    assert_eq!(by_service.get(&name("a")).await.unwrap().value, "1".into());

    // Per-slot rekey: the service's key rotated, the slot re-wrapped; the others untouched.
    let rotated = TestWrapper::new();
    let (_, data_key) = by_service.data_key().await.unwrap();
    let rewrapped = rotated.wrap(&data_key, &store_id);
    by_service
        .replace_slot(&slot, rewrapped.clone())
        .await
        .unwrap();
    let table = slots_of(&path);
    assert_eq!(table.slots()[1], rewrapped);
    assert_eq!(table.slots()[0].kind(), SlotKind::MasterKey);
    assert!(rotated.unwrap(&table.slots()[1], &store_id).is_ok());
    assert!(service.unwrap(&table.slots()[1], &store_id).is_err());
    // The stale slot is gone: replacing it again is a conflict.
    let err = by_service
        .replace_slot(&slot, rewrapped.clone())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");

    // A data-key handle can re-wrap a local slot too (a new passphrase for the master key).
    by_service
        .replace_slot_with_key(&table.slots()[0], passphrase("new"))
        .await
        .unwrap();
    assert!(FileStore::open(&path, master).is_err());
    let reopened = FileStore::open(&path, passphrase("new")).unwrap();
    assert_eq!(reopened.get(&name("a")).await.unwrap().value, "1".into());
}

#[tokio::test]
async fn saves_reuse_the_slots_and_rotate_key_keeps_the_other_slots() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.enc");
    let old: WrappingKey = MasterKey::generate().unwrap().into();
    let store = FileStore::create(&path, old.clone()).unwrap();
    store.add_key(passphrase("recovery")).await.unwrap();
    let table_len = 22 + (5 + 66) + (5 + 86);

    // A save re-seals the payload and leaves every slot's bytes as they were.
    let before = std::fs::read(&path).unwrap();
    store.put(&name("k"), "v".into()).await.unwrap();
    let after = std::fs::read(&path).unwrap();
    assert_eq!(before[..table_len], after[..table_len]);
    assert_ne!(before[table_len..], after[table_len..]);

    let new = MasterKey::generate().unwrap();
    store.rotate_key(new.clone()).await.unwrap();
    assert!(matches!(
        FileStore::open(&path, old),
        Err(Error::Decrypt { .. })
    ));
    let table = slots_of(&path);
    assert_eq!(
        table.slots().iter().map(KeySlot::kind).collect::<Vec<_>>(),
        [SlotKind::MasterKey, SlotKind::Passphrase]
    );
    for key in [WrappingKey::from(new), passphrase("recovery")] {
        let reopened = FileStore::open(&path, key).unwrap();
        assert_eq!(reopened.get(&name("k")).await.unwrap().value, "v".into());
    }
    // The handle uses the new key from now on.
    store.put(&name("k"), "w".into()).await.unwrap();
}

#[tokio::test]
async fn a_store_holds_at_most_sixteen_slots() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.enc");
    let store = FileStore::create(&path, MasterKey::generate().unwrap()).unwrap();
    for _ in 1..strongroom_envelope::MAX_SLOTS {
        store.add_key(MasterKey::generate().unwrap()).await.unwrap();
    }
    assert_eq!(slots_of(&path).slots().len(), 16);
    let err = store
        .add_key(MasterKey::generate().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("16 key slots"), "{err}");
}

/// A version-1 store file as earlier releases wrote it, holding `app/db` = `old`.
async fn version_1_store(path: &Path, key: &WrappingKey) -> Vec<u8> {
    let scratch = path.with_extension("scratch");
    let data_key = DataKey::generate().unwrap();
    let slots = SlotTable::new(
        StoreId::generate().unwrap(),
        vec![KeySlot::wrap_local(&data_key, key).unwrap()],
    )
    .unwrap();
    let store = FileStore::create_with_data_key(&scratch, data_key.clone(), slots).unwrap();
    store.put(&name("app/db"), "old".into()).await.unwrap();
    let json =
        strongroom_envelope::open_slotted(&data_key, &std::fs::read(&scratch).unwrap()).unwrap();
    let v1 = strongroom_envelope::seal(key, &json).unwrap();
    std::fs::write(path, &v1).unwrap();
    v1
}

#[tokio::test]
async fn a_version_1_file_opens_and_its_next_write_upgrades_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.enc");
    let key = passphrase("legacy");
    let v1 = version_1_store(&path, &key).await;
    assert_eq!(v1[4], 1);

    match FileStore::read_slots(&path).unwrap() {
        StoreSlots::Single(header) => assert!(header.is_passphrase()),
        other => panic!("expected a version-1 store, got {other:?}"),
    }
    let store = FileStore::open(&path, key.clone()).unwrap();
    assert_eq!(
        store.get(&name("app/db")).await.unwrap().value,
        "old".into()
    );
    assert_eq!(std::fs::read(&path).unwrap(), v1, "reading never rewrites");

    store.put(&name("app/new"), "new".into()).await.unwrap();
    let table = slots_of(&path);
    assert_eq!(table.slots().len(), 1);
    assert_eq!(table.slots()[0].kind(), SlotKind::Passphrase);
    let reopened = FileStore::open(&path, key.clone()).unwrap();
    assert_eq!(
        reopened.get(&name("app/db")).await.unwrap().value,
        "old".into()
    );
    assert_eq!(
        reopened.get(&name("app/new")).await.unwrap().value,
        "new".into()
    );

    // data_key() on a version-1 file writes it as version 2 first, secrets unchanged.
    let path = dir.path().join("v1b.enc");
    let master: WrappingKey = MasterKey::generate().unwrap().into();
    version_1_store(&path, &master).await;
    let store = FileStore::open(&path, master.clone()).unwrap();
    let (store_id, data_key) = store.data_key().await.unwrap();
    assert_eq!(slots_of(&path).store_id(), store_id);
    let by_data_key = FileStore::open_with_data_key(&path, data_key).unwrap();
    assert_eq!(
        by_data_key.get(&name("app/db")).await.unwrap().value,
        "old".into()
    );

    // rotate_key on a version-1 file: version 2 with one slot, for the new key.
    let path = dir.path().join("v1c.enc");
    version_1_store(&path, &master).await;
    let store = FileStore::open(&path, master.clone()).unwrap();
    store.rotate_key(passphrase("rotated")).await.unwrap();
    assert_eq!(slots_of(&path).slots().len(), 1);
    assert!(FileStore::open(&path, master).is_err());
    let reopened = FileStore::open(&path, passphrase("rotated")).unwrap();
    assert_eq!(
        reopened.get(&name("app/db")).await.unwrap().value,
        "old".into()
    );
}

#[tokio::test]
async fn a_store_replaced_under_a_handle_is_read_with_its_own_key() {
    // The data key a handle holds belongs to one store; a different store put at the same
    // path opens with the handle's master key (a slot), and never with the old data key.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.enc");
    let master: WrappingKey = MasterKey::generate().unwrap().into();
    let store = FileStore::builder(&path)
        .revalidate_after(std::time::Duration::ZERO)
        .create(master.clone())
        .unwrap();
    store.put(&name("k"), "first".into()).await.unwrap();
    let (_, first_key) = store.data_key().await.unwrap();
    let by_data_key = FileStore::builder(&path)
        .revalidate_after(std::time::Duration::ZERO)
        .open_with_data_key(first_key)
        .unwrap();

    let elsewhere = dir.path().join("other.enc");
    let other = FileStore::create(&elsewhere, master.clone()).unwrap();
    other.put(&name("k"), "second".into()).await.unwrap();
    std::fs::rename(&elsewhere, &path).unwrap();

    assert_eq!(store.get(&name("k")).await.unwrap().value, "second".into());
    store.put(&name("k"), "third".into()).await.unwrap();
    assert_eq!(
        FileStore::open(&path, master)
            .unwrap()
            .get(&name("k"))
            .await
            .unwrap()
            .value,
        "third".into()
    );
    let err = by_data_key.get(&name("k")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decrypt, "{err}");
}

#[test]
fn the_key_context_names_the_store_and_the_format() {
    let id = StoreId::from_bytes([0xab; 16]);
    let context = key_context(&id);
    assert_eq!(
        context.pairs().collect::<Vec<_>>(),
        [
            ("strongroom:format", "2"),
            ("strongroom:store-id", "abababababababababababababababab")
        ]
    );
    // The Transit `context` of docs/envelope-format.md's recovery commands, for the store id
    // of vector 6: base64 of the canonical bytes.
    use base64::Engine as _;
    let vector_id = StoreId::from_bytes(std::array::from_fn(|i| 0xc0 + u8::try_from(i).unwrap()));
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(key_context(&vector_id).to_bytes()),
        "AAAAEXN0cm9uZ3Jvb206Zm9ybWF0AAAAATIAAAATc3Ryb25ncm9vbTpzdG9yZS1pZAAAACBjMGMxYzJjM2M0YzVjNmM3YzhjOWNhY2JjY2NkY2VjZg=="
    );
}

#[test]
fn reading_slots_needs_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let err = FileStore::read_slots(dir.path().join("none.enc")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let junk = dir.path().join("junk.enc");
    std::fs::write(&junk, b"not a store").unwrap();
    let err = FileStore::read_slots(&junk).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.to_string().contains("not a strongroom store"), "{err}");
}

#[tokio::test]
async fn slots_of_unknown_kinds_are_kept_and_never_count_as_a_way_in() {
    // A newer strongroom may write kinds this build does not know: they survive every write,
    // and the last known slot is still refused removal.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.enc");
    let master: WrappingKey = MasterKey::generate().unwrap().into();
    let data_key = DataKey::generate().unwrap();
    let future = KeySlot::new(SlotKind::Unknown(0x42), "future", vec![7; 33]).unwrap();
    let slots = SlotTable::new(
        StoreId::generate().unwrap(),
        vec![
            future.clone(),
            KeySlot::wrap_local(&data_key, &master).unwrap(),
        ],
    )
    .unwrap();
    FileStore::create_with_data_key(&path, data_key, slots).unwrap();
    let store = FileStore::open(&path, master).unwrap();
    store.put(&name("k"), "v".into()).await.unwrap();
    store.add_key(passphrase("two")).await.unwrap();
    let table = slots_of(&path);
    assert_eq!(table.slots()[0], future);
    store.remove_slot(&table.slots()[1]).await.unwrap();
    let err = store.remove_slot(&table.slots()[2]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert_eq!(slots_of(&path).slots(), [future, table.slots()[2].clone()]);
}
