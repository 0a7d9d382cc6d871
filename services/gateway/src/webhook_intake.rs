//! Handing verified webhook deliveries to the fetcher: one Lua script marks the delivery id for
//! the redelivery window (`SET NX PX`, fleet-wide, so a delivery retried through another replica
//! is still seen once) and, only if it is new, appends a [`WebhookHint`] to the hints stream.
//! This and the marker are the only things the gateway writes to Redis.
//!
//! Also the per-process delivery counters shown on `/healthcheck` and `/metrics`, and the
//! delivery-to-view latency: from an accepted delivery that changes the repos list to the next
//! views this replica installs (`stream_listener` reports those).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use hubcache_shared::keys::HINTS_STREAM_MAX_LEN;
use hubcache_shared::snapshot::now_ms;
use hubcache_shared::{KeySchema, RedisConnection, RedisConnector, WebhookHint};
use serde::Serialize;

use crate::webhook_signature::WebhookSecret;

/// The whole Redis step (connecting included) must finish within this, so GitHub (which waits
/// 10 s) gets a 503 with a reason rather than a timeout.
const REDIS_DEADLINE: Duration = Duration::from_secs(3);

/// KEYS: the delivery marker, the hints stream. ARGV: window (ms), stream bound, then the
/// hint's field/value pairs. Returns 1 when the hint was appended, 0 for a repeated delivery.
const RECORD_SCRIPT: &str = r"
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return 0
end
local fields = {}
for i = 3, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
return 1
";

/// How the webhook route is configured (all from the gateway's settings).
#[derive(Debug, Clone)]
pub(crate) struct WebhookConfig {
    /// `GITHUB_WEBHOOK_SECRET`.
    pub(crate) secret: WebhookSecret,
    /// The orgs whose deliveries are used (`GITHUB_ORGS`), matched case-insensitively.
    pub(crate) orgs: Vec<String>,
    /// Bodies larger than this are refused with 413.
    pub(crate) max_body_bytes: usize,
    /// A delivery id seen within this is acknowledged and ignored.
    pub(crate) delivery_window: Duration,
}

/// What became of a hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// Appended for the fetcher.
    New,
    /// The delivery id was seen within the window: nothing appended.
    Duplicate,
}

/// The webhook route's state: configuration, the Redis writer and the counters.
pub(crate) struct WebhookIntake {
    pub(crate) config: WebhookConfig,
    keys: KeySchema,
    connector: RedisConnector,
    connection: tokio::sync::Mutex<Option<RedisConnection>>,
    script: redis::Script,
    pub(crate) stats: Arc<WebhookStats>,
}

impl WebhookIntake {
    /// An intake writing through `connector` (connected on first use, so a gateway started
    /// while Redis is down still answers deliveries: with 503 until Redis is back).
    pub(crate) fn new(config: WebhookConfig, keys: KeySchema, connector: RedisConnector) -> Self {
        Self {
            config,
            keys,
            connector,
            connection: tokio::sync::Mutex::new(None),
            script: redis::Script::new(RECORD_SCRIPT),
            stats: Arc::default(),
        }
    }

    /// Marks the delivery and appends `hint` unless the delivery id was seen in the window.
    pub(crate) async fn record(&self, hint: &WebhookHint) -> anyhow::Result<Recorded> {
        tokio::time::timeout(REDIS_DEADLINE, self.record_now(hint))
            .await
            .map_err(|_| anyhow::anyhow!("Redis did not answer within {REDIS_DEADLINE:?}"))?
    }

    async fn record_now(&self, hint: &WebhookHint) -> anyhow::Result<Recorded> {
        let mut conn = self.connection().await?;
        let mut invocation = self.script.key(self.keys.webhook_delivery(&hint.delivery));
        invocation
            .key(self.keys.webhook_hints_stream())
            .arg(self.config.delivery_window.as_millis() as u64)
            .arg(HINTS_STREAM_MAX_LEN);
        for (field, value) in hint.to_fields() {
            invocation.arg(field).arg(value);
        }
        let appended: i64 = invocation
            .invoke_async(&mut conn)
            .await
            .context("recording the delivery in Redis")?;
        Ok(if appended == 1 {
            Recorded::New
        } else {
            Recorded::Duplicate
        })
    }

    async fn connection(&self) -> anyhow::Result<RedisConnection> {
        let mut slot = self.connection.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = self.connector.shared().await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }
}

/// What happened to a delivery, as the `outcome` label of `hubcache_webhook_deliveries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Verified, new, for a cached org: handed to the fetcher.
    Accepted,
    /// A delivery id already seen within the window.
    Duplicate,
    /// `ping`.
    Ping,
    /// An event hubcache does not use, or another org's.
    Ignored,
    /// Missing or wrong signature.
    Rejected,
    /// Body over the cap.
    TooLarge,
    /// Verified but unusable (no event or delivery header, body not JSON).
    BadRequest,
    /// Redis unreachable: 503.
    Unavailable,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Ping => "ping",
            Outcome::Ignored => "ignored",
            Outcome::Rejected => "rejected",
            Outcome::TooLarge => "too_large",
            Outcome::BadRequest => "bad_request",
            Outcome::Unavailable => "unavailable",
        }
    }
}

