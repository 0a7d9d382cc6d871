//! GitHub-style pagination of cached lists: which page a query asks for, and the `Link` header
//! that lets clients walk the pages through the gateway.
//!
//! Semantics follow GitHub's, leniently, because clients are written against GitHub:
//! - no `page`/`per_page` parameter: the whole merged array (the seed's behaviour);
//! - `per_page` defaults to 30 and is capped at 100; `page` starts at 1;
//! - a value that is not a positive integer (`0`, `-1`, `abc`, an overflow) falls back to the
//!   default, as GitHub does, instead of failing the request;
//! - a page past the end is `[]`.
//!
//! Any other query parameter (`sort`, `type`, ...) changes what GitHub would answer, which the
//! snapshot cannot reproduce: such requests go to the pass-through instead.

use std::fmt::Write as _;

/// GitHub's default page size.
pub(crate) const DEFAULT_PER_PAGE: usize = 30;
/// GitHub's largest page size.
pub(crate) const MAX_PER_PAGE: usize = 100;

/// One page of a list: its size and 1-based number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PageRequest {
    /// Elements per page, 1 to [`MAX_PER_PAGE`].
    pub(crate) per_page: usize,
    /// Page number, from 1.
    pub(crate) page: usize,
}

/// What a query string asks of a cached key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CachedQuery {
    /// No query: the whole snapshot.
    Whole,
    /// `page` and/or `per_page`: one page.
    Page(PageRequest),
    /// Other parameters: not answerable from the snapshot.
    Other,
}

impl CachedQuery {
    /// Classifies a raw query string (without `?`).
    pub(crate) fn parse(query: &str) -> Self {
        if query.is_empty() {
            return CachedQuery::Whole;
        }
        let mut per_page: Option<Option<usize>> = None;
        let mut page: Option<Option<usize>> = None;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "per_page" => per_page = Some(positive(&value)),
                "page" => page = Some(positive(&value)),
                "" => {}
                _ => return CachedQuery::Other,
            }
        }
        if per_page.is_none() && page.is_none() {
            return CachedQuery::Whole;
        }
        CachedQuery::Page(PageRequest {
            per_page: per_page
                .flatten()
                .unwrap_or(DEFAULT_PER_PAGE)
                .min(MAX_PER_PAGE),
            page: page.flatten().unwrap_or(1),
        })
    }
}

fn positive(value: &str) -> Option<usize> {
    value.trim().parse::<usize>().ok().filter(|v| *v > 0)
}

impl PageRequest {
    /// The element index range of this page in a list of `len` elements (empty past the end).
    pub(crate) fn range(&self, len: usize) -> std::ops::Range<usize> {
        let start = (self.page - 1).saturating_mul(self.per_page).min(len);
        let end = start.saturating_add(self.per_page).min(len);
        start..end
    }

    /// The number of the last page of a list of `len` elements (1 for an empty list).
    pub(crate) fn last_page(&self, len: usize) -> usize {
        len.div_ceil(self.per_page).max(1)
    }

