//! The `Cache-Status` header (RFC 9211) and the `Warning` texts of stale answers: one name and
//! one set of values for the in-process copies, the pass-through and the request log.

use actix_web::http::header::HeaderName;

/// The `Cache-Status` header. Not one of `http`'s standard names, so parsing the string would
/// allocate a new name on every response; this one is built at compile time.
pub(crate) const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// A fresh answer from memory (an in-process copy or a fresh pass-through entry).
pub(crate) const HIT: &str = "hubcache; hit";
/// An answer from memory that may be outdated: Redis is unreachable (in-process copies), or the
/// pass-through entry expired and is being refreshed or could not be.
pub(crate) const HIT_STALE: &str = "hubcache; hit; fwd=stale";
/// Fetched from GitHub for this request and stored.
pub(crate) const FETCHED_STORED: &str = "hubcache; fwd=uri-miss; stored";
/// Fetched from GitHub for this request, not storable.
pub(crate) const FETCHED_NOT_STORED: &str = "hubcache; fwd=uri-miss";
/// An expired entry GitHub confirmed unchanged (304).
pub(crate) const REVALIDATED: &str = "hubcache; fwd=stale; fwd-status=304; stored";
/// Answered by another request's fetch of the same key.
pub(crate) const COLLAPSED: &str = "hubcache; fwd=uri-miss; collapsed";
/// Forwarded without the cache (`Range`, or another method with the client's credential).
pub(crate) const BYPASS: &str = "hubcache; fwd=bypass";

/// `Warning` (RFC 7234 §5.5; obsolete in RFC 9111, still understood by tooling) of an answer
/// that may be outdated.
pub(crate) const STALE_WARNING: &str = "110 hubcache \"Response is Stale\"";
/// `Warning` of a stale answer served because GitHub could not be asked.
pub(crate) const REVALIDATION_FAILED_WARNING: &str = "111 hubcache \"Revalidation Failed\"";
