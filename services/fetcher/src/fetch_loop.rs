//! The fetcher's one long-running task: wait for the lease, then, while holding it, poll the
//! endpoints as they come due and store what changed.
//!
//! Renewal and polling run side by side in the same task; when renewal finds the lease gone,
//! the poll in flight is dropped on the spot (and whatever it might still have written is fenced
//! off by the scripts' lease check). Webhook hints (`hints`) wake the loop and make the endpoints
//! they name due at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hubcache_shared::RedisConnection;
use hubcache_shared::snapshot::now_ms;
use hubcache_shared::telemetry::current_traceparent;
use hubcache_shared::{RefreshEvent, Snapshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::budget::{RateBudget, Stretch};
use crate::hints::HintBoard;
use crate::lease::{Acquire, Lease};
use crate::poller::{PollOutcome, Poller};
use crate::schedule::Schedule;
use crate::snapshot_writer::{Replacement, SnapshotWriter, WriteOutcome};

/// How often to retry a Redis command that failed (the connection reconnects, or finds the new master, meanwhile).
const REDIS_RETRY: Duration = Duration::from_millis(500);

/// The longest a standby waits between looks at the lease: a released lease (graceful shutdown
/// of the holder) is taken over within this time. One cheap Redis command per look.
const FOLLOWER_CHECK: Duration = Duration::from_millis(250);

/// Why leadership ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stepped {
    /// The lease is gone (taken, expired, or a write was fenced off).
    LeaseLost,
    /// Shutdown.
    Cancelled,
}

/// The lease-holding poll loop of one org and everything it owns.
pub(crate) struct FetchLoop {
    /// The org whose endpoints it polls (as configured).
    org: String,
    conn: RedisConnection,
    lease: Lease,
    poller: Poller,
    writer: SnapshotWriter,
    schedule: Schedule,
    budget: RateBudget,
    cache: HashMap<String, Snapshot>,
    hints: Arc<HintBoard>,
}

impl FetchLoop {
    /// A loop over `schedule`'s endpoints, all of `org`.
    pub(crate) fn new(
        org: String,
        conn: RedisConnection,
        lease: Lease,
        poller: Poller,
        writer: SnapshotWriter,
        schedule: Schedule,
        hints: Arc<HintBoard>,
    ) -> Self {
        Self {
            org,
            conn,
            lease,
            poller,
            writer,
            schedule,
            budget: RateBudget::default(),
            cache: HashMap::new(),
            hints,
        }
    }

