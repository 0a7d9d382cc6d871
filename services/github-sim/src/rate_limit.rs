//! GitHub's primary rate limit: a budget of requests per fixed window **per credential**,
//! reported in the `x-ratelimit-*` headers of every API response. Each distinct `Authorization`
//! value has its own budget; anonymous requests share one budget per client IP address, as
//! GitHub counts them.

use std::collections::{BTreeMap, HashMap};
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
/// (`remaining` defaults to the new limit, `reset_in_secs` to the configured window). Without
/// `credential` it changes every budget and the one new credentials start from; with it (a
/// label, see [`crate::credential_label`], or `anonymous@{ip}`) only that credential's.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimitUpdate {
    pub(crate) limit: Option<u64>,
    pub(crate) remaining: Option<u64>,
    pub(crate) reset_in_secs: Option<u64>,
    pub(crate) credential: Option<String>,
}

/// Why a budget change was refused.
#[derive(Debug, thiserror::Error)]
#[error("remaining ({remaining}) cannot exceed limit ({limit})")]
pub(crate) struct RemainingAboveLimit {
    remaining: u64,
    limit: u64,
}

/// The budgets. Each window starts when the previous one has run out, as on GitHub.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    budgets: Mutex<Budgets>,
    window: Duration,
}

#[derive(Debug)]
struct Budgets {
    /// The budget a credential seen for the first time starts from (also what
    /// `GET /_sim/rate-limit` reports).
    template: Budget,
    by_key: HashMap<String, Budget>,
}

#[derive(Debug, Clone, Copy)]
struct Budget {
    limit: u64,
    remaining: u64,
    reset_at_ms: u64,
}

impl RateLimiter {
    pub(crate) fn new(limit: u64, window: Duration) -> Self {
        Self {
            budgets: Mutex::new(Budgets {
                template: Budget {
                    limit,
                    remaining: limit,
                    reset_at_ms: now_ms() + window.as_millis() as u64,
                },
                by_key: HashMap::new(),
            }),
            window,
        }
    }

    /// The budget key of a request: its credential label, or `anonymous@{ip}`.
    pub(crate) fn key(label: &str, authorized: bool, ip: &str) -> String {
        if authorized {
            label.to_owned()
        } else {
            format!("{label}@{ip}")
        }
    }

    /// The template's state (the budget of a credential not seen yet), without spending.
    pub(crate) fn current_default(&self) -> RateLimitState {
        let mut budgets = self.budgets.lock();
        roll(&mut budgets.template, self.window);
        budgets.template.state()
    }

    /// The state of every credential seen so far, by key.
    pub(crate) fn all(&self) -> BTreeMap<String, RateLimitState> {
        let mut budgets = self.budgets.lock();
        budgets
            .by_key
            .iter_mut()
            .map(|(key, budget)| {
                roll(budget, self.window);
                (key.clone(), budget.state())
            })
            .collect()
    }

    /// The current state of `key`'s budget, without spending anything.
    pub(crate) fn current(&self, key: &str) -> RateLimitState {
        let mut budgets = self.budgets.lock();
        budgets.budget(key, self.window).state()
    }

    /// Spends one request of `key`'s budget: `Ok` with the state after spending, `Err` with the
    /// (exhausted) state when nothing was left.
    pub(crate) fn spend(&self, key: &str) -> Result<RateLimitState, RateLimitState> {
        let mut budgets = self.budgets.lock();
        let budget = budgets.budget(key, self.window);
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
        let mut budgets = self.budgets.lock();
        let window = update
            .reset_in_secs
            .map_or(self.window, Duration::from_secs);
        if let Some(key) = &update.credential {
            let budget = budgets.budget(key, self.window);
            budget.apply(&update, window)?;
            return Ok(budget.state());
        }
        roll(&mut budgets.template, self.window);
        budgets.template.apply(&update, window)?;
        let template = budgets.template;
        for budget in budgets.by_key.values_mut() {
            *budget = template;
        }
        Ok(template.state())
    }
}

impl Budgets {
    fn budget(&mut self, key: &str, window: Duration) -> &mut Budget {
        roll(&mut self.template, window);
        let template = self.template;
        let budget = self.by_key.entry(key.to_owned()).or_insert(template);
        roll(budget, window);
        budget
    }
}

impl Budget {
    fn apply(
        &mut self,
        update: &RateLimitUpdate,
        window: Duration,
    ) -> Result<(), RemainingAboveLimit> {
        let limit = update.limit.unwrap_or(self.limit);
        let remaining = update.remaining.unwrap_or(limit);
        if remaining > limit {
            return Err(RemainingAboveLimit { remaining, limit });
        }
        self.limit = limit;
        self.remaining = remaining;
        self.reset_at_ms = now_ms() + window.as_millis() as u64;
        Ok(())
    }

    fn state(&self) -> RateLimitState {
        RateLimitState {
            limit: self.limit,
            remaining: self.remaining,
            used: self.limit - self.remaining,
            reset: self.reset_at_ms.div_ceil(1000),
        }
    }
}

fn roll(budget: &mut Budget, window: Duration) {
    let now = now_ms();
    if now >= budget.reset_at_ms {
        budget.remaining = budget.limit;
        budget.reset_at_ms = now + window.as_millis() as u64;
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
        assert_eq!(limiter.spend("a").map(|s| s.remaining), Ok(1));
        assert_eq!(
            limiter.spend("a").map(|s| (s.remaining, s.used)),
            Ok((0, 2))
        );
        assert!(limiter.spend("a").is_err());
        let state = limiter
            .update(RateLimitUpdate {
                reset_in_secs: Some(0),
                remaining: Some(0),
                ..Default::default()
            })
            .expect("valid update");
        assert_eq!(state.remaining, 0);
        assert_eq!(
            limiter.spend("a").map(|s| s.remaining),
            Ok(1),
            "a spent window refills"
        );
    }

    #[test]
    fn each_credential_has_its_own_budget() {
        let limiter = RateLimiter::new(1, Duration::from_secs(3600));
        assert!(limiter.spend("a").is_ok());
        assert!(limiter.spend("a").is_err());
        assert!(limiter.spend("b").is_ok(), "b's budget is untouched by a");
        limiter
            .update(RateLimitUpdate {
                credential: Some("b".to_owned()),
                limit: Some(5),
                ..Default::default()
            })
            .expect("valid update");
        assert_eq!(limiter.current("b").remaining, 5);
        assert_eq!(limiter.current("a").remaining, 0);
        assert_eq!(limiter.current_default().limit, 1);
    }

    #[test]
    fn remaining_above_limit_is_refused() {
        let limiter = RateLimiter::new(10, Duration::from_secs(60));
        let update = RateLimitUpdate {
            limit: Some(5),
            remaining: Some(6),
            ..Default::default()
        };
        assert!(limiter.update(update).is_err());
    }
}
