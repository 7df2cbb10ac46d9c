//! AWS Signature Version 4 for any HTTP client, with the credentials that need no network.
//!
//! This crate signs an [`http::Request`] for any AWS service (or an AWS-compatible one such
//! as LocalStack, MinIO or moto) and finds the credentials to sign it with, without the AWS
//! SDK and without an async runtime: it depends on no tokio and no hyper, so it fits any
//! client. The signing itself is the `aws-sigv4` crate's; this crate gives it a small owned
//! configuration ([`Signer`]), credentials whose secrets are zeroized and never printed
//! ([`Credentials`]), and the providers an application usually wants first:
//!
//! - [`StaticProvider`]: keys given in code;
//! - [`EnvProvider`]: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;
//! - [`ProfileProvider`]: `~/.aws/credentials` and `~/.aws/config` (`AWS_PROFILE`,
//!   `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`), parsed by the [`profile`] module,
//!   which also exposes `role_arn`, `source_profile`, `web_identity_token_file` and
//!   `credential_process` for providers that need the network (strongroom-aws has them);
//! - [`CachingProvider`]: caches any provider, refreshes 5 minutes before expiry, and makes
//!   concurrent refreshes one;
//! - [`resolve_region`]: `AWS_REGION`, `AWS_DEFAULT_REGION`, then the profile's `region`.
//!
//! [`ProvideCredentials`] returns a boxed future, so network providers implement the same
//! trait as these local ones.
//!
//! # Signing a request for any service
//!
//! ```
//! use std::time::SystemTime;
//! use strongroom_sigv4::{Credentials, EnvProvider, Env, ProvideCredentials, Signer};
//!
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     let mut f = std::pin::pin!(f);
//! #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//! #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
//! # }
//! # let env = Env::from_vars([("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
//! #     ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")]);
//! // EnvProvider::new() reads the process environment; a map keeps this example hermetic.
//! let provider = EnvProvider::with_env(env);
//! let credentials: Credentials = block_on(provider.provide_credentials())?;
//!
//! // An SQS call; send the signed request with hyper, reqwest, ureq... afterwards.
//! let body = br#"{"QueueNamePrefix":"jobs"}"#.to_vec();
//! let mut request = http::Request::post("https://sqs.eu-west-1.amazonaws.com/")
//!     .header("content-type", "application/x-amz-json-1.0")
//!     .header("x-amz-target", "AmazonSQS.ListQueues")
//!     .body(body)?;
//! let signer = Signer::new("eu-west-1", "sqs");
//! signer.sign(&mut request, &credentials, SystemTime::now())?;
//! let authorization = request.headers()["authorization"].to_str()?;
//! assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
//! assert!(authorization.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-target"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A presigned URL (S3 style: unsigned payload, no path normalization, single encoding):
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use strongroom_sigv4::{Credentials, Signer};
//!
//! let credentials = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
//! let request = http::Request::get("https://bucket.s3.us-east-1.amazonaws.com/report.csv")
//!     .body(Vec::new())?;
//! let s3 = Signer::new("us-east-1", "s3")
//!     .unsigned_payload(true)
//!     .normalize_path(false)
//!     .double_encode_path(false);
//! let url = s3.presign(&request, &credentials, SystemTime::now(), Duration::from_secs(900))?;
//! assert!(url.query().unwrap().contains("X-Amz-Signature="));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Secrets
//!
//! Secret keys, session tokens and every value read from the shared files are zeroized on
//! drop and shown as `[REDACTED]` by `Debug`; no error message holds one. `aws-sigv4` logs
//! the canonical request (session token included) at TRACE level, so [`Signer`] runs it with
//! tracing silenced; this crate's own events carry the service, region, method and host only.
//!
//! # Arithmetic
//!
//! Credential expiries come from servers and files. [`CachingProvider`] computes its refresh
//! time from one only with checked `SystemTime` arithmetic (an expiry it cannot subtract the
//! margin from means "refresh now", never a panic), and presigning lifetimes are bounded by
//! [`MAX_PRESIGN_EXPIRY`]. The crate is compiled with
//! `#![deny(clippy::arithmetic_side_effects)]`, so an unchecked `+`, `-`, `*`, `/` or `%`
//! does not build.

// Nothing from outside is trusted in arithmetic (see "Arithmetic" above); unit tests compute
// their fixtures freely.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

mod cache;
mod credentials;
mod env;
mod error;
pub mod profile;
mod profile_provider;
mod provider;
mod signer;
mod single_flight;

pub use cache::{CachingProvider, DEFAULT_REFRESH_MARGIN};
pub use credentials::Credentials;
pub use env::{Env, EnvProvider};
pub use error::{CredentialsError, SharedError, SigningError};
pub use profile::{Profile, ProfileError, ProfileSet};
pub use profile_provider::{ProfileProvider, resolve_region};
pub use provider::{ProvideCredentials, ProvideFuture, StaticProvider};
pub use signer::{MAX_PRESIGN_EXPIRY, Payload, Signature, Signer};
