//! Snapshots: the fetcher's copy of one GitHub endpoint, as stored in Redis.
//!
//! A snapshot is one Redis hash (`OrgKeys::snapshot`) with three fields written in one step by
//! the fetcher's script: `body` (the exact bytes served: GitHub's object, or the pages' elements
//! merged into one JSON array), `meta` ([`SnapshotMeta`], JSON) and `version`. `status`
//! ([`SnapshotStatus`]) records the outcome of the latest check and changes without the body.

use bytes::Bytes;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::OrgKeys;

/// Hash field holding the body bytes.
pub const FIELD_BODY: &str = "body";
/// Hash field holding [`SnapshotMeta`] as JSON.
pub const FIELD_META: &str = "meta";
/// Hash field holding the version as a decimal integer (for scripts to compare).
pub const FIELD_VERSION: &str = "version";
/// Hash field holding [`SnapshotStatus`] as JSON.
pub const FIELD_STATUS: &str = "status";

/// Whether an endpoint answered one JSON object or a (paginated) JSON array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotKind {
    /// A single JSON value (`/`, `/orgs/O`).
    Object,
    /// A list whose pages were merged into one array (`/orgs/O/repos`).
    List,
}

/// What the fetcher knows about one page it fetched: enough to revalidate it with no rate-limit
/// cost and to rebuild the merged body when another page changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageMeta {
    /// The request target (path and query, relative to the upstream base) of this page.
    pub target: String,
    /// The ETag GitHub sent with it, for `If-None-Match`.
    pub etag: Option<String>,
    /// The next page's target from the `Link` header, if any.
    pub next: Option<String>,
    /// How many array elements this page held (lists only).
    pub items: usize,
}

/// Metadata of one snapshot version. Written together with the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The GitHub path this snapshot copies.
    pub path: String,
    /// Grows by one each time the body changes; never goes back.
    pub version: u64,
    /// Hex SHA-256 of the body: equal bodies, equal hashes.
    pub content_hash: String,
    /// Object or merged list.
    pub kind: SnapshotKind,
    /// When this body was fetched (Unix milliseconds).
    pub fetched_at_ms: u64,
    /// The pages it was built from, in order.
    pub pages: Vec<PageMeta>,
}

/// The latest check of an endpoint, successful or not. Lets operators see errors without the
/// good body ever being replaced by one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStatus {
    /// Last time GitHub confirmed the snapshot (200 or 304), Unix milliseconds.
    pub last_success_at_ms: Option<u64>,
    /// Last failure, with its time, if the most recent check failed or one failed since.
    pub last_error: Option<String>,
    /// When `last_error` happened, Unix milliseconds.
    pub last_error_at_ms: Option<u64>,
    /// What kind of failure `last_error` was, from the fetcher's fixed set (the `reason` label
    /// of `hubcache_fetcher_poll_errors_total`: `not_found`, `status`, `transport`,
    /// `refused_link`...), so readers can tell e.g. an unknown org (GitHub's 404,
    /// [`REASON_NOT_FOUND`]) from an outage without parsing the text. Absent in statuses
    /// written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_reason: Option<String>,
    /// GitHub's rate-limit budget as the fetcher last saw it when it wrote this status (the
    /// `x-ratelimit-*` headers of its latest answer, shared by every endpoint of the
    /// credential): the one honest source of the fetcher's budget for readers such as the
    /// gateway's status page, which never sees the fetcher's requests. Absent until GitHub sent
    /// the headers, and in statuses written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<SeenRateLimit>,
}

/// The `x-ratelimit-*` state the fetcher last saw, with when it saw it: a reader can tell an
/// old figure (the window may have reset since) from a current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenRateLimit {
    /// Requests allowed per window.
    pub limit: u64,
    /// Requests left in the window.
    pub remaining: u64,
    /// When the window resets, Unix seconds.
    pub reset_epoch_secs: u64,
    /// When the fetcher recorded it (the time of the status write), Unix milliseconds.
    pub seen_at_ms: u64,
}

/// The [`SnapshotStatus::last_error_reason`] of a poll GitHub answered with 404: on
/// `/orgs/{org}`, the organisation does not exist (or the token cannot see it).
pub const REASON_NOT_FOUND: &str = "not_found";

