//! The one error type of this crate, and how hyper's and rustls' errors are sorted into it.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// A boxed error kept as a [`source`](std::error::Error::source) for callers who want detail.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Where a request was when its deadline passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Opening the TCP connection took longer than the connect timeout.
    Connect,
    /// The whole-request deadline passed before the response head arrived (this includes
    /// connecting, the TLS handshake and sending the request).
    Response,
    /// The whole-request deadline passed while the response body was being read.
    Body,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Response => "waiting for the response",
            Self::Body => "reading the response body",
        })
    }
}

/// Why a request got no response.
///
/// An HTTP status is never an error here: a 404 or a 503 comes back as a
/// [`Response`](crate::Response) and the caller maps it. Messages name the host and what went
/// wrong, never a header value or a body, so they are safe to log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No connection could be opened: refused, reset, unreachable, or the name did not resolve.
    /// Retryable.
    #[error("could not connect to {authority}: {reason}")]
    Connect {
        /// `host:port` the client tried to reach.
        authority: String,
        /// A short reason taken from the innermost cause.
        reason: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// A timeout passed. Retryable.
    #[error("request to {authority} timed out ({phase})")]
    Timeout {
        /// `host:port` of the request.
        authority: String,
        /// Where the request was when time ran out.
        phase: Phase,
    },
    /// The TLS handshake failed or the peer sent a TLS alert: an untrusted or expired
    /// certificate, a name mismatch, a client certificate the server refused. Not retryable:
    /// trying again will not change the certificate.
    #[error("TLS with {authority} failed: {reason}")]
    Tls {
        /// `host:port` of the request.
        authority: String,
        /// What rustls reported.
        reason: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The connection broke after it was open (reset, closed before the response was
    /// complete). Retryable, subject to the request being safe to repeat.
    #[error("connection to {authority} failed during the request: {reason}")]
    Io {
        /// `host:port` of the request.
        authority: String,
        /// A short reason taken from the innermost cause.
        reason: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The server answered something that is not valid HTTP. Not retryable.
    #[error("malformed HTTP response from {authority}: {reason}")]
    Protocol {
        /// `host:port` of the request.
        authority: String,
        /// What the HTTP parser reported.
        reason: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The response body was longer than the configured limit; the rest was not read.
    #[error("response body from {authority} exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// `host:port` of the request.
        authority: String,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The request cannot be sent as given (not an absolute `http`/`https` URI, plain `http`
    /// on a client built `https_only`). Nothing was sent.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: String,
    },
    /// The client could not be built: an unreadable or invalid CA bundle, client certificate
    /// or key. The message names the file, never its contents.
    #[error("HTTP client configuration: {reason}{}", path_suffix(path.as_ref()))]
    Config {
        /// The file involved, when there is one.
        path: Option<PathBuf>,
        /// What is wrong.
        reason: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
}

fn path_suffix(path: Option<&PathBuf>) -> String {
    path.map(|p| format!(" ({})", p.display()))
        .unwrap_or_default()
}

impl Error {
    /// Whether trying the same request again may succeed: connect failures, timeouts and
    /// connections that broke mid-request. The client also retries on 429, 500, 502, 503 and
    /// 504 responses, which are not errors.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Timeout { .. } | Self::Io { .. }
        )
    }

    /// Whether the request certainly never reached the server: no connection was opened.
    /// Only these failures are retried under [`Retry::Unsent`](crate::Retry::Unsent).
    pub fn is_unsent(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. }
                | Self::Timeout {
                    phase: Phase::Connect,
                    ..
                }
        )
    }

    pub(crate) fn config(path: Option<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Config {
            path,
            reason: reason.into(),
            source: None,
        }
    }

    pub(crate) fn config_with(
        path: Option<PathBuf>,
        reason: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::Config {
            path,
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    /// Sorts a failure to open a pooled connection (TCP connect, TLS handshake) into this
    /// crate's variants: nothing was sent.
    pub(crate) fn from_connect(authority: &str, err: crate::pool::Connect) -> Self {
        let err: BoxError = match err {
            crate::pool::Connect::Open(err) => err,
            crate::pool::Connect::Handshake(err) => Box::new(err),
        };
        let authority = authority.to_owned();
        if let Some(reason) = tls_reason(&*err) {
            return Self::Tls {
                authority,
                reason,
                source: err,
            };
        }
        if find::<io::Error>(&*err).is_some_and(|e| e.kind() == io::ErrorKind::TimedOut) {
            return Self::Timeout {
                authority,
                phase: Phase::Connect,
            };
        }
        Self::Connect {
            authority,
            reason: innermost_reason(&*err),
            source: err,
        }
    }

    /// Sorts an error from hyper-util's client (sending the request and receiving the head)
    /// into this crate's variants.
    #[cfg(feature = "http2")]
    pub(crate) fn from_client(authority: &str, err: hyper_util::client::legacy::Error) -> Self {
        let authority = authority.to_owned();
        if let Some(reason) = tls_reason(&err) {
            return Self::Tls {
                authority,
                reason,
                source: Box::new(err),
            };
        }
        if err.is_connect() {
            let timed_out =
                find::<io::Error>(&err).is_some_and(|e| e.kind() == io::ErrorKind::TimedOut);
            if timed_out {
                return Self::Timeout {
                    authority,
                    phase: Phase::Connect,
                };
            }
            return Self::Connect {
                authority,
                reason: innermost_reason(&err),
                source: Box::new(err),
            };
        }
        if find::<hyper::Error>(&err).is_some_and(hyper::Error::is_parse) {
            return Self::Protocol {
                authority,
                reason: innermost_reason(&err),
                source: Box::new(err),
            };
        }
        Self::Io {
            authority,
            reason: innermost_reason(&err),
            source: Box::new(err),
        }
    }

    /// Sorts an error met on an open connection: sending the request, reading the response
    /// head or body.
    pub(crate) fn from_exchange(authority: &str, err: BoxError) -> Self {
        let authority = authority.to_owned();
        if let Some(reason) = tls_reason(&*err) {
            return Self::Tls {
                authority,
                reason,
                source: err,
            };
        }
        if find::<hyper::Error>(&*err).is_some_and(hyper::Error::is_parse) {
            return Self::Protocol {
                authority,
                reason: innermost_reason(&*err),
                source: err,
            };
        }
        Self::Io {
            authority,
            reason: innermost_reason(&*err),
            source: err,
        }
    }
}

/// What went wrong in TLS, if the chain holds a TLS failure.
///
/// rustls errors reach us inside `io::Error`s of kind `InvalidData`. Over HTTP/2 the `h2`
/// crate keeps only the kind and the text of an I/O error (it must clone errors), so a
/// server's alert after the handshake (a refused client certificate under TLS 1.3) arrives
/// as text; the prefixes below are rustls' `Display` for its protocol failures.
fn tls_reason(err: &(dyn StdError + 'static)) -> Option<String> {
    if let Some(tls) = find::<rustls::Error>(err) {
        return Some(tls.to_string());
    }
    const RUSTLS_PREFIXES: [&str; 5] = [
        "received fatal alert: ",
        "invalid peer certificate: ",
        "peer is incompatible: ",
        "peer misbehaved: ",
        "peer sent no certificates",
    ];
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::InvalidData
        {
            let text = io.to_string();
            if RUSTLS_PREFIXES.iter().any(|p| text.starts_with(p)) {
                return Some(text);
            }
        }
        next = e.source();
    }
    None
}

/// Walks an error's chain looking for a `T`, also looking inside `io::Error`s, whose
/// `source()` skips the error they wrap (rustls errors travel inside `io::Error`s).
fn find<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next: Option<&'a (dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            if let Some(found) = inner.downcast_ref::<T>() {
                return Some(found);
            }
            if let Some(found) = find::<T>(inner) {
                return Some(found);
            }
        }
        next = e.source();
    }
    None
}

