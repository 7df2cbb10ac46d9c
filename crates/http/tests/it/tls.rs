//! TLS against a real rustls server with a private CA made here (rcgen): trust only through
//! `add_ca_file`, mutual TLS through `client_identity_pem`, HTTP/2 by ALPN, and clear
//! configuration errors for bad files.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use strongroom_http::{Error, HttpClient};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::support::{self, reply};

/// A CA, a server certificate for 127.0.0.1 and a client certificate it signed, as PEM
/// files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    server_cert: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
    ca_cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "strongroom test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let server_cert =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .unwrap()
                .signed_by(&server_key, &issuer)
                .unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client_params =
            CertificateParams::new(vec!["client.strongroom.test".to_owned()]).unwrap();
        client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("client.pem"), client_cert.pem()).unwrap();
        std::fs::write(dir.path().join("client.key"), client_key.serialize_pem()).unwrap();
        Self {
            dir,
            server_cert: server_cert.der().clone(),
            server_key: PrivateKeyDer::from_pem_slice(server_key.serialize_pem().as_bytes())
                .unwrap(),
            ca_cert: ca_cert.der().clone(),
            issuer,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A server config for a new certificate naming `names`, signed by this CA.
    fn server_config_for(&self, names: &[&str], mtls: bool) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
        self.config_with(cert.der().clone(), key, mtls)
    }

    /// A server config for 127.0.0.1 and localhost with ALPN h2 and http/1.1; requiring a
    /// client certificate from this CA when `mtls`.
    fn server_config(&self, mtls: bool) -> Arc<rustls::ServerConfig> {
        self.config_with(self.server_cert.clone(), self.server_key.clone_key(), mtls)
    }

    fn config_with(
        &self,
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
        mtls: bool,
    ) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if mtls {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca_cert.clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_single_cert(vec![cert], key).unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

fn get(url: &str) -> http::Request<Bytes> {
    http::Request::get(url).body(Bytes::new()).unwrap()
}

#[tokio::test]
async fn a_private_ca_is_trusted_only_when_added() {
    let pki = Pki::new();
    let server = support::https(|_, _| reply(200, "over tls"), pki.server_config(false)).await;

    let err = HttpClient::new()
        .unwrap()
        .send(get(&server.https_url("/")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    assert_eq!(server.requests(), 0);
    assert_eq!(server.connections(), 1, "a TLS failure is not retried");

    let client = HttpClient::builder()
        .add_ca_file(pki.path("ca.pem"))
        .build()
        .unwrap();
    let response = client.send(get(&server.https_url("/"))).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(&response.body[..], b"over tls");
    // The server offers h2 first; without the feature the client offers only http/1.1.
    let negotiated = if cfg!(feature = "http2") {
        http::Version::HTTP_2
    } else {
        http::Version::HTTP_11
    };
    assert_eq!(response.version, negotiated, "version negotiated by ALPN");

    #[cfg(feature = "http2")]
    {
        let http1 = HttpClient::builder()
            .add_ca_file(pki.path("ca.pem"))
            .webpki_roots(false)
            .http2(false)
            .build()
            .unwrap();
        let response = http1.send(get(&server.https_url("/"))).await.unwrap();
        assert_eq!(response.version, http::Version::HTTP_11);
    }
}

#[tokio::test]
async fn the_certificate_must_name_the_host() {
    let pki = Pki::new();
    let config = pki.server_config_for(&["vault.strongroom.test"], false);
    let server = support::https(|_, _| reply(200, "ok"), config).await;
    let client = HttpClient::builder()
        .add_ca_file(pki.path("ca.pem"))
        .build()
        .unwrap();
    let err = client.send(get(&server.https_url("/"))).await.unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("not valid for name"), "{err}");
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn mutual_tls_needs_the_client_identity() {
    let pki = Pki::new();
    let server = support::https(|_, _| reply(200, "hello client"), pki.server_config(true)).await;

    let anonymous = HttpClient::builder()
        .add_ca_file(pki.path("ca.pem"))
        .build()
        .unwrap();
    let err = anonymous
        .send(get(&server.https_url("/")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("CertificateRequired"), "{err}");
    assert_eq!(server.requests(), 0);
    assert_eq!(server.connections(), 1, "a TLS failure is not retried");

    // The same over HTTP/1.1, where the rustls error arrives typed rather than as text.
    #[cfg(feature = "http2")]
    {
        let anonymous = HttpClient::builder()
            .add_ca_file(pki.path("ca.pem"))
            .http2(false)
            .build()
            .unwrap();
        let err = anonymous
            .send(get(&server.https_url("/")))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err:?}");
        assert_eq!(server.connections(), 2);
    }

    let client = HttpClient::builder()
        .add_ca_file(pki.path("ca.pem"))
        .client_identity_pem(pki.path("client.pem"), pki.path("client.key"))
        .build()
        .unwrap();
    let response = client.send(get(&server.https_url("/"))).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(&response.body[..], b"hello client");
}

fn config_error(builder: strongroom_http::ClientBuilder) -> (Option<PathBuf>, String) {
    match builder.build() {
        Err(err @ Error::Config { .. }) => {
            let text = format!("{err} {err:?}");
            let Error::Config { path, .. } = err else {
                unreachable!()
            };
            (path, text)
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn bad_files_are_configuration_errors_that_name_the_file() {
    let pki = Pki::new();
    let missing = pki.path("missing.pem");
    let (path, _) = config_error(HttpClient::builder().add_ca_file(&missing));
    assert_eq!(path.as_deref(), Some(missing.as_path()));

    let not_pem = pki.path("not.pem");
    std::fs::write(&not_pem, "just some text\n").unwrap();
    let (path, text) = config_error(HttpClient::builder().add_ca_file(&not_pem));
    assert_eq!(path.as_deref(), Some(not_pem.as_path()));
    assert!(text.contains("no PEM certificate"), "{text}");

    // A key file that is not a key: the message names the file and holds none of its text.
    let bad_key = pki.path("bad.key");
    std::fs::write(
        &bad_key,
        "-----BEGIN PRIVATE KEY-----\nS0VZTUFURVJJQUwtc2hvdWxkLW5vdC1sZWFr\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let (path, text) =
        config_error(HttpClient::builder().client_identity_pem(pki.path("client.pem"), &bad_key));
    assert_eq!(path.as_deref(), Some(bad_key.as_path()));
    assert!(
        !text.contains("S0VZTUFURVJJQUwtc2hvdWxkLW5vdC1sZWFr"),
        "{text}"
    );

    // A key that does not match the certificate.
    let other_key = pki.path("other.key");
    std::fs::write(&other_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let (path, _) =
        config_error(HttpClient::builder().client_identity_pem(pki.path("client.pem"), &other_key));
    assert_eq!(path.as_deref(), Some(other_key.as_path()));

    let (path, text) = config_error(HttpClient::builder().webpki_roots(false));
    assert_eq!(path, None);
    assert!(text.contains("no trusted root"), "{text}");
}
