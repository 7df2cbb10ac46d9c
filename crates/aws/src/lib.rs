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
//! authorization token are held zeroized where this crate owns them (request bodies are
//! wiped when dropped, response bodies after parsing when not shared), printed by no `Debug`
//! and put in no error message or tracing event.

#![forbid(unsafe_code)]

mod chain;
mod credentials_json;
mod ecs;
mod endpoint;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod imds;
mod profile;
mod secretsmanager;
mod store;
mod sts;
mod timestamp;
mod transport;
mod web_identity;
mod xml;

pub use chain::{ChainProvider, default_provider};
pub use ecs::{ECS_CREDENTIALS_HOST, EcsProvider};
pub use error::AwsError;
pub use imds::{DEFAULT_IMDS_ENDPOINT, DEFAULT_TOKEN_TTL, ImdsProvider};
pub use profile::ProfileChainProvider;
pub use secretsmanager::{
    AWSCURRENT, AWSPREVIOUS, BATCH_GET_MAX_IDS, BatchGetError, BatchGetOutput, ClientBuilder,
    CreateSecret, DeleteMode, ListSecrets, ListSecretsPage, SecretDescription, SecretValueOutput,
    SecretVersion, SecretsManagerClient, VersionSelector, WriteOutput, new_client_request_token,
};
pub use store::{DEFAULT_RECOVERY_WINDOW_DAYS, PREFIX_VAR, SecretsManagerStore, StoreBuilder};
pub use sts::{AssumeRoleProvider, AssumeRoleRequest, StsClient};
pub use web_identity::WebIdentityProvider;
