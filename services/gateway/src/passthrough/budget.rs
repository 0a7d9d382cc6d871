//! Respecting a spent budget: once GitHub refuses a credential because a rate limit is spent
//! (403/429 with `x-ratelimit-remaining: 0`, or a secondary limit), no request with that
//! credential goes upstream until the limit lifts. Until then the pass-through answers from its
//! caches (stale allowed) or with 503 and `Retry-After` at once: GitHub warns that integrations
//! which keep calling while limited may be banned.
//!
//! Budgets are per credential partition: the server's credential (by its name, one per org once
//! each org has its own), each client's own `Authorization` (by its hash) and anonymous
//! upstream requests (the gateway's address). Primary limits pause until `x-ratelimit-reset`;
//! secondary limits for `retry-after`, or without it at least a minute, doubling while they
//! repeat. Kept in each replica's memory and shared through the fleet cache (Redis) when it is
//! on, so one replica's refused request pauses the credential for all (README "Respecting
//! GitHub's rate limits in the pass-through").

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::upstream::UpstreamFailure;
use crate::fleet_cache::{SharedPause, fleet_id};

/// `hubcache_gateway_budget_paused{partition_kind}`: credential partitions currently paused.
pub(crate) const PAUSED_METRIC: &str = "hubcache_gateway_budget_paused";
/// `hubcache_gateway_budget_refusals_total{partition_kind}`: fetches answered without going
/// upstream because their partition's budget is paused.
pub(crate) const REFUSALS_METRIC: &str = "hubcache_gateway_budget_refusals_total";

/// Longest wait for a repeating secondary limit without `retry-after`.
const MAX_SECONDARY_WAIT: Duration = Duration::from_secs(3600);
/// GitHub's rule for a secondary limit without `retry-after`: wait at least a minute.
const MIN_SECONDARY_WAIT: Duration = Duration::from_secs(60);

/// Whose rate-limit budget an upstream request spends.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) enum BudgetPartition {
    /// No credential: GitHub counts these by the gateway's address.
    Anonymous,
    /// The server's credential, by its non-secret name.
    Server(Arc<str>),
    /// A client's own `Authorization`, by the SHA-256 of its value.
    Client([u8; 32]),
}

impl BudgetPartition {
    /// The partition's id in the fleet cache: a digest, so no credential (or its hash) is
    /// readable from Redis.
    pub(super) fn fleet_id(&self) -> String {
        match self {
            BudgetPartition::Anonymous => fleet_id(&[b"budget", b"anonymous"]),
            BudgetPartition::Server(name) => fleet_id(&[b"budget", b"server", name.as_bytes()]),
            BudgetPartition::Client(hash) => fleet_id(&[b"budget", b"client", hash]),
        }
    }

    /// The metric label and health kind (never the credential or its hash).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            BudgetPartition::Anonymous => "anonymous",
            BudgetPartition::Server(_) => "server",
            BudgetPartition::Client(_) => "client",
        }
    }
}

/// Every partition kind, for gauges that must drop back to 0.
pub(crate) const KINDS: [&str; 3] = ["anonymous", "server", "client"];

#[derive(Debug, Clone, Copy)]
struct Pause {
    until: Instant,
    status: u16,
    primary: bool,
    /// Secondary limits without `retry-after` in a row (the exponential back-off's exponent).
    streak: u32,
}

/// One paused budget, as `/healthcheck` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct PausedBudget {
    /// `server`, `anonymous` or `client`.
    pub(crate) kind: &'static str,
    /// The server credential's name; absent for other kinds (a client is never identified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) credential: Option<String>,
    /// `primary` (until `x-ratelimit-reset`) or `secondary`.
    pub(crate) limit: &'static str,
    /// Seconds until requests go upstream again.
    pub(crate) retry_after_secs: u64,
    /// The status GitHub refused with.
    pub(crate) status: u16,
}

/// The paused budgets of this replica.
#[derive(Default)]
pub(super) struct Budgets {
    paused: Mutex<HashMap<BudgetPartition, Pause>>,
}

impl Budgets {
    /// `Err` (the refusal to answer instead) while `partition`'s budget is paused; the caller
    /// then sends nothing upstream.
    pub(super) fn check(&self, partition: &BudgetPartition) -> Result<(), UpstreamFailure> {
        let now = Instant::now();
        let paused = self.paused.lock();
        match paused.get(partition) {
            Some(pause) if pause.until > now => {
                metrics::counter!(REFUSALS_METRIC, "partition_kind" => partition.kind())
                    .increment(1);
                Err(UpstreamFailure::RateLimited {
                    status: pause.status,
                    retry_after: Some(ceil_secs(pause.until - now)),
                })
            }
            _ => Ok(()),
        }
    }

