//! The rate-limit budget: what GitHub last told us about it, whether GitHub asked us to stop,
//! and how much to stretch polling so the budget lasts until its window resets.
//!
//! GitHub's limits are per token, not per endpoint, so there is one budget per fetcher.

use std::time::{Duration, Instant, SystemTime};

use hubcache_shared::RateLimit;

/// Units kept in reserve: the fetcher never plans to spend the last few requests of a window,
/// which leaves room for a change on a multi-page list.
const RESERVE_UNITS: u64 = 5;

/// The one rate-limit budget of this fetcher.
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
