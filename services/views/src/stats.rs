//! Counters of what the views workers did, per organisation and in total: for logs and tests,
//! mirrored into the process's Prometheus metrics (`hubcache_views_events_total{org,result}`,
//! `hubcache_views_entries_claimed_total{org}`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What happened to one refresh event (or a catch-up) that was handled to completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    /// New views were stored and announced.
    Stored,
    /// Views of that version or a newer one were already stored.
    UpToDate,
    /// The event was about another cached path.
    OtherPath,
    /// The stream entry was not a valid refresh event.
    Malformed,
    /// No repos snapshot is stored.
    NoSnapshot,
    /// The repos snapshot is damaged or not a repo list; the stored views were kept.
    Unusable,
}

#[derive(Debug, Default)]
struct Counters {
    events_acked: AtomicU64,
    entries_claimed: AtomicU64,
    views_stored: AtomicU64,
    rejected: AtomicU64,
}

/// A live view of counters of what the views workers did (one organisation's, or every
/// organisation's together), cheap to clone and read from any task.
///
/// Exists so operators (logs, metrics) and tests can tell how much work each worker did, e.g.
/// that every refresh event was handled by exactly one worker of the group.
#[derive(Debug, Clone, Default)]
pub struct ViewsStats {
    counters: Arc<Counters>,
}

impl ViewsStats {
    /// Refresh events handled and acknowledged (any outcome, claimed ones included).
    pub fn events_acked(&self) -> u64 {
        self.counters.events_acked.load(Ordering::Relaxed)
    }

    /// Events taken over from another consumer with `XAUTOCLAIM` (also counted as acked once
    /// handled).
    pub fn entries_claimed(&self) -> u64 {
        self.counters.entries_claimed.load(Ordering::Relaxed)
    }

    /// View sets stored (each announced by one views event), catch-ups included.
    pub fn views_stored(&self) -> u64 {
        self.counters.views_stored.load(Ordering::Relaxed)
    }

    /// Events skipped because the entry or the snapshot it named was unusable.
    pub fn rejected(&self) -> u64 {
        self.counters.rejected.load(Ordering::Relaxed)
    }

    fn count(&self, handled: Handled) {
        match handled {
            Handled::Stored => self.counters.views_stored.fetch_add(1, Ordering::Relaxed),
            Handled::Malformed | Handled::Unusable => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed)
            }
            Handled::UpToDate | Handled::OtherPath | Handled::NoSnapshot => 0,
        };
    }
}

/// What one organisation's worker records into: its own counters, the process's totals and
/// the metrics under its `org` label.
#[derive(Debug, Clone)]
pub(crate) struct WorkerStats {
    org: String,
    own: ViewsStats,
    total: ViewsStats,
}

impl WorkerStats {
    /// Counters of `org`'s worker (`own`), also added to `total`.
    pub(crate) fn new(org: &str, own: ViewsStats, total: ViewsStats) -> Self {
        Self {
            org: org.to_owned(),
            own,
            total,
        }
    }

    /// The `org` label value of this worker's metrics (the login as configured).
    pub(crate) fn org(&self) -> &str {
        &self.org
    }

    pub(crate) fn record(&self, handled: Handled) {
        let result = match handled {
            Handled::Stored => "stored",
            Handled::UpToDate => "up_to_date",
            Handled::OtherPath => "other_path",
            Handled::Malformed => "malformed",
            Handled::NoSnapshot => "no_snapshot",
            Handled::Unusable => "unusable",
        };
        metrics::counter!("hubcache_views_events_total", "org" => self.org.clone(), "result" => result)
            .increment(1);
        self.own.count(handled);
        self.total.count(handled);
    }

    pub(crate) fn record_ack(&self) {
        for stats in [&self.own, &self.total] {
            stats.counters.events_acked.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn record_claim(&self) {
        metrics::counter!("hubcache_views_entries_claimed_total", "org" => self.org.clone())
            .increment(1);
        for stats in [&self.own, &self.total] {
            stats
                .counters
                .entries_claimed
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Registers the HELP text of every views metric (a metric without HELP fails
/// `promtool check metrics`). Call once, after the recorder exists.
pub(crate) fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "hubcache_views_events_total",
        "Refresh events (and catch-ups) handled, by organisation and result: stored, up_to_date, other_path, malformed, no_snapshot, unusable."
    );
    describe_counter!(
        "hubcache_views_entries_claimed_total",
        "Refresh events taken over from a dead consumer with XAUTOCLAIM, by organisation."
    );
    describe_histogram!(
        "hubcache_views_recompute_duration_seconds",
        Unit::Seconds,
        "Time to rank an organisation's repos snapshot into every view."
    );
    describe_gauge!(
        "hubcache_views_pending_entries",
        "Refresh events delivered to an organisation's views group but not yet acknowledged (XPENDING count)."
    );
    describe_gauge!(
        "hubcache_views_stream_lag_entries",
        "Refresh events not yet delivered to an organisation's views group (XINFO GROUPS lag)."
    );
}
