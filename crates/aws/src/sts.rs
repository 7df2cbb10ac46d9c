//! STS over its query protocol: [`StsClient`] (AssumeRole, AssumeRoleWithWebIdentity) and
//! [`AssumeRoleProvider`], role credentials on top of any base provider.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{Method, Request, StatusCode, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use strongroom_http::{HttpClient, Retry};
use strongroom_sigv4::{
    Credentials, CredentialsError, Env, ProvideCredentials, ProvideFuture, Signer,
};
use zeroize::Zeroizing;

use crate::error::AwsError;
use crate::transport;

const SERVICE: &str = "sts";
const API_VERSION: &str = "2011-06-15";

/// What the query protocol leaves unencoded (RFC 3986 unreserved characters).
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A client for the AWS Security Token Service.
#[derive(Clone)]
pub struct StsClient {
    http: HttpClient,
    endpoint: Uri,
    signer: Signer,
}

impl fmt::Debug for StsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StsClient")
            .field("endpoint", &self.endpoint)
            .field("region", &self.signer.region())
            .finish_non_exhaustive()
    }
}

/// The parameters of an AssumeRole call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssumeRoleRequest {
    /// The role to assume, `arn:aws:iam::<account>:role/<name>`.
    pub role_arn: String,
    /// The session name, shown in CloudTrail (2 to 64 of `[\w+=,.@-]`).
    pub session_name: String,
    /// How long the credentials live (STS default: 1 hour).
    pub duration: Option<Duration>,
    /// The external id the role's trust policy requires, if any.
    pub external_id: Option<String>,
}

impl AssumeRoleRequest {
    /// Assumes `role_arn` with a session named `strongroom-<unix millis>`.
    pub fn new(role_arn: impl Into<String>) -> Self {
        Self {
            role_arn: role_arn.into(),
            session_name: default_session_name(),
            duration: None,
            external_id: None,
        }
    }

    /// Sets the session name.
    #[must_use]
    pub fn session_name(mut self, name: impl Into<String>) -> Self {
        self.session_name = name.into();
        self
    }

    /// Sets the credentials' lifetime (900 s to the role's maximum).
    #[must_use]
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// Sets the external id.
    #[must_use]
    pub fn external_id(mut self, id: impl Into<String>) -> Self {
        self.external_id = Some(id.into());
        self
    }
}

/// `strongroom-<unix millis>`: unique enough per process, and says who made the session.
pub(crate) fn default_session_name() -> String {
    let millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!("strongroom-{millis}")
}

impl StsClient {
    /// A client for `endpoint`, signing for `region`.
    ///
    /// # Errors
    /// [`AwsError::Config`] when the endpoint is not an absolute http(s) URL or the region
    /// is not a region name (`[a-z0-9-]`, at most 32 characters).
    pub fn new(http: HttpClient, region: &str, endpoint: &str) -> Result<Self, AwsError> {
        crate::endpoint::check_region(region)?;
        Ok(Self {
            http,
            endpoint: crate::endpoint::parse(endpoint)?,
            signer: Signer::new(region, SERVICE),
        })
    }

    /// A client configured the AWS way: region from `AWS_REGION` / `AWS_DEFAULT_REGION` / the
    /// profile (else `us-east-1`), endpoint from `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL`
    /// (else the regional endpoint).
    ///
    /// # Errors
    /// [`AwsError::Config`] for a bad endpoint, a region that is not a region name, or
    /// unreadable shared config.
    pub fn from_env(env: &Env) -> Result<Self, AwsError> {
        let region = strongroom_sigv4::resolve_region(env)
            .map_err(|e| AwsError::Config(e.to_string()))?
            .unwrap_or_else(|| "us-east-1".to_owned());
        Self::for_region(env, &region)
    }

