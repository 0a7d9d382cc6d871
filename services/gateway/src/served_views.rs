//! The views of one repos snapshot version, pre-rendered in the seed's exact text format.
//!
//! The seed's clients compare `/view/...` answers as text: `[["Netflix/Hystrix", 3518],
//! ["Netflix/eureka", 2077]]`, i.e. Python's `json.dumps` spacing (a space after every comma,
//! inside and between entries). Each view is rendered once per version into one string of entries
//! joined by `", "` plus each entry's byte range, so top-N and bottom-N are a single slice. The
//! rendered answers are kept per (view, direction, N) so repeated requests reuse their ETag and
//! compressed copies.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;

use bytes::{BufMut as _, Bytes, BytesMut};
use hubcache_shared::{ViewName, ViewSet, ViewValue};

use crate::representation::Representation;

/// Rendered slices kept per version; (5 views × 2 directions × distinct N) stays small in
/// practice, and the bound protects against clients scanning every N.
const SLICE_CACHE_ENTRIES: u64 = 1024;

/// `N` of `/view/{top|bottom}/{N}/{view}`: a positive integer, validated at the edge.
///
/// `pub` (built with `str::parse`) only for the benches, through [`crate::hot_paths`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TopN(NonZeroUsize);

/// Why a path segment is not a valid `N`.
///
/// `pub` (the error of `TopN`'s `FromStr`, not re-exported; the field stays crate-private)
/// only for the benches, through [`crate::hot_paths`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("N must be a positive integer, got {0:?}")]
pub struct InvalidTopN(pub(crate) String);

impl FromStr for TopN {
    type Err = InvalidTopN;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidTopN(s.chars().take(40).collect());
        // Digits only: no sign, no decimal point, no whitespace; overflow is rejected by parse.
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        s.parse::<NonZeroUsize>().map(TopN).map_err(|_| invalid())
    }
}

impl TopN {
    /// The number of entries asked for.
    pub(crate) fn get(self) -> usize {
        self.0.get()
    }
}

/// Which end of a view's (descending) ordering.
///
/// `pub` only for the benches, through [`crate::hot_paths`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The first N entries.
    Top,
    /// The last N entries, still listed in descending order.
    Bottom,
}

/// One view's entries as text, with each entry's byte range.
struct RenderedView {
    text: String,
    entries: Vec<Range<usize>>,
}

impl RenderedView {
    fn render(entries: &[hubcache_shared::ViewEntry]) -> Self {
        let mut text = String::with_capacity(entries.len() * 40);
        let mut ranges = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            let start = text.len();
            text.push('[');
            text.push_str(&json_string(&entry.0));
            text.push_str(", ");
            match &entry.1 {
                ViewValue::Count(n) => text.push_str(&n.to_string()),
                ViewValue::Timestamp(t) => text.push_str(&json_string(t)),
            }
            text.push(']');
            ranges.push(start..text.len());
        }
        Self {
            text,
            entries: ranges,
        }
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
}

/// Every view of one version, ready to slice.
///
/// `pub` (with [`ServedViews::prepare`] and [`ServedViews::slice`]; the fields stay crate-private)
/// only for the benches, through [`crate::hot_paths`].
pub struct ServedViews {
    /// The repos snapshot version the views were computed from.
    pub(crate) version: u64,
    /// That snapshot's content hash.
    pub(crate) source_hash: String,
    views: BTreeMap<ViewName, RenderedView>,
    slices: moka::sync::Cache<(ViewName, Direction, usize), Arc<Representation>>,
}

impl std::fmt::Debug for ServedViews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedViews")
            .field("version", &self.version)
            .finish()
    }
}

impl ServedViews {
    /// Renders every view of `set` (once per version).
    ///
    /// `pub` only for the benches, through [`crate::hot_paths`].
    pub fn prepare(set: &ViewSet) -> Self {
        Self {
            version: set.version,
            source_hash: set.source_hash.clone(),
            views: set
                .views
                .iter()
                .map(|(name, entries)| (*name, RenderedView::render(entries)))
                .collect(),
            slices: moka::sync::Cache::new(SLICE_CACHE_ENTRIES),
        }
    }

    /// Bytes held: every view's rendered text and entry index, and the slices rendered so far
    /// (at most [`SLICE_CACHE_ENTRIES`]).
    pub(crate) fn held_bytes(&self) -> usize {
        let views: usize = self
            .views
            .values()
            .map(|v| v.text.capacity() + v.entries.capacity() * std::mem::size_of::<Range<usize>>())
            .sum();
        let slices: usize = self.slices.iter().map(|(_, s)| s.held_bytes()).sum();
        views + slices
    }

