//! `VAULT_CACERT` and `VAULT_CAPATH` against a real rustls server with a private CA made
//! here (rcgen): the server is trusted through the file or the directory, and a client
//! given another CA refuses it. With either variable set, the public (webpki) roots are
//! not trusted at all (the Vault CLI's behaviour): the CA file or directory is the whole
//! trust store, which is why a wrong one fails even for a server a public CA could vouch
//! for.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use strongroom_core::ErrorKind;
use strongroom_vault::VaultStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

/// A CA; its PEM and an issuer for server certificates.
fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

/// An HTTPS server for 127.0.0.1 with a certificate from `issuer`, answering every request
/// with a `lookup-self` answer. Returns its address.
async fn https_server(issuer: &Issuer<'static, KeyPair>) -> String {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, issuer)
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buf = vec![0u8; 8192];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = r#"{"data":{"display_name":"tls","policies":["default"],"ttl":0,"renewable":false,"type":"service"}}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

fn store(vars: &[(&str, &str)]) -> VaultStore {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    VaultStore::from_lookup(move |name| {
        vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .unwrap()
}

#[tokio::test]
async fn vault_cacert_and_capath_are_the_trust_store() {
    let (ca_pem, issuer) = ca("strongroom vault test CA");
    let (other_pem, _) = ca("some other CA");
    let addr = https_server(&issuer).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let other_file = dir.path().join("other.pem");
    std::fs::write(&other_file, &other_pem).unwrap();
    let ca_dir = dir.path().join("certs");
    std::fs::create_dir(&ca_dir).unwrap();
    std::fs::write(ca_dir.join("a-other.pem"), &other_pem).unwrap();
    std::fs::write(ca_dir.join("b-ours.pem"), &ca_pem).unwrap();
    let ca_file = ca_file.display().to_string();
    let other_file = other_file.display().to_string();
    let ca_dir = ca_dir.display().to_string();

    // Trusted through VAULT_CACERT, and through any file of VAULT_CAPATH.
    for vars in [
        vec![("VAULT_CACERT", ca_file.as_str())],
        vec![("VAULT_CAPATH", ca_dir.as_str())],
    ] {
        let mut all = vec![("VAULT_ADDR", addr.as_str()), ("VAULT_TOKEN", "t")];
        all.extend(vars.iter().copied());
        let info = store(&all).client().lookup_self().await;
        assert_eq!(info.unwrap().display_name, "tls", "{vars:?}");
    }

    // Neither the public roots nor anything else: another CA is refused, and the error
    // names no token. VAULT_CACERT wins over a VAULT_CAPATH that would have worked.
    for vars in [
        vec![("VAULT_CACERT", other_file.as_str())],
        vec![
            ("VAULT_CACERT", other_file.as_str()),
            ("VAULT_CAPATH", ca_dir.as_str()),
        ],
    ] {
        let mut all = vec![
            ("VAULT_ADDR", addr.as_str()),
            ("VAULT_TOKEN", "hvs.tls-secret"),
        ];
        all.extend(vars.iter().copied());
        let err = store(&all).client().lookup_self().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Backend, "{vars:?}: {err}");
        assert!(!err.to_string().contains("tls-secret"), "{err}");
    }

    // Without any CA setting, the private CA is not trusted either (webpki roots only).
    let err = store(&[("VAULT_ADDR", addr.as_str()), ("VAULT_TOKEN", "t")])
        .client()
        .lookup_self()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
}