    /// Like [`from_env`](Self::from_env) with the region given.
    ///
    /// # Errors
    /// [`AwsError::Config`] for a bad endpoint or a region that is not a region name.
    pub fn for_region(env: &Env, region: &str) -> Result<Self, AwsError> {
        crate::endpoint::check_region(region)?;
        let endpoint = crate::endpoint::resolve(env, "STS", SERVICE, region)?;
        let http = HttpClient::new().map_err(|source| AwsError::Http {
            service: SERVICE,
            operation: "build client",
            source,
        })?;
        Ok(Self {
            http,
            endpoint,
            signer: Signer::new(region, SERVICE),
        })
    }

    /// Calls AssumeRole signed with `credentials`; returns the role's temporary credentials.
    ///
    /// # Errors
    /// [`AwsError::Service`] for STS's refusals (`AccessDenied`, `InvalidClientTokenId`, ...),
    /// [`AwsError::Http`], [`AwsError::Malformed`].
    pub async fn assume_role(
        &self,
        credentials: &Credentials,
        request: &AssumeRoleRequest,
    ) -> Result<Credentials, AwsError> {
        let seconds = request.duration.map(|d| d.as_secs().to_string());
        let mut form = vec![
            ("Action", "AssumeRole"),
            ("Version", API_VERSION),
            ("RoleArn", request.role_arn.as_str()),
            ("RoleSessionName", request.session_name.as_str()),
        ];
        if let Some(seconds) = &seconds {
            form.push(("DurationSeconds", seconds));
        }
        if let Some(id) = &request.external_id {
            form.push(("ExternalId", id));
        }
        let body = encode_form(&form);
        let out = self.call("AssumeRole", body, Some(credentials)).await?;
        tracing::debug!(service = SERVICE, operation = "AssumeRole", role = %request.role_arn, "assumed role");
        Ok(out)
    }

    /// Calls AssumeRoleWithWebIdentity (unsigned: the token is the proof).
    ///
    /// # Errors
    /// As [`assume_role`](Self::assume_role).
    pub async fn assume_role_with_web_identity(
        &self,
        role_arn: &str,
        session_name: &str,
        web_identity_token: &str,
        duration: Option<Duration>,
    ) -> Result<Credentials, AwsError> {
        let seconds = duration.map(|d| d.as_secs().to_string());
        let mut form = vec![
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", API_VERSION),
            ("RoleArn", role_arn),
            ("RoleSessionName", session_name),
        ];
        if let Some(seconds) = &seconds {
            form.push(("DurationSeconds", seconds));
        }
        // The token is borrowed into the one buffer, never copied elsewhere.
        form.push(("WebIdentityToken", web_identity_token));
        let body = encode_form(&form);
        let out = self.call("AssumeRoleWithWebIdentity", body, None).await?;
        tracing::debug!(service = SERVICE, operation = "AssumeRoleWithWebIdentity", role = %role_arn, "assumed role");
        Ok(out)
    }

    async fn call(
        &self,
        operation: &'static str,
        mut body: Zeroizing<String>,
        credentials: Option<&Credentials>,
    ) -> Result<Credentials, AwsError> {
        // The buffer moves into the wiped request body: no copy of it is left behind.
        let body = transport::secret_body(std::mem::take(&mut *body).into_bytes());
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.clone())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body)
            .map_err(|e| AwsError::Config(format!("cannot build the STS request: {e}")))?;
        let response = transport::send(
            &self.http,
            credentials.map(|c| (&self.signer, c)),
            SERVICE,
            operation,
            request,
            // AssumeRole creates nothing: repeating it is safe.
            Retry::Always,
        )
        .await?;
        if response.status != StatusCode::OK {
            return Err(transport::service_error(SERVICE, operation, &response));
        }
        let parsed = parse_credentials(operation, &response.body);
        transport::wipe(response.body);
        parsed
    }
}

/// `k=v&k=v`, percent-encoded, in a buffer wiped on drop and sized once: a growing
/// `String` would reallocate and free partial copies of the token without wiping them.
fn encode_form(pairs: &[(&str, &str)]) -> Zeroizing<String> {
    let len = pairs.iter().fold(0usize, |len, (k, v)| {
        let value: usize = utf8_percent_encode(v, FORM)
            .map(str::len)
            .fold(0, usize::saturating_add);
        // `&`, `k`, `=`, value.
        len.saturating_add(k.len())
            .saturating_add(2)
            .saturating_add(value)
    });
    let mut out = Zeroizing::new(String::with_capacity(len));
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.extend(utf8_percent_encode(v, FORM));
    }
    out
}

