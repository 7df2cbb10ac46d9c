//! The local store's document parser, reached through the public API: the input (arbitrary
//! bytes, usually JSON-ish) is sealed with a fixed key, so it passes the envelope and lands
//! in the parser of the decrypted store document. Opening may fail with an error; when it
//! succeeds, every operation on every listed key must answer without panicking.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strongroom_core::SecretStore;
use strongroom_envelope::{MasterKey, WrappingKey, seal};
use strongroom_local::FileStore;

fn master() -> &'static MasterKey {
    static KEY: OnceLock<MasterKey> = OnceLock::new();
    KEY.get_or_init(|| MasterKey::from_bytes(&[11u8; 32]).expect("32 bytes"))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let key: WrappingKey = master().clone().into();
    let sealed = seal(&key, data).expect("seal");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.enc");
    std::fs::write(&path, &sealed).expect("write store");
    let Ok(store) = FileStore::open(&path, key) else {
        return;
    };
    runtime().block_on(async {
        let Ok(keys) = store.list("").await else {
            return;
        };
        for k in keys.iter().take(16) {
            if let Ok(versions) = store.versions(k).await {
                for v in versions.iter().take(4) {
                    let _ = store.get_version(k, &v.version).await;
                }
            }
            let _ = store.get(k).await;
        }
    });
});
