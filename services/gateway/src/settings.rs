//! The gateway's settings: the shared ones plus listening, pass-through cache and client limits.

use std::net::IpAddr;
use std::time::Duration;

use hubcache_shared::settings::{self, ServiceSettings, parse_base_url};
use hubcache_shared::{CommonSettings, SettingsError, SettingsSource};
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

/// Everything the gateway is configured with. Its own environment variables are [`Variables`]
/// (documented in the README); fields without one are config-file keys.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Redis, GitHub, org, cached endpoints, key prefix.
    #[serde(flatten)]
    pub common: CommonSettings,
    /// `PORT`: where clients connect (0 picks a free port, as tests do).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Address to bind (config file only; `0.0.0.0` so containers are reachable).
    #[serde(default = "default_host")]
    pub host: String,
    /// `PUBLIC_URL`: the gateway's base URL as clients see it. Link headers use it (else the
    /// request's Host), and when set, upstream URLs in bodies are rewritten to it.
    #[serde(default)]
    pub public_url: Option<String>,
    /// `PASSTHROUGH_SERVER_TOKEN_SCOPE`: which anonymous pass-through GET/HEAD carry the
    /// server credential (`orgs`, the default: only the configured orgs' own resources;
    /// `all`; `none`). Anything else goes upstream without a credential.
    #[serde(default)]
    pub passthrough_server_token_scope: Option<String>,
    /// `PASSTHROUGH_USE_SERVER_TOKEN`, replaced by `PASSTHROUGH_SERVER_TOKEN_SCOPE`: `false`
    /// still means `none`; `true` (which meant every path) is refused at startup so that an
    /// old configuration never silently keeps or loses the wide exposure.
    #[serde(default)]
    pub passthrough_use_server_token: Option<bool>,
    /// `CACHE_MAX_BYTES`: byte bound of the pass-through cache.
    #[serde(default = "default_cache_max_bytes")]
    pub cache_max_bytes: u64,
    /// `CACHE_MAX_ENTRIES`: entry bound of the pass-through cache.
    #[serde(default = "default_cache_max_entries")]
    pub cache_max_entries: u64,
    /// `CACHE_TTL_SECS`: how long a pass-through answer is fresh.
    #[serde(default = "default_cache_ttl_secs")]
    pub cache_ttl_secs: u64,
    /// How long after expiry a stale answer is served while one background refresh runs.
    #[serde(default = "default_stale_while_revalidate_secs")]
    pub stale_while_revalidate_secs: u64,
    /// How long after expiry a stale answer is served when the upstream fails.
    #[serde(default = "default_stale_if_error_secs")]
    pub stale_if_error_secs: u64,
    /// How long a 404/410 from upstream is cached.
    #[serde(default = "default_negative_ttl_secs")]
    pub negative_ttl_secs: u64,
    /// Upstream request timeout of the pass-through, seconds.
    #[serde(default = "default_upstream_timeout_secs")]
    pub upstream_timeout_secs: u64,
    /// Share pass-through answers with the other replicas through Redis (the fleet cache, L2),
    /// so N replicas cost GitHub one request per key; off: each replica alone (config file only,
    /// like the other L2 knobs below).
    #[serde(default = "default_true")]
    pub l2_enabled: bool,
    /// Larger pass-through answers (encoded) stay in this replica's cache
    /// only. With the entries' key TTLs, it bounds what the fleet cache keeps in Redis.
    #[serde(default = "default_l2_max_entry_bytes")]
    pub l2_max_entry_bytes: u64,
    /// Milliseconds of the fleet lock of one upstream fetch, renewed while it runs: a replica
    /// that dies while fetching delays the others' takeover by at most this.
    #[serde(default = "default_l2_lock_ttl_ms")]
    pub l2_lock_ttl_ms: u64,
    /// Milliseconds one fleet cache command may take at most; slower (or Redis down),
    /// the fetch goes straight upstream and the fleet cache is skipped for a second.
    #[serde(default = "default_l2_timeout_ms")]
    pub l2_timeout_ms: u64,
    /// `WORKERS`: HTTP worker threads (default: one per core).
    #[serde(default)]
    pub workers: Option<usize>,
    /// `MAX_UPSTREAM_FETCHES`: pass-through requests to GitHub in flight at once (cache misses,
    /// background refreshes and uncached forwards together). A request that would need one more
    /// gets 503 JSON with `Retry-After` (or a stale copy) at once instead of queueing.
    #[serde(default = "default_max_upstream_fetches")]
    pub max_upstream_fetches: usize,
    /// `MAX_CONNECTIONS`: open client connections, all workers together; at the bound the
    /// gateway stops accepting until one closes (new clients wait in the listen backlog), so
    /// memory stays bounded however many clients connect.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How long a client connection may leave sent response data unacknowledged (a client that
    /// stops reading: its receive window stays closed) before it is dropped, seconds (config
    /// file only; Linux `TCP_USER_TIMEOUT`). Without it a client that never reads a large
    /// response holds its connection slot for as long as it stays connected.
    #[serde(default = "default_client_stall_timeout_secs")]
    pub client_stall_timeout_secs: u64,
    /// `CLIENT_RATE_LIMIT_PER_SEC`: requests per second per client IP; 0 turns limiting off.
    #[serde(default)]
    pub client_rate_limit_per_sec: u32,
    /// Burst allowed above the per-second rate (config file only).
    #[serde(default = "default_client_rate_limit_burst")]
    pub client_rate_limit_burst: u32,
    /// Key the client rate limit by the first `X-Forwarded-For` address instead of the peer
    /// address (config file only; enable only behind a proxy you control, or clients choose
    /// their own bucket).
    #[serde(default)]
    pub client_rate_limit_trust_forwarded_for: bool,
    /// `GITHUB_WEBHOOK_SECRET`: the secret of GitHub's org webhook pointing at
    /// `POST /webhooks/github`; unset, that route answers 404. Never logged.
    #[serde(default)]
    pub github_webhook_secret: Option<SecretString>,
    /// `WEBHOOK_DELIVERY_WINDOW_SECS`: a delivery id (`X-GitHub-Delivery`) seen again within
    /// this is acknowledged and ignored (fleet-wide: the ids are kept in Redis).
    #[serde(default = "default_webhook_delivery_window_secs")]
    pub webhook_delivery_window_secs: u64,
    /// `WEBHOOK_MAX_BODY_BYTES`: larger deliveries are refused with 413 (GitHub caps payloads
    /// at 25 MB).
    #[serde(default = "default_webhook_max_body_bytes")]
    pub webhook_max_body_bytes: u64,
    /// `STATUS_PAGE`: `on` (default) serves the operator's page `/status` and its data
    /// `/status.json`; `off` answers 404 there (e.g. a gateway exposed to the internet where
    /// operators look at Prometheus instead).
    #[serde(default = "default_status_page")]
    pub status_page: String,
    /// `STATUS_PAGE_ALLOW`: comma-separated IP networks in CIDR form (`127.0.0.1/32,10.0.0.0/8`)
    /// whose clients may see `/status` and `/status.json`; others get 403. Unset or empty:
    /// everyone. Matched against the TCP peer address, never `X-Forwarded-For` (a client
    /// writes that header itself). Parsed by [`Settings::status_allow_list`].
    #[serde(default)]
    pub status_page_allow: Option<String>,
}

