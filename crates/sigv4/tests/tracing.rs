//! No secret reaches a tracing subscriber, even one that records everything at TRACE level.
//!
//! This test is a binary of its own on purpose: tracing caches, per callsite, whether any
//! subscriber is interested, and when only one subscriber exists it asks the calling
//! thread's current one. Another test signing on another thread at the same moment (inside
//! `Signer`'s silenced section) could then mark aws-sigv4's callsites as uninteresting for
//! good and make the control below fail for a reason that has nothing to do with it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use strongroom_sigv4::{Credentials, Signer};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKENvalue0123456789";

fn time() -> SystemTime {
    time::macros::datetime!(2015-08-30 12:36:00 UTC).into()
}

fn request(body: &str) -> http::Request<Vec<u8>> {
    http::Request::post("https://secretsmanager.us-east-1.amazonaws.com/")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "secretsmanager.GetSecretValue")
        .body(body.as_bytes().to_vec())
        .unwrap()
}

/// A tracing subscriber that records every event at every level, fields formatted with
/// `Debug`, so a test can search what would have been logged.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

impl Capture {
    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

struct Visitor<'a>(&'a mut String);

impl tracing::field::Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut text = self.0.lock().unwrap();
        span.record(&mut Visitor(&mut text));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Visitor(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = self.0.lock().unwrap();
        text.push_str(event.metadata().target());
        text.push(' ');
        event.record(&mut Visitor(&mut text));
        text.push('\n');
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn no_secret_reaches_tracing_even_at_trace_level() {
    let creds = Credentials::new("ASIAEXAMPLE", SECRET).with_session_token(TOKEN);

    // Control: aws-sigv4 on its own logs the canonical request, token included, at TRACE.
    // (If a later aws-sigv4 stops doing so, this control fails and the silencing in
    // `Signer` may go.)
    let control = Capture::default();
    tracing::subscriber::with_default(control.clone(), || {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let identity = aws_credential_types::Credentials::new(
            "ASIAEXAMPLE",
            SECRET,
            Some(TOKEN.to_owned()),
            None,
            "test",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("secretsmanager")
            .time(time())
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            "POST",
            "https://secretsmanager.us-east-1.amazonaws.com/",
            std::iter::empty(),
            SignableBody::Bytes(b"{}"),
        )
        .unwrap();
        sign(signable, &params).unwrap();
    });
    assert!(
        control.text().contains(TOKEN),
        "control: {}",
        control.text()
    );

    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        let signer = Signer::new("us-east-1", "secretsmanager");
        signer
            .sign(&mut request("{\"SecretId\":\"x\"}"), &creds, time())
            .unwrap();
        let req = http::Request::get("https://bucket.s3.amazonaws.com/k")
            .body(Vec::new())
            .unwrap();
        signer
            .presign(&req, &creds, time(), Duration::from_secs(60))
            .unwrap();
        let _ = signer.sign(
            &mut http::Request::get("/").body(Vec::new()).unwrap(),
            &creds,
            time(),
        );
    });
    let text = capture.text();
    assert!(
        text.contains("signed request"),
        "our own events are captured: {text}"
    );
    assert!(!text.contains(TOKEN), "{text}");
    assert!(!text.contains(SECRET), "{text}");
}
