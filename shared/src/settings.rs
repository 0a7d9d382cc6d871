//! Settings: defaults → optional config file → environment, environment winning.
//!
//! Every service has its own typed settings struct (see each service's `settings.rs`); they all
//! load through [`load`], which layers three sources with `config`:
//!
//! 1. the serde defaults of the service's struct,
//! 2. an optional TOML or YAML file named by `--config FILE` or `HUBCACHE_CONFIG`,
//! 3. the flat, documented environment variables ([`EnvOverrides`], filled by `envy`).
//!
//! The variables are the public contract (README "Settings"): names are exact and unprefixed, so
//! envy's prefix stripping cannot mangle them. A malformed value fails start-up with a message
//! naming the variable and the value; secrets are never echoed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::redis_connector::RedisTarget;

/// Environment variable naming the config file when `--config` is not given.
pub const CONFIG_FILE_VAR: &str = "HUBCACHE_CONFIG";

/// Why settings could not be loaded. Each message names the variable or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// An environment variable did not parse into its type.
    #[error("invalid environment: {0}")]
    Env(String),
    /// The config file is missing, unreadable or not valid TOML/YAML for the settings.
    #[error("invalid config file {path}: {message}")]
    File {
        /// The file that failed.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
    /// A value parsed but is not acceptable (e.g. a zero interval).
    #[error("invalid setting {name}={value:?}: {reason}")]
    Invalid {
        /// The variable (or config key) name, as a user would write it.
        name: &'static str,
        /// The offending value (never a secret).
        value: String,
        /// What an acceptable value looks like.
        reason: String,
    },
    /// The command line could not be understood.
    #[error("invalid arguments: {0}")]
    Args(String),
}

/// The flat environment variables every service understands (the public contract).
///
/// All optional: an unset variable leaves the file's value or the default in place. Field names
/// are the lowercase variable names; envy matches them case-insensitively.
#[derive(Debug, Default, Deserialize)]
pub struct EnvOverrides {
    /// `REDIS_URL`: where Redis lives (with Sentinel: only its credentials and db are used).
    pub redis_url: Option<String>,
    /// `REDIS_SENTINELS`: comma-separated `host:port` of Redis Sentinels; set with
    /// `REDIS_SENTINEL_MASTER` to find the master through them.
    pub redis_sentinels: Option<String>,
    /// `REDIS_SENTINEL_MASTER`: the master name the sentinels monitor.
    pub redis_sentinel_master: Option<String>,
    /// `REDIS_CLUSTER_NODES`: comma-separated `host:port` of Redis Cluster nodes to start from.
    pub redis_cluster_nodes: Option<String>,
    /// `GITHUB_API_URL`: the upstream GitHub API base.
    pub github_api_url: Option<String>,
    /// `GITHUB_API_TOKEN`: optional token sent to the upstream only.
    pub github_api_token: Option<String>,
    /// `GITHUB_ORG`: the organisation whose data is cached.
    pub github_org: Option<String>,
    /// `REFRESH_INTERVAL_SECS`: how often the fetcher polls each endpoint.
    pub refresh_interval_secs: Option<u64>,
    /// `PORT`: the gateway's listen port.
    pub port: Option<u16>,
    /// `PUBLIC_URL`: the gateway's own base URL as clients reach it.
    pub public_url: Option<String>,
    /// `KEY_PREFIX`: namespace for every Redis key and stream.
    pub key_prefix: Option<String>,
    /// `CACHED_ENDPOINTS`: comma-separated paths the fetcher keeps (default: the org's four).
    pub cached_endpoints: Option<String>,
    /// `LEASE_SECS`: the fetcher lease period.
    pub lease_secs: Option<u64>,
    /// `PASSTHROUGH_USE_SERVER_TOKEN`: whether anonymous pass-through uses the server token.
    pub passthrough_use_server_token: Option<bool>,
    /// `CACHE_MAX_BYTES`: the gateway's pass-through cache bound in bytes.
    pub cache_max_bytes: Option<u64>,
    /// `CACHE_MAX_ENTRIES`: the gateway's pass-through cache bound in entries.
    pub cache_max_entries: Option<u64>,
    /// `CACHE_TTL_SECS`: freshness of a pass-through entry.
    pub cache_ttl_secs: Option<u64>,
    /// `WORKERS`: the gateway's HTTP worker count (default: one per core).
    pub workers: Option<usize>,
    /// `CLIENT_RATE_LIMIT_PER_SEC`: per-client request budget (0 disables limiting).
    pub client_rate_limit_per_sec: Option<u32>,
    /// `MAX_UPSTREAM_FETCHES`: the gateway's bound on pass-through requests to GitHub in flight.
    pub max_upstream_fetches: Option<usize>,
    /// `MAX_CONNECTIONS`: the gateway's bound on open client connections.
    pub max_connections: Option<usize>,
    /// `METRICS_PORT`: the admin listener of fetcher and views (0 disables it).
    pub metrics_port: Option<u16>,
    /// `SHUTDOWN_TIMEOUT_SECS`: how long a service drains on SIGTERM.
    pub shutdown_timeout_secs: Option<u64>,
}

