//! Redis connections, made one way for every service, whatever the deployment: one Redis
//! (`REDIS_URL`), a Sentinel-managed master/replica set (`REDIS_SENTINELS` +
//! `REDIS_SENTINEL_MASTER`) or a Redis Cluster (`REDIS_CLUSTER_NODES`).
//!
//! Services only ever see [`RedisConnection`]: cheap to clone, implementing
//! [`redis::aio::ConnectionLike`] so typed commands (`AsyncCommands`) and
//! `Script::invoke_async` work on it. Two kinds, because redis-rs multiplexes commands over one
//! socket:
//! - [`RedisConnector::shared`]: one connection for ordinary commands, shared by clones (short
//!   response timeout; the command that hit a dead socket fails and is retried by its caller).
//! - [`RedisConnector::blocking`]: a dedicated connection for `XREAD`/`XREADGROUP ... BLOCK`,
//!   whose response timeout exceeds the BLOCK time. A blocked read on the shared connection would
//!   stall every other command, and the default 500 ms timeout would cut a 2 s BLOCK short.
//!
//! With Sentinel, redis-rs does not move a live connection to a new master after a failover
//! (upstream issue #1438), so [`RedisConnection`] does it: a command failing in a way that means
//! "this is not (or no longer) the master" (connection lost, timeout, `READONLY`, `MASTERDOWN`,
//! `UNBLOCKED`, `LOADING`) discards the connection, and the next command asks the sentinels for
//! the current master (checked with `ROLE`) and connects there. The failed command itself is
//! returned as an error, never replayed: it may have been applied, and callers already retry
//! what is safe to retry. A replaced master that still runs (switchover, partition) fails
//! nothing until Sentinel reconfigures it, so the connector also follows the sentinels'
//! `+switch-master` announcements and retires every connection made before a switch.
//!
//! A third kind, [`RedisConnector::subscribe`], is a pub/sub subscription on a connection of its
//! own (the gateways' fleet cache wakes its waiters with it).
//!
//! On a Redis Cluster, redis-rs's cluster connection routes each command by its key's slot and
//! follows `MOVED`/`ASK` and failovers itself. Every pipeline key carries the `{prefix}` hash
//! tag, so multi-key scripts, pipelines and two-stream `XREAD`s stay in one slot; the gateways'
//! fleet cache keys carry a per-entry tag instead (spread over slots, each script in one).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{AsyncConnectionConfig, Cmd, IntoConnectionInfo as _, Pipeline, RedisFuture, Value};

/// Response timeout of ordinary commands (snapshots are a few MB; allow for that).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for asking the sentinels where the master is (and checking it with `ROLE`).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failed master lookup, commands fail at once for this long instead of asking again.
const LOOKUP_RETRY: Duration = Duration::from_millis(200);

/// Where Redis is: what the settings (`REDIS_URL`, `REDIS_SENTINELS`, `REDIS_SENTINEL_MASTER`)
/// describe, validated (see `CommonSettings::redis_target`).
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One Redis at `REDIS_URL`.
    Single {
        /// `redis://[user:password@]host[:port][/db]`.
        url: String,
    },
    /// A Redis Cluster reached through any of its nodes; `url` supplies credentials only.
    Cluster {
        /// Seed nodes' `host:port` addresses (`REDIS_CLUSTER_NODES`); the rest is discovered.
        nodes: Vec<(String, u16)>,
        /// `REDIS_URL`: its user and password are used on every node; its host is ignored.
        url: String,
    },
    /// A master found through Redis Sentinel; `url` supplies credentials and database only.
    Sentinel {
        /// The sentinels' `host:port` addresses (`REDIS_SENTINELS`).
        sentinels: Vec<(String, u16)>,
        /// The monitored master's name (`REDIS_SENTINEL_MASTER`).
        master: String,
        /// `REDIS_URL`: its user, password and db are used on the master; its host is ignored.
        url: String,
    },
}

