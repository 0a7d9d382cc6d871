//! One servable body with everything a response needs, prepared once: the identity bytes, a
//! strong ETag, and gzip/brotli copies.
//!
//! Cached keys compress eagerly when a snapshot version is loaded (off the request path); pages
//! and view slices compress lazily, once, on the first request that asks for an encoding, and are
//! then kept with the page. No request ever compresses a body that another request compressed.
//!
//! Every cached route answers conditional and compressed requests the same way: the coding is
//! chosen by `content_coding`'s `Accept-Encoding` rules, the 304 by `conditional`'s.

use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use bytes::Bytes;

use crate::conditional;
use crate::content_coding::{self, AcceptEncoding, Coding};

/// The media type of every cached key, page and view.
pub(crate) const JSON_UTF8: &str = "application/json; charset=utf-8";

/// Bodies smaller than this are never compressed: the saving would not pay for the header.
const MIN_COMPRESS_BYTES: usize = 256;
/// Bodies are handed to actix in zero-copy slices of this size. One multi-MB chunk would be
/// copied into a connection write buffer that grows past actix's retention limit (128 KiB) and
/// is reallocated for every response; 64 KiB slices keep that buffer small and reused.
const BODY_SLICE_BYTES: usize = 64 * 1024;

/// A body plus its precomputed validators and encodings.
///
/// `pub` (what [`crate::hot_paths::ServedViews::slice`] returns; the fields stay crate-private)
/// only for the benches, through [`crate::hot_paths`].
pub struct Representation {
    identity: Bytes,
    /// The opaque tag (hex, no quotes); variants append `-gzip`/`-br`.
    tag: String,
    etag_identity: HeaderValue,
    etag_gzip: HeaderValue,
    etag_br: HeaderValue,
    gzip: OnceLock<Option<Bytes>>,
    brotli: OnceLock<Option<Bytes>>,
}

impl Representation {
    /// A representation of `identity` whose ETag is derived from `tag` (a content hash, possibly
    /// with a page suffix). Nothing is compressed yet.
    pub(crate) fn new(identity: Bytes, tag: &str) -> Self {
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            .collect();
        let etag = |suffix: &str| {
            HeaderValue::from_str(&format!("\"{tag}{suffix}\""))
                .expect("sanitised tag is a valid header value")
        };
        Self {
            etag_identity: etag(""),
            etag_gzip: etag("-gzip"),
            etag_br: etag("-br"),
            identity,
            tag,
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
        }
    }

    /// Like [`Representation::new`], with both compressed copies made now (call off the request
    /// path, e.g. in `spawn_blocking` when a snapshot version is loaded).
    pub(crate) fn precompressed(identity: Bytes, tag: &str) -> Self {
        let repr = Self::new(identity, tag);
        repr.encoded(Coding::Gzip);
        repr.encoded(Coding::Brotli);
        repr
    }

    /// The sanitised tag the ETags are made of (derived representations, such as a page of a
    /// list, extend it so their validators change whenever this one does).
    pub(crate) fn tag(&self) -> &str {
        &self.tag
    }

    /// The uncompressed bytes.
    pub(crate) fn identity(&self) -> &Bytes {
        &self.identity
    }

    /// Bytes held: the identity body and the compressed copies made so far (the per-org
    /// memory gauge sums these).
    pub(crate) fn held_bytes(&self) -> usize {
        let copy =
            |c: &OnceLock<Option<Bytes>>| c.get().and_then(Option::as_ref).map_or(0, Bytes::len);
        self.identity.len() + copy(&self.gzip) + copy(&self.brotli)
    }

    /// The body in `coding`, compressing it on first use. `None` when compression does not
    /// shrink it (then identity is served).
    fn encoded(&self, coding: Coding) -> Option<&Bytes> {
        match coding {
            Coding::Identity => Some(&self.identity),
            Coding::Gzip => self.gzip.get_or_init(|| gzip(&self.identity)).as_ref(),
            Coding::Brotli => self.brotli.get_or_init(|| brotli(&self.identity)).as_ref(),
        }
    }

    fn etag_for(&self, coding: Coding) -> &HeaderValue {
        match coding {
            Coding::Identity => &self.etag_identity,
            Coding::Gzip => &self.etag_gzip,
            Coding::Brotli => &self.etag_br,
        }
    }

    /// Whether an `If-None-Match` value matches this resource (weak comparison, any encoding's
    /// tag, or `*`).
    pub(crate) fn matches_if_none_match(&self, headers: &HeaderMap) -> bool {
        conditional::if_none_match(headers, |opaque| {
            opaque
                .strip_prefix(self.tag.as_str())
                .is_some_and(|rest| matches!(rest, "" | "-gzip" | "-br"))
        })
    }

