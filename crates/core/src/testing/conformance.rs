//! The [`SecretStore`] contract as tests: run them against a store to show it keeps it.
//!
//! Every function takes the store as `&dyn SecretStore` and a `namespace`, a valid name
//! prefix such as `conformance/7f3a` that no one else uses: every secret a check writes is
//! named under it, so the checks can run against a shared server, and [`run`] deletes what
//! it wrote when it is done. A check panics with a message naming the store, the check and
//! what differed, as a test assertion does; it is test code, not library code.
//!
//! What a store lacks is read from [`SecretStore::capabilities`], never from its name: a
//! check of an operation the store does not claim expects [`Error::Unsupported`] from it, and
//! a check of one it claims expects it to work. (One latitude, as
//! [`Capabilities::versions`](crate::Capabilities::versions) documents: a store without
//! history may serve its current version through `get_version` and `versions`.)
//!
//! ```
//! use strongroom_core::testing::{MemoryStore, conformance};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! conformance::run(&MemoryStore::new(), "conformance").await;
//! # });
//! ```
//!
//! Read-only stores (the environment, a directory of files) cannot be written by the
//! checks; [`read_only`] takes what the test arranged in them instead. A store scoped to a
//! prefix is checked against the store it scopes with [`scoped`].

use crate::{
    Error, MAX_NAME_LEN, Metadata, PutOptions, SecretName, SecretStore, SecretValue, VersionId,
};

/// Asserts that a value matches a pattern, printing the value when it does not.
macro_rules! expect {
    ($value:expr, $pattern:pat $(if $guard:expr)?, $($message:tt)+) => {
        match $value {
            $pattern $(if $guard)? => {}
            ref other => panic!("{} (got {other:?})", format_args!($($message)+)),
        }
    };
}

/// A version id of the same shape as `made` (a store's own ids) that the store has not
/// handed out: a larger number where ids count, else the same text with every hex digit
/// changed (a UUID stays a well-formed UUID).
fn unmade_version(made: &[VersionId]) -> VersionId {
    if let Some(max) = made.iter().filter_map(VersionId::as_u64).max() {
        return VersionId::from(max.saturating_add(1000));
    }
    let sample = made.first().map_or("1", VersionId::as_str);
    let other: String = sample
        .chars()
        .map(|c| match c {
            'e' => 'd',
            'E' => 'D',
            c if c.is_ascii_hexdigit() => 'e',
            c => c,
        })
        .collect();
    VersionId::from(other)
}

/// Runs every check of a writable store, under `namespace`, then deletes (and purges,
/// where the store can) what they wrote.
///
/// # Panics
/// When the store breaks the contract; the message says where.
pub async fn run(store: &dyn SecretStore, namespace: &str) {
    let caps = store.capabilities();
    assert!(
        caps.write,
        "{}: conformance::run needs a writable store; use conformance::read_only",
        store.backend()
    );
    read_write(store, namespace).await;
    values(store, namespace).await;
    longest_name(store, namespace).await;
    list(store, namespace).await;
    versions(store, namespace).await;
    check_and_set(store, namespace).await;
    metadata(store, namespace).await;
    delete(store, namespace).await;
    clean_up(store, namespace).await;
}

/// `put` then `get` give back the value, under the version `put` returned and the name
/// asked for; a name never written is `NotFound { deleted: false }`.
///
/// # Panics
/// When the store breaks the contract.
pub async fn read_write(store: &dyn SecretStore, namespace: &str) {
    let b = store.backend();
    let key = name(namespace, "rw/password");
    let version = ok(b, "put", store.put(&key, "hunter2".into()).await);
    let secret = ok(b, "get", store.get(&key).await);
    assert_eq!(secret.value.expose(), b"hunter2", "{b}: get after put");
    assert_eq!(
        secret.key, key,
        "{b}: the secret's name is the one asked for"
    );
    assert_eq!(
        secret.version, version,
        "{b}: get gives the version put returned"
    );

    let missing = name(namespace, "rw/never-written");
    expect!(store.get(&missing).await, Err(Error::NotFound { deleted: false, ref key, .. }) if key == missing.as_str(), "{b}: a name never written must be NotFound {{ deleted: false }} naming it");

    let results = store
        .get_many(&[key.clone(), missing.clone(), key.clone()])
        .await;
    assert_eq!(results.len(), 3, "{b}: get_many gives one result per name");
    assert!(
        matches!(&results[0], Ok(s) if s.value.expose() == b"hunter2")
            && matches!(&results[1], Err(Error::NotFound { .. }))
            && matches!(&results[2], Ok(s) if s.key == key),
        "{b}: get_many answers in the order asked, duplicates too (got {results:?})"
    );
}

