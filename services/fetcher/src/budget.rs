//! The rate-limit budget: what GitHub last told us about it, whether GitHub asked us to stop,
//! and how much to stretch polling so the budget lasts until its window resets.
//!
//! GitHub's limits are per token, not per endpoint or org, so there is one budget per fetcher
//! process, shared by its org loops ([`SharedBudget`]): a pause GitHub asks for stops every
//! org, and the stretch is computed from what all the orgs this replica polls would spend.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hubcache_shared::RateLimit;
use parking_lot::Mutex;

/// Units kept in reserve: the fetcher never plans to spend the last few requests of a window,
/// which leaves room for a change on a multi-page list.
const RESERVE_UNITS: u64 = 5;

/// The rate-limit budget of one credential: what GitHub last said and whether it asked for a
/// pause.
#[derive(Debug, Default)]
pub(crate) struct RateBudget {
    latest: Option<RateLimit>,
    paused_until: Option<Instant>,
}

impl RateBudget {
    /// Records the `x-ratelimit-*` state of a response (the latest one wins: requests are
    /// sequential).
    pub(crate) fn observe(&mut self, rate_limit: RateLimit) {
        self.latest = Some(rate_limit);
    }

    /// The latest state GitHub reported, if any.
    pub(crate) fn latest(&self) -> Option<RateLimit> {
        self.latest
    }

    /// Stops all polling for `wait` (GitHub said so: `Retry-After`, or the primary limit is spent).
    /// A longer pause already in force is kept.
    pub(crate) fn pause(&mut self, now: Instant, wait: Duration) {
        let until = now + wait;
        if self.paused_until.is_none_or(|current| current < until) {
            self.paused_until = Some(until);
        }
    }

    /// When polling may resume, if GitHub asked us to pause and the pause is not over.
    pub(crate) fn paused_until(&self, now: Instant) -> Option<Instant> {
        self.paused_until.filter(|until| *until > now)
    }

    /// How much to lengthen every interval so that spending `demand_per_sec` units per second
    /// does not run out before the window resets (1.0: no stretching needed).
    pub(crate) fn stretch(&self, demand_per_sec: f64, now: SystemTime) -> Stretch {
        match self.latest {
            None => Stretch::NONE,
            Some(rl) => stretch_for(demand_per_sec, rl.remaining, rl.until_reset(now)),
        }
    }
}

/// The one [`RateBudget`] of this process, shared by every org's loop (cheap to clone), with
/// what each org polled here would spend per second.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedBudget {
    inner: Arc<Mutex<Shared>>,
}

#[derive(Debug, Default)]
struct Shared {
    budget: RateBudget,
    /// Units per second each org's schedule expects to spend, for the orgs polled here now.
    demand: HashMap<String, f64>,
}

impl SharedBudget {
    /// Records a response's `x-ratelimit-*` state (the latest one wins).
    pub(crate) fn observe(&self, rate_limit: RateLimit) {
        self.inner.lock().budget.observe(rate_limit);
    }

    /// The latest state GitHub reported, if any.
    pub(crate) fn latest(&self) -> Option<RateLimit> {
        self.inner.lock().budget.latest()
    }

    /// Stops every org's polling for `wait` (see [`RateBudget::pause`]).
    pub(crate) fn pause(&self, now: Instant, wait: Duration) {
        self.inner.lock().budget.pause(now, wait);
    }

    /// When polling may resume, if a pause is in force.
    pub(crate) fn paused_until(&self, now: Instant) -> Option<Instant> {
        self.inner.lock().budget.paused_until(now)
    }

    /// Records that `org`, polled here, expects to spend `demand_per_sec`, and returns the
    /// stretch for what every org polled here spends together (one credential, one budget).
    pub(crate) fn stretch(&self, org: &str, demand_per_sec: f64, now: SystemTime) -> Stretch {
        let mut shared = self.inner.lock();
        match shared.demand.get_mut(org) {
            Some(demand) => *demand = demand_per_sec,
            None => {
                shared.demand.insert(org.to_owned(), demand_per_sec);
            }
        }
        let total: f64 = shared.demand.values().sum();
        shared.budget.stretch(total, now)
    }

    /// `org` is no longer polled here: its demand no longer counts.
    pub(crate) fn forget(&self, org: &str) {
        self.inner.lock().demand.remove(org);
    }
}

/// How the budget bends the schedule: multiply intervals by `factor`, but never wait past
/// `until_reset` for that reason (a new window brings a full budget).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stretch {
    pub(crate) factor: f64,
    pub(crate) until_reset: Duration,
}

impl Stretch {
    /// No stretching.
    pub(crate) const NONE: Self = Self {
        factor: 1.0,
        until_reset: Duration::ZERO,
    };

