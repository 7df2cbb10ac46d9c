//! The rustls client configuration: which roots are trusted, which client certificate is
//! offered, which protocols are negotiated.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use zeroize::Zeroizing;

use crate::Error;

/// What to trust and what to present; built into a [`ClientConfig`] by [`TlsSettings::build`].
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsSettings {
    /// Trust the Mozilla roots shipped in `webpki-roots`.
    pub(crate) webpki_roots: bool,
    /// PEM bundles of extra trusted CAs.
    pub(crate) ca_files: Vec<PathBuf>,
    /// PEM certificate chain and PEM private key for mTLS.
    pub(crate) identity: Option<(PathBuf, PathBuf)>,
}

impl TlsSettings {
    pub(crate) fn build(&self) -> Result<ClientConfig, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        if self.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for path in &self.ca_files {
            add_ca_file(&mut roots, path)?;
        }
        if roots.is_empty() {
            return Err(Error::config(
                None,
                "no trusted root certificates: enable the webpki roots or add a CA file",
            ));
        }
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::config_with(None, "TLS protocol versions", e))?
            .with_root_certificates(roots);
        // ALPN is left empty: hyper-rustls fills it from the protocols the client enables.
        let config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some((cert_path, key_path)) => {
                let chain = read_certificates(cert_path)?;
                let key = read_private_key(key_path)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    Error::config_with(
                        Some(key_path.clone()),
                        "client certificate and key do not form a usable identity",
                        e,
                    )
                })?
            }
        };
        Ok(config)
    }
}

fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), Error> {
    let certs = read_certificates(path)?;
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| Error::config_with(Some(path.to_owned()), "invalid CA certificate", e))?;
    }
    Ok(())
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = std::fs::read(path).map_err(|e| {
        Error::config_with(Some(path.to_owned()), "cannot read certificate file", e)
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::config_with(Some(path.to_owned()), "invalid PEM certificate file", e)
        })?;
    if certs.is_empty() {
        return Err(Error::config(
            Some(path.to_owned()),
            "no PEM certificate found in file",
        ));
    }
    Ok(certs)
}

/// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1). The file's bytes are zeroized once
/// parsed. The DER key then goes to rustls, which keeps the signing key it derives for the
/// client's life and does not zeroize the DER it was given: a limit of rustls we cannot lift.
fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let pem = Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| Error::config_with(Some(path.to_owned()), "cannot read key file", e))?,
    );
    // The PEM parser's own errors say where the file is malformed, never what it holds.
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        Error::config_with(Some(path.to_owned()), "no valid PEM private key in file", e)
    })?;
    Ok(key)
}
