//! The GitHub REST client: GitHub's required headers, the token (to the configured upstream
//! only), conditional requests, Link pagination and rate-limit headers.
//!
//! The client never sends a request outside the configured base: a `Link` that names another
//! origin (a proxy in front of GitHub leaving `Link`s naming api.github.com) is followed by taking
//! its path and query under the configured base, so the token cannot be sent anywhere else.
//!
//! Layout: this file (the client, `UpstreamUrl`, Link and rate-limit parsing), `app` (GitHub
//! App authentication: the RS256 JWT and installation tokens), `credentials` (`Credentials`:
//! which credential a request for an org carries, a personal token or the org's installation
//! token, renewed before it expires).

mod app;
mod credentials;
mod links;
mod rate_limit;

pub use app::{AppKey, AppKeyError};
pub use credentials::{
    ANONYMOUS_PARTITION, Credential, CredentialError, Credentials, INSTALLATION_TOKENS_METRIC,
    PERSONAL_TOKEN_PARTITION, REASON_CREDENTIAL_FAILED, REASON_INSTALLATION_REVOKED,
};
pub use links::{Links, parse_link_header, with_max_per_page};
pub use rate_limit::{RateLimit, parse_retry_after};

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// The REST API version hubcache is written against.
pub const GITHUB_API_VERSION: &str = "2022-11-28";
/// GitHub's JSON media type.
pub const GITHUB_ACCEPT: &str = "application/vnd.github+json";
/// `hubcache_github_links_rebased_total`: links naming another origin that were followed under
/// the configured base ([`GithubClient::resolve_link`]). Steadily rising means the upstream is a
/// proxy that does not rewrite `Link`s: expected, and worth knowing.
pub const LINKS_REBASED_METRIC: &str = "hubcache_github_links_rebased_total";
/// The largest page GitHub serves; list fetches ask for it to spend the fewest requests.
pub const MAX_PER_PAGE: u32 = 100;

/// Timeouts and identity of the client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included.
    pub request_timeout: Duration,
    /// The `User-Agent` GitHub requires.
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            user_agent: concat!("hubcache/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Why a GitHub request failed before a response arrived (HTTP errors are responses).
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// The target is not under the configured upstream base URL.
    #[error("refusing to request {0}: not under the configured GitHub API URL")]
    ForeignTarget(String),
    /// The target could not be parsed.
    #[error("invalid request target {0:?}")]
    InvalidTarget(String),
    /// A link an answer named cannot be followed (see [`GithubClient::resolve_link`]).
    #[error("refusing to follow link {link}: {reason}")]
    RefusedLink {
        /// The link without its query.
        link: String,
        /// Why (a fixed text).
        reason: &'static str,
    },
    /// Connection, timeout or body transfer failure.
    #[error("transport error: {0}")]
    Transport(#[from] reqwest::Error),
}

impl GithubError {
    /// True for failures worth retrying with backoff (network and timeouts).
    pub fn is_transient(&self) -> bool {
        matches!(self, GithubError::Transport(_))
    }
}

/// A response from GitHub with the headers hubcache acts on already parsed.
#[derive(Debug, Clone)]
pub struct GithubResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// All response headers.
    pub headers: HeaderMap,
    /// The body, as sent (empty for 304).
    pub body: Bytes,
    /// The `ETag` header.
    pub etag: Option<String>,
    /// The parsed `Link` header.
    pub links: Links,
    /// The `x-ratelimit-*` headers.
    pub rate_limit: Option<RateLimit>,
}

impl GithubResponse {
    /// How long GitHub asks us to wait before the next request, if it is rate limiting us:
    /// `Retry-After` on 403/429, else the primary limit's reset when it is spent.
    pub fn rate_limit_wait(&self, now: SystemTime) -> Option<Duration> {
        if !matches!(
            self.status,
            StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
        ) {
            return None;
        }
        if let Some(wait) = parse_retry_after(&self.headers, now) {
            return Some(wait);
        }
        match self.rate_limit {
            Some(rl) if rl.remaining == 0 => Some(rl.until_reset(now)),
            // GitHub's docs: a secondary limit without headers means wait at least a minute.
            _ if self.status == StatusCode::TOO_MANY_REQUESTS || self.is_secondary_limit_body() => {
                Some(Duration::from_secs(60))
            }
            _ => None,
        }
    }

