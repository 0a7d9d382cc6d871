//! The settings every service shares: where Redis and GitHub are, which endpoints are cached,
//! the key prefix and the shutdown timeout; their variables ([`CommonVariables`]), defaults and
//! validation.
//!
//! The cached endpoints (`CACHED_ENDPOINTS`, `REFRESH_INTERVAL_SECS`) are here because the
//! fetcher that writes them and the gateway that serves them must read one list, validated once.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use url::Url;

use super::SettingsError;
use super::value_formats::{
    is_github_login, normalize_endpoint_path, parse_base_url, parse_host_ports,
};
use crate::redis_connector::RedisTarget;

/// The variables every service reads (README "Settings"), each overriding the
/// [`CommonSettings`] field of the same lowercase name. Services declare their own beside it.
///
/// No `Debug`: it holds the token as given.
#[derive(Deserialize, Serialize)]
pub(crate) struct CommonVariables {
    /// `REDIS_URL`: where Redis lives (with Sentinel: only its credentials and db are used).
    redis_url: Option<String>,
    /// `REDIS_SENTINELS`: comma-separated `host:port` of Redis Sentinels.
    redis_sentinels: Option<String>,
    /// `REDIS_SENTINEL_MASTER`: the master name the sentinels monitor.
    redis_sentinel_master: Option<String>,
    /// `REDIS_CLUSTER_NODES`: comma-separated `host:port` of Redis Cluster nodes to start from.
    redis_cluster_nodes: Option<String>,
    /// `GITHUB_API_URL`: the upstream GitHub API base.
    github_api_url: Option<String>,
    /// `GITHUB_API_TOKEN`: optional token sent to the upstream only.
    github_api_token: Option<String>,
    /// `GITHUB_APP_ID`: the GitHub App whose installations authenticate (instead of a token).
    github_app_id: Option<String>,
    /// `GITHUB_APP_PRIVATE_KEY`: the App's private key, PEM.
    github_app_private_key: Option<String>,
    /// `GITHUB_APP_PRIVATE_KEY_FILE`: a file holding the App's private key (a mounted secret).
    github_app_private_key_file: Option<String>,
    /// `GITHUB_ORG`: the organisation whose data is cached (a list of one).
    github_org: Option<String>,
    /// `GITHUB_ORGS`: comma-separated organisations whose data is cached; the first one is the
    /// one the seed's endpoints (`/view/top/N/stars`...) serve.
    #[serde(serialize_with = "comma_list")]
    github_orgs: Option<String>,
    /// `REFRESH_INTERVAL_SECS`: how often the fetcher polls each endpoint.
    refresh_interval_secs: Option<u64>,
    /// `KEY_PREFIX`: namespace for every Redis key and stream.
    key_prefix: Option<String>,
    /// `CACHED_ENDPOINTS`: comma-separated paths, each becoming one `cached_endpoints` entry
    /// (with the default interval), as the config file would list them.
    #[serde(serialize_with = "endpoint_entries")]
    cached_endpoints: Option<String>,
    /// `SHUTDOWN_TIMEOUT_SECS`: how long a service drains on SIGTERM.
    shutdown_timeout_secs: Option<u64>,
}

/// A comma-separated variable as the file's list; blank items are skipped.
fn comma_list<S: Serializer>(list: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    match list {
        None => serializer.serialize_none(),
        Some(list) => {
            serializer.collect_seq(list.split(',').map(str::trim).filter(|org| !org.is_empty()))
        }
    }
}

/// `CACHED_ENDPOINTS` as the file's `cached_endpoints: [{path}, ...]`; blank items are skipped.
fn endpoint_entries<S: Serializer>(
    list: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Entry<'a> {
        path: &'a str,
    }
    match list {
        None => serializer.serialize_none(),
        Some(list) => serializer.collect_seq(
            list.split(',')
                .map(str::trim)
                .filter(|path| !path.is_empty())
                .map(|path| Entry { path }),
        ),
    }
}

