//! Request hygiene: what is rejected before routing, so it also protects the pass-through.
//!
//! - Absolute-form targets (`GET http://api.github.com/orgs/x HTTP/1.1`, what `gh` sends through
//!   `HTTP_PROXY`) are accepted only for the GitHub API host (`api.github.com`, or the host and
//!   port of `GITHUB_API_URL`) and rewritten to the origin-form path, so they are served exactly
//!   like `/orgs/x`. Any other authority → 403 JSON: the gateway is not an open proxy and never
//!   connects anywhere the request names. `CONNECT` → 405.
//! - Path traversal (`.`/`..` segments, also percent-encoded), encoded slashes or backslashes,
//!   control bytes (raw or encoded) and malformed escapes → 400 JSON.
//! - Limits, chosen deliberately: request target over [`MAX_URI_BYTES`] → 414; one header value
//!   over [`MAX_HEADER_VALUE_BYTES`] or all headers over [`MAX_HEADERS_BYTES`] → 431, all JSON.
//!   (actix itself closes heads over 128 KiB or with more than 96 headers with a bare 431.)
//! - A request body must arrive within [`BODY_READ_TIMEOUT`] → else 408 JSON; errors actix's
//!   extractors answer in plain text (body too large...) are answered as JSON errors.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage as _;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{Method, StatusCode, Uri};
use actix_web::middleware::Next;
use actix_web::web;
use bytes::Bytes;
use futures::{Stream, StreamExt as _};

use crate::json_error::json_error;
use crate::settings::Settings;

/// Longest request target accepted (GitHub's own limit is in this range).
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;
/// Longest single header value accepted.
pub(crate) const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;
/// Largest total of header names and values accepted.
pub(crate) const MAX_HEADERS_BYTES: usize = 32 * 1024;
/// A request body must arrive whole within this (else 408 JSON and the connection closes): the
/// head has actix's `client_request_timeout`, but nothing else bounds a client that trickles a
/// body, which would hold a connection slot and a pending handler forever.
pub(crate) const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The public GitHub API host, always accepted in absolute-form targets.
const GITHUB_API_HOST: &str = "api.github.com";

/// An authority accepted in absolute-form targets.
#[derive(Debug, Clone)]
struct AllowedAuthority {
    host: String,
    /// Accepted ports (explicit or implied by the scheme).
    ports: Vec<u16>,
    /// The upstream base path (e.g. `/api/v3`) removed from the target, if any.
    base_path: String,
}

/// The rules, built once from settings.
#[derive(Debug, Clone)]
pub(crate) struct RequestHygiene {
    allowed: Vec<AllowedAuthority>,
}

/// Why a request was refused before routing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum HygieneError {
    /// An absolute-form target for a host other than the GitHub API.
    #[error("this gateway only serves the GitHub API ({0}); it is not an open proxy")]
    ForeignAuthority(String),
    /// `CONNECT` tunnels are not offered.
    #[error("CONNECT is not supported; send plain HTTP requests to the gateway")]
    Connect,
    /// A `.`/`..` segment, encoded slash or backslash.
    #[error("path traversal is not allowed")]
    Traversal,
    /// Control bytes or malformed percent-escapes.
    #[error("the request target contains control characters or malformed escapes")]
    BadTarget,
    /// The request target is too long.
    #[error("request target longer than {MAX_URI_BYTES} bytes")]
    UriTooLong,
    /// Headers too large.
    #[error(
        "request headers too large (at most {MAX_HEADER_VALUE_BYTES} bytes per value, {MAX_HEADERS_BYTES} in total)"
    )]
    HeadersTooLarge,
}

impl HygieneError {
    fn status(&self) -> StatusCode {
        match self {
            HygieneError::ForeignAuthority(_) => StatusCode::FORBIDDEN,
            HygieneError::Connect => StatusCode::METHOD_NOT_ALLOWED,
            HygieneError::Traversal | HygieneError::BadTarget => StatusCode::BAD_REQUEST,
            HygieneError::UriTooLong => StatusCode::URI_TOO_LONG,
            HygieneError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }
}

impl RequestHygiene {
    /// Rules for these settings: `api.github.com` plus the configured upstream's authority.
    pub(crate) fn new(settings: &Settings) -> anyhow::Result<Self> {
        let mut allowed = vec![AllowedAuthority {
            host: GITHUB_API_HOST.to_owned(),
            ports: vec![80, 443],
            base_path: String::new(),
        }];
        let base = settings.common.github_base_url()?;
        if let Some(host) = base.host_str() {
            let base_path = base.path().trim_end_matches('/').to_owned();
            let port = base.port_or_known_default().unwrap_or(443);
            let host = host.to_ascii_lowercase();
            if host == GITHUB_API_HOST {
                allowed[0].base_path = base_path;
            } else {
                allowed.push(AllowedAuthority {
                    host,
                    ports: vec![port],
                    base_path,
                });
            }
        }
        Ok(Self { allowed })
    }

