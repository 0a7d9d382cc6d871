//! The fetcher's settings: the shared ones plus the lease and the GitHub request limits.

use std::time::Duration;

use hubcache_shared::settings::{self, ServiceSettings, SettingsError, SettingsSource};
use hubcache_shared::{CachedEndpoint, CommonSettings};
use serde::{Deserialize, Serialize};

/// Everything the fetcher is configured with, validated by [`Settings::load`].
///
/// Its own environment variables are [`Variables`] (`LEASE_SECS`, `METRICS_PORT`,
/// `WEBHOOK_SAFETY_POLL_SECS`); the GitHub
/// request and backoff limits are config-file keys (the defaults suit api.github.com, tests
/// shorten them).
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Redis, GitHub, organisation, cached endpoints, intervals (shared by every service).
    #[serde(flatten)]
    pub common: CommonSettings,
    /// `LEASE_SECS`: how long an org's lease (and a replica's registration in the membership
    /// set) lives without renewal, i.e. how fast the other replicas take over the orgs of one
    /// that died.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// `github_request_timeout_ms` (file): the limit for one GitHub request, body included, so a
    /// stalled upstream cannot hold a poll forever.
    #[serde(default = "default_request_timeout_ms")]
    pub github_request_timeout_ms: u64,
    /// `max_pages` (file): a list with more pages than this is refused rather than followed
    /// forever (a `next` loop upstream must not cost the whole rate limit).
    #[serde(default = "default_max_pages")]
    pub max_pages: usize,
    /// `backoff_base_ms` (file): the first retry delay after a failed poll.
    #[serde(default = "default_backoff_base_ms")]
    pub backoff_base_ms: u64,
    /// `backoff_max_ms` (file): the ceiling of the exponential retry delay.
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// `METRICS_PORT`: the admin listener (`/metrics`, `/livez`) on all interfaces; default
    /// 9100, 0 disables it.
    #[serde(default = "default_metrics_port")]
    pub metrics_port: u16,
    /// `WEBHOOK_SAFETY_POLL_SECS`: while webhook deliveries arrive (the last one less than this
    /// ago), the endpoints they name are polled only this often (or at their own interval, if
    /// longer), so a lost delivery is still picked up; with none for this long, polling returns
    /// to normal.
    #[serde(default = "default_webhook_safety_poll_secs")]
    pub webhook_safety_poll_secs: u64,
    /// `webhook_hint_min_gap_ms` (file): a hinted poll of an endpoint starts no sooner than this
    /// after its previous poll started (deliveries meanwhile coalesce into one revalidation).
    #[serde(default = "default_webhook_hint_min_gap_ms")]
    pub webhook_hint_min_gap_ms: u64,
    /// `webhook_hint_recheck_ms` (file): when a hinted poll finds nothing new (GitHub's ETag
    /// lagging the event), look again after each of these delays before giving up.
    #[serde(default = "default_webhook_hint_recheck_ms")]
    pub webhook_hint_recheck_ms: Vec<u64>,
}

/// The fetcher's own environment variables (README "Settings"), each overriding the
/// [`Settings`] field of the same lowercase name.
#[derive(Debug, Deserialize, Serialize)]
pub struct Variables {
    /// `LEASE_SECS`.
    lease_secs: Option<u64>,
    /// `METRICS_PORT`.
    metrics_port: Option<u16>,
    /// `WEBHOOK_SAFETY_POLL_SECS`.
    webhook_safety_poll_secs: Option<u64>,
}

impl ServiceSettings for Settings {
    type Variables = Variables;
}

fn default_metrics_port() -> u16 {
    9100
}

fn default_webhook_safety_poll_secs() -> u64 {
    600
}
fn default_webhook_hint_min_gap_ms() -> u64 {
    500
}
fn default_webhook_hint_recheck_ms() -> Vec<u64> {
    vec![1_000, 2_000]
}

fn default_lease_secs() -> u64 {
    15
}
fn default_request_timeout_ms() -> u64 {
    30_000
}
fn default_max_pages() -> usize {
    1_000
}
fn default_backoff_base_ms() -> u64 {
    1_000
}
fn default_backoff_max_ms() -> u64 {
    300_000
}

