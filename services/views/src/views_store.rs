//! Storing a view set: one Lua script replaces the views hash only when the new set is newer,
//! and announces it on the views stream in the same step.
//!
//! Doing both in one script makes the write idempotent (a redelivered or out-of-order event
//! cannot move the views back, nor announce the same version twice) and leaves no window where
//! gateways are told about views that are not stored yet. The script touches only one
//! organisation's keys (its `{prefix:org}` hash tag), so it runs unchanged on Redis Cluster.

use anyhow::Context as _;
use hubcache_shared::keys::{OrgKeys, STREAM_MAX_LEN};
use hubcache_shared::snapshot::{FIELD_VERSION, now_ms};
use hubcache_shared::views::FIELD_VIEWS_VERSION;
use hubcache_shared::{ViewSet, ViewsEvent};
use redis::Script;
use redis::aio::ConnectionLike;

use crate::dropped_connection::once_more_if_dropped;

/// KEYS: 1 views hash, 2 views stream.
/// ARGV: 1 version field name, 2 new version, 3 stream MAXLEN, 4 number n of hash field/value
/// pairs, then the 2n hash arguments, then the event's field/value pairs.
///
/// Returns `{1, new version}` when written, `{0, stored version}` when the stored set is as new
/// or newer (nothing written, nothing announced). A stored version that is not a number (a
/// damaged hash) counts as older than any set. Versions are compared as Lua numbers, exact up to
/// 2^53: far beyond a counter that grows by one per GitHub change.
const WRITE_IF_NEWER: &str = r"
local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '')
local version = tonumber(ARGV[2])
if stored and stored >= version then
  return {0, stored}
end
local n = tonumber(ARGV[4])
local hash = {}
for i = 5, 4 + 2 * n do
  hash[#hash + 1] = ARGV[i]
end
local event = {}
for i = 5 + 2 * n, #ARGV do
  event[#event + 1] = ARGV[i]
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(hash))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(event))
return {1, version}
";

/// What a store attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreOutcome {
    /// The set was written and a [`ViewsEvent`] appended.
    Written,
    /// Views of this version or a newer one were already stored: nothing changed.
    AlreadyCurrent {
        /// The version found stored.
        stored: u64,
    },
}

/// Reads the stored views version and writes new view sets.
#[derive(Clone)]
pub(crate) struct ViewsStore {
    keys: OrgKeys,
    script: Script,
}

impl std::fmt::Debug for ViewsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewsStore")
            .field("keys", &self.keys)
            .finish()
    }
}

impl ViewsStore {
    /// A store for one organisation's views (`keys`).
    pub(crate) fn new(keys: OrgKeys) -> Self {
        Self {
            keys,
            script: Script::new(WRITE_IF_NEWER),
        }
    }

    /// The version of the stored views and of the stored snapshot at `snapshot_path`, read in
    /// one round trip (`None`: nothing stored, or not a number).
    ///
    /// Cheap: lets a redelivered event be acknowledged without loading a multi-megabyte body.
    pub(crate) async fn versions<C>(
        &self,
        conn: &C,
        snapshot_path: &str,
    ) -> anyhow::Result<(Option<u64>, Option<u64>)>
    where
        C: ConnectionLike + Clone + Send,
    {
        let mut pipe = redis::pipe();
        pipe.cmd("HGET")
            .arg(self.keys.views())
            .arg(FIELD_VIEWS_VERSION)
            .cmd("HGET")
            .arg(self.keys.snapshot(snapshot_path))
            .arg(FIELD_VERSION);
        let (views, snapshot): (Option<String>, Option<String>) = once_more_if_dropped(|| {
            let mut conn = conn.clone();
            let pipe = &pipe;
            async move { pipe.query_async(&mut conn).await }
        })
        .await
        .context("reading the views and snapshot versions")?;
        let parse = |v: Option<String>| v.and_then(|v| v.parse::<u64>().ok());
        Ok((parse(views), parse(snapshot)))
    }

