//! What `/status.json` carries (and `/status` renders), and the red/amber/green verdict drawn
//! from it. Plain data, built by `status::StatusBoard::report`; the verdict is a pure function
//! of it, so every rule is tested without a server.
//!
//! Nothing here is a credential: no token, no token hash, no webhook secret, no client address.

use hubcache_shared::SeenRateLimit;
use hubcache_shared::github::REASON_INSTALLATION_REVOKED;
use serde::Serialize;

/// An endpoint last confirmed longer ago than this many refresh intervals (plus
/// [`GRACE_SECS`]) is late: amber.
pub(crate) const LATE_INTERVALS: u64 = 3;
/// Slack added to the lateness bound: a poll takes time, and the fetcher's lease moves.
pub(crate) const GRACE_SECS: u64 = 10;
/// A fetcher budget below this fraction of its limit is amber.
pub(crate) const LOW_BUDGET_FRACTION: f64 = 0.1;

/// The whole status.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatusReport {
    /// When the report was made, Unix milliseconds.
    pub(crate) generated_at_ms: u64,
    /// Red, amber or green, with the reasons when not green.
    pub(crate) verdict: Verdict,
    /// Each configured org, first one first.
    pub(crate) orgs: Vec<OrgReport>,
    /// This gateway process.
    pub(crate) gateway: GatewayReport,
}

/// One organisation as the gateway serves it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OrgReport {
    /// The login as configured (from the operator, shown escaped all the same).
    pub(crate) org: String,
    /// `ready`, `loading` or `unknown_org`.
    pub(crate) state: &'static str,
    /// The views' version (the repos snapshot version they were computed from), once loaded.
    pub(crate) views_version: Option<u64>,
    /// Each cached endpoint of the org.
    pub(crate) endpoints: Vec<EndpointReport>,
    /// The fetcher's rate-limit budget, as recorded in the newest status of the org's
    /// endpoints (one credential: every org shows the same budget, seen at its own time).
    pub(crate) fetcher_rate_limit: Option<SeenRateLimit>,
}

/// One cached endpoint: the version served and the fetcher's latest poll.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EndpointReport {
    /// The GitHub path.
    pub(crate) path: String,
    /// The refresh interval configured for it, seconds.
    pub(crate) interval_secs: u64,
    /// The version served, once loaded.
    pub(crate) version: Option<u64>,
    /// Seconds since the served content was fetched (it changed then).
    pub(crate) content_age_secs: Option<u64>,
    /// Seconds since GitHub last confirmed it (the fetcher's last successful poll).
    pub(crate) confirmed_age_secs: Option<u64>,
    /// The fetcher's last successful poll, Unix milliseconds.
    pub(crate) last_success_at_ms: Option<u64>,
    /// The fetcher's last failed poll: when, why (its fixed reason set) and the error text
    /// (from outside: GitHub's words and targets; shown escaped).
    pub(crate) last_error_at_ms: Option<u64>,
    /// The kind of the last failure (`status`, `transport`, `not_found`...).
    pub(crate) last_error_reason: Option<String>,
    /// The last failure's text.
    pub(crate) last_error: Option<String>,
    /// True when the latest poll failed (no success since).
    pub(crate) failing: bool,
}

/// This gateway process: traffic, caches and what it protects.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GatewayReport {
    /// Whether every org's stream listener reaches Redis.
    pub(crate) redis: &'static str,
    /// Requests answered since start.
    pub(crate) requests_total: u64,
    /// Requests per second over the last [`super::history::RATE_WINDOW`] (or since start).
    pub(crate) requests_per_sec: f64,
    /// The seconds the rates cover.
    pub(crate) window_secs: u64,
    /// Hit ratios by tier over the window (`None`: no lookup in it).
    pub(crate) hit_ratio: HitRatios,
    /// Requests the pass-through sent to GitHub since start.
    pub(crate) upstream_requests: u64,
    /// Lookups that waited for a fetch in flight since start (L1 coalesced + fleet waiters).
    pub(crate) coalesced_waiters: u64,
    /// Requests shed since start (client rate limit 429s + upstream fetch cap 503s).
    pub(crate) shed_requests: u64,
    /// Requests shed in the window.
    pub(crate) shed_in_window: u64,
    /// GitHub's rate-limit headers on the latest pass-through answer (the gateway's own
    /// credential), if one came.
    pub(crate) upstream_rate_limit: Option<SeenRateLimit>,
    /// This process's webhook deliveries; `None` when webhooks are off.
    pub(crate) webhooks: Option<WebhookReport>,
    /// Requests per second between consecutive samples, oldest first (the sparkline).
    pub(crate) requests_per_sec_history: Vec<f64>,
    /// Seconds between two history samples.
    pub(crate) sample_every_secs: u64,
}

/// Hit ratios (0..=1) by tier.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct HitRatios {
    /// Pass-through lookups answered by the in-process cache.
    pub(crate) l1: Option<f64>,
    /// L1 misses answered by the fleet cache in Redis.
    pub(crate) l2: Option<f64>,
    /// Requests for cached keys and views answered from the copies (not 503).
    pub(crate) cached_keys: Option<f64>,
}

