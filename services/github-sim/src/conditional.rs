//! Entity tags and conditional requests (`If-None-Match`, `If-Modified-Since`), which let a
//! client revalidate a body for free: a 304 costs no rate limit.

use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// The weak entity tag GitHub-style for a body: `W/"<hex sha256>"`. Equal bodies, equal tags.
pub(crate) fn weak_etag(body: &[u8]) -> String {
    format!("W/\"{}\"", hex::encode(Sha256::digest(body)))
}

/// Whether an `If-None-Match` value (`*`, or a list of tags, weak or strong) names `etag`.
/// Comparison is weak, as RFC 9110 prescribes for `If-None-Match`: `W/` prefixes are ignored.
/// Bare tokens without quotes are accepted too, since some clients send them.
pub(crate) fn if_none_match_matches(header: &str, etag: &str) -> bool {
    let wanted = opaque_tag(etag);
    let mut rest = header.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        if rest.is_empty() {
            break;
        }
        if let Some(after_star) = rest.strip_prefix('*')
            && (after_star.trim_start().is_empty() || after_star.trim_start().starts_with(','))
        {
            return true;
        }
        let untagged = rest.strip_prefix("W/").unwrap_or(rest);
        let (candidate, remainder) = match untagged.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (&untagged[..end + 2], &quoted[end + 1..]),
                None => (untagged, ""),
            },
            None => match untagged.find(',') {
                Some(end) => (untagged[..end].trim(), &untagged[end..]),
                None => (untagged.trim(), ""),
            },
        };
        if opaque_tag(candidate) == wanted {
            return true;
        }
        rest = remainder;
    }
    false
}

/// Whether `If-Modified-Since` (an HTTP date) is at or after `last_modified`.
pub(crate) fn not_modified_since(header: &str, last_modified: SystemTime) -> bool {
    httpdate::parse_http_date(header.trim()).is_ok_and(|since| since >= last_modified)
}

/// The tag without its weakness marker and quotes.
fn opaque_tag(tag: &str) -> &str {
    let tag = tag.trim();
    tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"')
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const TAG: &str = "W/\"abc\"";

    #[test]
    fn etag_is_weak_sha256_hex() {
        assert_eq!(
            weak_etag(b""),
            "W/\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\""
        );
    }

    #[test]
    fn if_none_match_compares_weakly() {
        assert!(if_none_match_matches("W/\"abc\"", TAG));
        assert!(if_none_match_matches("\"abc\"", TAG));
        assert!(if_none_match_matches("abc", TAG));
        assert!(if_none_match_matches("*", TAG));
        assert!(if_none_match_matches("\"x\", W/\"abc\"", TAG));
        assert!(if_none_match_matches("\"a,b\",\"abc\"", TAG));
        assert!(!if_none_match_matches("\"abcd\"", TAG));
        assert!(!if_none_match_matches("\"ab\", x", TAG));
        assert!(!if_none_match_matches("", TAG));
        assert!(!if_none_match_matches("\"*\"", TAG));
    }

    #[test]
    fn if_modified_since_compares_dates() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_450_104_510);
        assert!(not_modified_since("Mon, 14 Dec 2015 14:48:30 GMT", at));
        assert!(!not_modified_since("Mon, 14 Dec 2015 14:48:29 GMT", at));
        assert!(!not_modified_since("yesterday", at));
    }
}