    /// The response for `req`: 304 when `If-None-Match` matches, else 200 with the best encoding
    /// the client accepts. `decorate` adds route-specific headers (Link, Cache-Status) to both.
    pub(crate) fn respond(
        &self,
        req: &HttpRequest,
        decorate: impl FnOnce(&mut HttpResponseBuilder),
    ) -> HttpResponse {
        let coding = self.choose(req.headers());
        let body = self.encoded(coding).cloned();
        let (coding, body) = match body {
            Some(body) => (coding, body),
            None => (Coding::Identity, self.identity.clone()),
        };
        let not_modified = self.matches_if_none_match(req.headers());
        let mut builder = HttpResponse::build(if not_modified {
            StatusCode::NOT_MODIFIED
        } else {
            StatusCode::OK
        });
        builder
            .insert_header((header::ETAG, self.etag_for(coding).clone()))
            .insert_header((header::VARY, HeaderValue::from_static("Accept-Encoding")));
        decorate(&mut builder);
        if not_modified {
            return builder.finish();
        }
        builder.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8)));
        if coding != Coding::Identity {
            builder.insert_header((
                header::CONTENT_ENCODING,
                HeaderValue::from_static(coding.token()),
            ));
        }
        if body.len() > BODY_SLICE_BYTES {
            builder.body(SlicedBody(body))
        } else {
            builder.body(body)
        }
    }

    /// The best coding among those the client accepts; ties prefer br, then gzip, then identity.
    fn choose(&self, headers: &HeaderMap) -> Coding {
        if self.identity.len() < MIN_COMPRESS_BYTES {
            return Coding::Identity;
        }
        let Some(q) = AcceptEncoding::from_headers(headers) else {
            return Coding::Identity;
        };
        let candidates = [Coding::Brotli, Coding::Gzip, Coding::Identity];
        let mut best = Coding::Identity;
        let mut best_q = 0u16;
        for coding in candidates {
            let cq = q.quality(coding);
            if cq > best_q {
                best = coding;
                best_q = cq;
            }
        }
        best
    }
}

/// A large body streamed as [`BODY_SLICE_BYTES`] slices of the shared `Bytes` (no copy), with
/// its full length announced up front (`Content-Length`, not chunked encoding).
struct SlicedBody(Bytes);

impl MessageBody for SlicedBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.0.len() as u64)
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        if self.0.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.0.len().min(BODY_SLICE_BYTES);
        Poll::Ready(Some(Ok(self.0.split_to(n))))
    }
}

/// The gzip copy of `body`, if it is worth serving (large enough, and smaller once compressed).
fn gzip(body: &[u8]) -> Option<Bytes> {
    if body.len() < MIN_COMPRESS_BYTES {
        return None;
    }
    content_coding::gzip(body)
        .ok()
        .filter(|out| out.len() < body.len())
}

/// The brotli copy of `body`, if it is worth serving (large enough, and smaller once compressed).
fn brotli(body: &[u8]) -> Option<Bytes> {
    if body.len() < MIN_COMPRESS_BYTES {
        return None;
    }
    // Quality 9 for small bodies; 5 for large ones keeps a multi-MB snapshot under a second.
    let quality = if body.len() > 512 * 1024 { 5 } else { 9 };
    content_coding::brotli(body, quality)
        .ok()
        .filter(|out| out.len() < body.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn big() -> Bytes {
        Bytes::from(format!("[{}]", vec!["{\"a\": 1}"; 200].join(",")))
    }

    #[tokio::test]
    async fn large_bodies_are_streamed_as_exact_slices() {
        let body = Bytes::from(
            (0..200_000u32)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<u8>>(),
        );
        let sliced = SlicedBody(body.clone());
        assert_eq!(sliced.size(), BodySize::Sized(200_000));
        let collected = actix_web::body::to_bytes(sliced).await.expect("infallible");
        assert_eq!(collected, body);
    }

    #[test]
    fn negotiation_honours_q_values() {
        let r = Representation::new(big(), "abc");
        let pick = |ae: &str| {
            let req = TestRequest::default()
                .insert_header(("accept-encoding", ae))
                .to_http_request();
            r.choose(req.headers())
        };
        assert_eq!(pick("gzip"), Coding::Gzip);
        assert_eq!(pick("gzip, br"), Coding::Brotli);
        assert_eq!(pick("br;q=0.5, gzip"), Coding::Gzip);
        assert_eq!(pick("br;q=0, gzip;q=0"), Coding::Identity);
        assert_eq!(pick("*"), Coding::Brotli);
        assert_eq!(pick("deflate"), Coding::Identity);
        assert_eq!(pick("identity;q=1, gzip;q=0.9"), Coding::Identity);
        assert_eq!(pick("x-gzip"), Coding::Gzip);
        let small = Representation::new(Bytes::from_static(b"[]"), "t");
        let req = TestRequest::default()
            .insert_header(("accept-encoding", "gzip"))
            .to_http_request();
        assert_eq!(small.choose(req.headers()), Coding::Identity);
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        let r = Representation::new(big(), "abc");
        let check = |inm: &str| {
            let req = TestRequest::default()
                .insert_header(("if-none-match", inm))
                .to_http_request();
            r.matches_if_none_match(req.headers())
        };
        assert!(check("\"abc\""));
        assert!(check("W/\"abc\""));
        assert!(check("\"x\", \"abc-gzip\""));
        assert!(check("*"));
        assert!(!check("\"abcd\""));
        assert!(!check("\"ab\""));
    }

    #[test]
    fn compressed_copies_decode_to_identity() {
        let r = Representation::precompressed(big(), "abc");
        let gz = r.encoded(Coding::Gzip).expect("gzip shrinks").clone();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out)
            .expect("gunzip");
        assert_eq!(out, r.identity().to_vec());
        let br = r.encoded(Coding::Brotli).expect("br shrinks").clone();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut brotli::Decompressor::new(&br[..], 4096), &mut out)
            .expect("unbrotli");
        assert_eq!(out, r.identity().to_vec());
    }
}
