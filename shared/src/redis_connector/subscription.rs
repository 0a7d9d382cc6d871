//! [`RedisConnector::subscribe`]: a pub/sub subscription as a stream of payloads, on a
//! connection of its own (the gateways' fleet cache wakes its waiters with it).

use futures::StreamExt as _;

use super::{COMMAND_TIMEOUT, CONNECT_TIMEOUT, ConnectorKind, RedisConnector};

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
