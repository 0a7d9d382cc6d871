//! GitHub App authentication, as GitHub models it: the App's RS256 JWT (verified with the App's
//! public key, `--app-public-key`, and `--app-id` as its `iss`), one installation per org,
//! installation tokens that expire (`--installation-token-ttl-secs`), and installations that
//! can be revoked through the control API (`POST /_sim/installations/{id}/revoke`).
//!
//! An installation token spends its installation's own rate-limit window: requests carrying one
//! are labelled `installation-{id}` (stats and budget), whichever of its tokens they carry.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// The prefix GitHub gives installation tokens.
const TOKEN_PREFIX: &str = "ghs_";
/// The longest JWT GitHub accepts (`exp - iat`), plus its allowance for drift.
const MAX_JWT_LIFETIME_SECS: u64 = 600 + 60;
/// The first installation id; the org at index `i` of the data has `FIRST_ID + i`.
const FIRST_ID: u64 = 1001;

/// Why an App request is refused (answered 401/404 with GitHub's message).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum AppError {
    /// No JWT, a bad signature, a wrong issuer, an expired or too long-lived JWT.
    #[error("A JSON web token could not be decoded")]
    BadJwt,
    /// No installation (unknown org or id, or revoked).
    #[error("Not Found")]
    NoInstallation,
    /// An installation token that is unknown, expired or of a revoked installation.
    #[error("Bad credentials")]
    BadCredentials,
}

/// One installation as `GET /_sim/installations` lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct InstallationView {
    pub(crate) id: u64,
    pub(crate) org: String,
    pub(crate) revoked: bool,
    pub(crate) tokens_issued: u64,
}

/// The App: its key, its installations and the tokens it issued.
pub(crate) struct AppAuth {
    app_id: String,
    key: DecodingKey,
    token_ttl: Duration,
    /// Installation id and org login, in the data's order.
    installations: Vec<(u64, String)>,
    state: Mutex<TokenState>,
}

impl std::fmt::Debug for AppAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppAuth")
            .field("app_id", &self.app_id)
            .field("installations", &self.installations)
            .finish()
    }
}

#[derive(Default)]
struct TokenState {
    /// Token → (installation, expiry in Unix seconds).
    tokens: HashMap<String, (u64, u64)>,
    revoked: HashSet<u64>,
    issued: HashMap<u64, u64>,
}

#[derive(Deserialize)]
struct Claims {
    iat: u64,
    exp: u64,
}

/// An issued token, as `POST /app/installations/{id}/access_tokens` answers it.
#[derive(Debug, Serialize)]
pub(crate) struct AccessToken {
    pub(crate) token: String,
    pub(crate) expires_at: String,
}

impl AppAuth {
    /// The App `app_id` with the PEM public key `pem`, installed on `orgs`.
    pub(crate) fn new(
        app_id: String,
        pem: &[u8],
        token_ttl: Duration,
        orgs: impl IntoIterator<Item = String>,
    ) -> anyhow::Result<Self> {
        let key = DecodingKey::from_rsa_pem(pem)
            .map_err(|e| anyhow::anyhow!("--app-public-key is not an RSA public key: {e}"))?;
        Ok(Self {
            app_id,
            key,
            token_ttl,
            installations: (FIRST_ID..).zip(orgs).collect(),
            state: Mutex::new(TokenState::default()),
        })
    }

    /// The App's ID, as `--app-id` gave it.
    pub(crate) fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Checks the JWT in `authorization` (`Bearer <jwt>`).
    pub(crate) fn verify_jwt(&self, authorization: Option<&str>) -> Result<(), AppError> {
        let jwt = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(AppError::BadJwt)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.app_id]);
        validation.set_required_spec_claims(&["exp", "iat", "iss"]);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(jwt, &self.key, &validation)
            .map_err(|_| AppError::BadJwt)?
            .claims;
        if claims.exp.saturating_sub(claims.iat) > MAX_JWT_LIFETIME_SECS || claims.iat > now() + 60
        {
            return Err(AppError::BadJwt);
        }
        Ok(())
    }

    /// The id of the (not revoked) installation on `org`.
    pub(crate) fn installation_of(&self, org: &str) -> Result<u64, AppError> {
        let state = self.state.lock();
        self.installations
            .iter()
            .find(|(id, login)| login.eq_ignore_ascii_case(org) && !state.revoked.contains(id))
            .map(|(id, _)| *id)
            .ok_or(AppError::NoInstallation)
    }

    /// A new token for installation `id`, valid for the configured lifetime.
    pub(crate) fn issue(&self, id: u64) -> Result<AccessToken, AppError> {
        let mut state = self.state.lock();
        if !self.installations.iter().any(|(i, _)| *i == id) || state.revoked.contains(&id) {
            return Err(AppError::NoInstallation);
        }
        let token = format!("{TOKEN_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let expires = now() + self.token_ttl.as_secs();
        state.tokens.insert(token.clone(), (id, expires));
        *state.issued.entry(id).or_default() += 1;
        let expires_at = time::OffsetDateTime::from_unix_timestamp(expires as i64)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        Ok(AccessToken { token, expires_at })
    }

    /// For a request's `Authorization` value: `None` when it carries no installation token,
    /// else the installation it spends, or why the token is refused.
    pub(crate) fn installation_token(&self, authorization: &str) -> Option<Result<u64, AppError>> {
        let token = authorization
            .strip_prefix("Bearer ")
            .or_else(|| authorization.strip_prefix("token "))?;
        if !token.starts_with(TOKEN_PREFIX) {
            return None;
        }
        let state = self.state.lock();
        Some(match state.tokens.get(token) {
            Some((id, expires)) if now() < *expires && !state.revoked.contains(id) => Ok(*id),
            _ => Err(AppError::BadCredentials),
        })
    }

    /// Revokes installation `id`: its tokens stop working and no new one is issued.
    pub(crate) fn revoke(&self, id: u64) -> Result<(), AppError> {
        if !self.installations.iter().any(|(i, _)| *i == id) {
            return Err(AppError::NoInstallation);
        }
        self.state.lock().revoked.insert(id);
        Ok(())
    }

    /// Every installation, with whether it is revoked and how many tokens it was issued.
    pub(crate) fn list(&self) -> Vec<InstallationView> {
        let state = self.state.lock();
        self.installations
            .iter()
            .map(|(id, org)| InstallationView {
                id: *id,
                org: org.clone(),
                revoked: state.revoked.contains(id),
                tokens_issued: state.issued.get(id).copied().unwrap_or_default(),
            })
            .collect()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
