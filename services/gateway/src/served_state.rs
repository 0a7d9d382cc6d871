//! What the gateway serves from memory, per organisation ([`OrgServed`]): the current version
//! of every cached key of the org and of its views, whether the org's stream listener reaches
//! Redis (to mark answers stale) and the fetcher's latest status of each of its cached keys
//! (for `/healthcheck`: a stuck endpoint and why, an org GitHub does not know).
//!
//! Built once per process and shared by every worker. Requests read through `arc_swap` (no lock,
//! no allocation: a guard and an `Arc` clone); each org's stream listener swaps in new versions
//! of that org only. Cached paths are unique across orgs (each names its org, the root `/`
//! belongs to the first), so a path finds its org with one map lookup.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::{ArcSwap, ArcSwapOption};
use hubcache_shared::github::REASON_INSTALLATION_REVOKED;
use hubcache_shared::snapshot::REASON_NOT_FOUND;
use hubcache_shared::{CachedEndpoint, SnapshotStatus};

use crate::served_snapshot::ServedSnapshot;
use crate::served_views::ServedViews;

/// The in-process copies of every configured organisation, first org first.
#[derive(Debug)]
pub(crate) struct ServedState {
    orgs: Vec<Arc<OrgServed>>,
    /// Cached path -> index in `orgs` of the org whose keys hold it.
    owners: HashMap<String, usize>,
}

impl ServedState {
    /// An empty state for `orgs` (as configured, first one first, at least one) and their
    /// cached endpoints (each naming its org).
    pub(crate) fn new(orgs: &[String], cached: &[CachedEndpoint]) -> Self {
        let mut owners = HashMap::new();
        let orgs: Vec<Arc<OrgServed>> = orgs
            .iter()
            .enumerate()
            .map(|(index, login)| {
                let paths: Vec<String> = cached
                    .iter()
                    .filter(|e| e.org.eq_ignore_ascii_case(login))
                    .map(|e| e.path.clone())
                    .collect();
                for path in &paths {
                    owners.insert(path.clone(), index);
                }
                Arc::new(OrgServed::new(login, paths))
            })
            .collect();
        assert!(!orgs.is_empty(), "at least one organisation is configured");
        Self { orgs, owners }
    }

    /// Every org, first one first.
    pub(crate) fn orgs(&self) -> &[Arc<OrgServed>] {
        &self.orgs
    }

    /// The first org: the one the seed's routes (`/view/top/N/stars`...) serve.
    pub(crate) fn first(&self) -> &Arc<OrgServed> {
        &self.orgs[0]
    }

    /// The configured org spelled `login` in any case.
    pub(crate) fn org(&self, login: &str) -> Option<&Arc<OrgServed>> {
        self.orgs
            .iter()
            .find(|org| org.login.eq_ignore_ascii_case(login))
    }

    /// The org whose keys hold cached `path`.
    pub(crate) fn owner(&self, path: &str) -> Option<&Arc<OrgServed>> {
        self.owners.get(path).map(|&index| &self.orgs[index])
    }

    /// The org whose `/orgs/{org}` object has numeric id `id` (GitHub's Link headers name an
    /// org's lists `/organizations/{id}/...`).
    pub(crate) fn org_by_id(&self, id: u64) -> Option<&Arc<OrgServed>> {
        self.orgs.iter().find(|org| org.org_id() == Some(id))
    }

    /// Every cached path of every org, org by org, as configured.
    pub(crate) fn cached_paths(&self) -> impl Iterator<Item = &String> {
        self.orgs.iter().flat_map(|org| org.cached_paths.iter())
    }

    /// True while some org's listener cannot reach Redis.
    pub(crate) fn is_stale(&self) -> bool {
        self.orgs.iter().any(|org| org.is_stale())
    }

    /// What keeps the gateway unready, across the orgs GitHub knows: each org's unloaded
    /// cached paths, and its views when expected (`views` for the first org, the org-qualified
    /// route `/orgs/{org}/view` for the others). An unknown org (GitHub answered 404) is left
    /// out, as is one whose App installation GitHub refuses: neither loads until someone acts,
    /// and must not keep the others' replicas out of a load balancer.
    pub(crate) fn missing(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for (index, org) in self.orgs.iter().enumerate() {
            if org.unservable().is_some() {
                continue;
            }
            for item in org.missing() {
                missing.push(match item {
                    Missing::Path(path) => path,
                    Missing::Views if index == 0 => "views".to_owned(),
                    Missing::Views => format!("/orgs/{}/view", org.login),
                });
            }
        }
        missing
    }