impl fmt::Debug for RedisTarget {
    // The URL may carry a password: show only where Redis is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Single { url } => f
                .debug_struct("Single")
                .field("url", &redact_url(url))
                .finish(),
            Self::Cluster { nodes, .. } => f.debug_struct("Cluster").field("nodes", nodes).finish(),
            Self::Sentinel {
                sentinels, master, ..
            } => f
                .debug_struct("Sentinel")
                .field("sentinels", sentinels)
                .field("master", master)
                .finish(),
        }
    }
}

/// `url` without its password (for logs and error messages).
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "(invalid URL)".to_owned(),
    }
}

/// Opens connections to the configured Redis.
#[derive(Clone, Debug)]
pub struct RedisConnector {
    kind: ConnectorKind,
}

#[derive(Clone)]
enum ConnectorKind {
    Single(redis::Client),
    Sentinel(Arc<MasterResolver>),
    /// The cluster, as seed nodes and credentials (each connection builds its own client: the
    /// response timeout is a client setting).
    Cluster {
        nodes: Vec<redis::ConnectionInfo>,
    },
}

impl fmt::Debug for ConnectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Single(client) => f
                .debug_tuple("Single")
                .field(&client.get_connection_info().addr())
                .finish(),
            Self::Sentinel(resolver) => f
                .debug_struct("Sentinel")
                .field("master", &resolver.master)
                .finish(),
            Self::Cluster { nodes } => f
                .debug_struct("Cluster")
                .field(
                    "nodes",
                    &nodes
                        .iter()
                        .map(|n| n.addr().to_string())
                        .collect::<Vec<_>>(),
                )
                .finish(),
        }
    }
}

impl RedisConnector {
    /// A connector for `target`. Does not connect yet.
    pub fn new(target: &RedisTarget) -> anyhow::Result<Self> {
        let kind = match target {
            RedisTarget::Single { url } => ConnectorKind::Single(
                redis::Client::open(url.as_str()).context("REDIS_URL is not a valid Redis URL")?,
            ),
            RedisTarget::Sentinel {
                sentinels,
                master,
                url,
            } => ConnectorKind::Sentinel(Arc::new(MasterResolver::new(sentinels, master, url)?)),
            RedisTarget::Cluster { nodes, url } => {
                let redis = url
                    .as_str()
                    .into_connection_info()
                    .context("REDIS_URL is not a valid Redis URL")?
                    .redis_settings()
                    .clone();
                let nodes = nodes
                    .iter()
                    .map(|(host, port)| {
                        (host.as_str(), *port)
                            .into_connection_info()
                            .map(|info| info.set_redis_settings(redis.clone()))
                    })
                    .collect::<redis::RedisResult<Vec<_>>>()
                    .context("REDIS_CLUSTER_NODES is not usable")?;
                ConnectorKind::Cluster { nodes }
            }
        };
        Ok(Self { kind })
    }