/// The gateway's own environment variables (README "Settings"), each overriding the
/// [`Settings`] field of the same lowercase name; the type is how the value is parsed.
#[derive(Debug, Deserialize, Serialize)]
pub struct Variables {
    /// `PORT`.
    port: Option<u16>,
    /// `PUBLIC_URL`.
    public_url: Option<String>,
    /// `PASSTHROUGH_SERVER_TOKEN_SCOPE` (`orgs`, `all` or `none`).
    passthrough_server_token_scope: Option<String>,
    /// `PASSTHROUGH_USE_SERVER_TOKEN` (replaced; `false` = scope `none`, `true` refused).
    passthrough_use_server_token: Option<bool>,
    /// `CACHE_MAX_BYTES`.
    cache_max_bytes: Option<u64>,
    /// `CACHE_MAX_ENTRIES`.
    cache_max_entries: Option<u64>,
    /// `CACHE_TTL_SECS`.
    cache_ttl_secs: Option<u64>,
    /// `WORKERS`.
    workers: Option<usize>,
    /// `CLIENT_RATE_LIMIT_PER_SEC`.
    client_rate_limit_per_sec: Option<u32>,
    /// `MAX_UPSTREAM_FETCHES`.
    max_upstream_fetches: Option<usize>,
    /// `MAX_CONNECTIONS`.
    max_connections: Option<usize>,
    /// `GITHUB_WEBHOOK_SECRET`.
    github_webhook_secret: Option<String>,
    /// `WEBHOOK_DELIVERY_WINDOW_SECS`.
    webhook_delivery_window_secs: Option<u64>,
    /// `WEBHOOK_MAX_BODY_BYTES`.
    webhook_max_body_bytes: Option<u64>,
    /// `STATUS_PAGE`.
    status_page: Option<String>,
    /// `STATUS_PAGE_ALLOW` (comma-separated CIDR networks).
    status_page_allow: Option<String>,
}

