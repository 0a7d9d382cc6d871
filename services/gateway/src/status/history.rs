//! The status page's memory of the last minutes: a bounded ring of this process's counter
//! totals, sampled every [`SAMPLE_EVERY`]. Rates (requests/s, shed requests, rejected webhook
//! deliveries) are differences between two samples; the sparkline is the rate between each
//! pair. Nothing else keeps history: no new service, a few kilobytes.

use std::collections::VecDeque;
use std::time::Duration;

/// How often the sampler records the totals.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Samples kept: ten minutes at [`SAMPLE_EVERY`].
pub(crate) const SAMPLES_KEPT: usize = 120;
/// The window the page's rates cover.
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(60);

/// This process's counters at one moment (all monotonic since start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    /// When they were read, Unix milliseconds.
    pub(crate) at_ms: u64,
    /// Requests answered (every route).
    pub(crate) requests: u64,
    /// Requests answered from the in-process copies of cached keys and views.
    pub(crate) copy_answered: u64,
    /// Requests for a cached key or view answered 503 (not loaded).
    pub(crate) copy_unavailable: u64,
    /// Pass-through lookups answered by the in-process cache (L1): fresh or stale.
    pub(crate) l1_hits: u64,
    /// Every pass-through lookup (hits, misses, coalesced).
    pub(crate) l1_lookups: u64,
    /// L1 misses answered by the fleet cache in Redis (L2): fresh or stale entries.
    pub(crate) l2_hits: u64,
    /// L1 misses that asked L2 (hits, leads, waits).
    pub(crate) l2_lookups: u64,
    /// Requests sent to GitHub by the pass-through.
    pub(crate) upstream: u64,
    /// Lookups that waited for a fetch already in flight (here or on another replica).
    pub(crate) coalesced: u64,
    /// Requests refused to protect the gateway or GitHub: the client rate limit (429) and
    /// the cap on concurrent upstream fetches (503).
    pub(crate) shed: u64,
    /// Webhook deliveries refused (bad signature, too large, unusable).
    pub(crate) webhooks_rejected: u64,
}

impl Totals {
    /// `self - earlier`, counter by counter (saturating: a counter never goes back).
    pub(crate) fn since(&self, earlier: &Totals) -> Totals {
        Totals {
            at_ms: self.at_ms.saturating_sub(earlier.at_ms),
            requests: self.requests.saturating_sub(earlier.requests),
            copy_answered: self.copy_answered.saturating_sub(earlier.copy_answered),
            copy_unavailable: self
                .copy_unavailable
                .saturating_sub(earlier.copy_unavailable),
            l1_hits: self.l1_hits.saturating_sub(earlier.l1_hits),
            l1_lookups: self.l1_lookups.saturating_sub(earlier.l1_lookups),
            l2_hits: self.l2_hits.saturating_sub(earlier.l2_hits),
            l2_lookups: self.l2_lookups.saturating_sub(earlier.l2_lookups),
            upstream: self.upstream.saturating_sub(earlier.upstream),
            coalesced: self.coalesced.saturating_sub(earlier.coalesced),
            shed: self.shed.saturating_sub(earlier.shed),
            webhooks_rejected: self
                .webhooks_rejected
                .saturating_sub(earlier.webhooks_rejected),
        }
    }

    /// Requests per second over a difference computed by [`Totals::since`].
    pub(crate) fn per_sec(&self) -> f64 {
        if self.at_ms == 0 {
            return 0.0;
        }
        self.requests as f64 * 1000.0 / self.at_ms as f64
    }
}

/// The bounded ring of samples, oldest first.
#[derive(Debug, Default)]
pub(crate) struct History {
    samples: VecDeque<Totals>,
}

impl History {
    /// Records a sample, dropping the oldest beyond [`SAMPLES_KEPT`].
    pub(crate) fn record(&mut self, totals: Totals) {
        if self.samples.len() == SAMPLES_KEPT {
            self.samples.pop_front();
        }
        self.samples.push_back(totals);
    }

    /// The sample to measure rates from at `now_ms`: the oldest within [`RATE_WINDOW`], else
    /// the newest (the sampler fell behind), else none (nothing recorded yet).
    pub(crate) fn base(&self, now_ms: u64) -> Option<Totals> {
        let window = RATE_WINDOW.as_millis() as u64;
        self.samples
            .iter()
            .find(|s| now_ms.saturating_sub(s.at_ms) <= window)
            .or_else(|| self.samples.back())
            .copied()
    }

    /// Requests per second between consecutive samples, oldest first (the sparkline).
    pub(crate) fn request_rates(&self) -> Vec<f64> {
        self.samples
            .iter()
            .zip(self.samples.iter().skip(1))
            .map(|(earlier, later)| later.since(earlier).per_sec())
            .collect()
    }

    /// Samples held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.samples.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, requests: u64) -> Totals {
        Totals {
            at_ms: ms,
            requests,
            ..Totals::default()
        }
    }

    #[test]
    fn the_ring_is_bounded_and_rates_come_from_differences() {
        let mut history = History::default();
        assert_eq!(history.base(1_000), None);
        for i in 0..(SAMPLES_KEPT as u64 + 10) {
            history.record(at(i * 5_000, i * 50));
        }
        assert_eq!(history.len(), SAMPLES_KEPT);
        let rates = history.request_rates();
        assert_eq!(rates.len(), SAMPLES_KEPT - 1);
        assert!(rates.iter().all(|r| (r - 10.0).abs() < 1e-9), "{rates:?}");
        let now = (SAMPLES_KEPT as u64 + 9) * 5_000;
        let base = history.base(now).expect("a base");
        assert_eq!(
            now - base.at_ms,
            60_000,
            "the oldest sample within the window"
        );
        // Long after the last sample: the newest one.
        let late = history.base(now + 600_000).expect("a base");
        assert_eq!(late.at_ms, now);
    }

    #[test]
    fn differences_never_go_negative() {
        let later = at(10, 5);
        let earlier = at(20, 9);
        assert_eq!(later.since(&earlier), Totals::default());
        assert_eq!(Totals::default().per_sec(), 0.0);
    }
}
