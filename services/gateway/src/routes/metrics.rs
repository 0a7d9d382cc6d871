//! `GET /metrics`: the Prometheus scrape. Counters and histograms are recorded where things
//! happen (request log, pass-through cache, upstream client, rate limiter); the gauges that
//! describe current state (cache size, served versions and their age, Redis reachability) are
//! sampled here, at scrape time.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use hubcache_shared::metrics::{CONTENT_TYPE, age_seconds};

use crate::startup::AppState;

/// The Prometheus text exposition of this gateway process.
pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let stats = state.pass_through.stats();
    ::metrics::gauge!("hubcache_passthrough_cache_entries").set(stats.cache.entries as f64);
    ::metrics::gauge!("hubcache_passthrough_cache_bytes").set(stats.cache.bytes as f64);
    for path in state.served.cached_paths() {
        if let Some(snapshot) = state.served.snapshot(path) {
            // Label values are the configured cached paths: a fixed, small set.
            ::metrics::gauge!("hubcache_served_snapshot_version", "path" => path.clone())
                .set(snapshot.version as f64);
            ::metrics::gauge!("hubcache_served_snapshot_age_seconds", "path" => path.clone())
                .set(age_seconds(snapshot.fetched_at_ms));
        }
    }
    if let Some(views) = state.served.views() {
        ::metrics::gauge!("hubcache_served_views_version").set(views.version as f64);
    }
    ::metrics::gauge!("hubcache_redis_reachable").set(if state.served.is_stale() {
        0.0
    } else {
        1.0
    });
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
        "hubcache_http_requests_total",
        "HTTP requests answered, by route template (`passthrough` for every other path), method and status."
    );
    describe_histogram!(
        "hubcache_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request (to the response head), by route template and method."
    );
    describe_counter!(
        "hubcache_passthrough_cache_lookups_total",
        "Pass-through cache lookups by result: hit, miss, coalesced, stale, revalidated, fetch_error, bypass."
    );
    describe_counter!(
        "hubcache_passthrough_fleet_total",
        "What the fleet cache (L2, shared by all gateway replicas in Redis) did, by event: hit (fresh L2 entry), lead (this replica fetched upstream for the fleet), waiter (waited for another replica's fetch), takeover (a waiter took an expired lock), stale (an expired L2 entry served), unavailable (Redis down or slow: L1 only), damaged (an unreadable entry, deleted), too_large (kept L1-only)."
    );
    describe_counter!(
        "hubcache_passthrough_cache_evictions_total",
        "Pass-through cache entries evicted to stay within CACHE_MAX_ENTRIES / CACHE_MAX_BYTES."
    );
    describe_gauge!(
        "hubcache_passthrough_cache_entries",
        "Entries in the pass-through cache."
    );
    describe_gauge!(
        "hubcache_passthrough_cache_bytes",
        Unit::Bytes,
        "Bytes held by the pass-through cache."
    );
    describe_counter!(
        "hubcache_upstream_requests_total",
        "Requests the pass-through sent to GitHub, by response status (`error`: no response)."
    );
    describe_counter!(
        "hubcache_client_rate_limited_total",
        "Requests refused with 429 by the per-client rate limit."
    );
    describe_counter!(
        "hubcache_served_copy_responses_total",
        "Answers from the in-process copies of cached keys and views (`stale` while Redis is unreachable)."
    );
    describe_gauge!(
        "hubcache_served_snapshot_version",
        "Version of the snapshot this gateway serves, by cached path."
    );
    describe_gauge!(
        "hubcache_served_snapshot_age_seconds",
        Unit::Seconds,
        "Time since the fetcher fetched the content this gateway serves, by cached path."
    );
    describe_gauge!(
        "hubcache_served_views_version",
        "Repos snapshot version of the views this gateway serves."
    );
    describe_gauge!(
        "hubcache_redis_reachable",
        "1 while this gateway follows the Redis streams, 0 while it serves possibly stale copies."
    );
}