    /// `interval` under this stretch.
    pub(crate) fn apply(&self, interval: Duration) -> Duration {
        if self.factor <= 1.0 {
            return interval;
        }
        let stretched = interval.mul_f64(self.factor.min(1e6));
        // Past the reset the budget is full again: wait at most until then (plus a second for
        // GitHub's whole-second reset times), and never less than the configured interval.
        stretched.min((self.until_reset + Duration::from_secs(1)).max(interval))
    }
}

/// The stretch needed to spend at most `remaining` (minus a small reserve) in `until_reset` when
/// polling as configured would spend `demand_per_sec`.
pub(crate) fn stretch_for(demand_per_sec: f64, remaining: u64, until_reset: Duration) -> Stretch {
    let secs = until_reset.as_secs_f64();
    if secs <= 0.0 || demand_per_sec <= 0.0 {
        return Stretch::NONE;
    }
    let needed = demand_per_sec * secs;
    let usable = remaining.saturating_sub(RESERVE_UNITS) as f64;
    let factor = if needed <= usable {
        1.0
    } else if usable <= 0.0 {
        f64::INFINITY
    } else {
        needed / usable
    };
    Stretch {
        factor,
        until_reset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plenty_of_budget_means_no_stretch() {
        // 4 endpoints every 10 s, 1 unit each: 0.4/s for an hour = 1440 < 4990.
        let s = stretch_for(0.4, 4_990, Duration::from_secs(3_600));
        assert_eq!(s.factor, 1.0);
        assert_eq!(s.apply(Duration::from_secs(10)), Duration::from_secs(10));
    }

    #[test]
    fn low_budget_spreads_polls_until_the_reset() {
        // 0.4/s for 1000 s needs 400 units, only 105 - 5 = 100 usable: intervals grow 4x.
        let s = stretch_for(0.4, 105, Duration::from_secs(1_000));
        assert!((s.factor - 4.0).abs() < 1e-9, "{s:?}");
        assert_eq!(s.apply(Duration::from_secs(10)), Duration::from_secs(40));
        // The spending that results fits the budget.
        assert!(0.4 / s.factor * 1_000.0 <= 100.0 + 1e-9);
    }

    #[test]
    fn spent_budget_waits_for_the_reset_but_no_longer() {
        let s = stretch_for(0.4, 0, Duration::from_secs(120));
        assert!(s.factor.is_infinite());
        assert_eq!(s.apply(Duration::from_secs(10)), Duration::from_secs(121));
        // A configured interval longer than the reset is kept.
        assert_eq!(s.apply(Duration::from_secs(600)), Duration::from_secs(600));
    }

    #[test]
    fn nothing_to_spend_or_no_window_means_no_stretch() {
        assert_eq!(stretch_for(0.0, 0, Duration::from_secs(100)).factor, 1.0);
        assert_eq!(stretch_for(1.0, 0, Duration::ZERO).factor, 1.0);
        assert_eq!(
            RateBudget::default().stretch(5.0, SystemTime::now()),
            Stretch::NONE
        );
    }

    #[test]
    fn the_shared_budget_stretches_for_every_org_polled_here() {
        let shared = SharedBudget::default();
        let reset = SystemTime::now() + Duration::from_secs(1_000);
        shared.observe(RateLimit {
            limit: 5_000,
            remaining: 205,
            used: 4_795,
            reset_epoch_secs: reset
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("after the epoch")
                .as_secs(),
        });
        let now = SystemTime::now();
        // One org alone (0.1/s for ~1000 s = ~100 units) fits in 200.
        assert_eq!(shared.stretch("a", 0.1, now).factor, 1.0);
        // Four orgs together need ~400: every interval doubles.
        for org in ["b", "c", "d"] {
            shared.stretch(org, 0.1, now);
        }
        let together = shared.stretch("a", 0.1, now).factor;
        assert!(together > 1.8 && together < 2.2, "{together}");
        for org in ["b", "c", "d"] {
            shared.forget(org);
        }
        assert_eq!(shared.stretch("a", 0.1, now).factor, 1.0);
        let pause_start = Instant::now();
        shared.clone().pause(pause_start, Duration::from_secs(5));
        assert!(
            shared.paused_until(pause_start).is_some(),
            "a pause stops every org"
        );
    }

    #[test]
    fn pauses_only_lengthen() {
        let now = Instant::now();
        let mut b = RateBudget::default();
        assert_eq!(b.paused_until(now), None);
        b.pause(now, Duration::from_secs(60));
        b.pause(now, Duration::from_secs(5));
        assert_eq!(b.paused_until(now), Some(now + Duration::from_secs(60)));
        assert_eq!(b.paused_until(now + Duration::from_secs(61)), None);
    }
}