/// The most characters of an error a status keeps: errors name request targets and GitHub's
/// messages, which come from outside, so a status (and `/healthcheck`, which shows it) stays
/// small whatever the upstream sends.
pub const MAX_STATUS_ERROR_CHARS: usize = 400;

impl SnapshotStatus {
    /// This status after a successful check at `at_ms` (the last error stays, older now).
    pub fn succeeded(&self, at_ms: u64) -> Self {
        Self {
            last_success_at_ms: Some(at_ms),
            ..self.clone()
        }
    }

    /// This status after a check that failed at `at_ms` with `error`, shortened to
    /// [`MAX_STATUS_ERROR_CHARS`] (its reason unknown).
    pub fn failed(&self, at_ms: u64, error: &str) -> Self {
        Self {
            last_error: Some(bounded_error(error)),
            last_error_at_ms: Some(at_ms),
            last_error_reason: None,
            ..self.clone()
        }
    }

    /// This status carrying `rate_limit`, the budget GitHub last reported (seen at `at_ms`);
    /// unchanged when GitHub has not reported one.
    pub fn with_rate_limit(self, rate_limit: Option<crate::RateLimit>, at_ms: u64) -> Self {
        match rate_limit {
            None => self,
            Some(rl) => Self {
                rate_limit: Some(SeenRateLimit {
                    limit: rl.limit,
                    remaining: rl.remaining,
                    reset_epoch_secs: rl.reset_epoch_secs,
                    seen_at_ms: at_ms,
                }),
                ..self
            },
        }
    }

    /// [`SnapshotStatus::failed`], naming the kind of failure (`reason`, e.g.
    /// [`REASON_NOT_FOUND`]).
    pub fn failed_because(&self, at_ms: u64, reason: &str, error: &str) -> Self {
        Self {
            last_error_reason: Some(reason.to_owned()),
            ..self.failed(at_ms, error)
        }
    }

    /// The reason of the latest check's failure when it failed (no success since): e.g.
    /// [`REASON_NOT_FOUND`] for an org GitHub does not know.
    pub fn failing_reason(&self) -> Option<&str> {
        self.failing()?;
        self.last_error_reason.as_deref()
    }

    /// The error of the latest check when it failed (no success since), else `None`: an
    /// endpoint that is stuck, and why.
    pub fn failing(&self) -> Option<&str> {
        let error = self.last_error.as_deref()?;
        match (self.last_error_at_ms, self.last_success_at_ms) {
            (Some(error_at), Some(success_at)) if success_at >= error_at => None,
            _ => Some(error),
        }
    }

    /// This status with its error shortened to [`MAX_STATUS_ERROR_CHARS`] (for a status read
    /// back from Redis, which anything may have written).
    pub fn bounded(mut self) -> Self {
        self.last_error = self.last_error.as_deref().map(bounded_error);
        self
    }
}

/// `error` cut to [`MAX_STATUS_ERROR_CHARS`] characters, marked with `…` when cut.
fn bounded_error(error: &str) -> String {
    match error.char_indices().nth(MAX_STATUS_ERROR_CHARS) {
        None => error.to_owned(),
        Some((cut, _)) => format!("{}…", &error[..cut]),
    }
}

/// One snapshot as read from Redis.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The bytes to serve.
    pub body: Bytes,
    /// Its metadata.
    pub meta: SnapshotMeta,
}