/// The settings every service shares: where Redis and GitHub are, and what is cached.
///
/// Services embed it with `#[serde(flatten)]` beside their own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct CommonSettings {
    /// `REDIS_URL`.
    #[serde(default = "default_redis_url")]
    pub redis_url: String,
    /// `REDIS_SENTINELS`: comma-separated `host:port` list; with `redis_sentinel_master`, the
    /// master is found through Sentinel and followed across failovers.
    #[serde(default)]
    pub redis_sentinels: Option<String>,
    /// `REDIS_SENTINEL_MASTER`: the name of the master the sentinels monitor.
    #[serde(default)]
    pub redis_sentinel_master: Option<String>,
    /// `REDIS_CLUSTER_NODES`: comma-separated `host:port` of Redis Cluster nodes; the client
    /// discovers the rest of the cluster from them.
    #[serde(default)]
    pub redis_cluster_nodes: Option<String>,
    /// `GITHUB_API_URL`: the only host the GitHub token is ever sent to.
    #[serde(default = "default_github_api_url")]
    pub github_api_url: String,
    /// `GITHUB_API_TOKEN`: wrapped so that Debug and logs never show it.
    #[serde(default)]
    pub github_api_token: Option<SecretString>,
    /// `GITHUB_APP_ID`: with a private key, requests for each org carry the App's installation
    /// token on that org instead of a personal token; read through
    /// [`CommonSettings::github_app`].
    #[serde(default)]
    pub github_app_id: Option<String>,
    /// `GITHUB_APP_PRIVATE_KEY`: the App's private key (PEM), wrapped so that Debug and logs
    /// never show it.
    #[serde(default)]
    pub github_app_private_key: Option<SecretString>,
    /// `GITHUB_APP_PRIVATE_KEY_FILE`: the file holding the App's private key (a secret mounted
    /// read-only), read at start-up.
    #[serde(default)]
    pub github_app_private_key_file: Option<PathBuf>,
    /// `GITHUB_ORG`: one organisation; read through [`CommonSettings::orgs`].
    #[serde(default)]
    pub github_org: Option<String>,
    /// `GITHUB_ORGS`: the organisations, first one first; read through
    /// [`CommonSettings::orgs`].
    #[serde(default)]
    pub github_orgs: Vec<String>,
    /// `REFRESH_INTERVAL_SECS`: default poll interval of every cached endpoint.
    #[serde(default = "default_refresh_interval_secs")]
    pub refresh_interval_secs: u64,
    /// `KEY_PREFIX`: namespace (and Redis Cluster hash tag) of every key and stream.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// The endpoints the fetcher keeps and the gateway serves from Redis (the seed's
    /// `org.cached`), `{org}` standing for each organisation. Empty means the defaults.
    #[serde(default)]
    pub cached_endpoints: Vec<EndpointSettings>,
    /// `SHUTDOWN_TIMEOUT_SECS`: how long to drain on SIGTERM before giving up.
    #[serde(default = "default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
}

/// One cached endpoint, as written in the config file (`cached_endpoints: [{path, ...}]`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct EndpointSettings {
    /// The GitHub path, e.g. `/orgs/{org}/repos`; a path with `{org}` is cached for every
    /// organisation, one without for the organisation it names (`/orgs/Netflix/...`) or, naming
    /// none (`/`), once, in the first organisation's keys.
    pub path: String,
    /// Per-endpoint poll interval overriding `REFRESH_INTERVAL_SECS`.
    #[serde(default)]
    pub refresh_interval_secs: Option<u64>,
}

fn default_redis_url() -> String {
    "redis://127.0.0.1:6379".to_owned()
}
fn default_github_api_url() -> String {
    "https://api.github.com".to_owned()
}
/// The organisation cached when neither `GITHUB_ORG` nor `GITHUB_ORGS` is set (the seed's).
const DEFAULT_ORG: &str = "Netflix";
fn default_refresh_interval_secs() -> u64 {
    10
}
fn default_key_prefix() -> String {
    "hubcache".to_owned()
}
fn default_shutdown_timeout_secs() -> u64 {
    10
}

