//! Ranking: the pure function from a repos snapshot body to every view of it.
//!
//! No I/O and no clock: the same body always gives the same [`ViewSet`], so redelivered or
//! concurrent computations of one version agree byte for byte.
//!
//! Rules (the gateway and its clients rely on them):
//! - Each view is sorted by its value descending; ties break by `full_name` ascending, compared
//!   as bytes (locale-free, so every worker orders alike).
//! - Count views (`forks`, `stars`, `open_issues`, `watchers`): a repo whose count is missing or
//!   `null` counts as 0 (GitHub leaves counts out of some repo shapes; "none counted" is the
//!   honest reading), so every repo appears in every count view and those views have equal
//!   lengths.
//! - `last_updated`: ordered by the instant `updated_at` names (RFC 3339, any offset), keeping
//!   GitHub's original string as the value. A repo with no `updated_at` (missing or `null`) is
//!   left out of this view only: it has no place on a time axis.
//! - A repo listed twice (pages shifted while the fetcher walked them) is ranked once, from its
//!   first occurrence.
//! - A body that is not a JSON array of objects, an element without a string `full_name`, or a
//!   field of the wrong type (a count that is not an integer, an `updated_at` that is not an
//!   RFC 3339 string) rejects the whole snapshot: it is not a GitHub repo list, and the views of
//!   the last good snapshot are better than views of something else.

use std::collections::{BTreeMap, HashSet};

use hubcache_shared::{ViewEntry, ViewName, ViewSet, ViewValue};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Why a snapshot body cannot be ranked. The snapshot is skipped and the stored views stay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RankingError {
    /// The body is not valid JSON, or not an array.
    #[error("repos body is not a JSON array: {0}")]
    NotAnArray(String),
    /// Element `index` of the array is not a repo object.
    #[error("repos body element {index} is not a repo object: {reason}")]
    NotARepo {
        /// Position in the array (0-based).
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A ranked field holds a value of the wrong type.
    #[error("repo {full_name}: {field} is {found}, expected {expected}")]
    InvalidField {
        /// The repo's `full_name`.
        full_name: String,
        /// The repo object field.
        field: &'static str,
        /// A short rendering of the value found.
        found: String,
        /// What an acceptable value looks like.
        expected: &'static str,
    },
}

/// The fields of a repo object the views use; serde skips every other field unparsed.
#[derive(Deserialize)]
struct RepoFields {
    full_name: Option<Value>,
    forks_count: Option<Value>,
    stargazers_count: Option<Value>,
    open_issues_count: Option<Value>,
    updated_at: Option<Value>,
    watchers_count: Option<Value>,
}

impl RepoFields {
    fn field(&self, view: ViewName) -> Option<&Value> {
        match view {
            ViewName::Forks => self.forks_count.as_ref(),
            ViewName::Stars => self.stargazers_count.as_ref(),
            ViewName::OpenIssues => self.open_issues_count.as_ref(),
            ViewName::LastUpdated => self.updated_at.as_ref(),
            ViewName::Watchers => self.watchers_count.as_ref(),
        }
        .filter(|v| !v.is_null())
    }
}

/// One ranked value with what it sorts by.
struct Ranked<'a> {
    full_name: &'a str,
    sort_key: i128,
    value: ViewValue,
}

/// Computes every view of the repos snapshot `body` (a JSON array of GitHub repo objects),
/// tagged with the snapshot's `version` and `source_hash`.
///
/// Pure and deterministic; see the module documentation for the ordering and for how missing
/// values are treated.
pub fn rank_repos(body: &[u8], version: u64, source_hash: &str) -> Result<ViewSet, RankingError> {
    let elements: Vec<&RawValue> =
        serde_json::from_slice(body).map_err(|e| RankingError::NotAnArray(e.to_string()))?;
    let mut seen: HashSet<String> = HashSet::with_capacity(elements.len());
    let mut repos: Vec<(String, RepoFields)> = Vec::with_capacity(elements.len());
    for (index, raw) in elements.into_iter().enumerate() {
        let repo = parse_repo(index, raw)?;
        let full_name = match &repo.full_name {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            other => {
                return Err(RankingError::NotARepo {
                    index,
                    reason: format!(
                        "full_name is {}, expected a non-empty string",
                        describe(other.as_ref())
                    ),
                });
            }
        };
        if seen.insert(full_name.clone()) {
            repos.push((full_name, repo));
        }
    }

    let mut views = BTreeMap::new();
    for view in ViewName::ALL {
        let mut ranked: Vec<Ranked<'_>> = Vec::with_capacity(repos.len());
        for (full_name, repo) in &repos {
            if let Some(entry) = rank_one(view, full_name, repo.field(view))? {
                ranked.push(entry);
            }
        }
        ranked.sort_by(|a, b| {
            b.sort_key
                .cmp(&a.sort_key)
                .then_with(|| a.full_name.cmp(b.full_name))
        });
        let entries = ranked
            .into_iter()
            .map(|r| ViewEntry(r.full_name.to_owned(), r.value))
            .collect();
        views.insert(view, entries);
    }
    Ok(ViewSet {
        version,
        source_hash: source_hash.to_owned(),
        views,
    })
}

