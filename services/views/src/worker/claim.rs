//! The claim task of one organisation's worker: takes over the refresh events a dead consumer
//! of the org's group read but never acknowledged (`XAUTOCLAIM`), forgets long-dead consumers
//! and samples the group's backlog into the org's gauges.

use std::sync::Arc;

use anyhow::Context as _;
use hubcache_shared::RedisConnection;
use redis::AsyncCommands as _;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamInfoConsumersReply, StreamInfoGroupsReply,
};
use tokio_util::sync::CancellationToken;

use super::{CLAIM_COUNT, ViewsWorker, WorkerError};
use crate::dropped_connection::once_more_if_dropped;

impl ViewsWorker {
    /// Every `claim_interval`, takes over events idle for `claim_idle` in any consumer's
    /// pending list (a worker that died between reading and acknowledging) and handles them,
    /// then deletes consumers idle for `consumer_expiry` with nothing pending.
    pub(crate) async fn claim_abandoned(
        self: Arc<Self>,
        mut conn: RedisConnection,
        shutdown: CancellationToken,
    ) {
        let mut ticker = tokio::time::interval(self.claim_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            match self.claim_sweep(&mut conn, &shutdown).await {
                Ok(0) => {}
                Ok(claimed) => tracing::info!(
                    claimed,
                    "handled refresh events abandoned by another consumer"
                ),
                // The consumer task recreates the group; nothing to claim in a new one anyway.
                Err(WorkerError::GroupMissing) => {
                    tracing::debug!("no consumer group to claim from yet")
                }
                Err(WorkerError::Unexpected(e)) => {
                    tracing::warn!(error = %format!("{e:#}"), "claiming abandoned refresh events failed; will retry");
                    continue;
                }
            }
            if let Err(e) = self.forget_idle_consumers(&mut conn).await {
                tracing::debug!(error = %format!("{e:#}"), "listing the group's consumers failed; will retry");
            }
            if let Err(e) = self.record_backlog(&mut conn).await {
                tracing::debug!(error = %format!("{e:#}"), "reading the group's backlog failed; will retry");
            }
        }
        tracing::info!(consumer = %self.consumer, "views claimer stopped");
    }

    /// One pass over the group's pending entries; returns how many were claimed and handled.
    async fn claim_sweep(
        &self,
        conn: &mut RedisConnection,
        shutdown: &CancellationToken,
    ) -> Result<usize, WorkerError> {
        let stream = self.keys.refresh_stream();
        let group = self.keys.views_group();
        let min_idle_ms = self.claim_idle.as_millis() as u64;
        let mut cursor = "0-0".to_owned();
        let mut claimed = 0;
        loop {
            let reply: StreamAutoClaimReply = once_more_if_dropped(|| {
                let mut conn = conn.clone();
                let (stream, cursor) = (&stream, &cursor);
                let options = StreamAutoClaimOptions::default().count(CLAIM_COUNT);
                async move {
                    conn.xautoclaim_options(
                        stream,
                        group,
                        &self.consumer,
                        min_idle_ms,
                        cursor,
                        options,
                    )
                    .await
                }
            })
            .await
            .map_err(|e| WorkerError::from_redis(e, "claiming abandoned refresh events"))?;
            if !reply.deleted_ids.is_empty() {
                tracing::warn!(ids = ?reply.deleted_ids, "abandoned refresh events were trimmed from the stream before anyone handled them");
            }
            for entry in &reply.claimed {
                tracing::info!(stream_id = %entry.id, "claimed an abandoned refresh event");
                self.stats.record_claim();
                self.handle_and_ack(conn, entry).await?;
                claimed += 1;
            }
            if reply.next_stream_id == "0-0" || shutdown.is_cancelled() {
                return Ok(claimed);
            }
            cursor = reply.next_stream_id;
        }
    }
    /// Sets the backlog gauges from `XINFO GROUPS` (one cheap command per claim interval):
    /// `hubcache_views_pending_entries` (delivered, not yet acknowledged: the `XPENDING` count)
    /// and `hubcache_views_stream_lag_entries` (not yet delivered to the group).
    async fn record_backlog(&self, conn: &mut RedisConnection) -> anyhow::Result<()> {
        let info: StreamInfoGroupsReply = conn
            .xinfo_groups(self.keys.refresh_stream())
            .await
            .context("XINFO GROUPS of the refresh stream")?;
        if let Some(group) = info
            .groups
            .iter()
            .find(|g| g.name == self.keys.views_group())
        {
            let org = self.stats.org().to_owned();
            metrics::gauge!("hubcache_views_pending_entries", "org" => org.clone())
                .set(group.pending as f64);
            if let Some(lag) = group.lag {
                metrics::gauge!("hubcache_views_stream_lag_entries", "org" => org).set(lag as f64);
            }
        }
        Ok(())
    }

    /// Deletes consumers (dead workers) idle longer than `consumer_expiry` with no pending
    /// entries, so the group lists only workers that may still be alive. Entries still pending
    /// are never dropped this way: they are claimed first.
    async fn forget_idle_consumers(&self, conn: &mut RedisConnection) -> anyhow::Result<usize> {
        let stream = self.keys.refresh_stream();
        let group = self.keys.views_group();
        let info: StreamInfoConsumersReply = conn
            .xinfo_consumers(&stream, group)
            .await
            .context("listing the group's consumers")?;
        let expiry_ms = self.consumer_expiry.as_millis();
        let mut forgotten = 0;
        for consumer in info.consumers {
            if consumer.name == self.consumer
                || consumer.pending > 0
                || (consumer.idle as u128) < expiry_ms
            {
                continue;
            }
            let _: i64 = conn
                .xgroup_delconsumer(&stream, group, &consumer.name)
                .await
                .with_context(|| format!("deleting idle consumer {}", consumer.name))?;
            tracing::info!(consumer = %consumer.name, idle_ms = consumer.idle, "deleted an idle consumer from the group");
            forgotten += 1;
        }
        Ok(forgotten)
    }
}