    /// Every org's cached keys whose latest poll failed, with the error, by path.
    pub(crate) fn failing(&self) -> BTreeMap<String, String> {
        self.orgs.iter().flat_map(|org| org.failing()).collect()
    }
}

/// Something an org has not loaded yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Missing {
    /// A cached path.
    Path(String),
    /// Its views (expected because its repos list is cached).
    Views,
}

/// An org's state as `/healthcheck` and `hubcache_gateway_org_state` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrgState {
    /// Every cached key of the org (and its views) is served.
    Ready,
    /// Something is not loaded yet (it keeps the gateway unready).
    Loading,
    /// GitHub answered 404 for the org: reported, never awaited.
    UnknownOrg,
    /// GitHub refuses the App's installation on the org (revoked, suspended or not installed):
    /// reported, never awaited; what was loaded before is still served.
    InstallationRevoked,
}

impl OrgState {
    /// Every state, for a gauge that shows the current one as 1 and the others as 0.
    pub(crate) const ALL: [OrgState; 4] = [
        OrgState::Ready,
        OrgState::Loading,
        OrgState::UnknownOrg,
        OrgState::InstallationRevoked,
    ];

    /// The label and JSON spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OrgState::Ready => "ready",
            OrgState::Loading => "loading",
            OrgState::UnknownOrg => "unknown_org",
            OrgState::InstallationRevoked => REASON_INSTALLATION_REVOKED,
        }
    }
}

/// One organisation's in-process copies.
#[derive(Debug)]
pub(crate) struct OrgServed {
    login: String,
    snapshots: ArcSwap<HashMap<String, Arc<ServedSnapshot>>>,
    views: ArcSwapOption<ServedViews>,
    redis_reachable: AtomicBool,
    statuses: ArcSwap<BTreeMap<String, SnapshotStatus>>,
    cached_paths: Vec<String>,
    org_path: String,
    views_expected: bool,
    /// Requests answered from these copies (the status page's cached-keys hit ratio).
    answered: AtomicU64,
    /// Requests for these copies answered 503 because the copy was not loaded.
    unavailable: AtomicU64,
}

impl OrgServed {
    /// An empty state for `login` and its cached paths; views are expected when the org's
    /// repos list is cached (they are computed from it).
    fn new(login: &str, cached_paths: Vec<String>) -> Self {
        let spelled = |wanted: String| {
            cached_paths
                .iter()
                .find(|p| p.eq_ignore_ascii_case(&wanted))
                .cloned()
        };
        let views_expected = spelled(format!("/orgs/{login}/repos")).is_some();
        let org_path = spelled(format!("/orgs/{login}")).unwrap_or(format!("/orgs/{login}"));
        Self {
            login: login.to_owned(),
            views_expected,
            snapshots: ArcSwap::from_pointee(HashMap::new()),
            views: ArcSwapOption::empty(),
            redis_reachable: AtomicBool::new(false),
            statuses: ArcSwap::from_pointee(BTreeMap::new()),
            cached_paths,
            org_path,
            answered: AtomicU64::new(0),
            unavailable: AtomicU64::new(0),
        }
    }

    /// The login as configured.
    pub(crate) fn login(&self) -> &str {
        &self.login
    }

    /// The org's cached paths, normalised, as configured.
    pub(crate) fn cached_paths(&self) -> &[String] {
        &self.cached_paths
    }

    /// Counts a request answered from the org's copies (`true`) or refused because the copy
    /// was not loaded (`false`).
    pub(crate) fn count_answer(&self, served: bool) {
        let counter = if served {
            &self.answered
        } else {
            &self.unavailable
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests answered from the org's copies, and refused for want of one, so far.
    pub(crate) fn answer_counts(&self) -> (u64, u64) {
        (
            self.answered.load(Ordering::Relaxed),
            self.unavailable.load(Ordering::Relaxed),
        )
    }

    /// The fetcher's latest status of each of the org's cached keys, by path.
    pub(crate) fn statuses(&self) -> Arc<BTreeMap<String, SnapshotStatus>> {
        self.statuses.load_full()
    }

    /// Whether `path` (normalised) is one of the org's cached keys.
    pub(crate) fn is_cached(&self, path: &str) -> bool {
        self.cached_paths.iter().any(|p| p == path)
    }

    /// The loaded version of `path`, if any.
    pub(crate) fn snapshot(&self, path: &str) -> Option<Arc<ServedSnapshot>> {
        self.snapshots.load().get(path).cloned()
    }

    /// Replaces (or adds) the served version of its path.
    pub(crate) fn install_snapshot(&self, snapshot: ServedSnapshot) {
        let snapshot = Arc::new(snapshot);
        self.snapshots.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.insert(snapshot.path.clone(), Arc::clone(&snapshot));
            next
        });
    }

