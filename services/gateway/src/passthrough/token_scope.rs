//! Who may spend the server's credential: which anonymous requests carry it upstream
//! (`PASSTHROUGH_SERVER_TOKEN_SCOPE`), and which credential that is, from one function
//! ([`TokenScope::server_credential_for`]): the personal token (`GITHUB_API_TOKEN`, one for
//! every org) or, with a GitHub App, the installation token of the org the path belongs to.
//!
//! With the default scope `orgs`, an anonymous request carries the credential only for a
//! configured org's own resources: `/orgs/{org}[/...]`, `/repos/{org}/...` and
//! `/organizations/{id}[/...]` where `id` is a configured org's id (read from its `/orgs/{org}`
//! snapshot). A path with an empty, `.` or `..` segment, or any `%` or `\`, never matches: URL
//! resolution could turn it into another path (`/repos/acme/../../user`), which would then be
//! fetched with the credential.
//!
//! The route is decided without the secret (so a cache hit never waits for a token): it names
//! the credential's partition, and the secret itself is had only when a request goes upstream
//! ([`TokenScope::credential`]), where an installation token is fetched or renewed first.

use std::sync::Arc;

use actix_web::http::header::HeaderValue;
use hubcache_shared::github::{Credential, CredentialError, Credentials};
use sha2::{Digest, Sha256};

use super::budget::BudgetPartition;
use super::request_key::Partition;

use crate::served_state::ServedState;
use crate::settings::ServerTokenScope;

/// The server's credential for one request, named but not yet had: whose credential (the org
/// the path belongs to, if any) and the non-secret partition of its rate limit, which names
/// the request's cache partition and budget.
#[derive(Clone, Debug)]
pub(super) struct ServerCredential {
    /// The configured org the request is on behalf of (`None`: outside every org, scope `all`).
    pub(super) org: Option<String>,
    /// `server-token` for the personal token, `installation:{org}` for an App installation.
    pub(super) partition: Arc<str>,
}

/// How one request goes upstream: the server's credential if any, and the cache partition and
/// rate-limit budget that follow the credential actually sent.
pub(super) struct Route {
    pub(super) server_credential: Option<ServerCredential>,
    pub(super) partition: Partition,
    pub(super) budget: BudgetPartition,
}

/// The scope rule plus the credential source.
pub(super) struct TokenScope {
    scope: ServerTokenScope,
    served: Arc<ServedState>,
    credentials: Credentials,
}

impl TokenScope {
    pub(super) fn new(
        scope: ServerTokenScope,
        served: Arc<ServedState>,
        credentials: Credentials,
    ) -> Self {
        Self {
            scope,
            served,
            credentials,
        }
    }

    /// The route of a request for `target`: with the client's own `Authorization` (sent as is,
    /// never with the server's), or anonymous (the server's credential where the scope gives
    /// it, and only to reads).
    pub(super) fn route(&self, target: &str, client: Option<&HeaderValue>, read: bool) -> Route {
        if let Some(value) = client {
            let hash: [u8; 32] = Sha256::digest(value.as_bytes()).into();
            return Route {
                server_credential: None,
                partition: Partition::Credential(hash),
                budget: BudgetPartition::Client(hash),
            };
        }
        match self.for_anonymous(target).filter(|_| read) {
            Some(credential) => Route {
                partition: Partition::Server(Arc::clone(&credential.partition)),
                budget: BudgetPartition::Server(Arc::clone(&credential.partition)),
                server_credential: Some(credential),
            },
            None => Route {
                server_credential: None,
                partition: Partition::Anonymous,
                budget: BudgetPartition::Anonymous,
            },
        }
    }

    /// The credential an anonymous `GET`/`HEAD` of `target` (path and query) carries upstream,
    /// or `None`: it goes without one.
    pub(super) fn for_anonymous(&self, target: &str) -> Option<ServerCredential> {
        match self.scope {
            ServerTokenScope::None => None,
            ServerTokenScope::All => {
                let org = self.org_of(target);
                self.server_credential_for(org)
            }
            ServerTokenScope::Orgs => {
                let org = self.org_of(target)?;
                self.server_credential_for(Some(org))
            }
        }
    }

