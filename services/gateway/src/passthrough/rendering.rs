//! A stored answer rendered for one request: `Cache-Status`, `Warning` and `Age`, a 304 when the
//! client's `If-None-Match` names it, the gzip copy when accepted, and `Link`/`Location`
//! pointed at the gateway.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use url::Url;

use super::stored_answer::StoredResponse;
use super::upstream::Upstream;
use crate::cache_status::CACHE_STATUS;
use crate::conditional::{if_none_match, opaque_tag, weak_etag};
use crate::content_coding::{AcceptEncoding, Coding};
use crate::public_base::public_base;

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
                let etag = opaque_tag(etag);
                if_none_match(req.headers(), |tag| tag == etag)
            });
        let gzipped = stored.gzip.as_ref().filter(|_| {
            !not_modified
                && AcceptEncoding::from_headers(req.headers())
                    .is_some_and(|accepted| accepted.accepts(Coding::Gzip))
        });
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
        builder.insert_header((CACHE_STATUS, HeaderValue::from_static(served.cache_status)));
        if let Some(warning) = served.warning {
            builder.insert_header((header::WARNING, HeaderValue::from_static(warning)));
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
