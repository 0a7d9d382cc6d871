//! The pass-through: every request that is not a cached key, a view or a health route is answered
//! from GitHub through the [`CoalescingCache`], without ever stampeding GitHub or leaking the
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

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError, web};
use anyhow::Context;
use bytes::Bytes;
use hubcache_shared::GithubClient;
use hubcache_shared::github::{GITHUB_ACCEPT, GithubResponse, Links, RateLimit};
use sha2::{Digest, Sha256};
use url::Url;

mod fleet_entry;

use crate::body_urls::BodyUrlRewriter;
use crate::coalescing_cache::{
    CachePolicy, CacheStats, CoalescingCache, FetchError, FetchKind, Fetched, Outcome, Weigh,
};
use crate::fleet_cache::{FleetCache, FleetOrigin, FleetStats, fleet_id};
use crate::public_base::public_base;
use crate::settings::Settings;

/// Largest request body forwarded for a client's own non-GET request (larger: 413 JSON). The
/// router's `web::PayloadConfig` must allow at least this much, or actix refuses first.
pub(crate) const MAX_FORWARDED_BODY: usize = 1024 * 1024;
/// Bodies smaller than this are not worth a gzip copy.
const GZIP_MIN_BYTES: usize = 1024;
/// Bodies larger than this are rewritten and compressed off the async workers.
const BLOCKING_PREPARE_BYTES: usize = 64 * 1024;
/// Bookkeeping bytes counted per entry on top of its bodies and headers.
const ENTRY_OVERHEAD_BYTES: usize = 256;

/// `Retry-After` of an overload refusal: fetches last about an upstream round trip, so a slot
/// frees up quickly.
const OVERLOAD_RETRY_AFTER_SECS: u64 = 1;

/// RFC 9211 `Cache-Status` header.
const CACHE_STATUS: &str = "cache-status";
const CACHE_STATUS_HIT: &str = "hubcache; hit";
const CACHE_STATUS_STALE: &str = "hubcache; hit; fwd=stale";
const CACHE_STATUS_STORED: &str = "hubcache; fwd=uri-miss; stored";
const CACHE_STATUS_NOT_STORED: &str = "hubcache; fwd=uri-miss";
const CACHE_STATUS_REVALIDATED: &str = "hubcache; fwd=stale; fwd-status=304; stored";
const CACHE_STATUS_COLLAPSED: &str = "hubcache; fwd=uri-miss; collapsed";
const CACHE_STATUS_BYPASS: &str = "hubcache; fwd=bypass";
/// A fresh entry of the fleet cache (L2), another replica's answer.
const CACHE_STATUS_L2_HIT: &str = "hubcache; hit; detail=l2";
/// Another replica's fetch, waited for (fleet-wide coalescing).
const CACHE_STATUS_FLEET_COLLAPSED: &str = "hubcache; fwd=uri-miss; collapsed; detail=fleet";
/// An expired L2 entry (being revalidated by another replica, or the upstream failed).
const CACHE_STATUS_L2_STALE: &str = "hubcache; hit; fwd=stale; detail=l2";
const WARNING_STALE: &str = "110 - \"Response is Stale\"";
const WARNING_REVALIDATION_FAILED: &str = "111 - \"Revalidation Failed\"";

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
const FORWARDED_CACHED: &[&str] = &["accept", "x-github-api-version"];
/// Client headers sent upstream when the cache is bypassed.
const FORWARDED_BYPASS: &[&str] = &[
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
const KEPT_RESPONSE_HEADERS: &[&str] = &[
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
const LIVE_RESPONSE_HEADERS: &[&str] = &[
    "x-github-request-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-used",
    "x-ratelimit-reset",
    "x-ratelimit-resource",
];
/// Upstream headers that describe the credential: passed only to the client whose credential it
/// was (they would describe the server token otherwise).
const CREDENTIAL_RESPONSE_HEADERS: &[&str] =
    &["x-oauth-scopes", "x-accepted-oauth-scopes", "x-github-sso"];

/// `hubcache_upstream_requests_total{status}`: requests the pass-through sent to GitHub, by
/// response status (`error`: no response).
const UPSTREAM_METRIC: &str = "hubcache_upstream_requests_total";

/// The pass-through service: the coalescing cache in front of GitHub plus request forwarding.
/// Built once and shared by every worker, so coalescing spans the whole process.
pub(crate) struct PassThrough {
    cache: CoalescingCache<CacheKey, StoredResponse, UpstreamFailure>,
    upstream: Arc<Upstream>,
    bypassed: AtomicU64,
}

impl std::fmt::Debug for PassThrough {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassThrough")
            .field("cache", &self.cache)
            .field("github", &self.upstream.github)
            .finish_non_exhaustive()
    }
}

/// Counters for metrics: the cache's, plus requests that bypassed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PassThroughStats {
    /// Cache sizes and lookup counters.
    pub(crate) cache: CacheStats,
    /// Requests forwarded without the cache (other methods with a credential, `Range`).
    pub(crate) bypassed: u64,
    /// The fleet cache's counters, when it is on.
    pub(crate) fleet: Option<FleetStats>,
}

/// What the fetches share: the client, the freshness rules and the body rewriting.
struct Upstream {
    github: GithubClient,
    use_server_token: bool,
    public_url: Option<Url>,
    /// With `PUBLIC_URL` set: rewrites upstream URLs in stored bodies to it.
    body_urls: Option<BodyUrlRewriter>,
    fresh_ttl: Duration,
    negative_ttl: Duration,
    timeout: Duration,
    /// The fleet cache (L2) shared with the other replicas, unless `l2_enabled` is off.
    fleet: Option<FleetCache>,
}

impl PassThrough {
    /// Builds the cache and forwarding rules from `settings`; `github` is the upstream client
    /// (its base URL is the only host the pass-through ever connects to); `fleet` the cache
    /// shared with the other replicas, behind the in-process one.
    pub(crate) fn new(
        settings: &Settings,
        github: GithubClient,
        fleet: Option<FleetCache>,
    ) -> anyhow::Result<Self> {
        let public_url = settings.public_base_url()?;
        let policy = CachePolicy {
            max_entries: usize::try_from(settings.cache_max_entries)
                .context("CACHE_MAX_ENTRIES does not fit this platform")?,
            max_bytes: usize::try_from(settings.cache_max_bytes)
                .context("CACHE_MAX_BYTES does not fit this platform")?,
            stale_while_revalidate: Duration::from_secs(settings.stale_while_revalidate_secs),
            stale_if_error: Duration::from_secs(settings.stale_if_error_secs),
            fetch_timeout: settings.upstream_timeout(),
            max_fetches: settings.max_upstream_fetches,
        };
        let body_urls = BodyUrlRewriter::for_public_url(public_url.as_ref(), github.base_url());
        Ok(Self {
            cache: CoalescingCache::new(policy),
            upstream: Arc::new(Upstream {
                github,
                use_server_token: settings.passthrough_use_server_token,
                public_url,
                body_urls,
                fresh_ttl: Duration::from_secs(settings.cache_ttl_secs),
                negative_ttl: Duration::from_secs(settings.negative_ttl_secs),
                timeout: settings.upstream_timeout(),
                fleet,
            }),
            bypassed: AtomicU64::new(0),
        })
    }