/// Binary values (every byte, invalid UTF-8 included) and large ones come back exactly.
///
/// # Panics
/// When the store breaks the contract.
pub async fn values(store: &dyn SecretStore, namespace: &str) {
    let b = store.backend();
    let binary: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let key = name(namespace, "values/binary");
    ok(
        b,
        "put binary",
        store.put(&key, SecretValue::new(binary.clone())).await,
    );
    let got = ok(b, "get binary", store.get(&key).await);
    assert!(
        got.value.expose() == binary,
        "{b}: a binary value changed on the way"
    );
    assert!(!got.value.is_text(), "{b}: a binary value reads as text");

    // 60 KiB: under AWS Secrets Manager's 64 KiB limit, the tightest of the backends.
    let large: String = (0..60 * 1024u32)
        .map(|i| char::from(b'a' + u8::try_from(i % 26).unwrap_or(0)))
        .collect();
    let key = name(namespace, "values/large");
    ok(b, "put large", store.put(&key, large.as_str().into()).await);
    let got = ok(b, "get large", store.get(&key).await);
    assert!(
        got.value.expose() == large.as_bytes(),
        "{b}: a large value changed on the way"
    );

    let unicode = "pässwörd 密码 🔑";
    let key = name(namespace, "values/unicode");
    ok(b, "put unicode", store.put(&key, unicode.into()).await);
    let got = ok(b, "get unicode", store.get(&key).await);
    assert_eq!(
        got.value.expose_str().ok(),
        Some(unicode),
        "{b}: UTF-8 text changed"
    );
}

/// A name of exactly [`MAX_NAME_LEN`] bytes can be written, read, listed and deleted.
///
/// # Panics
/// When the store breaks the contract.
pub async fn longest_name(store: &dyn SecretStore, namespace: &str) {
    let b = store.backend();
    let base = format!("{namespace}/longest/");
    let longest = format!("{base}{}", "k".repeat(MAX_NAME_LEN - base.len()));
    let key = ok(b, "the longest name", SecretName::new(longest));
    assert_eq!(key.as_str().len(), MAX_NAME_LEN);
    ok(
        b,
        "put the longest name",
        store.put(&key, "long".into()).await,
    );
    let got = ok(b, "get the longest name", store.get(&key).await);
    assert_eq!(got.value.expose(), b"long", "{b}: the longest name");
    let listed = ok(b, "list the longest name", store.list(&base).await);
    assert_eq!(
        listed,
        std::slice::from_ref(&key),
        "{b}: list under {base:?}"
    );
    ok(b, "delete the longest name", store.delete(&key).await);
}

/// `list(prefix)` is a plain string prefix match (not a folder), sorted, without deleted
/// secrets.
///
/// # Panics
/// When the store breaks the contract.
pub async fn list(store: &dyn SecretStore, namespace: &str) {
    let b = store.backend();
    let base = format!("{namespace}/list/");
    for rest in ["b/1", "a/2", "a/1", "ab", "c"] {
        ok(
            b,
            "put",
            store
                .put(&name(namespace, &format!("list/{rest}")), "v".into())
                .await,
        );
    }
    let names = |listed: Vec<SecretName>| -> Vec<String> {
        listed
            .iter()
            .map(|k| {
                k.as_str()
                    .strip_prefix(&base)
                    .unwrap_or(k.as_str())
                    .to_owned()
            })
            .collect()
    };
    let all = names(ok(b, "list", store.list(&base).await));
    assert_eq!(
        all,
        ["a/1", "a/2", "ab", "b/1", "c"],
        "{b}: list({base:?}) sorted"
    );
    let a = names(ok(b, "list", store.list(&format!("{base}a")).await));
    assert_eq!(
        a,
        ["a/1", "a/2", "ab"],
        "{b}: list is a string prefix, not a folder"
    );
    let folder = names(ok(b, "list", store.list(&format!("{base}a/")).await));
    assert_eq!(folder, ["a/1", "a/2"], "{b}: list with a trailing '/'");
    let none = ok(b, "list", store.list(&format!("{base}zz")).await);
    assert!(
        none.is_empty(),
        "{b}: list of a prefix nothing has: {none:?}"
    );

    let everything = ok(b, "list(\"\")", store.list("").await);
    assert!(everything.is_sorted(), "{b}: list(\"\") is sorted");
    let ours: Vec<_> = everything
        .into_iter()
        .filter(|k| k.has_prefix(&base))
        .collect();
    assert_eq!(ours.len(), 5, "{b}: list(\"\") has every secret");
}

