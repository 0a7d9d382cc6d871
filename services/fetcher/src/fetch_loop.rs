//! One org's long-running task: wait until this replica is the org's preferred fetcher
//! (`membership`) and holds the org's lease, then, while holding it, poll the org's endpoints
//! as they come due and store what changed.
//!
//! Renewal, polling and watching the membership run side by side in the same task; when
//! renewal finds the lease gone, the poll in flight is dropped on the spot (and whatever it
//! might still have written is fenced off by the scripts' lease check); when another live
//! fetcher becomes preferred for the org, the lease is released for it. Webhook hints (`hints`)
//! wake the loop and make the endpoints they name due at once. Each org's loop is its own task,
//! so a slow or failing org never holds up another; they share the replica's rate-limit budget.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hubcache_shared::RedisConnection;
use hubcache_shared::snapshot::{REASON_NOT_FOUND, now_ms};
use hubcache_shared::telemetry::current_traceparent;
use hubcache_shared::{RefreshEvent, Snapshot};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::budget::{SharedBudget, Stretch};
use crate::hints::HintBoard;
use crate::lease::{Acquire, Lease};
use crate::membership::Members;
use crate::poll_metrics::{
    LEASE_HELD_METRIC, ORGS_HELD_METRIC, record_poll, record_snapshot_fetched,
};
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
    /// Another live fetcher is preferred for this org now: the lease goes to it.
    HandOver,
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
    budget: SharedBudget,
    members: watch::Receiver<Members>,
    cache: HashMap<String, Snapshot>,
    hints: Arc<HintBoard>,
}