    /// The connection for ordinary commands, shared by its clones. It heals by itself: after a
    /// Redis restart (reconnecting in the background), a Sentinel failover (finding the new
    /// master on the next command) or a cluster topology change (redis-rs follows it).
    ///
    /// Fails if Redis cannot be reached at all right now; callers at start-up retry.
    pub async fn shared(&self) -> anyhow::Result<RedisConnection> {
        match &self.kind {
            ConnectorKind::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(COMMAND_TIMEOUT))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(2));
                let manager = client
                    .get_connection_manager_with_config(config)
                    .await
                    .context("connecting to Redis")?;
                Ok(RedisConnection(Inner::Managed(manager)))
            }
            ConnectorKind::Sentinel(resolver) => {
                let link = MasterLink::new(Arc::clone(resolver), command_config());
                link.current()
                    .await
                    .context("connecting to the Redis master")?;
                Ok(RedisConnection(Inner::Master(Arc::new(link))))
            }
            ConnectorKind::Cluster { nodes } => {
                let conn = cluster_connection(nodes, COMMAND_TIMEOUT).await?;
                Ok(RedisConnection(Inner::Cluster(conn)))
            }
        }
    }

    /// The shared connection, retrying every second until Redis answers or `cancel` fires.
    pub async fn shared_with_retry(
        &self,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Option<RedisConnection> {
        loop {
            match self.shared().await {
                Ok(conn) => return Some(conn),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "Redis unavailable; retrying in 1s")
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return None,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// A dedicated connection for blocking stream reads of up to `block`. It does not heal:
    /// after an error the caller opens a new one (which, with Sentinel, goes to the master of
    /// that moment).
    pub async fn blocking(&self, block: Duration) -> anyhow::Result<RedisConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(block + COMMAND_TIMEOUT));
        let client = match &self.kind {
            ConnectorKind::Single(client) => client.clone(),
            ConnectorKind::Sentinel(resolver) => {
                let switches = resolver.switches();
                let conn = resolver
                    .master_client()
                    .await?
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .context("opening a blocking-read connection to the Redis master")?;
                return Ok(RedisConnection(Inner::DedicatedToMaster {
                    conn,
                    resolver: Arc::clone(resolver),
                    switches,
                }));
            }
            ConnectorKind::Cluster { nodes } => {
                let conn = cluster_connection(nodes, block + COMMAND_TIMEOUT).await?;
                return Ok(RedisConnection(Inner::Cluster(conn)));
            }
        };
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .context("opening a blocking-read connection to Redis")?;
        Ok(RedisConnection(Inner::Dedicated(conn)))
    }
}

/// Payloads published on one Redis pub/sub channel, as they arrive. The stream ends when the
/// subscription's connection is lost: the caller subscribes again (messages published in
/// between are missed, so callers must not depend on every one).
pub type Subscription = futures::stream::BoxStream<'static, Vec<u8>>;

impl RedisConnector {
    /// Subscribes to `channel` on a connection of its own: the master (one Redis or Sentinel's
    /// current one), or on a Cluster the first seed node that answers (a `PUBLISH` on any node
    /// of a cluster reaches every node's subscribers).
    pub async fn subscribe(&self, channel: &str) -> anyhow::Result<Subscription> {
        let clients = match &self.kind {
            ConnectorKind::Single(client) => vec![client.clone()],
            ConnectorKind::Sentinel(resolver) => vec![resolver.master_client().await?],
            ConnectorKind::Cluster { nodes } => nodes
                .iter()
                .filter_map(|node| redis::Client::open(node.clone()).ok())
                .collect(),
        };
        let mut last_error = anyhow::anyhow!("no Redis node to subscribe on");
        for client in clients {
            let subscribed = async {
                let mut pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
                    .await
                    .map_err(|_| anyhow::anyhow!("no connection within {CONNECT_TIMEOUT:?}"))??;
                tokio::time::timeout(COMMAND_TIMEOUT, pubsub.subscribe(channel))
                    .await
                    .map_err(|_| {
                        anyhow::anyhow!("SUBSCRIBE not answered in {COMMAND_TIMEOUT:?}")
                    })??;
                anyhow::Ok(pubsub)
            };
            match subscribed.await {
                Ok(pubsub) => {
                    return Ok(pubsub
                        .into_on_message()
                        .map(|message| message.get_payload_bytes().to_vec())
                        .boxed());
                }
                Err(e) => last_error = e.context("subscribing to a Redis channel"),
            }
        }
        Err(last_error)
    }
}

/// A cluster connection of its own (own sockets to every node) with `response_timeout`.
async fn cluster_connection(
    nodes: &[redis::ConnectionInfo],
    response_timeout: Duration,
) -> anyhow::Result<ClusterConnection> {
    let client = ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(response_timeout)
        .build()
        .context("REDIS_CLUSTER_NODES is not usable")?;
    client
        .get_async_connection()
        .await
        .context("connecting to the Redis Cluster")
}

/// The configuration of ordinary-command connections to a Sentinel-resolved master.
fn command_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
}

