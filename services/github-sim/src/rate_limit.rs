//! GitHub's primary rate limit: a budget of requests per fixed window, reported in the
//! `x-ratelimit-*` headers of every API response.

use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde::Serialize;

/// The budget as the `x-ratelimit-*` headers and `/_sim/rate-limit` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct RateLimitState {
    pub(crate) limit: u64,
    pub(crate) remaining: u64,
    pub(crate) used: u64,
    /// When the window resets, Unix seconds (`x-ratelimit-reset`).
    pub(crate) reset: u64,
}

impl RateLimitState {
    /// The same window as seen by a client told it has nothing left (an injected primary limit).
    pub(crate) fn exhausted(self) -> Self {
        Self {
            remaining: 0,
            used: self.limit,
            ..self
        }
    }
}

/// A change of budget requested through `POST /_sim/rate-limit`; absent fields keep their value
/// (`remaining` defaults to the new limit, `reset_in_secs` to the configured window).
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimitUpdate {
    pub(crate) limit: Option<u64>,
    pub(crate) remaining: Option<u64>,
    pub(crate) reset_in_secs: Option<u64>,
}

/// Why a budget change was refused.
#[derive(Debug, thiserror::Error)]
#[error("remaining ({remaining}) cannot exceed limit ({limit})")]
pub(crate) struct RemainingAboveLimit {
    remaining: u64,
    limit: u64,
}

/// The shared budget. Each window starts when the previous one has run out, as on GitHub.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    budget: Mutex<Budget>,
    window: Duration,
}

#[derive(Debug)]
struct Budget {
    limit: u64,
    remaining: u64,
    reset_at_ms: u64,
}

impl RateLimiter {
    pub(crate) fn new(limit: u64, window: Duration) -> Self {
        Self {
            budget: Mutex::new(Budget {
                limit,
                remaining: limit,
                reset_at_ms: now_ms() + window.as_millis() as u64,
            }),
            window,
        }
    }

    /// The current state, without spending anything.
    pub(crate) fn current(&self) -> RateLimitState {
        let mut budget = self.budget.lock();
        self.roll_window(&mut budget);
        budget.state()
    }

    /// Spends one request: `Ok` with the state after spending, `Err` with the (exhausted) state
    /// when nothing was left.
    pub(crate) fn spend(&self) -> Result<RateLimitState, RateLimitState> {
        let mut budget = self.budget.lock();
        self.roll_window(&mut budget);
        if budget.remaining == 0 {
            return Err(budget.state());
        }
        budget.remaining -= 1;
        Ok(budget.state())
    }

    pub(crate) fn update(
        &self,
        update: RateLimitUpdate,
    ) -> Result<RateLimitState, RemainingAboveLimit> {
        let mut budget = self.budget.lock();
        self.roll_window(&mut budget);
        let limit = update.limit.unwrap_or(budget.limit);
        let remaining = update.remaining.unwrap_or(limit);
        if remaining > limit {
            return Err(RemainingAboveLimit { remaining, limit });
        }
        budget.limit = limit;
        budget.remaining = remaining;
        let window = update
            .reset_in_secs
            .map_or(self.window, Duration::from_secs);
        budget.reset_at_ms = now_ms() + window.as_millis() as u64;
        Ok(budget.state())
    }

    fn roll_window(&self, budget: &mut Budget) {
        let now = now_ms();
        if now >= budget.reset_at_ms {
            budget.remaining = budget.limit;
            budget.reset_at_ms = now + self.window.as_millis() as u64;
        }
    }
}

impl Budget {
    fn state(&self) -> RateLimitState {
        RateLimitState {
            limit: self.limit,
            remaining: self.remaining,
            used: self.limit - self.remaining,
            reset: self.reset_at_ms.div_ceil(1000),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spending_stops_at_zero_and_the_window_refills() {
        let limiter = RateLimiter::new(2, Duration::from_secs(3600));
        assert_eq!(limiter.spend().map(|s| s.remaining), Ok(1));
        assert_eq!(limiter.spend().map(|s| (s.remaining, s.used)), Ok((0, 2)));
        assert!(limiter.spend().is_err());
        let state = limiter
            .update(RateLimitUpdate {
                reset_in_secs: Some(0),
                remaining: Some(0),
                ..Default::default()
            })
            .expect("valid update");
        assert_eq!(state.remaining, 0);
        assert_eq!(
            limiter.spend().map(|s| s.remaining),
            Ok(1),
            "a spent window refills"
        );
    }

    #[test]
    fn remaining_above_limit_is_refused() {
        let limiter = RateLimiter::new(10, Duration::from_secs(60));
        let update = RateLimitUpdate {
            limit: Some(5),
            remaining: Some(6),
            reset_in_secs: None,
        };
        assert!(limiter.update(update).is_err());
    }
}