/// A cached endpoint after validation: the organisation whose keys hold it, a normalised path
/// and its poll interval.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CachedEndpoint {
    /// The organisation (as configured) whose pipeline polls, stores and announces it: its
    /// keys are [`KeySchema::org`](crate::KeySchema::org) of this login.
    pub org: String,
    /// Normalised GitHub path (leading `/`, no trailing `/` except the root, no query).
    pub path: String,
    /// How often the fetcher checks it.
    pub interval: Duration,
}

impl CommonSettings {
    /// Checks every value and fails with the variable's name and the bad value; for a service
    /// that calls GitHub, this includes the GitHub App's key (read from its file).
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.validate_ignoring_credentials()?;
        self.github_app()?;
        Ok(())
    }

    /// [`CommonSettings::validate`] without the GitHub credentials, for a service that never
    /// calls GitHub (views): it reads the same shared settings (one ConfigMap, one compose
    /// `x-settings`), but the App's key is neither read nor required there, so its secret is
    /// mounted only where it is used.
    pub fn validate_ignoring_credentials(&self) -> Result<(), SettingsError> {
        redis::parse_redis_url(&self.redis_url).ok_or_else(|| SettingsError::Invalid {
            name: "REDIS_URL",
            value: self.redis_url.clone(),
            reason: "expected redis://[user:password@]host[:port][/db] or rediss://".to_owned(),
        })?;
        self.redis_target()?;
        self.github_base_url()?;
        self.checked_orgs()?;
        if self.refresh_interval_secs == 0 || self.refresh_interval_secs > 86_400 {
            return Err(SettingsError::Invalid {
                name: "REFRESH_INTERVAL_SECS",
                value: self.refresh_interval_secs.to_string(),
                reason: "expected 1 to 86400 seconds".to_owned(),
            });
        }
        if self.key_prefix.is_empty()
            || !self
                .key_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(SettingsError::Invalid {
                name: "KEY_PREFIX",
                value: self.key_prefix.clone(),
                reason: "expected letters, digits, '-', '_' or '.' (it becomes a Redis Cluster hash tag)"
                    .to_owned(),
            });
        }
        self.cached()?;
        Ok(())
    }

    /// The GitHub App, when `GITHUB_APP_ID` and a key (`GITHUB_APP_PRIVATE_KEY` or
    /// `GITHUB_APP_PRIVATE_KEY_FILE`) are set: the key read and parsed now, so a missing file or
    /// a bad key stops start-up. Refused: the App together with `GITHUB_API_TOKEN` (which one
    /// would be meant?), an ID without a key or a key without an ID, and both key variables.
    /// Errors never show the key.
    pub fn github_app(&self) -> Result<Option<crate::github::AppKey>, SettingsError> {
        let invalid = |name: &'static str, value: &str, reason: &str| SettingsError::Invalid {
            name,
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let key_set =
            self.github_app_private_key.is_some() || self.github_app_private_key_file.is_some();
        let Some(app_id) = &self.github_app_id else {
            if key_set {
                return Err(invalid(
                    "GITHUB_APP_ID",
                    "",
                    "a GitHub App private key is set: GITHUB_APP_ID must name the App",
                ));
            }
            return Ok(None);
        };
        if self.github_api_token.is_some() {
            return Err(invalid(
                "GITHUB_APP_ID",
                app_id,
                "GITHUB_APP_ID and GITHUB_API_TOKEN are both set: configure either a GitHub App or a personal token, not both",
            ));
        }
        if app_id.is_empty()
            || !app_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.')
        {
            return Err(invalid(
                "GITHUB_APP_ID",
                app_id,
                "expected the App's numeric ID (or its client ID)",
            ));
        }
        let pem: SecretString = match (
            &self.github_app_private_key,
            &self.github_app_private_key_file,
        ) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "GITHUB_APP_PRIVATE_KEY",
                    "(not shown)",
                    "set GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE, not both",
                ));
            }
            (Some(key), None) => key.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(SecretString::from)
                .map_err(|e| {
                    invalid(
                        "GITHUB_APP_PRIVATE_KEY_FILE",
                        &path.display().to_string(),
                        &format!("cannot read the App's private key: {e}"),
                    )
                })?,
            (None, None) => {
                return Err(invalid(
                    "GITHUB_APP_PRIVATE_KEY",
                    "",
                    "GITHUB_APP_ID is set: give the App's private key in GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE",
                ));
            }
        };
        crate::github::AppKey::from_pem(app_id, pem.expose_secret().as_bytes())
            .map(Some)
            .map_err(|e| {
                invalid(
                    "GITHUB_APP_PRIVATE_KEY",
                    "(not shown)",
                    &format!("the GitHub App's key: {e}"),
                )
            })
    }

    /// Where Redis is: `REDIS_URL` alone; the sentinels of `REDIS_SENTINELS` watching
    /// `REDIS_SENTINEL_MASTER` (both or neither must be set; `REDIS_URL` then only supplies the
    /// credentials and db used on the master); or the Redis Cluster of `REDIS_CLUSTER_NODES`
    /// (`REDIS_URL` supplies the credentials; a cluster has only db 0).
    pub fn redis_target(&self) -> Result<RedisTarget, SettingsError> {
        if let Some(list) = self
            .redis_cluster_nodes
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if self
                .redis_sentinels
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty())
            {
                return Err(SettingsError::Invalid {
                    name: "REDIS_CLUSTER_NODES",
                    value: list.to_owned(),
                    reason: "set either REDIS_CLUSTER_NODES or REDIS_SENTINELS, not both"
                        .to_owned(),
                });
            }
            let nodes = parse_host_ports(list).ok_or_else(|| SettingsError::Invalid {
                name: "REDIS_CLUSTER_NODES",
                value: list.to_owned(),
                reason: "expected comma-separated host:port, e.g. 10.0.0.1:6379,10.0.0.2:6379"
                    .to_owned(),
            })?;
            let db = redis::parse_redis_url(&self.redis_url)
                .and_then(|url| url.path().trim_matches('/').parse::<i64>().ok())
                .unwrap_or(0);
            if db != 0 {
                return Err(SettingsError::Invalid {
                    name: "REDIS_URL",
                    value: crate::redis_connector::redact_url(&self.redis_url),
                    reason: "a Redis Cluster has only database 0: drop the /db from REDIS_URL"
                        .to_owned(),
                });
            }
            return Ok(RedisTarget::Cluster {
                nodes,
                url: self.redis_url.clone(),
            });
        }
        let sentinels = self
            .redis_sentinels
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let master = self
            .redis_sentinel_master
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        match (sentinels, master) {
            (None, None) => Ok(RedisTarget::Single {
                url: self.redis_url.clone(),
            }),
            (Some(list), None) => Err(SettingsError::Invalid {
                name: "REDIS_SENTINEL_MASTER",
                value: String::new(),
                reason: format!(
                    "required with REDIS_SENTINELS={list:?}: the master name the sentinels monitor"
                ),
            }),
            (None, Some(master)) => Err(SettingsError::Invalid {
                name: "REDIS_SENTINELS",
                value: String::new(),
                reason: format!(
                    "required with REDIS_SENTINEL_MASTER={master:?}: comma-separated host:port of the sentinels"
                ),
            }),
            (Some(list), Some(master)) => {
                if master.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(SettingsError::Invalid {
                        name: "REDIS_SENTINEL_MASTER",
                        value: master.to_owned(),
                        reason: "expected a master name without spaces, e.g. mymaster".to_owned(),
                    });
                }
                let sentinels = parse_host_ports(list).ok_or_else(|| SettingsError::Invalid {
                    name: "REDIS_SENTINELS",
                    value: list.to_owned(),
                    reason:
                        "expected comma-separated host:port, e.g. 10.0.0.1:26379,10.0.0.2:26379"
                            .to_owned(),
                })?;
                Ok(RedisTarget::Sentinel {
                    sentinels,
                    master: master.to_owned(),
                    url: self.redis_url.clone(),
                })
            }
        }
    }

    /// The upstream base URL, parsed; trailing slashes removed so paths can be appended.
    pub fn github_base_url(&self) -> Result<Url, SettingsError> {
        parse_base_url("GITHUB_API_URL", &self.github_api_url)
    }

    /// The organisations cached, first one first: `GITHUB_ORGS`, else `GITHUB_ORG`, else the
    /// seed's `Netflix`. Call after [`CommonSettings::validate`] (which checks the logins).
    pub fn orgs(&self) -> Vec<String> {
        self.checked_orgs()
            .unwrap_or_else(|_| vec![DEFAULT_ORG.to_owned()])
    }

    /// The first organisation: the one the seed's endpoints (`/view/top/N/stars`...) serve.
    pub fn first_org(&self) -> String {
        self.orgs().swap_remove(0)
    }

    fn checked_orgs(&self) -> Result<Vec<String>, SettingsError> {
        let (name, orgs) = match (&self.github_org, self.github_orgs.is_empty()) {
            (Some(one), true) => ("GITHUB_ORG", vec![one.trim().to_owned()]),
            (None, true) => return Ok(vec![DEFAULT_ORG.to_owned()]),
            (one, false) => {
                let orgs: Vec<String> = self
                    .github_orgs
                    .iter()
                    .map(|org| org.trim().to_owned())
                    .collect();
                if let Some(one) = one
                    && !orgs
                        .first()
                        .is_some_and(|first| first.eq_ignore_ascii_case(one))
                {
                    return Err(SettingsError::Invalid {
                        name: "GITHUB_ORG",
                        value: one.clone(),
                        reason: format!(
                            "GITHUB_ORGS is set too ({}): set one of them",
                            orgs.join(",")
                        ),
                    });
                }
                ("GITHUB_ORGS", orgs)
            }
        };
        for (i, org) in orgs.iter().enumerate() {
            if !is_github_login(org) {
                return Err(SettingsError::Invalid {
                    name,
                    value: org.clone(),
                    reason: "expected GitHub logins: letters, digits and single hyphens".to_owned(),
                });
            }
            if orgs[..i].iter().any(|o| o.eq_ignore_ascii_case(org)) {
                return Err(SettingsError::Invalid {
                    name,
                    value: org.clone(),
                    reason: "listed twice (logins are case-insensitive)".to_owned(),
                });
            }
        }
        Ok(orgs)
    }

    /// The cached endpoints of every organisation, normalised, intervals resolved: each
    /// `{org}` path once per organisation; a path naming a configured organisation
    /// (`/orgs/{login}...`) in that organisation's keys; any other path (`/`) once, in the
    /// first organisation's keys. Ordered by organisation, then as configured.
    pub fn cached(&self) -> Result<Vec<CachedEndpoint>, SettingsError> {
        let orgs = self.checked_orgs()?;
        let default_interval = Duration::from_secs(self.refresh_interval_secs);
        let configured: Vec<EndpointSettings> = if self.cached_endpoints.is_empty() {
            default_endpoints()
        } else {
            self.cached_endpoints.clone()
        };
        let mut out: Vec<CachedEndpoint> = Vec::new();
        for org in &orgs {
            for endpoint in &configured {
                let owner = if endpoint.path.contains("{org}") {
                    org.as_str()
                } else {
                    owning_org(&endpoint.path, &orgs)
                };
                if owner != org {
                    continue;
                }
                let raw = endpoint.path.replace("{org}", org);
                let path = normalize_endpoint_path(&raw).ok_or_else(|| SettingsError::Invalid {
                    name: "CACHED_ENDPOINTS",
                    value: raw.clone(),
                    reason:
                        "expected an absolute GitHub API path without query, e.g. /orgs/{org}/repos"
                            .to_owned(),
                })?;
                let interval = match endpoint.refresh_interval_secs {
                    Some(0) => {
                        return Err(SettingsError::Invalid {
                            name: "cached_endpoints[].refresh_interval_secs",
                            value: "0".to_owned(),
                            reason: "expected at least 1 second".to_owned(),
                        });
                    }
                    Some(secs) => Duration::from_secs(secs),
                    None => default_interval,
                };
                if !out.iter().any(|e| e.path.eq_ignore_ascii_case(&path)) {
                    out.push(CachedEndpoint {
                        org: org.clone(),
                        path,
                        interval,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// The configured organisation a path without `{org}` belongs to: the one it names
/// (`/orgs/{login}` or below, any case), else the first.
fn owning_org<'a>(path: &str, orgs: &'a [String]) -> &'a str {
    let named = path
        .strip_prefix("/orgs/")
        .map(|rest| rest.split('/').next().unwrap_or_default());
    named
        .and_then(|login| orgs.iter().find(|org| org.eq_ignore_ascii_case(login)))
        .unwrap_or(&orgs[0])
}

/// The seed's four cached endpoints (`{org}` standing for each organisation).
pub fn default_endpoints() -> Vec<EndpointSettings> {
    [
        "/",
        "/orgs/{org}",
        "/orgs/{org}/members",
        "/orgs/{org}/repos",
    ]
    .into_iter()
    .map(|path| EndpointSettings {
        path: path.to_owned(),
        refresh_interval_secs: None,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{ServiceSettings, SettingsSource, load};
    use super::*;

    /// A service with nothing of its own.
    #[derive(Debug, Deserialize)]
    struct TestSettings {
        #[serde(flatten)]
        common: CommonSettings,
    }

    #[derive(Deserialize, Serialize)]
    struct NoVariables {}

    impl ServiceSettings for TestSettings {
        type Variables = NoVariables;
    }

    fn load_vars(vars: &[(&str, &str)]) -> Result<TestSettings, SettingsError> {
        load(&SettingsSource::from_vars(vars.iter().copied()))
    }

    #[test]
    fn an_app_and_a_token_together_fail_naming_both() {
        let s = load_vars(&[
            ("GITHUB_API_TOKEN", "ghp_secret"),
            ("GITHUB_APP_ID", "12"),
            ("GITHUB_APP_PRIVATE_KEY", "-----BEGIN secret"),
        ])
        .expect("loads");
        let error = s.common.validate().expect_err("refused").to_string();
        assert!(error.contains("GITHUB_APP_ID") && error.contains("GITHUB_API_TOKEN"));
        assert!(!error.contains("secret"), "{error}");
    }

    #[test]
    fn an_app_needs_an_id_and_one_readable_valid_key_never_echoed() {
        for (vars, named) in [
            (
                vec![("GITHUB_APP_PRIVATE_KEY", "k-secret")],
                "GITHUB_APP_ID",
            ),
            (vec![("GITHUB_APP_ID", "12")], "GITHUB_APP_PRIVATE_KEY"),
            (
                vec![
                    ("GITHUB_APP_ID", "12"),
                    ("GITHUB_APP_PRIVATE_KEY", "k-secret"),
                    ("GITHUB_APP_PRIVATE_KEY_FILE", "/nonexistent"),
                ],
                "GITHUB_APP_PRIVATE_KEY",
            ),
            (
                vec![
                    ("GITHUB_APP_ID", "12"),
                    ("GITHUB_APP_PRIVATE_KEY_FILE", "/nonexistent/key.pem"),
                ],
                "GITHUB_APP_PRIVATE_KEY_FILE",
            ),
            (
                vec![
                    ("GITHUB_APP_ID", "12"),
                    ("GITHUB_APP_PRIVATE_KEY", "k-secret"),
                ],
                "GITHUB_APP_PRIVATE_KEY",
            ),
        ] {
            let s = load_vars(&vars).expect("loads");
            let error = s.common.validate().expect_err("refused").to_string();
            assert!(error.contains(named), "{error}");
            assert!(!error.contains("k-secret"), "{error}");
            assert!(!format!("{:?}", s.common).contains("k-secret"));
        }
        let s = load_vars(&[]).expect("loads");
        assert!(s.common.github_app().expect("valid").is_none());
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = load_vars(&[]).expect("defaults load");
        assert_eq!(s.common.redis_url, "redis://127.0.0.1:6379");
        assert_eq!(s.common.github_api_url, "https://api.github.com");
        assert!(s.common.github_api_token.is_none());
        assert_eq!(s.common.orgs(), ["Netflix"]);
        assert_eq!(s.common.refresh_interval_secs, 10);
        assert_eq!(s.common.key_prefix, "hubcache");
        let paths: Vec<String> = s
            .common
            .cached()
            .expect("valid")
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "/",
                "/orgs/Netflix",
                "/orgs/Netflix/members",
                "/orgs/Netflix/repos"
            ]
        );
    }

    #[test]
    fn github_orgs_caches_every_org_and_the_root_once_in_the_first_orgs_keys() {
        let s = load_vars(&[("GITHUB_ORGS", "Netflix, octo-org ,acme")]).expect("loads");
        s.common.validate().expect("valid");
        assert_eq!(s.common.orgs(), ["Netflix", "octo-org", "acme"]);
        assert_eq!(s.common.first_org(), "Netflix");
        let cached: Vec<(String, String)> = s
            .common
            .cached()
            .expect("valid")
            .into_iter()
            .map(|e| (e.org, e.path))
            .collect();
        let expected: Vec<(String, String)> = [
            ("Netflix", "/"),
            ("Netflix", "/orgs/Netflix"),
            ("Netflix", "/orgs/Netflix/members"),
            ("Netflix", "/orgs/Netflix/repos"),
            ("octo-org", "/orgs/octo-org"),
            ("octo-org", "/orgs/octo-org/members"),
            ("octo-org", "/orgs/octo-org/repos"),
            ("acme", "/orgs/acme"),
            ("acme", "/orgs/acme/members"),
            ("acme", "/orgs/acme/repos"),
        ]
        .into_iter()
        .map(|(org, path)| (org.to_owned(), path.to_owned()))
        .collect();
        assert_eq!(cached, expected);
    }

    #[test]
    fn a_path_naming_an_org_belongs_to_that_org() {
        let s = load_vars(&[
            ("GITHUB_ORGS", "a,b"),
            ("CACHED_ENDPOINTS", "/orgs/B/teams,/rate_limit,/orgs/{org}"),
        ])
        .expect("loads");
        let cached: Vec<(String, String)> = s
            .common
            .cached()
            .expect("valid")
            .into_iter()
            .map(|e| (e.org, e.path))
            .collect();
        assert_eq!(
            cached,
            [
                ("a".to_owned(), "/rate_limit".to_owned()),
                ("a".to_owned(), "/orgs/a".to_owned()),
                ("b".to_owned(), "/orgs/B/teams".to_owned()),
                ("b".to_owned(), "/orgs/b".to_owned()),
            ]
        );
    }

    #[test]
    fn github_org_is_a_list_of_one_and_conflicting_or_repeated_orgs_are_refused() {
        let one = load_vars(&[("GITHUB_ORG", "octo-org")]).expect("loads");
        assert_eq!(one.common.orgs(), ["octo-org"]);
        let same = load_vars(&[("GITHUB_ORG", "a"), ("GITHUB_ORGS", "a,b")]).expect("loads");
        assert_eq!(
            same.common.orgs(),
            ["a", "b"],
            "agreeing on the first org is fine"
        );
        for (vars, name, value) in [
            (
                &[("GITHUB_ORG", "x"), ("GITHUB_ORGS", "a,b")][..],
                "GITHUB_ORG",
                "x",
            ),
            (&[("GITHUB_ORGS", "a,b,A")][..], "GITHUB_ORGS", "A"),
            (
                &[("GITHUB_ORGS", "a,bad org")][..],
                "GITHUB_ORGS",
                "bad org",
            ),
        ] {
            let s = load_vars(vars).expect("parses");
            let err = s.common.validate().expect_err(name).to_string();
            assert!(err.contains(name) && err.contains(value), "{err}");
        }
    }

    #[test]
    fn validation_names_the_variable() {
        for (name, value) in [
            ("REDIS_URL", "http://nope"),
            ("GITHUB_API_URL", "ftp://x"),
            ("GITHUB_ORG", "bad org"),
            ("REFRESH_INTERVAL_SECS", "0"),
            ("KEY_PREFIX", "a{b}"),
            ("CACHED_ENDPOINTS", "/orgs/../x"),
        ] {
            let s = load_vars(&[(name, value)]).expect("parses");
            let err = s.common.validate().expect_err(name).to_string();
            assert!(err.contains(name) && err.contains(value), "{err}");
        }
    }

    #[test]
    fn sentinel_settings_need_both_variables_and_valid_addresses() {
        let s = load_vars(&[
            ("REDIS_URL", "redis://:pw@ignored:1/2"),
            (
                "REDIS_SENTINELS",
                " 127.0.0.1:26379, [::1]:26380 ,s3.local:26381",
            ),
            ("REDIS_SENTINEL_MASTER", "mymaster"),
        ])
        .expect("parses");
        s.common.validate().expect("valid");
        assert_eq!(
            s.common.redis_target().expect("target"),
            RedisTarget::Sentinel {
                sentinels: vec![
                    ("127.0.0.1".to_owned(), 26379),
                    ("::1".to_owned(), 26380),
                    ("s3.local".to_owned(), 26381)
                ],
                master: "mymaster".to_owned(),
                url: "redis://:pw@ignored:1/2".to_owned(),
            }
        );
        assert_eq!(
            load_vars(&[])
                .expect("defaults")
                .common
                .redis_target()
                .expect("target"),
            RedisTarget::Single {
                url: "redis://127.0.0.1:6379".to_owned()
            }
        );
        for (vars, named, shown) in [
            (
                vec![("REDIS_SENTINELS", "127.0.0.1:26379")],
                "REDIS_SENTINEL_MASTER",
                "127.0.0.1:26379",
            ),
            (
                vec![("REDIS_SENTINEL_MASTER", "mymaster")],
                "REDIS_SENTINELS",
                "mymaster",
            ),
            (
                vec![
                    ("REDIS_SENTINELS", "127.0.0.1"),
                    ("REDIS_SENTINEL_MASTER", "m"),
                ],
                "REDIS_SENTINELS",
                "127.0.0.1",
            ),
            (
                vec![
                    ("REDIS_SENTINELS", "a:1,b:0"),
                    ("REDIS_SENTINEL_MASTER", "m"),
                ],
                "REDIS_SENTINELS",
                "a:1,b:0",
            ),
            (
                vec![
                    ("REDIS_SENTINELS", "a:1"),
                    ("REDIS_SENTINEL_MASTER", "my master"),
                ],
                "REDIS_SENTINEL_MASTER",
                "my master",
            ),
        ] {
            let s = load_vars(&vars).expect("parses");
            let err = s.common.validate().expect_err(named).to_string();
            assert!(err.contains(named) && err.contains(shown), "{err}");
        }
    }

    #[test]
    fn cluster_settings_take_seed_nodes_and_exclude_sentinel_and_databases() {
        let s = load_vars(&[
            ("REDIS_URL", "redis://:pw@ignored:1"),
            ("REDIS_CLUSTER_NODES", "127.0.0.1:7000,127.0.0.1:7001"),
        ])
        .expect("parses");
        s.common.validate().expect("valid");
        assert_eq!(
            s.common.redis_target().expect("target"),
            RedisTarget::Cluster {
                nodes: vec![
                    ("127.0.0.1".to_owned(), 7000),
                    ("127.0.0.1".to_owned(), 7001)
                ],
                url: "redis://:pw@ignored:1".to_owned(),
            }
        );
        for (vars, named) in [
            (
                vec![("REDIS_CLUSTER_NODES", "127.0.0.1")],
                "REDIS_CLUSTER_NODES",
            ),
            (
                vec![
                    ("REDIS_CLUSTER_NODES", "a:1"),
                    ("REDIS_SENTINELS", "b:2"),
                    ("REDIS_SENTINEL_MASTER", "m"),
                ],
                "REDIS_CLUSTER_NODES",
            ),
            (
                vec![
                    ("REDIS_CLUSTER_NODES", "a:1"),
                    ("REDIS_URL", "redis://:secret@x:1/3"),
                ],
                "REDIS_URL",
            ),
        ] {
            let s = load_vars(&vars).expect("parses");
            let err = s.common.validate().expect_err(named).to_string();
            assert!(err.contains(named), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }
}
