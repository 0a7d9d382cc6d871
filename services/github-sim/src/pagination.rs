//! GitHub's list pagination: `per_page` and `page` query parameters, and the `Link` header.

use std::ops::Range;

/// Page size when the request names none (GitHub's default).
pub(crate) const DEFAULT_PER_PAGE: u64 = 30;
/// The largest page GitHub serves; larger requests are clamped to it.
pub(crate) const MAX_PER_PAGE: u64 = 100;

/// The page a list request addresses, normalised the way GitHub does: a missing, zero or
/// unparsable `page` is page 1, `per_page` defaults to 30 and is clamped to 1..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PageRequest {
    pub(crate) per_page: u64,
    pub(crate) page: u64,
}

impl PageRequest {
    pub(crate) fn from_query(raw_query: &str) -> Self {
        let mut per_page = DEFAULT_PER_PAGE;
        let mut page = 1;
        for (key, value) in raw_query.split('&').filter_map(|pair| pair.split_once('=')) {
            match key {
                "per_page" => {
                    per_page = match value.parse::<u64>() {
                        Ok(0) | Err(_) => DEFAULT_PER_PAGE,
                        Ok(n) => n.min(MAX_PER_PAGE),
                    }
                }
                "page" => page = value.parse::<u64>().ok().filter(|&n| n > 0).unwrap_or(1),
                _ => {}
            }
        }
        Self { per_page, page }
    }

    /// The last page of a list of `len` items (an empty list still has page 1).
    pub(crate) fn last_page(&self, len: usize) -> u64 {
        (len as u64).div_ceil(self.per_page).max(1)
    }

    /// The items of `len` this page holds (empty past the end).
    pub(crate) fn window(&self, len: usize) -> Range<usize> {
        let start = (self.page - 1)
            .saturating_mul(self.per_page)
            .min(len as u64) as usize;
        let end = (start as u64 + self.per_page).min(len as u64) as usize;
        start..end
    }
}

/// The `Link` header of page `page` of `last_page`, as GitHub writes it: `prev` and `first` when
/// `page > 1`, `next` and `last` when a later page exists, `None` when neither. The URLs are
/// `{base}{path}` with the request's query parameters kept in order and `page` set last.
pub(crate) fn link_header(
    base: &str,
    path: &str,
    raw_query: &str,
    page: u64,
    last_page: u64,
) -> Option<String> {
    let mut kept = String::new();
    for pair in raw_query.split('&').filter(|pair| !pair.is_empty()) {
        if pair.split('=').next() != Some("page") {
            kept.push_str(pair);
            kept.push('&');
        }
    }
    let url = |n: u64| format!("<{base}{path}?{kept}page={n}>");
    let mut rels = Vec::with_capacity(4);
    if page > 1 {
        rels.push(format!("{}; rel=\"prev\"", url(page - 1)));
    }
    if page < last_page {
        rels.push(format!("{}; rel=\"next\"", url(page + 1)));
        rels.push(format!("{}; rel=\"last\"", url(last_page)));
    }
    if page > 1 {
        rels.push(format!("{}; rel=\"first\"", url(1)));
    }
    (!rels.is_empty()).then(|| rels.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_normalised_like_github() {
        let page = |q| PageRequest::from_query(q);
        assert_eq!(
            page(""),
            PageRequest {
                per_page: 30,
                page: 1
            }
        );
        assert_eq!(
            page("per_page=500&page=0"),
            PageRequest {
                per_page: 100,
                page: 1
            }
        );
        assert_eq!(
            page("per_page=x&page=-2"),
            PageRequest {
                per_page: 30,
                page: 1
            }
        );
        assert_eq!(
            page("page=3&per_page=7"),
            PageRequest {
                per_page: 7,
                page: 3
            }
        );
    }

    #[test]
    fn windows_stop_at_the_end() {
        let request = PageRequest {
            per_page: 30,
            page: 2,
        };
        assert_eq!(request.window(45), 30..45);
        assert_eq!(request.last_page(45), 2);
        assert_eq!(
            PageRequest {
                per_page: 30,
                page: 9
            }
            .window(45),
            45..45
        );
        assert_eq!(
            PageRequest {
                per_page: 30,
                page: u64::MAX
            }
            .window(45),
            45..45
        );
        assert_eq!(request.last_page(0), 1);
    }

    #[test]
    fn links_keep_other_parameters_and_put_page_last() {
        let link = link_header(
            "http://s",
            "/organizations/7/repos",
            "page=2&type=all&per_page=10",
            2,
            3,
        );
        assert_eq!(
            link.as_deref(),
            Some(
                "<http://s/organizations/7/repos?type=all&per_page=10&page=1>; rel=\"prev\", \
                 <http://s/organizations/7/repos?type=all&per_page=10&page=3>; rel=\"next\", \
                 <http://s/organizations/7/repos?type=all&per_page=10&page=3>; rel=\"last\", \
                 <http://s/organizations/7/repos?type=all&per_page=10&page=1>; rel=\"first\""
            )
        );
        assert_eq!(link_header("http://s", "/x", "", 1, 1), None);
        assert_eq!(
            link_header("http://s", "/x", "", 1, 2).as_deref(),
            Some("<http://s/x?page=2>; rel=\"next\", <http://s/x?page=2>; rel=\"last\"")
        );
    }
}