    /// The first or last `n` entries of `view` (the whole view when `n` exceeds it); `None`
    /// if this set lacks the view.
    ///
    /// `pub` only for the benches, through [`crate::hot_paths`].
    pub fn slice(
        &self,
        view: ViewName,
        direction: Direction,
        n: TopN,
    ) -> Option<Arc<Representation>> {
        let rendered = self.views.get(&view)?;
        let len = rendered.entries.len();
        let n = n.get().min(len);
        Some(self.slices.get_with((view, direction, n), || {
            let range = match direction {
                Direction::Top => 0..n,
                Direction::Bottom => len - n..len,
            };
            let text = if range.is_empty() {
                ""
            } else {
                &rendered.text
                    [rendered.entries[range.start].start..rendered.entries[range.end - 1].end]
            };
            let mut body = BytesMut::with_capacity(text.len() + 2);
            body.put_u8(b'[');
            body.put_slice(text.as_bytes());
            body.put_u8(b']');
            let dir = match direction {
                Direction::Top => 't',
                Direction::Bottom => 'b',
            };
            let hash: String = self.source_hash.chars().take(16).collect();
            let tag = format!("v{}-{hash}-{view}-{dir}{n}", self.version);
            Arc::new(Representation::new(Bytes::from(body), &tag))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubcache_shared::ViewEntry;

    fn set() -> ViewSet {
        let stars = vec![
            ViewEntry("Netflix/Hystrix".into(), ViewValue::Count(3518)),
            ViewEntry("Netflix/eureka".into(), ViewValue::Count(2077)),
            ViewEntry("Netflix/zuul".into(), ViewValue::Count(10)),
        ];
        let updated = vec![ViewEntry(
            "Netflix/a".into(),
            ViewValue::Timestamp("2024-01-02T03:04:05Z".into()),
        )];
        ViewSet {
            version: 3,
            source_hash: "abcdef".into(),
            views: ViewName::ALL
                .into_iter()
                .map(|v| {
                    (
                        v,
                        if v == ViewName::LastUpdated {
                            updated.clone()
                        } else {
                            stars.clone()
                        },
                    )
                })
                .collect(),
        }
    }

    fn text(views: &ServedViews, view: ViewName, dir: Direction, n: &str) -> String {
        let r = views
            .slice(view, dir, n.parse().expect("valid N"))
            .expect("view");
        String::from_utf8(r.identity().to_vec()).expect("utf8")
    }

    #[test]
    fn renders_the_seeds_text_format() {
        let v = ServedViews::prepare(&set());
        assert_eq!(
            text(&v, ViewName::Stars, Direction::Top, "2"),
            r#"[["Netflix/Hystrix", 3518], ["Netflix/eureka", 2077]]"#
        );
        assert_eq!(
            text(&v, ViewName::Stars, Direction::Bottom, "2"),
            r#"[["Netflix/eureka", 2077], ["Netflix/zuul", 10]]"#
        );
        assert_eq!(
            text(&v, ViewName::Stars, Direction::Top, "99"),
            text(&v, ViewName::Stars, Direction::Top, "3")
        );
        assert_eq!(
            text(&v, ViewName::LastUpdated, Direction::Top, "1"),
            r#"[["Netflix/a", "2024-01-02T03:04:05Z"]]"#
        );
    }

    #[test]
    fn top_n_accepts_only_positive_integers() {
        assert_eq!("10".parse::<TopN>().map(TopN::get), Ok(10));
        for bad in [
            "0",
            "-1",
            "abc",
            "1.5",
            "",
            "+3",
            " 1",
            "99999999999999999999999999",
        ] {
            assert!(bad.parse::<TopN>().is_err(), "{bad}");
        }
    }
}

/// Property tests: `N` comes straight from the request path.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn n_is_accepted_exactly_when_it_is_a_positive_decimal_integer(s in any::<String>()) {
            let plain = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            match s.parse::<TopN>() {
                Ok(n) => {
                    prop_assert!(plain);
                    prop_assert_eq!(Some(n.get()), s.parse::<usize>().ok());
                    prop_assert!(n.get() > 0);
                }
                Err(e) => {
                    prop_assert!(!plain || s.parse::<usize>().map_or(true, |v| v == 0));
                    prop_assert!(e.0.chars().count() <= 40, "the echo is bounded");
                }
            }
        }

        #[test]
        fn every_positive_count_round_trips(n in 1..=usize::MAX, zeros in 0..3usize) {
            let text = format!("{}{n}", "0".repeat(zeros));
            prop_assert_eq!(text.parse::<TopN>().map(TopN::get), Ok(n));
        }
    }
}
