//! Keeps each organisation's [`OrgServed`] current: one listener task per org loads the org's
//! cached keys and views from Redis, then follows the org's refresh and views streams and
//! reloads what an event names.
//!
//! - One task per org, each with its own blocking connection: the two streams of an org share
//!   its hash tag (one slot), so one `XREAD` reads both on a Redis Cluster too, and a slow or
//!   unreachable org (its master down) never delays another. The connection for ordinary
//!   commands is shared by all orgs' listeners ([`SharedRedis`]).
//! - Plain `XREAD BLOCK` (no consumer group): every gateway replica sees every event.
//! - The streams' last ids are read *before* the initial load, so an event written during the
//!   load is still seen afterwards (at worst one harmless reload).
//! - Any Redis failure marks the org's copies stale, and its listener reconnects every second;
//!   after reconnecting it reloads the org (events may have been missed or the streams reset).
//!   Loaded copies are never dropped: a Redis that lost its data does not empty the gateway.
//! - The fetcher's status of each of the org's cached keys (its latest poll's outcome, which
//!   changes without an event) is read on connecting and every [`STATUS_EVERY`], for
//!   `/healthcheck` (a stuck endpoint, an org GitHub does not know).
//! - Each reload runs in a span continuing the event's `traceparent`, so a refresh is one trace
//!   from the fetcher's poll to the gateway serving it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hubcache_shared::RedisConnection;
use hubcache_shared::events::newest_entry_id;
use hubcache_shared::snapshot::SnapshotError;
use hubcache_shared::telemetry;
use hubcache_shared::{OrgKeys, RedisConnector, RefreshEvent, Snapshot, ViewSet, ViewsEvent};
use redis::streams::{StreamId, StreamReadReply};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::body_urls::BodyUrlRewriter;
use crate::served_snapshot::ServedSnapshot;
use crate::served_state::OrgServed;
use crate::served_views::ServedViews;
use crate::webhook_intake::WebhookStats;

/// How long one `XREAD` blocks (the connection's response timeout is longer).
const BLOCK: Duration = Duration::from_millis(1500);
/// Events read per `XREAD`.
const READ_COUNT: usize = 100;
/// How often the statuses of the cached keys are read again (one `HGET` per key).
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// Pause between reconnection attempts while Redis is down.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// The connection for ordinary commands, shared by every org's listener: made on first use,
/// and made again after a listener saw it fail (it heals by itself in most cases; a fresh one
/// also covers a Sentinel failover seen mid-command).
#[derive(Clone)]
pub(crate) struct SharedRedis {
    connector: RedisConnector,
    slot: Arc<tokio::sync::Mutex<Option<RedisConnection>>>,
}

impl SharedRedis {
    /// Connections to the Redis behind `connector`, not opened yet.
    pub(crate) fn new(connector: RedisConnector) -> Self {
        Self {
            connector,
            slot: Arc::default(),
        }
    }

    /// The shared connection, opening it if needed.
    async fn get(&self) -> anyhow::Result<RedisConnection> {
        let mut slot = self.slot.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = self.connector.shared().await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Forgets the shared connection after a failure: the next `get` opens a new one.
    async fn discard(&self) {
        self.slot.lock().await.take();
    }

    /// A dedicated connection for one org's blocking reads.
    async fn blocking(&self) -> anyhow::Result<RedisConnection> {
        self.connector.blocking(BLOCK).await
    }
}

/// Follows one org's streams and updates its served copies.
#[derive(Clone)]
pub(crate) struct StreamListener {
    redis: SharedRedis,
    keys: OrgKeys,
    state: Arc<OrgServed>,
    body_urls: Option<BodyUrlRewriter>,
    /// With webhooks on: told when new views are served (delivery-to-view latency).
    webhook_stats: Option<Arc<WebhookStats>>,
}

/// A live session with Redis: connections and the stream positions already applied.
pub(crate) struct Connected {
    shared: RedisConnection,
    blocking: RedisConnection,
    refresh_id: String,
    views_id: String,
}

impl StreamListener {
    /// A listener updating `state` (one org, whose keys are `keys`) through `redis`;
    /// `body_urls` (set with `PUBLIC_URL`) points the upstream URLs in each loaded snapshot at
    /// the gateway.
    pub(crate) fn new(
        redis: SharedRedis,
        keys: OrgKeys,
        state: Arc<OrgServed>,
        body_urls: Option<BodyUrlRewriter>,
    ) -> Self {
        Self {
            redis,
            keys,
            state,
            body_urls,
            webhook_stats: None,
        }
    }

    /// The same listener, reporting each views install to `stats`.
    pub(crate) fn with_webhook_stats(mut self, stats: Option<Arc<WebhookStats>>) -> Self {
        self.webhook_stats = stats;
        self
    }

