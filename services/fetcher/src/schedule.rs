//! When each endpoint is polled next: its interval (stretched when the rate-limit budget runs
//! low), or a jittered exponential backoff after failures.

use std::time::{Duration, Instant};

use hubcache_shared::{Backoff, CachedEndpoint};

use crate::budget::Stretch;

/// Weight of the latest poll in an endpoint's expected cost.
const COST_SMOOTHING: f64 = 0.3;
/// The least an endpoint is assumed to cost per poll: even an endpoint that has answered 304
/// for hours may change, and then its pages cost.
const MIN_EXPECTED_UNITS: f64 = 0.1;

/// One endpoint's place in the schedule.
#[derive(Debug)]
struct Slot {
    endpoint: CachedEndpoint,
    next_due: Instant,
    failures: u32,
    expected_units: f64,
}

/// The per-endpoint due times of the poll loop.
#[derive(Debug)]
pub(crate) struct Schedule {
    slots: Vec<Slot>,
    backoff: Backoff,
}

impl Schedule {
    /// Every endpoint due at `now`.
    pub(crate) fn new(endpoints: Vec<CachedEndpoint>, backoff: Backoff, now: Instant) -> Self {
        let slots = endpoints
            .into_iter()
            .map(|endpoint| Slot {
                endpoint,
                next_due: now,
                failures: 0,
                expected_units: MIN_EXPECTED_UNITS,
            })
            .collect();
        Self { slots, backoff }
    }

    /// Makes every endpoint due at `now` and forgets failures (a newly acquired lease starts
    /// fresh: what the previous holder did is in Redis).
    pub(crate) fn restart(&mut self, now: Instant) {
        for slot in &mut self.slots {
            slot.next_due = now;
            slot.failures = 0;
        }
    }

    /// The endpoint due first (ties: configuration order) and when.
    pub(crate) fn next(&self) -> Option<(usize, Instant)> {
        self.slots
            .iter()
            .enumerate()
            .min_by_key(|(i, slot)| (slot.next_due, *i))
            .map(|(i, slot)| (i, slot.next_due))
    }

    /// The endpoint at `index`.
    pub(crate) fn endpoint(&self, index: usize) -> &CachedEndpoint {
        &self.slots[index].endpoint
    }

    /// Units per second polling as configured is expected to spend.
    pub(crate) fn demand_per_sec(&self) -> f64 {
        self.slots
            .iter()
            .map(|slot| slot.expected_units / slot.endpoint.interval.as_secs_f64().max(0.001))
            .sum()
    }

    /// A poll that started at `started` succeeded: next one an interval (stretched by
    /// `stretch`) after it started. `units` (what it spent) updates the endpoint's expected
    /// cost; `None` for polls that say nothing about steady-state cost (a cold fetch).
    pub(crate) fn succeeded(
        &mut self,
        index: usize,
        started: Instant,
        units: Option<u32>,
        stretch: Stretch,
    ) {
        let slot = &mut self.slots[index];
        slot.failures = 0;
        if let Some(units) = units {
            slot.expected_units = (slot.expected_units * (1.0 - COST_SMOOTHING)
                + f64::from(units) * COST_SMOOTHING)
                .max(MIN_EXPECTED_UNITS);
        }
        slot.next_due = started + stretch.apply(slot.endpoint.interval);
    }

    /// A poll failed at `now`: retry after a backoff delay; returns the delay.
    pub(crate) fn failed(&mut self, index: usize, now: Instant) -> Duration {
        let slot = &mut self.slots[index];
        slot.failures = slot.failures.saturating_add(1);
        let delay = self.backoff.delay(slot.failures, &mut rand::rng());
        slot.next_due = now + delay;
        delay
    }

    /// A poll was refused by a rate limit: it is due again as soon as the (global) pause ends.
    pub(crate) fn rate_limited(&mut self, index: usize, now: Instant) {
        self.slots[index].next_due = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(path: &str, secs: u64) -> CachedEndpoint {
        CachedEndpoint {
            path: path.to_owned(),
            interval: Duration::from_secs(secs),
        }
    }

    #[test]
    fn endpoints_come_due_by_interval_and_failures_back_off() {
        let now = Instant::now();
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        let mut s = Schedule::new(vec![endpoint("/a", 10), endpoint("/b", 30)], b, now);
        assert_eq!(s.next(), Some((0, now)));
        s.succeeded(0, now, Some(0), Stretch::NONE);
        assert_eq!(s.next(), Some((1, now)));
        s.succeeded(1, now, Some(1), Stretch::NONE);
        assert_eq!(s.next(), Some((0, now + Duration::from_secs(10))));

        let later = now + Duration::from_secs(10);
        let d1 = s.failed(0, later);
        assert_eq!(d1, Duration::from_secs(1));
        let d2 = s.failed(0, later);
        assert!(d2 >= Duration::from_secs(1) && d2 <= Duration::from_secs(2));
        // Success resets the backoff.
        s.succeeded(0, later, Some(0), Stretch::NONE);
        assert_eq!(s.failed(0, later), Duration::from_secs(1));
    }

    #[test]
    fn stretch_lengthens_the_next_interval() {
        let now = Instant::now();
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        let mut s = Schedule::new(vec![endpoint("/a", 10)], b, now);
        let stretch = Stretch {
            factor: 3.0,
            until_reset: Duration::from_secs(3_600),
        };
        s.succeeded(0, now, Some(1), stretch);
        assert_eq!(s.next(), Some((0, now + Duration::from_secs(30))));
    }

    #[test]
    fn demand_follows_what_polls_cost() {
        let now = Instant::now();
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        let mut s = Schedule::new(vec![endpoint("/a", 10)], b, now);
        assert!((s.demand_per_sec() - MIN_EXPECTED_UNITS / 10.0).abs() < 1e-9);
        // A cold fetch teaches nothing.
        s.succeeded(0, now, None, Stretch::NONE);
        assert!((s.demand_per_sec() - MIN_EXPECTED_UNITS / 10.0).abs() < 1e-9);
        for _ in 0..50 {
            s.succeeded(0, now, Some(3), Stretch::NONE);
        }
        assert!((s.demand_per_sec() - 0.3).abs() < 1e-3);
        for _ in 0..50 {
            s.succeeded(0, now, Some(0), Stretch::NONE);
        }
        // Free polls (304) bring it down, but never to zero.
        assert!((s.demand_per_sec() - MIN_EXPECTED_UNITS / 10.0).abs() < 1e-9);
        for _ in 0..50 {
            s.succeeded(0, now, Some(3), Stretch::NONE);
        }
        assert!((s.demand_per_sec() - 0.3).abs() < 1e-3);
    }
}
