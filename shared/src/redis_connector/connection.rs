//! [`RedisConnection`]: the one connection type services hold, whatever the deployment; it
//! forwards to the connection of its kind and, for a Sentinel master, notes failures that mean
//! the master moved.

use std::fmt;
use std::sync::Arc;

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::sentinel::{MasterLink, MasterResolver, master_switched};

/// A connection to the configured Redis (see the module docs): what every service uses for
/// commands and scripts. Clones share the underlying connection.
#[derive(Clone)]
pub struct RedisConnection(pub(super) Inner);

/// What a [`RedisConnection`] is underneath.
#[derive(Clone)]
pub(super) enum Inner {
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
