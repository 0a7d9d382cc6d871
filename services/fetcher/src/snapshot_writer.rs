//! Reading the stored state of an endpoint and changing it, always through one Lua script that
//! checks the lease (fencing) and the version the change was based on, in the same step as the
//! write and the refresh event.
//!
//! Every key a script touches (the org's lease, snapshot and refresh stream) shares the org's
//! `{prefix:org}` hash tag, so the scripts also run on Redis Cluster.

use std::collections::HashMap;

use anyhow::Context as _;
use hubcache_shared::RedisConnection;
use hubcache_shared::events::RefreshEvent;
use hubcache_shared::keys::{OrgKeys, STREAM_MAX_LEN};
use hubcache_shared::snapshot::{
    FIELD_BODY, FIELD_META, FIELD_STATUS, FIELD_VERSION, SnapshotError,
};
use hubcache_shared::{Snapshot, SnapshotMeta, SnapshotStatus};
use redis::Script;

use crate::lease::Lease;

/// The one write script.
///
/// KEYS: 1 lease, 2 snapshot hash, 3 refresh stream.
/// ARGV: 1 instance id, 2 expected version ('' = do not check), 3 version field name,
/// 4 stream MAXLEN, 5 number n of hash field/value pairs, then the 2n hash arguments, then the
/// event's field/value pairs (none: no event).
///
/// Returns 1 written, 0 lease not held (nothing written), -1 version moved (nothing written).
const GUARDED_WRITE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] ~= '' then
  local current = redis.call('HGET', KEYS[2], ARGV[3]) or '0'
  if current ~= ARGV[2] then
    return -1
  end
end
local n = tonumber(ARGV[5])
local hash = {}
for i = 6, 5 + 2 * n do
  hash[#hash + 1] = ARGV[i]
end
redis.call('HSET', KEYS[2], unpack(hash))
if #ARGV > 5 + 2 * n then
  local event = {}
  for i = 6 + 2 * n, #ARGV do
    event[#event + 1] = ARGV[i]
  end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', unpack(event))
end
return 1
";

/// What a guarded write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteOutcome {
    /// Written (with its event, if any).
    Written,
    /// This instance does not hold the lease: nothing was written.
    LeaseLost,
    /// The stored version is not the one the change was based on: nothing was written.
    VersionMoved,
}

/// A new snapshot version and what goes with it.
#[derive(Debug)]
pub(crate) struct Replacement<'a> {
    /// The stored `version` field the new body was computed against, exactly as read
    /// ([`Stored::base`]): the write happens only if it is still the same.
    pub(crate) base: &'a str,
    /// The new body.
    pub(crate) body: &'a [u8],
    /// Its meta.
    pub(crate) meta: &'a SnapshotMeta,
    /// The status to store with it.
    pub(crate) status: &'a SnapshotStatus,
    /// The refresh event to append.
    pub(crate) event: &'a RefreshEvent,
}

/// An endpoint's stored state, as a poll starts from it.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    /// The newest version stored (0: nothing stored yet); a replacement is this plus one.
    /// For a damaged hash whose `version` field is not a number, the version its meta names
    /// (0 if that is unreadable too), so versions never go backwards.
    pub(crate) version: u64,
    /// The `version` field exactly as stored (`"0"` when absent): what a replacement's guarded
    /// write compares, so a damaged, non-numeric field can be replaced too.
    pub(crate) base: String,
    /// The current snapshot, unless none (or only a damaged one) is stored.
    pub(crate) snapshot: Option<Snapshot>,
    /// The latest check's outcome.
    pub(crate) status: SnapshotStatus,
}

/// Reads and writes snapshots for this fetcher.
#[derive(Clone)]
pub(crate) struct SnapshotWriter {
    keys: OrgKeys,
    script: Script,
}

impl std::fmt::Debug for SnapshotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("keys", &self.keys)
            .finish()
    }
}

impl SnapshotWriter {
    /// A writer for the keys of `keys`.
    pub(crate) fn new(keys: OrgKeys) -> Self {
        Self {
            keys,
            script: Script::new(GUARDED_WRITE),
        }
    }

    /// Reads `path`'s version and status, and its snapshot unless `cache` already holds that
    /// version (snapshots are immutable per version, so only a version change needs the body).
    pub(crate) async fn load(
        &self,
        conn: &mut RedisConnection,
        path: &str,
        cache: &mut HashMap<String, Snapshot>,
    ) -> anyhow::Result<Stored> {
        let key = self.keys.snapshot(path);
        let (version, status): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(&key)
            .arg(FIELD_VERSION)
            .arg(FIELD_STATUS)
            .query_async(conn)
            .await
            .with_context(|| format!("reading the version of {key}"))?;
        let status: SnapshotStatus = status
            .and_then(|raw| match serde_json::from_str(&raw) {
                Ok(status) => Some(status),
                Err(e) => {
                    tracing::warn!(%key, error = %e, "stored status is not valid JSON; starting a new one");
                    None
                }
            })
            .unwrap_or_default();
        let base = version.clone().unwrap_or_else(|| "0".to_owned());
        let version: u64 = match version.map(|v| v.parse::<u64>()) {
            None => 0,
            Some(Ok(v)) => v,
            Some(Err(_)) => {
                // Damaged (tampering, a bad restore): replace the whole snapshot with the next
                // version after the one its meta names, rather than failing on every poll.
                let meta_version = self.meta_version(conn, &key).await?;
                tracing::warn!(%key, field = FIELD_VERSION, value = %base, "stored snapshot has a non-numeric version; it will be replaced");
                cache.remove(path);
                return Ok(Stored {
                    version: meta_version,
                    base,
                    snapshot: None,
                    status,
                });
            }
        };
        if version == 0 {
            cache.remove(path);
            return Ok(Stored {
                version,
                base,
                snapshot: None,
                status,
            });
        }
        if let Some(cached) = cache.get(path).filter(|s| s.meta.version == version) {
            return Ok(Stored {
                version,
                base,
                snapshot: Some(cached.clone()),
                status,
            });
        }
        cache.remove(path);
        match Snapshot::load(conn, &self.keys, path).await {
            Ok(Some(snapshot)) => {
                // A write between the two reads: the snapshot's own meta is authoritative (body,
                // meta and version are always written together).
                let version = snapshot.meta.version;
                cache.insert(path.to_owned(), snapshot.clone());
                Ok(Stored {
                    version,
                    base,
                    snapshot: Some(snapshot),
                    status,
                })
            }
            Ok(None) => Ok(Stored {
                version,
                base,
                snapshot: None,
                status,
            }),
            Err(SnapshotError::Corrupt { key, reason }) => {
                // Refetch everything and replace it with the next version.
                tracing::warn!(%key, %reason, "stored snapshot is damaged; it will be replaced");
                Ok(Stored {
                    version,
                    base,
                    snapshot: None,
                    status,
                })
            }
            Err(SnapshotError::Redis(e)) => Err(e).with_context(|| format!("reading {key}")),
        }
    }