    /// GitHub's `Link` header for this page: `prev`, `next`, `last`, `first` as they apply, each
    /// `<{base}{path}?per_page=N&page=M>`. `None` when the list fits on this single first page.
    pub(crate) fn link_header(&self, base: &str, path: &str, len: usize) -> Option<String> {
        let last = self.last_page(len);
        let mut rels: Vec<(usize, &str)> = Vec::with_capacity(4);
        if self.page > 1 {
            rels.push((self.page - 1, "prev"));
        }
        if self.page < last {
            rels.push((self.page + 1, "next"));
            rels.push((last, "last"));
        }
        if self.page > 1 {
            rels.push((1, "first"));
        }
        if rels.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(rels.len() * (base.len() + path.len() + 40));
        for (i, (page, rel)) in rels.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(
                out,
                "<{base}{path}?per_page={}&page={page}>; rel=\"{rel}\"",
                self.per_page
            );
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(per_page: usize, page: usize) -> CachedQuery {
        CachedQuery::Page(PageRequest { per_page, page })
    }

    #[test]
    fn queries_classify_like_github() {
        assert_eq!(CachedQuery::parse(""), CachedQuery::Whole);
        assert_eq!(CachedQuery::parse("page=2"), page(30, 2));
        assert_eq!(CachedQuery::parse("per_page=100"), page(100, 1));
        assert_eq!(CachedQuery::parse("per_page=500&page=3"), page(100, 3));
        assert_eq!(CachedQuery::parse("per_page=0&page=0"), page(30, 1));
        assert_eq!(CachedQuery::parse("per_page=abc&page=-1"), page(30, 1));
        assert_eq!(
            CachedQuery::parse("page=99999999999999999999999"),
            page(30, 1)
        );
        assert_eq!(CachedQuery::parse("page=1&page=4"), page(30, 4));
        assert_eq!(CachedQuery::parse("sort=updated"), CachedQuery::Other);
        assert_eq!(CachedQuery::parse("page=2&type=all"), CachedQuery::Other);
    }

    #[test]
    fn ranges_and_last_pages() {
        let p = PageRequest {
            per_page: 10,
            page: 3,
        };
        assert_eq!(p.range(25), 20..25);
        assert_eq!(p.range(20), 20..20);
        assert_eq!(p.last_page(25), 3);
        assert_eq!(p.last_page(0), 1);
        let huge = PageRequest {
            per_page: 100,
            page: usize::MAX,
        };
        assert!(huge.range(5).is_empty());
    }

    #[test]
    fn link_headers_follow_githubs_shape() {
        let first = PageRequest {
            per_page: 10,
            page: 1,
        };
        assert_eq!(
            first
                .link_header("http://gw", "/orgs/o/repos", 25)
                .as_deref(),
            Some(
                "<http://gw/orgs/o/repos?per_page=10&page=2>; rel=\"next\", \
                 <http://gw/orgs/o/repos?per_page=10&page=3>; rel=\"last\""
            )
        );
        let middle = PageRequest {
            per_page: 10,
            page: 2,
        };
        let links = middle.link_header("http://gw", "/x", 25).expect("links");
        assert!(links.contains("page=1>; rel=\"prev\"") && links.contains("page=3>; rel=\"next\""));
        assert!(
            links.contains("page=3>; rel=\"last\"") && links.contains("page=1>; rel=\"first\"")
        );
        let last = PageRequest {
            per_page: 10,
            page: 3,
        };
        let links = last.link_header("http://gw", "/x", 25).expect("links");
        assert!(!links.contains("next") && links.contains("prev"));
        assert_eq!(first.link_header("http://gw", "/x", 10), None);
    }
}

/// Property tests: `page`/`per_page` come straight from the query string.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn query() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            proptest::collection::vec(
                (
                    prop_oneof![Just("page"), Just("per_page"), Just(""), Just("q")],
                    prop_oneof!["-?[0-9]{0,25}", "%[0-9a-fA-F]{2}", " ?[0-9]{1,3} ?"],
                ),
                0..4,
            )
            .prop_map(|pairs| {
                pairs
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_query_gives_a_valid_page_and_consistent_links(query in query(), len in 0..5_000usize) {
            if let CachedQuery::Page(request) = CachedQuery::parse(&query) {
                prop_assert!((1..=MAX_PER_PAGE).contains(&request.per_page));
                prop_assert!(request.page >= 1);
                let range = request.range(len);
                prop_assert!(range.start <= range.end && range.end <= len);
                prop_assert!(range.len() <= request.per_page);
                let last = request.last_page(len);
                prop_assert!(last >= 1);
                if let Some(link) = request.link_header("http://gw", "/orgs/x/repos", len) {
                    prop_assert!(link.contains("rel="));
                    prop_assert!(!link.contains("page=0"));
                }
            }
        }
    }
}
