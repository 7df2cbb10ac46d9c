//! Known-answer tests: the public SigV4 test suite (see `tests/data/README.md`) and the
//! documented IAM `ListUsers` example, run through [`Signer`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use percent_encoding::percent_decode_str;
use strongroom_sigv4::{Credentials, Signer};

/// A request from `request.txt` and the headers of a `*-signed-request.txt`.
struct RawRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn case_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/v4")
        .join(name)
}

fn read(name: &str, file: &str) -> String {
    let path = case_dir(name).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses the suite's HTTP/1.1 text: request line, `Name:value` headers (an indented line
/// continues the previous value), a blank line, the body.
fn parse_request(text: &str) -> RawRequest {
    let (head, body) = match text.split_once("\n\n") {
        Some((head, body)) => (head, body),
        None => (text.trim_end_matches('\n'), ""),
    };
    let mut lines = head.lines();
    let request_line = lines.next().expect("request line");
    // `double-url-encode`'s signed request omits the protocol version.
    let request_line = request_line
        .strip_suffix(" HTTP/1.1")
        .unwrap_or(request_line);
    let (method, target) = request_line.split_once(' ').expect("method and target");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            let last = headers.last_mut().expect("continuation after a header");
            last.1.push('\n');
            last.1.push_str(line);
            continue;
        }
        let (name, value) = line.split_once(':').expect("header line");
        headers.push((name.to_owned(), value.to_owned()));
    }
    RawRequest {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

/// Percent-encodes what `http::Uri` refuses (non-ASCII, spaces), leaving the rest as the suite wrote it.
fn encode_target(target: &str) -> String {
    let mut out = String::new();
    for byte in target.bytes() {
        if byte.is_ascii() && byte != b' ' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

struct Context {
    credentials: Credentials,
    region: String,
    service: String,
    time: SystemTime,
    expires_in: Duration,
    normalize: bool,
    sign_body: bool,
    omit_session_token: bool,
}

/// The two old-format cases have no `context.json`; their contexts are the ones aws-sigv4's own
/// tests sign them with (`test_sign_url_escape`: its `Credentials::for_tests()` key; and the
/// `Authorization` header of `double-url-encode`'s signed request, with the suite's example
/// key), written here in the suite's JSON form.
const OLD_FORMAT_CONTEXTS: &[(&str, &str)] = &[
    (
        "double-encode-path",
        r#"{"credentials": {"access_key_id": "ANOTREAL",
            "secret_access_key": "notrealrnrELgWzOk3IfjzDKtFBhDby"},
            "expiration_in_seconds": 3600, "normalize": true, "region": "us-east-1",
            "service": "service", "timestamp": "2015-08-30T12:36:00Z"}"#,
    ),
    (
        "double-url-encode",
        r#"{"credentials": {"access_key_id": "AKIDEXAMPLE",
            "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
            "expiration_in_seconds": 3600, "normalize": true, "region": "us-east-2",
            "service": "lambda", "timestamp": "2021-05-11T15:40:45Z"}"#,
    ),
];

