//! `GET /metrics`: the Prometheus scrape. Counters and histograms are recorded where things
//! happen (request log, pass-through cache, upstream client, rate limiter); the gauges that
//! describe current state (cache size, served versions and their age, Redis reachability) are
//! sampled here, at scrape time.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use hubcache_shared::metrics::{CONTENT_TYPE, age_seconds};

use crate::app_state::AppState;
use crate::client_rate_limit::RATE_LIMITED_METRIC;
use crate::coalescing_cache::{EVICTIONS_METRIC, LOOKUPS_METRIC};
use crate::passthrough::UPSTREAM_METRIC;
use crate::request_log::{DURATION_METRIC, REQUESTS_METRIC};

/// `hubcache_passthrough_cache_entries`: entries in the pass-through cache.
const CACHE_ENTRIES_METRIC: &str = "hubcache_passthrough_cache_entries";
/// `hubcache_passthrough_cache_bytes`: bytes held by the pass-through cache.
const CACHE_BYTES_METRIC: &str = "hubcache_passthrough_cache_bytes";
/// `hubcache_served_snapshot_version{path}`.
const SNAPSHOT_VERSION_METRIC: &str = "hubcache_served_snapshot_version";
/// `hubcache_served_snapshot_age_seconds{path}`.
const SNAPSHOT_AGE_METRIC: &str = "hubcache_served_snapshot_age_seconds";
/// `hubcache_served_views_version`.
const VIEWS_VERSION_METRIC: &str = "hubcache_served_views_version";
/// `hubcache_redis_reachable`.
const REDIS_REACHABLE_METRIC: &str = "hubcache_redis_reachable";

/// The Prometheus text exposition of this gateway process.
pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let stats = state.pass_through.stats();
    ::metrics::gauge!(CACHE_ENTRIES_METRIC).set(stats.cache.entries as f64);
    ::metrics::gauge!(CACHE_BYTES_METRIC).set(stats.cache.bytes as f64);
    for path in state.served.cached_paths() {
        if let Some(snapshot) = state.served.snapshot(path) {
            // Label values are the configured cached paths: a fixed, small set.
            ::metrics::gauge!(SNAPSHOT_VERSION_METRIC, "path" => path.clone())
                .set(snapshot.version as f64);
            ::metrics::gauge!(SNAPSHOT_AGE_METRIC, "path" => path.clone())
                .set(age_seconds(snapshot.fetched_at_ms));
        }
    }
    if let Some(views) = state.served.views() {
        ::metrics::gauge!(VIEWS_VERSION_METRIC).set(views.version as f64);
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
        "Version of the snapshot this gateway serves, by cached path."
    );
    describe_gauge!(
        SNAPSHOT_AGE_METRIC,
        Unit::Seconds,
        "Time since the fetcher fetched the content this gateway serves, by cached path."
    );
    describe_gauge!(
        VIEWS_VERSION_METRIC,
        "Repos snapshot version of the views this gateway serves."
    );
    describe_gauge!(
        REDIS_REACHABLE_METRIC,
        "1 while this gateway follows the Redis streams, 0 while it serves possibly stale copies."
    );
}
