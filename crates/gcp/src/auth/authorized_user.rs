//! Authorized-user credentials (`gcloud auth application-default login`): a refresh-token
//! grant at the token endpoint.

use serde::Deserialize;
use strongroom_core::async_trait;
use strongroom_http::HttpClient;
use zeroize::Zeroizing;

use super::token_response::FreshToken;
use super::{DEFAULT_TOKEN_URI, FetchToken, check_token_uri, encode_form, post_form};
use crate::error::Error;

#[derive(Deserialize)]
struct File {
    client_id: Option<String>,
    client_secret: Option<Zeroizing<String>>,
    refresh_token: Option<Zeroizing<String>>,
    token_uri: Option<String>,
}

/// A user's OAuth client and refresh token.
pub(crate) struct AuthorizedUser {
    client_id: String,
    client_secret: Zeroizing<String>,
    refresh_token: Zeroizing<String>,
    token_uri: http::Uri,
    http: HttpClient,
}

impl AuthorizedUser {
    pub(crate) fn from_json(json: &[u8], http: HttpClient) -> Result<Self, Error> {
        let file: File = serde_json::from_slice(json)
            .map_err(|_| Error::Credentials("not an authorized-user credentials file".into()))?;
        let missing =
            |field: &str| Error::Credentials(format!("the authorized-user file has no {field}"));
        let refresh_token = file
            .refresh_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| missing("refresh_token"))?;
        let client_id = file
            .client_id
            .filter(|t| !t.is_empty())
            .ok_or_else(|| missing("client_id"))?;
        let client_secret = file.client_secret.ok_or_else(|| missing("client_secret"))?;
        let token_uri = check_token_uri(file.token_uri.as_deref().unwrap_or(DEFAULT_TOKEN_URI))?;
        Ok(Self {
            client_id,
            client_secret,
            refresh_token,
            token_uri,
            http,
        })
    }
}

#[async_trait]
impl FetchToken for AuthorizedUser {
    async fn fetch(&self) -> Result<FreshToken, Error> {
        let form = encode_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
            ("refresh_token", &self.refresh_token),
        ]);
        post_form(&self.http, "authorized-user token", &self.token_uri, form).await
    }

    fn kind(&self) -> &'static str {
        "authorized-user"
    }
}

#[cfg(test)]
mod tests {
    use crate::auth::Credentials;
    use crate::test_responder::{Reply, Responder};

    #[tokio::test]
    async fn the_refresh_token_is_exchanged() {
        let responder = Responder::start(|request| {
            let body = String::from_utf8_lossy(&request.body).into_owned();
            let expected = "grant_type=refresh_token&client_id=cid.apps&client_secret=csecret&refresh_token=1%2F%2Frt";
            if request.path == "/token" && body == expected {
                Reply::json(200, r#"{"access_token":"ya29.user","expires_in":3599,"token_type":"Bearer","scope":"x"}"#)
            } else {
                Reply::json(400, r#"{"error":"invalid_grant","error_description":"Bad Request"}"#)
            }
        })
        .await;
        let file = serde_json::json!({
            "type": "authorized_user",
            "client_id": "cid.apps",
            "client_secret": "csecret",
            "refresh_token": "1//rt",
            "token_uri": responder.url("/token"),
        });
        let creds = Credentials::from_json(file.to_string().as_bytes()).unwrap();
        assert_eq!(creds.kind(), "authorized-user");
        assert_eq!(creds.token().await.unwrap().unwrap().expose(), "ya29.user");

        let wrong = serde_json::json!({
            "type": "authorized_user",
            "client_id": "cid.apps",
            "client_secret": "csecret",
            "refresh_token": "revoked",
            "token_uri": responder.url("/token"),
        });
        let creds = Credentials::from_json(wrong.to_string().as_bytes()).unwrap();
        let err = creds.token().await.unwrap_err();
        assert!(
            !err.to_string().contains("revoked") && !err.to_string().contains("csecret"),
            "{err}"
        );
        assert!(matches!(
            err.into_core(None, None),
            strongroom_core::Error::Unauthenticated { .. }
        ));
    }
}
