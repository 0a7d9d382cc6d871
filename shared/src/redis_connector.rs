//! Redis connections, made one way for every service.
//!
//! Two kinds, because redis-rs multiplexes commands over one socket:
//! - [`RedisConnector::manager`]: a shared, auto-reconnecting connection for ordinary commands
//!   (short response timeout; the command that hit a dead socket fails and is retried by caller).
//! - [`RedisConnector::blocking`]: a dedicated connection for `XREAD`/`XREADGROUP ... BLOCK`,
//!   whose response timeout exceeds the BLOCK time. A blocked read on the shared connection would
//!   stall every other command, and the default 500 ms timeout would cut a 2 s BLOCK short.

use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};

/// Response timeout of ordinary commands (snapshots are a few MB; allow for that).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Opens connections to the configured Redis.
#[derive(Clone, Debug)]
pub struct RedisConnector {
    client: redis::Client,
}

impl RedisConnector {
    /// A connector for `url` (`REDIS_URL`). Does not connect yet.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
        Ok(Self { client })
    }

    /// A shared connection that reconnects in the background after Redis restarts.
    ///
    /// Fails if Redis cannot be reached at all right now; callers at start-up retry.
    pub async fn manager(&self) -> anyhow::Result<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        self.client
            .get_connection_manager_with_config(config)
            .await
            .context("connecting to Redis")
    }

    /// A shared connection, retrying every second until Redis answers or `cancel` fires.
    pub async fn manager_with_retry(
        &self,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Option<ConnectionManager> {
        loop {
            match self.manager().await {
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

    /// A dedicated connection for blocking stream reads of up to `block`.
    pub async fn blocking(&self, block: Duration) -> anyhow::Result<MultiplexedConnection> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(block + COMMAND_TIMEOUT));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .context("opening a blocking-read connection to Redis")
    }
}
