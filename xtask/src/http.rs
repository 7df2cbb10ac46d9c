//! A tiny HTTP/1.0 client on std's `TcpStream`, enough for health checks and seeding.
//!
//! HTTP/1.0 with `Connection: close` means the server answers with a plain body that ends
//! when the socket closes: no chunked decoding, no keep-alive, no dependency. Only loopback
//! addresses are ever dialled (the xtask only talks to the servers it started).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long one connect, read or write may take before the call fails.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A response: status code and body.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: String,
}

impl Response {
    /// The body parsed as JSON, or an error naming what was asked.
    pub(crate) fn json(&self, what: &str) -> Result<serde_json::Value, String> {
        serde_json::from_str(&self.body).map_err(|e| format!("{what}: response is not JSON: {e}"))
    }
}

/// Sends one request to `addr` and reads the whole response.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Response, String> {
    if !addr.ip().is_loopback() {
        return Err(format!("refusing to send a request to non-loopback {addr}"));
    }
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .map_err(|e| format!("{method} http://{addr}{path}: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| format!("socket timeouts: {e}"))?;
    let mut head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| format!("{method} http://{addr}{path}: write: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("{method} http://{addr}{path}: read: {e}"))?;
    parse(&raw).ok_or_else(|| format!("{method} http://{addr}{path}: malformed HTTP response"))
}

/// Splits a raw HTTP/1.x response into status and body.
fn parse(raw: &[u8]) -> Option<Response> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(Response {
        status,
        body: body.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let response = parse(b"HTTP/1.0 204 No Content\r\nA: b\r\n\r\n{\"x\":1}").unwrap();
        assert_eq!(response.status, 204);
        assert_eq!(response.body, "{\"x\":1}");
        assert!(parse(b"garbage").is_none());
    }

    #[test]
    fn refuses_non_loopback() {
        let addr: SocketAddr = "192.0.2.1:80".parse().unwrap();
        let err = request(addr, "GET", "/", &[], "").err().unwrap();
        assert!(err.contains("non-loopback"), "{err}");
    }
}