impl Settings {
    /// Loads defaults, then the config file, then the environment, and validates the result.
    pub fn load(source: &SettingsSource) -> Result<Self, SettingsError> {
        let settings: Self = settings::load(source)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every value, naming the variable (or config key) and the bad value.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.common.validate()?;
        let invalid = |name: &'static str, value: String, reason: &str| SettingsError::Invalid {
            name,
            value,
            reason: reason.to_owned(),
        };
        if !(1..=3_600).contains(&self.lease_secs) {
            return Err(invalid(
                "LEASE_SECS",
                self.lease_secs.to_string(),
                "expected 1 to 3600 seconds",
            ));
        }
        if !(100..=600_000).contains(&self.github_request_timeout_ms) {
            return Err(invalid(
                "github_request_timeout_ms",
                self.github_request_timeout_ms.to_string(),
                "expected 100 to 600000 milliseconds",
            ));
        }
        if !(1..=100_000).contains(&self.max_pages) {
            return Err(invalid(
                "max_pages",
                self.max_pages.to_string(),
                "expected 1 to 100000 pages",
            ));
        }
        if !(10..=3_600_000).contains(&self.backoff_base_ms) {
            return Err(invalid(
                "backoff_base_ms",
                self.backoff_base_ms.to_string(),
                "expected 10 to 3600000 milliseconds",
            ));
        }
        if self.backoff_max_ms < self.backoff_base_ms || self.backoff_max_ms > 86_400_000 {
            return Err(invalid(
                "backoff_max_ms",
                self.backoff_max_ms.to_string(),
                "expected at least backoff_base_ms and at most 86400000 milliseconds",
            ));
        }
        if !(1..=86_400).contains(&self.webhook_safety_poll_secs) {
            return Err(invalid(
                "WEBHOOK_SAFETY_POLL_SECS",
                self.webhook_safety_poll_secs.to_string(),
                "expected 1 to 86400 seconds",
            ));
        }
        if self.webhook_hint_min_gap_ms > 60_000 {
            return Err(invalid(
                "webhook_hint_min_gap_ms",
                self.webhook_hint_min_gap_ms.to_string(),
                "expected at most 60000 milliseconds",
            ));
        }
        if self.webhook_hint_recheck_ms.len() > 10
            || self
                .webhook_hint_recheck_ms
                .iter()
                .any(|ms| !(1..=60_000).contains(ms))
        {
            return Err(invalid(
                "webhook_hint_recheck_ms",
                format!("{:?}", self.webhook_hint_recheck_ms),
                "expected at most 10 delays of 1 to 60000 milliseconds",
            ));
        }
        Ok(())
    }

    /// How webhook hints bend the poll schedule.
    pub(crate) fn webhook_policy(&self) -> crate::schedule::WebhookPolicy {
        crate::schedule::WebhookPolicy {
            safety_interval: Duration::from_secs(self.webhook_safety_poll_secs),
            min_gap: Duration::from_millis(self.webhook_hint_min_gap_ms),
            rechecks: self
                .webhook_hint_recheck_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
        }
    }

    /// The lease period.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }

    /// The cached endpoints with their intervals (validated by [`Settings::load`]).
    pub fn endpoints(&self) -> Result<Vec<CachedEndpoint>, SettingsError> {
        self.common.cached()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::load(&SettingsSource::from_vars(vars.iter().copied()))
    }

    #[test]
    fn defaults_are_valid() {
        let s = load(&[]).expect("defaults load");
        assert_eq!(s.lease(), Duration::from_secs(15));
        assert_eq!(s.max_pages, 1_000);
        assert_eq!(s.endpoints().expect("valid").len(), 4);
    }

    #[test]
    fn lease_comes_from_the_environment() {
        let s = load(&[("LEASE_SECS", "2"), ("WEBHOOK_SAFETY_POLL_SECS", "30")]).expect("loads");
        assert_eq!(s.lease(), Duration::from_secs(2));
        assert_eq!(s.webhook_policy().safety_interval, Duration::from_secs(30));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("LEASE_SECS", "0"),
            ("LEASE_SECS", "99999"),
            ("REFRESH_INTERVAL_SECS", "0"),
            ("WEBHOOK_SAFETY_POLL_SECS", "0"),
            ("WEBHOOK_SAFETY_POLL_SECS", "soon"),
        ] {
            let err = load(&[(name, value)]).expect_err(name).to_string();
            assert!(err.contains(name) && err.contains(value), "{err}");
        }
    }
}