    /// Runs until `shutdown`; releases the lease on the way out if it holds it.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        let lease_held = metrics::gauge!(LEASE_HELD_METRIC, "org" => self.org.clone());
        lease_held.set(0.0);
        loop {
            let acquired = tokio::select! {
                () = shutdown.cancelled() => return,
                acquired = self.wait_for_lease() => acquired,
            };
            debug_assert!(acquired);
            tracing::info!(instance = %self.lease.instance_id(), "fetcher lease acquired; polling");
            lease_held.set(1.0);
            let stepped = self.lead(&shutdown).await;
            lease_held.set(0.0);
            match stepped {
                Stepped::Cancelled => {
                    self.release().await;
                    return;
                }
                Stepped::LeaseLost => {
                    tracing::warn!(instance = %self.lease.instance_id(), "fetcher lease lost; stopped polling");
                }
            }
        }
    }

    /// Returns once this instance holds the lease. Standbys look again when the holder's lease
    /// would expire, or after [`FOLLOWER_CHECK`] if sooner (a released lease is free at once).
    async fn wait_for_lease(&mut self) -> bool {
        let mut logged_holder = false;
        loop {
            let wait = match self.lease.try_acquire(&mut self.conn).await {
                Ok(Acquire::Held) => return true,
                Ok(Acquire::HeldByOther { holder, expires_in }) => {
                    if !logged_holder {
                        tracing::info!(?holder, "another fetcher holds the lease; standing by");
                        logged_holder = true;
                    }
                    let jitter = Duration::from_millis(rand::random_range(0..=25));
                    expires_in.unwrap_or(FOLLOWER_CHECK).min(FOLLOWER_CHECK) + jitter
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot reach Redis for the lease; retrying");
                    REDIS_RETRY
                }
            };
            tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        }
    }

    /// Polls while the lease holds.
    async fn lead(&mut self, shutdown: &CancellationToken) -> Stepped {
        self.schedule.restart(Instant::now());
        // Everything is due now anyway; hints posted before leadership are answered by that.
        self.hints.take();
        let mut renew_conn = self.conn.clone();
        let lease = self.lease.clone();
        let renewing = keep_lease(&lease, &mut renew_conn);
        tokio::pin!(renewing);
        let polling = self.poll_forever();
        tokio::pin!(polling);
        tokio::select! {
            () = shutdown.cancelled() => Stepped::Cancelled,
            stepped = &mut renewing => stepped,
            stepped = &mut polling => stepped,
        }
    }

    /// Gives the lease back so a successor starts at once.
    async fn release(&mut self) {
        for attempt in 1..=3 {
            match self.lease.release(&mut self.conn).await {
                Ok(true) => {
                    tracing::info!("fetcher lease released");
                    return;
                }
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(attempt, error = %format!("{e:#}"), "releasing the lease failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Polls endpoints as they come due; returns only when a write finds the lease gone.
    async fn poll_forever(&mut self) -> Stepped {
        loop {
            let now = Instant::now();
            if let Some(until) = self.budget.paused_until(now) {
                tracing::info!(resume_in = ?until - now, "polling paused by GitHub's rate limit");
                tokio::time::sleep_until(until.into()).await;
                continue;
            }
            self.apply_hints(now);
            let Some((index, due)) = self.schedule.next() else {
                self.hints.wait().await;
                continue;
            };
            if due > now {
                tokio::select! {
                    () = tokio::time::sleep_until(due.into()) => {}
                    () = self.hints.wait() => {}
                }
                continue;
            }
            let path = self.schedule.endpoint(index).path.clone();
            let span = tracing::info_span!("poll", path = %path);
            if self.poll_one(index, &path).instrument(span).await == Some(Stepped::LeaseLost) {
                return Stepped::LeaseLost;
            }
        }
    }

    /// Moves the endpoints hinted since the last look forward in the schedule. While the
    /// rate-limit budget is being stretched, a hinted endpoint is polled no sooner than its
    /// stretched interval allows (`Schedule::hinted`), so a flood of deliveries cannot outspend
    /// the pacing.
    fn apply_hints(&mut self, now: Instant) {
        let hinted = self.hints.take();
        if hinted.is_empty() {
            return;
        }
        let stretch = self
            .budget
            .stretch(self.schedule.demand_per_sec(), SystemTime::now());
        for (path, received_at_ms) in hinted {
            self.schedule.hinted(&path, received_at_ms, now, stretch);
        }
        if stretch.factor > 1.0 {
            metrics::counter!("hubcache_fetcher_webhook_hints_deferred_total").increment(1);
            tracing::info!(
                factor = stretch.factor,
                "rate-limit budget low: hinted endpoints keep the stretched interval"
            );
        }
    }

    /// One poll of one endpoint, written back. `Some(LeaseLost)` when a write was fenced off.
    async fn poll_one(&mut self, index: usize, path: &str) -> Option<Stepped> {
        let started = Instant::now();
        let stored = match self
            .writer
            .load(&mut self.conn, path, &mut self.cache)
            .await
        {
            Ok(stored) => stored,
            Err(e) => {
                let delay = self.schedule.failed(index, Instant::now());
                tracing::warn!(error = %format!("{e:#}"), retry_in = ?delay, "cannot read the stored snapshot");
                return None;
            }
        };
        if let Some(snapshot) = &stored.snapshot {
            record_snapshot_fetched(path, snapshot.meta.fetched_at_ms);
        }
        let report = self
            .poller
            .poll(path, stored.snapshot.as_ref(), &mut self.budget)
            .await;
        let changed = matches!(report.outcome, PollOutcome::Changed { .. });
        record_poll(
            &self.org,
            path,
            &report.outcome,
            started.elapsed(),
            self.budget.latest(),
        );
        let now = now_ms();
        let success_status = stored.status.succeeded(now);
        let written = match report.outcome {
            PollOutcome::Changed { body, mut meta } => {
                // The next version after the stored one, also when the stored snapshot was
                // damaged and polled as absent (the poller then counts from 0): a replacement
                // never repeats or lowers a version consumers have seen.
                meta.version = stored.version + 1;
                let event = RefreshEvent {
                    path: path.to_owned(),
                    version: meta.version,
                    content_hash: meta.content_hash.clone(),
                    at_ms: now,
                    traceparent: current_traceparent(),
                };
                let replacement = Replacement {
                    base: &stored.base,
                    body: &body,
                    meta: &meta,
                    status: &success_status,
                    event: &event,
                };
                let written = self
                    .writer
                    .replace(&mut self.conn, &self.lease, &replacement)
                    .await;
                if matches!(written, Ok(WriteOutcome::Written)) {
                    tracing::info!(
                        version = meta.version,
                        bytes = body.len(),
                        pages = meta.pages.len(),
                        units = report.units,
                        "snapshot changed"
                    );
                    record_snapshot_fetched(path, meta.fetched_at_ms);
                    self.cache.insert(
                        path.to_owned(),
                        Snapshot {
                            body: body.into(),
                            meta,
                        },
                    );
                }
                written
            }
            PollOutcome::Unchanged { updated_meta } => match updated_meta {
                Some(meta) => {
                    let written = self
                        .writer
                        .update_meta(&mut self.conn, &self.lease, &meta, &success_status)
                        .await;
                    if matches!(written, Ok(WriteOutcome::Written))
                        && let Some(cached) = self.cache.get_mut(path)
                    {
                        cached.meta = meta;
                    }
                    tracing::debug!(units = report.units, "unchanged; page ETags updated");
                    written
                }
                None => {
                    tracing::debug!(units = report.units, "unchanged");
                    self.writer
                        .write_status(&mut self.conn, &self.lease, path, &success_status)
                        .await
                }
            },
            PollOutcome::Failed(error) => {
                let message = error.to_string();
                // Shortened: the message names targets and GitHub's words, from outside.
                let status = stored.status.failed(now, &message);
                match error.rate_limit_wait() {
                    Some(wait) => {
                        // GitHub's reset times are whole seconds: wait one more.
                        let wait = wait + Duration::from_secs(1);
                        self.budget.pause(Instant::now(), wait);
                        self.schedule.rate_limited(index, Instant::now());
                        tracing::warn!(error = %message, pause = ?wait, "rate limited; pausing all polling");
                    }
                    None => {
                        let delay = self.schedule.failed(index, Instant::now());
                        tracing::warn!(error = %message, retry_in = ?delay, "poll failed; keeping the stored snapshot");
                    }
                }
                let written = self
                    .writer
                    .write_status(&mut self.conn, &self.lease, path, &status)
                    .await;
                return self.finish_write(index, written, None);
            }
        };
        let stretch = self
            .budget
            .stretch(self.schedule.demand_per_sec(), SystemTime::now());
        // A cold fetch (nothing stored yet) pays for every page once; it says nothing about what
        // polling will cost from now on.
        let learned_units = stored.snapshot.is_some().then_some(report.units);
        self.finish_write(
            index,
            written,
            Some((started, learned_units, stretch, changed)),
        )
    }

    /// Reschedules after a write; `success` carries what a successful poll needs.
    fn finish_write(
        &mut self,
        index: usize,
        written: anyhow::Result<WriteOutcome>,
        success: Option<(Instant, Option<u32>, Stretch, bool)>,
    ) -> Option<Stepped> {
        match written {
            Ok(WriteOutcome::Written) => {
                if let Some((started, units, stretch, changed)) = success {
                    if stretch.factor > 1.0 {
                        tracing::info!(
                            factor = stretch.factor,
                            remaining = self.budget.latest().map(|r| r.remaining),
                            "rate-limit budget low; stretching the interval"
                        );
                    }
                    self.schedule.succeeded(index, started, units, stretch);
                    if let Some(received_at_ms) =
                        self.schedule.settle_hint(index, changed, Instant::now())
                    {
                        let latency = now_ms().saturating_sub(received_at_ms) as f64 / 1000.0;
                        metrics::histogram!("hubcache_fetcher_hint_to_snapshot_seconds")
                            .record(latency);
                        tracing::info!(latency_secs = latency, "webhook change stored");
                    }
                }
                None
            }
            Ok(WriteOutcome::LeaseLost) => Some(Stepped::LeaseLost),
            Ok(WriteOutcome::VersionMoved) => {
                // Someone else wrote since we read: start over from what is stored now.
                self.cache
                    .remove(&self.schedule.endpoint(index).path.clone());
                let delay = self.schedule.failed(index, Instant::now());
                tracing::warn!(retry_in = ?delay, "stored version moved during the poll; nothing written");
                None
            }
            Err(e) => {
                if success.is_some() {
                    let delay = self.schedule.failed(index, Instant::now());
                    tracing::warn!(error = %format!("{e:#}"), retry_in = ?delay, "cannot write to Redis");
                } else {
                    tracing::warn!(error = %format!("{e:#}"), "cannot write the status to Redis");
                }
                None
            }
        }
    }
}

/// `hubcache_fetcher_lease_held{org}`: 1 while this process holds the org's polling lease.
const LEASE_HELD_METRIC: &str = "hubcache_fetcher_lease_held";

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
    describe_counter!(
        "hubcache_fetcher_polls_total",
        "Polls of a cached endpoint, by endpoint and outcome (changed, unchanged, error)."
    );
    describe_counter!(
        POLL_ERRORS_METRIC,
        "Failed polls, by endpoint and reason (rate_limited, status, transport, refused_link, ...); the full error is in the endpoint's status and /healthcheck."
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
fn record_snapshot_fetched(path: &str, fetched_at_ms: u64) {
    metrics::gauge!("hubcache_snapshot_fetched_timestamp_seconds", "endpoint" => path.to_owned())
        .set(fetched_at_ms as f64 / 1000.0);
}

/// Records one poll's metrics: its outcome and duration by endpoint (a configured path: a
/// small fixed label set), the last success time, and GitHub's rate-limit budget as last seen.
fn record_poll(
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

/// Renews the lease every third of its period; returns when it is lost, or when Redis could not
/// confirm it for a whole period (it has expired by then).
async fn keep_lease(lease: &Lease, conn: &mut RedisConnection) -> Stepped {
    let mut last_renewed = Instant::now();
    let mut wait = lease.renew_every();
    loop {
        tokio::time::sleep(wait).await;
        match lease.renew(conn).await {
            Ok(true) => {
                last_renewed = Instant::now();
                wait = lease.renew_every();
            }
            Ok(false) => return Stepped::LeaseLost,
            Err(e) => {
                if last_renewed.elapsed() >= lease.ttl() {
                    tracing::warn!(error = %format!("{e:#}"), "lease not renewed for a whole period");
                    return Stepped::LeaseLost;
                }
                tracing::warn!(error = %format!("{e:#}"), "renewing the lease failed; retrying");
                wait = REDIS_RETRY.min(lease.renew_every());
            }
        }
    }
}