    /// The login of the org this listener follows.
    pub(crate) fn org(&self) -> &str {
        self.state.login()
    }

    /// Connects, records the streams' positions, then loads every cached key of the org and
    /// its views. Marks the org reachable on success.
    pub(crate) async fn connect_and_load(&self) -> anyhow::Result<Connected> {
        let attempt = self.try_connect_and_load().await;
        if attempt.is_err() {
            self.redis.discard().await;
        }
        attempt
    }

    async fn try_connect_and_load(&self) -> anyhow::Result<Connected> {
        let mut shared = self.redis.get().await?;
        let blocking = self.redis.blocking().await?;
        let refresh_id = newest_entry_id(&mut shared, &self.keys.refresh_stream()).await?;
        let views_id = newest_entry_id(&mut shared, &self.keys.views_stream()).await?;
        for path in self.state.cached_paths().to_vec() {
            self.reload_snapshot(&mut shared, &path).await?;
        }
        self.reload_views(&mut shared).await?;
        self.reload_statuses(&mut shared).await?;
        self.state.set_redis_reachable(true);
        tracing::info!(org = self.org(), missing = ?self.state.missing(), "loaded the org's cached keys and views from Redis");
        Ok(Connected {
            shared,
            blocking,
            refresh_id,
            views_id,
        })
    }

    /// Follows the streams until `shutdown`, reconnecting (and reloading) after failures.
    /// `connected` is the session opened by `Application::build`, if Redis was up then.
    pub(crate) async fn run(self, mut connected: Option<Connected>, shutdown: CancellationToken) {
        loop {
            let mut session = match connected.take() {
                Some(session) => session,
                None => {
                    let attempt = tokio::select! {
                        () = shutdown.cancelled() => return,
                        attempt = self.connect_and_load() => attempt,
                    };
                    match attempt {
                        Ok(session) => session,
                        Err(e) => {
                            self.state.set_redis_reachable(false);
                            tracing::warn!(org = self.org(), error = %format!("{e:#}"), "Redis unavailable; serving in-memory copies, retrying");
                            if sleep_or_cancel(&shutdown).await {
                                return;
                            }
                            continue;
                        }
                    }
                }
            };
            match self.follow(&mut session, &shutdown).await {
                Ok(()) => return,
                Err(e) => {
                    self.state.set_redis_reachable(false);
                    self.redis.discard().await;
                    tracing::warn!(org = self.org(), error = %format!("{e:#}"), "lost Redis; serving in-memory copies marked stale");
                    if sleep_or_cancel(&shutdown).await {
                        return;
                    }
                }
            }
        }
    }

