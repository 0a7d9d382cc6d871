//! Webhook hints: the gateway appends a [`WebhookHint`] to the hints stream for every verified
//! delivery; this module follows that stream and tells the poll loop which cached endpoints to
//! revalidate now.
//!
//! The reader runs in every fetcher replica (plain `XREAD BLOCK` from the stream's last id at
//! start: a fetcher that starts polls everything anyway) and collects hints on the
//! [`HintBoard`] of the org the hint names (one board per org's poll loop), keyed by endpoint, so
//! any number of deliveries for one endpoint become one pending entry: a burst coalesces into one
//! revalidation. Only the holder of that org's lease takes entries off its board.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hubcache_shared::events::newest_entry_id;
use hubcache_shared::{KeySchema, RedisConnector, WebhookHint};
use parking_lot::Mutex;
use redis::streams::StreamReadReply;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long one `XREAD` blocks (the blocking connection's timeout is longer).
const BLOCK: Duration = Duration::from_secs(2);
/// Entries read per `XREAD`.
const READ_COUNT: usize = 1_000;
/// Wait before reconnecting after a Redis error.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// Endpoints hinted since the poll loop last looked, each with the earliest receipt time (Unix
/// ms) of the deliveries naming it.
#[derive(Debug, Default)]
pub(crate) struct HintBoard {
    pending: Mutex<HashMap<String, u64>>,
    changed: Notify,
}

impl HintBoard {
    /// Notes that `path` may have changed (delivery received at `received_at_ms`).
    pub(crate) fn post(&self, path: String, received_at_ms: u64) {
        self.pending
            .lock()
            .entry(path)
            .and_modify(|earliest| *earliest = (*earliest).min(received_at_ms))
            .or_insert(received_at_ms);
        self.changed.notify_one();
    }

    /// Takes every pending entry.
    pub(crate) fn take(&self) -> HashMap<String, u64> {
        std::mem::take(&mut *self.pending.lock())
    }

    /// Resolves when something is posted (at once if something was posted since the last wait).
    pub(crate) async fn wait(&self) {
        self.changed.notified().await;
    }
}

/// Where the hints naming one organisation go: its poll loop's board and its endpoints.
#[derive(Debug)]
pub(crate) struct HintRoute {
    /// The board of the org's poll loop.
    pub(crate) board: Arc<HintBoard>,
    /// The org's cached endpoints' paths, lowercased, to their configured spelling.
    endpoints: HashMap<String, String>,
}

impl HintRoute {
    /// A route posting to `board` the hints that name one of `endpoints`.
    pub(crate) fn new(board: Arc<HintBoard>, endpoints: impl IntoIterator<Item = String>) -> Self {
        Self {
            board,
            endpoints: endpoints
                .into_iter()
                .map(|path| (path.to_ascii_lowercase(), path))
                .collect(),
        }
    }
}

/// Follows the hints stream and posts the cached endpoints each hint names on the board of the
/// org the hint names (logins are case-insensitive); hints for other orgs are ignored.
pub(crate) struct HintReader {
    connector: RedisConnector,
    stream: String,
    /// Each configured org, lowercased, to its route.
    routes: HashMap<String, HintRoute>,
}

impl HintReader {
    /// A reader posting each hint on the route of the org it names (`routes`: org login, any
    /// case, to its route).
    pub(crate) fn new(
        connector: RedisConnector,
        keys: &KeySchema,
        routes: impl IntoIterator<Item = (String, HintRoute)>,
    ) -> Self {
        Self {
            connector,
            stream: keys.webhook_hints_stream(),
            routes: routes
                .into_iter()
                .map(|(org, route)| (org.to_ascii_lowercase(), route))
                .collect(),
        }
    }

    /// Reads until `shutdown`, reconnecting after Redis errors (it ends only when cancelled).
    pub(crate) async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut last_id: Option<String> = None;
        loop {
            let result = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                result = self.follow(&mut last_id) => result,
            };
            if let Err(e) = result {
                tracing::warn!(error = %format!("{e:#}"), "reading webhook hints failed; reconnecting");
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(RECONNECT_DELAY) => {}
            }
        }
    }

    /// One connection's worth of reading; returns only on error.
    async fn follow(&self, last_id: &mut Option<String>) -> anyhow::Result<()> {
        let mut conn = self.connector.blocking(BLOCK).await?;
        if last_id.is_none() {
            *last_id = Some(newest_entry_id(&mut conn, &self.stream).await?);
        }
        loop {
            let from = last_id.clone().unwrap_or_else(|| "0-0".to_owned());
            let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&self.stream)
                .arg(&from)
                .query_async(&mut conn)
                .await
                .context("XREAD of the hints stream")?;
            for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                *last_id = Some(entry.id.clone());
                match WebhookHint::from_entry(&entry) {
                    Ok(hint) => self.post(&hint),
                    Err(e) => tracing::warn!(error = %e, "skipping a malformed webhook hint"),
                }
            }
        }
    }

    fn post(&self, hint: &WebhookHint) {
        let Some(route) = self.routes.get(&hint.org.to_ascii_lowercase()) else {
            metrics::counter!("hubcache_fetcher_webhook_hints_total", "outcome" => "other_org")
                .increment(1);
            tracing::debug!(org = %hint.org, delivery = %hint.delivery, "webhook hint for an org not cached here");
            return;
        };
        let mut named = 0;
        for target in &hint.targets {
            let path = target.path(&hint.org).to_ascii_lowercase();
            if let Some(configured) = route.endpoints.get(&path) {
                route.board.post(configured.clone(), hint.received_at_ms);
                named += 1;
            }
        }
        let outcome = if named > 0 { "posted" } else { "not_cached" };
        metrics::counter!("hubcache_fetcher_webhook_hints_total", "outcome" => outcome)
            .increment(1);
        tracing::debug!(org = %hint.org, event = %hint.event, delivery = %hint.delivery, endpoints = named, "webhook hint");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_coalesces_into_one_entry_with_the_earliest_time() {
        let board = HintBoard::default();
        for at in [30, 10, 20] {
            board.post("/orgs/o/repos".into(), at);
        }
        board.post("/orgs/o".into(), 40);
        let taken = board.take();
        assert_eq!(taken.len(), 2);
        assert_eq!(taken["/orgs/o/repos"], 10);
        assert!(board.take().is_empty());
    }
}