/// Which anonymous pass-through requests may spend the server's credential (README "What the
/// pass-through exposes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerTokenScope {
    /// Only the configured orgs' own resources: `/orgs/{org}/...`, `/repos/{org}/...`,
    /// `/organizations/{id}/...`.
    #[default]
    Orgs,
    /// Every path (whatever the credential can read, anyone reaching the gateway reads).
    All,
    /// Never: every anonymous request goes upstream without a credential.
    None,
}

/// Who may see the status page (`STATUS_PAGE_ALLOW`), parsed once at startup so that a bad
/// entry stops the gateway instead of silently opening or closing the page, and so that each
/// request only compares addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusAllowList {
    /// The networks allowed; empty means everyone (the variable unset or empty).
    networks: Vec<IpNet>,
}

impl StatusAllowList {
    /// The variable these networks come from, named in errors and refusals.
    pub const VARIABLE: &'static str = "STATUS_PAGE_ALLOW";

    /// Parses `STATUS_PAGE_ALLOW`: blank means everyone; otherwise every comma-separated entry
    /// must be a network in CIDR form (`10.0.0.0/8`, `::1/128`). A bare address, a blank entry
    /// or a bad prefix is refused naming the variable and the entry, because guessing what was
    /// meant could widen who sees the page. Host bits are dropped (`10.1.2.3/8` is
    /// `10.0.0.0/8`): the prefix says how wide the network is.
    pub fn parse(value: &str) -> Result<Self, SettingsError> {
        if value.trim().is_empty() {
            return Ok(Self::default());
        }
        let networks = value
            .split(',')
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .map(|network| network.trunc())
                    .map_err(|e| SettingsError::Invalid {
                        name: Self::VARIABLE,
                        value: entry.to_owned(),
                        reason: format!(
                            "{e}: expected comma-separated IP networks in CIDR form, e.g. \
                             127.0.0.1/32,10.0.0.0/8,::1/128 (or leave it empty: everyone)"
                        ),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { networks })
    }

    /// Whether every client may see the page (no networks listed).
    pub fn allows_everyone(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether a client at `peer` (the TCP peer address; `None` when unknown) may see the page.
    /// An IPv4-mapped IPv6 peer (`::ffff:10.1.2.3`, what a dual-stack socket reports for an
    /// IPv4 client) matches IPv4 networks as its IPv4 address. An unknown peer is refused when
    /// networks are listed.
    pub fn allows(&self, peer: Option<IpAddr>) -> bool {
        if self.allows_everyone() {
            return true;
        }
        let Some(peer) = peer else {
            return false;
        };
        let canonical = peer.to_canonical();
        self.networks
            .iter()
            .any(|network| network.contains(&peer) || network.contains(&canonical))
    }
}

impl ServiceSettings for Settings {
    type Variables = Variables;
}

fn default_status_page() -> String {
    "on".to_owned()
}
fn default_port() -> u16 {
    3000
}
fn default_host() -> String {
    "0.0.0.0".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_cache_max_bytes() -> u64 {
    64 * 1024 * 1024
}
fn default_cache_max_entries() -> u64 {
    10_000
}
fn default_cache_ttl_secs() -> u64 {
    60
}
fn default_stale_while_revalidate_secs() -> u64 {
    30
}
fn default_stale_if_error_secs() -> u64 {
    300
}
fn default_negative_ttl_secs() -> u64 {
    10
}
fn default_upstream_timeout_secs() -> u64 {
    10
}
fn default_max_upstream_fetches() -> usize {
    256
}
fn default_l2_max_entry_bytes() -> u64 {
    1024 * 1024
}
fn default_l2_lock_ttl_ms() -> u64 {
    2_000
}
fn default_l2_timeout_ms() -> u64 {
    100
}
fn default_max_connections() -> usize {
    10_000
}
fn default_client_stall_timeout_secs() -> u64 {
    30
}
fn default_webhook_delivery_window_secs() -> u64 {
    3_600
}
fn default_webhook_max_body_bytes() -> u64 {
    25 * 1024 * 1024
}
fn default_client_rate_limit_burst() -> u32 {
    50
}

impl Settings {
    /// Whether `/status` and `/status.json` are served (`STATUS_PAGE=on`).
    pub fn status_page_enabled(&self) -> bool {
        self.status_page == "on"
    }

    /// Loads and validates; errors name the variable and the bad value.
    pub fn load(source: &SettingsSource) -> Result<Self, SettingsError> {
        let settings: Self = settings::load(source)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the gateway's own values on top of the shared ones.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.common.validate()?;
        self.public_base_url()?;
        let positive = |name: &'static str, value: u64| {
            if value == 0 {
                Err(SettingsError::Invalid {
                    name,
                    value: "0".to_owned(),
                    reason: "expected a positive number".to_owned(),
                })
            } else {
                Ok(())
            }
        };
        positive("CACHE_MAX_BYTES", self.cache_max_bytes)?;
        positive("CACHE_MAX_ENTRIES", self.cache_max_entries)?;
        positive("CACHE_TTL_SECS", self.cache_ttl_secs)?;
        positive("upstream_timeout_secs", self.upstream_timeout_secs)?;
        positive("MAX_UPSTREAM_FETCHES", self.max_upstream_fetches as u64)?;
        positive("MAX_CONNECTIONS", self.max_connections as u64)?;
        positive("client_stall_timeout_secs", self.client_stall_timeout_secs)?;
        positive("l2_max_entry_bytes", self.l2_max_entry_bytes)?;
        positive("l2_lock_ttl_ms", self.l2_lock_ttl_ms)?;
        positive("l2_timeout_ms", self.l2_timeout_ms)?;
        positive(
            "WEBHOOK_DELIVERY_WINDOW_SECS",
            self.webhook_delivery_window_secs,
        )?;
        positive("WEBHOOK_MAX_BODY_BYTES", self.webhook_max_body_bytes)?;
        if self
            .github_webhook_secret
            .as_ref()
            .is_some_and(|secret| secret.expose_secret().trim().is_empty())
        {
            return Err(SettingsError::Invalid {
                name: "GITHUB_WEBHOOK_SECRET",
                value: "(blank)".to_owned(),
                reason: "expected a non-blank secret, or leave it unset".to_owned(),
            });
        }
        self.server_token_scope()?;
        if !matches!(self.status_page.as_str(), "on" | "off") {
            return Err(SettingsError::Invalid {
                name: "STATUS_PAGE",
                value: self.status_page.clone(),
                reason: "expected on or off".to_owned(),
            });
        }
        self.status_allow_list()?;
        if self.workers == Some(0) {
            return Err(SettingsError::Invalid {
                name: "WORKERS",
                value: "0".to_owned(),
                reason: "expected at least 1 worker".to_owned(),
            });
        }
        Ok(())
    }

    /// `STATUS_PAGE_ALLOW` parsed (everyone when unset or empty). Checked even with
    /// `STATUS_PAGE=off` (which wins: the page is off for everyone), so that turning the page
    /// on later does not reveal a bad list.
    pub fn status_allow_list(&self) -> Result<StatusAllowList, SettingsError> {
        self.status_page_allow
            .as_deref()
            .map_or_else(|| Ok(StatusAllowList::default()), StatusAllowList::parse)
    }

    /// `PUBLIC_URL` parsed, if set.
    pub fn public_base_url(&self) -> Result<Option<Url>, SettingsError> {
        self.public_url
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| parse_base_url("PUBLIC_URL", s))
            .transpose()
    }

    /// `MAX_CONNECTIONS` spread over the workers (actix bounds connections per worker), rounded
    /// up so the total is at least `MAX_CONNECTIONS`.
    pub fn max_connections_per_worker(&self) -> usize {
        let workers = self
            .workers
            .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
            .unwrap_or(1)
            .max(1);
        self.max_connections.div_ceil(workers)
    }

    /// The fleet cache's bounds and timings, or `None` when `l2_enabled` is off.
    pub(crate) fn fleet_policy(&self) -> anyhow::Result<Option<crate::fleet_cache::FleetPolicy>> {
        use anyhow::Context as _;
        if !self.l2_enabled {
            return Ok(None);
        }
        Ok(Some(crate::fleet_cache::FleetPolicy {
            max_entry_bytes: usize::try_from(self.l2_max_entry_bytes)
                .context("l2_max_entry_bytes does not fit this platform")?,
            lock_ttl: Duration::from_millis(self.l2_lock_ttl_ms),
            timeout: Duration::from_millis(self.l2_timeout_ms),
            stale_while_revalidate: Duration::from_secs(self.stale_while_revalidate_secs),
            stale_if_error: Duration::from_secs(self.stale_if_error_secs),
        }))
    }

    /// The server credential's scope: `PASSTHROUGH_SERVER_TOKEN_SCOPE`, or the replaced
    /// `PASSTHROUGH_USE_SERVER_TOKEN=false` (= `none`); both set, or the old `true`, is refused
    /// with a message saying what to write instead.
    pub fn server_token_scope(&self) -> Result<ServerTokenScope, SettingsError> {
        let scope = match self
            .passthrough_server_token_scope
            .as_deref()
            .map(str::trim)
        {
            None => None,
            Some(value) if value.eq_ignore_ascii_case("orgs") => Some(ServerTokenScope::Orgs),
            Some(value) if value.eq_ignore_ascii_case("all") => Some(ServerTokenScope::All),
            Some(value) if value.eq_ignore_ascii_case("none") => Some(ServerTokenScope::None),
            Some(value) => {
                return Err(SettingsError::Invalid {
                    name: "PASSTHROUGH_SERVER_TOKEN_SCOPE",
                    value: value.to_owned(),
                    reason: "expected orgs, all or none".to_owned(),
                });
            }
        };
        match (scope, self.passthrough_use_server_token) {
            (scope, None) => Ok(scope.unwrap_or_default()),
            (None, Some(false)) => Ok(ServerTokenScope::None),
            (Some(_), Some(old)) => Err(SettingsError::Invalid {
                name: "PASSTHROUGH_USE_SERVER_TOKEN",
                value: old.to_string(),
                reason: "replaced by PASSTHROUGH_SERVER_TOKEN_SCOPE: set only that one".to_owned(),
            }),
            (None, Some(true)) => Err(SettingsError::Invalid {
                name: "PASSTHROUGH_USE_SERVER_TOKEN",
                value: "true".to_owned(),
                reason: "replaced by PASSTHROUGH_SERVER_TOKEN_SCOPE: `orgs` (the default: the \
                         configured orgs' own resources only) or `all` (every path, what `true` \
                         meant: anyone reaching the gateway reads whatever the token can read)"
                    .to_owned(),
            }),
        }
    }

    /// Pass-through upstream timeout.
    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_secs(self.upstream_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let s = Settings::load(&SettingsSource::from_vars([("PORT", "8081")])).expect("loads");
        assert_eq!(s.port, 8081);
        assert_eq!(
            s.server_token_scope().expect("valid"),
            ServerTokenScope::Orgs
        );
        assert_eq!(s.public_base_url().expect("valid"), None);
        assert!(s.github_webhook_secret.is_none());
    }

    #[test]
    fn the_token_scope_replaces_the_old_switch() {
        let scope = |vars: &[(&str, &str)]| {
            Settings::load(&SettingsSource::from_vars(vars.iter().copied()))
                .map(|s| s.server_token_scope().expect("validated"))
        };
        assert_eq!(
            scope(&[("PASSTHROUGH_SERVER_TOKEN_SCOPE", "all")]).expect("all"),
            ServerTokenScope::All
        );
        assert_eq!(
            scope(&[("PASSTHROUGH_SERVER_TOKEN_SCOPE", "")]).expect("blank: compose's unset"),
            ServerTokenScope::Orgs
        );
        assert_eq!(
            scope(&[("PASSTHROUGH_USE_SERVER_TOKEN", "false")]).expect("old false"),
            ServerTokenScope::None
        );
        let both = scope(&[
            ("PASSTHROUGH_SERVER_TOKEN_SCOPE", "none"),
            ("PASSTHROUGH_USE_SERVER_TOKEN", "false"),
        ])
        .expect_err("both");
        assert!(both.to_string().contains("only that one"), "{both}");
        let old_true = scope(&[("PASSTHROUGH_USE_SERVER_TOKEN", "true")]).expect_err("true");
        assert!(
            old_true
                .to_string()
                .contains("PASSTHROUGH_SERVER_TOKEN_SCOPE"),
            "{old_true}"
        );
    }

    #[test]
    fn the_webhook_secret_is_read_but_never_shown() {
        let s = Settings::load(&SettingsSource::from_vars([(
            "GITHUB_WEBHOOK_SECRET",
            "hush-hush-123",
        )]))
        .expect("loads");
        assert_eq!(
            s.github_webhook_secret.as_ref().map(|s| s.expose_secret()),
            Some("hush-hush-123")
        );
        assert!(!format!("{s:?}").contains("hush-hush-123"));
        let blank = Settings::load(&SettingsSource::from_vars([(
            "GITHUB_WEBHOOK_SECRET",
            "  ",
        )]))
        .expect_err("blank");
        assert!(
            blank.to_string().contains("GITHUB_WEBHOOK_SECRET"),
            "{blank}"
        );
        assert!(!blank.to_string().contains("  "), "{blank}");
    }

    #[test]
    fn the_status_allow_list_matches_peers_by_network() {
        let allow = |value: &str| {
            Settings::load(&SettingsSource::from_vars([("STATUS_PAGE_ALLOW", value)]))
                .expect("loads")
                .status_allow_list()
                .expect("validated")
        };
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("an address"));
        // Unset or blank (compose's unset): everyone, even an unknown peer.
        let everyone = Settings::load(&SettingsSource::from_vars([("PORT", "1")]))
            .expect("loads")
            .status_allow_list()
            .expect("valid");
        assert!(everyone.allows_everyone() && everyone.allows(None));
        assert!(allow("  ").allows(ip("203.0.113.9")));

        let list = allow(" 127.0.0.1/32, 10.0.0.0/8 ,::1/128,2001:db8::/32");
        assert!(!list.allows_everyone());
        for allowed in [
            "127.0.0.1",
            "10.255.0.1",
            "::1",
            "2001:db8::7",
            "::ffff:10.1.2.3",
        ] {
            assert!(list.allows(ip(allowed)), "{allowed}");
        }
        for refused in [
            "127.0.0.2",
            "11.0.0.1",
            "::2",
            "2001:db9::1",
            "::ffff:11.0.0.1",
        ] {
            assert!(!list.allows(ip(refused)), "{refused}");
        }
        assert!(!list.allows(None), "an unknown peer is refused");
        // Host bits are dropped: the prefix decides the width.
        assert!(allow("10.1.2.3/8").allows(ip("10.200.0.1")));
        // STATUS_PAGE=off wins; the list is still checked.
        let off = Settings::load(&SettingsSource::from_vars([
            ("STATUS_PAGE", "off"),
            ("STATUS_PAGE_ALLOW", "10.0.0.0/8"),
        ]))
        .expect("off with a list");
        assert!(!off.status_page_enabled());
        let bad = Settings::load(&SettingsSource::from_vars([
            ("STATUS_PAGE", "off"),
            ("STATUS_PAGE_ALLOW", "10.0.0.0/8,,::1/128"),
        ]))
        .expect_err("a blank entry");
        assert!(bad.to_string().contains("STATUS_PAGE_ALLOW"), "{bad}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("PORT", "99999"),
            ("PUBLIC_URL", "not a url"),
            ("PASSTHROUGH_USE_SERVER_TOKEN", "maybe"),
            ("PASSTHROUGH_USE_SERVER_TOKEN", "true"),
            ("PASSTHROUGH_SERVER_TOKEN_SCOPE", "everything"),
            ("CACHE_MAX_BYTES", "0"),
            ("CACHE_MAX_ENTRIES", "-1"),
            ("CACHE_TTL_SECS", "soon"),
            ("WORKERS", "0"),
            ("MAX_UPSTREAM_FETCHES", "0"),
            ("MAX_CONNECTIONS", "lots"),
            ("CLIENT_RATE_LIMIT_PER_SEC", "1.5"),
            ("WEBHOOK_DELIVERY_WINDOW_SECS", "0"),
            ("WEBHOOK_MAX_BODY_BYTES", "big"),
            ("STATUS_PAGE_ALLOW", "10.0.0.0/33"),
            ("STATUS_PAGE_ALLOW", "127.0.0.1"),
            ("STATUS_PAGE_ALLOW", "localhost/8"),
        ] {
            let err = Settings::load(&SettingsSource::from_vars([(name, value)])).expect_err(name);
            let msg = err.to_string();
            assert!(msg.contains(name) && msg.contains(value), "{msg}");
        }
    }
}

