//! One organisation's views worker: consumes the org's refresh events through its consumer
//! group, recomputes the org's views from its current repos snapshot and acknowledges each
//! event only once its views are stored.
//!
//! The service runs one [`ViewsWorker`] per organisation, each with its own tasks, blocking
//! connection, group and backoff, so a slow or failing org never delays another. Two tasks
//! share one [`ViewsWorker`]:
//! - [`ViewsWorker::consume`] reads new events with `XREADGROUP ... BLOCK` on a dedicated
//!   connection, and catches up from the current snapshot whenever it (re)starts a session.
//! - [`ViewsWorker::claim_abandoned`] periodically takes over events another consumer read but
//!   never acknowledged (it died) with `XAUTOCLAIM`, and handles them the same way.
//!
//! Exactly-once per change comes from two mechanisms together: the consumer group delivers each
//! event to one consumer (and again only if it was never acknowledged), and the versioned write
//! ([`ViewsStore`]) turns any repeated or reordered handling into a no-op that announces nothing.
//!
//! Redis failures never stop a worker: the step that failed is retried with jittered exponential
//! backoff, the blocking connection is reopened, the group recreated if Redis lost it, and the
//! entries read but not yet acknowledged are handled again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hubcache_shared::RedisConnection;
use hubcache_shared::snapshot::{SnapshotError, now_ms};
use hubcache_shared::telemetry;
use hubcache_shared::{Backoff, OrgKeys, RedisConnector, RefreshEvent, Snapshot};
use redis::AsyncCommands as _;
use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::dropped_connection::{is_dropped, once_more_if_dropped};
use crate::ranking::rank_repos;
use crate::stats::{Handled, WorkerStats};
use crate::views_store::{StoreOutcome, ViewsStore};

mod claim;

/// How long one `XREADGROUP` blocks: short enough to notice a dead connection soon, long enough
/// to cost nothing when idle.
const BLOCK: Duration = Duration::from_secs(2);
/// Entries read per `XREADGROUP`: small, so a worker never hoards events another could take.
const READ_COUNT: usize = 16;
/// Entries claimed per `XAUTOCLAIM` call.
const CLAIM_COUNT: usize = 64;
/// Retry delays after a Redis failure: from 100 ms, doubling up to 5 s, jittered.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));

/// Why a step of the worker failed. Every variant is retried; none is fatal.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkerError {
    /// The consumer group does not exist: Redis restarted empty, or someone deleted it.
    #[error("the consumer group is missing (Redis restarted empty or the group was deleted)")]
    GroupMissing,
    /// Redis failed or answered something unexpected.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl WorkerError {
    fn from_redis(error: redis::RedisError, doing: &str) -> Self {
        if error.code() == Some("NOGROUP") {
            Self::GroupMissing
        } else {
            Self::Unexpected(anyhow::Error::new(error).context(doing.to_owned()))
        }
    }
}

/// Everything both tasks of one organisation's worker need: where its events and views live,
/// and who we are.
#[derive(Debug)]
pub(crate) struct ViewsWorker {
    connector: RedisConnector,
    keys: OrgKeys,
    repos_path: String,
    consumer: String,
    store: ViewsStore,
    claim_idle: Duration,
    claim_interval: Duration,
    consumer_expiry: Duration,
    stats: WorkerStats,
}

/// How one organisation's worker is set up (see `Settings`).
#[derive(Debug)]
pub(crate) struct WorkerConfig {
    pub(crate) connector: RedisConnector,
    /// The organisation's keys: its refresh stream and group, snapshot, views and views stream.
    pub(crate) keys: OrgKeys,
    /// Its repos snapshot's path, as the fetcher stores it.
    pub(crate) repos_path: String,
    pub(crate) consumer: String,
    pub(crate) claim_idle: Duration,
    pub(crate) claim_interval: Duration,
    pub(crate) consumer_expiry: Duration,
}

impl ViewsWorker {
    /// A worker for `config`, counting into `stats` (which names the organisation).
    pub(crate) fn new(config: WorkerConfig, stats: WorkerStats) -> Self {
        Self {
            store: ViewsStore::new(config.keys.clone()),
            connector: config.connector,
            keys: config.keys,
            repos_path: config.repos_path,
            consumer: config.consumer,
            claim_idle: config.claim_idle,
            claim_interval: config.claim_interval,
            consumer_expiry: config.consumer_expiry,
            stats,
        }
    }

