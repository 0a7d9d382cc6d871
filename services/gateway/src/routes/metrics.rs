//! `GET /metrics`: the Prometheus scrape. Counters and histograms are recorded where things
//! happen (request log, pass-through cache, upstream client, rate limiter); the gauges that
//! describe current state (cache size, served versions and their age, each org's state and
//! memory, Redis reachability) are sampled here, at scrape time.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use hubcache_shared::metrics::{CONTENT_TYPE, age_seconds};

use crate::app_state::AppState;
use crate::client_rate_limit::RATE_LIMITED_METRIC;
use crate::coalescing_cache::{EVICTIONS_METRIC, LOOKUPS_METRIC};
use crate::fleet_cache::FLEET_METRIC;
use crate::passthrough::{BUDGET_KINDS, PAUSED_METRIC, REFUSALS_METRIC, UPSTREAM_METRIC};
use crate::request_log::{DURATION_METRIC, REQUESTS_METRIC};
use crate::served_state::OrgState;

/// `hubcache_passthrough_cache_entries`: entries in the pass-through cache.
const CACHE_ENTRIES_METRIC: &str = "hubcache_passthrough_cache_entries";
/// `hubcache_passthrough_cache_bytes`: bytes held by the pass-through cache.
const CACHE_BYTES_METRIC: &str = "hubcache_passthrough_cache_bytes";
/// `hubcache_served_snapshot_version{org,path}`.
const SNAPSHOT_VERSION_METRIC: &str = "hubcache_served_snapshot_version";
/// `hubcache_served_snapshot_age_seconds{org,path}`.
const SNAPSHOT_AGE_METRIC: &str = "hubcache_served_snapshot_age_seconds";
/// `hubcache_served_views_version{org}`.
const VIEWS_VERSION_METRIC: &str = "hubcache_served_views_version";
/// `hubcache_gateway_org_state{org,state}`: 1 for the org's current state, 0 for the others.
const ORG_STATE_METRIC: &str = "hubcache_gateway_org_state";
/// `hubcache_gateway_org_served_bytes{org}`: memory held by the org's served copies.
const ORG_BYTES_METRIC: &str = "hubcache_gateway_org_served_bytes";
/// `hubcache_redis_reachable`.
const REDIS_REACHABLE_METRIC: &str = "hubcache_redis_reachable";

/// The Prometheus text exposition of this gateway process.
pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let stats = state.pass_through.stats();
    ::metrics::gauge!(CACHE_ENTRIES_METRIC).set(stats.cache.entries as f64);
    ::metrics::gauge!(CACHE_BYTES_METRIC).set(stats.cache.bytes as f64);
    // Labelled by partition kind only: never a credential, its hash or anything naming a client.
    let paused = state.pass_through.paused_budgets();
    for kind in BUDGET_KINDS {
        let count = paused.iter().filter(|p| p.kind == kind).count();
        ::metrics::gauge!(PAUSED_METRIC, "partition_kind" => kind).set(count as f64);
    }
    // Label values are the configured orgs and cached paths: a fixed set.
    for org in state.served.orgs() {
        let login = org.login().to_owned();
        for path in org.cached_paths() {
            if let Some(snapshot) = org.snapshot(path) {
                let labels = [("org", login.clone()), ("path", path.clone())];
                ::metrics::gauge!(SNAPSHOT_VERSION_METRIC, &labels).set(snapshot.version as f64);
                ::metrics::gauge!(SNAPSHOT_AGE_METRIC, &labels)
                    .set(age_seconds(snapshot.fetched_at_ms));
            }
        }
        if let Some(views) = org.views() {
            ::metrics::gauge!(VIEWS_VERSION_METRIC, "org" => login.clone())
                .set(views.version as f64);
        }
        let current = org.state();
        for candidate in OrgState::ALL {
            let value = if candidate == current { 1.0 } else { 0.0 };
            ::metrics::gauge!(ORG_STATE_METRIC, "org" => login.clone(), "state" => candidate.as_str())
                .set(value);
        }
        ::metrics::gauge!(ORG_BYTES_METRIC, "org" => login).set(org.held_bytes() as f64);
    }
    ::metrics::gauge!(REDIS_REACHABLE_METRIC).set(if state.served.is_stale() { 0.0 } else { 1.0 });
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, CONTENT_TYPE))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(state.metrics.render())
}

