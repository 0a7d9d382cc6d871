//! A Redis Cluster on loopback: three masters (no replicas) on free ports, slots spread by
//! `redis-cli --cluster create`, ready once every node reports `cluster_state:ok`. Everything is
//! killed on drop.

use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::{RedisServer, eventually, free_port};

/// Three cluster-enabled redis-server processes forming one cluster.
pub struct RedisCluster {
    /// The masters, in creation order.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three masters and joins them into a cluster covering all 16384 slots.
    pub async fn start() -> anyhow::Result<Self> {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            // An explicit bus port: the default (port + 10000) may be taken or out of range.
            // Picked per attempt, so a port taken meanwhile costs only a retry.
            nodes.push(
                RedisServer::start_picking(|| {
                    Ok([
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-port",
                        &free_port()?.to_string(),
                        "--cluster-node-timeout",
                        "2000",
                    ]
                    .map(str::to_owned)
                    .to_vec())
                })
                .await?,
            );
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let output = tokio::process::Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .await
            .context(
                "running redis-cli --cluster create (install redis-tools; scripts/test.sh does)",
            )?;
        if !output.status.success() {
            bail!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        for node in &nodes {
            let client = node.client();
            eventually(Duration::from_secs(20), "cluster_state:ok", || async {
                let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut conn)
                    .await
                    .ok()?;
                info.contains("cluster_state:ok").then_some(())
            })
            .await?;
        }
        Ok(Self { nodes })
    }

    /// The nodes' addresses, as `REDIS_CLUSTER_NODES` wants them.
    pub fn node_addresses(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect::<Vec<_>>()
            .join(",")
    }
}