    /// Answers any request that is not a cached key, view or health route (all methods).
    pub(crate) async fn handle(&self, req: HttpRequest, body: web::Bytes) -> HttpResponse {
        match self.answer(&req, body).await {
            Ok(response) => response,
            Err(error) => {
                match &error {
                    PassThroughError::Unexpected(e) => {
                        tracing::error!(
                            path = req.path(),
                            error = format!("{e:#}"),
                            "pass-through failed"
                        );
                    }
                    PassThroughError::Unavailable(_) | PassThroughError::RateLimited { .. } => {
                        tracing::warn!(path = req.path(), error = %error, "pass-through upstream failed");
                    }
                    _ => {}
                }
                error.error_response()
            }
        }
    }

    /// Cache sizes and counters.
    pub(crate) fn stats(&self) -> PassThroughStats {
        PassThroughStats {
            cache: self.cache.stats(),
            bypassed: self.bypassed.load(Ordering::Relaxed),
            fleet: self.upstream.fleet.as_ref().map(FleetCache::stats),
        }
    }

    async fn answer(
        &self,
        req: &HttpRequest,
        body: Bytes,
    ) -> Result<HttpResponse, PassThroughError> {
        let target = request_target(req)?;
        let credential = req.headers().get(header::AUTHORIZATION).cloned();
        let method = req.method();
        if method == Method::GET || method == Method::HEAD {
            if req.headers().contains_key(header::RANGE) {
                return self.forward(req, target, Bytes::new(), credential).await;
            }
            return self.cached(req, target, credential).await;
        }
        if credential.is_none() {
            return Err(PassThroughError::MethodNotAllowed(method.clone()));
        }
        if body.len() > MAX_FORWARDED_BODY {
            return Err(PassThroughError::PayloadTooLarge(MAX_FORWARDED_BODY));
        }
        self.forward(req, target, body, credential).await
    }

    /// `GET`/`HEAD` through the coalescing cache.
    async fn cached(
        &self,
        req: &HttpRequest,
        target: String,
        credential: Option<HeaderValue>,
    ) -> Result<HttpResponse, PassThroughError> {
        let headers = req.headers();
        let accept = normalise_accept(headers);
        let api_version = allowed_header(headers, "x-github-api-version")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned());
        let partition = credential.as_ref().map_or(Partition::Server, |value| {
            Partition::Credential(Sha256::digest(value.as_bytes()).into())
        });
        // The fleet cache's key parts, moved into the fetch (no copy unless a version is sent).
        let fleet_key = FleetKey {
            partition,
            accept: accept.clone(),
            api_version: api_version.clone(),
        };
        let key = CacheKey {
            partition,
            target: target.clone(),
            accept,
            api_version,
        };
        let mut outgoing = OutgoingRequest::new(reqwest::Method::GET, target);
        for name in FORWARDED_CACHED {
            if *name == "accept" && fleet_key.accept == DEFAULT_ACCEPT {
                continue; // GithubClient sends GitHub's JSON media type by default.
            }
            outgoing.copy_header(headers, name);
        }
        let client_credential = credential.is_some();
        outgoing.use_server_token = self.upstream.use_server_token && !client_credential;
        outgoing.credential = credential;
        let upstream = Arc::clone(&self.upstream);
        let lookup = self
            .cache
            .get_or_fetch(key, move |previous| {
                upstream.fetch_shared(fleet_key, outgoing, previous)
            })
            .await
            .map_err(PassThroughError::from)?;
        let (status, warning, live) = served_as(lookup.outcome, lookup.value.fleet);
        let served = Served {
            cache_status: status,
            warning,
            live,
            // An answer from L2 was already this old when this replica received it.
            age: Some(lookup.age + lookup.value.age_offset),
            client_credential,
        };
        Ok(self.upstream.render(req, &lookup.value, &served))
    }

    /// A request sent upstream as is (within the allow-list) and never cached.
    async fn forward(
        &self,
        req: &HttpRequest,
        target: String,
        body: Bytes,
        credential: Option<HeaderValue>,
    ) -> Result<HttpResponse, PassThroughError> {
        // The same bound as the cache's fetches: held until the upstream answer is prepared.
        let Some(_fetch_slot) = self.cache.try_reserve_fetch() else {
            return Err(PassThroughError::from(Arc::new(
                self.cache.count_overloaded(),
            )));
        };
        self.bypassed.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::coalescing_cache::LOOKUPS_METRIC, "result" => "bypass")
            .increment(1);
        let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
            .context("an HTTP method actix accepted")?;
        let readable = method == reqwest::Method::GET || method == reqwest::Method::HEAD;
        let mut outgoing = OutgoingRequest::new(method, target);
        for name in FORWARDED_BYPASS {
            outgoing.copy_header(req.headers(), name);
        }
        let client_credential = credential.is_some();
        // The server token only ever accompanies anonymous reads.
        outgoing.use_server_token =
            readable && !client_credential && self.upstream.use_server_token;
        outgoing.credential = credential;
        outgoing.body = (!body.is_empty()).then_some(body);
        let upstream = Arc::clone(&self.upstream);
        let answer = tokio::time::timeout(upstream.timeout, upstream.send(outgoing))
            .await
            .map_err(|_| {
                PassThroughError::Unavailable(format!(
                    "no answer within {}s",
                    upstream.timeout.as_secs()
                ))
            })?
            .map_err(|failure| PassThroughError::from_failure(&failure))?;
        let stored = upstream.prepare(answer, client_credential, false).await?;
        let served = Served {
            cache_status: CACHE_STATUS_BYPASS,
            warning: None,
            live: true,
            age: None,
            client_credential,
        };
        Ok(upstream.render(req, &stored, &served))
    }
}