    /// Checks a request; for an accepted absolute-form target, returns the origin-form URI to
    /// serve instead.
    pub(crate) fn check(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &actix_web::http::header::HeaderMap,
    ) -> Result<Option<Uri>, HygieneError> {
        if method == Method::CONNECT {
            return Err(HygieneError::Connect);
        }
        let target_len = uri.path_and_query().map_or(0, |pq| pq.as_str().len())
            + uri.authority().map_or(0, |a| a.as_str().len());
        if target_len > MAX_URI_BYTES {
            return Err(HygieneError::UriTooLong);
        }
        let mut total = 0usize;
        for (name, value) in headers {
            if value.len() > MAX_HEADER_VALUE_BYTES {
                return Err(HygieneError::HeadersTooLarge);
            }
            total += name.as_str().len() + value.len();
        }
        if total > MAX_HEADERS_BYTES {
            return Err(HygieneError::HeadersTooLarge);
        }
        check_path(uri.path())?;
        if let Some(query) = uri.query() {
            check_query(query)?;
        }
        match uri.authority() {
            None => Ok(None),
            Some(authority) => self.origin_form(uri, authority).map(Some),
        }
    }

    fn origin_form(
        &self,
        uri: &Uri,
        authority: &actix_web::http::uri::Authority,
    ) -> Result<Uri, HygieneError> {
        let host = authority.host().to_ascii_lowercase();
        let port = authority.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        let foreign = || HygieneError::ForeignAuthority(self.allowed[0].host.clone());
        if authority.as_str().contains('@') {
            return Err(foreign());
        }
        let allowed = self
            .allowed
            .iter()
            .find(|a| a.host == host && a.ports.contains(&port))
            .ok_or_else(foreign)?;
        let mut path = uri.path();
        if !allowed.base_path.is_empty()
            && let Some(rest) = path.strip_prefix(allowed.base_path.as_str())
            && (rest.is_empty() || rest.starts_with('/'))
        {
            path = if rest.is_empty() { "/" } else { rest };
        }
        let target = match uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        target.parse::<Uri>().map_err(|_| HygieneError::BadTarget)
    }
}

/// Rejects traversal, encoded separators, control bytes and malformed escapes in a raw path.
fn check_path(path: &str) -> Result<(), HygieneError> {
    let bytes = path.as_bytes();
    if bytes.iter().any(|b| *b < 0x20 || *b == 0x7f || *b == b'\\') {
        return Err(HygieneError::BadTarget);
    }
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let decoded = decode_escape(bytes, i).ok_or(HygieneError::BadTarget)?;
            match decoded {
                b'/' | b'\\' => return Err(HygieneError::Traversal),
                b if b < 0x20 || b == 0x7f => return Err(HygieneError::BadTarget),
                _ => {}
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    if path.split('/').any(is_dot_segment) {
        return Err(HygieneError::Traversal);
    }
    Ok(())
}

/// Whether a raw path segment is `.` or `..`, also percent-encoded (`%2e`, `.%2E`...). Decodes
/// (and allocates) only segments that contain an escape and are short enough to be one: this
/// runs on every request.
fn is_dot_segment(segment: &str) -> bool {
    if !segment.contains('%') {
        return segment == "." || segment == "..";
    }
    // The longest encoded form is `%2e%2e`.
    if segment.len() > 6 {
        return false;
    }
    let decoded = percent_encoding::percent_decode_str(segment).collect::<Vec<u8>>();
    decoded == b"." || decoded == b".."
}

/// Rejects control bytes (encoded) and malformed escapes in a raw query.
fn check_query(query: &str) -> Result<(), HygieneError> {
    let bytes = query.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let decoded = decode_escape(bytes, i).ok_or(HygieneError::BadTarget)?;
            if decoded < 0x20 && !matches!(decoded, b'\t' | b'\n' | b'\r') || decoded == 0x7f {
                return Err(HygieneError::BadTarget);
            }
            i += 3;
        } else if bytes[i] < 0x20 || bytes[i] == 0x7f {
            return Err(HygieneError::BadTarget);
        } else {
            i += 1;
        }
    }
    Ok(())
}

fn decode_escape(bytes: &[u8], at: usize) -> Option<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let hi = hex(*bytes.get(at + 1)?)?;
    let lo = hex(*bytes.get(at + 2)?)?;
    u8::try_from(hi * 16 + lo).ok()
}

