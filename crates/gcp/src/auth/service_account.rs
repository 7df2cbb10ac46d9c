//! Service-account keys: an RS256 JWT signed with the key, exchanged at the key file's
//! `token_uri` for an access token (RFC 7523, as Google's libraries do it).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Deserialize;
use strongroom_core::async_trait;
use strongroom_http::HttpClient;
use zeroize::Zeroizing;

use super::token_response::FreshToken;
use super::{
    CLOUD_PLATFORM_SCOPE, DEFAULT_TOKEN_URI, FetchToken, check_token_uri, encode_form, post_form,
};
use crate::error::Error;

/// How long the signed assertion is valid: Google accepts at most an hour.
const ASSERTION_LIFETIME_SECS: u64 = 3600;

/// The JWT bearer grant type (RFC 7523).
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[derive(Deserialize)]
struct KeyFile {
    client_email: Option<String>,
    private_key: Option<Zeroizing<String>>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

/// A service account and its private key.
pub(crate) struct ServiceAccount {
    email: String,
    key_id: Option<String>,
    key: RsaKeyPair,
    token_uri: http::Uri,
    audience: String,
    http: HttpClient,
    rng: SystemRandom,
}

impl ServiceAccount {
    pub(crate) fn from_json(json: &[u8], http: HttpClient) -> Result<Self, Error> {
        let file: KeyFile = serde_json::from_slice(json)
            .map_err(|_| Error::Credentials("not a service-account key file".into()))?;
        let email = file
            .client_email
            .filter(|e| !e.is_empty() && e.len() <= 320)
            .ok_or_else(|| {
                Error::Credentials("the service-account key has no client_email".into())
            })?;
        let pem = file.private_key.ok_or_else(|| {
            Error::Credentials("the service-account key has no private_key".into())
        })?;
        // The DER is zeroized when dropped (rustls-pki-types), the PEM by `Zeroizing`.
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| Error::Credentials("private_key is not a PKCS#8 PEM key".into()))?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|e| {
            Error::Credentials(format!("private_key is not a usable RSA key ({e})"))
        })?;
        let audience = file
            .token_uri
            .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned());
        let token_uri = check_token_uri(&audience)?;
        Ok(Self {
            email,
            key_id: file
                .private_key_id
                .filter(|k| !k.is_empty() && k.len() <= 128),
            key,
            token_uri,
            audience,
            http,
            rng: SystemRandom::new(),
        })
    }

    /// The signed JWT for a token request made at `now` (seconds since the epoch).
    pub(crate) fn assertion(&self, now: u64) -> Result<Zeroizing<String>, Error> {
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = serde_json::Value::from(kid.as_str());
        }
        let claims = serde_json::json!({
            "iss": self.email,
            "scope": CLOUD_PLATFORM_SCOPE,
            "aud": self.audience,
            "iat": now,
            "exp": now.saturating_add(ASSERTION_LIFETIME_SECS),
        });
        let mut jwt = Zeroizing::new(String::with_capacity(1024));
        URL_SAFE_NO_PAD.encode_string(header.to_string(), &mut jwt);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut jwt);
        let mut signature = Zeroizing::new(vec![0; self.key.public().modulus_len()]);
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, jwt.as_bytes(), &mut signature)
            .map_err(|_| Error::Credentials("signing the token request failed".into()))?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&*signature, &mut jwt);
        Ok(jwt)
    }

    #[cfg(test)]
    pub(crate) fn public_key(&self) -> Vec<u8> {
        use ring::signature::KeyPair as _;
        self.key.public_key().as_ref().to_vec()
    }
}