fn parse_repo(index: usize, raw: &RawValue) -> Result<RepoFields, RankingError> {
    // serde's derived struct would also accept a JSON array positionally; only objects are repos.
    if !raw.get().starts_with('{') {
        return Err(RankingError::NotARepo {
            index,
            reason: format!("found {}", short(raw.get())),
        });
    }
    serde_json::from_str(raw.get()).map_err(|e| RankingError::NotARepo {
        index,
        reason: e.to_string(),
    })
}

/// Ranks one repo in one view; `None` when it is left out of that view.
fn rank_one<'a>(
    view: ViewName,
    full_name: &'a str,
    value: Option<&Value>,
) -> Result<Option<Ranked<'a>>, RankingError> {
    let invalid = |expected: &'static str| RankingError::InvalidField {
        full_name: full_name.to_owned(),
        field: view.source_field(),
        found: describe(value),
        expected,
    };
    if view == ViewName::LastUpdated {
        let Some(value) = value else { return Ok(None) };
        let text = value
            .as_str()
            .ok_or_else(|| invalid("an RFC 3339 timestamp string"))?;
        let instant = OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|_| invalid("an RFC 3339 timestamp string"))?;
        return Ok(Some(Ranked {
            full_name,
            sort_key: instant.unix_timestamp_nanos(),
            value: ViewValue::Timestamp(text.to_owned()),
        }));
    }
    let count = match value {
        None => 0,
        Some(value) => value.as_i64().ok_or_else(|| invalid("an integer count"))?,
    };
    Ok(Some(Ranked {
        full_name,
        sort_key: i128::from(count),
        value: ViewValue::Count(count),
    }))
}

/// A short, log-safe rendering of a JSON value for error messages.
fn describe(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "missing".to_owned(),
        Some(v) => short(&v.to_string()),
    }
}

