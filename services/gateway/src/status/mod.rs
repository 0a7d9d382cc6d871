//! The operator's status page (`GET /status`, HTML) and its data (`GET /status.json`): per org,
//! the versions served and their ages against the refresh interval, the fetcher's latest poll
//! of each endpoint and its rate-limit budget; for this process, traffic, hit ratios by tier,
//! upstream requests, coalesced waiters, shed requests and webhook deliveries; and a
//! red/amber/green verdict with its reasons.
//!
//! - `report`: the data and the verdict rules.
//! - `history`: the bounded ring of counter samples behind the rates and the sparkline.
//! - `page`: the self-contained HTML (escaped text, inline CSS and one small script allowed by
//!   hash in a strict Content-Security-Policy).
//!
//! Sources, all already in the process: the served copies and the fetcher's snapshot statuses
//! (read from Redis by the stream listeners), the pass-through and fleet cache counters, the
//! request log's count, the client rate limiter's refusals, the webhook intake's counters.
//! The fetcher's budget comes from the statuses it writes (`SnapshotStatus::rate_limit`): the
//! gateway never sees its requests.

pub(crate) mod history;
pub(crate) mod page;
pub(crate) mod report;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use hubcache_shared::CachedEndpoint;
use hubcache_shared::shutdown::CancellationToken;
use hubcache_shared::snapshot::now_ms;
use parking_lot::Mutex;

use crate::app_state::AppState;
use crate::client_rate_limit::ClientRateLimiter;
use crate::request_log::RequestMetrics;
use crate::served_state::OrgServed;
use crate::webhook_intake::WebhookStats;
use history::{History, SAMPLE_EVERY, Totals};
use report::{
    EndpointReport, GatewayReport, HitRatios, OrgReport, StatusReport, WebhookReport, verdict,
};

/// What the status routes read: the process's counters, the refresh intervals and the history
/// ring. One per process, shared by every worker.
pub(crate) struct StatusBoard {
    state: web::Data<AppState>,
    requests: web::Data<RequestMetrics>,
    limiter: web::Data<ClientRateLimiter>,
    webhooks: Option<Arc<WebhookStats>>,
    /// Cached path -> its refresh interval.
    intervals: HashMap<String, Duration>,
    history: Mutex<History>,
}

impl StatusBoard {
    /// A board over the process's state, with a first sample taken now (rates are measured
    /// from it until the sampler has recorded more).
    pub(crate) fn new(
        state: web::Data<AppState>,
        requests: web::Data<RequestMetrics>,
        limiter: web::Data<ClientRateLimiter>,
        webhooks: Option<Arc<WebhookStats>>,
        cached: &[CachedEndpoint],
    ) -> Self {
        let board = Self {
            state,
            requests,
            limiter,
            webhooks,
            intervals: cached
                .iter()
                .map(|e| (e.path.clone(), e.interval))
                .collect(),
            history: Mutex::new(History::default()),
        };
        board.sample();
        board
    }

    /// Records the current totals in the history ring.
    pub(crate) fn sample(&self) {
        let totals = self.totals(now_ms());
        self.history.lock().record(totals);
    }

