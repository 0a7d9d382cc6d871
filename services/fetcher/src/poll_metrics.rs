//! The fetcher's Prometheus metrics: their names, HELP texts, and what one poll records.
//!
//! Endpoint labels are configured paths (unique across orgs, a small fixed set); org labels
//! are configured logins.

use std::time::Duration;

use hubcache_shared::snapshot::now_ms;

use crate::poller::PollOutcome;

/// `hubcache_fetcher_lease_held{org}`: 1 while this process holds the org's polling lease.
pub(crate) const LEASE_HELD_METRIC: &str = "hubcache_fetcher_lease_held";

/// `hubcache_fetcher_orgs_held`: how many orgs' leases this process holds (polls) now.
pub(crate) const ORGS_HELD_METRIC: &str = "hubcache_fetcher_orgs_held";

/// `hubcache_fetcher_poll_errors_total{endpoint, reason}`: failed polls by `PollError::kind`.
const POLL_ERRORS_METRIC: &str = "hubcache_fetcher_poll_errors_total";
/// `hubcache_fetcher_endpoint_failing{endpoint}`: 1 while the latest poll failed.
const ENDPOINT_FAILING_METRIC: &str = "hubcache_fetcher_endpoint_failing";

/// Registers the HELP text of every fetcher metric (a metric without HELP fails
/// `promtool check metrics`). Call once, after the recorder exists.
pub(crate) fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        LEASE_HELD_METRIC,
        "1 while this fetcher holds the org's polling lease, by org (exactly one fetcher holds each)."
    );
    describe_gauge!(
        ORGS_HELD_METRIC,
        "How many orgs' polling leases this fetcher holds (the replicas share the orgs out)."
    );
    describe_counter!(
        "hubcache_fetcher_polls_total",
        "Polls of a cached endpoint, by endpoint and outcome (changed, unchanged, error)."
    );
    describe_counter!(
        POLL_ERRORS_METRIC,
        "Failed polls, by endpoint and reason (not_found: GitHub answered 404, e.g. an unknown org; rate_limited, status, transport, refused_link, ...); the full error is in the endpoint's status and /healthcheck."
    );
    describe_gauge!(
        ENDPOINT_FAILING_METRIC,
        "1 while the latest poll of an endpoint failed (stuck: see poll_errors_total's reason), 0 once one succeeds."
    );
    hubcache_shared::github::describe_metrics();
    describe_histogram!(
        "hubcache_fetcher_poll_duration_seconds",
        Unit::Seconds,
        "Time one poll of an endpoint took (all pages), by endpoint."
    );
    describe_gauge!(
        "hubcache_fetcher_last_success_timestamp_seconds",
        Unit::Seconds,
        "Unix time of the last successful poll, by endpoint (freshness: time() - this)."
    );
    describe_gauge!(
        "hubcache_snapshot_fetched_timestamp_seconds",
        Unit::Seconds,
        "Unix time the stored snapshot's content was fetched, by endpoint (age: time() - this)."
    );
    describe_counter!(
        "hubcache_fetcher_webhook_hints_total",
        "Webhook hints read from the hints stream, by outcome (posted: names a cached endpoint; \
         not_cached: names none of its org's; other_org: names an org not configured)."
    );
    describe_counter!(
        "hubcache_fetcher_webhook_hints_deferred_total",
        "Times webhook hints were held to the stretched interval because the rate-limit budget \
         was low."
    );
    describe_histogram!(
        "hubcache_fetcher_hint_to_snapshot_seconds",
        Unit::Seconds,
        "From the gateway receiving a webhook delivery to the changed snapshot being stored."
    );
    describe_gauge!(
        "hubcache_github_rate_limit_remaining",
        "GitHub rate-limit requests left in the current window, as last reported."
    );
    describe_gauge!(
        "hubcache_github_rate_limit_used",
        "GitHub rate-limit requests spent in the current window, as last reported."
    );
    describe_gauge!(
        "hubcache_github_rate_limit_limit",
        "GitHub rate-limit requests allowed per window, as last reported."
    );
    describe_gauge!(
        "hubcache_github_rate_limit_reset_timestamp_seconds",
        Unit::Seconds,
        "Unix time the GitHub rate-limit window resets, as last reported."
    );
}

/// `hubcache_snapshot_fetched_timestamp_seconds{endpoint}`: when the stored snapshot's content
/// was fetched (its age is `time() - x`; it changes only when the content does).
pub(crate) fn record_snapshot_fetched(path: &str, fetched_at_ms: u64) {
    metrics::gauge!("hubcache_snapshot_fetched_timestamp_seconds", "endpoint" => path.to_owned())
        .set(fetched_at_ms as f64 / 1000.0);
}

/// Records one poll's metrics: its outcome and duration by endpoint (a configured path: a
/// small fixed label set), the last success time, and GitHub's rate-limit budget as last seen.
pub(crate) fn record_poll(
    org: &str,
    path: &str,
    outcome: &PollOutcome,
    elapsed: Duration,
    rate_limit: Option<hubcache_shared::RateLimit>,
) {
    let endpoint = path.to_owned();
    let outcome = match outcome {
        PollOutcome::Changed { .. } => "changed",
        PollOutcome::Unchanged { .. } => "unchanged",
        PollOutcome::Failed(error) => {
            metrics::counter!(POLL_ERRORS_METRIC, "endpoint" => endpoint.clone(), "reason" => error.kind())
                .increment(1);
            "error"
        }
    };
    metrics::gauge!(ENDPOINT_FAILING_METRIC, "endpoint" => endpoint.clone())
        .set(if outcome == "error" { 1.0 } else { 0.0 });
    // Polling means leading: re-assert it (the gauge stays right even if it was reset).
    metrics::gauge!(LEASE_HELD_METRIC, "org" => org.to_owned()).set(1.0);
    metrics::counter!("hubcache_fetcher_polls_total", "endpoint" => endpoint.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("hubcache_fetcher_poll_duration_seconds", "endpoint" => endpoint.clone())
        .record(elapsed.as_secs_f64());
    if outcome != "error" {
        // A timestamp rather than an age: Prometheus computes `time() - x` at query time, and
        // the value stays right between polls.
        metrics::gauge!("hubcache_fetcher_last_success_timestamp_seconds", "endpoint" => endpoint)
            .set(now_ms() as f64 / 1000.0);
    }
    if let Some(limit) = rate_limit {
        metrics::gauge!("hubcache_github_rate_limit_remaining").set(limit.remaining as f64);
        metrics::gauge!("hubcache_github_rate_limit_used").set(limit.used as f64);
        metrics::gauge!("hubcache_github_rate_limit_limit").set(limit.limit as f64);
        metrics::gauge!("hubcache_github_rate_limit_reset_timestamp_seconds")
            .set(limit.reset_epoch_secs as f64);
    }
}
