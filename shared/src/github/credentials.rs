//! Which credential a request made on behalf of an org carries: nothing, the personal token
//! (`GITHUB_API_TOKEN`, one for every org) or, with a GitHub App, the installation token of the
//! org's installation (one per org, each with its own rate limit).
//!
//! Installation tokens are fetched on first use and renewed before they expire: a token is used
//! only while more than a quarter of its life (at most five minutes) is left, so a request never
//! goes out with a token about to lapse, and the renewal happens on the request path, behind a
//! per-org lock (concurrent callers wait for one renewal; other orgs are never held up).
//!
//! Every credential has a *partition*, a stable, non-secret name of whose rate limit it spends
//! ([`Credentials::partition`]): budgets, metrics and logs use it; the token itself is never
//! logged and never a metric label.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use secrecy::SecretString;

use super::GithubClient;
use super::app::{self, AppKey, AppRequestError};
use crate::settings::{CommonSettings, SettingsError};

/// The partition of requests sent without a credential (GitHub counts them by client IP).
pub const ANONYMOUS_PARTITION: &str = "anonymous";
/// The partition of the personal token: one budget for every org.
pub const PERSONAL_TOKEN_PARTITION: &str = "server-token";
/// The status reason (and metric `reason` label) of an org whose installation GitHub refuses
/// (401/403/404: uninstalled, suspended or revoked).
pub const REASON_INSTALLATION_REVOKED: &str = "installation_revoked";
/// The status reason (and metric `reason` label) of any other failure to get an org's
/// installation token (network, an unexpected answer, signing).
pub const REASON_CREDENTIAL_FAILED: &str = "credential";
/// `hubcache_github_installation_tokens_total{org,outcome}`: installation token requests, by
/// outcome (`issued`, `revoked`, `failed`).
pub const INSTALLATION_TOKENS_METRIC: &str = "hubcache_github_installation_tokens_total";
/// The most time before expiry at which a token is renewed (GitHub's tokens live an hour).
const MAX_RENEW_AHEAD: Duration = Duration::from_secs(300);

/// A credential to send: its partition and its secret. `Debug` shows the partition only.
#[derive(Clone)]
pub struct Credential {
    partition: Arc<str>,
    secret: SecretString,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("partition", &self.partition)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl Credential {
    /// Whose rate limit this credential spends (see [`Credentials::partition`]).
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// The secret, for the client only.
    pub(crate) fn secret(&self) -> &SecretString {
        &self.secret
    }
}

/// Why no credential could be had for an org. Messages name the org and GitHub's status, never
/// a token or the key.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// GitHub refuses the App's installation on the org (401/403/404): not installed,
    /// suspended or revoked. Retried with backoff; the other orgs are unaffected.
    #[error("the GitHub App's installation on {org} is refused: {status} to {step}")]
    Revoked {
        /// The org.
        org: String,
        /// GitHub's status.
        status: u16,
        /// Which request (`installation lookup`, `token request`).
        step: &'static str,
    },
    /// Any other failure (network, an unexpected status or body, signing).
    #[error("no installation token for {org}: {reason}")]
    Failed {
        /// The org.
        org: String,
        /// What went wrong.
        reason: String,
    },
}

impl CredentialError {
    /// The failure's kind from a fixed set, for statuses and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            CredentialError::Revoked { .. } => REASON_INSTALLATION_REVOKED,
            CredentialError::Failed { .. } => REASON_CREDENTIAL_FAILED,
        }
    }
}

/// The source of every org's credential. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Credentials {
    source: Arc<Source>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &*self.source {
            Source::Anonymous => "anonymous",
            Source::Token(_) => "personal token",
            Source::App(_) => "GitHub App",
        };
        f.debug_struct("Credentials").field("kind", &kind).finish()
    }
}

enum Source {
    Anonymous,
    Token(Credential),
    App(AppSource),
}

struct AppSource {
    key: AppKey,
    client: GithubClient,
    orgs: parking_lot::Mutex<HashMap<String, Arc<tokio::sync::Mutex<OrgState>>>>,
}

#[derive(Default)]
struct OrgState {
    installation: Option<u64>,
    held: Option<Held>,
}

struct Held {
    credential: Credential,
    renew_at: SystemTime,
}

impl Credentials {
    /// No credential: every request is anonymous.
    pub fn anonymous() -> Self {
        Self {
            source: Arc::new(Source::Anonymous),
        }
    }

    /// The personal token, for every org (one partition).
    pub fn personal(token: SecretString) -> Self {
        Self {
            source: Arc::new(Source::Token(Credential {
                partition: PERSONAL_TOKEN_PARTITION.into(),
                secret: token,
            })),
        }
    }

    /// The App `key`, asking `client`'s upstream for each org's installation token.
    pub fn app(key: AppKey, client: GithubClient) -> Self {
        Self {
            source: Arc::new(Source::App(AppSource {
                key,
                client,
                orgs: parking_lot::Mutex::new(HashMap::new()),
            })),
        }
    }

    /// What the settings configure: the App (`GITHUB_APP_ID` and its key), the personal token
    /// (`GITHUB_API_TOKEN`) or nothing. Both at once is refused by the settings' validation.
    pub fn from_settings(
        settings: &CommonSettings,
        client: &GithubClient,
    ) -> Result<Self, SettingsError> {
        if let Some(key) = settings.github_app()? {
            return Ok(Self::app(key, client.clone()));
        }
        Ok(match &settings.github_api_token {
            Some(token) => Self::personal(token.clone()),
            None => Self::anonymous(),
        })
    }

