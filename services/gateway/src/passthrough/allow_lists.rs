//! The headers that may cross the gateway, in each direction: everything else (hop-by-hop
//! headers, anything `Connection` names, `Host`, `Cookie`, `X-Forwarded-*`) stays behind.

use actix_web::http::header::{self, HeaderMap, HeaderValue};

/// Hop-by-hop headers (RFC 9110 §7.6.1 plus the legacy ones): never forwarded either way, even
/// if a future edit adds one to an allow-list.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Client headers sent upstream on the cached path (besides the credential).
pub(super) const FORWARDED_CACHED: &[&str] = &["accept", "x-github-api-version"];
/// Client headers sent upstream when the cache is bypassed.
pub(super) const FORWARDED_BYPASS: &[&str] = &[
    "accept",
    "x-github-api-version",
    "content-type",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "range",
];
/// Upstream headers kept with a stored answer and sent with every copy of it.
pub(super) const KEPT_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "etag",
    "last-modified",
    "cache-control",
    "vary",
    "x-github-media-type",
    "x-github-api-version-selected",
    "retry-after",
    "deprecation",
    "sunset",
];
/// Upstream headers only true at the moment of the answer: sent on the answer that was just
/// fetched, never on later hits.
pub(super) const LIVE_RESPONSE_HEADERS: &[&str] = &[
    "x-github-request-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-used",
    "x-ratelimit-reset",
    "x-ratelimit-resource",
];
/// Upstream headers that describe the credential: passed only to the client whose credential it
/// was (they would describe the server token otherwise).
pub(super) const CREDENTIAL_RESPONSE_HEADERS: &[&str] =
    &["x-oauth-scopes", "x-accepted-oauth-scopes", "x-github-sso"];

/// The header `name` of a client's request, unless it may not cross the gateway
/// ([`crosses_the_gateway`]).
pub(super) fn allowed_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a HeaderValue> {
    let connection = headers
        .get_all(header::CONNECTION)
        .map(HeaderValue::as_bytes);
    if !crosses_the_gateway(name, connection) {
        return None;
    }
    headers.get(name)
}

/// Whether a header called `name` may cross the gateway in either direction: not hop-by-hop and
/// not named by the message's `Connection` header (`connection`: its values, as bytes, so client
/// requests and upstream answers, which use different `http` versions, share this one rule).
pub(super) fn crosses_the_gateway<'a>(
    name: &str,
    connection: impl IntoIterator<Item = &'a [u8]>,
) -> bool {
    !HOP_BY_HOP.contains(&name)
        && !connection
            .into_iter()
            .filter_map(|v| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passthrough::header_map as headers;
    use crate::passthrough::upstream::OutgoingRequest;

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_never_forwarded() {
        let request = headers(&[
            ("connection", "close, X-GitHub-Api-Version"),
            ("x-github-api-version", "2022-11-28"),
            ("accept", "application/json"),
            ("te", "trailers"),
        ]);
        assert!(allowed_header(&request, "x-github-api-version").is_none());
        assert!(allowed_header(&request, "te").is_none());
        assert!(allowed_header(&request, "connection").is_none());
        assert!(allowed_header(&request, "accept").is_some());
        let mut outgoing = OutgoingRequest::new(reqwest::Method::GET, "/".to_owned());
        for name in FORWARDED_BYPASS {
            outgoing.copy_header(&request, name);
        }
        let names: Vec<&str> = outgoing.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["accept"]);
    }
}
