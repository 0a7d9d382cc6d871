//! The views service's settings: the shared ones plus how abandoned work is reclaimed.

use std::time::Duration;

use hubcache_shared::CommonSettings;
use hubcache_shared::settings::{
    self, ServiceSettings, SettingsError, SettingsSource, normalize_endpoint_path,
};
use serde::{Deserialize, Serialize};

/// Everything the views service is configured with, validated by [`Settings::load`].
///
/// The shared variables (`REDIS_URL`, `GITHUB_ORGS`, `KEY_PREFIX`, `SHUTDOWN_TIMEOUT_SECS`, ...)
/// and its own `METRICS_PORT` (`Variables`) come from the environment; the claim and expiry
/// settings are config-file keys, because their defaults suit every deployment and only tests
/// shorten them.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Redis, organisation, key prefix, shutdown timeout (shared by every service).
    #[serde(flatten)]
    pub common: CommonSettings,
    /// `claim_idle_secs` (file): how long a refresh event may stay unacknowledged by the worker
    /// it was delivered to before another worker claims it (`XAUTOCLAIM`). A worker that died
    /// between reading and acknowledging loses its events to the others after this long.
    #[serde(default = "default_claim_idle_secs")]
    pub claim_idle_secs: u64,
    /// `claim_interval_ms` (file): how often each worker looks for such abandoned events.
    #[serde(default = "default_claim_interval_ms")]
    pub claim_interval_ms: u64,
    /// `consumer_expiry_secs` (file): a consumer of the group idle this long with nothing
    /// pending is deleted from the group. Every worker start adds a consumer
    /// (`hostname-pid-random`); without this the group would list every past worker forever.
    /// Live workers touch the group every couple of seconds, so any value above a few seconds
    /// never removes one.
    #[serde(default = "default_consumer_expiry_secs")]
    pub consumer_expiry_secs: u64,
    /// `METRICS_PORT`: the admin listener (`/metrics`, `/livez`) on all interfaces; default
    /// 9101 (beside the fetcher's 9100 on one host), 0 disables it.
    #[serde(default = "default_metrics_port")]
    pub metrics_port: u16,
}

/// The views service's own environment variable (README "Settings"), overriding the
/// [`Settings`] field of the same lowercase name.
#[derive(Debug, Deserialize, Serialize)]
pub struct Variables {
    /// `METRICS_PORT`.
    metrics_port: Option<u16>,
}

/// One organisation the views are computed for, and the snapshot they are computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRepos {
    /// The login as configured (`GITHUB_ORGS`); its keys are `KeySchema::org` of it, and it is
    /// the `org` label of the views metrics.
    pub org: String,
    /// The normalised path of its repos snapshot, e.g. `/orgs/acme/repos`.
    pub repos_path: String,
}

impl ServiceSettings for Settings {
    type Variables = Variables;
}

fn default_metrics_port() -> u16 {
    9101
}