impl EnvOverrides {
    /// Parses the documented variables out of `vars` (usually `std::env::vars()`).
    ///
    /// Tests pass a map instead of mutating the process environment.
    pub fn from_vars<I>(vars: I) -> Result<Self, SettingsError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        // Empty values mean "unset", as shells and compose files often produce them.
        let vars = vars.into_iter().filter(|(_, v)| !v.is_empty());
        envy::from_iter::<_, Self>(vars)
            .map_err(|e| SettingsError::Env(redact_token(&e.to_string())))
    }

    /// The overrides as `(config key, value)` pairs for `config::ConfigBuilder::set_override`.
    fn into_config_pairs(self) -> Vec<(&'static str, config::Value)> {
        let mut pairs: Vec<(&'static str, config::Value)> = Vec::new();
        let mut put = |k: &'static str, v: Option<config::Value>| {
            if let Some(v) = v {
                pairs.push((k, v));
            }
        };
        put("redis_url", self.redis_url.map(Into::into));
        put("redis_sentinels", self.redis_sentinels.map(Into::into));
        put(
            "redis_sentinel_master",
            self.redis_sentinel_master.map(Into::into),
        );
        put(
            "redis_cluster_nodes",
            self.redis_cluster_nodes.map(Into::into),
        );
        put("github_api_url", self.github_api_url.map(Into::into));
        put("github_api_token", self.github_api_token.map(Into::into));
        put("github_org", self.github_org.map(Into::into));
        put(
            "refresh_interval_secs",
            self.refresh_interval_secs.map(Into::into),
        );
        put("port", self.port.map(|p| i64::from(p).into()));
        put("public_url", self.public_url.map(Into::into));
        put("key_prefix", self.key_prefix.map(Into::into));
        put("lease_secs", self.lease_secs.map(Into::into));
        put(
            "passthrough_use_server_token",
            self.passthrough_use_server_token.map(Into::into),
        );
        put("cache_max_bytes", self.cache_max_bytes.map(Into::into));
        put("cache_max_entries", self.cache_max_entries.map(Into::into));
        put("cache_ttl_secs", self.cache_ttl_secs.map(Into::into));
        put("workers", self.workers.map(|w| (w as u64).into()));
        put(
            "max_upstream_fetches",
            self.max_upstream_fetches.map(|n| (n as u64).into()),
        );
        put(
            "max_connections",
            self.max_connections.map(|n| (n as u64).into()),
        );
        put(
            "client_rate_limit_per_sec",
            self.client_rate_limit_per_sec.map(|r| i64::from(r).into()),
        );
        put(
            "metrics_port",
            self.metrics_port.map(|p| i64::from(p).into()),
        );
        put(
            "shutdown_timeout_secs",
            self.shutdown_timeout_secs.map(Into::into),
        );
        put(
            "cached_endpoints",
            self.cached_endpoints.map(|list| {
                let items: Vec<config::Value> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|path| {
                        let mut table: config::Map<String, config::Value> = config::Map::new();
                        table.insert("path".to_owned(), path.into());
                        config::Value::from(table)
                    })
                    .collect();
                items.into()
            }),
        );
        pairs
    }
}

/// envy echoes the bad value; a malformed token must still never reach a log line.
fn redact_token(message: &str) -> String {
    if message.to_ascii_uppercase().contains("GITHUB_API_TOKEN") {
        "GITHUB_API_TOKEN has an invalid value (not shown)".to_owned()
    } else {
        message.to_owned()
    }
}

/// Where settings come from: the command line and an environment, both injectable for tests.
#[derive(Debug, Default, Clone)]
pub struct SettingsSource {
    /// `--config FILE` from the command line, if given.
    pub config_file: Option<PathBuf>,
    /// The environment variables to read.
    pub env: HashMap<String, String>,
}