/// Property tests: any value in any variable is either used or refused with its name.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    const VARIABLES: &[&str] = &[
        "REDIS_URL",
        "GITHUB_API_URL",
        "GITHUB_ORG",
        "REFRESH_INTERVAL_SECS",
        "PORT",
        "PUBLIC_URL",
        "KEY_PREFIX",
        "CACHED_ENDPOINTS",
        "PASSTHROUGH_USE_SERVER_TOKEN",
        "PASSTHROUGH_SERVER_TOKEN_SCOPE",
        "CACHE_MAX_BYTES",
        "CACHE_MAX_ENTRIES",
        "CACHE_TTL_SECS",
        "WORKERS",
        "CLIENT_RATE_LIMIT_PER_SEC",
        "MAX_UPSTREAM_FETCHES",
        "MAX_CONNECTIONS",
        "SHUTDOWN_TIMEOUT_SECS",
        "STATUS_PAGE_ALLOW",
    ];
    const TOKEN: &str = "ghp_fuzzTokenNeverEchoed";

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "-?[0-9]{1,25}(\\.[0-9])?",
            "(redis|http|https|ftp)://[a-z0-9.:@/{}?-]{0,20}",
            "[a-zA-Z{}/ ,.-]{0,20}",
            // Address lists (STATUS_PAGE_ALLOW).
            "[0-9a-f:./, ]{0,30}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_value_is_used_or_refused_naming_the_variable(
            index in 0..VARIABLES.len(),
            value in value(),
        ) {
            let name = VARIABLES[index];
            let source = SettingsSource::from_vars([(name, value.as_str()), ("GITHUB_API_TOKEN", TOKEN)]);
            if let Err(e) = Settings::load(&source) {
                let message = e.to_string();
                prop_assert!(message.contains(name), "{}={:?}: {}", name, value, message);
                prop_assert!(!message.contains(TOKEN), "{}", message);
            }
        }
    }
}