/// `Cache-Status`, `Warning` and whether the live headers apply, from how the in-process cache
/// answered and, for an answer it obtained just now, how the fleet cache obtained it.
fn served_as(
    outcome: Outcome,
    fleet: Option<FleetOrigin>,
) -> (&'static str, Option<&'static str>, bool) {
    match (outcome, fleet) {
        (Outcome::Hit, _) => (CACHE_STATUS_HIT, None, false),
        (Outcome::StaleWhileRevalidate, _) => (CACHE_STATUS_STALE, Some(WARNING_STALE), false),
        (Outcome::StaleIfError, _) => {
            (CACHE_STATUS_STALE, Some(WARNING_REVALIDATION_FAILED), false)
        }
        (
            Outcome::Fetched(FetchKind {
                revalidated: true, ..
            }),
            _,
        )
        | (_, Some(FleetOrigin::Revalidated)) => (CACHE_STATUS_REVALIDATED, None, false),
        (
            Outcome::Collapsed(FetchKind {
                revalidated: true, ..
            }),
            _,
        ) => (CACHE_STATUS_COLLAPSED, None, false),
        (_, Some(FleetOrigin::Hit)) => (CACHE_STATUS_L2_HIT, None, false),
        (_, Some(FleetOrigin::Collapsed)) => (CACHE_STATUS_FLEET_COLLAPSED, None, false),
        (_, Some(FleetOrigin::Stale)) => (CACHE_STATUS_L2_STALE, Some(WARNING_STALE), false),
        (_, Some(FleetOrigin::StaleIfError)) => (
            CACHE_STATUS_L2_STALE,
            Some(WARNING_REVALIDATION_FAILED),
            false,
        ),
        (Outcome::Fetched(FetchKind { stored: true, .. }), None) => {
            (CACHE_STATUS_STORED, None, true)
        }
        (Outcome::Fetched(_), None) => (CACHE_STATUS_NOT_STORED, None, true),
        (Outcome::Collapsed(_), None) => (CACHE_STATUS_COLLAPSED, None, true),
    }
}

/// The normalised `Accept` of a request without one, or with `*/*`: what GitHub serves then.
const DEFAULT_ACCEPT: &str = GITHUB_ACCEPT;

/// The request target as sent upstream: the path as received plus the normalised query.
fn request_target(req: &HttpRequest) -> Result<String, PassThroughError> {
    let path = req.uri().path();
    if !path.starts_with('/') {
        return Err(PassThroughError::BadTarget);
    }
    let query = req.uri().query().map(normalise_query).unwrap_or_default();
    Ok(if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    })
}

/// Query parameters decoded, sorted by name (stable, so repeated names keep their order) and
/// re-encoded one canonical way: `b=2&a=1` and `a=%31&b=2` are the same entry.
fn normalise_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// `Accept` lowercased, without spaces; absent or `*/*` means GitHub's default media type.
fn normalise_accept(headers: &HeaderMap) -> String {
    let accept = allowed_header(headers, "accept")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(|part| part.split(';').map(str::trim).collect::<Vec<_>>().join(";"))
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(",")
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if accept.is_empty() || accept == "*/*" {
        DEFAULT_ACCEPT.to_owned()
    } else {
        accept
    }
}

/// The header `name` of `headers`, unless it is hop-by-hop or named by `Connection`.
fn allowed_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a HeaderValue> {
    if HOP_BY_HOP.contains(&name) || named_by_connection(headers, name) {
        return None;
    }
    headers.get(name)
}

fn named_by_connection(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case(name))
}

/// A cache key. The credential partition holds a hash, so no credential is kept in the cache.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    partition: Partition,
    /// Path and normalised query; the method is implicitly GET (HEAD shares GET's entries).
    target: String,
    accept: String,
    api_version: Option<String>,
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let partition = match self.partition {
            Partition::Server => "server",
            Partition::Credential(_) => "client credential",
        };
        f.debug_struct("CacheKey")
            .field("partition", &partition)
            .field("target", &self.target)
            .field("accept", &self.accept)
            .field("api_version", &self.api_version)
            .finish()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Partition {
    /// Anonymous clients: answers fetched with the server token (or none).
    Server,
    /// Answers fetched with one client's own `Authorization`: SHA-256 of its value.
    Credential([u8; 32]),
}

/// The parts of a [`CacheKey`] besides the target, carried into a fetch for the fleet cache.
struct FleetKey {
    partition: Partition,
    accept: String,
    api_version: Option<String>,
}

impl FleetKey {
    /// The entry id in the fleet cache: a hash of the same parts as [`CacheKey`] (the credential
    /// partition is itself a hash, so no credential reaches Redis).
    fn id(&self, target: &str) -> String {
        let partition: &[u8] = match &self.partition {
            Partition::Server => b"server",
            Partition::Credential(hash) => hash,
        };
        let version = self
            .api_version
            .as_deref()
            .map_or(&b"\0none"[..], str::as_bytes);
        fleet_id(&[
            partition,
            target.as_bytes(),
            self.accept.as_bytes(),
            version,
        ])
    }
}

/// An upstream answer as kept in the cache (or built for one bypassing response).
#[derive(Clone)]
pub(crate) struct StoredResponse {
    status: StatusCode,
    /// Allow-listed headers sent with every copy.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Headers only sent on the answer that was just fetched.
    live_headers: Vec<(HeaderName, HeaderValue)>,
    /// Headers only sent to the credential's owner.
    credential_headers: Vec<(HeaderName, HeaderValue)>,
    /// Raw upstream `Link`, rewritten per response (the gateway's host may differ per request).
    link: Option<String>,
    /// Raw upstream `Location`, rewritten per response.
    location: Option<String>,
    etag: Option<String>,
    /// The body as served: with upstream URLs rewritten to `PUBLIC_URL` when it is set.
    body: Bytes,
    /// `body` gzip-compressed, made once when stored.
    gzip: Option<Bytes>,
    /// How the fleet cache (L2) obtained it; `None` when this replica fetched it upstream.
    fleet: Option<FleetOrigin>,
    /// Its age when this replica received it from L2 (added to `Age`).
    age_offset: Duration,
}

impl Weigh for StoredResponse {
    fn weight(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .chain(&self.live_headers)
            .chain(&self.credential_headers)
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        ENTRY_OVERHEAD_BYTES
            + headers
            + self.link.as_ref().map_or(0, String::len)
            + self.location.as_ref().map_or(0, String::len)
            + self.etag.as_ref().map_or(0, String::len)
            + self.body.len()
            + self.gzip.as_ref().map_or(0, Bytes::len)
    }
}

/// How a response was obtained, for its headers.
struct Served {
    cache_status: &'static str,
    warning: Option<&'static str>,
    /// Send the live (`x-ratelimit-*`) headers.
    live: bool,
    age: Option<Duration>,
    client_credential: bool,
}