/// Why a stored snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The hash exists but does not hold a consistent snapshot.
    #[error("snapshot {key} is corrupt: {reason}")]
    Corrupt {
        /// The Redis key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl Snapshot {
    /// Reads the snapshot of `path`; `Ok(None)` when none was stored yet.
    ///
    /// Body and metadata come from one `HMGET`, so they always belong to the same version. The
    /// content hash is verified: a damaged value is reported, never served.
    pub async fn load<C>(
        conn: &mut C,
        keys: &OrgKeys,
        path: &str,
    ) -> Result<Option<Self>, SnapshotError>
    where
        C: redis::aio::ConnectionLike + Send,
    {
        let key = keys.snapshot(path);
        let (body, meta): (Option<Vec<u8>>, Option<String>) = redis::cmd("HMGET")
            .arg(&key)
            .arg(FIELD_BODY)
            .arg(FIELD_META)
            .query_async(conn)
            .await?;
        let (body, meta) = match (body, meta) {
            (None, None) => return Ok(None),
            (Some(body), Some(meta)) => (body, meta),
            _ => {
                return Err(SnapshotError::Corrupt {
                    key,
                    reason: "body or meta missing".to_owned(),
                });
            }
        };
        let meta: SnapshotMeta =
            serde_json::from_str(&meta).map_err(|e| SnapshotError::Corrupt {
                key: key.clone(),
                reason: format!("meta is not valid JSON: {e}"),
            })?;
        if content_hash(&body) != meta.content_hash {
            return Err(SnapshotError::Corrupt {
                key,
                reason: "body does not match its content hash".to_owned(),
            });
        }
        Ok(Some(Self {
            body: Bytes::from(body),
            meta,
        }))
    }

    /// Reads only the status of `path`'s snapshot (what the latest check found).
    pub async fn load_status<C>(
        conn: &mut C,
        keys: &OrgKeys,
        path: &str,
    ) -> Result<SnapshotStatus, SnapshotError>
    where
        C: AsyncCommands + Send,
    {
        let key = keys.snapshot(path);
        let raw: Option<String> = conn.hget(&key, FIELD_STATUS).await?;
        match raw {
            None => Ok(SnapshotStatus::default()),
            Some(raw) => serde_json::from_str(&raw).map_err(|e| SnapshotError::Corrupt {
                key,
                reason: format!("status is not valid JSON: {e}"),
            }),
        }
    }
}

/// Hex SHA-256 of `bytes`: the content hash of snapshots and views.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_failing_until_a_later_success() {
        let fresh = SnapshotStatus::default();
        assert_eq!(fresh.failing(), None);
        let failed = fresh.failed(10, "GET /x: 502");
        assert_eq!(failed.failing(), Some("GET /x: 502"));
        let healed = failed.succeeded(11);
        assert_eq!(healed.failing(), None);
        assert_eq!(healed.last_error.as_deref(), Some("GET /x: 502"), "kept");
        assert_eq!(healed.failed(12, "again").failing(), Some("again"));
        let unknown = healed.failed_because(13, REASON_NOT_FOUND, "GET /orgs/x: 404");
        assert_eq!(unknown.failing_reason(), Some(REASON_NOT_FOUND));
        assert_eq!(unknown.succeeded(14).failing_reason(), None);
        assert_eq!(
            unknown.failed(15, "GET /orgs/x: 502").failing_reason(),
            None
        );
        let old: SnapshotStatus = serde_json::from_str(
            r#"{"last_success_at_ms":1,"last_error":null,"last_error_at_ms":null}"#,
        )
        .expect("a status without a reason reads");
        assert_eq!(old.last_error_reason, None);
        assert_eq!(old.rate_limit, None);
    }

    #[test]
    fn a_status_carries_the_latest_rate_limit_seen() {
        let rl = crate::RateLimit {
            limit: 5000,
            remaining: 4990,
            used: 10,
            reset_epoch_secs: 1_700_000_000,
        };
        let status = SnapshotStatus::default()
            .succeeded(5)
            .with_rate_limit(Some(rl), 5);
        let seen = status.rate_limit.expect("recorded");
        assert_eq!(
            (seen.remaining, seen.limit, seen.seen_at_ms),
            (4990, 5000, 5)
        );
        let kept = status.clone().failed(6, "x").with_rate_limit(None, 6);
        assert_eq!(
            kept.rate_limit,
            Some(seen),
            "no new figure keeps the last one"
        );
        let json = serde_json::to_string(&SnapshotStatus::default()).expect("serialises");
        assert!(!json.contains("rate_limit"), "absent until seen: {json}");
    }

    #[test]
    fn errors_are_bounded_on_a_character_boundary() {
        let long = "é".repeat(MAX_STATUS_ERROR_CHARS + 50);
        let status = SnapshotStatus::default().failed(1, &long);
        let kept = status.failing().expect("failing");
        assert_eq!(kept.chars().count(), MAX_STATUS_ERROR_CHARS + 1);
        assert!(kept.ends_with('…'));
        let raw = SnapshotStatus {
            last_error: Some(long),
            ..SnapshotStatus::default()
        };
        assert_eq!(raw.bounded().last_error, status.last_error);
        let short = SnapshotStatus::default().failed(1, "short");
        assert_eq!(short.last_error.as_deref(), Some("short"));
    }
}