/// Registers the HELP text of every gateway metric (promtool and Prometheus's UI show it; a
/// metric without HELP fails `promtool check metrics`). Call once, after the recorder exists.
pub(crate) fn describe() {
    use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        REQUESTS_METRIC,
        "HTTP requests answered, by route template (`passthrough` for every other path), method and status."
    );
    describe_histogram!(
        DURATION_METRIC,
        Unit::Seconds,
        "Time to answer an HTTP request (to the response head), by route template and method."
    );
    describe_counter!(
        LOOKUPS_METRIC,
        "Pass-through cache lookups by result: hit, miss, coalesced, stale, revalidated, fetch_error, bypass."
    );
    describe_counter!(
        FLEET_METRIC,
        "What the fleet cache (L2, shared by all gateway replicas in Redis) did, by event: hit (fresh L2 entry), lead (this replica fetched upstream for the fleet), waiter (waited for another replica's fetch), takeover (a waiter took an expired lock), stale (an expired L2 entry served), unavailable (Redis down or slow: L1 only), damaged (an unreadable entry, deleted), too_large (kept L1-only)."
    );
    describe_counter!(
        EVICTIONS_METRIC,
        "Pass-through cache entries evicted to stay within CACHE_MAX_ENTRIES / CACHE_MAX_BYTES."
    );
    describe_gauge!(CACHE_ENTRIES_METRIC, "Entries in the pass-through cache.");
    describe_gauge!(
        CACHE_BYTES_METRIC,
        Unit::Bytes,
        "Bytes held by the pass-through cache."
    );
    describe_counter!(
        UPSTREAM_METRIC,
        "Requests the pass-through sent to GitHub, by response status (`error`: no response)."
    );
    describe_gauge!(
        PAUSED_METRIC,
        "Credential partitions (by kind: server, client, anonymous) whose GitHub rate limit is spent: no upstream request with them until it lifts."
    );
    describe_counter!(
        REFUSALS_METRIC,
        "Pass-through fetches answered without going upstream (a cached copy or 503 + Retry-After) because their credential partition's budget is paused, by partition kind."
    );
    describe_counter!(
        RATE_LIMITED_METRIC,
        "Requests refused with 429 by the per-client rate limit."
    );
    describe_counter!(
        super::SERVED_COPY_METRIC,
        "Answers from the in-process copies of cached keys and views (`stale` while Redis is unreachable)."
    );
    describe_gauge!(
        SNAPSHOT_VERSION_METRIC,
        "Version of the snapshot this gateway serves, by org and cached path."
    );
    describe_gauge!(
        SNAPSHOT_AGE_METRIC,
        Unit::Seconds,
        "Time since the fetcher fetched the content this gateway serves, by org and cached path."
    );
    describe_gauge!(
        VIEWS_VERSION_METRIC,
        "Repos snapshot version of the views this gateway serves, by org."
    );
    describe_gauge!(
        ORG_STATE_METRIC,
        "1 for each configured org's current state (ready: everything served; loading: something not loaded yet, keeping the gateway unready; unknown_org: GitHub answered 404 for the org, reported but not awaited; installation_revoked: GitHub refuses the App's installation on the org, reported but not awaited), 0 for the other states."
    );
    describe_gauge!(
        ORG_BYTES_METRIC,
        Unit::Bytes,
        "Memory held by each org's served copies: snapshot bodies with their gzip and brotli copies, element indexes, rendered pages, rendered views and slices."
    );
    describe_gauge!(
        REDIS_REACHABLE_METRIC,
        "1 while this gateway follows every org's Redis streams, 0 while it serves possibly stale copies."
    );
}
