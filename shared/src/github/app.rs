//! GitHub App authentication: the App's RS256 JWT, and the two requests that turn it into an
//! installation token for an org (`GET /orgs/{org}/installation`, then
//! `POST /app/installations/{id}/access_tokens`).
//!
//! The JWT is minted for each token request (it is cheap, and never outlives ten minutes); the
//! private key and every token stay in `secrecy`/`jsonwebtoken` types that never print.

use std::time::{Duration, SystemTime};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{GithubClient, GithubError};

/// How far in the past `iat` is set: GitHub's advice against clock drift.
const CLOCK_DRIFT: Duration = Duration::from_secs(60);
/// `exp - iat`: GitHub refuses a JWT living longer than ten minutes.
const JWT_LIFETIME: Duration = Duration::from_secs(600);

/// Why the App's private key cannot be used. Never carries the key.
#[derive(Debug, thiserror::Error)]
pub enum AppKeyError {
    /// The key is not an RSA private key in PEM (PKCS#1 or PKCS#8).
    #[error("not an RSA private key in PEM form ({0})")]
    InvalidKey(String),
    /// Signing a JWT failed.
    #[error("signing the App's JWT failed: {0}")]
    Signing(String),
}

/// The App's identity: its ID (the JWT's `iss`) and its private key, parsed once at start-up so
/// a bad key fails there. No `Debug` of the key: [`AppKey`]'s `Debug` shows the ID only.
#[derive(Clone)]
pub struct AppKey {
    app_id: String,
    key: EncodingKey,
}

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppKey")
            .field("app_id", &self.app_id)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// The JWT's claims, as GitHub reads them.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iat: u64,
    exp: u64,
    iss: String,
}

impl AppKey {
    /// The App `app_id` (numeric ID or client ID) with its PEM private key.
    pub fn from_pem(app_id: &str, pem: &[u8]) -> Result<Self, AppKeyError> {
        // The parser's message says what is wrong with the form, never the key's bytes.
        let key =
            EncodingKey::from_rsa_pem(pem).map_err(|e| AppKeyError::InvalidKey(e.to_string()))?;
        let app = Self {
            app_id: app_id.to_owned(),
            key,
        };
        // Fail fast: a key that parses but cannot sign is found at start-up, not at first use.
        app.jwt(SystemTime::now())?;
        Ok(app)
    }

    /// The App's ID, as configured.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// A JWT for `now`: `iat` a minute in the past, `exp` ten minutes after `iat`.
    pub(crate) fn jwt(&self, now: SystemTime) -> Result<SecretString, AppKeyError> {
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let iat = now.saturating_sub(CLOCK_DRIFT.as_secs());
        let claims = Claims {
            iat,
            exp: iat + JWT_LIFETIME.as_secs(),
            iss: self.app_id.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map(SecretString::from)
            .map_err(|e| AppKeyError::Signing(e.to_string()))
    }
}

/// An installation token and when it stops working.
pub(crate) struct InstallationToken {
    pub(crate) token: SecretString,
    pub(crate) expires_at: SystemTime,
}

/// What the App's requests can end in, before [`super::CredentialError`] names the org.
#[derive(Debug)]
pub(crate) enum AppRequestError {
    /// No request was answered (network, timeout, refused target).
    Client(GithubError),
    /// Signing the JWT failed.
    Key(AppKeyError),
    /// GitHub answered with this status.
    Status(StatusCode),
    /// GitHub's 2xx body was not what its docs describe.
    Body(String),
}

#[derive(Deserialize)]
struct InstallationBody {
    id: u64,
}

#[derive(Deserialize)]
struct AccessTokenBody {
    token: String,
    expires_at: String,
}

/// `GET /orgs/{org}/installation` with the App's JWT: the id of the App's installation on `org`.
pub(crate) async fn installation_id(
    client: &GithubClient,
    key: &AppKey,
    org: &str,
) -> Result<u64, AppRequestError> {
    let body = app_request(
        client,
        key,
        Method::GET,
        &format!("/orgs/{org}/installation"),
    )
    .await?;
    serde_json::from_slice::<InstallationBody>(&body)
        .map(|b| b.id)
        .map_err(|e| AppRequestError::Body(e.to_string()))
}

/// `POST /app/installations/{id}/access_tokens` with the App's JWT: a new installation token.
pub(crate) async fn access_token(
    client: &GithubClient,
    key: &AppKey,
    installation: u64,
) -> Result<InstallationToken, AppRequestError> {
    let target = format!("/app/installations/{installation}/access_tokens");
    let body = app_request(client, key, Method::POST, &target).await?;
    let parsed: AccessTokenBody =
        serde_json::from_slice(&body).map_err(|e| AppRequestError::Body(e.to_string()))?;
    let expires_at = time::OffsetDateTime::parse(
        &parsed.expires_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|e| AppRequestError::Body(format!("expires_at: {e}")))?;
    let expires_at = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(expires_at.unix_timestamp()).unwrap_or_default());
    Ok(InstallationToken {
        token: SecretString::from(parsed.token),
        expires_at,
    })
}

async fn app_request(
    client: &GithubClient,
    key: &AppKey,
    method: Method,
    target: &str,
) -> Result<bytes::Bytes, AppRequestError> {
    use secrecy::ExposeSecret as _;
    let url = client.resolve(target).map_err(AppRequestError::Client)?;
    let jwt = key.jwt(SystemTime::now()).map_err(AppRequestError::Key)?;
    let response = client
        .request_bearer(method, url, jwt.expose_secret())
        .send()
        .await
        .map_err(|e| AppRequestError::Client(GithubError::Transport(e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(AppRequestError::Status(status));
    }
    response
        .bytes()
        .await
        .map_err(|e| AppRequestError::Client(GithubError::Transport(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_not_pem_is_refused_without_echoing_it() {
        let error = AppKey::from_pem("1", b"secret-not-a-key").expect_err("refused");
        assert!(!error.to_string().contains("secret-not-a-key"));
    }
}