    /// Samples every [`SAMPLE_EVERY`] until `stop`.
    pub(crate) async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => self.sample(),
            }
        }
    }

    /// This process's counters now.
    fn totals(&self, at_ms: u64) -> Totals {
        let stats = self.state.pass_through.stats();
        let cache = stats.cache;
        let fleet = stats.fleet.unwrap_or_default();
        let (copy_answered, copy_unavailable) = self
            .state
            .served
            .orgs()
            .iter()
            .map(|org| org.answer_counts())
            .fold((0, 0), |(a, u), (a2, u2)| (a + a2, u + u2));
        Totals {
            at_ms,
            requests: self.requests.answered(),
            copy_answered,
            copy_unavailable,
            l1_hits: cache.hits + cache.stale,
            l1_lookups: cache.hits + cache.stale + cache.misses + cache.coalesced,
            l2_hits: fleet.hit + fleet.stale,
            l2_lookups: fleet.hit + fleet.stale + fleet.lead + fleet.waiter,
            upstream: stats.upstream_requests,
            coalesced: cache.coalesced + fleet.waiter,
            shed: self.limiter.refused() + cache.overloaded,
            webhooks_rejected: self.webhooks.as_ref().map_or(0, |w| w.view().rejected),
        }
    }

    /// The whole status now.
    pub(crate) fn report(&self) -> StatusReport {
        let now = now_ms();
        let current = self.totals(now);
        let (base, rates) = {
            let history = self.history.lock();
            (history.base(now), history.request_rates())
        };
        let window = current.since(&base.unwrap_or(current));
        let ratio = |hits: u64, lookups: u64| (lookups > 0).then(|| hits as f64 / lookups as f64);
        let copy_lookups = window.copy_answered + window.copy_unavailable;
        let gateway = GatewayReport {
            redis: if self.state.served.is_stale() {
                "unreachable"
            } else {
                "reachable"
            },
            requests_total: current.requests,
            requests_per_sec: window.per_sec(),
            window_secs: window.at_ms / 1000,
            hit_ratio: HitRatios {
                l1: ratio(window.l1_hits, window.l1_lookups),
                l2: ratio(window.l2_hits, window.l2_lookups),
                cached_keys: ratio(window.copy_answered, copy_lookups),
            },
            upstream_requests: current.upstream,
            coalesced_waiters: current.coalesced,
            shed_requests: current.shed,
            shed_in_window: window.shed,
            upstream_rate_limit: self.state.pass_through.stats().upstream_rate_limit,
            webhooks: self.webhooks.as_ref().map(|w| {
                let view = w.view();
                WebhookReport {
                    last_delivery_at_ms: view.last_delivery_at_ms,
                    accepted: view.accepted,
                    rejected: view.rejected,
                    rejected_in_window: window.webhooks_rejected,
                }
            }),
            requests_per_sec_history: rates,
            sample_every_secs: SAMPLE_EVERY.as_secs(),
        };
        let orgs: Vec<OrgReport> = self
            .state
            .served
            .orgs()
            .iter()
            .map(|org| self.org_report(org, now))
            .collect();
        StatusReport {
            generated_at_ms: now,
            verdict: verdict(&orgs, &gateway, now),
            orgs,
            gateway,
        }
    }

    /// One org's part of the report.
    fn org_report(&self, org: &OrgServed, now: u64) -> OrgReport {
        let statuses = org.statuses();
        let age = |at_ms: u64| now.saturating_sub(at_ms) / 1000;
        let endpoints = org
            .cached_paths()
            .iter()
            .map(|path| {
                let snapshot = org.snapshot(path);
                let status = statuses.get(path).cloned().unwrap_or_default();
                EndpointReport {
                    path: path.clone(),
                    interval_secs: self.intervals.get(path).map_or(0, Duration::as_secs),
                    version: snapshot.as_ref().map(|s| s.version),
                    content_age_secs: snapshot.as_ref().map(|s| age(s.fetched_at_ms)),
                    confirmed_age_secs: status.last_success_at_ms.map(age),
                    last_success_at_ms: status.last_success_at_ms,
                    last_error_at_ms: status.last_error_at_ms,
                    last_error_reason: status.last_error_reason.clone(),
                    failing: status.failing().is_some(),
                    last_error: status.last_error,
                }
            })
            .collect();
        OrgReport {
            org: org.login().to_owned(),
            state: org.state().as_str(),
            views_version: org.views().map(|v| v.version),
            endpoints,
            fetcher_rate_limit: statuses
                .values()
                .filter_map(|s| s.rate_limit)
                .max_by_key(|rl| rl.seen_at_ms),
        }
    }
}
