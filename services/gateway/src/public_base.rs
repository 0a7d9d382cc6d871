//! The gateway's own base URL as a client sees it, for Link headers and body rewriting.
//!
//! `PUBLIC_URL` wins when set. Otherwise it is built per request from the `Host` header (never
//! `X-Forwarded-Host`: headers must not steer what the gateway advertises beyond its own host
//! name), with `http` unless the connection info says otherwise. A Host that is not a plain
//! `host[:port]` falls back to the address the request arrived on.

use actix_web::HttpRequest;
use url::Url;

/// Base URL (scheme, host, optional port; no trailing slash) for URLs in responses to `req`.
pub(crate) fn public_base(req: &HttpRequest, configured: Option<&Url>) -> String {
    if let Some(url) = configured {
        return url.as_str().trim_end_matches('/').to_owned();
    }
    let info = req.connection_info();
    let scheme = match info.scheme() {
        "https" => "https",
        _ => "http",
    };
    let host = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| is_plain_authority(h))
        .map(str::to_owned)
        .unwrap_or_else(|| req.app_config().host().to_owned());
    format!("{scheme}://{host}")
}

/// `host[:port]` with only the characters a host name or IP literal can have.
fn is_plain_authority(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn configured_url_wins() {
        let req = TestRequest::default()
            .insert_header(("host", "evil.example"))
            .to_http_request();
        let url = Url::parse("https://cache.example.com/").expect("url");
        assert_eq!(public_base(&req, Some(&url)), "https://cache.example.com");
    }

    #[test]
    fn host_header_is_used_when_plain() {
        let req = TestRequest::default()
            .insert_header(("host", "localhost:3000"))
            .to_http_request();
        assert_eq!(public_base(&req, None), "http://localhost:3000");
        let req = TestRequest::default()
            .insert_header(("host", "a/b@evil"))
            .to_http_request();
        assert!(!public_base(&req, None).contains("evil"));
    }
}