    /// Reads and handles new refresh events until `shutdown` fires. Never returns early.
    pub(crate) async fn consume(
        self: Arc<Self>,
        mut conn: RedisConnection,
        shutdown: CancellationToken,
    ) {
        let mut reader: Option<RedisConnection> = None;
        // Entries delivered to this consumer and not acknowledged yet, oldest first.
        let mut unacked: VecDeque<StreamId> = VecDeque::new();
        let mut failures: u32 = 0;
        while !shutdown.is_cancelled() {
            match self
                .consume_step(&mut conn, &mut reader, &mut unacked, &shutdown)
                .await
            {
                Ok(()) => failures = 0,
                Err(error) => {
                    reader = None;
                    failures = failures.saturating_add(1);
                    let delay = BACKOFF.delay(failures, &mut rand::rng());
                    match &error {
                        WorkerError::GroupMissing => {
                            tracing::warn!(retry_in = ?delay, "{error}; recreating it");
                        }
                        WorkerError::Unexpected(e) => {
                            tracing::warn!(error = %format!("{e:#}"), retry_in = ?delay, unacked = unacked.len(), "views consumer failed; retrying");
                        }
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        tracing::info!(consumer = %self.consumer, "views consumer stopped");
    }

    /// One round: (re)start the session if needed, finish entries left over from a failure,
    /// then read and handle the next batch. Returns early (Ok) when `shutdown` fires while
    /// waiting; never abandons an entry halfway through its handling.
    async fn consume_step(
        &self,
        conn: &mut RedisConnection,
        reader: &mut Option<RedisConnection>,
        unacked: &mut VecDeque<StreamId>,
        shutdown: &CancellationToken,
    ) -> Result<(), WorkerError> {
        let reader = match reader {
            Some(reader) => reader,
            None => {
                let session = tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    session = self.start_session(conn) => session?,
                };
                reader.insert(session)
            }
        };
        self.handle_all(conn, unacked).await?;
        let entries = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            entries = self.read_new(reader) => entries?,
        };
        unacked.extend(entries);
        self.handle_all(conn, unacked).await
    }

    /// Opens the blocking connection, makes sure the group exists and catches up from the
    /// current snapshot (views may be missing or older whether or not an event is pending).
    async fn start_session(
        &self,
        conn: &mut RedisConnection,
    ) -> Result<RedisConnection, WorkerError> {
        let reader = self.connector.blocking(BLOCK).await?;
        self.ensure_group(conn).await?;
        let handled = self
            .refresh(conn, 0)
            .instrument(tracing::info_span!("views.catch_up", path = %self.repos_path))
            .await?;
        self.stats.record(handled);
        tracing::info!(consumer = %self.consumer, catch_up = ?handled, "views consumer reading refresh events");
        Ok(reader)
    }

    /// `XGROUP CREATE ... 0 MKSTREAM`: from the stream's start, so events written before any
    /// views worker ran are not lost. An existing group is fine.
    async fn ensure_group(&self, conn: &mut RedisConnection) -> anyhow::Result<()> {
        let stream = self.keys.refresh_stream();
        let group = self.keys.views_group();
        let created: redis::RedisResult<()> = once_more_if_dropped(|| {
            let mut conn = conn.clone();
            let stream = &stream;
            async move { conn.xgroup_create_mkstream(stream, group, "0").await }
        })
        .await;
        match created {
            Ok(()) => {
                tracing::info!(%stream, group, "created the views consumer group");
                Ok(())
            }
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => {
                Err(e).with_context(|| format!("creating consumer group {group} on {stream}"))
            }
        }
    }

    /// `XREADGROUP ... BLOCK` for entries never delivered to any consumer (`>`).
    async fn read_new(&self, reader: &mut RedisConnection) -> Result<Vec<StreamId>, WorkerError> {
        let options = StreamReadOptions::default()
            .group(self.keys.views_group(), &self.consumer)
            .count(READ_COUNT)
            .block(BLOCK.as_millis() as usize);
        let reply: Option<StreamReadReply> = reader
            .xread_options(&[self.keys.refresh_stream()], &[">"], &options)
            .await
            .map_err(|e| WorkerError::from_redis(e, "reading the refresh stream"))?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
    }

    /// Handles and acknowledges `entries` front to back; on failure the failed entry and the
    /// rest stay queued for the next attempt.
    async fn handle_all(
        &self,
        conn: &mut RedisConnection,
        entries: &mut VecDeque<StreamId>,
    ) -> Result<(), WorkerError> {
        while let Some(entry) = entries.front() {
            self.handle_and_ack(conn, entry).await?;
            entries.pop_front();
        }
        Ok(())
    }

    /// Handles one stream entry and acknowledges it, in that order: an entry whose handling
    /// failed stays pending, to be retried here or claimed by another worker.
    async fn handle_and_ack(
        &self,
        conn: &mut RedisConnection,
        entry: &StreamId,
    ) -> Result<(), WorkerError> {
        let handled = self.handle(conn, entry).await?;
        let stream = self.keys.refresh_stream();
        let _: i64 = once_more_if_dropped(|| {
            let mut conn = conn.clone();
            let stream = &stream;
            async move {
                conn.xack(stream, self.keys.views_group(), &[&entry.id])
                    .await
            }
        })
        .await
        .map_err(|e| WorkerError::from_redis(e, "acknowledging a refresh event"))?;
        self.stats.record(handled);
        self.stats.record_ack();
        Ok(())
    }

    /// What one entry means for the views. `Err` only for failures worth retrying (Redis);
    /// an unusable entry or snapshot is logged and reported as handled, so it cannot block the
    /// group forever.
    async fn handle(
        &self,
        conn: &mut RedisConnection,
        entry: &StreamId,
    ) -> Result<Handled, WorkerError> {
        let event = match RefreshEvent::from_entry(entry) {
            Ok(event) => event,
            Err(malformed) => {
                tracing::warn!(error = %malformed, "skipping a malformed refresh event");
                return Ok(Handled::Malformed);
            }
        };
        if event.path != self.repos_path {
            tracing::debug!(stream_id = %entry.id, path = %event.path, "refresh event for another path; nothing to rank");
            return Ok(Handled::OtherPath);
        }
        let span = tracing::info_span!(
            "views.refresh",
            stream_id = %entry.id,
            path = %event.path,
            version = event.version,
            lag_ms = now_ms().saturating_sub(event.at_ms),
        );
        telemetry::continue_trace(&span, event.traceparent.as_deref());
        Ok(self.refresh(conn, event.version).instrument(span).await?)
    }

    /// Brings the stored views up to the current repos snapshot, which is at least
    /// `min_version` (the event's) unless something went wrong upstream. The current snapshot is
    /// used even when newer than the event: the newest views are the right ones, and the events
    /// of the skipped versions then find the work done.
    async fn refresh(
        &self,
        conn: &mut RedisConnection,
        min_version: u64,
    ) -> anyhow::Result<Handled> {
        let (stored, snapshot_version) = self.store.versions(&*conn, &self.repos_path).await?;
        let wanted = snapshot_version.unwrap_or(0).max(min_version);
        if let Some(stored) = stored
            && wanted > 0
            && stored >= wanted
        {
            tracing::debug!(stored, wanted, "views already up to date");
            return Ok(Handled::UpToDate);
        }
        let snapshot = match self.load_snapshot(conn).await {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => {
                if min_version > 0 {
                    tracing::warn!(path = %self.repos_path, "refresh event for a repos snapshot that is not stored");
                } else {
                    tracing::info!(path = %self.repos_path, "no repos snapshot stored yet; waiting for the fetcher");
                }
                return Ok(Handled::NoSnapshot);
            }
            Err(SnapshotError::Corrupt { key, reason }) => {
                tracing::error!(%key, %reason, "repos snapshot is corrupt; keeping the stored views");
                return Ok(Handled::Unusable);
            }
            Err(SnapshotError::Redis(e)) => return Err(e).context("loading the repos snapshot"),
        };
        let version = snapshot.meta.version;
        if stored.is_some_and(|stored| stored >= version) {
            tracing::debug!(?stored, version, "views already up to date");
            return Ok(Handled::UpToDate);
        }

        let started = Instant::now();
        let source_hash = snapshot.meta.content_hash.clone();
        let body = snapshot.body;
        let ranked = tokio::task::spawn_blocking(move || rank_repos(&body, version, &source_hash))
            .await
            .context("the ranking task panicked")?;
        let set = match ranked {
            Ok(set) => set,
            Err(e) => {
                tracing::error!(error = %e, version, "repos snapshot cannot be ranked; keeping the stored views");
                return Ok(Handled::Unusable);
            }
        };
        let compute = started.elapsed();
        metrics::histogram!("hubcache_views_recompute_duration_seconds", "org" => self.stats.org().to_owned())
            .record(compute.as_secs_f64());
        let compute_ms = compute.as_millis() as u64;
        let repos = set.views.values().map(Vec::len).max().unwrap_or(0);
        match self
            .store
            .store(&*conn, &set, telemetry::current_traceparent())
            .await?
        {
            StoreOutcome::Written => {
                tracing::info!(version, repos, compute_ms, "views stored");
                Ok(Handled::Stored)
            }
            StoreOutcome::AlreadyCurrent { stored } => {
                tracing::debug!(
                    version,
                    stored,
                    "views of this or a newer version were stored meanwhile"
                );
                Ok(Handled::UpToDate)
            }
        }
    }

    /// The current repos snapshot, read once more if the first read hit a dropped connection.
    async fn load_snapshot(
        &self,
        conn: &mut RedisConnection,
    ) -> Result<Option<Snapshot>, SnapshotError> {
        match Snapshot::load(conn, &self.keys, &self.repos_path).await {
            Err(SnapshotError::Redis(e)) if is_dropped(&e) => {
                Snapshot::load(conn, &self.keys, &self.repos_path).await
            }
            other => other,
        }
    }
}

/// A consumer name unique in the group: the process's [`hubcache_shared::instance_id`], so a
/// restarted process (same host and pid, e.g. pid 1 in a container) does not inherit the pending
/// entries of its previous life: the claim sweep hands those to live workers instead.
pub(crate) fn consumer_name() -> String {
    hubcache_shared::instance_id()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_differ_between_workers_of_one_process() {
        let (a, b) = (consumer_name(), consumer_name());
        assert_ne!(a, b);
        assert!(a.contains(&format!("-{}-", std::process::id())), "{a}");
    }
}