/// A request about to be sent upstream. Built from allow-listed headers only.
struct OutgoingRequest {
    method: reqwest::Method,
    target: String,
    headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    credential: Option<HeaderValue>,
    use_server_token: bool,
    body: Option<Bytes>,
}

impl OutgoingRequest {
    fn new(method: reqwest::Method, target: String) -> Self {
        Self {
            method,
            target,
            headers: Vec::new(),
            credential: None,
            use_server_token: false,
            body: None,
        }
    }

    fn copy_header(&mut self, headers: &HeaderMap, name: &'static str) {
        if let Some(value) = allowed_header(headers, name)
            && let Ok(value) = reqwest::header::HeaderValue::from_bytes(value.as_bytes())
        {
            self.headers
                .push((reqwest::header::HeaderName::from_static(name), value));
        }
    }
}

/// An upstream answer, before it is classified.
struct RawAnswer {
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
}

/// Why an upstream fetch gave no usable answer. Shared by waiters; never holds a URL or token.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum UpstreamFailure {
    /// GitHub answered a server error.
    #[error("GitHub answered {0}")]
    Status(u16),
    /// GitHub refused because a rate limit is spent (403 or 429).
    #[error("GitHub is rate limiting (status {status})")]
    RateLimited {
        /// The upstream status.
        status: u16,
        /// Seconds GitHub asked to wait.
        retry_after: Option<u64>,
    },
    /// No answer: connection, timeout or broken body.
    #[error("GitHub could not be reached: {0}")]
    Transport(&'static str),
    /// The target cannot be put under the configured upstream.
    #[error("the request target cannot be sent upstream")]
    InvalidTarget,
    /// The answer could not be prepared for the cache.
    #[error("the upstream answer could not be prepared")]
    Prepare,
}

impl UpstreamFailure {
    /// A transport error described without its URL (which could carry a query).
    fn transport(error: &reqwest::Error) -> Self {
        UpstreamFailure::Transport(if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "connection failed"
        } else if error.is_body() || error.is_decode() {
            "the answer was cut off"
        } else {
            "request failed"
        })
    }
}