/// The middleware: refuses bad requests with JSON, rewrites accepted absolute-form targets,
/// puts a deadline on reading the request body, and turns errors that actix's extractors
/// answer as plain text (body too large, body timed out...) into JSON errors.
///
/// Reads the rules from the app data itself rather than through an extractor argument: actix
/// boxes the future of every `from_fn` middleware that takes extractors, and this runs on every
/// request. The rules are registered by `Application::build`; a missing registration is a bug,
/// answered 500 rather than serving unchecked requests.
pub(crate) async fn request_hygiene(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(hygiene) = req.app_data::<web::Data<RequestHygiene>>() else {
        return Err(actix_web::error::ErrorInternalServerError(
            "request hygiene rules are not registered",
        ));
    };
    match hygiene.check(req.method(), req.uri(), req.headers()) {
        Ok(None) => {}
        Ok(Some(origin_form)) => {
            req.match_info_mut().get_mut().update(&origin_form);
            req.head_mut().uri = origin_form;
        }
        Err(e) => {
            tracing::info!(error = %e, "request refused");
            let response = json_error(e.status(), &e.to_string());
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    if has_body(req.headers()) {
        let body = BodyDeadline::new(req.take_payload(), BODY_READ_TIMEOUT);
        req.set_payload(Payload::from(Box::pin(body) as BoxedPayloadStream));
    }
    let response = next.call(req).await?;
    Ok(json_extractor_errors(response))
}

/// Whether the request announces a body (most do not: GitHub API reads have none, and the
/// deadline's timer is only set up for those that do).
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// A response carrying an actix error whose body is not JSON (an extractor's plain-text
/// answer) becomes a JSON error with the same status (408 for a body deadline).
fn json_extractor_errors<B>(response: ServiceResponse<B>) -> ServiceResponse<EitherBody<B>> {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let replacement = match response.response().error() {
        Some(error) if !is_json => Some(match error.as_error::<PayloadError>() {
            Some(PayloadError::Io(e)) if e.kind() == io::ErrorKind::TimedOut => json_error(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the request body was not received within {}s",
                    BODY_READ_TIMEOUT.as_secs()
                ),
            ),
            _ => json_error(response.status(), &error.to_string()),
        }),
        _ => None,
    };
    match replacement {
        Some(replacement) => response.into_response(replacement).map_into_right_body(),
        None => response.map_into_left_body(),
    }
}

/// What a [`Payload`] can be built from (actix-http's `BoxedPayloadStream`, not re-exported).
type BoxedPayloadStream = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

/// A request body stream that fails with `TimedOut` once its deadline passes.
struct BodyDeadline {
    inner: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: bool,
}

impl BodyDeadline {
    fn new(inner: Payload, within: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(within)),
            expired: false,
        }
    }
}

