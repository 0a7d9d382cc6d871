//! A Redis Sentinel deployment on loopback: one master, one replica and three sentinels, all
//! real processes on free ports, with short failure-detection times so failover tests finish in
//! seconds. Everything is killed on drop.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::{RedisServer, free_port};

/// How long a silent master takes to be considered down (`down-after-milliseconds`).
pub const DOWN_AFTER: Duration = Duration::from_millis(1000);
/// `failover-timeout`: also the pause before a failed failover attempt is retried (twice this).
const FAILOVER_TIMEOUT: Duration = Duration::from_millis(2000);

/// One master, one replica and three sentinels monitoring them under one master name.
pub struct SentinelSet {
    master_name: String,
    /// The initial master (killed by [`SentinelSet::kill_master`]).
    pub master: RedisServer,
    /// The replica (promoted when the master dies).
    pub replica: RedisServer,
    sentinels: Vec<SentinelProcess>,
}

struct SentinelProcess {
    port: u16,
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl SentinelSet {
    /// Starts master, replica (synchronised) and three sentinels that agree on the topology
    /// (each sees the replica and the two other sentinels, and a failover quorum is reachable).
    pub async fn start(master_name: &str) -> anyhow::Result<Self> {
        let master = RedisServer::start_with(&["--repl-diskless-sync-delay", "0"]).await?;
        let master_port = master.port().to_string();
        let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &master_port]).await?;
        crate::eventually(Duration::from_secs(15), "the replica to sync", || async {
            let info = info_replication(&replica.client()).await.ok()?;
            (info.get("master_link_status").map(String::as_str) == Some("up")).then_some(())
        })
        .await?;
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            sentinels.push(start_sentinel(master_name, master.port()).await?);
        }
        let set = Self {
            master_name: master_name.to_owned(),
            master,
            replica,
            sentinels,
        };
        for sentinel in &set.sentinels {
            let client = redis::Client::open(format!("redis://127.0.0.1:{}", sentinel.port))?;
            crate::eventually(
                Duration::from_secs(30),
                "the sentinels to discover the replica and each other",
                || async {
                    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                    let replicas: Vec<HashMap<String, String>> = redis::cmd("SENTINEL")
                        .arg("REPLICAS")
                        .arg(master_name)
                        .query_async(&mut conn)
                        .await
                        .ok()?;
                    let peers: Vec<HashMap<String, String>> = redis::cmd("SENTINEL")
                        .arg("SENTINELS")
                        .arg(master_name)
                        .query_async(&mut conn)
                        .await
                        .ok()?;
                    let quorum: String = redis::cmd("SENTINEL")
                        .arg("CKQUORUM")
                        .arg(master_name)
                        .query_async(&mut conn)
                        .await
                        .ok()?;
                    let replica_seen = replicas
                        .iter()
                        .any(|r| r.get("port") == Some(&set.replica.port().to_string()));
                    (replica_seen && peers.len() == 2 && quorum.starts_with("OK")).then_some(())
                },
            )
            .await?;
        }
        Ok(set)
    }

    /// The sentinels' addresses, as `REDIS_SENTINELS` wants them.
    pub fn sentinel_addresses(&self) -> String {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The master name the sentinels monitor (`REDIS_SENTINEL_MASTER`).
    pub fn master_name(&self) -> &str {
        &self.master_name
    }

    /// Kills the master with SIGKILL, as a crash would (no shutdown, no final sync).
    pub fn kill_master(&mut self) {
        self.master.stop();
    }

    /// The master's port according to the first sentinel that answers.
    pub async fn master_port(&self) -> anyhow::Result<u16> {
        for sentinel in &self.sentinels {
            let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{}", sentinel.port))
            else {
                continue;
            };
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                continue;
            };
            let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(&self.master_name)
                .query_async(&mut conn)
                .await
                .ok()
                .flatten();
            if let Some((_, port)) = addr {
                return Ok(port);
            }
        }
        bail!("no sentinel named a master")
    }

    /// Asks a sentinel for a switchover (`SENTINEL FAILOVER`): the replica is promoted while
    /// the master still runs, and the master is then turned into a replica (its clients killed).
    pub async fn switch_over(&self) -> anyhow::Result<()> {
        let sentinel = self.sentinels.first().context("no sentinel")?;
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", sentinel.port))?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let _: String = redis::cmd("SENTINEL")
            .arg("FAILOVER")
            .arg(&self.master_name)
            .query_async(&mut conn)
            .await
            .context("SENTINEL FAILOVER")?;
        Ok(())
    }

    /// Waits until the replica has been promoted (its `ROLE` is master), returning how long that
    /// took from `since`.
    pub async fn wait_for_promotion(
        &self,
        since: Instant,
        timeout: Duration,
    ) -> anyhow::Result<Duration> {
        let client = self.replica.client();
        crate::eventually(timeout, "the replica to be promoted", || async {
            let info = info_replication(&client).await.ok()?;
            (info.get("role").map(String::as_str) == Some("master")).then(|| since.elapsed())
        })
        .await
    }
}

/// `INFO replication` as a map.
async fn info_replication(client: &redis::Client) -> anyhow::Result<HashMap<String, String>> {
    let mut conn = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut conn)
        .await?;
    Ok(info
        .lines()
        .filter_map(|line| line.trim().split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// Starts a sentinel and waits until it answers PING. A port that was free when picked can be
/// taken before the sentinel binds it; the sentinel then exits at once and another port is tried.
async fn start_sentinel(master_name: &str, master_port: u16) -> anyhow::Result<SentinelProcess> {
    const ATTEMPTS: usize = 5;
    for _ in 0..ATTEMPTS {
        let mut sentinel = spawn_sentinel(master_name, master_port)?;
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", sentinel.port))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return Ok(sentinel);
            }
            if sentinel
                .child
                .try_wait()
                .context("polling a sentinel")?
                .is_some()
            {
                break; // its port was taken: try another
            }
            if Instant::now() > deadline {
                bail!(
                    "a sentinel on port {} did not answer PING within 10s",
                    sentinel.port
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    bail!("no sentinel started in {ATTEMPTS} attempts (each exited at once)")
}

fn spawn_sentinel(master_name: &str, master_port: u16) -> anyhow::Result<SentinelProcess> {
    let port = free_port()?;
    let dir = std::env::temp_dir().join(format!("hubcache-sentinel-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).context("creating sentinel dir")?;
    let config = dir.join("sentinel.conf");
    // Sentinel rewrites its config file as it learns the topology: it must be its own, writable.
    std::fs::write(
        &config,
        format!(
            "port {port}\nbind 127.0.0.1\ndaemonize no\nlogfile \"\"\ndir {dir}\n\
             sentinel monitor {master_name} 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds {master_name} {down}\n\
             sentinel failover-timeout {master_name} {failover}\n\
             sentinel parallel-syncs {master_name} 1\n",
            dir = dir.display(),
            down = DOWN_AFTER.as_millis(),
            failover = FAILOVER_TIMEOUT.as_millis(),
        ),
    )
    .context("writing sentinel.conf")?;
    let child = Command::new("redis-server")
        .arg(&config)
        .arg("--sentinel")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning redis-server --sentinel (install redis-server; scripts/test.sh does)")?;
    Ok(SentinelProcess { port, child, dir })
}