/// Versions: each `put` adds one; `versions` lists them oldest first with the last one
/// current; `get_version` reads each; a version never made is `NotFound` naming it. Without
/// [`Capabilities::versions`](crate::Capabilities::versions), both answer `Unsupported`.
///
/// # Panics
/// When the store breaks the contract.
pub async fn versions(store: &dyn SecretStore, namespace: &str) {
    let b = store.backend();
    let key = name(namespace, "versions/key");
    let mut written = Vec::new();
    for value in ["one", "two", "three"] {
        written.push(ok(b, "put", store.put(&key, value.into()).await));
    }
    let mut unique = written.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        3,
        "{b}: each put makes a new version: {written:?}"
    );
    let current = ok(b, "get", store.get(&key).await);
    assert_eq!(
        current.version, written[2],
        "{b}: get reads the last version put"
    );
    assert_eq!(
        current.value.expose(),
        b"three",
        "{b}: get reads the last value put"
    );

    if !store.capabilities().versions {
        no_history(store, &current, &written[0]).await;
        return;
    }
    for (version, value) in written.iter().zip(["one", "two", "three"]) {
        let secret = ok(b, "get_version", store.get_version(&key, version).await);
        assert_eq!(
            secret.value.expose(),
            value.as_bytes(),
            "{b}: version {version}"
        );
        assert_eq!(&secret.version, version, "{b}: get_version's version");
        assert_eq!(secret.key, key, "{b}: get_version's name");
    }
    let history = ok(b, "versions", store.versions(&key).await);
    // Oldest first: in the order written, where the store's creation times tell them apart
    // (AWS records whole seconds; versions written within one may tie), and the current last.
    let position = |id: &VersionId| history.iter().position(|v| &v.version == id);
    let positions: Vec<Option<usize>> = written.iter().map(position).collect();
    assert!(
        positions.iter().all(Option::is_some),
        "{b}: versions lists every version written ({written:?}): {history:?}"
    );
    assert!(
        history
            .windows(2)
            .all(|w| match (w[0].created, w[1].created) {
                (Some(a), Some(b)) => a <= b,
                _ => true,
            }),
        "{b}: versions oldest first: {history:?}"
    );
    if history.iter().all(|v| v.created.is_none()) {
        assert!(
            positions.is_sorted(),
            "{b}: versions in the order written ({written:?}): {history:?}"
        );
    }
    assert_eq!(
        history.last().map(|v| &v.version),
        Some(&written[2]),
        "{b}: the current version is the last of the history"
    );
    let currents: Vec<&VersionId> = history
        .iter()
        .filter(|v| v.current)
        .map(|v| &v.version)
        .collect();
    assert_eq!(
        currents,
        [&written[2]],
        "{b}: exactly the last version is current"
    );
    assert!(
        history.iter().all(|v| !v.deleted && !v.destroyed),
        "{b}: live versions are neither deleted nor destroyed: {history:?}"
    );

    let nothing = unmade_version(&written);
    expect!(store.get_version(&key, &nothing).await, Err(Error::NotFound { version: Some(ref v), .. }) if *v == nothing, "{b}: a version never made is NotFound naming that version");
    let missing = name(namespace, "versions/never-written");
    expect!(
        store.versions(&missing).await,
        Err(Error::NotFound { .. }),
        "{b}: versions of a name never written is NotFound"
    );
}