/// Reads `<Credentials>` out of an AssumeRole* response.
pub(crate) fn parse_credentials(
    operation: &'static str,
    body: &[u8],
) -> Result<Credentials, AwsError> {
    let malformed = |reason: &str| AwsError::Malformed {
        service: SERVICE,
        operation,
        reason: reason.to_owned(),
    };
    let text = std::str::from_utf8(body).map_err(|_| malformed("the body is not UTF-8"))?;
    let field = |name: &str| {
        crate::xml::child(text, "Credentials", name)
            .map(Zeroizing::new)
            .ok_or_else(|| malformed(&format!("no Credentials/{name}")))
    };
    let key_id = field("AccessKeyId")?;
    let secret = field("SecretAccessKey")?;
    let token = field("SessionToken")?;
    let expiration = field("Expiration")?;
    let expiry = crate::timestamp::parse_rfc3339(&expiration)
        .ok_or_else(|| malformed("unreadable Credentials/Expiration"))?;
    Ok(Credentials::new(key_id.as_str(), secret.as_str())
        .with_session_token(token.as_str())
        .with_expiry(expiry))
}

/// The credentials of an IAM role, assumed with the credentials of a base provider.
///
/// Wrap it in a [`CachingProvider`](strongroom_sigv4::CachingProvider): each call here is
/// one AssumeRole.
pub struct AssumeRoleProvider {
    sts: StsClient,
    base: Arc<dyn ProvideCredentials>,
    request: AssumeRoleRequest,
}

impl fmt::Debug for AssumeRoleProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssumeRoleProvider")
            .field("sts", &self.sts)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl AssumeRoleProvider {
    /// Assumes the role of `request` through `sts`, signing with `base`'s credentials.
    pub fn new(
        sts: StsClient,
        base: Arc<dyn ProvideCredentials>,
        request: AssumeRoleRequest,
    ) -> Self {
        Self { sts, base, request }
    }

    /// Loads base credentials and assumes the role.
    ///
    /// # Errors
    /// The base provider's error as it is; STS failures as [`CredentialsError::Provider`].
    pub async fn load(&self) -> Result<Credentials, CredentialsError> {
        let base = self.base.provide_credentials().await?;
        self.sts
            .assume_role(&base, &self.request)
            .await
            .map_err(|e| CredentialsError::provider("sts-assume-role", e))
    }
}

impl ProvideCredentials for AssumeRoleProvider {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        ProvideFuture::new(self.load())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_assume_role_response() {
        let body = br#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/demo/s</Arn></AssumedRoleUser>
    <Credentials>
      <SessionToken>FwoGZXIvYXdzE&amp;token</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <Expiration>2030-07-15T23:28:33.359Z</Expiration>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
    </Credentials>
  </AssumeRoleResult>
</AssumeRoleResponse>"#;
        let c = parse_credentials("AssumeRole", body).unwrap();
        assert_eq!(c.access_key_id(), "ASIAIOSFODNN7EXAMPLE");
        assert_eq!(c.session_token(), Some("FwoGZXIvYXdzE&token"));
        assert!(c.expiry().is_some());
        assert!(matches!(
            parse_credentials("AssumeRole", b"<x/>"),
            Err(AwsError::Malformed { .. })
        ));
    }

    #[test]
    fn form_encoding_is_rfc3986() {
        let body = encode_form(&[("RoleArn", "arn:aws:iam::1:role/a b+c")]);
        assert_eq!(
            body.as_str(),
            "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa%20b%2Bc"
        );
        let pairs = [("A", "1"), ("WebIdentityToken", "eyJ.x+y/z=")];
        let body = encode_form(&pairs);
        assert_eq!(body.as_str(), "A=1&WebIdentityToken=eyJ.x%2By%2Fz%3D");
        assert!(body.capacity() - body.len() <= 1, "sized once, not grown");
    }
}