impl Upstream {
    /// Sends `outgoing` to the configured upstream; the token goes only where `GithubClient`
    /// allows, and only when `use_server_token`.
    async fn send(&self, outgoing: OutgoingRequest) -> Result<RawAnswer, UpstreamFailure> {
        let url = self
            .github
            .resolve(&outgoing.target)
            .map_err(|_| UpstreamFailure::InvalidTarget)?;
        let mut builder = self
            .github
            .request(outgoing.method, url, outgoing.use_server_token)
            // Store plain bodies; the gateway compresses once per entry itself.
            .header(reqwest::header::ACCEPT_ENCODING, "identity");
        for (name, value) in outgoing.headers {
            builder = builder.header(name, value);
        }
        if let Some(credential) = outgoing.credential {
            let mut value = reqwest::header::HeaderValue::from_bytes(credential.as_bytes())
                .map_err(|_| UpstreamFailure::InvalidTarget)?;
            value.set_sensitive(true);
            builder = builder.header(reqwest::header::AUTHORIZATION, value);
        }
        if let Some(body) = outgoing.body {
            builder = builder.body(body);
        }
        let response = builder.send().await.map_err(|e| {
            metrics::counter!(UPSTREAM_METRIC, "status" => "error").increment(1);
            UpstreamFailure::transport(&e)
        })?;
        let status = response.status();
        metrics::counter!(UPSTREAM_METRIC, "status" => status.as_str().to_owned()).increment(1);
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| UpstreamFailure::transport(&e))?;
        Ok(RawAnswer {
            status,
            headers,
            body,
        })
    }

    /// The in-process cache's fetch: through the fleet cache when it is on (an L2 hit, another
    /// replica's fetch, or the one upstream request of the fleet), else straight upstream.
    async fn fetch_shared(
        self: Arc<Self>,
        key: FleetKey,
        outgoing: OutgoingRequest,
        previous: Option<Arc<StoredResponse>>,
    ) -> Result<Fetched<StoredResponse>, UpstreamFailure> {
        let Some(fleet) = self.fleet.clone() else {
            return self.fetch_cacheable(outgoing, previous).await;
        };
        let id = key.id(&outgoing.target);
        let from_l2 = previous.as_ref().is_some_and(|p| p.fleet.is_some());
        let result = fleet
            .fetch(id, previous.clone(), move |validator| {
                self.fetch_cacheable(outgoing, validator)
            })
            .await;
        match (result, previous) {
            // L1's value came from L2 with an age of its own: a revalidated copy starts at 0.
            (Ok(Fetched::NotModified { ttl }), Some(previous)) if from_l2 => {
                let mut value = StoredResponse::clone(&previous);
                value.fleet = Some(FleetOrigin::Revalidated);
                value.age_offset = Duration::ZERO;
                Ok(Fetched::Store { value, ttl })
            }
            (result, _) => result,
        }
    }

    /// The cache's fetch: a conditional GET when a previous answer has an ETag, classified into
    /// store / revalidated / pass-on / failure.
    async fn fetch_cacheable(
        self: Arc<Self>,
        mut outgoing: OutgoingRequest,
        previous: Option<Arc<StoredResponse>>,
    ) -> Result<Fetched<StoredResponse>, UpstreamFailure> {
        let client_credential = outgoing.credential.is_some();
        if let Some(etag) = previous.as_ref().and_then(|p| p.etag.as_deref())
            && let Ok(value) = reqwest::header::HeaderValue::from_str(etag)
        {
            outgoing
                .headers
                .push((reqwest::header::IF_NONE_MATCH, value));
        }
        let answer = self.send(outgoing).await?;
        let status = answer.status.as_u16();
        if status == 304 && previous.is_some() {
            let ttl = self.freshness(&answer.headers, client_credential);
            return Ok(Fetched::NotModified {
                ttl: ttl.unwrap_or(Duration::ZERO),
            });
        }
        if answer.status.is_server_error() {
            return Err(UpstreamFailure::Status(status));
        }
        if let Some(retry_after) = rate_limit_wait(&answer) {
            return Err(UpstreamFailure::RateLimited {
                status,
                retry_after: Some(retry_after),
            });
        }
        let ttl = match status {
            200 | 203 | 204 => self.freshness(&answer.headers, client_credential),
            404 | 410 => Some(self.negative_ttl),
            _ => None,
        };
        let stored = self
            .prepare(answer, client_credential, ttl.is_some())
            .await
            .map_err(|_| UpstreamFailure::Prepare)?;
        Ok(match ttl {
            Some(ttl) => Fetched::Store { value: stored, ttl },
            None => Fetched::Uncacheable(stored),
        })
    }

    /// Fresh lifetime: `CACHE_TTL_SECS`, shortened by the answer's `s-maxage`/`max-age`.
    /// `None` when it must not be shared: `no-store`/`no-cache` in the server partition (a
    /// client's own partition is private to it, so its answers are kept regardless, as is
    /// GitHub's `private`, which every token-authenticated answer carries).
    fn freshness(
        &self,
        headers: &reqwest::header::HeaderMap,
        client_credential: bool,
    ) -> Option<Duration> {
        let directives = CacheControl::parse(headers);
        if !client_credential && (directives.no_store || directives.no_cache) {
            return None;
        }
        let ttl = directives
            .s_maxage
            .or(directives.max_age)
            .map_or(self.fresh_ttl, |secs| {
                self.fresh_ttl.min(Duration::from_secs(secs))
            });
        Some(ttl)
    }

    /// Turns an upstream answer into what is served: allow-listed headers, body rewritten for
    /// `PUBLIC_URL`, and (for stored answers) one gzip copy. Large bodies are handled on the
    /// blocking pool.
    async fn prepare(
        &self,
        answer: RawAnswer,
        client_credential: bool,
        compress: bool,
    ) -> Result<StoredResponse, PassThroughError> {
        let status = StatusCode::from_u16(answer.status.as_u16()).context("upstream status")?;
        let mut headers = Vec::new();
        let mut live_headers = Vec::new();
        let mut credential_headers = Vec::new();
        let named_by_connection = |name: &str| {
            answer
                .headers
                .get_all(reqwest::header::CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|token| token.trim().eq_ignore_ascii_case(name))
        };
        let mut textual = false;
        for (name, value) in &answer.headers {
            let name = name.as_str();
            if HOP_BY_HOP.contains(&name) || named_by_connection(name) {
                continue;
            }
            let target = if KEPT_RESPONSE_HEADERS.contains(&name) {
                &mut headers
            } else if LIVE_RESPONSE_HEADERS.contains(&name) {
                &mut live_headers
            } else if client_credential && CREDENTIAL_RESPONSE_HEADERS.contains(&name) {
                &mut credential_headers
            } else {
                continue;
            };
            if name == "content-type" {
                textual = is_textual(value.to_str().unwrap_or_default());
            }
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            ) {
                target.push((name, value));
            }
        }
        let text = |name| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let link = text(reqwest::header::LINK);
        let location = text(reqwest::header::LOCATION);
        let etag = text(reqwest::header::ETAG);
        let compress = compress && textual && answer.body.len() >= GZIP_MIN_BYTES;
        let rewrite = self.body_urls.clone().filter(|_| textual);
        let body = answer.body;
        let blocking = body_needs_blocking(body.len(), compress);
        let work = move || -> std::io::Result<(Bytes, Option<Bytes>)> {
            let body = match rewrite {
                Some(rewriter) => rewriter.rewrite(&body).unwrap_or(body),
                None => body,
            };
            let gzip = if compress { Some(gzip(&body)?) } else { None };
            Ok((body, gzip))
        };
        let (body, gzip) = if blocking {
            tokio::task::spawn_blocking(work)
                .await
                .context("body preparation task")?
        } else {
            work()
        }
        .context("compressing a body")?;
        if gzip.is_some() && !varies_on_encoding(&headers) {
            headers.push((header::VARY, HeaderValue::from_static("Accept-Encoding")));
        }
        Ok(StoredResponse {
            status,
            headers,
            live_headers,
            credential_headers,
            link,
            location,
            etag,
            body,
            gzip,
            fleet: None,
            age_offset: Duration::ZERO,
        })
    }

    /// The response to `req` from `stored`: status and kept headers, URLs in `Link`/`Location`
    /// pointing at `base`, a 304 when the client's `If-None-Match` names the entry, and the gzip
    /// copy when accepted.
    fn render(&self, req: &HttpRequest, stored: &StoredResponse, served: &Served) -> HttpResponse {
        let not_modified = stored.status == StatusCode::OK
            && stored.etag.as_deref().is_some_and(|etag| {
                req.headers()
                    .get_all(header::IF_NONE_MATCH)
                    .filter_map(|v| v.to_str().ok())
                    .any(|v| if_none_match_matches(v, etag))
            });
        let gzipped = stored
            .gzip
            .as_ref()
            .filter(|_| !not_modified && accepts_gzip(req.headers()));
        let mut builder = HttpResponse::build(if not_modified {
            StatusCode::NOT_MODIFIED
        } else {
            stored.status
        });
        for (name, value) in &stored.headers {
            if name == header::ETAG && gzipped.is_some() {
                // A strong validator names exact bytes; the gzip copy gets its weak form.
                builder.append_header((name.clone(), weak_etag(value)));
            } else if !(not_modified && name == header::CONTENT_TYPE) {
                builder.append_header((name.clone(), value.clone()));
            }
        }
        if served.live {
            for (name, value) in &stored.live_headers {
                builder.append_header((name.clone(), value.clone()));
            }
        }
        if served.client_credential {
            for (name, value) in &stored.credential_headers {
                builder.append_header((name.clone(), value.clone()));
            }
        }
        // Computed per response (and only when needed): without PUBLIC_URL it is the Host's.
        let base = if stored.link.is_some() || stored.location.is_some() {
            public_base(req, self.public_url.as_ref())
        } else {
            String::new()
        };
        let base = base.as_str();
        self.add_rewritten(
            &mut builder,
            header::LINK,
            stored.link.as_deref(),
            base,
            |v, b| self.rewrite_link_header(v, b),
        );
        self.add_rewritten(
            &mut builder,
            header::LOCATION,
            stored.location.as_deref(),
            base,
            |v, b| self.gateway_url(v, b).unwrap_or_else(|| v.to_owned()),
        );
        builder.insert_header((CACHE_STATUS, served.cache_status));
        if let Some(warning) = served.warning {
            builder.insert_header((header::WARNING, warning));
        }
        if let Some(age) = served.age {
            builder.insert_header((header::AGE, age.as_secs()));
        }
        if not_modified {
            return builder.finish();
        }
        match gzipped {
            Some(gzip) => builder
                .insert_header((header::CONTENT_ENCODING, "gzip"))
                .body(gzip.clone()),
            None => builder.body(stored.body.clone()),
        }
    }

    fn add_rewritten(
        &self,
        builder: &mut HttpResponseBuilder,
        name: HeaderName,
        value: Option<&str>,
        base: &str,
        rewrite: impl Fn(&str, &str) -> String,
    ) {
        if let Some(value) = value
            && let Ok(value) = HeaderValue::from_str(&rewrite(value, base))
        {
            builder.insert_header((name, value));
        }
    }

    /// Every `<url>` of a `Link` value that points at the upstream, pointed at `base` instead.
    fn rewrite_link_header(&self, value: &str, base: &str) -> String {
        let mut out = String::with_capacity(value.len() + 64);
        let mut rest = value;
        while let Some(open) = rest.find('<') {
            out.push_str(&rest[..=open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('>') else {
                out.push_str(after);
                return out;
            };
            let url = &after[..close];
            match self.gateway_url(url, base) {
                Some(rewritten) => out.push_str(&rewritten),
                None => out.push_str(url),
            }
            rest = &after[close..];
        }
        out.push_str(rest);
        out
    }

    /// `url` moved under the gateway's `base`, if it points at the upstream (configured or
    /// api.github.com); `None` for any other URL, which is left alone.
    fn gateway_url(&self, url: &str, base: &str) -> Option<String> {
        let parsed = Url::parse(url).ok()?;
        let relative = self.github.relative_target(&parsed).or_else(|| {
            (parsed.scheme() == "https"
                && parsed.host_str() == Some("api.github.com")
                && parsed.port().is_none())
            .then(|| match parsed.query() {
                Some(query) => format!("{}?{query}", parsed.path()),
                None => parsed.path().to_owned(),
            })
        })?;
        Some(format!("{base}{relative}"))
    }
}

/// Seconds to wait when the answer is a rate-limit refusal (429, or 403 that GitHub's rules say
/// is a limit); `None` for every other answer.
fn rate_limit_wait(answer: &RawAnswer) -> Option<u64> {
    let response = GithubResponse {
        status: answer.status,
        headers: answer.headers.clone(),
        body: answer.body.clone(),
        etag: None,
        links: Links::default(),
        rate_limit: RateLimit::from_headers(&answer.headers),
    };
    let wait = response.rate_limit_wait(SystemTime::now())?;
    Some(wait.as_secs().max(1) + u64::from(wait.subsec_nanos() > 0))
}

fn body_needs_blocking(len: usize, compress: bool) -> bool {
    compress && len > BLOCKING_PREPARE_BYTES || len > 4 * BLOCKING_PREPARE_BYTES
}

fn is_textual(content_type: &str) -> bool {
    let content_type = content_type.to_ascii_lowercase();
    content_type.contains("json")
        || content_type.starts_with("text/")
        || content_type.contains("xml")
}

fn varies_on_encoding(headers: &[(HeaderName, HeaderValue)]) -> bool {
    headers.iter().any(|(name, value)| {
        name == header::VARY
            && value.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("accept-encoding"))
            })
    })
}

