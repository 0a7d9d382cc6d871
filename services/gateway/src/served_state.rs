//! What the gateway serves from memory: the current version of every cached key and of the
//! views, plus whether Redis is reachable (to mark answers stale) and the fetcher's latest
//! status of each cached key (for `/healthcheck`: a stuck endpoint and why).
//!
//! Built once per process and shared by every worker. Requests read through `arc_swap` (no lock,
//! no allocation: a guard and an `Arc` clone); the stream listener swaps in new versions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::{ArcSwap, ArcSwapOption};
use hubcache_shared::SnapshotStatus;

use crate::served_snapshot::ServedSnapshot;
use crate::served_views::ServedViews;

/// The in-process copies of the cached keys and the views.
#[derive(Debug)]
pub(crate) struct ServedState {
    snapshots: ArcSwap<HashMap<String, Arc<ServedSnapshot>>>,
    views: ArcSwapOption<ServedViews>,
    redis_reachable: AtomicBool,
    statuses: ArcSwap<BTreeMap<String, SnapshotStatus>>,
    cached_paths: Vec<String>,
    org_path: String,
    views_expected: bool,
}

impl ServedState {
    /// An empty state for these cached paths; views are expected when the org's repos list is
    /// cached (they are computed from it).
    pub(crate) fn new(cached_paths: Vec<String>, org: &str) -> Self {
        let repos = format!("/orgs/{org}/repos");
        Self {
            views_expected: cached_paths.contains(&repos),
            snapshots: ArcSwap::from_pointee(HashMap::new()),
            views: ArcSwapOption::empty(),
            redis_reachable: AtomicBool::new(false),
            statuses: ArcSwap::from_pointee(BTreeMap::new()),
            cached_paths,
            org_path: format!("/orgs/{org}"),
        }
    }

    /// The cached paths, normalised, as configured.
    pub(crate) fn cached_paths(&self) -> &[String] {
        &self.cached_paths
    }

    /// Whether `path` (normalised) is a cached key.
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

    /// The org's numeric id, read from the `/orgs/{org}` snapshot when it is cached and loaded.
    pub(crate) fn org_id(&self) -> Option<u64> {
        self.snapshots
            .load()
            .get(&self.org_path)
            .and_then(|s| s.org_id)
    }

    /// The org's own path, `/orgs/{org}`.
    pub(crate) fn org_path(&self) -> &str {
        &self.org_path
    }

    /// Records whether the stream listener currently reaches Redis.
    pub(crate) fn set_redis_reachable(&self, reachable: bool) {
        self.redis_reachable.store(reachable, Ordering::Relaxed);
    }

    /// True while Redis is unreachable: answers may be outdated.
    pub(crate) fn is_stale(&self) -> bool {
        !self.redis_reachable.load(Ordering::Relaxed)
    }

    /// Replaces the fetcher's statuses of the cached keys (as last read from Redis).
    pub(crate) fn set_statuses(&self, statuses: BTreeMap<String, SnapshotStatus>) {
        self.statuses.store(Arc::new(statuses));
    }

    /// The cached keys whose latest poll failed, with the error (bounded in length by the
    /// reader), in path order.
    pub(crate) fn failing(&self) -> BTreeMap<String, String> {
        self.statuses
            .load()
            .iter()
            .filter_map(|(path, status)| Some((path.clone(), status.failing()?.to_owned())))
            .collect()
    }

    /// What is not loaded yet (cached paths, and `views` when expected); empty when ready.
    pub(crate) fn missing(&self) -> Vec<String> {
        let loaded = self.snapshots.load();
        let mut missing: Vec<String> = self
            .cached_paths
            .iter()
            .filter(|p| !loaded.contains_key(*p))
            .cloned()
            .collect();
        if self.views_expected && self.views.load().is_none() {
            missing.push("views".to_owned());
        }
        missing
    }
}