fn context(name: &str) -> Context {
    let text = match OLD_FORMAT_CONTEXTS.iter().find(|(n, _)| *n == name) {
        Some((_, json)) => (*json).to_owned(),
        None => read(name, "context.json"),
    };
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let creds = &json["credentials"];
    let mut credentials = Credentials::new(
        creds["access_key_id"].as_str().unwrap(),
        creds["secret_access_key"].as_str().unwrap(),
    );
    if let Some(token) = creds["token"].as_str() {
        credentials = credentials.with_session_token(token);
    }
    let time = time::OffsetDateTime::parse(
        json["timestamp"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    Context {
        credentials,
        region: json["region"].as_str().unwrap().to_owned(),
        service: json["service"].as_str().unwrap().to_owned(),
        time: time.into(),
        expires_in: Duration::from_secs(json["expiration_in_seconds"].as_u64().unwrap()),
        normalize: json["normalize"].as_bool().unwrap(),
        sign_body: json["sign_body"].as_bool().unwrap_or(false),
        omit_session_token: json["omit_session_token"].as_bool().unwrap_or(false),
    }
}

/// Replaces each obs-fold (a line break and the next line's leading whitespace) with one space,
/// as RFC 9112 section 5.2 tells a recipient to before it interprets the value: how a folded
/// header (`get-header-value-multiline`) reaches a signer, since `http::HeaderValue` cannot hold
/// a line break. SigV4 then collapses the remaining runs of spaces itself.
fn unfold(value: &str) -> String {
    let mut out = String::new();
    for (i, line) in value.split('\n').enumerate() {
        if i == 0 {
            out.push_str(line);
        } else {
            out.push(' ');
            out.push_str(line.trim_start_matches([' ', '\t']));
        }
    }
    out
}

/// The request to sign: the `Host` header becomes the URI's authority (as in aws-sigv4's own
/// harness), the other headers are kept.
fn build_request(raw: &RawRequest) -> http::Request<Vec<u8>> {
    let host = raw
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone())
        .expect("a Host header");
    let uri = format!("https://{host}{}", encode_target(&raw.target));
    let mut builder = http::Request::builder()
        .method(raw.method.as_str())
        .uri(uri);
    for (name, value) in &raw.headers {
        if !name.eq_ignore_ascii_case("host") {
            builder = builder.header(name.as_str(), unfold(value));
        }
    }
    builder.body(raw.body.clone()).unwrap()
}

/// Cases whose expected values were computed with the path percent-encoded once, not twice
/// (the suite's context has no flag for it; aws-sigv4 skips them). The request paths are
/// unencoded, so encoding them once to build the URI and not again matches the suite.
const SINGLE_ENCODED_PATH: &[&str] =
    &["get-space-normalized", "get-space-unnormalized", "get-utf8"];

fn signer(name: &str, ctx: &Context) -> Signer {
    Signer::new(ctx.region.clone(), ctx.service.clone())
        .double_encode_path(!SINGLE_ENCODED_PATH.contains(&name))
        .normalize_path(ctx.normalize)
        .content_sha256_header(ctx.sign_body)
        .sign_session_token(!ctx.omit_session_token)
}

fn header_map(headers: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        if name != "host" {
            // Whitespace around a field value is not part of it (RFC 9110 section 5.5);
            // `double-url-encode` writes `Authorization: AWS4-...`.
            map.entry(name)
                .or_default()
                .push(unfold(value).trim().to_owned());
        }
    }
    map
}

fn query_params(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| percent_decode_str(s).decode_utf8().unwrap().into_owned();
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect();
    params.sort();
    params
}

fn check_header_signing(name: &str) {
    let ctx = context(name);
    let raw = parse_request(&read(name, "request.txt"));
    let mut request = build_request(&raw);
    let signature = signer(name, &ctx)
        .sign(&mut request, &ctx.credentials, ctx.time)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let expected = parse_request(&read(name, "header-signed-request.txt"));
    // The old-format cases have no `header-signature.txt`; their signed request's
    // `Authorization` header carries the expected signature.
    let expected_signature = if case_dir(name).join("header-signature.txt").exists() {
        read(name, "header-signature.txt").trim().to_owned()
    } else {
        expected
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| v.split_once("Signature="))
            .map_or_else(
                || panic!("{name}: no signature in the signed request"),
                |(_, sig)| sig.trim().to_owned(),
            )
    };
    assert_eq!(
        signature.as_str(),
        expected_signature,
        "{name}: header signature"
    );

    let actual: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        header_map(&actual),
        header_map(&expected.headers),
        "{name}: signed headers"
    );
}

fn check_query_signing(name: &str) {
    let ctx = context(name);
    let raw = parse_request(&read(name, "request.txt"));
    let request = build_request(&raw);
    let uri = signer(name, &ctx)
        .presign(&request, &ctx.credentials, ctx.time, ctx.expires_in)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let expected = parse_request(&read(name, "query-signed-request.txt"));
    let expected_uri: http::Uri = format!("https://h{}", encode_target(&expected.target))
        .parse()
        .unwrap();
    let actual = query_params(uri.query().unwrap_or_default());
    assert_eq!(
        actual,
        query_params(expected_uri.query().unwrap_or_default()),
        "{name}: presigned query"
    );
    let signature = actual
        .iter()
        .find(|(k, _)| k == "X-Amz-Signature")
        .map(|(_, v)| v.as_str());
    assert_eq!(
        signature,
        Some(read(name, "query-signature.txt").trim()),
        "{name}: query signature"
    );
    assert_eq!(uri.path(), request.uri().path(), "{name}: path unchanged");
    assert_eq!(uri.host(), request.uri().host(), "{name}: host unchanged");
}

