//! When each endpoint is polled next: its interval (stretched when the rate-limit budget runs
//! low), or a jittered exponential backoff after failures; sooner when a webhook hint names it,
//! and later (the safety interval) while webhooks keep it current.

use std::time::{Duration, Instant};

use hubcache_shared::{Backoff, CachedEndpoint};

use crate::budget::Stretch;

/// Weight of the latest poll in an endpoint's expected cost.
const COST_SMOOTHING: f64 = 0.3;
/// The least an endpoint is assumed to cost per poll: even an endpoint that has answered 304
/// for hours may change, and then its pages cost.
const MIN_EXPECTED_UNITS: f64 = 0.1;

/// How webhook hints bend the schedule.
#[derive(Debug, Clone)]
pub(crate) struct WebhookPolicy {
    /// While hints keep arriving (the last one less than this ago), an endpoint hints have named
    /// is polled at least this often (its interval, if longer), so a lost delivery is still
    /// picked up; once hints stop for this long, its own interval applies again.
    pub(crate) safety_interval: Duration,
    /// A hinted poll of an endpoint starts no sooner than this after its previous poll started:
    /// hints arriving meanwhile wait and coalesce into one revalidation.
    pub(crate) min_gap: Duration,
    /// GitHub's ETags can lag just behind the event: when a hinted poll finds nothing new, look
    /// again after each of these delays before giving up.
    pub(crate) rechecks: Vec<Duration>,
}

impl Default for WebhookPolicy {
    fn default() -> Self {
        Self {
            safety_interval: Duration::from_secs(600),
            min_gap: Duration::from_millis(500),
            rechecks: vec![Duration::from_secs(1), Duration::from_secs(2)],
        }
    }
}

/// A hint not yet answered by a changed snapshot.
#[derive(Debug, Clone, Copy)]
struct PendingHint {
    /// The earliest receipt time (Unix ms) of the deliveries it stands for.
    received_at_ms: u64,
    /// Rechecks used after unchanged answers.
    rechecks_used: usize,
}

/// One endpoint's place in the schedule.
#[derive(Debug)]
struct Slot {
    endpoint: CachedEndpoint,
    next_due: Instant,
    failures: u32,
    expected_units: f64,
    /// When its last poll started (hinted polls keep `min_gap` from it).
    last_started: Option<Instant>,
    /// Whether webhook hints have ever named it (only such endpoints get the safety interval).
    hinted_ever: bool,
    hint: Option<PendingHint>,
}

