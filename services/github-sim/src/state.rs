//! State shared by every worker: the catalog, counters, rate limit, faults, latency and webhooks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use crate::app_auth::AppAuth;
use crate::catalog::Catalog;
use crate::faults::FaultQueue;
use crate::generator::SplitMix64;
use crate::rate_limit::RateLimiter;
use crate::stats::Stats;
use crate::webhooks::Webhooks;

/// Everything the routes share. Built once, before the workers start (one instance for all).
#[derive(Debug)]
pub(crate) struct SimState {
    pub(crate) catalog: RwLock<Catalog>,
    pub(crate) stats: Stats,
    pub(crate) rate_limit: RateLimiter,
    pub(crate) faults: FaultQueue,
    pub(crate) webhooks: Webhooks,
    /// The GitHub App, when `--app-id` is given.
    pub(crate) app: Option<AppAuth>,
    /// The base URL of `Link` headers, without trailing slash.
    pub(crate) base_url: String,
    /// The path of `base_url` (e.g. `/api/v3`), stripped from request paths; empty when none.
    path_prefix: String,
    latency_ms: AtomicU64,
    requests: AtomicU64,
}

impl SimState {
    pub(crate) fn new(
        catalog: Catalog,
        rate_limit: RateLimiter,
        webhooks: Webhooks,
        app: Option<AppAuth>,
        base_url: &url::Url,
    ) -> Self {
        Self {
            catalog: RwLock::new(catalog),
            stats: Stats::default(),
            rate_limit,
            faults: FaultQueue::default(),
            webhooks,
            app,
            base_url: crate::config::url_prefix(base_url),
            path_prefix: base_url.path().trim_end_matches('/').to_owned(),
            latency_ms: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        }
    }

    /// The GitHub path of a request path: without the base URL's path prefix, if it has it.
    pub(crate) fn github_path<'a>(&self, path: &'a str) -> &'a str {
        if self.path_prefix.is_empty() {
            return path;
        }
        match path.strip_prefix(self.path_prefix.as_str()) {
            Some("") => "/",
            Some(rest) if rest.starts_with('/') => rest,
            _ => path,
        }
    }

    /// The latency added to every GitHub request.
    pub(crate) fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn set_latency(&self, latency: Duration) {
        self.latency_ms
            .store(latency.as_millis() as u64, Ordering::Relaxed);
    }

    /// A fresh `X-GitHub-Request-Id`, shaped like GitHub's (`DD5D:266E1:309BAC8:3A1BEB2:5A332B63`).
    pub(crate) fn next_request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let mixed = SplitMix64::new(n).next_u64();
        format!(
            "{:04X}:{:05X}:{:07X}:{:07X}:{:08X}",
            mixed >> 48,
            (mixed >> 28) & 0xF_FFFF,
            mixed & 0xFFF_FFFF,
            (n >> 32) & 0xFFF_FFFF,
            n & 0xFFFF_FFFF
        )
    }
}