fn default_claim_idle_secs() -> u64 {
    30
}
fn default_claim_interval_ms() -> u64 {
    5_000
}
fn default_consumer_expiry_secs() -> u64 {
    3_600
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
        // Views never calls GitHub: the App's key is not mounted here (README).
        self.common.validate_ignoring_credentials()?;
        if !(1..=86_400).contains(&self.claim_idle_secs) {
            return Err(SettingsError::Invalid {
                name: "claim_idle_secs",
                value: self.claim_idle_secs.to_string(),
                reason: "expected 1 to 86400 seconds".to_owned(),
            });
        }
        if !(50..=3_600_000).contains(&self.claim_interval_ms) {
            return Err(SettingsError::Invalid {
                name: "claim_interval_ms",
                value: self.claim_interval_ms.to_string(),
                reason: "expected 50 to 3600000 milliseconds".to_owned(),
            });
        }
        // Above the worker's 2 s BLOCK: a live consumer waiting in a read is never idle that long.
        if !(3..=30 * 86_400).contains(&self.consumer_expiry_secs) {
            return Err(SettingsError::Invalid {
                name: "consumer_expiry_secs",
                value: self.consumer_expiry_secs.to_string(),
                reason: "expected 3 to 2592000 seconds".to_owned(),
            });
        }
        Ok(())
    }

    /// Each organisation's repos snapshot, first organisation first: the cached endpoint of
    /// that org that is `/orgs/{org}/repos` (any case), spelled exactly as the fetcher stores it
    /// ([`CommonSettings::cached`]); an org whose endpoints leave it out still gets the
    /// normalised `/orgs/{org}/repos` (its worker then waits for a snapshot that never comes,
    /// and says so in its log).
    pub fn org_repos(&self) -> Vec<OrgRepos> {
        let cached = self.common.cached().unwrap_or_default();
        self.common
            .orgs()
            .into_iter()
            .map(|org| {
                let raw = format!("/orgs/{org}/repos");
                let repos_path = cached
                    .iter()
                    .find(|e| e.org == org && e.path.eq_ignore_ascii_case(&raw))
                    .map(|e| e.path.clone())
                    // A validated org is a GitHub login, so the path is always normal; fall
                    // back to the raw spelling rather than panic if validation was skipped.
                    .unwrap_or_else(|| normalize_endpoint_path(&raw).unwrap_or(raw));
                OrgRepos { org, repos_path }
            })
            .collect()
    }

    /// How long an event may stay pending before another worker claims it.
    pub fn claim_idle(&self) -> Duration {
        Duration::from_secs(self.claim_idle_secs)
    }

    /// How often the claim sweep runs.
    pub fn claim_interval(&self) -> Duration {
        Duration::from_millis(self.claim_interval_ms)
    }

    /// How long an idle consumer with nothing pending stays listed in the group.
    pub fn consumer_expiry(&self) -> Duration {
        Duration::from_secs(self.consumer_expiry_secs)
    }

    /// How long shutdown waits for in-flight work (`SHUTDOWN_TIMEOUT_SECS`).
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.common.shutdown_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use hubcache_shared::settings::EndpointSettings;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::load(&SettingsSource::from_vars(vars.iter().copied()))
    }

    #[test]
    fn defaults_are_valid() {
        let s = load(&[]).expect("defaults load");
        assert_eq!(s.claim_idle(), Duration::from_secs(30));
        assert_eq!(s.claim_interval(), Duration::from_secs(5));
        assert_eq!(s.consumer_expiry(), Duration::from_secs(3_600));
        assert_eq!(
            s.org_repos(),
            [OrgRepos {
                org: "Netflix".into(),
                repos_path: "/orgs/Netflix/repos".into()
            }]
        );
    }

    #[test]
    fn repos_paths_follow_the_orgs_first_one_first() {
        let s = load(&[("GITHUB_ORG", "octo-org")]).expect("loads");
        let paths: Vec<_> = s.org_repos().into_iter().map(|o| o.repos_path).collect();
        assert_eq!(paths, ["/orgs/octo-org/repos"]);

        let s = load(&[("GITHUB_ORGS", "Beta,alpha,Gamma-1")]).expect("loads");
        let orgs: Vec<_> = s
            .org_repos()
            .into_iter()
            .map(|o| (o.org, o.repos_path))
            .collect();
        assert_eq!(
            orgs,
            [
                ("Beta".to_owned(), "/orgs/Beta/repos".to_owned()),
                ("alpha".to_owned(), "/orgs/alpha/repos".to_owned()),
                ("Gamma-1".to_owned(), "/orgs/Gamma-1/repos".to_owned()),
            ]
        );

        // The spelling the fetcher stores (the configured endpoint's), whatever the org's.
        let mut s = s;
        s.common.cached_endpoints = vec![EndpointSettings {
            path: "/orgs/BETA/repos".into(),
            refresh_interval_secs: None,
        }];
        let paths: Vec<_> = s.org_repos().into_iter().map(|o| o.repos_path).collect();
        assert_eq!(
            paths,
            [
                "/orgs/BETA/repos",
                "/orgs/alpha/repos",
                "/orgs/Gamma-1/repos"
            ]
        );
    }

    #[test]
    fn the_github_apps_key_is_neither_read_nor_required_by_views() {
        // The shared settings name an App whose key file is mounted for fetcher and gateway only.
        let s = load(&[
            ("GITHUB_APP_ID", "4242"),
            (
                "GITHUB_APP_PRIVATE_KEY_FILE",
                "/run/secrets/not-mounted-here",
            ),
        ])
        .expect("views starts without the App's key");
        assert_eq!(s.common.github_app_id.as_deref(), Some("4242"));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let mut s = load(&[]).expect("loads");
        s.claim_idle_secs = 0;
        let err = s.validate().expect_err("zero idle").to_string();
        assert!(
            err.contains("claim_idle_secs") && err.contains('0'),
            "{err}"
        );

        let mut s = load(&[]).expect("loads");
        s.claim_interval_ms = 1;
        let err = s.validate().expect_err("tiny interval").to_string();
        assert!(err.contains("claim_interval_ms"), "{err}");

        let mut s = load(&[]).expect("loads");
        s.consumer_expiry_secs = 2;
        let err = s
            .validate()
            .expect_err("shorter than a blocking read")
            .to_string();
        assert!(err.contains("consumer_expiry_secs"), "{err}");

        let err = load(&[("KEY_PREFIX", "a b")])
            .expect_err("bad prefix")
            .to_string();
        assert!(err.contains("KEY_PREFIX"), "{err}");
    }
}