fn weak_etag(value: &HeaderValue) -> HeaderValue {
    if value.as_bytes().starts_with(b"W/") {
        return value.clone();
    }
    let mut weak = b"W/".to_vec();
    weak.extend_from_slice(value.as_bytes());
    HeaderValue::from_bytes(&weak).unwrap_or_else(|_| value.clone())
}

fn gzip(body: &[u8]) -> std::io::Result<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::default(),
    );
    encoder.write_all(body)?;
    Ok(Bytes::from(encoder.finish()?))
}

/// Whether `Accept-Encoding` allows gzip (`gzip` or `*`, not with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// Whether an `If-None-Match` value (`*` or a list of tags) names `etag`, compared weakly.
fn if_none_match_matches(header: &str, etag: &str) -> bool {
    let opaque = |tag: &str| {
        let tag = tag.trim();
        tag.strip_prefix("W/")
            .unwrap_or(tag)
            .trim_matches('"')
            .to_owned()
    };
    let wanted = opaque(etag);
    header.trim() == "*"
        || header
            .split(',')
            .any(|candidate| opaque(candidate) == wanted)
}

/// The `Cache-Control` directives the cache acts on.
#[derive(Debug, Default, PartialEq, Eq)]
struct CacheControl {
    no_store: bool,
    no_cache: bool,
    max_age: Option<u64>,
    s_maxage: Option<u64>,
}

impl CacheControl {
    fn parse(headers: &reqwest::header::HeaderMap) -> Self {
        let mut directives = Self::default();
        for part in headers
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
        {
            let (name, value) = match part.split_once('=') {
                Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
                None => (part.trim(), None),
            };
            let seconds = || value.and_then(|v| v.parse::<u64>().ok());
            match name.to_ascii_lowercase().as_str() {
                "no-store" => directives.no_store = true,
                "no-cache" => directives.no_cache = true,
                "max-age" => directives.max_age = seconds().or(Some(0)),
                "s-maxage" => directives.s_maxage = seconds().or(Some(0)),
                _ => {}
            }
        }
        directives
    }
}

/// Why the pass-through could not answer; each maps to a status and a JSON `{"message": ...}`
/// that never contains the token or an upstream URL.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PassThroughError {
    /// A method other than GET/HEAD without the client's own credential.
    #[error(
        "{0} is not allowed: the cache serves GET and HEAD; other methods are forwarded only with your own Authorization header"
    )]
    MethodNotAllowed(Method),
    /// A forwarded request body over the limit.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// A request target that is not a path.
    #[error("the request target must be a path starting with '/'")]
    BadTarget,
    /// GitHub failed (network, timeout or 5xx) and nothing stale was usable.
    #[error("GitHub is unavailable ({0}) and no cached copy is usable")]
    Unavailable(String),
    /// Too many upstream requests are in flight (`MAX_UPSTREAM_FETCHES`): refused at once
    /// rather than queued, so a slow or overwhelmed upstream never builds an unbounded backlog.
    #[error(
        "the gateway is overloaded ({0} upstream requests in flight) and no cached copy is usable; retry in {OVERLOAD_RETRY_AFTER_SECS}s"
    )]
    Overloaded(usize),
    /// GitHub is rate limiting and nothing stale was usable.
    #[error("GitHub is rate limiting (upstream status {status}) and no cached copy is usable")]
    RateLimited {
        /// The upstream status (403 or 429).
        status: u16,
        /// Seconds GitHub asked to wait.
        retry_after: Option<u64>,
    },
    /// A bug or an environment failure.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl PassThroughError {
    fn from_failure(failure: &UpstreamFailure) -> Self {
        match failure {
            UpstreamFailure::Status(status) => {
                PassThroughError::Unavailable(format!("upstream status {status}"))
            }
            UpstreamFailure::RateLimited {
                status,
                retry_after,
            } => PassThroughError::RateLimited {
                status: *status,
                retry_after: *retry_after,
            },
            UpstreamFailure::Transport(what) => PassThroughError::Unavailable((*what).to_owned()),
            UpstreamFailure::InvalidTarget => PassThroughError::BadTarget,
            UpstreamFailure::Prepare => PassThroughError::Unavailable(failure.to_string()),
        }
    }
}