/// A connection to the configured Redis (see the module docs): what every service uses for
/// commands and scripts. Clones share the underlying connection.
#[derive(Clone)]
pub struct RedisConnection(Inner);

#[derive(Clone)]
enum Inner {
    /// One Redis: redis-rs's auto-reconnecting manager.
    Managed(ConnectionManager),
    /// A Sentinel-resolved master, followed across failovers.
    Master(Arc<MasterLink>),
    /// A dedicated connection (blocking reads), replaced by its owner after an error.
    Dedicated(MultiplexedConnection),
    /// A Redis Cluster: redis-rs routes by slot and follows the topology.
    Cluster(ClusterConnection),
    /// A dedicated connection to a Sentinel-resolved master: refuses commands once the
    /// sentinels announced another master, so its owner opens a new one there.
    DedicatedToMaster {
        conn: MultiplexedConnection,
        resolver: Arc<MasterResolver>,
        switches: u64,
    },
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.0 {
            Inner::Managed(_) => "managed",
            Inner::Master(_) => "sentinel-master",
            Inner::Dedicated(_) => "dedicated",
            Inner::Cluster(_) => "cluster",
            Inner::DedicatedToMaster { .. } => "dedicated-sentinel-master",
        };
        f.debug_tuple("RedisConnection").field(&kind).finish()
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Inner::Managed(conn) => conn.req_packed_command(cmd),
            Inner::Dedicated(conn) => conn.req_packed_command(cmd),
            Inner::Cluster(conn) => conn.req_packed_command(cmd),
            Inner::DedicatedToMaster {
                conn,
                resolver,
                switches,
            } => {
                if resolver.switches() != *switches {
                    return Box::pin(async { Err(master_switched()) });
                }
                conn.req_packed_command(cmd)
            }
            Inner::Master(link) => Box::pin(async move {
                let (generation, mut conn) = link.current().await?;
                let result = conn.req_packed_command(cmd).await;
                link.check(generation, &result);
                result
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Inner::Managed(conn) => conn.req_packed_commands(pipeline, offset, count),
            Inner::Dedicated(conn) => conn.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
            Inner::DedicatedToMaster {
                conn,
                resolver,
                switches,
            } => {
                if resolver.switches() != *switches {
                    return Box::pin(async { Err(master_switched()) });
                }
                conn.req_packed_commands(pipeline, offset, count)
            }
            Inner::Master(link) => Box::pin(async move {
                let (generation, mut conn) = link.current().await?;
                let result = conn.req_packed_commands(pipeline, offset, count).await;
                link.check(generation, &result);
                result
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Inner::Managed(conn) => conn.get_db(),
            Inner::Dedicated(conn) => conn.get_db(),
            Inner::Cluster(conn) => conn.get_db(),
            Inner::DedicatedToMaster { conn, .. } => conn.get_db(),
            Inner::Master(link) => link.resolver.db,
        }
    }
}

/// Whether `error` means the connection is not (or no longer) to a usable master, so the next
/// command must find the master again: the socket died or hung, the server is a replica now
/// (`READONLY`, or `UNBLOCKED` for a blocked read when it was demoted), or it is not serving
/// yet (`MASTERDOWN`, `LOADING`).
pub fn is_master_lost(error: &redis::RedisError) -> bool {
    if error.is_io_error() || error.is_connection_dropped() || error.is_timeout() {
        return true;
    }
    if matches!(
        error.code(),
        Some("READONLY" | "MASTERDOWN" | "UNBLOCKED" | "LOADING")
    ) {
        return true;
    }
    // A write inside a Lua script on a replica surfaces as a script error quoting READONLY.
    error.to_string().contains("READONLY")
}

/// Asks the sentinels where the master is; one per connector, shared by its connections so the
/// sentinel connections it caches are reused.
struct MasterResolver {
    sentinel: tokio::sync::Mutex<Sentinel>,
    master: String,
    node: SentinelNodeConnectionInfo,
    db: i64,
    /// The sentinels, for the `+switch-master` watcher.
    sentinel_urls: Vec<String>,
    /// Counts master switches announced by the sentinels (and resubscriptions, after which one
    /// may have been missed): a connection made under an older count is stale.
    switches: AtomicU64,
    /// The `+switch-master` watcher task, started by the first lookup, stopped on drop.
    watcher: OnceLock<tokio::task::AbortHandle>,
}

impl Drop for MasterResolver {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.get() {
            watcher.abort();
        }
    }
}

impl MasterResolver {
    fn new(sentinels: &[(String, u16)], master: &str, url: &str) -> anyhow::Result<Self> {
        let redis = url
            .into_connection_info()
            .context("REDIS_URL is not a valid Redis URL")?
            .redis_settings()
            .clone();
        let db = redis.db();
        let addresses: Vec<String> = sentinels
            .iter()
            .map(|(host, port)| format!("redis://{host}:{port}"))
            .collect();
        let sentinel =
            Sentinel::build(addresses.clone()).context("REDIS_SENTINELS is not usable")?;
        Ok(Self {
            sentinel: tokio::sync::Mutex::new(sentinel),
            master: master.to_owned(),
            node: SentinelNodeConnectionInfo::default().set_redis_connection_info(redis),
            db,
            sentinel_urls: addresses,
            switches: AtomicU64::new(0),
            watcher: OnceLock::new(),
        })
    }