/// Check-and-set: `if_absent` writes only a new secret, `if_version` only over that
/// version; a refused write is `Conflict` and changes nothing. Without
/// [`Capabilities::check_and_set`](crate::Capabilities::check_and_set), a precondition answers `Unsupported`.
///
/// # Panics
/// When the store breaks the contract.
pub async fn check_and_set(store: &dyn SecretStore, namespace: &str) {
    let b = store.backend();
    let key = name(namespace, "cas/key");
    if !store.capabilities().check_and_set {
        let options = PutOptions::default().if_absent();
        unsupported(
            b,
            "put if_absent",
            store.put_with(&key, "x".into(), &options).await,
        );
        return;
    }
    let absent = PutOptions::default().if_absent();
    let first = ok(
        b,
        "put if_absent (new)",
        store.put_with(&key, "first".into(), &absent).await,
    );
    conflict(
        b,
        "put if_absent (exists)",
        store.put_with(&key, "lost".into(), &absent).await,
    );
    let second = ok(
        b,
        "put if_version (current)",
        store
            .put_with(
                &key,
                "second".into(),
                &PutOptions::default().if_version(first.clone()),
            )
            .await,
    );
    conflict(
        b,
        "put if_version (stale)",
        store
            .put_with(
                &key,
                "lost".into(),
                &PutOptions::default().if_version(first),
            )
            .await,
    );
    let got = ok(b, "get", store.get(&key).await);
    assert_eq!(
        got.value.expose(),
        b"second",
        "{b}: a refused write changed the value"
    );
    assert_eq!(got.version, second, "{b}: a refused write made a version");

    let missing = name(namespace, "cas/never-written");
    let guess = PutOptions::default().if_version(got.version);
    conflict(
        b,
        "put if_version (no secret)",
        store.put_with(&missing, "x".into(), &guess).await,
    );
    expect!(
        store.get(&missing).await,
        Err(Error::NotFound { .. }),
        "{b}: a refused if_version write created the secret"
    );
}

/// Metadata: a `put` with metadata sets the description and tags a `get` reports, and a
/// `put` without keeps them. Without [`Capabilities::metadata`](crate::Capabilities::metadata), it answers `Unsupported`;
/// without [`Capabilities::metadata_on_read`](crate::Capabilities::metadata_on_read), reads report
/// none.
///
/// # Panics
/// When the store breaks the contract.
pub async fn metadata(store: &dyn SecretStore, namespace: &str) {
    let b = store.backend();
    let key = name(namespace, "metadata/key");
    let metadata = Metadata::with_description("the database password").tag("team", "core");
    let options = PutOptions::default().with_metadata(metadata.clone());
    if !store.capabilities().metadata {
        unsupported(
            b,
            "put with metadata",
            store.put_with(&key, "x".into(), &options).await,
        );
        return;
    }
    ok(
        b,
        "put with metadata",
        store.put_with(&key, "x".into(), &options).await,
    );
    let got = ok(b, "get", store.get(&key).await);
    if !store.capabilities().metadata_on_read {
        // Stored, but reads do not carry it: a read reports none rather than a guess.
        assert!(
            got.metadata.is_empty(),
            "{b}: reads carry no metadata, yet get reported some"
        );
        return;
    }
    assert_eq!(
        *got.metadata, metadata,
        "{b}: get reports the metadata put set"
    );
    ok(b, "put without metadata", store.put(&key, "y".into()).await);
    let got = ok(b, "get", store.get(&key).await);
    assert_eq!(
        *got.metadata, metadata,
        "{b}: a put without metadata keeps it"
    );
}