impl From<Arc<FetchError<UpstreamFailure>>> for PassThroughError {
    fn from(error: Arc<FetchError<UpstreamFailure>>) -> Self {
        match error.as_ref() {
            FetchError::Failed(failure) => Self::from_failure(failure),
            FetchError::TimedOut(after) => {
                PassThroughError::Unavailable(format!("no answer within {}s", after.as_secs()))
            }
            FetchError::Overloaded(limit) => PassThroughError::Overloaded(*limit),
            other => PassThroughError::Unavailable(other.to_string()),
        }
    }
}

impl ResponseError for PassThroughError {
    fn status_code(&self) -> StatusCode {
        match self {
            PassThroughError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            PassThroughError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            PassThroughError::BadTarget => StatusCode::BAD_REQUEST,
            PassThroughError::Unavailable(_) => StatusCode::BAD_GATEWAY,
            PassThroughError::RateLimited { .. } | PassThroughError::Overloaded(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            PassThroughError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status_code());
        match self {
            PassThroughError::MethodNotAllowed(_) => {
                builder.insert_header((header::ALLOW, "GET, HEAD"));
            }
            PassThroughError::RateLimited {
                retry_after: Some(seconds),
                ..
            } => {
                builder.insert_header((header::RETRY_AFTER, *seconds));
            }
            PassThroughError::Overloaded(_) => {
                builder.insert_header((header::RETRY_AFTER, OVERLOAD_RETRY_AFTER_SECS));
            }
            _ => {}
        }
        let message = match self {
            PassThroughError::Unexpected(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        builder
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({ "message": message }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use actix_web::test::TestRequest;
    use hubcache_shared::SettingsSource;
    use hubcache_shared::github::ClientOptions;

    use super::*;

    const TOKEN: &str = "ghp_hubcacheTestTokenThatMustNeverLeak42";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    #[test]
    fn queries_are_normalised() {
        assert_eq!(normalise_query("b=2&a=1"), normalise_query("a=%31&b=2"));
        assert_eq!(
            normalise_query("per_page=100&page=2"),
            "page=2&per_page=100"
        );
        // Repeated names keep their order; empty pairs are dropped; encodings converge.
        assert_eq!(normalise_query("x=2&&x=1&=z"), "x=2&x=1");
        assert_eq!(normalise_query("q=a%20b"), normalise_query("q=a+b"));
        assert_eq!(normalise_query("q=a%2Bb"), "q=a%2Bb");
        assert_eq!(normalise_query(""), "");
    }

    #[test]
    fn accept_is_normalised_and_defaults_to_githubs_type() {
        assert_eq!(normalise_accept(&HeaderMap::new()), GITHUB_ACCEPT);
        assert_eq!(
            normalise_accept(&headers(&[("accept", "*/*")])),
            GITHUB_ACCEPT
        );
        assert_eq!(
            normalise_accept(&headers(&[(
                "accept",
                "Application/VND.github.raw+json ; q=1 ,  text/html"
            )])),
            "application/vnd.github.raw+json;q=1,text/html"
        );
    }

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

    #[test]
    fn cache_control_and_encodings_are_understood() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "cache-control",
            "private, max-age=60, s-maxage=30".parse().expect("v"),
        );
        let cc = CacheControl::parse(&h);
        assert_eq!(
            (cc.max_age, cc.s_maxage, cc.no_store),
            (Some(60), Some(30), false)
        );
        h.insert("cache-control", "no-store".parse().expect("v"));
        assert!(CacheControl::parse(&h).no_store);

        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br, gzip;q=0.5"
        )])));
        assert!(accepts_gzip(&headers(&[("accept-encoding", "*")])));
        assert!(!accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip;q=0, br"
        )])));
        assert!(!accepts_gzip(&HeaderMap::new()));

        assert!(if_none_match_matches("W/\"abc\"", "\"abc\""));
        assert!(if_none_match_matches("\"x\", \"abc\"", "W/\"abc\""));
        assert!(if_none_match_matches("*", "\"abc\""));
        assert!(!if_none_match_matches("\"abcd\"", "\"abc\""));
        assert_eq!(weak_etag(&HeaderValue::from_static("\"a\"")), "W/\"a\"");
    }

    struct Harness {
        pass: PassThrough,
        sim_url: String,
        http: reqwest::Client,
    }

    async fn start_sim() -> String {
        let sim = github_sim::Application::build(github_sim::SimConfig {
            port: 0,
            generate_repos: 3,
            generate_members: 2,
            workers: 1,
            ..github_sim::SimConfig::default()
        })
        .await
        .expect("github-sim builds");
        let url = sim.base_url().to_owned();
        tokio::spawn(sim.run_until_stopped());
        url
    }

    fn pass_through(upstream: &str, vars: &[(&str, &str)]) -> PassThrough {
        let mut all = vec![("GITHUB_API_URL", upstream), ("GITHUB_API_TOKEN", TOKEN)];
        all.extend_from_slice(vars);
        let mut settings =
            Settings::load(&SettingsSource::from_vars(all.iter().copied())).expect("settings");
        settings.upstream_timeout_secs = 2;
        let github = GithubClient::new(
            settings.common.github_base_url().expect("url"),
            settings.common.github_api_token.clone(),
            &ClientOptions::default(),
        )
        .expect("client");
        PassThrough::new(&settings, github, None).expect("pass-through")
    }

    impl Harness {
        async fn new(vars: &[(&str, &str)]) -> Self {
            let sim_url = start_sim().await;
            Self {
                pass: pass_through(&sim_url, vars),
                sim_url,
                http: reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .expect("client"),
            }
        }

        async fn sim(
            &self,
            method: reqwest::Method,
            path: &str,
            body: Option<&str>,
        ) -> serde_json::Value {
            let mut request = self
                .http
                .request(method, format!("{}/_sim{path}", self.sim_url));
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_owned());
            }
            request
                .send()
                .await
                .expect("sim")
                .json()
                .await
                .unwrap_or_default()
        }
    }

    /// Calls `handle` and returns status, headers and body.
    async fn call(
        pass: &PassThrough,
        request: TestRequest,
        body: &'static [u8],
    ) -> (StatusCode, HeaderMap, Bytes) {
        let response = pass
            .handle(request.to_http_request(), Bytes::from_static(body))
            .await;
        let status = response.status();
        let headers = response.headers().clone();
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .expect("body");
        (status, headers, body)
    }

    /// A `tracing` writer that keeps everything in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<StdMutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Everything a user or operator can see: answers (headers and bodies) and log lines.
    #[tokio::test]
    async fn the_token_never_appears_in_answers_or_logs() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        // Current-thread runtime: the spawned fetch tasks log on this thread too.
        let _guard = tracing::subscriber::set_default(subscriber);

        let h = Harness::new(&[]).await;
        let down = pass_through("http://127.0.0.1:1", &[]);
        h.sim(
            reqwest::Method::POST,
            "/faults",
            Some(r#"{"status":500,"count":1,"path_prefix":"/users/five"}"#),
        )
        .await;
        h.sim(
            reqwest::Method::POST,
            "/faults",
            Some(r#"{"status":403,"primary":true,"count":1,"path_prefix":"/users/limited"}"#),
        )
        .await;
        h.sim(
            reqwest::Method::POST,
            "/faults",
            Some(r#"{"status":429,"retry_after":7,"count":1,"path_prefix":"/users/slow"}"#),
        )
        .await;
        let mut answers = vec![
            call(
                &h.pass,
                TestRequest::get().uri("/orgs/Netflix?b=1&a=2"),
                b"",
            )
            .await,
            call(
                &h.pass,
                TestRequest::get().uri("/orgs/Netflix?a=2&b=1"),
                b"",
            )
            .await,
            call(&h.pass, TestRequest::get().uri("/no/such/thing"), b"").await,
            call(&h.pass, TestRequest::get().uri("/users/five"), b"").await,
            call(&h.pass, TestRequest::get().uri("/users/limited"), b"").await,
            call(&h.pass, TestRequest::get().uri("/users/slow"), b"").await,
            call(
                &h.pass,
                TestRequest::post().uri("/orgs/Netflix/repos"),
                b"{}",
            )
            .await,
            call(
                &h.pass,
                TestRequest::post()
                    .uri("/orgs/Netflix/repos")
                    .insert_header(("authorization", "token client-own")),
                b"{}",
            )
            .await,
            call(&down, TestRequest::get().uri("/orgs/Netflix?access=1"), b"").await,
        ];
        answers.push(
            call(
                &h.pass,
                TestRequest::get()
                    .uri("/orgs/Netflix")
                    .insert_header(("authorization", "token client-own")),
                b"",
            )
            .await,
        );
        let statuses: Vec<u16> = answers.iter().map(|(s, _, _)| s.as_u16()).collect();
        assert_eq!(statuses, [200, 200, 404, 502, 503, 503, 405, 404, 502, 200]);
        assert_eq!(
            answers[1].1.get(CACHE_STATUS).expect("status"),
            CACHE_STATUS_HIT,
            "query order ignored"
        );
        assert_eq!(
            answers[5].1.get(header::RETRY_AFTER).expect("retry-after"),
            "7"
        );
        let message = |i: usize| {
            serde_json::from_slice::<serde_json::Value>(&answers[i].2).expect("json")["message"]
                .clone()
        };
        assert!(
            message(3).as_str().expect("text").contains("500"),
            "{}",
            message(3)
        );
        assert!(
            message(5).as_str().expect("text").contains("429"),
            "{}",
            message(5)
        );
        assert!(
            !message(8).as_str().expect("text").contains("access=1"),
            "no upstream query"
        );
        assert_eq!(answers[6].1.get(header::ALLOW).expect("allow"), "GET, HEAD");

        for (status, headers, body) in &answers {
            for (name, value) in headers {
                assert!(
                    !String::from_utf8_lossy(value.as_bytes()).contains(TOKEN),
                    "{status}: header {name}"
                );
            }
            assert!(
                !String::from_utf8_lossy(body).contains(TOKEN),
                "{status}: body"
            );
        }
        let logs = String::from_utf8_lossy(&captured.0.lock().expect("logs")).into_owned();
        assert!(
            logs.contains("pass-through upstream failed"),
            "logs were captured: {logs}"
        );
        assert!(!logs.contains(TOKEN), "token in logs");
        assert!(!logs.contains("client-own"), "client credential in logs");
        let stats = h.sim(reqwest::Method::GET, "/stats", None).await;
        // The anonymous requests carried the server token; the client's carried its own.
        assert!(
            stats["authorization_seen"].as_u64().expect("count") >= 6,
            "{stats}"
        );
    }

    #[tokio::test]
    async fn head_shares_the_get_entry_and_answers_without_fetching_again() {
        let h = Harness::new(&[]).await;
        let (status, _, body) = call(&h.pass, TestRequest::get().uri("/orgs/Netflix"), b"").await;
        assert_eq!(status, 200);
        assert!(!body.is_empty());
        let (status, headers, _) = call(
            &h.pass,
            TestRequest::default()
                .method(Method::HEAD)
                .uri("/orgs/Netflix"),
            b"",
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(headers.get(CACHE_STATUS).expect("status"), CACHE_STATUS_HIT);
        let stats = h.sim(reqwest::Method::GET, "/stats", None).await;
        assert_eq!(stats["total"], 1, "{stats}");
    }

    #[tokio::test]
    async fn gzip_copies_are_made_once_and_served_to_clients_that_accept_them() {
        let h = Harness::new(&[]).await;
        let plain = call(&h.pass, TestRequest::get().uri("/orgs/Netflix/repos"), b"").await;
        assert_eq!(plain.0, 200);
        assert!(plain.1.get(header::CONTENT_ENCODING).is_none());
        let gz = call(
            &h.pass,
            TestRequest::get()
                .uri("/orgs/Netflix/repos")
                .insert_header(("accept-encoding", "gzip, deflate")),
            b"",
        )
        .await;
        assert_eq!(gz.1.get(header::CONTENT_ENCODING).expect("encoded"), "gzip");
        assert!(
            gz.1.get(header::ETAG)
                .expect("etag")
                .as_bytes()
                .starts_with(b"W/")
        );
        let mut decoded = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz.2[..]), &mut decoded)
            .expect("gzip");
        assert_eq!(decoded, plain.2);
        assert!(gz.2.len() < plain.2.len());
        let vary: Vec<_> =
            gz.1.get_all(header::VARY)
                .filter_map(|v| v.to_str().ok())
                .collect();
        assert!(
            vary.iter().any(|v| v.contains("Accept-Encoding")),
            "{vary:?}"
        );
    }
}