    fn is_secondary_limit_body(&self) -> bool {
        std::str::from_utf8(&self.body)
            .map(|s| s.contains("rate limit"))
            .unwrap_or(false)
    }
}

/// A URL under the configured upstream base: the only thing [`GithubClient::request`] sends to.
///
/// Only the client's resolver builds one ([`GithubClient::resolve`] from a path relative to the
/// base, [`GithubClient::resolve_link`] from a link an answer named, re-based under the base when
/// it names another origin), so a request to a foreign host, which would carry the token there,
/// cannot be written:
///
/// ```compile_fail
/// // No constructor outside the resolver: the fields are private and nothing converts into one.
/// let url: hubcache_shared::github::UpstreamUrl =
///     url::Url::parse("https://evil.example/").unwrap().into();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    url: Url,
    /// Path and query relative to the base, as the resolver was given them (or, for an absolute
    /// link, as they follow the base path).
    target: String,
}

impl UpstreamUrl {
    /// The full URL.
    pub fn as_url(&self) -> &Url {
        &self.url
    }

    /// The path and query relative to the configured base: what the fetcher records as a page's
    /// target and resolves again on the next poll.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// [`UpstreamUrl::target`], owned.
    pub fn into_target(self) -> String {
        self.target
    }
}

/// The client. Cheap to clone (reqwest's pool is shared).
#[derive(Clone)]
pub struct GithubClient {
    http: reqwest::Client,
    base: Url,
    token: Option<SecretString>,
}