/// Delete, undelete and purge: a deleted secret is `NotFound { deleted: true }` where the
/// store can undelete (and `deleted: false` where delete is for good), is not listed, and
/// comes back with `undelete`; a purged one is `NotFound { deleted: false }`. Deleting a name
/// never written is `NotFound`. Without [`Capabilities::undelete`](crate::Capabilities::undelete) or
/// [`Capabilities::purge`](crate::Capabilities::purge), those answer `Unsupported`.
///
/// # Panics
/// When the store breaks the contract.
pub async fn delete(store: &dyn SecretStore, namespace: &str) {
    let b = store.backend();
    let caps = store.capabilities();
    let key = name(namespace, "delete/key");
    let prefix = format!("{namespace}/delete/");
    let version = ok(b, "put", store.put(&key, "v".into()).await);
    ok(b, "delete", store.delete(&key).await);
    let soft = caps.undelete;
    expect!(store.get(&key).await, Err(Error::NotFound { deleted, .. }) if deleted == soft, "{b}: get after delete must be NotFound {{ deleted: {soft} }}");
    let listed = ok(b, "list", store.list(&prefix).await);
    assert!(
        listed.is_empty(),
        "{b}: a deleted secret is still listed: {listed:?}"
    );
    expect!(
        store.delete(&key).await,
        Err(Error::NotFound { .. }),
        "{b}: deleting a deleted secret must be NotFound"
    );
    let missing = name(namespace, "delete/never-written");
    expect!(
        store.delete(&missing).await,
        Err(Error::NotFound { .. }),
        "{b}: deleting a name never written must be NotFound"
    );

    if caps.undelete {
        if caps.versions {
            // Either the history with the version marked deleted, or the secret's NotFound
            // (AWS refuses to list the versions of a secret scheduled for deletion).
            match store.versions(&key).await {
                Ok(history) => assert!(
                    history.iter().any(|v| v.version == version && v.deleted),
                    "{b}: versions shows the deleted version as deleted: {history:?}"
                ),
                Err(Error::NotFound { deleted: true, .. }) => {}
                Err(other) => panic!("{b}: versions of a deleted secret: {other:?}"),
            }
        }
        ok(b, "undelete", store.undelete(&key).await);
        let back = ok(b, "get after undelete", store.get(&key).await);
        assert_eq!(
            back.value.expose(),
            b"v",
            "{b}: undelete brings the value back"
        );
        assert_eq!(
            back.version, version,
            "{b}: undelete brings the same version back"
        );
        let listed = ok(b, "list", store.list(&prefix).await);
        assert_eq!(
            listed,
            std::slice::from_ref(&key),
            "{b}: an undeleted secret is listed again"
        );
    } else {
        unsupported(b, "undelete", store.undelete(&key).await);
        ok(b, "put again", store.put(&key, "v".into()).await);
    }

    if caps.purge {
        if caps.undelete {
            ok(b, "delete before purge", store.delete(&key).await);
            ok(b, "purge a deleted secret", store.purge(&key).await);
            expect!(
                store.get(&key).await,
                Err(Error::NotFound { deleted: false, .. }),
                "{b}: get after purge must be NotFound {{ deleted: false }}"
            );
            assert!(
                store.undelete(&key).await.is_err(),
                "{b}: a purged secret cannot be undeleted"
            );
        }
        let live = name(namespace, "delete/live");
        ok(b, "put", store.put(&live, "v".into()).await);
        ok(b, "purge a live secret", store.purge(&live).await);
        expect!(
            store.get(&live).await,
            Err(Error::NotFound { deleted: false, .. }),
            "{b}: purge removes a secret that was not deleted first"
        );
    } else {
        unsupported(b, "purge", store.purge(&key).await);
    }
}

