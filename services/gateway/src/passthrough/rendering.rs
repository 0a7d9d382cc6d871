//! A stored answer rendered for one request: `Cache-Status`, `Warning` and `Age`, a 304 when the
//! client's `If-None-Match` names it, the gzip copy when accepted, and `Link`/`Location`
//! pointed at the gateway.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use url::Url;

use super::stored_answer::StoredResponse;
use super::upstream::Upstream;
use crate::public_base::public_base;

/// RFC 9211 `Cache-Status` header.
pub(super) const CACHE_STATUS: &str = "cache-status";
pub(super) const CACHE_STATUS_HIT: &str = "hubcache; hit";
pub(super) const CACHE_STATUS_STALE: &str = "hubcache; hit; fwd=stale";
pub(super) const CACHE_STATUS_STORED: &str = "hubcache; fwd=uri-miss; stored";
pub(super) const CACHE_STATUS_NOT_STORED: &str = "hubcache; fwd=uri-miss";
pub(super) const CACHE_STATUS_REVALIDATED: &str = "hubcache; fwd=stale; fwd-status=304; stored";
pub(super) const CACHE_STATUS_COLLAPSED: &str = "hubcache; fwd=uri-miss; collapsed";
pub(super) const CACHE_STATUS_BYPASS: &str = "hubcache; fwd=bypass";
pub(super) const WARNING_STALE: &str = "110 - \"Response is Stale\"";
pub(super) const WARNING_REVALIDATION_FAILED: &str = "111 - \"Revalidation Failed\"";

/// How a response was obtained, for its headers.
pub(super) struct Served {
    pub(super) cache_status: &'static str,
    pub(super) warning: Option<&'static str>,
    /// Send the live (`x-ratelimit-*`) headers.
    pub(super) live: bool,
    pub(super) age: Option<Duration>,
    pub(super) client_credential: bool,
}

impl Upstream {
    /// The response to `req` from `stored`: status and kept headers, URLs in `Link`/`Location`
    /// pointing at `base`, a 304 when the client's `If-None-Match` names the entry, and the gzip
    /// copy when accepted.
    pub(super) fn render(
        &self,
        req: &HttpRequest,
        stored: &StoredResponse,
        served: &Served,
    ) -> HttpResponse {
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

fn weak_etag(value: &HeaderValue) -> HeaderValue {
    if value.as_bytes().starts_with(b"W/") {
        return value.clone();
    }
    let mut weak = b"W/".to_vec();
    weak.extend_from_slice(value.as_bytes());
    HeaderValue::from_bytes(&weak).unwrap_or_else(|_| value.clone())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passthrough::header_map as headers;

    #[test]
    fn encodings_and_validators_are_understood() {
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
}