    /// Writes `set` unless views of its version or a newer one are stored, appending a
    /// [`ViewsEvent`] carrying `traceparent` in the same step.
    ///
    /// Retried once on a dropped connection: the version check makes a repeat harmless.
    pub(crate) async fn store<C>(
        &self,
        conn: &C,
        set: &ViewSet,
        traceparent: Option<String>,
    ) -> anyhow::Result<StoreOutcome>
    where
        C: ConnectionLike + Clone + Send,
    {
        let fields = set.to_fields().context("serialising the views")?;
        let event = ViewsEvent {
            version: set.version,
            at_ms: now_ms(),
            traceparent,
        };
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(self.keys.views())
            .key(self.keys.views_stream())
            .arg(FIELD_VIEWS_VERSION)
            .arg(set.version)
            .arg(STREAM_MAX_LEN)
            .arg(fields.len());
        for (field, value) in &fields {
            invocation.arg(field).arg(value);
        }
        for (field, value) in event.to_fields() {
            invocation.arg(field).arg(value);
        }
        let (written, version): (i64, i64) = once_more_if_dropped(|| {
            let mut conn = conn.clone();
            let invocation = &invocation;
            async move { invocation.invoke_async(&mut conn).await }
        })
        .await
        .with_context(|| format!("storing the views of version {}", set.version))?;
        Ok(if written == 1 {
            StoreOutcome::Written
        } else {
            StoreOutcome::AlreadyCurrent {
                stored: u64::try_from(version).unwrap_or_default(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use hubcache_shared::{ViewEntry, ViewName, ViewValue};
    use hubcache_testkit::RedisServer;
    use redis::AsyncCommands as _;

    use super::*;

    fn set(version: u64, top: &str) -> ViewSet {
        ViewSet {
            version,
            source_hash: format!("hash-{version}"),
            views: ViewName::ALL
                .into_iter()
                .map(|v| (v, vec![ViewEntry(top.to_owned(), ViewValue::Count(1))]))
                .collect(),
        }
    }

    #[tokio::test]
    async fn writes_only_newer_sets_and_announces_each_write_once() {
        let redis = RedisServer::start().await.expect("redis starts");
        let mut conn = redis
            .client()
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        let keys = hubcache_shared::KeySchema::new("store-test").org("acme");
        let store = ViewsStore::new(keys.clone());
        let events = |mut conn: redis::aio::MultiplexedConnection| {
            let stream = keys.views_stream();
            async move { conn.xlen::<_, usize>(stream).await.expect("xlen") }
        };

        assert_eq!(
            store.versions(&conn, "/x").await.expect("reads"),
            (None, None)
        );
        assert_eq!(
            store
                .store(&conn, &set(2, "v2"), None)
                .await
                .expect("stores"),
            StoreOutcome::Written
        );
        for older_or_same in [set(1, "v1"), set(2, "again")] {
            assert_eq!(
                store
                    .store(&conn, &older_or_same, None)
                    .await
                    .expect("runs"),
                StoreOutcome::AlreadyCurrent { stored: 2 }
            );
        }
        assert_eq!(
            ViewSet::load(&mut conn, &keys).await.expect("loads"),
            Some(set(2, "v2"))
        );
        assert_eq!(events(conn.clone()).await, 1);

        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned();
        assert_eq!(
            store
                .store(&conn, &set(3, "v3"), Some(tp.clone()))
                .await
                .expect("stores"),
            StoreOutcome::Written
        );
        let last: redis::streams::StreamRangeReply = conn
            .xrevrange_count(keys.views_stream(), "+", "-", 1)
            .await
            .expect("xrevrange");
        let event = ViewsEvent::from_entry(&last.ids[0]).expect("well formed");
        assert_eq!((event.version, event.traceparent), (3, Some(tp)));
        assert_eq!(
            store.versions(&conn, "/x").await.expect("reads"),
            (Some(3), None)
        );
    }

    #[tokio::test]
    async fn a_damaged_views_hash_is_replaced_whole() {
        let redis = RedisServer::start().await.expect("redis starts");
        let mut conn = redis
            .client()
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        let keys = hubcache_shared::KeySchema::new("store-test").org("acme");
        let store = ViewsStore::new(keys.clone());
        let _: () = conn
            .hset_multiple(
                keys.views(),
                &[(FIELD_VIEWS_VERSION, "garbage"), ("stale_field", "x")],
            )
            .await
            .expect("damage");

        assert_eq!(
            store
                .store(&conn, &set(1, "v1"), None)
                .await
                .expect("stores"),
            StoreOutcome::Written
        );
        let fields: BTreeMap<String, String> = conn.hgetall(keys.views()).await.expect("hgetall");
        assert!(!fields.contains_key("stale_field"), "{fields:?}");
        assert_eq!(
            ViewSet::from_fields(&fields).expect("complete"),
            set(1, "v1")
        );
    }
}