    /// The loaded views, if any.
    pub(crate) fn views(&self) -> Option<Arc<ServedViews>> {
        self.views.load_full()
    }

    /// Replaces the served views.
    pub(crate) fn install_views(&self, views: ServedViews) {
        self.views.store(Some(Arc::new(views)));
    }

    /// The org's numeric id, read from its `/orgs/{org}` snapshot when cached and loaded.
    pub(crate) fn org_id(&self) -> Option<u64> {
        self.snapshots
            .load()
            .get(&self.org_path)
            .and_then(|s| s.org_id)
    }

    /// The org's own path, `/orgs/{org}` (spelled as cached when it is).
    pub(crate) fn org_path(&self) -> &str {
        &self.org_path
    }

    /// Records whether the org's stream listener currently reaches Redis.
    pub(crate) fn set_redis_reachable(&self, reachable: bool) {
        self.redis_reachable.store(reachable, Ordering::Relaxed);
    }

    /// True while the org's listener cannot reach Redis: its answers may be outdated.
    pub(crate) fn is_stale(&self) -> bool {
        !self.redis_reachable.load(Ordering::Relaxed)
    }

    /// Replaces the fetcher's statuses of the org's cached keys (as last read from Redis).
    pub(crate) fn set_statuses(&self, statuses: BTreeMap<String, SnapshotStatus>) {
        self.statuses.store(Arc::new(statuses));
    }

    /// The org's cached keys whose latest poll failed, with the error (bounded in length by the
    /// reader), in path order.
    pub(crate) fn failing(&self) -> BTreeMap<String, String> {
        self.statuses
            .load()
            .iter()
            .filter_map(|(path, status)| Some((path.clone(), status.failing()?.to_owned())))
            .collect()
    }

    /// The fetcher's error when GitHub does not know the org: the latest poll of `/orgs/{org}`
    /// (or, when that is not cached, of any of the org's paths) failed with a 404.
    pub(crate) fn unknown(&self) -> Option<String> {
        let statuses = self.statuses.load();
        let not_found = |status: &SnapshotStatus| {
            let error = status.failing()?;
            let not_found = match status.failing_reason() {
                Some(reason) => reason == REASON_NOT_FOUND,
                // Written by a fetcher that did not record reasons: GitHub's status in the text.
                None => is_not_found(error),
            };
            not_found.then(|| error.to_owned())
        };
        if self.is_cached(&self.org_path) {
            statuses.get(&self.org_path).and_then(not_found)
        } else {
            statuses.values().find_map(not_found)
        }
    }

    /// The fetcher's error when GitHub refuses the App's installation on the org: the latest
    /// poll of any of the org's paths failed with `installation_revoked`.
    pub(crate) fn revoked(&self) -> Option<String> {
        self.statuses.load().values().find_map(|status| {
            let error = status.failing()?;
            (status.failing_reason() == Some(REASON_INSTALLATION_REVOKED)).then(|| error.to_owned())
        })
    }

    /// Why the org cannot load until someone acts (unknown to GitHub, or its installation
    /// refused), with the fetcher's error; `None` for an org that loads or has loaded.
    pub(crate) fn unservable(&self) -> Option<(OrgState, String)> {
        if let Some(error) = self.unknown() {
            return Some((OrgState::UnknownOrg, error));
        }
        self.revoked()
            .map(|error| (OrgState::InstallationRevoked, error))
    }

    /// What is not loaded yet; empty when the org is fully served.
    pub(crate) fn missing(&self) -> Vec<Missing> {
        let loaded = self.snapshots.load();
        let mut missing: Vec<Missing> = self
            .cached_paths
            .iter()
            .filter(|p| !loaded.contains_key(*p))
            .map(|p| Missing::Path(p.clone()))
            .collect();
        if self.views_expected && self.views.load().is_none() {
            missing.push(Missing::Views);
        }
        missing
    }

    /// Ready, loading, unknown to GitHub, or with its installation refused.
    pub(crate) fn state(&self) -> OrgState {
        if let Some((state, _)) = self.unservable() {
            state
        } else if self.missing().is_empty() {
            OrgState::Ready
        } else {
            OrgState::Loading
        }
    }