/// The message of the deepest error in the chain, which is the one that says what happened
/// ("Connection refused (os error 111)") rather than where ("client error (Connect)").
fn innermost_reason(err: &(dyn StdError + 'static)) -> String {
    let mut last = err;
    let mut next = Some(err);
    while let Some(e) = next {
        last = e;
        next = match e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_variants() {
        let boxed = || -> BoxError { Box::new(io::Error::other("x")) };
        let a = "h:1".to_owned();
        let cases: Vec<(Error, bool)> = vec![
            (
                Error::Connect {
                    authority: a.clone(),
                    reason: "refused".into(),
                    source: boxed(),
                },
                true,
            ),
            (
                Error::Timeout {
                    authority: a.clone(),
                    phase: Phase::Body,
                },
                true,
            ),
            (
                Error::Io {
                    authority: a.clone(),
                    reason: "reset".into(),
                    source: boxed(),
                },
                true,
            ),
            (
                Error::Tls {
                    authority: a.clone(),
                    reason: "bad cert".into(),
                    source: boxed(),
                },
                false,
            ),
            (
                Error::Protocol {
                    authority: a.clone(),
                    reason: "bad".into(),
                    source: boxed(),
                },
                false,
            ),
            (
                Error::BodyTooLarge {
                    authority: a,
                    limit: 1,
                },
                false,
            ),
            (
                Error::InvalidRequest {
                    reason: "relative".into(),
                },
                false,
            ),
            (Error::config(None, "bad"), false),
        ];
        for (err, expected) in cases {
            assert_eq!(err.is_retryable(), expected, "{err}");
        }
    }

    #[test]
    fn finds_errors_wrapped_in_io_errors() {
        let inner = rustls::Error::General("boom".into());
        let outer = io::Error::new(io::ErrorKind::InvalidData, inner);
        let found = find::<rustls::Error>(&outer).expect("found through io::Error");
        assert_eq!(found.to_string(), "unexpected error: boom");
        assert_eq!(innermost_reason(&outer), "unexpected error: boom");
    }

    #[test]
    fn tls_failures_are_recognised_in_text_form_too() {
        let typed = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
        );
        let text = io::Error::new(
            io::ErrorKind::InvalidData,
            "received fatal alert: CertificateRequired",
        );
        let other_kind = io::Error::new(
            io::ErrorKind::ConnectionReset,
            "received fatal alert: CertificateRequired",
        );
        let plain = io::Error::new(io::ErrorKind::InvalidData, "bad chunk size");
        let expected = Some("received fatal alert: CertificateRequired".to_owned());
        assert_eq!(tls_reason(&typed), expected);
        assert_eq!(tls_reason(&text), expected);
        assert_eq!(tls_reason(&other_kind), None);
        assert_eq!(tls_reason(&plain), None);
    }

    #[test]
    fn config_message_names_the_path() {
        let err = Error::config(Some(PathBuf::from("/etc/ca.pem")), "no certificate found");
        assert_eq!(
            err.to_string(),
            "HTTP client configuration: no certificate found (/etc/ca.pem)"
        );
    }
}
