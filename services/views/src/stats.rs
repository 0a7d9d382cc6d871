//! Counters of what a views worker did: for logs, tests and a future metrics endpoint.

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

/// A live view of one worker's counters, cheap to clone and read from any task.
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

    /// View sets this worker stored (each announced by one views event), catch-ups included.
    pub fn views_stored(&self) -> u64 {
        self.counters.views_stored.load(Ordering::Relaxed)
    }

    /// Events skipped because the entry or the snapshot it named was unusable.
    pub fn rejected(&self) -> u64 {
        self.counters.rejected.load(Ordering::Relaxed)
    }

    pub(crate) fn record(&self, handled: Handled) {
        match handled {
            Handled::Stored => self.counters.views_stored.fetch_add(1, Ordering::Relaxed),
            Handled::Malformed | Handled::Unusable => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed)
            }
            Handled::UpToDate | Handled::OtherPath | Handled::NoSnapshot => 0,
        };
    }

    pub(crate) fn record_ack(&self) {
        self.counters.events_acked.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_claim(&self) {
        self.counters
            .entries_claimed
            .fetch_add(1, Ordering::Relaxed);
    }
}