    /// The version a damaged hash's meta names, or 0 if the meta is missing or unreadable.
    async fn meta_version(&self, conn: &mut RedisConnection, key: &str) -> anyhow::Result<u64> {
        let meta: Option<String> = redis::cmd("HGET")
            .arg(key)
            .arg(FIELD_META)
            .query_async(conn)
            .await
            .with_context(|| format!("reading the meta of {key}"))?;
        Ok(meta
            .and_then(|m| serde_json::from_str::<SnapshotMeta>(&m).ok())
            .map_or(0, |m| m.version))
    }

    /// Replaces a snapshot, sets its status and appends its refresh event, in one step.
    pub(crate) async fn replace(
        &self,
        conn: &mut RedisConnection,
        lease: &Lease,
        replacement: &Replacement<'_>,
    ) -> anyhow::Result<WriteOutcome> {
        let Replacement {
            base,
            body,
            meta,
            status,
            event,
        } = replacement;
        let meta_json = serde_json::to_string(meta).context("serialising snapshot meta")?;
        let status_json = serde_json::to_string(status).context("serialising snapshot status")?;
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(lease.key())
            .key(self.keys.snapshot(&meta.path))
            .key(self.keys.refresh_stream())
            .arg(lease.instance_id())
            .arg(*base)
            .arg(FIELD_VERSION)
            .arg(STREAM_MAX_LEN)
            .arg(4)
            .arg(FIELD_BODY)
            .arg(*body)
            .arg(FIELD_META)
            .arg(meta_json)
            .arg(FIELD_VERSION)
            .arg(meta.version.to_string())
            .arg(FIELD_STATUS)
            .arg(status_json);
        for (field, value) in event.to_fields() {
            invocation.arg(field).arg(value);
        }
        let code: i64 = invocation
            .invoke_async(conn)
            .await
            .with_context(|| format!("replacing the snapshot of {}", meta.path))?;
        Ok(outcome(code))
    }

    /// Updates `path`'s meta (same version and body: only page ETags changed) and status.
    pub(crate) async fn update_meta(
        &self,
        conn: &mut RedisConnection,
        lease: &Lease,
        meta: &SnapshotMeta,
        status: &SnapshotStatus,
    ) -> anyhow::Result<WriteOutcome> {
        let meta_json = serde_json::to_string(meta).context("serialising snapshot meta")?;
        let status_json = serde_json::to_string(status).context("serialising snapshot status")?;
        let code: i64 = self
            .script
            .key(lease.key())
            .key(self.keys.snapshot(&meta.path))
            .key(self.keys.refresh_stream())
            .arg(lease.instance_id())
            .arg(meta.version.to_string())
            .arg(FIELD_VERSION)
            .arg(STREAM_MAX_LEN)
            .arg(2)
            .arg(FIELD_META)
            .arg(meta_json)
            .arg(FIELD_STATUS)
            .arg(status_json)
            .invoke_async(conn)
            .await
            .with_context(|| format!("updating the meta of {}", meta.path))?;
        Ok(outcome(code))
    }

    /// Sets `path`'s status only (the body, whatever it is, stays).
    pub(crate) async fn write_status(
        &self,
        conn: &mut RedisConnection,
        lease: &Lease,
        path: &str,
        status: &SnapshotStatus,
    ) -> anyhow::Result<WriteOutcome> {
        let status_json = serde_json::to_string(status).context("serialising snapshot status")?;
        let code: i64 = self
            .script
            .key(lease.key())
            .key(self.keys.snapshot(path))
            .key(self.keys.refresh_stream())
            .arg(lease.instance_id())
            .arg("")
            .arg(FIELD_VERSION)
            .arg(STREAM_MAX_LEN)
            .arg(1)
            .arg(FIELD_STATUS)
            .arg(status_json)
            .invoke_async(conn)
            .await
            .with_context(|| format!("writing the status of {path}"))?;
        Ok(outcome(code))
    }
}

fn outcome(code: i64) -> WriteOutcome {
    match code {
        1 => WriteOutcome::Written,
        -1 => WriteOutcome::VersionMoved,
        _ => WriteOutcome::LeaseLost,
    }
}
