//! Who may spend the server's credential: which anonymous requests carry it upstream
//! (`PASSTHROUGH_SERVER_TOKEN_SCOPE`), and the credential itself, from one function
//! ([`TokenScope::server_credential_for`]) so that a per-org credential (a GitHub App
//! installation token) replaces the one server token in one place.
//!
//! With the default scope `orgs`, an anonymous request carries the credential only for a
//! configured org's own resources: `/orgs/{org}[/...]`, `/repos/{org}/...` and
//! `/organizations/{id}[/...]` where `id` is a configured org's id (read from its `/orgs/{org}`
//! snapshot). A path with an empty, `.` or `..` segment, or any `%` or `\`, never matches: URL
//! resolution could turn it into another path (`/repos/acme/../../user`), which would then be
//! fetched with the credential.

use std::sync::Arc;

use actix_web::http::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::budget::BudgetPartition;
use super::request_key::Partition;

use crate::served_state::ServedState;
use crate::settings::ServerTokenScope;

/// The server's credential for one request: the `Authorization` value (marked sensitive, so it
/// is never printed) and a non-secret name of the credential, which names its cache partition
/// and its rate-limit budget.
#[derive(Clone)]
pub(super) struct ServerCredential {
    pub(super) authorization: HeaderValue,
    /// `token` for the one configured token (`GITHUB_API_TOKEN`); a per-org credential
    /// would be named after its org.
    pub(super) name: Arc<str>,
}

/// How one request goes upstream: the server's credential if any, and the cache partition and
/// rate-limit budget that follow the credential actually sent.
pub(super) struct Route {
    pub(super) server_credential: Option<HeaderValue>,
    pub(super) partition: Partition,
    pub(super) budget: BudgetPartition,
}

/// The scope rule plus the credential source.
pub(super) struct TokenScope {
    scope: ServerTokenScope,
    served: Arc<ServedState>,
    token: Option<SecretString>,
}

impl TokenScope {
    pub(super) fn new(
        scope: ServerTokenScope,
        served: Arc<ServedState>,
        token: Option<SecretString>,
    ) -> Self {
        Self {
            scope,
            served,
            token,
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
                server_credential: Some(credential.authorization),
                partition: Partition::Server(Arc::clone(&credential.name)),
                budget: BudgetPartition::Server(credential.name),
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
                self.server_credential_for(org.as_deref())
            }
            ServerTokenScope::Orgs => {
                let org = self.org_of(target)?;
                self.server_credential_for(Some(&org))
            }
        }
    }

    /// The server's credential for `org` (`None`: a path outside every configured org, scope
    /// `all`). Today one token for every org; the one place a per-org credential plugs in.
    pub(super) fn server_credential_for(&self, _org: Option<&str>) -> Option<ServerCredential> {
        let token = self.token.as_ref()?;
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).ok()?;
        authorization.set_sensitive(true);
        Some(ServerCredential {
            authorization,
            name: Arc::from("token"),
        })
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
    use super::*;

    fn scope(scope: ServerTokenScope) -> TokenScope {
        let served = Arc::new(ServedState::new(&["acme".to_owned()], &[]));
        TokenScope::new(
            scope,
            served,
            Some(SecretString::from("ghp_scopeTestToken".to_owned())),
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
        assert!(credential.authorization.is_sensitive());
        assert!(!format!("{:?}", credential.authorization).contains("ghp_"));
    }
}
