//! An upstream answer as the cache keeps it: headers sorted into kept, live and credential ones,
//! the body rewritten to `PUBLIC_URL` and gzip-compressed once (large bodies off the async
//! workers).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use anyhow::Context;
use bytes::Bytes;

use super::allow_lists::{
    CREDENTIAL_RESPONSE_HEADERS, KEPT_RESPONSE_HEADERS, LIVE_RESPONSE_HEADERS, crosses_the_gateway,
};
use super::error::PassThroughError;
use super::upstream::{RawAnswer, Upstream};
use crate::coalescing_cache::Weigh;
use crate::content_coding::gzip;

/// Bodies smaller than this are not worth a gzip copy.
const GZIP_MIN_BYTES: usize = 1024;
/// Bodies larger than this are rewritten and compressed off the async workers.
const BLOCKING_PREPARE_BYTES: usize = 64 * 1024;
/// Bookkeeping bytes counted per entry on top of its bodies and headers.
const ENTRY_OVERHEAD_BYTES: usize = 256;

/// An upstream answer as kept in the cache (or built for one bypassing response).
pub(crate) struct StoredResponse {
    pub(super) status: StatusCode,
    /// Allow-listed headers sent with every copy.
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
    /// Headers only sent on the answer that was just fetched.
    pub(super) live_headers: Vec<(HeaderName, HeaderValue)>,
    /// Headers only sent to the credential's owner.
    pub(super) credential_headers: Vec<(HeaderName, HeaderValue)>,
    /// Raw upstream `Link`, rewritten per response (the gateway's host may differ per request).
    pub(super) link: Option<String>,
    /// Raw upstream `Location`, rewritten per response.
    pub(super) location: Option<String>,
    pub(super) etag: Option<String>,
    /// The body as served: with upstream URLs rewritten to `PUBLIC_URL` when it is set.
    pub(super) body: Bytes,
    /// `body` gzip-compressed, made once when stored.
    pub(super) gzip: Option<Bytes>,
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

impl Upstream {
    /// Turns an upstream answer into what is served: allow-listed headers, body rewritten for
    /// `PUBLIC_URL`, and (for stored answers) one gzip copy. Large bodies are handled on the
    /// blocking pool.
    pub(super) async fn prepare(
        &self,
        answer: RawAnswer,
        client_credential: bool,
        compress: bool,
    ) -> Result<StoredResponse, PassThroughError> {
        let status = StatusCode::from_u16(answer.status.as_u16()).context("upstream status")?;
        let mut headers = Vec::new();
        let mut live_headers = Vec::new();
        let mut credential_headers = Vec::new();
        let connection = answer.headers.get_all(reqwest::header::CONNECTION);
        let mut textual = false;
        for (name, value) in &answer.headers {
            let name = name.as_str();
            if !crosses_the_gateway(name, connection.iter().map(|v| v.as_bytes())) {
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
        })
    }
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