/// A read-only store: each of `present` reads back with its value, `missing` (a name the
/// store does not hold) is `NotFound { deleted: false }`, `list` is sorted and has every
/// present name, `get_many` answers in order, and each capability the store lacks answers
/// `Unsupported`.
///
/// # Panics
/// When the store breaks the contract.
pub async fn read_only(
    store: &dyn SecretStore,
    present: &[(SecretName, SecretValue)],
    missing: &SecretName,
) {
    let b = store.backend();
    let caps = store.capabilities();
    for (key, value) in present {
        let got = ok(b, "get", store.get(key).await);
        assert!(got.value == *value, "{b}: {key} reads back another value");
        assert_eq!(&got.key, key, "{b}: the secret's name is the one asked for");
    }
    expect!(
        store.get(missing).await,
        Err(Error::NotFound { deleted: false, .. }),
        "{b}: {missing} must be NotFound {{ deleted: false }}"
    );
    let listed = ok(b, "list", store.list("").await);
    assert!(listed.is_sorted(), "{b}: list is sorted: {listed:?}");
    for (key, _) in present {
        assert!(listed.contains(key), "{b}: list(\"\") lacks {key}");
        let narrowed = ok(b, "list", store.list(key.as_str()).await);
        assert!(
            narrowed.contains(key) && narrowed.iter().all(|k| k.has_prefix(key.as_str())),
            "{b}: list({key:?}) is a string prefix match: {narrowed:?}"
        );
    }
    let mut keys: Vec<SecretName> = present.iter().map(|(k, _)| k.clone()).collect();
    keys.push(missing.clone());
    let results = store.get_many(&keys).await;
    assert_eq!(
        results.len(),
        keys.len(),
        "{b}: get_many gives one result per name"
    );
    for (result, key) in results.iter().zip(&keys) {
        match result {
            Ok(secret) => assert_eq!(&secret.key, key, "{b}: get_many answers in order"),
            Err(err) => assert!(
                key == missing && err.is_not_found(),
                "{b}: get_many {key}: {err}"
            ),
        }
    }
    let Some((key, value)) = present.first() else {
        return;
    };
    if !caps.write {
        unsupported(b, "put", store.put(key, value.clone()).await);
        unsupported(b, "delete", store.delete(key).await);
        let got = ok(b, "get", store.get(key).await);
        assert!(got.value == *value, "{b}: a refused write changed {key}");
    }
    let secret = ok(b, "get", store.get(key).await);
    if caps.versions {
        let history = ok(b, "versions", store.versions(key).await);
        let current: Vec<_> = history.iter().filter(|v| v.current).collect();
        assert_eq!(
            current.len(),
            1,
            "{b}: exactly one current version: {history:?}"
        );
        let again = ok(
            b,
            "get_version",
            store.get_version(key, &secret.version).await,
        );
        assert!(
            again.value == *value,
            "{b}: get_version of the current version"
        );
    } else {
        no_history(
            store,
            &secret,
            &unmade_version(std::slice::from_ref(&secret.version)),
        )
        .await;
    }
    if !caps.undelete {
        unsupported(b, "undelete", store.undelete(key).await);
    }
    if !caps.purge {
        unsupported(b, "purge", store.purge(key).await);
    }
}

/// A scoped store: `scoped` is `outer` seen under `prefix` (a folder: `prefix/`). It reads,
/// lists, writes and deletes only names inside the folder, named without the prefix, and
/// never a sibling that merely starts with the same letters (`{prefix}lication/...` for a
/// prefix ending in `app`).
///
/// `prefix` should be under a namespace of its own, such as `{namespace}/app`; the check
/// writes through `outer`, so `outer` must be writable.
///
/// # Panics
/// When the store breaks the contract.
pub async fn scoped(outer: &dyn SecretStore, scoped: &dyn SecretStore, prefix: &str) {
    let b = scoped.backend();
    let inside = ok(b, "name", SecretName::new(format!("{prefix}/key")));
    let sibling = ok(b, "name", SecretName::new(format!("{prefix}lication/key")));
    ok(
        b,
        "put inside (outer)",
        outer.put(&inside, "inside".into()).await,
    );
    ok(
        b,
        "put sibling (outer)",
        outer.put(&sibling, "outside".into()).await,
    );

    let key = name("key", "");
    let got = ok(b, "get inside (scoped)", scoped.get(&key).await);
    assert_eq!(got.value.expose(), b"inside", "{b}: scoped get of `key`");
    assert_eq!(
        got.key, key,
        "{b}: a scoped secret is named without the prefix"
    );
    let listed = ok(b, "list (scoped)", scoped.list("").await);
    assert_eq!(
        listed,
        std::slice::from_ref(&key),
        "{b}: a scoped list sees only its folder"
    );
    let listed = ok(b, "list k (scoped)", scoped.list("k").await);
    assert_eq!(
        listed,
        std::slice::from_ref(&key),
        "{b}: a scoped list(\"k\")"
    );
    let listed = ok(b, "list l (scoped)", scoped.list("l").await);
    assert!(
        listed.is_empty(),
        "{b}: a scoped list reaches a sibling: {listed:?}"
    );

    let escape = name("lication", "key");
    expect!(
        scoped.get(&escape).await,
        Err(Error::NotFound { .. }),
        "{b}: scoped `lication/key` must not read {sibling}"
    );
    if scoped.capabilities().write {
        expect!(
            scoped.delete(&escape).await,
            Err(Error::NotFound { .. }),
            "{b}: a scoped delete must not reach {sibling}"
        );
        let written = name("db", "password");
        ok(b, "put (scoped)", scoped.put(&written, "new".into()).await);
        let full = ok(b, "name", SecretName::new(format!("{prefix}/db/password")));
        let seen = ok(b, "get the scoped write (outer)", outer.get(&full).await);
        assert_eq!(
            seen.value.expose(),
            b"new",
            "{b}: a scoped write lands in {prefix}/"
        );
        ok(b, "delete (scoped)", scoped.delete(&written).await);
        ok(
            b,
            "delete (outer)",
            outer.delete(&full).await.or_else(not_found_is_fine),
        );
    }
    let still = ok(b, "get sibling (outer)", outer.get(&sibling).await);
    assert_eq!(
        still.value.expose(),
        b"outside",
        "{b}: the sibling was changed"
    );
    for key in [&inside, &sibling] {
        forget(outer, key).await;
    }
}