    /// Takes on a pause another replica shared (unless this one knows a later one).
    pub(super) fn adopt(&self, partition: &BudgetPartition, shared: SharedPause) {
        let until = Instant::now() + shared.left;
        let mut paused = self.paused.lock();
        if paused.get(partition).is_some_and(|p| p.until >= until) {
            return;
        }
        paused.insert(
            partition.clone(),
            Pause {
                until,
                status: shared.status,
                primary: shared.primary,
                streak: shared.streak,
            },
        );
    }

    /// Learns from an upstream answer: a rate-limit refusal (`wait` from GitHub's headers, see
    /// `freshness::rate_limit_duration`) pauses the partition, and the pause is returned to be
    /// shared with the fleet; any other answer ends a secondary limit's back-off streak.
    pub(super) fn observe(
        &self,
        partition: &BudgetPartition,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        wait: Option<Duration>,
    ) -> Option<SharedPause> {
        let mut paused = self.paused.lock();
        let Some(wait) = wait else {
            if paused
                .get(partition)
                .is_some_and(|p| p.until <= Instant::now())
            {
                paused.remove(partition);
            }
            return None;
        };
        let primary = header_str(headers, "x-ratelimit-remaining") == Some("0");
        let has_retry_after = headers.contains_key(reqwest::header::RETRY_AFTER);
        let previous_streak = paused.get(partition).map_or(0, |p| p.streak);
        let (wait, streak) = if primary || has_retry_after {
            (wait, 0)
        } else {
            let backoff = MIN_SECONDARY_WAIT
                .saturating_mul(1 << previous_streak.min(6))
                .min(MAX_SECONDARY_WAIT);
            (wait.max(backoff), previous_streak + 1)
        };
        tracing::warn!(
            partition_kind = partition.kind(),
            status,
            primary,
            wait_secs = wait.as_secs(),
            "GitHub rate limit reached: no upstream request with this credential until it lifts"
        );
        paused.insert(
            partition.clone(),
            Pause {
                until: Instant::now() + wait,
                status,
                primary,
                streak,
            },
        );
        Some(SharedPause {
            status,
            primary,
            streak,
            left: wait,
        })
    }

    /// The budgets paused now.
    pub(super) fn paused(&self) -> Vec<PausedBudget> {
        let now = Instant::now();
        let mut paused = self.paused.lock();
        // Forget long-lifted pauses (their streaks too), so the map stays small.
        paused.retain(|_, pause| pause.until + MAX_SECONDARY_WAIT > now);
        paused
            .iter()
            .filter(|(_, pause)| pause.until > now)
            .map(|(partition, pause)| PausedBudget {
                kind: partition.kind(),
                credential: match partition {
                    BudgetPartition::Server(name) => Some(name.to_string()),
                    _ => None,
                },
                limit: if pause.primary {
                    "primary"
                } else {
                    "secondary"
                },
                retry_after_secs: ceil_secs(pause.until - now),
                status: pause.status,
            })
            .collect()
    }
}

fn header_str<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn ceil_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// Seconds since the Unix epoch, for tests comparing with `x-ratelimit-reset`.
#[cfg(test)]
fn epoch_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("value"));
        }
        map
    }

    #[test]
    fn a_spent_partition_is_refused_and_the_others_are_not() {
        let budgets = Budgets::default();
        let server = BudgetPartition::Server(Arc::from("token"));
        let spent = headers(&[
            ("x-ratelimit-remaining", "0".to_owned()),
            ("x-ratelimit-reset", (epoch_secs() + 30).to_string()),
        ]);
        budgets.observe(&server, 403, &spent, Some(Duration::from_secs(30)));
        match budgets.check(&server) {
            Err(UpstreamFailure::RateLimited {
                status: 403,
                retry_after: Some(secs),
            }) => assert!((29..=30).contains(&secs), "{secs}"),
            other => panic!("not refused: {other:?}"),
        }
        assert!(budgets.check(&BudgetPartition::Anonymous).is_ok());
        assert!(budgets.check(&BudgetPartition::Client([1; 32])).is_ok());
        let shown = budgets.paused();
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].kind, "server");
        assert_eq!(shown[0].limit, "primary");
    }

    #[test]
    fn secondary_limits_without_retry_after_back_off_exponentially() {
        let budgets = Budgets::default();
        let client = BudgetPartition::Client([7; 32]);
        let waits: Vec<u64> = (0..3)
            .map(|_| {
                budgets.observe(&client, 403, &HeaderMap::new(), Some(MIN_SECONDARY_WAIT));
                budgets.paused()[0].retry_after_secs
            })
            .collect();
        assert_eq!(waits, [60, 120, 240]);
        assert!(
            budgets.paused().iter().all(|p| p.credential.is_none()),
            "a client is never identified"
        );
        let with_retry_after = headers(&[("retry-after", "5".to_owned())]);
        budgets.observe(
            &client,
            429,
            &with_retry_after,
            Some(Duration::from_secs(5)),
        );
        assert_eq!(budgets.paused()[0].retry_after_secs, 5);
    }
}
