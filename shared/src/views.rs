//! Ranked views of the repos snapshot, as stored in Redis by the views service.
//!
//! All views of one snapshot version live in one hash (`OrgKeys::views`): `version`,
//! `source_hash` and one field per [`ViewName`] holding a JSON array of `[full_name, value]`
//! entries, already sorted (descending value, ties by `full_name` ascending). The gateway slices
//! them for top-N and bottom-N without sorting.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::OrgKeys;

/// Hash field holding the snapshot version the views were computed from.
pub const FIELD_VIEWS_VERSION: &str = "version";
/// Hash field holding the content hash of that snapshot.
pub const FIELD_VIEWS_SOURCE_HASH: &str = "source_hash";

/// The views hubcache computes: each ranks repos by one field of the repo objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewName {
    /// By `forks_count`.
    Forks,
    /// By `stargazers_count`.
    Stars,
    /// By `open_issues_count`.
    OpenIssues,
    /// By `updated_at` (RFC 3339 strings, which sort chronologically as text).
    LastUpdated,
    /// By `watchers_count`.
    Watchers,
}

impl ViewName {
    /// Every view, in a stable order.
    pub const ALL: [ViewName; 5] = [
        ViewName::Forks,
        ViewName::Stars,
        ViewName::OpenIssues,
        ViewName::LastUpdated,
        ViewName::Watchers,
    ];

    /// The name used in URLs and in the Redis hash.
    pub fn as_str(self) -> &'static str {
        match self {
            ViewName::Forks => "forks",
            ViewName::Stars => "stars",
            ViewName::OpenIssues => "open_issues",
            ViewName::LastUpdated => "last_updated",
            ViewName::Watchers => "watchers",
        }
    }

    /// The repo object field this view ranks by.
    pub fn source_field(self) -> &'static str {
        match self {
            ViewName::Forks => "forks_count",
            ViewName::Stars => "stargazers_count",
            ViewName::OpenIssues => "open_issues_count",
            ViewName::LastUpdated => "updated_at",
            ViewName::Watchers => "watchers_count",
        }
    }
}

impl fmt::Display for ViewName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Returned when a string names no view.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown view {0:?}: expected one of forks, stars, open_issues, last_updated, watchers")]
pub struct UnknownView(pub String);

impl FromStr for ViewName {
    type Err = UnknownView;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ViewName::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownView(s.to_owned()))
    }
}

/// A ranked value: a count, or a timestamp string for `last_updated`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ViewValue {
    /// A count such as `stargazers_count`.
    Count(i64),
    /// An RFC 3339 timestamp such as `updated_at`.
    Timestamp(String),
}

/// One entry: `[full_name, value]`, serialised as a two-element JSON array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewEntry(pub String, pub ViewValue);

/// Every view of one repos snapshot version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewSet {
    /// The repos snapshot version they were computed from.
    pub version: u64,
    /// That snapshot's content hash.
    pub source_hash: String,
    /// The sorted entries per view.
    pub views: BTreeMap<ViewName, Vec<ViewEntry>>,
}

/// Why stored views could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ViewsError {
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The hash holds something that is not a complete view set.
    #[error("views hash is corrupt: {0}")]
    Corrupt(String),
}

impl ViewSet {
    /// The hash fields to store this set with one `HSET`.
    pub fn to_fields(&self) -> Result<Vec<(String, String)>, serde_json::Error> {
        let mut fields = vec![
            (FIELD_VIEWS_VERSION.to_owned(), self.version.to_string()),
            (FIELD_VIEWS_SOURCE_HASH.to_owned(), self.source_hash.clone()),
        ];
        for (name, entries) in &self.views {
            fields.push((name.as_str().to_owned(), serde_json::to_string(entries)?));
        }
        Ok(fields)
    }

    /// Reads the stored views; `Ok(None)` when none were stored yet.
    pub async fn load<C>(conn: &mut C, keys: &OrgKeys) -> Result<Option<Self>, ViewsError>
    where
        C: redis::aio::ConnectionLike + Send,
    {
        let fields: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(keys.views())
            .query_async(conn)
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        Self::from_fields(&fields).map(Some)
    }

    /// Parses the hash fields written by [`ViewSet::to_fields`]. Every view must be present.
    pub fn from_fields(fields: &BTreeMap<String, String>) -> Result<Self, ViewsError> {
        let version = fields
            .get(FIELD_VIEWS_VERSION)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| ViewsError::Corrupt("version missing or not an integer".to_owned()))?;
        let source_hash = fields
            .get(FIELD_VIEWS_SOURCE_HASH)
            .cloned()
            .ok_or_else(|| ViewsError::Corrupt("source_hash missing".to_owned()))?;
        let mut views = BTreeMap::new();
        for name in ViewName::ALL {
            let raw = fields
                .get(name.as_str())
                .ok_or_else(|| ViewsError::Corrupt(format!("view {name} missing")))?;
            let entries: Vec<ViewEntry> = serde_json::from_str(raw)
                .map_err(|e| ViewsError::Corrupt(format!("view {name}: {e}")))?;
            views.insert(name, entries);
        }
        Ok(Self {
            version,
            source_hash,
            views,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_names_round_trip() {
        for v in ViewName::ALL {
            assert_eq!(v.as_str().parse::<ViewName>(), Ok(v));
        }
        assert!("Stars".parse::<ViewName>().is_err());
        assert!("".parse::<ViewName>().is_err());
    }

    #[test]
    fn entries_serialise_as_pairs() {
        let e = vec![
            ViewEntry("Netflix/Hystrix".into(), ViewValue::Count(3518)),
            ViewEntry(
                "Netflix/x".into(),
                ViewValue::Timestamp("2024-01-02T03:04:05Z".into()),
            ),
        ];
        let json = serde_json::to_string(&e).expect("serialises");
        assert_eq!(
            json,
            r#"[["Netflix/Hystrix",3518],["Netflix/x","2024-01-02T03:04:05Z"]]"#
        );
        let back: Vec<ViewEntry> = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, e);
    }

    #[test]
    fn fields_round_trip_and_reject_incomplete_sets() {
        let set = ViewSet {
            version: 7,
            source_hash: "abc".into(),
            views: ViewName::ALL
                .into_iter()
                .map(|v| (v, vec![ViewEntry("o/r".into(), ViewValue::Count(1))]))
                .collect(),
        };
        let fields: BTreeMap<String, String> = set.to_fields().expect("ok").into_iter().collect();
        assert_eq!(ViewSet::from_fields(&fields).expect("parses"), set);
        let mut partial = fields.clone();
        partial.remove("stars");
        assert!(ViewSet::from_fields(&partial).is_err());
    }
}