fn short(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rank(body: &Value) -> Result<ViewSet, RankingError> {
        rank_repos(body.to_string().as_bytes(), 7, "hash")
    }

    fn names(set: &ViewSet, view: ViewName) -> Vec<&str> {
        set.views[&view].iter().map(|e| e.0.as_str()).collect()
    }

    fn repo(name: &str, forks: i64, stars: i64, updated: &str) -> Value {
        json!({
            "id": 1, "name": name, "full_name": name, "owner": {"login": "o"},
            "forks_count": forks, "stargazers_count": stars, "open_issues_count": forks + stars,
            "watchers_count": stars, "updated_at": updated, "topics": ["x"],
        })
    }

    #[test]
    fn every_view_is_sorted_descending_and_tagged() {
        let set = rank(&json!([
            repo("o/a", 1, 30, "2024-01-01T00:00:00Z"),
            repo("o/b", 3, 10, "2024-03-01T00:00:00Z"),
            repo("o/c", 2, 20, "2024-02-01T00:00:00Z"),
        ]))
        .expect("ranks");
        assert_eq!(set.version, 7);
        assert_eq!(set.source_hash, "hash");
        assert_eq!(set.views.len(), ViewName::ALL.len());
        assert_eq!(names(&set, ViewName::Forks), ["o/b", "o/c", "o/a"]);
        assert_eq!(names(&set, ViewName::Stars), ["o/a", "o/c", "o/b"]);
        assert_eq!(names(&set, ViewName::Watchers), ["o/a", "o/c", "o/b"]);
        assert_eq!(names(&set, ViewName::OpenIssues), ["o/a", "o/c", "o/b"]);
        assert_eq!(names(&set, ViewName::LastUpdated), ["o/b", "o/c", "o/a"]);
        assert_eq!(
            set.views[&ViewName::Forks][0],
            ViewEntry("o/b".into(), ViewValue::Count(3))
        );
        assert_eq!(
            set.views[&ViewName::LastUpdated][0],
            ViewEntry(
                "o/b".into(),
                ViewValue::Timestamp("2024-03-01T00:00:00Z".into())
            )
        );
    }

    #[test]
    fn ties_break_by_full_name_ascending_whatever_the_input_order() {
        let t = "2024-01-01T00:00:00Z";
        let forward = json!([
            repo("o/b", 5, 1, t),
            repo("o/a", 5, 1, t),
            repo("O/z", 5, 1, t),
            repo("o/c", 9, 1, t)
        ]);
        let backward = json!([
            repo("o/c", 9, 1, t),
            repo("O/z", 5, 1, t),
            repo("o/a", 5, 1, t),
            repo("o/b", 5, 1, t)
        ]);
        let a = rank(&forward).expect("ranks");
        let b = rank(&backward).expect("ranks");
        assert_eq!(a, b, "input order must not matter");
        // Bytewise: uppercase sorts before lowercase.
        assert_eq!(names(&a, ViewName::Forks), ["o/c", "O/z", "o/a", "o/b"]);
        assert_eq!(
            names(&a, ViewName::LastUpdated),
            ["O/z", "o/a", "o/b", "o/c"]
        );
    }

    #[test]
    fn timestamps_sort_by_instant_not_text() {
        // 10:00+05:00 is 05:00Z: earlier than 06:00Z although it sorts later as text.
        let set = rank(&json!([
            repo("o/offset", 0, 0, "2024-01-01T10:00:00+05:00"),
            repo("o/utc", 0, 0, "2024-01-01T06:00:00Z"),
        ]))
        .expect("ranks");
        assert_eq!(names(&set, ViewName::LastUpdated), ["o/utc", "o/offset"]);
        assert_eq!(
            set.views[&ViewName::LastUpdated][1].1,
            ViewValue::Timestamp("2024-01-01T10:00:00+05:00".into()),
            "the original string is kept"
        );
    }

    #[test]
    fn missing_or_null_counts_are_zero_and_missing_timestamps_are_left_out() {
        let set = rank(&json!([
            {"full_name": "o/bare"},
            {"full_name": "o/nulls", "forks_count": null, "stargazers_count": null, "updated_at": null},
            repo("o/full", 2, 2, "2024-01-01T00:00:00Z"),
            {"full_name": "o/neg", "forks_count": -1},
        ]))
        .expect("ranks");
        assert_eq!(
            names(&set, ViewName::Forks),
            ["o/full", "o/bare", "o/nulls", "o/neg"]
        );
        assert_eq!(set.views[&ViewName::Forks][1].1, ViewValue::Count(0));
        assert_eq!(set.views[&ViewName::Stars].len(), 4);
        assert_eq!(names(&set, ViewName::LastUpdated), ["o/full"]);
    }

    #[test]
    fn a_repo_listed_twice_is_ranked_once_from_its_first_occurrence() {
        let t = "2024-01-01T00:00:00Z";
        let set = rank(&json!([
            repo("o/a", 1, 1, t),
            repo("o/b", 2, 2, t),
            repo("o/a", 9, 9, t)
        ]))
        .expect("ranks");
        assert_eq!(names(&set, ViewName::Forks), ["o/b", "o/a"]);
        assert_eq!(set.views[&ViewName::Forks][1].1, ViewValue::Count(1));
    }

    #[test]
    fn empty_list_gives_empty_views() {
        let set = rank(&json!([])).expect("ranks");
        assert!(set.views.values().all(Vec::is_empty));
        assert_eq!(set.views.len(), 5);
    }

    #[test]
    fn bodies_that_are_not_repo_lists_are_rejected() {
        assert!(matches!(
            rank_repos(b"not json", 1, "h"),
            Err(RankingError::NotAnArray(_))
        ));
        assert!(matches!(
            rank_repos(b"", 1, "h"),
            Err(RankingError::NotAnArray(_))
        ));
        assert!(matches!(
            rank(&json!({"message": "Not Found"})),
            Err(RankingError::NotAnArray(_))
        ));
        assert!(matches!(
            rank_repos(b"[{\"full_name\":\"o/a\"}", 1, "h"),
            Err(RankingError::NotAnArray(_))
        ));
        assert_eq!(
            rank(&json!([{"full_name": "o/a"}, ["o/b", 1]])),
            Err(RankingError::NotARepo {
                index: 1,
                reason: "found [\"o/b\",1]".into()
            })
        );
        assert!(matches!(
            rank(&json!([42])),
            Err(RankingError::NotARepo { index: 0, .. })
        ));
        assert!(matches!(
            rank(&json!([{"name": "a"}])),
            Err(RankingError::NotARepo { index: 0, .. })
        ));
        assert!(matches!(
            rank(&json!([{"full_name": 5}])),
            Err(RankingError::NotARepo { index: 0, .. })
        ));
    }

    #[test]
    fn wrongly_typed_fields_are_rejected_naming_repo_and_field() {
        for (field, value) in [
            ("forks_count", json!("12")),
            ("stargazers_count", json!(1.5)),
            ("watchers_count", json!(u64::MAX)),
            ("open_issues_count", json!({"n": 1})),
            ("updated_at", json!(20240101)),
            ("updated_at", json!("yesterday")),
        ] {
            let mut r = repo("o/bad", 1, 1, "2024-01-01T00:00:00Z");
            r[field] = value;
            let err =
                rank(&json!([repo("o/good", 1, 1, "2024-01-01T00:00:00Z"), r])).expect_err(field);
            match &err {
                RankingError::InvalidField {
                    full_name,
                    field: f,
                    ..
                } => {
                    assert_eq!(full_name, "o/bad");
                    assert_eq!(*f, field);
                }
                other => panic!("{field}: unexpected {other:?}"),
            }
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn same_body_same_views() {
        let body = json!([
            repo("o/a", 1, 2, "2024-01-01T00:00:00Z"),
            repo("o/b", 1, 2, "2024-01-01T00:00:00Z")
        ]);
        let a = rank(&body).expect("ranks").to_fields().expect("serialises");
        let b = rank(&body).expect("ranks").to_fields().expect("serialises");
        assert_eq!(a, b);
    }
}