#[async_trait]
impl FetchToken for ServiceAccount {
    async fn fetch(&self) -> Result<FreshToken, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::Credentials("the system clock is before 1970".into()))?
            .as_secs();
        let assertion = self.assertion(now)?;
        let form = encode_form(&[("grant_type", GRANT_TYPE), ("assertion", &assertion)]);
        post_form(&self.http, "service-account token", &self.token_uri, form).await
    }

    fn kind(&self) -> &'static str {
        "service-account"
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    use super::*;
    use crate::auth::Credentials;
    use crate::test_responder::{Reply, Request, Responder};

    /// A test-only RSA key made for these tests with `openssl genpkey`; it signs nothing
    /// anywhere else.
    pub(crate) const TEST_KEY: &str = include_str!("test-key.pem");

    pub(crate) fn key_file(token_uri: &str) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": "kid-1",
            "private_key": TEST_KEY,
            "client_email": "strongroom@test-project.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": token_uri,
        })
        .to_string()
    }

    fn form_value<'a>(body: &'a str, name: &str) -> Option<&'a str> {
        body.split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    }

    /// What Google's token endpoint checks: the grant type, the RS256 signature under the
    /// account's public key, and the claims.
    pub(crate) fn check_grant(
        request: &Request,
        public_key: &[u8],
        audience: &str,
    ) -> Result<(), String> {
        if request.method != "POST"
            || request.header("content-type") != Some("application/x-www-form-urlencoded")
        {
            return Err("not a form POST".into());
        }
        let body = std::str::from_utf8(&request.body).map_err(|e| e.to_string())?;
        if form_value(body, "grant_type")
            != Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
        {
            return Err(format!("grant_type: {body}"));
        }
        let jwt = form_value(body, "assertion").ok_or("no assertion")?;
        let mut parts = jwt.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a three-part JWT".into());
        };
        let signature = URL_SAFE_NO_PAD.decode(s).map_err(|e| e.to_string())?;
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
            .verify(format!("{h}.{c}").as_bytes(), &signature)
            .map_err(|_| "bad signature".to_owned())?;
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        if header["alg"] != "RS256" || header["typ"] != "JWT" || header["kid"] != "kid-1" {
            return Err(format!("header {header}"));
        }
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let iat = claims["iat"].as_u64().ok_or("no iat")?;
        let exp = claims["exp"].as_u64().ok_or("no exp")?;
        if claims["iss"] != "strongroom@test-project.iam.gserviceaccount.com"
            || claims["scope"] != CLOUD_PLATFORM_SCOPE
            || claims["aud"] != audience
            || iat.abs_diff(now) > 60
            || exp != iat + 3600
        {
            return Err(format!("claims {claims}"));
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_signed_jwt_is_exchanged_for_a_token() {
        let calls = Arc::new(AtomicUsize::new(0));
        let public = Arc::new(std::sync::OnceLock::<(Vec<u8>, String)>::new());
        let (seen_calls, seen_public) = (Arc::clone(&calls), Arc::clone(&public));
        let responder = Responder::start(move |request| {
            seen_calls.fetch_add(1, Ordering::SeqCst);
            let (key, aud) = seen_public.get().expect("key known");
            match check_grant(&request, key, aud) {
                Ok(()) => Reply::json(200, r#"{"access_token":"ya29.from-responder","expires_in":3599,"token_type":"Bearer"}"#),
                Err(why) => Reply::json(400, &serde_json::json!({"error": "invalid_grant", "error_description": why}).to_string()),
            }
        })
        .await;
        let uri = responder.url("/token");
        let account = ServiceAccount::from_json(
            key_file(&uri).as_bytes(),
            super::super::token_client().unwrap(),
        )
        .unwrap();
        public.set((account.public_key(), uri.clone())).unwrap();

        let creds = Credentials::from_json(key_file(&uri).as_bytes()).unwrap();
        assert_eq!(creds.kind(), "service-account");
        let token = creds.token().await.unwrap().unwrap();
        assert_eq!(token.expose(), "ya29.from-responder");
        creds.token().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the token is cached");
    }

    #[tokio::test]
    async fn a_wrong_key_is_refused_by_the_checking_responder() {
        // The responder checks against the public key of another account: the signature
        // must fail, which proves the check is real.
        let other = {
            let der = PrivatePkcs8KeyDer::from_pem_slice(TEST_KEY.as_bytes()).unwrap();
            let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
            use ring::signature::KeyPair as _;
            let mut public = pair.public_key().as_ref().to_vec();
            let last = public.len() - 5;
            public[last] ^= 1;
            public
        };
        let audience = Arc::new(std::sync::OnceLock::<String>::new());
        let seen = Arc::clone(&audience);
        let responder = Responder::start(move |request| {
            match check_grant(&request, &other, seen.get().unwrap()) {
                Ok(()) => Reply::json(200, r#"{"access_token":"t","expires_in":3599}"#),
                Err(why) => Reply::json(
                    400,
                    &serde_json::json!({"error": "invalid_grant", "error_description": why})
                        .to_string(),
                ),
            }
        })
        .await;
        let uri = responder.url("/token");
        audience.set(uri.clone()).unwrap();
        let creds = Credentials::from_json(key_file(&uri).as_bytes()).unwrap();
        let err = creds.token().await.unwrap_err();
        assert_eq!(err.code(), Some("invalid_grant"), "{err}");
        assert!(matches!(
            err.into_core(None, None),
            strongroom_core::Error::Unauthenticated { .. }
        ));
    }

    #[tokio::test]
    async fn lying_token_endpoints_give_errors_not_panics() {
        let huge = "x".repeat(200 * 1024);
        let responder = Responder::start(move |request| match request.path.as_str() {
            "/huge" => Reply::json(200, &huge),
            "/forever" => Reply::json(
                200,
                r#"{"access_token":"t","expires_in":99999999999999999999}"#,
            ),
            "/html" => Reply::json(200, "<html>secret</html>"),
            _ => Reply::json(503, "{}"),
        })
        .await;
        for (path, want) in [
            ("/huge", "exceeds the limit"),
            ("/forever", "expires_in"),
            ("/html", "not a token response"),
        ] {
            let creds = Credentials::from_json(key_file(&responder.url(path)).as_bytes()).unwrap();
            let err = creds.token().await.unwrap_err().to_string();
            assert!(err.contains(want), "{path}: {err}");
        }
    }

    #[test]
    fn bad_keys_are_refused_without_showing_them() {
        let no_pem = key_file("https://oauth2.googleapis.com/token")
            .replace("BEGIN PRIVATE KEY", "BEGIN NOTHING");
        let err = Credentials::from_json(no_pem.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("PKCS#8"), "{err}");
        assert!(!err.contains("MII"), "{err}");
        let remote_http = key_file("http://oauth2.example/token");
        assert!(Credentials::from_json(remote_http.as_bytes()).is_err());
    }
}