impl std::fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubClient")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl GithubClient {
    /// A client for `base` (e.g. `https://api.github.com`), sending `token` when set.
    pub fn new(
        base: Url,
        token: Option<SecretString>,
        options: &ClientOptions,
    ) -> Result<Self, GithubError> {
        let mut defaults = HeaderMap::new();
        defaults.insert(header::ACCEPT, HeaderValue::from_static(GITHUB_ACCEPT));
        defaults.insert(
            "x-github-api-version",
            HeaderValue::from_static(GITHUB_API_VERSION),
        );
        let http = reqwest::Client::builder()
            .user_agent(options.user_agent.clone())
            .default_headers(defaults)
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            // Redirects could leave the configured host with our Authorization header.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http, base, token })
    }

    /// The configured upstream base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Whether a server token is configured.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The URL of `target`, a path with optional query relative to the configured base
    /// (`/orgs/x/repos?page=2`; under a base with a path, such as `.../api/v3`, it is appended
    /// to that path). Anything else (an absolute URL, a path that dot-segments lead out of the
    /// base) is refused: this and [`GithubClient::resolve_link`] are the only ways to build an
    /// [`UpstreamUrl`], so the token can only go to the configured base.
    pub fn resolve(&self, target: &str) -> Result<UpstreamUrl, GithubError> {
        if !target.starts_with('/') {
            return Err(GithubError::InvalidTarget(without_query(target)));
        }
        let base_path = self.base.path().trim_end_matches('/');
        let joined = format!(
            "{}://{}{}{}",
            self.base.scheme(),
            self.base.host_str().unwrap_or_default(),
            self.base
                .port()
                .map(|p| format!(":{p}"))
                .unwrap_or_default(),
            format_args!("{base_path}{target}")
        );
        let url =
            Url::parse(&joined).map_err(|_| GithubError::InvalidTarget(without_query(target)))?;
        if !self.is_under_base(&url) {
            return Err(GithubError::ForeignTarget(redact_query(&url)));
        }
        Ok(UpstreamUrl {
            url,
            target: target.to_owned(),
        })
    }

    /// The URL of a link an upstream answer named (a `Link` header's `next`).
    ///
    /// - A path (`/orgs/x?page=2`) is taken as [`GithubClient::resolve`] takes it.
    /// - An absolute link under the configured base (same scheme, host, port and path prefix)
    ///   is followed as it is.
    /// - An absolute link naming another origin (a proxy in front of GitHub, such as Prow's
    ///   ghproxy, that leaves `Link`s naming api.github.com) is *re-based*: its path and query
    ///   are taken under the configured base. A path that already starts with the base's path
    ///   (GitHub Enterprise's `/api/v3` behind a proxy at `.../api/v3`) keeps it; any other path
    ///   is appended to the base's path. Re-based links are logged at debug and counted in
    ///   [`LINKS_REBASED_METRIC`].
    ///
    /// Refused: links that are not `http(s)` URLs, carry userinfo, have a `..` segment, or name
    /// the configured origin outside the base's path. Whatever the link, the result is a URL
    /// under the configured base, so the token still goes only there.
    pub fn resolve_link(&self, link: &str) -> Result<UpstreamUrl, GithubError> {
        if has_parent_segment(link) {
            return Err(GithubError::RefusedLink {
                link: without_query(link),
                reason: "a `..` segment",
            });
        }
        if link.starts_with('/') && !link.starts_with("//") {
            return self.resolve(link);
        }
        // A network-path reference (`//host/path`) names a host, like in a browser.
        let url = if link.starts_with("//") {
            self.base.join(link)
        } else {
            Url::parse(link)
        }
        .map_err(|_| GithubError::InvalidTarget(without_query(link)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(GithubError::RefusedLink {
                link: redact_query(&url),
                reason: "not an http(s) URL",
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(GithubError::RefusedLink {
                link: redact_query(&url),
                reason: "userinfo in the URL",
            });
        }
        if let Some(target) = self.relative_target(&url) {
            return Ok(UpstreamUrl { url, target });
        }
        if url.origin() == self.base.origin() {
            // The configured upstream itself points outside the API: nothing to re-base.
            return Err(GithubError::ForeignTarget(redact_query(&url)));
        }
        let base_path = self.base.path().trim_end_matches('/');
        let path = url.path();
        let rest = match path.strip_prefix(base_path) {
            Some("") if !base_path.is_empty() => "/",
            Some(rest) if !base_path.is_empty() && rest.starts_with('/') => rest,
            _ => path,
        };
        let target = match url.query() {
            Some(query) => format!("{rest}?{query}"),
            None => rest.to_owned(),
        };
        let rebased = self.resolve(&target)?;
        tracing::debug!(
            link_host = url.host_str().unwrap_or_default(),
            target = %without_query(&target),
            "re-based a link naming another origin under the configured GitHub API URL"
        );
        metrics::counter!(LINKS_REBASED_METRIC).increment(1);
        Ok(rebased)
    }

    /// The target relative to the base (path and query) of a URL under the base; `None` for
    /// any other URL.
    pub fn relative_target(&self, url: &Url) -> Option<String> {
        if !self.is_under_base(url) {
            return None;
        }
        let base_path = self.base.path().trim_end_matches('/');
        let rest = &url.path()[base_path.len()..];
        let rest = if rest.is_empty() { "/" } else { rest };
        Some(match url.query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_owned(),
        })
    }

    fn is_under_base(&self, url: &Url) -> bool {
        let base_path = self.base.path().trim_end_matches('/');
        url.scheme() == self.base.scheme()
            && url.username().is_empty()
            && url.password().is_none()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
            && (url.path() == base_path
                || base_path.is_empty()
                || url.path().starts_with(&format!("{base_path}/")))
    }

    /// A request to `url` with GitHub's headers; the server token is added when `use_token`.
    ///
    /// The gateway's pass-through builds on this so that the token handling lives in one place;
    /// `url` can only have come from this client's resolver, so it names the configured base.
    pub fn request(
        &self,
        method: Method,
        url: UpstreamUrl,
        use_token: bool,
    ) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, url.url);
        match (&self.token, use_token) {
            (Some(token), true) => builder.bearer_auth(token.expose_secret()),
            _ => builder,
        }
    }

    /// A request to `url` with GitHub's headers and `credential` (a personal token or an
    /// installation token, from [`Credentials::for_org`]) when given; the client's own token is
    /// not used.
    pub fn request_as(
        &self,
        method: Method,
        url: UpstreamUrl,
        credential: Option<&Credential>,
    ) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, url.url);
        match credential {
            Some(credential) => builder.bearer_auth(credential.secret().expose_secret()),
            None => builder,
        }
    }

    /// A request with an `Authorization` the caller built (the App's JWT), to `url`.
    pub(crate) fn request_bearer(
        &self,
        method: Method,
        url: UpstreamUrl,
        bearer: &str,
    ) -> reqwest::RequestBuilder {
        self.http.request(method, url.url).bearer_auth(bearer)
    }

    /// A conditional `GET` of `target` with the server token: sends `If-None-Match` when an
    /// ETag is known, so an unchanged resource answers 304 at no rate-limit cost.
    pub async fn get(
        &self,
        target: &str,
        etag: Option<&str>,
    ) -> Result<GithubResponse, GithubError> {
        let url = self.resolve(target)?;
        let request = self.request(Method::GET, url, true);
        Self::send_get(request, etag).await
    }

    /// [`GithubClient::get`] with `credential` instead of the client's own token (`None`: no
    /// credential at all).
    pub async fn get_as(
        &self,
        target: &str,
        etag: Option<&str>,
        credential: Option<&Credential>,
    ) -> Result<GithubResponse, GithubError> {
        let url = self.resolve(target)?;
        let request = self.request_as(Method::GET, url, credential);
        Self::send_get(request, etag).await
    }

    async fn send_get(
        mut request: reqwest::RequestBuilder,
        etag: Option<&str>,
    ) -> Result<GithubResponse, GithubError> {
        if let Some(etag) = etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok(GithubResponse {
            status,
            etag: headers
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            links: headers
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .map(parse_link_header)
                .unwrap_or_default(),
            rate_limit: RateLimit::from_headers(&headers),
            headers,
            body,
        })
    }
}

