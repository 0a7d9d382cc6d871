//! Conditional requests (RFC 9110 §13.1.2): `If-None-Match` evaluated with the weak comparison a
//! `GET` uses, and the weak form of a strong ETag. The one place both the in-process copies
//! (`representation`) and the pass-through decide on a 304.

use actix_web::http::header::{self, HeaderMap, HeaderValue};

/// Whether the request's `If-None-Match` names a current representation: `*`, or a listed tag
/// whose opaque part (without `W/` and quotes) `is_current` accepts. Every header line counts.
pub(crate) fn if_none_match(headers: &HeaderMap, is_current: impl Fn(&str) -> bool) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|candidate| candidate == "*" || is_current(opaque_tag(candidate)))
}

/// The opaque part of an entity tag: `W/"abc"` and `"abc"` are both `abc`.
pub(crate) fn opaque_tag(tag: &str) -> &str {
    let tag = tag.trim();
    tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"')
}

/// The weak form of `value` (unchanged if it is weak already): a strong validator names exact
/// bytes, so a re-encoded copy of them may carry only the weak one.
pub(crate) fn weak_etag(value: &HeaderValue) -> HeaderValue {
    if value.as_bytes().starts_with(b"W/") {
        return value.clone();
    }
    let mut weak = b"W/".to_vec();
    weak.extend_from_slice(value.as_bytes());
    HeaderValue::from_bytes(&weak).unwrap_or_else(|_| value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(if_none_match_value: &str, etag: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(if_none_match_value).expect("value"),
        );
        let wanted = opaque_tag(etag);
        if_none_match(&headers, |tag| tag == wanted)
    }

    #[test]
    fn if_none_match_compares_weakly() {
        assert!(names("W/\"abc\"", "\"abc\""));
        assert!(names("\"x\", \"abc\"", "W/\"abc\""));
        assert!(names("*", "\"abc\""));
        assert!(!names("\"abcd\"", "\"abc\""));
        assert!(!if_none_match(&HeaderMap::new(), |_| true));
    }

    #[test]
    fn weak_etags_are_made_once() {
        assert_eq!(weak_etag(&HeaderValue::from_static("\"a\"")), "W/\"a\"");
        assert_eq!(weak_etag(&HeaderValue::from_static("W/\"a\"")), "W/\"a\"");
    }
}