    /// The current count of master switches (see `switches`).
    fn switches(&self) -> u64 {
        self.switches.load(Ordering::Acquire)
    }

    /// Starts the `+switch-master` watcher unless it runs (needs a Tokio runtime: called from
    /// async code only).
    fn ensure_watching(self: &Arc<Self>) {
        self.watcher
            .get_or_init(|| tokio::spawn(watch_switches(Arc::downgrade(self))).abort_handle());
    }

    /// A client for the current master: the first sentinel that names a master not flagged
    /// down, confirmed as master by `ROLE` (so a promoted replica is only used once promoted).
    async fn master_client(self: &Arc<Self>) -> anyhow::Result<redis::Client> {
        self.ensure_watching();
        let mut sentinel = self.sentinel.lock().await;
        let lookup = sentinel.async_master_for(&self.master, Some(&self.node));
        tokio::time::timeout(RESOLVE_TIMEOUT, lookup)
            .await
            .map_err(|_| {
                anyhow::anyhow!("the sentinels did not answer within {RESOLVE_TIMEOUT:?}")
            })?
            .with_context(|| format!("asking the sentinels for master {:?}", self.master))
    }
}

/// Follows the sentinels' `+switch-master` announcements for our master and counts them in
/// `switches`, so connections leave a master the moment it is replaced, even one that still
/// runs and accepts writes (a switchover, or a partition): without this they would only notice
/// when Sentinel reconfigures it, up to its 10 s replica check later, and writes meanwhile would
/// be lost. Subscribes to one sentinel at a time, moving to the next when it goes away; a
/// resubscription counts as a switch (one may have been missed while unsubscribed).
async fn watch_switches(resolver: std::sync::Weak<MasterResolver>) {
    let (urls, master) = match resolver.upgrade() {
        Some(r) => (r.sentinel_urls.clone(), r.master.clone()),
        None => return,
    };
    let mut subscribed_before = false;
    for url in urls.iter().cycle() {
        if let Ok(client) = redis::Client::open(url.as_str())
            && let Ok(Ok(mut pubsub)) =
                tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await
            && pubsub.subscribe("+switch-master").await.is_ok()
        {
            if subscribed_before {
                let Some(resolver) = resolver.upgrade() else {
                    return;
                };
                resolver.switches.fetch_add(1, Ordering::AcqRel);
            }
            subscribed_before = true;
            tracing::debug!(sentinel = %url, "watching +switch-master");
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                let payload: String = message.get_payload().unwrap_or_default();
                // "<master name> <old ip> <old port> <new ip> <new port>"
                if payload.split(' ').next() == Some(master.as_str()) {
                    let Some(resolver) = resolver.upgrade() else {
                        return;
                    };
                    resolver.switches.fetch_add(1, Ordering::AcqRel);
                    tracing::info!(%payload, "Sentinel switched the Redis master; reconnecting");
                }
            }
        }
        if resolver.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The connection of a [`RedisConnection`] to a Sentinel-resolved master, with a generation
/// number so that many clones failing at once discard it (and resolve the master) only once.
struct MasterLink {
    resolver: Arc<MasterResolver>,
    config: AsyncConnectionConfig,
    /// Generation, the connection, and the resolver's switch count when it was made.
    current: parking_lot::Mutex<Option<(u64, MultiplexedConnection, u64)>>,
    /// Held while resolving, so concurrent commands wait for one lookup instead of each doing
    /// their own.
    resolving: tokio::sync::Mutex<Resolving>,
}

/// What the resolving lock guards.
#[derive(Default)]
struct Resolving {
    /// The last generation handed out.
    generation: u64,
    /// When the last lookup failed, and why: commands queued behind a failed lookup fail at
    /// once instead of each repeating it (a black-holed sentinel costs `RESOLVE_TIMEOUT` each).
    failed: Option<(std::time::Instant, String)>,
}

impl MasterLink {
    fn new(resolver: Arc<MasterResolver>, config: AsyncConnectionConfig) -> Self {
        Self {
            resolver,
            config,
            current: parking_lot::Mutex::new(None),
            resolving: tokio::sync::Mutex::new(Resolving::default()),
        }
    }

    /// The connection to the master, resolving and connecting first if there is none.
    async fn current(&self) -> redis::RedisResult<(u64, MultiplexedConnection)> {
        if let Some(current) = self.fresh() {
            return Ok(current);
        }
        let mut resolving = self.resolving.lock().await;
        if let Some(current) = self.fresh() {
            return Ok(current);
        }
        let switches = self.resolver.switches();
        if let Some((at, why)) = &resolving.failed
            && at.elapsed() < LOOKUP_RETRY
        {
            return Err(lookup_error(why));
        }
        let connected = async {
            let client = self
                .resolver
                .master_client()
                .await
                .map_err(|e| format!("{e:#}"))?;
            let conn = client
                .get_multiplexed_async_connection_with_config(&self.config)
                .await
                .map_err(|e| format!("connecting to the master the sentinels named: {e}"))?;
            Ok::<_, String>((client, conn))
        }
        .await;
        let (client, conn) = match connected {
            Ok(connected) => connected,
            Err(why) => {
                let error = lookup_error(&why);
                resolving.failed = Some((std::time::Instant::now(), why));
                return Err(error);
            }
        };
        resolving.failed = None;
        resolving.generation += 1;
        tracing::info!(
            master = %self.resolver.master,
            address = %client.get_connection_info().addr(),
            generation = resolving.generation,
            "connected to the Redis master named by Sentinel"
        );
        *self.current.lock() = Some((resolving.generation, conn.clone(), switches));
        Ok((resolving.generation, conn))
    }

    /// The connection, unless there is none or the master was switched since it was made.
    fn fresh(&self) -> Option<(u64, MultiplexedConnection)> {
        let mut current = self.current.lock();
        match &*current {
            Some((generation, conn, switches)) if *switches == self.resolver.switches() => {
                Some((*generation, conn.clone()))
            }
            Some(_) => {
                tracing::info!(master = %self.resolver.master, "the master was switched; asking the sentinels for the new one");
                *current = None;
                None
            }
            None => None,
        }
    }

    /// Discards generation `generation` of the connection if `result` says the master is lost.
    fn check<T>(&self, generation: u64, result: &redis::RedisResult<T>) {
        let Err(error) = result else { return };
        if !is_master_lost(error) {
            return;
        }
        let mut current = self.current.lock();
        if current.as_ref().is_some_and(|(g, _, _)| *g == generation) {
            tracing::warn!(%error, master = %self.resolver.master, "lost the Redis master; asking the sentinels again on the next command");
            *current = None;
        }
    }
}

/// The error of a dedicated connection whose master was replaced (a connection-level error:
/// its owner opens a new one).
fn master_switched() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Io,
        "the sentinels switched the Redis master; reopen the connection",
    ))
}