/// This process's delivery counters (each replica counts what it received).
#[derive(Debug, Default)]
pub(crate) struct WebhookStats {
    last_delivery_at_ms: AtomicU64,
    accepted: AtomicU64,
    duplicate: AtomicU64,
    ignored: AtomicU64,
    rejected: AtomicU64,
    unavailable: AtomicU64,
    /// Receipt time (Unix ms) of the earliest accepted delivery for the repos list not yet
    /// followed by new views; 0 when none.
    views_pending_since_ms: AtomicU64,
    last_delivery_to_view_ms: AtomicU64,
}

/// The counters as `/healthcheck` shows them.
#[derive(Debug, Serialize)]
pub(crate) struct WebhookStatsView {
    /// Unix milliseconds of the last verified delivery, if any.
    pub(crate) last_delivery_at_ms: Option<u64>,
    /// Deliveries handed to the fetcher.
    pub(crate) accepted: u64,
    duplicate: u64,
    ignored: u64,
    /// Refused deliveries: bad signature, too large, unusable.
    pub(crate) rejected: u64,
    /// Deliveries answered 503 because Redis was unreachable.
    unavailable: u64,
    /// From the last accepted delivery for the repos list to the next views this replica
    /// installed, milliseconds.
    last_delivery_to_view_ms: Option<u64>,
}

impl WebhookStats {
    /// Counts one delivery (metric and counters).
    pub(crate) fn count(&self, outcome: Outcome) {
        metrics::counter!("hubcache_webhook_deliveries_total", "outcome" => outcome.label())
            .increment(1);
        let counter = match outcome {
            Outcome::Accepted => &self.accepted,
            Outcome::Duplicate => &self.duplicate,
            Outcome::Ping | Outcome::Ignored => &self.ignored,
            Outcome::Rejected | Outcome::TooLarge | Outcome::BadRequest => &self.rejected,
            Outcome::Unavailable => &self.unavailable,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Notes a verified delivery's arrival.
    pub(crate) fn delivered(&self) {
        let now = now_ms();
        self.last_delivery_at_ms.store(now, Ordering::Relaxed);
        metrics::gauge!("hubcache_webhook_last_delivery_timestamp_seconds")
            .set(now as f64 / 1000.0);
    }

    /// An accepted delivery changes the repos list (and so the views): the next views installed
    /// end its delivery-to-view time.
    pub(crate) fn awaits_views(&self, received_at_ms: u64) {
        let _ = self.views_pending_since_ms.compare_exchange(
            0,
            received_at_ms,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// New views are served: records the delivery-to-view latency of the delivery waiting for
    /// them, if any. (Views of an older change installed just after a delivery end it early: a
    /// per-replica approximation; `scripts/pipeline-figures.sh` measures end to end.)
    pub(crate) fn views_installed(&self) {
        let since = self.views_pending_since_ms.swap(0, Ordering::Relaxed);
        if since == 0 {
            return;
        }
        let latency_ms = now_ms().saturating_sub(since);
        self.last_delivery_to_view_ms
            .store(latency_ms, Ordering::Relaxed);
        metrics::histogram!("hubcache_webhook_delivery_to_view_seconds")
            .record(latency_ms as f64 / 1000.0);
    }

    /// The counters for `/healthcheck`.
    pub(crate) fn view(&self) -> WebhookStatsView {
        let last = self.last_delivery_at_ms.load(Ordering::Relaxed);
        WebhookStatsView {
            last_delivery_at_ms: (last > 0).then_some(last),
            accepted: self.accepted.load(Ordering::Relaxed),
            duplicate: self.duplicate.load(Ordering::Relaxed),
            ignored: self.ignored.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            unavailable: self.unavailable.load(Ordering::Relaxed),
            last_delivery_to_view_ms: match self.last_delivery_to_view_ms.load(Ordering::Relaxed) {
                0 => None,
                ms => Some(ms),
            },
        }
    }
}

/// Registers the HELP text of the webhook metrics.
pub(crate) fn describe_metrics() {
    metrics::describe_counter!(
        "hubcache_webhook_deliveries_total",
        "Webhook deliveries received by this gateway, by outcome (accepted, duplicate, ping, \
         ignored, rejected, too_large, bad_request, unavailable)."
    );
    metrics::describe_gauge!(
        "hubcache_webhook_last_delivery_timestamp_seconds",
        metrics::Unit::Seconds,
        "Unix time of the last verified webhook delivery this gateway received."
    );
    metrics::describe_histogram!(
        "hubcache_webhook_delivery_to_view_seconds",
        metrics::Unit::Seconds,
        "From a webhook delivery for the repos list accepted by this gateway to the next views \
         it serves."
    );
}