    /// Bytes this org's served copies hold: every snapshot's body with its compressed copies,
    /// element index and rendered pages, and the views' rendered text and slices. The measure
    /// behind `hubcache_gateway_org_served_bytes` (ARCHITECTURE.md: bounding it).
    pub(crate) fn held_bytes(&self) -> usize {
        let snapshots: usize = self.snapshots.load().values().map(|s| s.held_bytes()).sum();
        snapshots + self.views.load().as_ref().map_or(0, |v| v.held_bytes())
    }
}

/// Whether a status error without a recorded reason says GitHub answered 404
/// (`GET /orgs/x: 404 Not Found...`).
fn is_not_found(error: &str) -> bool {
    error.contains(": 404 ") || error.ends_with(": 404")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn endpoint(org: &str, path: &str) -> CachedEndpoint {
        CachedEndpoint {
            org: org.to_owned(),
            path: path.to_owned(),
            interval: Duration::from_secs(10),
        }
    }

    fn state() -> ServedState {
        ServedState::new(
            &["Netflix".to_owned(), "nope".to_owned()],
            &[
                endpoint("Netflix", "/"),
                endpoint("Netflix", "/orgs/Netflix"),
                endpoint("Netflix", "/orgs/Netflix/repos"),
                endpoint("nope", "/orgs/nope"),
                endpoint("nope", "/orgs/nope/repos"),
            ],
        )
    }

    #[test]
    fn paths_find_their_org_and_logins_match_in_any_case() {
        let s = state();
        assert_eq!(s.owner("/").map(|o| o.login()), Some("Netflix"));
        assert_eq!(s.owner("/orgs/nope/repos").map(|o| o.login()), Some("nope"));
        assert!(s.owner("/orgs/other").is_none());
        assert_eq!(s.org("NETFLIX").map(|o| o.login()), Some("Netflix"));
        assert!(s.org("other").is_none());
        assert_eq!(s.first().login(), "Netflix");
        assert_eq!(s.cached_paths().count(), 5);
    }

    #[test]
    fn an_org_github_does_not_know_is_reported_and_left_out_of_readiness() {
        let s = state();
        assert_eq!(
            s.missing(),
            [
                "/",
                "/orgs/Netflix",
                "/orgs/Netflix/repos",
                "views",
                "/orgs/nope",
                "/orgs/nope/repos",
                "/orgs/nope/view"
            ]
        );
        let nope = s.org("nope").expect("configured");
        assert_eq!(nope.state(), OrgState::Loading);
        let failed = SnapshotStatus::default().failed_because(
            1,
            REASON_NOT_FOUND,
            "GET /orgs/nope: 404 Not Found: Not Found",
        );
        nope.set_statuses(BTreeMap::from([("/orgs/nope".to_owned(), failed)]));
        assert_eq!(nope.state(), OrgState::UnknownOrg);
        assert!(nope.unknown().is_some_and(|e| e.contains("404")));
        assert_eq!(
            s.missing(),
            ["/", "/orgs/Netflix", "/orgs/Netflix/repos", "views"]
        );
        // Any other failure is a stuck endpoint, not an unknown org.
        let other = SnapshotStatus::default().failed(1, "GET /orgs/nope: 502 Bad Gateway");
        nope.set_statuses(BTreeMap::from([("/orgs/nope".to_owned(), other)]));
        assert_eq!(nope.state(), OrgState::Loading);
    }

    #[test]
    fn an_org_whose_installation_is_refused_is_reported_and_left_out_of_readiness() {
        let s = state();
        let nope = s.org("nope").expect("configured");
        let revoked = SnapshotStatus::default().failed_because(
            1,
            REASON_INSTALLATION_REVOKED,
            "the GitHub App's installation on nope is refused: 404 to installation lookup",
        );
        nope.set_statuses(BTreeMap::from([("/orgs/nope/repos".to_owned(), revoked)]));
        assert_eq!(nope.state(), OrgState::InstallationRevoked);
        assert_eq!(nope.state().as_str(), "installation_revoked");
        assert!(
            nope.unservable()
                .is_some_and(|(_, e)| e.contains("installation on nope"))
        );
        assert_eq!(
            s.missing(),
            ["/", "/orgs/Netflix", "/orgs/Netflix/repos", "views"]
        );
    }

    #[test]
    fn not_found_is_recognised_from_the_fetchers_error() {
        assert!(is_not_found("GET /orgs/x: 404 Not Found: Not Found"));
        assert!(is_not_found("GET /orgs/x: 404"));
        assert!(!is_not_found("GET /orgs/x?page=404: 502 Bad Gateway"));
    }
}
