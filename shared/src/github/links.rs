//! Pagination: GitHub's `Link` header and the page size list fetches ask for.

use super::MAX_PER_PAGE;

/// Appends `per_page=100` to a list target unless it already names a page size.
pub fn with_max_per_page(target: &str) -> String {
    let has_per_page = target
        .split_once('?')
        .map(|(_, q)| q.split('&').any(|kv| kv.starts_with("per_page=")))
        .unwrap_or(false);
    if has_per_page {
        target.to_owned()
    } else if target.contains('?') {
        format!("{target}&per_page={MAX_PER_PAGE}")
    } else {
        format!("{target}?per_page={MAX_PER_PAGE}")
    }
}

/// The relations of a `Link` header that pagination uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    /// `rel="next"`.
    pub next: Option<String>,
    /// `rel="prev"`.
    pub prev: Option<String>,
    /// `rel="first"`.
    pub first: Option<String>,
    /// `rel="last"`.
    pub last: Option<String>,
}

/// Parses an RFC 8288 `Link` header as GitHub writes it: `<url>; rel="next", <url>; rel="last"`.
///
/// Tolerant of what it cannot use: entries without `<...>` or `rel` are skipped, unknown rels
/// ignored, unquoted rels and several rels in one value (`rel="next last"`) understood, and a
/// comma inside `<...>` does not split an entry. The first URL for a rel wins.
pub fn parse_link_header(value: &str) -> Links {
    let mut links = Links::default();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let after_open = &rest[open + 1..];
        let Some(close) = after_open.find('>') else {
            break;
        };
        let url = after_open[..close].trim();
        let params_and_more = &after_open[close + 1..];
        // Parameters run until the next entry (a comma followed by '<') or the end.
        let params_end = next_entry_start(params_and_more);
        let params = params_and_more[..params_end].trim_end_matches(',');
        rest = &params_and_more[params_end..];
        for param in params.split(';') {
            let Some((name, val)) = param.split_once('=') else {
                continue;
            };
            if !name.trim().eq_ignore_ascii_case("rel") {
                continue;
            }
            for rel in val.trim().trim_matches('"').split_ascii_whitespace() {
                let slot = match rel.to_ascii_lowercase().as_str() {
                    "next" => &mut links.next,
                    "prev" | "previous" => &mut links.prev,
                    "first" => &mut links.first,
                    "last" => &mut links.last,
                    _ => continue,
                };
                if slot.is_none() && !url.is_empty() {
                    *slot = Some(url.to_owned());
                }
            }
        }
    }
    links
}

fn next_entry_start(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut in_quotes = false;
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b',' if !in_quotes => {
                let tail = s[i + 1..].trim_start();
                if tail.starts_with('<') {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    s.len()
}