/// This process's webhook intake (webhooks name an org, but the counters are per process).
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct WebhookReport {
    /// The last verified delivery, Unix milliseconds.
    pub(crate) last_delivery_at_ms: Option<u64>,
    /// Deliveries handed to the fetcher since start.
    pub(crate) accepted: u64,
    /// Deliveries refused since start.
    pub(crate) rejected: u64,
    /// Deliveries refused in the window.
    pub(crate) rejected_in_window: u64,
}

/// The traffic light.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Level {
    /// Everything served, fresh and confirmed.
    Green,
    /// Served, but something needs a look (a failing poll, a late endpoint, a low budget...).
    Amber,
    /// Not serving what it should, or about to stop: act now.
    Red,
}

impl Level {
    /// The JSON and CSS spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::Green => "green",
            Level::Amber => "amber",
            Level::Red => "red",
        }
    }
}

/// The verdict with its reasons (empty when green), worst first.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Verdict {
    /// The worst level found.
    pub(crate) level: Level,
    /// Why it is not green, worst first.
    pub(crate) reasons: Vec<String>,
}

/// Draws the verdict from the orgs and the gateway's figures at `now_ms`.
pub(crate) fn verdict(orgs: &[OrgReport], gateway: &GatewayReport, now_ms: u64) -> Verdict {
    let mut found: Vec<(Level, String)> = Vec::new();
    if gateway.redis != "reachable" {
        found.push((
            Level::Red,
            "Redis unreachable: serving copies that may be outdated".to_owned(),
        ));
    }
    for org in orgs {
        judge_org(org, &mut found);
    }
    if let Some(rl) = orgs
        .iter()
        .filter_map(|o| o.fetcher_rate_limit)
        .max_by_key(|rl| rl.seen_at_ms)
    {
        let reset_in = rl.reset_epoch_secs.saturating_sub(now_ms / 1000);
        if rl.remaining == 0 && reset_in > 0 {
            found.push((
                Level::Red,
                format!("GitHub rate limit spent: polling stops until the reset in {reset_in}s"),
            ));
        } else if (rl.remaining as f64) < rl.limit as f64 * LOW_BUDGET_FRACTION && reset_in > 0 {
            found.push((
                Level::Amber,
                format!(
                    "GitHub rate limit low: {} of {} left, reset in {reset_in}s",
                    rl.remaining, rl.limit
                ),
            ));
        }
    }
    if gateway.shed_in_window > 0 {
        found.push((
            Level::Amber,
            format!(
                "{} requests shed in the last {}s (client rate limit or upstream fetch cap)",
                gateway.shed_in_window, gateway.window_secs
            ),
        ));
    }
    if let Some(webhooks) = &gateway.webhooks
        && webhooks.rejected_in_window > 0
    {
        found.push((
            Level::Amber,
            format!(
                "{} webhook deliveries rejected in the last {}s",
                webhooks.rejected_in_window, gateway.window_secs
            ),
        ));
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    Verdict {
        level: found.first().map_or(Level::Green, |(level, _)| *level),
        reasons: found.into_iter().map(|(_, reason)| reason).collect(),
    }
}

/// One org's findings: red when nothing of it can be served, every poll fails or its App
/// installation is refused, amber for a failing or late endpoint, an org GitHub does not know,
/// or one still loading.
fn judge_org(org: &OrgReport, found: &mut Vec<(Level, String)>) {
    let name = &org.org;
    if org.state == "unknown_org" {
        found.push((
            Level::Amber,
            format!("{name}: GitHub does not know this organisation (404); check GITHUB_ORGS"),
        ));
        return;
    }
    if org.state == REASON_INSTALLATION_REVOKED {
        found.push((
            Level::Red,
            format!(
                "{name}: GitHub refuses the App's installation on this organisation (revoked, \
                 suspended or uninstalled); install the App again: its data is not refreshed"
            ),
        ));
        return;
    }
    let failing: Vec<&EndpointReport> = org.endpoints.iter().filter(|e| e.failing).collect();
    if !org.endpoints.is_empty() && failing.len() == org.endpoints.len() {
        let first = failing[0];
        found.push((
            Level::Red,
            format!(
                "{name}: every endpoint's latest poll failed ({}: {})",
                first.last_error_reason.as_deref().unwrap_or("error"),
                first.last_error.as_deref().unwrap_or("")
            ),
        ));
    } else {
        for endpoint in &failing {
            let level = if endpoint.version.is_none() {
                Level::Red
            } else {
                Level::Amber
            };
            found.push((
                level,
                format!(
                    "{name} {}: latest poll failed ({}: {}){}",
                    endpoint.path,
                    endpoint.last_error_reason.as_deref().unwrap_or("error"),
                    endpoint.last_error.as_deref().unwrap_or(""),
                    if level == Level::Red {
                        "; not loaded"
                    } else {
                        "; the last good copy is served"
                    }
                ),
            ));
        }
    }
    for endpoint in org.endpoints.iter().filter(|e| !e.failing) {
        if endpoint.version.is_none() {
            found.push((
                Level::Amber,
                format!("{name} {}: not loaded yet", endpoint.path),
            ));
        } else if let Some(age) = endpoint.confirmed_age_secs
            && age > endpoint.interval_secs * LATE_INTERVALS + GRACE_SECS
        {
            found.push((
                Level::Amber,
                format!(
                    "{name} {}: last confirmed by GitHub {age}s ago (refresh interval {}s)",
                    endpoint.path, endpoint.interval_secs
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(path: &str) -> EndpointReport {
        EndpointReport {
            path: path.to_owned(),
            interval_secs: 60,
            version: Some(3),
            content_age_secs: Some(5),
            confirmed_age_secs: Some(5),
            last_success_at_ms: Some(1),
            last_error_at_ms: None,
            last_error_reason: None,
            last_error: None,
            failing: false,
        }
    }

    fn failing(mut e: EndpointReport) -> EndpointReport {
        e.failing = true;
        e.last_error_reason = Some("status".to_owned());
        e.last_error = Some("GET /x: 502 Bad Gateway".to_owned());
        e
    }

    fn org(endpoints: Vec<EndpointReport>) -> OrgReport {
        OrgReport {
            org: "acme".to_owned(),
            state: "ready",
            views_version: Some(3),
            endpoints,
            fetcher_rate_limit: None,
        }
    }

    fn gateway() -> GatewayReport {
        GatewayReport {
            redis: "reachable",
            requests_total: 0,
            requests_per_sec: 0.0,
            window_secs: 60,
            hit_ratio: HitRatios {
                l1: None,
                l2: None,
                cached_keys: None,
            },
            upstream_requests: 0,
            coalesced_waiters: 0,
            shed_requests: 0,
            shed_in_window: 0,
            upstream_rate_limit: None,
            webhooks: None,
            requests_per_sec_history: Vec::new(),
            sample_every_secs: 5,
        }
    }

    #[test]
    fn fresh_and_served_is_green() {
        let v = verdict(
            &[org(vec![
                endpoint("/orgs/acme"),
                endpoint("/orgs/acme/repos"),
            ])],
            &gateway(),
            0,
        );
        assert_eq!(v.level, Level::Green);
        assert!(v.reasons.is_empty());
    }

    #[test]
    fn one_failing_endpoint_still_served_is_amber_and_all_failing_is_red() {
        let one = org(vec![
            failing(endpoint("/orgs/acme")),
            endpoint("/orgs/acme/repos"),
        ]);
        let v = verdict(&[one], &gateway(), 0);
        assert_eq!(v.level, Level::Amber);
        assert!(
            v.reasons[0].contains("/orgs/acme: latest poll failed (status: GET /x: 502"),
            "{v:?}"
        );
        let all = org(vec![
            failing(endpoint("/orgs/acme")),
            failing(endpoint("/orgs/acme/repos")),
        ]);
        let v = verdict(&[all], &gateway(), 0);
        assert_eq!(v.level, Level::Red);
        assert!(
            v.reasons[0].starts_with("acme: every endpoint's latest poll failed"),
            "{v:?}"
        );
    }

    #[test]
    fn late_low_budget_shed_and_redis_down_are_reported_worst_first() {
        let mut late = endpoint("/orgs/acme");
        late.confirmed_age_secs = Some(60 * LATE_INTERVALS + GRACE_SECS + 1);
        let mut o = org(vec![late]);
        o.fetcher_rate_limit = Some(SeenRateLimit {
            limit: 5000,
            remaining: 10,
            reset_epoch_secs: 100,
            seen_at_ms: 1,
        });
        let mut g = gateway();
        g.shed_in_window = 3;
        let v = verdict(std::slice::from_ref(&o), &g, 50_000);
        assert_eq!(v.level, Level::Amber);
        assert_eq!(v.reasons.len(), 3, "{v:?}");
        g.redis = "unreachable";
        o.fetcher_rate_limit = o
            .fetcher_rate_limit
            .map(|rl| SeenRateLimit { remaining: 0, ..rl });
        let v = verdict(&[o], &g, 50_000);
        assert_eq!(v.level, Level::Red);
        assert!(v.reasons[0].starts_with("Redis unreachable"), "{v:?}");
        assert!(v.reasons[1].contains("rate limit spent"), "{v:?}");
    }

    #[test]
    fn a_refused_installation_is_red_with_what_to_do() {
        let mut o = org(vec![failing(endpoint("/orgs/beta"))]);
        o.state = REASON_INSTALLATION_REVOKED;
        let v = verdict(&[o], &gateway(), 0);
        assert_eq!(v.level, Level::Red);
        assert!(v.reasons[0].contains("install the App again"), "{v:?}");
    }

    #[test]
    fn an_unknown_org_is_amber_not_red() {
        let mut o = org(vec![failing(endpoint("/orgs/nope"))]);
        o.state = "unknown_org";
        let v = verdict(&[o], &gateway(), 0);
        assert_eq!(v.level, Level::Amber);
        assert!(v.reasons[0].contains("does not know"), "{v:?}");
    }
}
