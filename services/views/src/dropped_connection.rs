//! One immediate retry for idempotent commands that hit a connection Redis had dropped.
//!
//! `RedisConnection` reconnects after Redis restarts (or finds the new master after a Sentinel
//! failover), but the command that found the socket dead still fails. Retrying it once (the retry waits for the reconnection)
//! heals that case at once instead of after a backoff; real outages still fail and back off.

use std::future::Future;

use redis::RedisResult;

/// Whether `error` means the connection was lost (as opposed to Redis answering an error).
pub(crate) fn is_dropped(error: &redis::RedisError) -> bool {
    error.is_io_error() || error.is_connection_dropped()
}

/// Runs `op`, and once more if it failed on a dropped connection. Only for idempotent
/// operations: the first attempt may have been applied before the connection died.
pub(crate) async fn once_more_if_dropped<T, F, Fut>(mut op: F) -> RedisResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = RedisResult<T>>,
{
    match op().await {
        Err(error) if is_dropped(&error) => {
            tracing::debug!(%error, "Redis connection was dropped; retrying once");
            op().await
        }
        other => other,
    }
}
