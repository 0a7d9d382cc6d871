//! The fleet cache's counters: per replica (for `/healthcheck` and tests, since replicas in one
//! test process share one metrics recorder) and in the process's metric.

use std::sync::atomic::{AtomicU64, Ordering};

/// `hubcache_passthrough_fleet_total{event}`: what the fleet cache (L2) did: `hit` (fresh L2
/// entry), `lead` (this replica fetched upstream for the fleet), `waiter` (waited for another
/// replica's fetch), `takeover` (a waiter took an expired lock), `stale` (an expired L2 entry
/// served), `unavailable` (Redis down or slow: L1-only), `damaged` (an unreadable entry),
/// `too_large` (an answer kept L1-only).
pub(crate) const FLEET_METRIC: &str = "hubcache_passthrough_fleet_total";

/// This replica's fleet cache counters (the metric sums them per process), for `/healthcheck`
/// and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct FleetStats {
    /// Whether Redis answered once (the connection exists).
    pub(crate) connected: bool,
    /// Whether the wake-up subscription is live.
    pub(crate) subscribed: bool,
    /// Fresh L2 entries read without waiting.
    pub(crate) hit: u64,
    /// Upstream fetches made for the fleet (this replica held the lock).
    pub(crate) lead: u64,
    /// Fetches that waited for another replica's.
    pub(crate) waiter: u64,
    /// Locks taken over after their holder's expired.
    pub(crate) takeover: u64,
    /// Expired L2 entries served (stale-while-revalidate, stale-if-error).
    pub(crate) stale: u64,
    /// Redis failures or timeouts (each skips L2 for a second).
    pub(crate) unavailable: u64,
    /// Unreadable entries, deleted.
    pub(crate) damaged: u64,
    /// Answers above `l2_max_entry_bytes`, kept L1-only.
    pub(crate) too_large: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) hit: AtomicU64,
    pub(super) lead: AtomicU64,
    pub(super) waiter: AtomicU64,
    pub(super) takeover: AtomicU64,
    pub(super) stale: AtomicU64,
    pub(super) unavailable: AtomicU64,
    pub(super) damaged: AtomicU64,
    pub(super) too_large: AtomicU64,
}

/// Counts one event in this replica's counters and in the process's metric.
pub(super) fn count(counter: &AtomicU64, event: &'static str) {
    counter.fetch_add(1, Ordering::Relaxed);
    metrics::counter!(FLEET_METRIC, "event" => event).increment(1);
}