impl SettingsSource {
    /// The process's real command line and environment.
    pub fn from_process() -> Result<Self, SettingsError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let config_file = parse_config_arg(std::env::args().skip(1))?.or_else(|| {
            env.get(CONFIG_FILE_VAR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        Ok(Self { config_file, env })
    }

    /// A source with only these variables and no file: what tests use.
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            config_file: None,
            env: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// Reads `--config FILE` / `--config=FILE`; `--help` and unknown flags are errors.
fn parse_config_arg<I: Iterator<Item = String>>(
    mut args: I,
) -> Result<Option<PathBuf>, SettingsError> {
    let mut file = None;
    while let Some(arg) = args.next() {
        if arg == "--config" {
            let path = args
                .next()
                .ok_or_else(|| SettingsError::Args("--config needs a file path".to_owned()))?;
            file = Some(PathBuf::from(path));
        } else if let Some(path) = arg.strip_prefix("--config=") {
            file = Some(PathBuf::from(path));
        } else {
            return Err(SettingsError::Args(format!(
                "unknown argument {arg:?}; usage: [--config FILE] (settings come from the environment, see README)"
            )));
        }
    }
    Ok(file)
}

/// Builds a service's settings struct `T` from `source`: defaults, then file, then environment.
pub fn load<T: DeserializeOwned>(source: &SettingsSource) -> Result<T, SettingsError> {
    let overrides = EnvOverrides::from_vars(source.env.clone())?;
    let mut builder = config::Config::builder();
    if let Some(path) = &source.config_file {
        builder = builder.add_source(file_source(path)?);
    }
    for (key, value) in overrides.into_config_pairs() {
        builder = builder
            .set_override(key, value)
            .map_err(|e| SettingsError::Env(e.to_string()))?;
    }
    let merged = builder.build().map_err(|e| file_error(source, e))?;
    merged
        .try_deserialize::<T>()
        .map_err(|e| file_error(source, e))
}

fn file_source(
    path: &Path,
) -> Result<config::File<config::FileSourceFile, config::FileFormat>, SettingsError> {
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => config::FileFormat::Toml,
        Some("yaml" | "yml") => config::FileFormat::Yaml,
        other => {
            return Err(SettingsError::File {
                path: path.to_owned(),
                message: format!("unsupported extension {other:?}: use .toml, .yaml or .yml"),
            });
        }
    };
    if !path.is_file() {
        return Err(SettingsError::File {
            path: path.to_owned(),
            message: "no such file".to_owned(),
        });
    }
    Ok(config::File::from(path).format(format).required(true))
}

fn file_error(source: &SettingsSource, e: config::ConfigError) -> SettingsError {
    let message = redact_token(&e.to_string());
    match &source.config_file {
        Some(path) => SettingsError::File {
            path: path.clone(),
            message,
        },
        None => SettingsError::Env(message),
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
    /// `GITHUB_ORG`.
    #[serde(default = "default_github_org")]
    pub github_org: String,
    /// `REFRESH_INTERVAL_SECS`: default poll interval of every cached endpoint.
    #[serde(default = "default_refresh_interval_secs")]
    pub refresh_interval_secs: u64,
    /// `KEY_PREFIX`: namespace (and Redis Cluster hash tag) of every key and stream.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// The endpoints the fetcher keeps and the gateway serves from Redis (the seed's
    /// `org.cached`). Empty means the defaults for `github_org`.
    #[serde(default)]
    pub cached_endpoints: Vec<EndpointSettings>,
    /// `SHUTDOWN_TIMEOUT_SECS`: how long to drain on SIGTERM before giving up.
    #[serde(default = "default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
}

/// One cached endpoint, as written in the config file (`cached_endpoints: [{path, ...}]`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct EndpointSettings {
    /// The GitHub path, e.g. `/orgs/Netflix/repos`; `{org}` is replaced by `GITHUB_ORG`.
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
fn default_github_org() -> String {
    "Netflix".to_owned()
}
fn default_refresh_interval_secs() -> u64 {
    10
}
fn default_key_prefix() -> String {
    "hubcache".to_owned()
}
fn default_shutdown_timeout_secs() -> u64 {
    10
}

/// A cached endpoint after validation: a normalised path and its poll interval.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CachedEndpoint {
    /// Normalised GitHub path (leading `/`, no trailing `/` except the root, no query).
    pub path: String,
    /// How often the fetcher checks it.
    pub interval: Duration,
}

impl CommonSettings {
    /// Checks every value and fails with the variable's name and the bad value.
    pub fn validate(&self) -> Result<(), SettingsError> {
        redis::parse_redis_url(&self.redis_url).ok_or_else(|| SettingsError::Invalid {
            name: "REDIS_URL",
            value: self.redis_url.clone(),
            reason: "expected redis://[user:password@]host[:port][/db] or rediss://".to_owned(),
        })?;
        self.redis_target()?;
        self.github_base_url()?;
        if !is_github_login(&self.github_org) {
            return Err(SettingsError::Invalid {
                name: "GITHUB_ORG",
                value: self.github_org.clone(),
                reason: "expected a GitHub login: letters, digits and single hyphens".to_owned(),
            });
        }
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

    /// The cached endpoints, normalised, with `{org}` expanded and intervals resolved.
    pub fn cached(&self) -> Result<Vec<CachedEndpoint>, SettingsError> {
        let default_interval = Duration::from_secs(self.refresh_interval_secs);
        let configured: Vec<EndpointSettings> = if self.cached_endpoints.is_empty() {
            default_endpoints(&self.github_org)
        } else {
            self.cached_endpoints.clone()
        };
        let mut out: Vec<CachedEndpoint> = Vec::with_capacity(configured.len());
        for endpoint in configured {
            let raw = endpoint.path.replace("{org}", &self.github_org);
            let path = normalize_endpoint_path(&raw).ok_or_else(|| SettingsError::Invalid {
                name: "CACHED_ENDPOINTS",
                value: raw.clone(),
                reason:
                    "expected an absolute GitHub API path without query, e.g. /orgs/Netflix/repos"
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
            if !out.iter().any(|e| e.path == path) {
                out.push(CachedEndpoint { path, interval });
            }
        }
        Ok(out)
    }
}

/// The seed's four cached endpoints for an organisation.
pub fn default_endpoints(org: &str) -> Vec<EndpointSettings> {
    [
        "/".to_owned(),
        format!("/orgs/{org}"),
        format!("/orgs/{org}/members"),
        format!("/orgs/{org}/repos"),
    ]
    .into_iter()
    .map(|path| EndpointSettings {
        path,
        refresh_interval_secs: None,
    })
    .collect()
}

/// Normalises a GitHub API path: one leading `/`, no trailing `/` (except `/`), no query,
/// no `.`/`..` segments, no empty segments. `None` when it is not a plain path.
pub fn normalize_endpoint_path(raw: &str) -> Option<String> {
    if !raw.starts_with('/') || raw.contains(['?', '#', ' ', '\\']) {
        return None;
    }
    let segments: Vec<&str> = raw.trim_end_matches('/').split('/').skip(1).collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return None;
    }
    if segments.is_empty() {
        return Some("/".to_owned());
    }
    Some(format!("/{}", segments.join("/")))
}

/// GitHub logins: alphanumerics and single inner hyphens, at most 39 characters.
pub fn is_github_login(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 39
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// Parses `host:port,host:port` (IPv6 as `[::1]:26379`); `None` if any item is malformed or
/// the list is empty.
pub fn parse_host_ports(list: &str) -> Option<Vec<(String, u16)>> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (host, port) = item.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
        if host.is_empty() || host.contains(['/', '@', ' ', '?', '#']) {
            return None;
        }
        out.push((host.to_owned(), port));
    }
    (!out.is_empty()).then_some(out)
}

/// Parses an `http(s)` base URL for `name`, dropping trailing slashes, rejecting queries.
pub fn parse_base_url(name: &'static str, value: &str) -> Result<Url, SettingsError> {
    let invalid = |reason: &str| SettingsError::Invalid {
        name,
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let url =
        Url::parse(value.trim_end_matches('/')).map_err(|e| invalid(&format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("expected an http:// or https:// URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid("expected no query, fragment or credentials"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct TestSettings {
        #[serde(flatten)]
        common: CommonSettings,
        #[serde(default = "default_port")]
        port: u16,
    }
    fn default_port() -> u16 {
        3000
    }

    fn load_vars(vars: &[(&str, &str)]) -> Result<TestSettings, SettingsError> {
        load(&SettingsSource::from_vars(vars.iter().copied()))
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = load_vars(&[]).expect("defaults load");
        assert_eq!(s.common.redis_url, "redis://127.0.0.1:6379");
        assert_eq!(s.common.github_api_url, "https://api.github.com");
        assert!(s.common.github_api_token.is_none());
        assert_eq!(s.common.github_org, "Netflix");
        assert_eq!(s.common.refresh_interval_secs, 10);
        assert_eq!(s.common.key_prefix, "hubcache");
        assert_eq!(s.port, 3000);
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
    fn environment_overrides_defaults() {
        let s = load_vars(&[
            ("PORT", "8080"),
            ("GITHUB_ORG", "octo-org"),
            ("REFRESH_INTERVAL_SECS", "3"),
            ("CACHED_ENDPOINTS", "/orgs/{org}, /orgs/{org}/repos/"),
        ])
        .expect("loads");
        assert_eq!(s.port, 8080);
        assert_eq!(s.common.github_org, "octo-org");
        let cached = s.common.cached().expect("valid");
        assert_eq!(cached.len(), 2);
        assert_eq!(cached[1].path, "/orgs/octo-org/repos");
        assert_eq!(cached[1].interval, Duration::from_secs(3));
    }

    #[test]
    fn bad_number_names_the_variable_and_value() {
        let err = load_vars(&[("PORT", "eighty")]).expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains("PORT") && msg.contains("eighty"), "{msg}");
    }

    #[test]
    fn token_is_never_echoed() {
        let s = load_vars(&[("GITHUB_API_TOKEN", "ghp_secret123")]).expect("loads");
        let debug = format!("{s:?}");
        assert!(!debug.contains("ghp_secret123"), "{debug}");
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

    #[test]
    fn file_then_environment_layering() {
        let dir = std::env::temp_dir().join(format!("hubcache-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let file = dir.join("config.yaml");
        std::fs::write(
            &file,
            "github_org: FileOrg\nport: 4000\ncached_endpoints:\n  - path: /orgs/{org}/repos\n    refresh_interval_secs: 30\n",
        )
        .expect("write");
        let source = SettingsSource {
            config_file: Some(file.clone()),
            env: HashMap::from([("PORT".to_owned(), "5000".to_owned())]),
        };
        let s: TestSettings = load(&source).expect("loads");
        assert_eq!(s.common.github_org, "FileOrg");
        assert_eq!(s.port, 5000, "environment wins over the file");
        let cached = s.common.cached().expect("valid");
        assert_eq!(
            cached,
            [CachedEndpoint {
                path: "/orgs/FileOrg/repos".to_owned(),
                interval: Duration::from_secs(30)
            }]
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn missing_or_unknown_file_fails_fast() {
        let source = SettingsSource {
            config_file: Some(PathBuf::from("/nonexistent/hubcache.yaml")),
            env: HashMap::new(),
        };
        let err = load::<TestSettings>(&source).expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent/hubcache.yaml"));
    }

    #[test]
    fn config_argument_parsing() {
        let args = |a: &[&str]| parse_config_arg(a.iter().map(|s| (*s).to_owned()));
        assert_eq!(args(&[]).expect("ok"), None);
        assert_eq!(
            args(&["--config", "a.toml"]).expect("ok"),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            args(&["--config=b.yaml"]).expect("ok"),
            Some(PathBuf::from("b.yaml"))
        );
        assert!(args(&["--config"]).is_err());
        assert!(args(&["--verbose"]).is_err());
    }

    #[test]
    fn endpoint_paths_normalise() {
        assert_eq!(normalize_endpoint_path("/").as_deref(), Some("/"));
        assert_eq!(
            normalize_endpoint_path("/orgs/x/").as_deref(),
            Some("/orgs/x")
        );
        assert_eq!(normalize_endpoint_path("orgs/x"), None);
        assert_eq!(normalize_endpoint_path("/orgs//x"), None);
        assert_eq!(normalize_endpoint_path("/orgs/x?page=2"), None);
    }
}

/// Property tests: endpoint paths come from the environment and config files.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn normalised_paths_are_plain_and_stable(raw in "[/a-z.{}?# \\\\-]{0,24}") {
            if let Some(path) = normalize_endpoint_path(&raw) {
                prop_assert!(path.starts_with('/'));
                prop_assert!(path == "/" || !path.ends_with('/'));
                prop_assert!(!path.contains("//") && !path.contains(['?', '#', ' ', '\\']));
                prop_assert!(path.split('/').skip(1).all(|s| s != "." && s != ".."));
                prop_assert_eq!(normalize_endpoint_path(&path), Some(path.clone()));
            }
        }
    }
}
