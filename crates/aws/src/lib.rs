//! AWS Secrets Manager for strongroom: a [`SecretsManagerClient`] for the whole API the
//! backend needs, the [`SecretsManagerStore`] implementing
//! [`SecretStore`](strongroom_core::SecretStore) on it, and the credential providers that
//! need the network.
//!
//! Requests are signed by `strongroom-sigv4` and sent by `strongroom-http` (timeouts,
//! bounded retries with jitter, TLS by rustls); there is no AWS SDK underneath.
//!
//! - [`SecretsManagerClient`]: GetSecretValue, BatchGetSecretValue, CreateSecret,
//!   PutSecretValue, UpdateSecret, UpdateSecretVersionStage, DeleteSecret, RestoreSecret,
//!   DescribeSecret, ListSecrets (every page), ListSecretVersionIds, TagResource,
//!   UntagResource. Endpoint from `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL`, or
//!   the region's; errors keep AWS's code ([`AwsError::code`]) and map onto
//!   [`strongroom_core::Error`] ([`AwsError::into_core`]).
//! - [`SecretsManagerStore`]: see the [`store`](SecretsManagerStore) docs for how each
//!   operation maps, the compare-and-swap on staging labels, and name prefixes.
//! - [`SsmStore`]: the same [`SecretStore`](strongroom_core::SecretStore) on SSM Parameter
//!   Store (`SecureString` parameters, `app/db/password` is `/app/db/password`), with its
//!   [`SsmClient`]; see the [`ssm`] module for the mapping, the size and name rules, and what
//!   check-and-set can and cannot promise there.
//! - [`KmsKeyProvider`]: a [`KeyProvider`](strongroom_core::KeyProvider) on AWS KMS
//!   (Encrypt, Decrypt, GenerateDataKey) that wraps an encrypted store's data key, bound to
//!   the store by an encryption context; see the [`kms`] module. Endpoint from
//!   `AWS_ENDPOINT_URL_KMS`, `AWS_ENDPOINT_URL`, or the region's.
//! - Credentials: [`ImdsProvider`] (IMDSv2), [`EcsProvider`] (ECS / EKS Pod Identity),
//!   [`WebIdentityProvider`] (AssumeRoleWithWebIdentity), [`AssumeRoleProvider`] (STS
//!   AssumeRole on any base provider), [`ProfileChainProvider`] (profiles with `role_arn`),
//!   and [`default_provider`], the chain in the AWS SDKs' order: environment, profile, web
//!   identity, container, instance metadata.
//!
//! ```no_run
//! use strongroom_aws::SecretsManagerStore;
//! use strongroom_core::{SecretName, SecretStore, SecretValue};
//!
//! # async fn demo() -> Result<(), strongroom_core::Error> {
//! // AWS_REGION, credentials from the default chain, optional STRONGROOM_AWS_PREFIX.
//! let store = SecretsManagerStore::from_env().await?;
//! let key = SecretName::new("app/db/password")?;
//! let version = store.put(&key, SecretValue::from("hunter2")).await?;
//! let secret = store.get(&key).await?;
//! assert_eq!(secret.version, version);
//! # Ok(()) }
//! ```
//!
//! # Signing a request for another AWS service with strongroom-sigv4 alone
//!
//! The signing crate needs neither this crate nor a runtime. Any provider here (IMDS, STS,
//! the default chain) implements its `ProvideCredentials`, so the two combine:
//!
//! ```
//! use std::time::SystemTime;
//! use strongroom_sigv4::{Credentials, Signer};
//!
//! // An SQS SendMessage; the signed request can go out with any HTTP client.
//! let credentials = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
//!     .with_session_token("session-token-from-sts");
//! let mut request = http::Request::post("https://sqs.eu-west-1.amazonaws.com/")
//!     .header("content-type", "application/x-amz-json-1.0")
//!     .header("x-amz-target", "AmazonSQS.SendMessage")
//!     .body(br#"{"QueueUrl":"https://sqs.eu-west-1.amazonaws.com/123456789012/jobs","MessageBody":"hi"}"#.to_vec())?;
//! Signer::new("eu-west-1", "sqs").sign(&mut request, &credentials, SystemTime::now())?;
//! assert!(request.headers().contains_key("authorization"));
//! assert!(request.headers().contains_key("x-amz-security-token"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The IAM policy the backend needs
//!
//! Scope `Resource` to the store's prefix (`myapp/prod/` here; Secrets Manager appends six
//! random characters to each ARN, hence the trailing `*`). `ListSecrets` and
//! `BatchGetSecretValue` cannot be scoped to a resource; BatchGetSecretValue also checks
//! `GetSecretValue` on each secret. Drop the write actions for a read-only application.
//!
//! ```json
//! {
//!   "Version": "2012-10-17",
//!   "Statement": [
//!     {
//!       "Sid": "StrongroomSecrets",
//!       "Effect": "Allow",
//!       "Action": [
//!         "secretsmanager:GetSecretValue",
//!         "secretsmanager:DescribeSecret",
//!         "secretsmanager:ListSecretVersionIds",
//!         "secretsmanager:CreateSecret",
//!         "secretsmanager:PutSecretValue",
//!         "secretsmanager:UpdateSecret",
//!         "secretsmanager:UpdateSecretVersionStage",
//!         "secretsmanager:DeleteSecret",
//!         "secretsmanager:RestoreSecret",
//!         "secretsmanager:TagResource",
//!         "secretsmanager:UntagResource"
//!       ],
//!       "Resource": "arn:aws:secretsmanager:*:123456789012:secret:myapp/prod/*"
//!     },
//!     {
//!       "Sid": "StrongroomList",
//!       "Effect": "Allow",
//!       "Action": ["secretsmanager:ListSecrets", "secretsmanager:BatchGetSecretValue"],
//!       "Resource": "*"
//!     }
//!   ]
//! }
//! ```
//!
//! With a customer-managed KMS key, also allow `kms:Decrypt` (reads) and
//! `kms:GenerateDataKey` (writes) on that key. Roles assumed through a profile or
//! [`AssumeRoleProvider`] need `sts:AssumeRole` on the role for the base identity.
//!
//! # Secrets
//!
//! Secret values, secret keys, session tokens, the IMDS token and the container
//! authorization token are held zeroized where this crate owns them, printed by no `Debug`
//! and put in no error message or tracing event:
//!
//! - request bodies that carry a secret (CreateSecret, PutSecretValue, the STS forms with
//!   the web identity token) borrow it, are serialised once into a buffer of their final
//!   size (a growing buffer would free partial copies unwiped), and are wiped when the
//!   request is dropped at the end of the call; no JSON tree ever holds the value;
//! - token files (`AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`)
//!   are read at each call, at most 64 KiB, into a wiped buffer dropped when the call ends;
//! - response bodies are wiped after parsing when this crate holds their only reference,
//!   and the secrets parsed out of them go straight into `Zeroizing` strings.
//!
//! Not wiped, because this crate does not own them: hyper's connection buffers, and
//! serde_json's scratch buffer for a response string that contains escapes.
//!
//! # Arithmetic
//!
//! Every number a server, a file or a variable gives is bounded before use: credential
//! `Expiration`s (IMDS, ECS, STS, web identity) must parse as RFC 3339 within years 0-9999
//! (else a provider error), epoch seconds from Secrets Manager must lie in `0..=1e12`, paged
//! calls (ListSecrets, ListSecretVersionIds, BatchGetSecretValue) stop with an error after
//! a bounded number of pages, and `Retry-After` is bounded by strongroom-http. The crate is
//! compiled with `#![deny(clippy::arithmetic_side_effects)]`: an unchecked `+`, `-`, `*`,
//! `/` or `%` does not build, so the rule holds for code not yet written.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// Nothing from outside is trusted in arithmetic (see "Arithmetic" above): every `+ - * / %`
// in this crate is checked, saturating or wrapping, and clippy refuses one that is not.
// Unit tests compute their fixtures freely.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