impl Stream for BodyDeadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = self.inner.poll_next_unpin(cx) {
            return Poll::Ready(item);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired = true;
            return Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "request body deadline passed",
            )))));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubcache_shared::SettingsSource;

    fn hygiene(api: &str) -> RequestHygiene {
        let settings = Settings::load(&SettingsSource::from_vars([("GITHUB_API_URL", api)]))
            .expect("settings");
        RequestHygiene::new(&settings).expect("hygiene")
    }

    fn check(h: &RequestHygiene, target: &str) -> Result<Option<String>, HygieneError> {
        let uri: Uri = target.parse().expect("uri");
        h.check(&Method::GET, &uri, &Default::default())
            .map(|u| u.map(|u| u.to_string()))
    }

    #[test]
    fn absolute_form_only_for_the_github_api() {
        let h = hygiene("http://127.0.0.1:3001/api/v3");
        assert_eq!(check(&h, "/orgs/x").expect("ok"), None);
        assert_eq!(
            check(&h, "http://api.github.com/orgs/x?page=2")
                .expect("ok")
                .as_deref(),
            Some("/orgs/x?page=2")
        );
        assert_eq!(
            check(&h, "https://API.github.com:443/")
                .expect("ok")
                .as_deref(),
            Some("/")
        );
        assert_eq!(
            check(&h, "http://127.0.0.1:3001/api/v3/orgs/x")
                .expect("ok")
                .as_deref(),
            Some("/orgs/x")
        );
        for foreign in [
            "http://evil.example/orgs/x",
            "http://api.github.com.evil.example/",
            "http://api.github.com:8080/",
            "http://127.0.0.1:3002/orgs/x",
            "http://user@api.github.com/",
        ] {
            assert!(
                matches!(check(&h, foreign), Err(HygieneError::ForeignAuthority(_))),
                "{foreign}"
            );
        }
    }

    #[test]
    fn traversal_and_control_bytes_are_refused() {
        let h = hygiene("https://api.github.com");
        for bad in [
            "/orgs/../x",
            "/orgs/%2e%2e/x",
            "/orgs/%2E./x",
            "/a/%2f/b",
            "/a%5cb",
            "/./x",
            "/x/..",
        ] {
            assert_eq!(check(&h, bad), Err(HygieneError::Traversal), "{bad}");
        }
        for bad in ["/a%00b", "/a%1fb", "/a%zz", "/a%4", "/x?q=%00"] {
            assert_eq!(check(&h, bad), Err(HygieneError::BadTarget), "{bad}");
        }
        for good in [
            "/orgs/x/repos?per_page=100&page=2",
            "/search/repositories?q=a%20b",
            "/a.b/c..d",
            "/a/.../b",
            "/a/%2e%2e%2e/b",
            "/a/.%2E./b",
            "/",
        ] {
            assert!(check(&h, good).is_ok(), "{good}");
        }
    }

    #[test]
    fn oversized_targets_and_headers_are_refused() {
        let h = hygiene("https://api.github.com");
        let long = format!("/{}", "a".repeat(MAX_URI_BYTES));
        assert_eq!(check(&h, &long), Err(HygieneError::UriTooLong));
        let mut headers = actix_web::http::header::HeaderMap::new();
        headers.insert(
            actix_web::http::header::HeaderName::from_static("x-big"),
            "v".repeat(MAX_HEADER_VALUE_BYTES + 1)
                .parse()
                .expect("value"),
        );
        let uri: Uri = "/".parse().expect("uri");
        assert_eq!(
            h.check(&Method::GET, &uri, &headers),
            Err(HygieneError::HeadersTooLarge)
        );
        assert_eq!(
            h.check(&Method::CONNECT, &uri, &Default::default()),
            Err(HygieneError::Connect)
        );
    }
}

/// Property tests: request targets are whatever a client sends.
#[cfg(test)]
mod fuzz {
    use hubcache_shared::SettingsSource;
    use proptest::prelude::*;

    use super::*;

    fn hygiene() -> RequestHygiene {
        let settings = Settings::load(&SettingsSource::from_vars([(
            "GITHUB_API_URL",
            "http://127.0.0.1:3001/api/v3",
        )]))
        .expect("settings");
        RequestHygiene::new(&settings).expect("hygiene")
    }

    /// Targets built from the characters that matter to traversal and escaping.
    fn target() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("/".to_owned()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("%2e".to_owned()),
            Just("%2E".to_owned()),
            Just("%2f".to_owned()),
            Just("%5c".to_owned()),
            Just("%00".to_owned()),
            Just("%".to_owned()),
            Just("?".to_owned()),
            "[a-z0-9]{1,4}",
            "%[0-9a-fA-F]{2}",
        ];
        let path = proptest::collection::vec(piece, 0..10).prop_map(|p| format!("/{}", p.concat()));
        prop_oneof![
            path.clone(),
            path.clone()
                .prop_map(|p| format!("http://api.github.com{p}")),
            path.clone()
                .prop_map(|p| format!("http://127.0.0.1:3001/api/v3{p}")),
            path.prop_map(|p| format!("http://evil.example{p}")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn accepted_targets_never_traverse_or_leave_the_api(target in target()) {
            let Ok(uri) = target.parse::<Uri>() else {
                return Ok(()); // the HTTP parser refuses it before us
            };
            let h = hygiene();
            match h.check(&Method::GET, &uri, &Default::default()) {
                Ok(rewritten) => {
                    prop_assert!(uri.host() != Some("evil.example"), "{}", target);
                    let served = rewritten.unwrap_or_else(|| uri.clone());
                    prop_assert!(served.authority().is_none(), "origin-form: {}", served);
                    let path = served.path();
                    prop_assert!(path.starts_with('/'), "{}", path);
                    let decoded = percent_encoding::percent_decode_str(path).collect::<Vec<u8>>();
                    prop_assert!(decoded.iter().all(|b| *b >= 0x20 && *b != 0x7f && *b != b'\\'));
                    for segment in path.split('/') {
                        let segment = percent_encoding::percent_decode_str(segment).collect::<Vec<u8>>();
                        prop_assert!(segment != b"." && segment != b"..", "{}", target);
                        prop_assert!(!segment.contains(&b'/'), "encoded slash in {}", target);
                    }
                }
                Err(e) => prop_assert!(e.status().is_client_error()),
            }
        }
    }
}
