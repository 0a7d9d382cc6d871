//! Redis Sentinel: finding the master (the first sentinel naming one not flagged down,
//! confirmed by `ROLE`), following the sentinels' `+switch-master` announcements, and the
//! connection to the master that is dropped and re-resolved when a command shows the master is
//! lost (redis-rs does not move live connections after a failover, upstream issue #1438).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use redis::aio::MultiplexedConnection;
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{AsyncConnectionConfig, IntoConnectionInfo as _};

use super::{CONNECT_TIMEOUT, LOOKUP_RETRY, RESOLVE_TIMEOUT};

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
pub(super) struct MasterResolver {
    sentinel: tokio::sync::Mutex<Sentinel>,
    /// The monitored master's name.
    pub(super) master: String,
    node: SentinelNodeConnectionInfo,
    /// The database `REDIS_URL` selects on the master.
    pub(super) db: i64,
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
    pub(super) fn new(
        sentinels: &[(String, u16)],
        master: &str,
        url: &str,
    ) -> anyhow::Result<Self> {
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
    pub(super) fn switches(&self) -> u64 {
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
    pub(super) async fn master_client(self: &Arc<Self>) -> anyhow::Result<redis::Client> {
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
pub(super) struct MasterLink {
    /// Finds the master.
    pub(super) resolver: Arc<MasterResolver>,
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
    pub(super) fn new(resolver: Arc<MasterResolver>, config: AsyncConnectionConfig) -> Self {
        Self {
            resolver,
            config,
            current: parking_lot::Mutex::new(None),
            resolving: tokio::sync::Mutex::new(Resolving::default()),
        }
    }

    /// The connection to the master, resolving and connecting first if there is none.
    pub(super) async fn current(&self) -> redis::RedisResult<(u64, MultiplexedConnection)> {
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
    pub(super) fn check<T>(&self, generation: u64, result: &redis::RedisResult<T>) {
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
pub(super) fn master_switched() -> redis::RedisError {
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
    use super::super::{RedisConnection, RedisConnector, RedisTarget};
    use super::*;

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