/// Every case copied from the suite (the directory names under `tests/data/v4`).
fn all_cases() -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v4"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
    names.sort();
    names
}

#[test]
fn suite_has_the_cases_we_rely_on() {
    let names = all_cases();
    for needed in [
        "get-vanilla",
        "get-vanilla-query",
        "get-header-value-trim",
        "post-vanilla-query",
        "post-x-www-form-urlencoded",
        "get-vanilla-with-session-token",
        "post-sts-header-after",
    ] {
        assert!(names.iter().any(|n| n == needed), "missing case {needed}");
    }
    assert!(names.len() >= 30, "only {} cases", names.len());
}

/// What of the suite does not run, and why. Everything else under `tests/data/v4` runs in both
/// modes (header signing and presigned query); `tests/data/README.md` says the same.
///
/// | case (suite folder) | mode | why it does not run |
/// |---|---|---|
/// | `double-encode-path` | query | the suite has no presigned form of this old-format case |
/// | `double-url-encode` | query | the same |
/// | all 38 of `v4a/` (not copied) | both | SigV4a (ECDSA P-256, region sets): the crate signs only HMAC-SHA256 SigV4, which is all AWS Secrets Manager, SSM and KMS take |
const NOT_RUN: &[(&str, &str, &str)] = &[
    (
        "double-encode-path",
        "query",
        "the suite has no presigned form of this old-format case",
    ),
    (
        "double-url-encode",
        "query",
        "the suite has no presigned form of this old-format case",
    ),
];

/// The cases `mode` ("header" or "query") runs: all of them but those [`NOT_RUN`] names.
fn cases_for(mode: &str) -> Vec<String> {
    all_cases()
        .into_iter()
        .filter(|name| !NOT_RUN.iter().any(|(n, m, _)| n == name && *m == mode))
        .collect()
}

/// Runs `check` on every case of `mode` and reports all the failing ones at once; returns how
/// many ran.
fn run_all(mode: &str, check: fn(&str)) -> usize {
    let cases = cases_for(mode);
    let failed: Vec<&String> = cases
        .iter()
        .filter(|name| std::panic::catch_unwind(|| check(name)).is_err())
        .collect();
    assert!(failed.is_empty(), "failing {mode} cases: {failed:?}");
    cases.len()
}

#[test]
fn suite_header_signing() {
    // The 40 cases of aws-sigv4 1.3.8's `aws-signing-test-suite/v4`: every one.
    assert_eq!(run_all("header", check_header_signing), 40);
}

#[test]
fn suite_query_signing() {
    // All but the two old-format cases, which have no presigned form.
    assert_eq!(run_all("query", check_query_signing), 38);
}

/// A case is left out of a mode only when [`NOT_RUN`] says why, and only when the suite really
/// lacks it: a case with expected values for a mode must run in it.
#[test]
fn every_case_runs_or_is_named_with_its_reason() {
    for name in all_cases() {
        let dir = case_dir(&name);
        for (mode, file) in [
            ("header", "header-signature.txt"),
            ("query", "query-signature.txt"),
        ] {
            let named = NOT_RUN.iter().any(|(n, m, _)| *n == name && *m == mode);
            let has_vectors = dir.join(file).exists()
                || (mode == "header" && dir.join("header-signed-request.txt").exists());
            assert_eq!(
                named, !has_vectors,
                "{name} ({mode}): named as not run = {named}, has vectors = {has_vectors}"
            );
        }
    }
    for (name, _, reason) in NOT_RUN {
        assert!(case_dir(name).is_dir(), "{name} is not in tests/data/v4");
        assert!(!reason.is_empty());
    }
}

/// The worked example of the AWS General Reference ("Examples of the complete Signature
/// Version 4 signing process"): IAM ListUsers.
#[test]
fn documented_iam_list_users_example() {
    let credentials = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    let time: SystemTime = time::macros::datetime!(2015-08-30 12:36:00 UTC).into();
    let mut request =
        http::Request::get("https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08")
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(Vec::new())
            .unwrap();
    let signature = Signer::new("us-east-1", "iam")
        .sign(&mut request, &credentials, time)
        .unwrap();
    let expected = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
    assert_eq!(signature.as_str(), expected);
    assert_eq!(
        request.headers()["authorization"],
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature={expected}"
        )
        .as_str()
    );
    assert_eq!(request.headers()["x-amz-date"], "20150830T123600Z");
}
