//! [`Listen`]: where the agent listens, and the listening sockets themselves.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::str::FromStr;

use strongroom_core::Error;
use tokio::net::{TcpListener, TcpStream};

/// The AWS Secrets Manager Agent's address, and the agent's default: `127.0.0.1:2773`.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 2773));

/// Where the agent listens: a TCP address, or a Unix socket (`unix:PATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Listen {
    /// A TCP address; loopback only unless
    /// [`AgentBuilder::allow_non_loopback`](crate::AgentBuilder::allow_non_loopback).
    Tcp(SocketAddr),
    /// A Unix socket at this path, created with mode 0600.
    Unix(PathBuf),
}

impl Default for Listen {
    fn default() -> Self {
        Self::Tcp(DEFAULT_LISTEN)
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl FromStr for Listen {
    type Err = Error;

    /// `ADDR:PORT` (`127.0.0.1:2773`, `[::1]:2773`) or `unix:PATH`.
    fn from_str(text: &str) -> Result<Self, Error> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(Error::config(
                    "unix: needs a path, like unix:/run/strongroom.sock",
                ));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        text.parse::<SocketAddr>().map(Self::Tcp).map_err(|_| {
            Error::config(format!(
                "cannot listen on {text:?}: write ADDR:PORT (127.0.0.1:2773, [::1]:2773) or unix:PATH"
            ))
        })
    }
}

impl Listen {
    /// Checks the address before anything is opened: a TCP address must be loopback unless
    /// `allow_non_loopback`.
    ///
    /// # Errors
    /// [`Error::Config`] for a non-loopback address that is not allowed.
    pub fn check(&self, allow_non_loopback: bool) -> Result<(), Error> {
        match self {
            Self::Tcp(addr) if !addr.ip().is_loopback() && !allow_non_loopback => {
                Err(Error::config(format!(
                    "{addr} is not a loopback address: the agent serves this host only unless allowed to listen beyond it (--allow-non-loopback)"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// A bound listening socket.
pub(crate) enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener, PathBuf),
}

/// An accepted connection.
pub(crate) enum Accepted {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl Listener {
    /// Binds `listen`; a TCP address must be loopback unless `allow_non_loopback`.
    pub(crate) async fn bind(listen: &Listen, allow_non_loopback: bool) -> Result<Self, Error> {
        match listen {
            Listen::Tcp(addr) => {
                listen.check(allow_non_loopback)?;
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|e| Error::backend("agent", format!("cannot listen on {addr}"), e))?;
                Ok(Self::Tcp(listener))
            }
            #[cfg(unix)]
            Listen::Unix(path) => bind_unix(path),
            #[cfg(not(unix))]
            Listen::Unix(_) => Err(Error::config("Unix sockets need a Unix system")),
        }
    }

    /// Where it listens (the port the system chose for port 0).
    pub(crate) fn local(&self) -> Result<Listen, Error> {
        match self {
            Self::Tcp(listener) => listener
                .local_addr()
                .map(Listen::Tcp)
                .map_err(|e| Error::backend("agent", "cannot read the listening address", e)),
            #[cfg(unix)]
            Self::Unix(_, path) => Ok(Listen::Unix(path.clone())),
        }
    }

    pub(crate) async fn accept(&self) -> std::io::Result<Accepted> {
        match self {
            Self::Tcp(listener) => {
                let (stream, _) = listener.accept().await?;
                harden(&stream);
                Ok(Accepted::Tcp(stream))
            }
            #[cfg(unix)]
            Self::Unix(listener, _) => Ok(Accepted::Unix(listener.accept().await?.0)),
        }
    }

    /// Removes the socket file of a Unix listener.
    pub(crate) fn close(self) {
        match self {
            Self::Tcp(_) => {}
            #[cfg(unix)]
            Self::Unix(listener, path) => {
                drop(listener);
                if let Err(err) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %err, "cannot remove the agent's socket");
                }
            }
        }
    }
}

/// An accepted TCP socket's answers must not leave the host: IP TTL (IPv6 hop limit) 1, as
/// the AWS agent sets, so a packet is dropped at the first router. No Nagle delay either:
/// answers are one small write.
fn harden(stream: &TcpStream) {
    let result = match stream.local_addr() {
        Ok(SocketAddr::V4(_)) => stream.set_ttl(1),
        #[cfg(unix)]
        Ok(SocketAddr::V6(_)) => rustix::net::sockopt::set_ipv6_unicast_hops(stream, Some(1))
            .map_err(std::io::Error::from),
        #[cfg(not(unix))]
        Ok(SocketAddr::V6(_)) => Ok(()),
        Err(err) => Err(err),
    };
    if let Err(err) = result {
        tracing::warn!(error = %err, "cannot set the hop limit of an accepted connection to 1");
    }
    let _ = stream.set_nodelay(true);
}

/// Binds a Unix socket at `path`, mode 0600. A stale socket (nothing answers on it) is
/// replaced; a live one, or any other file, is an error.
#[cfg(unix)]
fn bind_unix(path: &std::path::Path) -> Result<Listener, Error> {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};

    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(Error::config(format!(
                "{} exists and is not a socket: the agent does not replace it",
                path.display()
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Error::config(format!(
                "another process listens on {} already",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(|e| {
            Error::backend(
                "agent",
                format!("cannot remove the stale socket {}", path.display()),
                e,
            )
        })?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(|e| {
        Error::backend(
            "agent",
            format!("cannot listen on unix:{}", path.display()),
            e,
        )
    })?;
    // Only the owner may connect (connecting needs write permission on the socket). Until
    // this call the umask's mode applies, which never grants others write.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        Error::backend(
            "agent",
            format!("cannot restrict unix:{}", path.display()),
            e,
        )
    })?;
    Ok(Listener::Unix(listener, path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_parse() {
        assert_eq!(
            "127.0.0.1:2773".parse::<Listen>().unwrap(),
            Listen::Tcp(DEFAULT_LISTEN)
        );
        assert_eq!(
            "[::1]:9".parse::<Listen>().unwrap(),
            Listen::Tcp("[::1]:9".parse().unwrap())
        );
        assert_eq!(
            "unix:/run/a.sock".parse::<Listen>().unwrap(),
            Listen::Unix("/run/a.sock".into())
        );
        for bad in ["", "unix:", "localhost", "127.0.0.1", "1.2.3.4:99999"] {
            assert!(bad.parse::<Listen>().is_err(), "{bad:?}");
        }
        assert_eq!(Listen::default().to_string(), "127.0.0.1:2773");
    }

    /// The hop limit is read back from the accepted socket itself, on IPv4 and IPv6.
    #[cfg(unix)]
    #[tokio::test]
    async fn accepted_connections_cannot_leave_the_host() {
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let listener = Listener::bind(&addr.parse().unwrap(), false).await.unwrap();
            let Ok(Listen::Tcp(local)) = listener.local() else {
                panic!("not TCP");
            };
            let client = TcpStream::connect(local).await.unwrap();
            let Accepted::Tcp(accepted) = listener.accept().await.unwrap() else {
                panic!("not TCP");
            };
            if local.is_ipv4() {
                assert_eq!(accepted.ttl().unwrap(), 1, "{addr}");
                assert_ne!(
                    client.ttl().unwrap(),
                    1,
                    "the control: a client keeps its own"
                );
            } else {
                let hops = rustix::net::sockopt::ipv6_unicast_hops(&accepted).unwrap();
                assert_eq!(hops, 1, "{addr}");
            }
            assert!(accepted.nodelay().unwrap());
        }
    }

    #[tokio::test]
    async fn a_non_loopback_address_needs_permission() {
        let any = Listen::Tcp("0.0.0.0:0".parse().unwrap());
        let err = Listener::bind(&any, false).await.err().unwrap();
        assert!(err.to_string().contains("not a loopback address"), "{err}");
    }
}