    /// The server's credential for `org` (`None`: a path outside every configured org, scope
    /// `all`): the personal token for any org, an App's installation only for its org (an App
    /// has no credential outside its installations), nothing when none is configured.
    pub(super) fn server_credential_for(&self, org: Option<String>) -> Option<ServerCredential> {
        if !self.credentials.is_configured() || (self.credentials.is_app() && org.is_none()) {
            return None;
        }
        let partition = self
            .credentials
            .partition(org.as_deref().unwrap_or_default());
        Some(ServerCredential {
            org,
            partition: Arc::from(partition),
        })
    }

    /// The secret behind `server`, fetched or renewed first for an installation token.
    pub(super) async fn credential(
        &self,
        server: &ServerCredential,
    ) -> Result<Option<Credential>, CredentialError> {
        self.credentials
            .for_org(server.org.as_deref().unwrap_or_default())
            .await
    }

    /// GitHub refused `server`'s credential (401): an installation token is dropped, so the
    /// next request asks for a new one (and so finds out a revocation).
    pub(super) async fn refused(&self, server: &ServerCredential) {
        if let Some(org) = &server.org {
            self.credentials.invalidate(org).await;
        }
    }

    /// The configured org (its login as configured) whose own resource `target` is.
    fn org_of(&self, target: &str) -> Option<String> {
        let path = target.split('?').next().unwrap_or_default();
        let rest = path.strip_prefix('/')?;
        let segments: Vec<&str> = rest.split('/').collect();
        let plain = |segment: &&str| {
            !segment.is_empty()
                && *segment != "."
                && *segment != ".."
                && !segment.contains(['%', '\\'])
        };
        // A trailing slash leaves one empty last segment: GitHub treats it as the same path.
        let checked = match segments.split_last() {
            Some((&"", init)) => init,
            _ => &segments[..],
        };
        if !checked.iter().all(plain) {
            return None;
        }
        let org = match checked {
            ["orgs", login, ..] => self.served.org(login),
            ["repos", owner, _repo, ..] => self.served.org(owner),
            ["organizations", id, ..] => self.served.org_by_id(id.parse().ok()?),
            _ => None,
        }?;
        Some(org.login().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn scope(scope: ServerTokenScope) -> TokenScope {
        let served = Arc::new(ServedState::new(&["acme".to_owned()], &[]));
        TokenScope::new(
            scope,
            served,
            Credentials::personal(SecretString::from("ghp_scopeTestToken".to_owned())),
        )
    }

    #[test]
    fn only_the_orgs_own_resources_carry_the_credential_by_default() {
        let s = scope(ServerTokenScope::Orgs);
        for carried in [
            "/orgs/acme",
            "/orgs/ACME/repos?page=2",
            "/repos/acme/rocket",
            "/repos/Acme/rocket/issues/",
        ] {
            assert!(s.for_anonymous(carried).is_some(), "{carried}");
        }
        for anonymous in [
            "/",
            "/user",
            "/users/acme",
            "/orgs/other",
            "/repos/other/rocket",
            "/repos/acme",
            "/repos/acme/../../user/repos",
            "/repos/acme/%2e%2e/x",
            "/orgs//acme",
            "/orgs/acme/./x",
            "/orgs/acme\\..\\..\\user",
            "/organizations/4242/repos",
            "/organizations/x/repos",
        ] {
            assert!(s.for_anonymous(anonymous).is_none(), "{anonymous}");
        }
    }

    #[test]
    fn the_setting_widens_or_narrows_it() {
        assert!(
            scope(ServerTokenScope::All)
                .for_anonymous("/user")
                .is_some()
        );
        assert!(
            scope(ServerTokenScope::None)
                .for_anonymous("/orgs/acme")
                .is_none()
        );
        let credential = scope(ServerTokenScope::All)
            .for_anonymous("/orgs/acme")
            .expect("carried");
        assert_eq!(&*credential.partition, "server-token");
        assert!(!format!("{credential:?}").contains("ghp_"));
    }
}