/// Registers the HELP text of the client's metrics (a metric without HELP fails
/// `promtool check metrics`). Call once, after the recorder exists.
pub fn describe_metrics() {
    metrics::describe_counter!(
        INSTALLATION_TOKENS_METRIC,
        "GitHub App installation token requests per org, by outcome (issued, revoked, failed)."
    );
    metrics::describe_counter!(
        LINKS_REBASED_METRIC,
        "Links naming another origin (a proxy that does not rewrite them) followed under the configured GitHub API URL."
    );
}

/// Whether the path of `link` (before any query or fragment) has a `..` segment, also
/// percent-encoded or with backslashes (which URL parsers take as slashes): URL parsing would
/// silently resolve it, so it is refused before.
fn has_parent_segment(link: &str) -> bool {
    let path = link.split(['?', '#']).next().unwrap_or_default();
    path.split(['/', '\\'])
        .any(|segment| segment.to_ascii_lowercase().replace("%2e", ".") == "..")
}

/// A target for error messages: the query (which could carry a credential) is dropped.
fn without_query(target: &str) -> String {
    target
        .split_once('?')
        .map_or(target, |(path, _)| path)
        .to_owned()
}

/// A URL for error messages: the query (which could carry a credential) is dropped.
fn redact_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    let _ = url.set_password(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("valid header"));
        }
        h
    }

    #[test]
    fn parses_githubs_link_header() {
        let v = r#"<https://api.github.com/organizations/913567/repos?per_page=100&page=2>; rel="next", <https://api.github.com/organizations/913567/repos?per_page=100&page=3>; rel="last""#;
        let l = parse_link_header(v);
        assert_eq!(
            l.next.as_deref(),
            Some("https://api.github.com/organizations/913567/repos?per_page=100&page=2")
        );
        assert_eq!(
            l.last.as_deref(),
            Some("https://api.github.com/organizations/913567/repos?per_page=100&page=3")
        );
        assert_eq!(l.prev, None);
        assert_eq!(l.first, None);
    }

    #[test]
    fn parses_all_four_rels_in_any_order_and_spacing() {
        let v = r#"<https://x/r?page=1>;rel=first,<https://x/r?page=5>; rel="last" ,  <https://x/r?page=2> ;  rel="prev", <https://x/r?page=4>; rel="next""#;
        let l = parse_link_header(v);
        assert_eq!(l.first.as_deref(), Some("https://x/r?page=1"));
        assert_eq!(l.prev.as_deref(), Some("https://x/r?page=2"));
        assert_eq!(l.next.as_deref(), Some("https://x/r?page=4"));
        assert_eq!(l.last.as_deref(), Some("https://x/r?page=5"));
    }

    #[test]
    fn link_parser_survives_malformed_input() {
        for v in [
            "",
            "garbage",
            "<",
            "<>; rel=\"next\"",
            "<https://x>",
            "<https://x>; rel",
            "https://x; rel=\"next\"",
            "<https://x>; rel=\"unknown\"",
            ";;;,,,<<>>",
            "<https://x?a=1,2>; title=\"a, b\"",
        ] {
            let l = parse_link_header(v);
            assert_eq!(l.next, None, "{v}");
        }
        // A comma inside the URL does not split the entry; several rels in one value work.
        let l = parse_link_header(r#"<https://x/?q=a,b>; rel="next last""#);
        assert_eq!(l.next.as_deref(), Some("https://x/?q=a,b"));
        assert_eq!(l.last.as_deref(), Some("https://x/?q=a,b"));
        // The first URL for a rel wins.
        let l = parse_link_header(r#"<https://a>; rel="next", <https://b>; rel="next""#);
        assert_eq!(l.next.as_deref(), Some("https://a"));
    }

    #[test]
    fn parses_rate_limit_headers() {
        let h = headers(&[
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "4990"),
            ("x-ratelimit-used", "10"),
            ("x-ratelimit-reset", "1700000000"),
        ]);
        assert_eq!(
            RateLimit::from_headers(&h),
            Some(RateLimit {
                limit: 5000,
                remaining: 4990,
                used: 10,
                reset_epoch_secs: 1_700_000_000
            })
        );
    }

    #[test]
    fn malformed_rate_limit_headers_are_ignored() {
        assert_eq!(RateLimit::from_headers(&HeaderMap::new()), None);
        for (remaining, reset) in [
            ("abc", "1"),
            ("-1", "1"),
            ("10", "soon"),
            ("6000", "1"),
            ("", "1"),
        ] {
            let h = headers(&[
                ("x-ratelimit-limit", "5000"),
                ("x-ratelimit-remaining", remaining),
                ("x-ratelimit-reset", reset),
            ]);
            assert_eq!(RateLimit::from_headers(&h), None, "{remaining} {reset}");
        }
        // used is derived when absent.
        let h = headers(&[
            ("x-ratelimit-limit", "60"),
            ("x-ratelimit-remaining", "59"),
            ("x-ratelimit-reset", "1"),
        ]);
        assert_eq!(RateLimit::from_headers(&h).map(|r| r.used), Some(1));
    }

    #[test]
    fn parses_retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "30")]), now),
            Some(Duration::from_secs(30))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", &date)]), now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "soon")]), now),
            None
        );
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "-5")]), now),
            None
        );
        assert_eq!(parse_retry_after(&HeaderMap::new(), now), None);
    }

    fn response(status: u16, pairs: &[(&'static str, &str)], body: &'static str) -> GithubResponse {
        let headers = headers(pairs);
        GithubResponse {
            status: StatusCode::from_u16(status).expect("status"),
            rate_limit: RateLimit::from_headers(&headers),
            headers,
            body: Bytes::from_static(body.as_bytes()),
            etag: None,
            links: Links::default(),
        }
    }

    #[test]
    fn rate_limit_wait_follows_githubs_rules() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        // Secondary limit with Retry-After.
        let r = response(429, &[("retry-after", "7")], "{}");
        assert_eq!(r.rate_limit_wait(now), Some(Duration::from_secs(7)));
        // Primary limit spent: wait until reset.
        let r = response(
            403,
            &[
                ("x-ratelimit-limit", "5000"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1120"),
            ],
            r#"{"message":"API rate limit exceeded"}"#,
        );
        assert_eq!(r.rate_limit_wait(now), Some(Duration::from_secs(120)));
        // Secondary limit without headers: at least a minute.
        let r = response(
            403,
            &[],
            r#"{"message":"You have exceeded a secondary rate limit"}"#,
        );
        assert_eq!(r.rate_limit_wait(now), Some(Duration::from_secs(60)));
        // A plain 403 (permissions) is not a rate limit; neither is a 200.
        assert_eq!(
            response(403, &[], r#"{"message":"Forbidden"}"#).rate_limit_wait(now),
            None
        );
        assert_eq!(
            response(200, &[("retry-after", "5")], "{}").rate_limit_wait(now),
            None
        );
    }

    fn client(base: &str) -> GithubClient {
        GithubClient::new(
            Url::parse(base).expect("url"),
            None,
            &ClientOptions::default(),
        )
        .expect("client")
    }

    #[test]
    fn resolves_relative_targets_under_the_base() {
        let c = client("https://api.github.com");
        let url = c.resolve("/orgs/x/repos?per_page=100").expect("ok");
        assert_eq!(
            url.as_url().as_str(),
            "https://api.github.com/orgs/x/repos?per_page=100"
        );
        assert_eq!(url.target(), "/orgs/x/repos?per_page=100");
        // A path that looks like a host stays a path on the base's host.
        assert_eq!(
            c.resolve("//evil.example/x")
                .expect("ok")
                .as_url()
                .host_str(),
            Some("api.github.com")
        );
        let c = client("http://127.0.0.1:3001/api/v3");
        assert_eq!(
            c.resolve("/orgs/x").expect("ok").as_url().as_str(),
            "http://127.0.0.1:3001/api/v3/orgs/x"
        );
        assert!(matches!(
            c.resolve("/../../other"),
            Err(GithubError::ForeignTarget(_))
        ));
    }

    #[test]
    fn resolve_refuses_absolute_urls_even_under_the_base() {
        let c = client("https://api.github.com");
        for target in [
            "https://api.github.com/orgs/x",
            "https://evil.example/x",
            "evil.example/x",
            "",
        ] {
            assert!(
                matches!(c.resolve(target), Err(GithubError::InvalidTarget(_))),
                "{target}"
            );
        }
    }

    #[test]
    fn links_under_the_base_are_followed_as_they_are() {
        let c = client("https://api.github.com");
        let url = c
            .resolve_link("https://api.github.com/organizations/1/repos?page=2")
            .expect("ok");
        assert_eq!(url.target(), "/organizations/1/repos?page=2");
        assert_eq!(
            c.resolve_link("/orgs/x?page=2").expect("ok").target(),
            "/orgs/x?page=2"
        );
        let c = client("http://127.0.0.1:3001/api/v3");
        let url = c
            .resolve_link("http://127.0.0.1:3001/api/v3/organizations/1/repos?page=2")
            .expect("ok");
        assert_eq!(url.target(), "/organizations/1/repos?page=2");
        assert_eq!(
            c.relative_target(url.as_url()).as_deref(),
            Some("/organizations/1/repos?page=2")
        );
    }

    #[test]
    fn links_naming_another_origin_are_rebased_under_the_base() {
        // A proxy that leaves GitHub's links as they are (Prow's ghproxy).
        let c = client("http://ghproxy:8888");
        for (link, expected) in [
            (
                "https://api.github.com/organizations/1/repos?per_page=100&page=2",
                "http://ghproxy:8888/organizations/1/repos?per_page=100&page=2",
            ),
            // Same host, other scheme or port: another origin too.
            ("http://ghproxy/x", "http://ghproxy:8888/x"),
            ("https://ghproxy:8888/x", "http://ghproxy:8888/x"),
            // A network-path reference names a host; a fragment is dropped.
            (
                "//api.github.com/x?page=3#f",
                "http://ghproxy:8888/x?page=3",
            ),
            ("https://api.github.com", "http://ghproxy:8888/"),
        ] {
            let url = c.resolve_link(link).expect(link);
            assert_eq!(url.as_url().as_str(), expected, "{link}");
        }
        // A base with a path: a link path already under it keeps it (GitHub Enterprise behind a
        // proxy at .../api/v3); any other path is appended to it.
        let c = client("http://127.0.0.1:3001/api/v3");
        for (link, target) in [
            (
                "https://ghe.example/api/v3/organizations/1/repos?page=2",
                "/organizations/1/repos?page=2",
            ),
            ("https://ghe.example/api/v3", "/"),
            ("https://api.github.com/orgs/x?page=2", "/orgs/x?page=2"),
            ("https://api.github.com/api/v30/x", "/api/v30/x"),
        ] {
            let url = c.resolve_link(link).expect(link);
            assert_eq!(url.as_url().host_str(), Some("127.0.0.1"), "{link}");
            assert_eq!(url.as_url().port(), Some(3001), "{link}");
            assert!(url.as_url().path().starts_with("/api/v3/"), "{link}");
            assert_eq!(url.target(), target, "{link}");
        }
    }

    #[test]
    fn links_that_cannot_be_rebased_safely_are_refused() {
        let c = client("https://api.github.com");
        for refused in [
            "https://user@evil.example/x",
            "https://api.github.com@evil.example/x",
            "https://user:password@api.github.com/x",
            "ftp://api.github.com/x",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://evil.example/a/../../x",
            "https://evil.example/a/%2E%2e/x",
            "https://evil.example/a\\..\\x",
            "/orgs/../../x",
        ] {
            assert!(
                matches!(
                    c.resolve_link(refused),
                    Err(GithubError::RefusedLink { .. })
                ),
                "{refused}: {:?}",
                c.resolve_link(refused)
            );
        }
        assert!(matches!(
            c.resolve_link("not a url"),
            Err(GithubError::InvalidTarget(_))
        ));
        // The configured origin itself pointing outside the API path is not re-based.
        let c = client("http://127.0.0.1:3001/api/v3");
        for outside in [
            "http://127.0.0.1:3001/other",
            "http://127.0.0.1:3001/api/v30/x",
        ] {
            assert!(
                matches!(c.resolve_link(outside), Err(GithubError::ForeignTarget(_))),
                "{outside}"
            );
        }
    }

    #[test]
    fn refusals_never_echo_a_query() {
        let c = client("https://api.github.com");
        for error in [
            c.resolve("https://evil.example/x?access_token=secret"),
            c.resolve_link("https://user@evil.example/x?access_token=secret"),
            c.resolve_link("https://evil.example/../x?access_token=secret"),
            c.resolve_link("ftp://evil.example/x?access_token=secret"),
            c.resolve_link("::?access_token=secret"),
        ]
        .into_iter()
        .filter_map(Result::err)
        {
            assert!(!error.to_string().contains("secret"), "{error}");
        }
    }

    #[test]
    fn per_page_is_added_once() {
        assert_eq!(
            with_max_per_page("/orgs/x/repos"),
            "/orgs/x/repos?per_page=100"
        );
        assert_eq!(
            with_max_per_page("/orgs/x/repos?type=all"),
            "/orgs/x/repos?type=all&per_page=100"
        );
        assert_eq!(
            with_max_per_page("/orgs/x/repos?per_page=5"),
            "/orgs/x/repos?per_page=5"
        );
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c = GithubClient::new(
            Url::parse("https://api.github.com").expect("url"),
            Some(SecretString::from("ghp_topsecret")),
            &ClientOptions::default(),
        )
        .expect("client");
        assert!(!format!("{c:?}").contains("ghp_topsecret"));
    }
}

/// Property tests: the `Link` parser sees whatever an upstream sends.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    /// One client with a bare base and one with a path (building a client per case is slow).
    static CLIENTS: std::sync::LazyLock<[GithubClient; 2]> = std::sync::LazyLock::new(|| {
        ["https://api.github.com", "http://127.0.0.1:3001/api/v3"].map(|base| {
            GithubClient::new(
                Url::parse(base).expect("url"),
                None,
                &ClientOptions::default(),
            )
            .expect("client")
        })
    });

    /// URLs as GitHub writes them (no `<`, `>`, `,`, `;` or quotes inside).
    fn url() -> impl Strategy<Value = String> {
        "https?://[a-z0-9.-]{1,12}(:[0-9]{1,5})?(/[A-Za-z0-9_.~-]{0,8}){0,4}(\\?[a-z_]{1,8}=[0-9]{1,6}(&[a-z_]{1,8}=[0-9]{1,6}){0,2})?"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_header_value_parses_without_panicking(value in any::<String>()) {
            let links = parse_link_header(&value);
            for url in [links.next, links.prev, links.first, links.last].into_iter().flatten() {
                prop_assert!(!url.is_empty());
                prop_assert!(value.contains(&url));
            }
        }

        #[test]
        fn no_target_or_link_resolves_outside_the_base(
            text in any::<String>(),
            link in url(),
            path in "/[A-Za-z0-9_./%@:?&=#-]{0,24}",
        ) {
            for client in CLIENTS.iter() {
                let base = client.base_url().clone();
                let base_path = base.path().trim_end_matches('/').to_owned();
                let resolved = [
                    client.resolve(&text),
                    client.resolve(&path),
                    client.resolve_link(&text),
                    client.resolve_link(&link),
                    client.resolve_link(&path),
                    client.resolve_link(&format!("/{text}")),
                ];
                for url in resolved.into_iter().flatten() {
                    let url = url.as_url();
                    prop_assert_eq!(url.scheme(), base.scheme());
                    prop_assert_eq!(url.host_str(), base.host_str());
                    prop_assert_eq!(url.port_or_known_default(), base.port_or_known_default());
                    prop_assert!(
                        url.path() == base_path || url.path().starts_with(&format!("{base_path}/")),
                        "{} left {}", url, base
                    );
                }
            }
        }

        #[test]
        fn rendered_links_come_back_whatever_the_order_and_spacing(
            next in url(),
            last in url(),
            prev in proptest::option::of(url()),
            space in "[ \t]{0,2}",
            quote in prop_oneof![Just("\""), Just("")],
            extra in proptest::option::of("[a-z]{1,6}=\"[a-z ,;<>]{0,10}\""),
            reverse in any::<bool>(),
        ) {
            let entry = |url: &str, rel: &str| {
                let extra = extra.as_deref().map(|e| format!(";{space}{e}")).unwrap_or_default();
                format!("<{url}>;{space}rel={quote}{rel}{quote}{extra}")
            };
            let mut entries = vec![entry(&next, "next"), entry(&last, "last")];
            if let Some(prev) = &prev {
                entries.push(entry(prev, "prev"));
            }
            if reverse {
                entries.reverse();
            }
            let links = parse_link_header(&entries.join(&format!(",{space}")));
            prop_assert_eq!(links.next.as_deref(), Some(next.as_str()));
            prop_assert_eq!(links.last.as_deref(), Some(last.as_str()));
            prop_assert_eq!(links.prev, prev);
            prop_assert_eq!(links.first, None);
        }
    }
}
