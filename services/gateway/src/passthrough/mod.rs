//! The pass-through: every request that is not a cached key, a view or a health route is answered
//! from GitHub through the `CoalescingCache`, without ever stampeding GitHub or leaking the
//! server token.
//!
//! - `GET`/`HEAD` go through the cache (a `HEAD` shares the `GET` entry; the body is dropped by
//!   the server). Requests with a `Range` header bypass it (partial answers are not stored).
//! - Other methods are refused with 405, unless the client sent its own `Authorization`: then
//!   they are forwarded with that credential only (never the server token) and never cached.
//! - Cache key: path, normalised query, normalised `Accept`, `X-GitHub-Api-Version`, and a
//!   credential partition (anonymous clients share the server's; a client's own `Authorization`
//!   gets a partition named by the SHA-256 of its value, never the value itself).
//! - Only an allow-list of headers crosses the gateway in either direction, minus anything the
//!   `Connection` header names, so hop-by-hop headers, `Host`, `Cookie` and `X-Forwarded-*` never
//!   do. The upstream host is fixed by configuration: the target path is appended to it.
//! - Bodies are stored once per answer: rewritten to `PUBLIC_URL` when it is set (verbatim
//!   otherwise), and gzip-compressed once for clients that accept it. `Link` and `Location`
//!   headers are rewritten per response to point at the gateway.
//!
//! Layout (one concern per file):
//! - `dispatch`: `PassThrough`: which way a request goes (cache, forward or refusal).
//! - `request_key`: the request target, the normalised `Accept` and the `CacheKey`.
//! - `allow_lists`: the headers that may cross the gateway in either direction.
//! - `upstream`: the one upstream call (allow-listed headers, credential, token rule).
//! - `freshness`: classifying an upstream answer for the cache (TTL, negative caching,
//!   revalidation, rate limits).
//! - `stored_answer`: `StoredResponse`, an upstream answer prepared once (headers sorted by
//!   who may see them, body rewritten and compressed).
//! - `rendering`: a stored answer rendered for one request (`Cache-Status`, conditional, gzip,
//!   `Link`/`Location` pointed at the gateway).
//! - `error`: `PassThroughError`, every refusal as a JSON error.

mod allow_lists;
mod dispatch;
mod error;
mod freshness;
mod rendering;
mod request_key;
mod stored_answer;
mod upstream;

pub(crate) use dispatch::PassThrough;
pub(crate) use upstream::UPSTREAM_METRIC;

/// A header map from `(name, value)` pairs, for the tests of every file here.
#[cfg(test)]
fn header_map(pairs: &[(&str, &str)]) -> actix_web::http::header::HeaderMap {
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    }
    map
}
