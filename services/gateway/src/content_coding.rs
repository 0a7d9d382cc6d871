//! Content codings (RFC 9110 §8.4): `Accept-Encoding` negotiation with q-values, and the gzip and
//! brotli encoders. The one place both the in-process copies (`representation`) and the
//! pass-through's stored answers read what a client accepts and compress a body.

use std::io::Write as _;

use actix_web::http::header::{self, HeaderMap};
use bytes::Bytes;

/// A content coding the gateway can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    /// Uncompressed.
    Identity,
    /// `gzip` (flate2, default level).
    Gzip,
    /// `br` (brotli).
    Brotli,
}

impl Coding {
    /// The token naming this coding in `Content-Encoding`.
    pub(crate) fn token(self) -> &'static str {
        match self {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Brotli => "br",
        }
    }
}

/// Parsed `Accept-Encoding`: quality (0-1000) per coding named, and the `*` fallback.
#[derive(Debug, Default)]
pub(crate) struct AcceptEncoding {
    br: Option<u16>,
    gzip: Option<u16>,
    identity: Option<u16>,
    any: Option<u16>,
}

impl AcceptEncoding {
    /// Every `Accept-Encoding` line of `headers`, parsed as one list; `None` when the request has
    /// none (the client did not say, so only identity is sent).
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let mut lines = headers
            .get_all(header::ACCEPT_ENCODING)
            .filter_map(|v| v.to_str().ok())
            .peekable();
        lines.peek()?;
        let mut parsed = Self::default();
        for line in lines {
            parsed.add(line);
        }
        Some(parsed)
    }

    /// Adds the entries of one header value such as `gzip;q=0.8, br, *;q=0`. Malformed entries
    /// are skipped.
    fn add(&mut self, value: &str) {
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            let mut quality = Some(1000u16);
            for param in parts {
                if let Some((k, v)) = param.split_once('=')
                    && k.trim().eq_ignore_ascii_case("q")
                {
                    quality = parse_qvalue(v.trim());
                }
            }
            let Some(quality) = quality else { continue };
            let slot = match name.as_str() {
                "br" => &mut self.br,
                "gzip" | "x-gzip" => &mut self.gzip,
                "identity" => &mut self.identity,
                "*" => &mut self.any,
                _ => continue,
            };
            *slot = Some(quality);
        }
    }

    /// The quality the client gives `coding` (identity is acceptable unless excluded).
    pub(crate) fn quality(&self, coding: Coding) -> u16 {
        match coding {
            Coding::Brotli => self.br.or(self.any).unwrap_or(0),
            Coding::Gzip => self.gzip.or(self.any).unwrap_or(0),
            // Identity: a tie with a compressed coding loses (the candidates are tried in order and
            // must be strictly better), and it is always acceptable as the last resort.
            Coding::Identity => self.identity.or(self.any).unwrap_or(1000).max(1),
        }
    }

    /// Whether `coding` is acceptable at all (a quality above zero).
    pub(crate) fn accepts(&self, coding: Coding) -> bool {
        self.quality(coding) > 0
    }
}

/// RFC 9110 qvalue: `0`, `1`, `0.xxx`, `1.000`; returned in thousandths.
fn parse_qvalue(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: u16 = match int {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    let q = int * 1000 + thousandths;
    (q <= 1000).then_some(q)
}

/// `body` gzip-compressed (flate2, default level).
pub(crate) fn gzip(body: &[u8]) -> std::io::Result<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::default(),
    );
    encoder.write_all(body)?;
    Ok(Bytes::from(encoder.finish()?))
}

/// `body` brotli-compressed at `quality` (0-11; lower is faster).
pub(crate) fn brotli(body: &[u8], quality: u32) -> std::io::Result<Bytes> {
    let mut out = Vec::with_capacity(body.len() / 5);
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 64 * 1024, quality, 22);
        writer.write_all(body)?;
        writer.flush()?;
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn accept_encoding(lines: &[&str]) -> Option<AcceptEncoding> {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(
                HeaderName::from_static("accept-encoding"),
                HeaderValue::from_str(line).expect("value"),
            );
        }
        AcceptEncoding::from_headers(&headers)
    }

    #[test]
    fn qvalues_parse_strictly() {
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("0.125"), Some(125));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("1.5"), None);
        assert_eq!(parse_qvalue("2"), None);
        assert_eq!(parse_qvalue("0.1234"), None);
        assert_eq!(parse_qvalue("abc"), None);
    }

    #[test]
    fn gzip_is_accepted_unless_refused_or_unnamed() {
        let gzip = |lines: &[&str]| accept_encoding(lines).is_some_and(|a| a.accepts(Coding::Gzip));
        assert!(gzip(&["br, gzip;q=0.5"]));
        assert!(gzip(&["*"]));
        assert!(gzip(&["br", "gzip"]), "every header line counts");
        assert!(!gzip(&["gzip;q=0, br"]));
        assert!(!gzip(&["gzip;q=0, *"]), "an explicit refusal beats *");
        assert!(!gzip(&["br"]));
        assert!(!gzip(&[]));
        assert!(accept_encoding(&[]).is_none());
    }

    #[test]
    fn encoders_round_trip() {
        let body = b"[{\"a\": 1}, {\"a\": 1}, {\"a\": 1}, {\"a\": 1}]".repeat(20);
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&gzip(&body).expect("gzip")[..]),
            &mut out,
        )
        .expect("gunzip");
        assert_eq!(out, body);
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut brotli::Decompressor::new(&brotli(&body, 5).expect("br")[..], 4096),
            &mut out,
        )
        .expect("unbrotli");
        assert_eq!(out, body);
    }
}
