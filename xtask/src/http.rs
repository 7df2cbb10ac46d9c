//! Plain-http requests to the servers the xtask starts: health checks and seeding.
//!
//! A thin layer over `minreq` (blocking, built without TLS or proxy support): it adds the
//! loopback-only rule and errors as text naming the call. Only loopback addresses are ever
//! dialled (the xtask only talks to the servers it started); redirects are not followed,
//! and any status is an answer, not an error.

use std::net::SocketAddr;
use std::time::Duration;

/// How long a whole request may take, connection and body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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
    request_within(addr, method, path, headers, body, REQUEST_TIMEOUT)
}

/// [`request`] with its own timeout (whole seconds, at least one): probes of a server that
/// may be paused must not wait the default half minute.
pub(crate) fn request_within(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    timeout: Duration,
) -> Result<Response, String> {
    if !addr.ip().is_loopback() {
        return Err(format!("refusing to send a request to non-loopback {addr}"));
    }
    let url = format!("http://{addr}{path}");
    let mut request = minreq::Request::new(minreq::Method::Custom(method.to_owned()), &*url)
        .with_timeout(timeout.as_secs().max(1))
        .with_follow_redirects(false)
        .with_body(body);
    for (name, value) in headers {
        request = request.with_header(*name, *value);
    }
    let response = request.send().map_err(|e| format!("{method} {url}: {e}"))?;
    let body = response
        .as_str()
        .map_err(|e| format!("{method} {url}: read: {e}"))?
        .to_owned();
    Ok(Response {
        status: response.status_code,
        body,
    })
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A one-shot server on loopback: answers the first request with `answer` and hands back
    /// what it received (head and body).
    fn serve_once(answer: &'static str) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut received = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
                received.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            received.push_str(&String::from_utf8(body).unwrap());
            reader.get_mut().write_all(answer.as_bytes()).unwrap();
            received
        });
        (addr, server)
    }

    #[test]
    fn sends_method_headers_and_body_and_reads_status_and_body() {
        let (addr, server) = serve_once(
            "HTTP/1.1 418 I'm a teapot\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{\"x\":1}",
        );
        let response = request(addr, "PUT", "/v1/a?b=c", &[("X-Vault-Token", "t")], "{}").unwrap();
        assert_eq!(response.status, 418);
        assert_eq!(response.json("teapot").unwrap()["x"], 1);
        let received = server.join().unwrap().to_ascii_lowercase();
        assert!(
            received.starts_with("put /v1/a?b=c http/1.1\r\n"),
            "{received}"
        );
        assert!(received.contains("x-vault-token: t\r\n"), "{received}");
        assert!(received.ends_with("\r\n\r\n{}"), "{received}");
    }

    #[test]
    fn a_redirect_is_an_answer_not_followed() {
        let (addr, server) = serve_once(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://192.0.2.1/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        let response = request(addr, "GET", "/", &[], "").unwrap();
        assert_eq!(response.status, 307);
        server.join().unwrap();
    }

    #[test]
    fn refuses_non_loopback() {
        let addr: SocketAddr = "192.0.2.1:80".parse().unwrap();
        let err = request(addr, "GET", "/", &[], "").err().unwrap();
        assert!(err.contains("non-loopback"), "{err}");
    }
}