impl FetchLoop {
    /// A loop over `schedule`'s endpoints, all of `org`, polling while this replica holds the
    /// org's lease, which it takes only while `members` prefer it for the org; polls spend
    /// from `budget`, the replica's one rate-limit budget.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        org: String,
        conn: RedisConnection,
        lease: Lease,
        poller: Poller,
        writer: SnapshotWriter,
        schedule: Schedule,
        budget: SharedBudget,
        members: watch::Receiver<Members>,
        hints: Arc<HintBoard>,
    ) -> Self {
        Self {
            org,
            conn,
            lease,
            poller,
            writer,
            schedule,
            budget,
            members,
            cache: HashMap::new(),
            hints,
        }
    }

    /// Runs until `shutdown`; releases the lease on the way out if it holds it.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        let lease_held = metrics::gauge!(LEASE_HELD_METRIC, "org" => self.org.clone());
        let orgs_held = metrics::gauge!(ORGS_HELD_METRIC);
        lease_held.set(0.0);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wait_for_turn() => {}
            };
            tracing::info!(instance = %self.lease.instance_id(), "org lease acquired; polling");
            lease_held.set(1.0);
            orgs_held.increment(1.0);
            let stepped = self.lead(&shutdown).await;
            lease_held.set(0.0);
            orgs_held.decrement(1.0);
            self.budget.forget(&self.org);
            // Another replica polls the org now: its bodies need not stay in this one's memory
            // (a later leadership reads what is stored then).
            self.cache.clear();
            match stepped {
                Stepped::Cancelled => {
                    self.release().await;
                    return;
                }
                Stepped::HandOver => {
                    tracing::info!(
                        preferred = ?self.members.borrow().preferred(&self.org, Instant::now()),
                        "another fetcher is preferred for this org; handing the lease over"
                    );
                    self.release().await;
                }
                Stepped::LeaseLost => {
                    tracing::warn!(instance = %self.lease.instance_id(), "org lease lost; stopped polling");
                }
            }
        }
    }

    /// Returns once this instance holds the org's lease. It tries only while the membership
    /// prefers it for the org; then it looks again when the holder's lease would expire, or
    /// after [`FOLLOWER_CHECK`] if sooner (a released lease is free at once).
    async fn wait_for_turn(&mut self) {
        let mut logged_holder = false;
        let mut logged_preferred = false;
        loop {
            let preferred = self
                .members
                .borrow_and_update()
                .prefers_me(&self.org, Instant::now());
            if !preferred {
                if !logged_preferred {
                    tracing::info!("another fetcher is preferred for this org; standing by");
                    logged_preferred = true;
                }
                if self.members.changed().await.is_err() {
                    // The membership task is gone: only shutdown is left.
                    std::future::pending::<()>().await;
                }
                continue;
            }
            let wait = match self.lease.try_acquire(&mut self.conn).await {
                Ok(Acquire::Held) => return,
                Ok(Acquire::HeldByOther { holder, expires_in }) => {
                    if !logged_holder {
                        tracing::info!(
                            ?holder,
                            "preferred for this org; waiting for the holder to hand the lease over"
                        );
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
            tokio::select! {
                () = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
                changed = self.members.changed() => {
                    if changed.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }

    /// Polls while the lease holds and no other live fetcher is preferred for the org.
    async fn lead(&mut self, shutdown: &CancellationToken) -> Stepped {
        self.schedule.restart(Instant::now());
        // Everything is due now anyway; hints posted before leadership are answered by that.
        self.hints.take();
        let mut renew_conn = self.conn.clone();
        let lease = self.lease.clone();
        let renewing = keep_lease(&lease, &mut renew_conn);
        tokio::pin!(renewing);
        let mut members = self.members.clone();
        let org = self.org.clone();
        let preferred_elsewhere = until_preferred_elsewhere(&mut members, &org);
        tokio::pin!(preferred_elsewhere);
        let polling = self.poll_forever();
        tokio::pin!(polling);
        tokio::select! {
            () = shutdown.cancelled() => Stepped::Cancelled,
            stepped = &mut renewing => stepped,
            stepped = &mut preferred_elsewhere => stepped,
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
            // A root span: each poll is the start of its own trace (poll -> views -> gateway),
            // not a child of the org loop's long-lived span, which never ends.
            let span = tracing::info_span!(parent: None, "poll", org = %self.org, path = %path);
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
        let stretch = self.stretch();
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

    /// How this replica's budget bends the schedule, with this org's current demand counted
    /// in with the other orgs polled here.
    fn stretch(&self) -> Stretch {
        self.budget
            .stretch(&self.org, self.schedule.demand_per_sec(), SystemTime::now())
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
            .poll(&self.org, path, stored.snapshot.as_ref(), &self.budget)
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
        // Every status written carries the budget GitHub last reported: the gateway's status
        // page reads the fetcher's budget there (it never sees the fetcher's requests).
        let rate_limit = self.budget.latest();
        let success_status = stored
            .status
            .succeeded(now)
            .with_rate_limit(rate_limit, now);
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
                let reason = error.kind();
                // Shortened: the message names targets and GitHub's words, from outside.
                let status = stored
                    .status
                    .failed_because(now, reason, &message)
                    .with_rate_limit(rate_limit, now);
                match error.rate_limit_wait() {
                    Some(wait) => {
                        // GitHub's reset times are whole seconds: wait one more.
                        let wait = wait + Duration::from_secs(1);
                        self.budget.pause(Instant::now(), wait);
                        self.schedule.rate_limited(index, Instant::now());
                        tracing::warn!(error = %message, pause = ?wait, "rate limited; pausing all polling");
                    }
                    None if reason == REASON_NOT_FOUND => {
                        let delay = self.schedule.not_found(index, Instant::now());
                        tracing::warn!(error = %message, retry_in = ?delay, "GitHub does not know this endpoint (an unknown org?); trying again after the longest backoff");
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
        let stretch = self.stretch();
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

/// Returns [`Stepped::HandOver`] once another live fetcher is preferred for `org`.
async fn until_preferred_elsewhere(members: &mut watch::Receiver<Members>, org: &str) -> Stepped {
    loop {
        if members
            .borrow_and_update()
            .prefers_another(org, Instant::now())
        {
            return Stepped::HandOver;
        }
        if members.changed().await.is_err() {
            return std::future::pending().await;
        }
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
