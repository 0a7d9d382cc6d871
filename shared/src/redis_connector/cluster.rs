//! Redis Cluster clients: seed nodes carrying `REDIS_URL`'s credentials, and connections with a
//! response timeout of their own. redis-rs routes by slot and follows `MOVED`/`ASK` itself.

use std::time::Duration;

use anyhow::Context as _;
use redis::IntoConnectionInfo as _;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;

use super::CONNECT_TIMEOUT;

/// The seed nodes of `REDIS_CLUSTER_NODES`, each with the user and password of `url`.
pub(super) fn seed_nodes(
    nodes: &[(String, u16)],
    url: &str,
) -> anyhow::Result<Vec<redis::ConnectionInfo>> {
    let redis = url
        .into_connection_info()
        .context("REDIS_URL is not a valid Redis URL")?
        .redis_settings()
        .clone();
    nodes
        .iter()
        .map(|(host, port)| {
            (host.as_str(), *port)
                .into_connection_info()
                .map(|info| info.set_redis_settings(redis.clone()))
        })
        .collect::<redis::RedisResult<Vec<_>>>()
        .context("REDIS_CLUSTER_NODES is not usable")
}

/// A cluster connection of its own (own sockets to every node) with `response_timeout`.
pub(super) async fn connection(
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