    /// Whether the credentials are a GitHub App's installations.
    pub fn is_app(&self) -> bool {
        matches!(&*self.source, Source::App(_))
    }

    /// Whether requests carry any credential.
    pub fn is_configured(&self) -> bool {
        !matches!(&*self.source, Source::Anonymous)
    }

    /// The stable, non-secret name of the rate-limit budget requests for `org` spend:
    /// [`ANONYMOUS_PARTITION`], [`PERSONAL_TOKEN_PARTITION`] (shared by every org), or
    /// `installation:{org, lowercased}` (the App's installation on that org: its own limit).
    pub fn partition(&self, org: &str) -> String {
        match &*self.source {
            Source::Anonymous => ANONYMOUS_PARTITION.to_owned(),
            Source::Token(_) => PERSONAL_TOKEN_PARTITION.to_owned(),
            Source::App(_) => format!("installation:{}", org.to_ascii_lowercase()),
        }
    }

    /// The credential for a request on behalf of `org` (`None`: anonymous). With an App, the
    /// org's installation token, fetched or renewed first when needed.
    pub async fn for_org(&self, org: &str) -> Result<Option<Credential>, CredentialError> {
        match &*self.source {
            Source::Anonymous => Ok(None),
            Source::Token(credential) => Ok(Some(credential.clone())),
            Source::App(app) => app
                .token(org, self.partition(org), SystemTime::now())
                .await
                .map(Some),
        }
    }

    /// Forgets `org`'s installation token (GitHub answered 401 to it): the next
    /// [`Credentials::for_org`] asks for a new one, which also finds out a revocation.
    pub async fn invalidate(&self, org: &str) {
        if let Source::App(app) = &*self.source {
            let state = app.org_state(org);
            let mut state = state.lock().await;
            state.held = None;
            state.installation = None;
        }
    }
}

impl AppSource {
    fn org_state(&self, org: &str) -> Arc<tokio::sync::Mutex<OrgState>> {
        Arc::clone(
            self.orgs
                .lock()
                .entry(org.to_ascii_lowercase())
                .or_default(),
        )
    }

    async fn token(
        &self,
        org: &str,
        partition: String,
        now: SystemTime,
    ) -> Result<Credential, CredentialError> {
        let state = self.org_state(org);
        let mut state = state.lock().await;
        if let Some(held) = &state.held
            && now < held.renew_at
        {
            return Ok(held.credential.clone());
        }
        match self.issue(org, &mut state).await {
            Ok(token) => {
                metrics::counter!(INSTALLATION_TOKENS_METRIC, "org" => org.to_owned(), "outcome" => "issued").increment(1);
                let left = token.expires_at.duration_since(now).unwrap_or_default();
                let renew_at = token.expires_at - (left / 4).min(MAX_RENEW_AHEAD);
                tracing::info!(
                    org,
                    installation = state.installation,
                    expires_in_secs = left.as_secs(),
                    "installation token issued"
                );
                let credential = Credential {
                    partition: partition.into(),
                    secret: token.token,
                };
                state.held = Some(Held {
                    credential: credential.clone(),
                    renew_at,
                });
                Ok(credential)
            }
            Err(error) => {
                let outcome = match error {
                    CredentialError::Revoked { .. } => "revoked",
                    CredentialError::Failed { .. } => "failed",
                };
                metrics::counter!(INSTALLATION_TOKENS_METRIC, "org" => org.to_owned(), "outcome" => outcome).increment(1);
                tracing::warn!(org, error = %error, "no installation token");
                if matches!(error, CredentialError::Revoked { .. }) {
                    state.held = None;
                }
                Err(error)
            }
        }
    }

    async fn issue(
        &self,
        org: &str,
        state: &mut OrgState,
    ) -> Result<app::InstallationToken, CredentialError> {
        let installation = match state.installation {
            Some(id) => id,
            None => {
                let id = app::installation_id(&self.client, &self.key, org)
                    .await
                    .map_err(|e| classify(org, "installation lookup", e))?;
                state.installation = Some(id);
                id
            }
        };
        app::access_token(&self.client, &self.key, installation)
            .await
            .map_err(|e| {
                // The installation may have been removed and the App installed again (a new
                // id): look it up afresh next time.
                state.installation = None;
                classify(org, "token request", e)
            })
    }
}

fn classify(org: &str, step: &'static str, error: AppRequestError) -> CredentialError {
    let org = org.to_owned();
    match error {
        AppRequestError::Status(
            status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        ) => CredentialError::Revoked {
            org,
            status: status.as_u16(),
            step,
        },
        AppRequestError::Status(status) => CredentialError::Failed {
            org,
            reason: format!("{step}: GitHub answered {status}"),
        },
        AppRequestError::Client(e) => CredentialError::Failed {
            org,
            reason: format!("{step}: {e}"),
        },
        AppRequestError::Key(e) => CredentialError::Failed {
            org,
            reason: format!("{step}: {e}"),
        },
        AppRequestError::Body(e) => CredentialError::Failed {
            org,
            reason: format!("{step}: unexpected body: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_personal_token_is_one_partition_for_every_org_and_never_printed() {
        let credentials = Credentials::personal(SecretString::from("ghp_secret"));
        assert_eq!(credentials.partition("a"), credentials.partition("B"));
        let credential = credentials
            .for_org("a")
            .await
            .expect("token")
            .expect("some");
        assert_eq!(credential.partition(), PERSONAL_TOKEN_PARTITION);
        assert!(!format!("{credential:?} {credentials:?}").contains("ghp_secret"));
        assert!(
            Credentials::anonymous()
                .for_org("a")
                .await
                .expect("ok")
                .is_none()
        );
    }
}