/// A failed master lookup as a connection-level Redis error, so callers treat it like Redis
/// being unreachable (retry with backoff).
/// (Not an `io::Error` inside: anyhow's `{:#}` would print its message twice, once as the
/// error and once as its source.)
fn lookup_error(why: &str) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "no Redis master", why.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let target = RedisTarget::Single {
            url: "redis://user:hunter2@127.0.0.1:6379/1".to_owned(),
        };
        let debug = format!("{target:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("127.0.0.1"), "{debug}");
    }

    /// A live connection moves to the promoted replica after a switchover by itself (redis-rs
    /// alone would keep talking to the demoted master).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shared_connection_follows_a_switchover_to_the_promoted_replica() {
        use redis::AsyncCommands as _;

        let set = hubcache_testkit::SentinelSet::start("shared-ha")
            .await
            .expect("sentinels start");
        let target = RedisTarget::Sentinel {
            sentinels: crate::settings::parse_host_ports(&set.sentinel_addresses())
                .expect("addresses"),
            master: set.master_name().to_owned(),
            url: "redis://127.0.0.1".to_owned(),
        };
        let mut conn = RedisConnector::new(&target)
            .expect("connector")
            .shared()
            .await
            .expect("connects to the master");
        let port = |conn: &mut RedisConnection| {
            let mut conn = conn.clone();
            async move {
                let reply: Vec<String> = redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("port")
                    .query_async(&mut conn)
                    .await
                    .ok()?;
                reply.get(1)?.parse::<u16>().ok()
            }
        };
        assert_eq!(port(&mut conn).await, Some(set.master.port()));
        let _: i64 = conn.incr("switchover-counter", 1).await.expect("INCR");

        set.switch_over().await.expect("switchover starts");
        let started = std::time::Instant::now();
        let replica_port = set.replica.port();
        let moved = hubcache_testkit::eventually(
            Duration::from_secs(30),
            "the connection to reach the promoted replica",
            || {
                let mut conn = conn.clone();
                async move {
                    // Commands fail (READONLY, killed connection) until the new master is
                    // found. Ask where the connection points first: an INCR answered before the
                    // switch reached the old master, which still accepts writes for a moment.
                    (port(&mut conn).await? == replica_port).then_some(())?;
                    conn.incr::<_, _, i64>("switchover-counter", 1).await.ok()
                }
            },
        )
        .await
        .expect("the shared connection follows the switchover");
        eprintln!(
            "switchover: writes land on the promoted replica after {:?}",
            started.elapsed()
        );
        let stored: i64 = set
            .replica
            .client()
            .get_multiplexed_async_connection()
            .await
            .expect("replica connection")
            .get("switchover-counter")
            .await
            .expect("GET");
        assert!(stored >= moved, "the write went to the new master");
    }

    #[test]
    fn replica_and_connection_errors_mean_the_master_is_lost() {
        let readonly = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly),
            "You can't write against a read only replica.",
        ));
        assert!(is_master_lost(&readonly));
        let io = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(is_master_lost(&io));
        let wrong_type = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ));
        assert!(!is_master_lost(&wrong_type));
        // Our own lookup and switch errors are connection-level: callers retry and reconnect.
        for own in [lookup_error("sentinels unreachable"), master_switched()] {
            assert!(own.is_io_error() && own.is_connection_dropped(), "{own}");
            assert!(is_master_lost(&own));
        }
        let shown = format!(
            "{:#}",
            anyhow::Error::new(lookup_error("sentinels unreachable"))
        );
        assert_eq!(shown.matches("sentinels unreachable").count(), 1, "{shown}");
    }
}
