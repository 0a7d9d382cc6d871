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
//! On a Redis Cluster, redis-rs's cluster connection routes each command by its key's slot and
//! follows `MOVED`/`ASK` and failovers itself. Every hubcache key carries the `{prefix}` hash tag,
//! so multi-key scripts, pipelines and two-stream `XREAD`s stay in one slot.
//!
//! Layout: `target` ([`RedisTarget`]: where Redis is, from the settings), this module
//! ([`RedisConnector`]: opening connections), `connection` ([`RedisConnection`]: the one type
//! services hold), `sentinel` (finding and following the master), `cluster` (cluster clients).

mod cluster;
mod connection;
mod sentinel;
mod target;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use redis::AsyncConnectionConfig;
use redis::aio::ConnectionManagerConfig;

pub use connection::RedisConnection;
pub use sentinel::is_master_lost;
pub use target::RedisTarget;
pub(crate) use target::redact_url;

use connection::Inner;
use sentinel::{MasterLink, MasterResolver};

/// Response timeout of ordinary commands (snapshots are a few MB; allow for that).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for asking the sentinels where the master is (and checking it with `ROLE`).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failed master lookup, commands fail at once for this long instead of asking again.
const LOOKUP_RETRY: Duration = Duration::from_millis(200);

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
            RedisTarget::Cluster { nodes, url } => ConnectorKind::Cluster {
                nodes: cluster::seed_nodes(nodes, url)?,
            },
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
                let conn = cluster::connection(nodes, COMMAND_TIMEOUT).await?;
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
                let conn = cluster::connection(nodes, block + COMMAND_TIMEOUT).await?;
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

/// The configuration of ordinary-command connections to a Sentinel-resolved master.
fn command_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
}