    /// Reads events until cancelled (`Ok`) or Redis fails (`Err`).
    async fn follow(
        &self,
        session: &mut Connected,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let refresh_stream = self.keys.refresh_stream();
        let views_stream = self.keys.views_stream();
        let mut statuses_read = Instant::now();
        loop {
            if statuses_read.elapsed() >= STATUS_EVERY {
                self.reload_statuses(&mut session.shared).await?;
                statuses_read = Instant::now();
            }
            let read = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&refresh_stream)
                .arg(&views_stream)
                .arg(&session.refresh_id)
                .arg(&session.views_id)
                .to_owned();
            let reply: Option<StreamReadReply> = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                reply = read.query_async(&mut session.blocking) => reply.context("XREAD of the refresh and views streams")?,
            };
            let Some(reply) = reply else { continue };
            // Path -> the traceparent of the newest event naming it (the reload continues
            // that refresh's trace).
            let mut paths = BTreeMap::new();
            let mut views_changed: Option<Option<String>> = None;
            for stream in reply.keys {
                let is_refresh = stream.key == refresh_stream;
                for entry in stream.ids {
                    if is_refresh {
                        session.refresh_id.clone_from(&entry.id);
                        if let Some((path, traceparent)) = self.refresh_target(&entry) {
                            paths.insert(path, traceparent);
                        }
                    } else {
                        session.views_id.clone_from(&entry.id);
                        if let Some(traceparent) = self.views_changed(&entry) {
                            views_changed = Some(traceparent);
                        }
                    }
                }
            }
            for (path, traceparent) in paths {
                let span =
                    tracing::info_span!("gateway.reload_snapshot", org = self.org(), path = %path);
                telemetry::continue_trace(&span, traceparent.as_deref());
                self.reload_snapshot(&mut session.shared, &path)
                    .instrument(span)
                    .await?;
            }
            if let Some(traceparent) = views_changed {
                let span = tracing::info_span!("gateway.reload_views", org = self.org());
                telemetry::continue_trace(&span, traceparent.as_deref());
                self.reload_views(&mut session.shared)
                    .instrument(span)
                    .await?;
            }
        }
    }

    /// The cached path a refresh event asks to reload (with the event's traceparent), unless it
    /// is already served.
    fn refresh_target(&self, entry: &StreamId) -> Option<(String, Option<String>)> {
        let event = match RefreshEvent::from_entry(entry) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, "skipping malformed refresh event");
                return None;
            }
        };
        if !self.state.is_cached(&event.path) {
            return None;
        }
        let current = self.state.snapshot(&event.path);
        let served = current
            .is_some_and(|s| s.version == event.version && s.content_hash == event.content_hash);
        (!served).then_some((event.path, event.traceparent))
    }

    /// `Some(traceparent)` when a views event names a version other than the one served.
    fn views_changed(&self, entry: &StreamId) -> Option<Option<String>> {
        match ViewsEvent::from_entry(entry) {
            Ok(event) => self
                .state
                .views()
                .is_none_or(|v| v.version != event.version)
                .then_some(event.traceparent),
            Err(e) => {
                tracing::warn!(error = %e, "skipping malformed views event");
                None
            }
        }
    }

    /// Loads `path` and swaps it in if it differs from what is served. A corrupt snapshot is
    /// reported and skipped (the previous copy stays); a Redis error is returned.
    async fn reload_snapshot(&self, conn: &mut RedisConnection, path: &str) -> anyhow::Result<()> {
        let loaded = retry_once(|| {
            let mut conn = conn.clone();
            let keys = self.keys.clone();
            let path = path.to_owned();
            async move { Snapshot::load(&mut conn, &keys, &path).await }
        })
        .await;
        let snapshot = match loaded {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => return Ok(()),
            Err(SnapshotError::Corrupt { key, reason }) => {
                tracing::error!(%key, %reason, "stored snapshot is corrupt; keeping the served copy");
                return Ok(());
            }
            Err(e) => return Err(e).with_context(|| format!("loading snapshot {path}")),
        };
        if let Some(current) = self.state.snapshot(path)
            && current.version == snapshot.meta.version
            && current.content_hash == snapshot.meta.content_hash
        {
            return Ok(());
        }
        let body_urls = self.body_urls.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            ServedSnapshot::prepare(snapshot, body_urls.as_ref())
        })
        .await
        .context("preparing a snapshot")?;
        tracing::info!(
            org = self.org(),
            path,
            version = prepared.version,
            bytes = prepared.full.identity().len(),
            "serving new snapshot version"
        );
        self.state.install_snapshot(prepared);
        Ok(())
    }

    /// Reads the fetcher's status of every cached key. A status that is not valid JSON is
    /// reported and left out; a Redis error is returned.
    async fn reload_statuses(&self, conn: &mut RedisConnection) -> anyhow::Result<()> {
        let mut statuses = BTreeMap::new();
        for path in self.state.cached_paths() {
            match Snapshot::load_status(conn, &self.keys, path).await {
                // Bounded again: anything may have written it.
                Ok(status) => {
                    statuses.insert(path.clone(), status.bounded());
                }
                Err(SnapshotError::Corrupt { key, reason }) => {
                    tracing::warn!(%key, %reason, "stored status is unreadable; not shown");
                }
                Err(e) => return Err(e).with_context(|| format!("loading the status of {path}")),
            }
        }
        self.state.set_statuses(statuses);
        Ok(())
    }

    /// Loads the views and swaps them in if their version or source differs.
    async fn reload_views(&self, conn: &mut RedisConnection) -> anyhow::Result<()> {
        let loaded = retry_once(|| {
            let mut conn = conn.clone();
            let keys = self.keys.clone();
            async move { ViewSet::load(&mut conn, &keys).await }
        })
        .await;
        let set = match loaded {
            Ok(Some(set)) => set,
            Ok(None) => return Ok(()),
            Err(hubcache_shared::views::ViewsError::Corrupt(reason)) => {
                tracing::error!(org = self.org(), %reason, "stored views are corrupt; keeping the served copy");
                return Ok(());
            }
            Err(e) => return Err(e).context("loading views"),
        };
        if let Some(current) = self.state.views()
            && current.version == set.version
            && current.source_hash == set.source_hash
        {
            return Ok(());
        }
        let prepared = tokio::task::spawn_blocking(move || ServedViews::prepare(&set))
            .await
            .context("preparing views")?;
        tracing::info!(
            org = self.org(),
            version = prepared.version,
            "serving new views"
        );
        self.state.install_views(prepared);
        if let Some(stats) = &self.webhook_stats {
            stats.views_installed();
        }
        Ok(())
    }
}

/// Runs an idempotent Redis read again once if it failed on a dead socket (the connection has
/// reconnected by then).
async fn retry_once<T, E, F, Fut>(mut op: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    match op().await {
        Ok(v) => Ok(v),
        Err(_) => op().await,
    }
}

/// Sleeps [`RETRY_DELAY`]; true if cancelled meanwhile.
async fn sleep_or_cancel(shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(RETRY_DELAY) => false,
    }
}
