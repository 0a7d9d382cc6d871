//! The pass-through: every request that is not a cached key, a view or a health route is answered
//! from GitHub through the `CoalescingCache`, without ever stampeding GitHub or leaking the
//! server token.
//!
//! - `GET`/`HEAD` go through the cache (a `HEAD` shares the `GET` entry; the body is dropped by
//!   the server). Requests with a `Range` header bypass it (partial answers are not stored).
//! - Other methods are refused with 405, unless the client sent its own `Authorization`: then
//!   they are forwarded with that credential only (never the server token) and never cached.
//! - Cache key: path, normalised query, normalised `Accept`, `X-GitHub-Api-Version`, and a
//!   credential partition following the credential actually sent upstream: anonymous clients
//!   share `server:{credential name}` where the token scope gives them the server's credential
//!   and `anonymous` elsewhere; a client's own `Authorization` gets a partition named by the
//!   SHA-256 of its value, never the value itself.
//! - Token scope (`PASSTHROUGH_SERVER_TOKEN_SCOPE`): by default only the configured orgs' own
//!   resources are fetched with the server's credential.
//! - Spent budgets: after GitHub refuses a credential for a rate limit, nothing with that
//!   credential goes upstream until the limit lifts (cached copies or 503 + `Retry-After`).
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
//! - `upstream`: the one upstream call (allow-listed headers, credential, budget check).
//! - `token_scope`: which anonymous requests carry the server's credential, and the one
//!   function that gives that credential (`server_credential_for`).
//! - `budget`: paused rate-limit budgets per credential partition.
//! - `freshness`: classifying an upstream answer for the cache (TTL, negative caching,
//!   revalidation, rate limits).
//! - `stored_answer`: `StoredResponse`, an upstream answer prepared once (headers sorted by
//!   who may see them, body rewritten and compressed).
//! - `rendering`: a stored answer rendered for one request (`Cache-Status`, conditional, gzip,
//!   `Link`/`Location` pointed at the gateway).
//! - `error`: `PassThroughError`, every refusal as a JSON error.
//! - `fleet`: the way through the fleet cache (L2, shared by the replicas in Redis): entry ids,
//!   the encodings of answers and failures, a revalidated L2 copy's age.

mod allow_lists;
mod budget;
mod dispatch;
mod error;
mod fleet;
mod freshness;
mod rendering;
mod request_key;
mod stored_answer;
mod token_scope;
mod upstream;

pub(crate) use budget::{KINDS as BUDGET_KINDS, PAUSED_METRIC, REFUSALS_METRIC};
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