mod chain;
mod client_settings;
mod credentials_json;
mod ecs;
mod endpoint;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod imds;
mod json_api;
pub mod kms;
mod profile;
mod secretsmanager;
pub mod ssm;
mod store;
mod sts;
mod timestamp;
mod token_file;
mod transport;
mod web_identity;
mod xml;

pub use chain::{ChainProvider, default_provider};
pub use ecs::{ECS_CREDENTIALS_HOST, EcsProvider};
pub use error::AwsError;
pub use imds::{DEFAULT_IMDS_ENDPOINT, DEFAULT_TOKEN_TTL, ImdsProvider};
pub use kms::{KMS_KIND, KmsKeyProvider, KmsKeyProviderBuilder};
pub use profile::ProfileChainProvider;
pub use secretsmanager::{
    AWSCURRENT, AWSPREVIOUS, BATCH_GET_MAX_IDS, BatchGetError, BatchGetOutput, ClientBuilder,
    CreateSecret, DeleteMode, ListSecrets, ListSecretsPage, MAX_PAGES, SecretDescription,
    SecretValueOutput, SecretVersion, SecretsManagerClient, VersionSelector, WriteOutput,
    new_client_request_token,
};
pub use secretsmanager::{RotateSecret, RotationRules};
pub use ssm::{ParameterTier, SsmClient, SsmClientBuilder, SsmStore, SsmStoreBuilder};
pub use store::{DEFAULT_RECOVERY_WINDOW_DAYS, PREFIX_VAR, SecretsManagerStore, StoreBuilder};
pub use sts::{AssumeRoleProvider, AssumeRoleRequest, StsClient};
pub use web_identity::WebIdentityProvider;