/// The per-endpoint due times of the poll loop.
#[derive(Debug)]
pub(crate) struct Schedule {
    slots: Vec<Slot>,
    backoff: Backoff,
    webhooks: WebhookPolicy,
    last_hint_at: Option<Instant>,
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
                last_started: None,
                hinted_ever: false,
                hint: None,
            })
            .collect();
        Self {
            slots,
            backoff,
            webhooks: WebhookPolicy::default(),
            last_hint_at: None,
        }
    }

    /// The same schedule with `policy` for webhook hints.
    pub(crate) fn with_webhook_policy(mut self, policy: WebhookPolicy) -> Self {
        self.webhooks = policy;
        self
    }

    /// A webhook hint names the endpoint at `path` (delivery received at `received_at_ms`): it
    /// becomes due now, or `min_gap` after its last poll started, and not during a failure
    /// backoff. While the rate-limit budget is being stretched (`stretch`), no sooner than its
    /// stretched interval after its last poll started: hints then shorten no wait the budget
    /// needs, so a flood cannot outspend the pacing. Returns whether `path` is scheduled.
    pub(crate) fn hinted(
        &mut self,
        path: &str,
        received_at_ms: u64,
        now: Instant,
        stretch: Stretch,
    ) -> bool {
        let Some(slot) = self
            .slots
            .iter_mut()
            .find(|slot| slot.endpoint.path == path)
        else {
            return false;
        };
        self.last_hint_at = Some(now);
        slot.hinted_ever = true;
        if slot.failures > 0 {
            return true;
        }
        let received_at_ms = slot.hint.map_or(received_at_ms, |pending| {
            pending.received_at_ms.min(received_at_ms)
        });
        slot.hint = Some(PendingHint {
            received_at_ms,
            rechecks_used: 0,
        });
        let gap = if stretch.factor > 1.0 {
            stretch
                .apply(slot.endpoint.interval)
                .max(self.webhooks.min_gap)
        } else {
            self.webhooks.min_gap
        };
        let earliest = slot
            .last_started
            .map_or(now, |started| started + gap)
            .max(now);
        slot.next_due = slot.next_due.min(earliest);
        true
    }

    /// After a successful poll of a hinted endpoint: a change answers the hint (returns its
    /// receipt time, for the latency metric); no change schedules the next recheck, until
    /// they are used up.
    pub(crate) fn settle_hint(&mut self, index: usize, changed: bool, now: Instant) -> Option<u64> {
        let slot = &mut self.slots[index];
        let pending = slot.hint.as_mut()?;
        if changed {
            let received_at_ms = pending.received_at_ms;
            slot.hint = None;
            return Some(received_at_ms);
        }
        match self.webhooks.rechecks.get(pending.rechecks_used) {
            Some(delay) => {
                pending.rechecks_used += 1;
                slot.next_due = slot.next_due.min(now + *delay);
            }
            None => slot.hint = None,
        }
        None
    }

    /// The interval of `slot` now: its own, or the safety interval if longer while webhooks
    /// keep it current.
    fn interval(&self, index: usize, now: Instant) -> Duration {
        let slot = &self.slots[index];
        let live = self
            .last_hint_at
            .is_some_and(|at| now < at + self.webhooks.safety_interval);
        if slot.hinted_ever && live {
            slot.endpoint.interval.max(self.webhooks.safety_interval)
        } else {
            slot.endpoint.interval
        }
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
        let interval = self.interval(index, started);
        let slot = &mut self.slots[index];
        slot.failures = 0;
        slot.last_started = Some(started);
        if let Some(units) = units {
            slot.expected_units = (slot.expected_units * (1.0 - COST_SMOOTHING)
                + f64::from(units) * COST_SMOOTHING)
                .max(MIN_EXPECTED_UNITS);
        }
        slot.next_due = started + stretch.apply(interval);
    }

    /// A poll failed at `now`: retry after a backoff delay; returns the delay.
    pub(crate) fn failed(&mut self, index: usize, now: Instant) -> Duration {
        let slot = &mut self.slots[index];
        slot.failures = slot.failures.saturating_add(1);
        slot.last_started = Some(now);
        let delay = self.backoff.delay(slot.failures, &mut rand::rng());
        slot.next_due = now + delay;
        delay
    }

    /// GitHub answered that the endpoint does not exist (404: an unknown org, or one the token
    /// cannot see): asking again soon would only spend rate limit, so the next try waits the
    /// longest backoff. Returns the delay.
    pub(crate) fn not_found(&mut self, index: usize, now: Instant) -> Duration {
        let slot = &mut self.slots[index];
        slot.failures = slot.failures.saturating_add(1);
        slot.last_started = Some(now);
        let delay = self.backoff.ceiling(u32::MAX);
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
            org: "o".to_owned(),
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
    fn a_missing_endpoint_waits_the_longest_backoff_at_once() {
        let now = Instant::now();
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        let mut s = Schedule::new(vec![endpoint("/orgs/nope", 10)], b, now);
        assert_eq!(s.not_found(0, now), Duration::from_secs(300));
        assert_eq!(s.next(), Some((0, now + Duration::from_secs(300))));
        // Found again: the normal interval applies.
        s.succeeded(0, now, Some(1), Stretch::NONE);
        assert_eq!(s.next(), Some((0, now + Duration::from_secs(10))));
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

    fn hinted_schedule(now: Instant) -> Schedule {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        Schedule::new(vec![endpoint("/a", 60), endpoint("/b", 60)], b, now).with_webhook_policy(
            WebhookPolicy {
                safety_interval: Duration::from_secs(600),
                min_gap: Duration::from_millis(500),
                rechecks: vec![Duration::from_secs(1), Duration::from_secs(2)],
            },
        )
    }

    #[test]
    fn a_hint_makes_its_endpoint_due_and_a_burst_waits_for_the_gap() {
        let now = Instant::now();
        let mut s = hinted_schedule(now);
        s.succeeded(0, now, Some(0), Stretch::NONE);
        s.succeeded(1, now, Some(0), Stretch::NONE);
        let later = now + Duration::from_secs(5);
        assert!(s.hinted("/a", 1, later, Stretch::NONE));
        assert!(!s.hinted("/elsewhere", 1, later, Stretch::NONE));
        assert_eq!(s.next(), Some((0, later)));
        // A poll starts; more hints during it are due only min_gap after that start.
        s.succeeded(0, later, Some(0), Stretch::NONE);
        assert_eq!(s.settle_hint(0, true, later), Some(1));
        for at in 0..1_000 {
            s.hinted("/a", 2 + at, later, Stretch::NONE);
        }
        assert_eq!(s.next(), Some((0, later + Duration::from_millis(500))));
        // While the budget is stretched (x3), a hint waits for the stretched interval.
        let stretch = Stretch {
            factor: 3.0,
            until_reset: Duration::from_secs(3_600),
        };
        s.succeeded(1, later, Some(0), stretch);
        let soon = later + Duration::from_secs(1);
        s.hinted("/b", 3, soon, stretch);
        assert_eq!(s.slots[1].next_due, later + Duration::from_secs(180));
    }

    #[test]
    fn unchanged_answers_to_a_hint_are_rechecked_then_given_up() {
        let now = Instant::now();
        let mut s = hinted_schedule(now);
        s.succeeded(0, now, Some(0), Stretch::NONE);
        s.succeeded(1, now, Some(0), Stretch::NONE);
        let t = now + Duration::from_secs(10);
        s.hinted("/a", 7, t, Stretch::NONE);
        s.succeeded(0, t, Some(0), Stretch::NONE);
        assert_eq!(s.settle_hint(0, false, t), None);
        assert_eq!(s.next(), Some((0, t + Duration::from_secs(1))));
        let t2 = t + Duration::from_secs(1);
        s.succeeded(0, t2, Some(0), Stretch::NONE);
        assert_eq!(s.settle_hint(0, false, t2), None);
        assert_eq!(s.next(), Some((0, t2 + Duration::from_secs(2))));
        let t3 = t2 + Duration::from_secs(2);
        s.succeeded(0, t3, Some(0), Stretch::NONE);
        assert_eq!(s.settle_hint(0, false, t3), None);
        // Given up: back to the (safety) interval; a later change is not attributed to it.
        assert_eq!(s.slots[0].next_due, t3 + Duration::from_secs(600));
        assert_eq!(s.settle_hint(0, true, t3), None);
    }

    #[test]
    fn while_hints_arrive_hinted_endpoints_poll_at_the_safety_interval() {
        let now = Instant::now();
        let mut s = hinted_schedule(now);
        s.hinted("/a", 1, now, Stretch::NONE);
        s.succeeded(0, now, Some(0), Stretch::NONE);
        s.succeeded(1, now, Some(0), Stretch::NONE);
        assert_eq!(s.slots[0].next_due, now + Duration::from_secs(600));
        assert_eq!(
            s.slots[1].next_due,
            now + Duration::from_secs(60),
            "never hinted"
        );
        // Quiet for the safety interval: back to normal.
        let quiet = now + Duration::from_secs(601);
        s.succeeded(0, quiet, Some(0), Stretch::NONE);
        assert_eq!(s.slots[0].next_due, quiet + Duration::from_secs(60));
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