/// `namespace/rest` (or `namespace` alone for an empty `rest`) as a name.
fn name(namespace: &str, rest: &str) -> SecretName {
    let full = if rest.is_empty() {
        namespace.to_owned()
    } else {
        format!("{namespace}/{rest}")
    };
    SecretName::new(full.as_str())
        .unwrap_or_else(|e| panic!("conformance: {full:?} is not a valid name: {e}"))
}

fn ok<T>(backend: &str, what: &str, result: Result<T, Error>) -> T {
    result.unwrap_or_else(|e| panic!("{backend}: {what} failed: {e} ({e:?})"))
}

fn unsupported<T>(backend: &str, what: &str, result: Result<T, Error>) {
    match result {
        Err(Error::Unsupported { .. }) => {}
        Err(other) => panic!("{backend}: {what} must be Unsupported, got {other:?}"),
        Ok(_) => panic!("{backend}: {what} worked, but capabilities() says it is unsupported"),
    }
}

/// A store without [`Capabilities::versions`](crate::Capabilities::versions): `get_version`
/// and `versions` are both `Unsupported`, or serve the current version only (`old` is a
/// version that is not current).
async fn no_history(store: &dyn SecretStore, current: &crate::Secret, old: &VersionId) {
    let b = store.backend();
    let key = &current.key;
    match store.versions(key).await {
        Err(Error::Unsupported { .. }) => {
            unsupported(b, "get_version", store.get_version(key, old).await);
            unsupported(
                b,
                "get_version",
                store.get_version(key, &current.version).await,
            );
        }
        Err(other) => {
            panic!("{b}: versions without history must be Unsupported or [current], got {other:?}")
        }
        Ok(history) => {
            let ids: Vec<_> = history.iter().map(|v| (&v.version, v.current)).collect();
            assert_eq!(
                ids,
                [(&current.version, true)],
                "{b}: a store without history lists only the current version"
            );
            let again = ok(
                b,
                "get_version (current)",
                store.get_version(key, &current.version).await,
            );
            assert!(
                again.value == current.value,
                "{b}: get_version of the current version"
            );
            expect!(
                store.get_version(key, old).await,
                Err(Error::NotFound { .. }),
                "{b}: a store without history must not serve version {old}"
            );
        }
    }
}

fn conflict<T>(backend: &str, what: &str, result: Result<T, Error>) {
    match result {
        Err(Error::Conflict { .. }) => {}
        Err(other) => panic!("{backend}: {what} must be Conflict, got {other:?}"),
        Ok(_) => panic!("{backend}: {what} must be refused with Conflict, but it was written"),
    }
}

fn not_found_is_fine(err: Error) -> Result<(), Error> {
    if err.is_not_found() { Ok(()) } else { Err(err) }
}

/// Deletes `key` and purges it where the store can; a secret already gone is fine.
async fn forget(store: &dyn SecretStore, key: &SecretName) {
    let caps = store.capabilities();
    let b = store.backend();
    if caps.purge {
        ok(
            b,
            "purge (clean up)",
            store.purge(key).await.or_else(not_found_is_fine),
        );
    } else {
        ok(
            b,
            "delete (clean up)",
            store.delete(key).await.or_else(not_found_is_fine),
        );
    }
}

/// Deletes (and purges) everything under `namespace/`, live or deleted.
async fn clean_up(store: &dyn SecretStore, namespace: &str) {
    let prefix = format!("{namespace}/");
    let listed = ok(
        store.backend(),
        "list (clean up)",
        store.list(&prefix).await,
    );
    for key in &listed {
        forget(store, key).await;
    }
}
