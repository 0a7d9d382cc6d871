//! The pass-through's way through the fleet cache (L2): an entry's id, the in-process cache's
//! fetch routed through L2, and how an answer and an upstream failure are kept there (byte
//! encodings, see `fleet_cache`'s codec, and where a value read back came from).
//!
//! An answer is kept without its live headers (`x-ratelimit-*`, request id: true only when it
//! was fetched); its credential headers stay, since an entry is only ever read in its own
//! credential partition.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use bytes::Bytes;

use super::request_key::Partition;
use super::stored_answer::StoredResponse;
use super::upstream::{OutgoingRequest, Upstream, UpstreamFailure};
use crate::coalescing_cache::Fetched;
use crate::fleet_cache::{FleetFailure, FleetOrigin, FleetValue, Reader, Writer, fleet_id};

/// The parts of a `CacheKey` besides the target, carried into a fetch for the fleet cache.
pub(super) struct FleetKey {
    pub(super) partition: Partition,
    pub(super) accept: String,
    pub(super) api_version: Option<String>,
}

impl FleetKey {
    /// The entry id in the fleet cache: a hash of the same parts as `CacheKey` (the credential
    /// partition is itself a hash, so no credential reaches Redis).
    fn id(&self, target: &str) -> String {
        let server;
        let partition: &[u8] = match &self.partition {
            Partition::Anonymous => b"anonymous",
            Partition::Server(name) => {
                server = format!("server:{name}");
                server.as_bytes()
            }
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

impl Upstream {
    /// The in-process cache's fetch: through the fleet cache when it is on (an L2 hit, another
    /// replica's fetch, or the one upstream request of the fleet), else straight upstream.
    pub(super) async fn fetch_shared(
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
}

fn write_headers(w: &mut Writer, headers: &[(HeaderName, HeaderValue)]) {
    w.u16(u16::try_from(headers.len()).unwrap_or(u16::MAX));
    for (name, value) in headers.iter().take(usize::from(u16::MAX)) {
        w.bytes(name.as_str().as_bytes());
        w.bytes(value.as_bytes());
    }
}

fn read_headers(r: &mut Reader<'_>) -> Option<Vec<(HeaderName, HeaderValue)>> {
    let count = r.u16()?;
    (0..count)
        .map(|_| {
            let name = HeaderName::from_bytes(r.bytes()?).ok()?;
            let value = HeaderValue::from_bytes(r.bytes()?).ok()?;
            Some((name, value))
        })
        .collect()
}

fn read_text(bytes: Option<&[u8]>) -> Option<Option<String>> {
    match bytes {
        Some(bytes) => std::str::from_utf8(bytes).ok().map(|s| Some(s.to_owned())),
        None => Some(None),
    }
}

impl FleetValue for StoredResponse {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(
            self.body.len() + self.gzip.as_ref().map_or(0, Bytes::len) + 1024,
        );
        w.u16(self.status.as_u16());
        write_headers(&mut w, &self.headers);
        write_headers(&mut w, &self.credential_headers);
        w.optional(self.link.as_deref().map(str::as_bytes));
        w.optional(self.location.as_deref().map(str::as_bytes));
        w.optional(self.etag.as_deref().map(str::as_bytes));
        w.bytes(&self.body);
        w.optional(self.gzip.as_deref());
        w.finish()
    }

    fn decode(frame: &[u8]) -> Option<Self> {
        let mut r = Reader::open(frame)?;
        let status = StatusCode::from_u16(r.u16()?).ok()?;
        let headers = read_headers(&mut r)?;
        let credential_headers = read_headers(&mut r)?;
        let link = read_text(r.optional()?)?;
        let location = read_text(r.optional()?)?;
        let etag = read_text(r.optional()?)?;
        let body = Bytes::copy_from_slice(r.bytes()?);
        let gzip = r.optional()?.map(Bytes::copy_from_slice);
        r.end()?;
        Some(StoredResponse {
            status,
            headers,
            live_headers: Vec::new(),
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

    fn obtained_from_fleet(mut self, origin: FleetOrigin, age: Duration) -> Self {
        self.fleet = Some(origin);
        self.age_offset = age;
        self
    }
}

/// The one of `known` whose bytes are `reason` (failures hold static texts; a text not listed
/// came from another version or is damaged, and the frame is refused).
fn known_reason(known: &[&'static str], reason: &[u8]) -> Option<&'static str> {
    known.iter().find(|k| k.as_bytes() == reason).copied()
}

/// The reasons a credential failure can give (`CredentialError::reason`).
const CREDENTIAL_REASONS: &[&str] = &[
    hubcache_shared::github::REASON_INSTALLATION_REVOKED,
    hubcache_shared::github::REASON_CREDENTIAL_FAILED,
];

/// The reasons a transport failure can give (`UpstreamFailure::Transport` holds a static text).
const TRANSPORT_REASONS: &[&str] = &[
    "timed out",
    "connection failed",
    "the answer was cut off",
    "request failed",
];

impl FleetFailure for UpstreamFailure {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(16);
        match self {
            UpstreamFailure::Status(status) => {
                w.u8(1);
                w.u16(*status);
            }
            UpstreamFailure::RateLimited {
                status,
                retry_after,
            } => {
                w.u8(2);
                w.u16(*status);
                match retry_after {
                    Some(secs) => {
                        w.u8(1);
                        w.u64(*secs);
                    }
                    None => w.u8(0),
                }
            }
            UpstreamFailure::Transport(reason) => {
                w.u8(3);
                w.bytes(reason.as_bytes());
            }
            UpstreamFailure::InvalidTarget => w.u8(4),
            UpstreamFailure::Prepare => w.u8(5),
            UpstreamFailure::Credential(reason) => {
                w.u8(6);
                w.bytes(reason.as_bytes());
            }
        }
        w.finish()
    }

    fn decode(frame: &[u8]) -> Option<Self> {
        let mut r = Reader::open(frame)?;
        let failure = match r.u8()? {
            1 => UpstreamFailure::Status(r.u16()?),
            2 => UpstreamFailure::RateLimited {
                status: r.u16()?,
                retry_after: match r.u8()? {
                    0 => None,
                    1 => Some(r.u64()?),
                    _ => return None,
                },
            },
            3 => UpstreamFailure::Transport(known_reason(TRANSPORT_REASONS, r.bytes()?)?),
            4 => UpstreamFailure::InvalidTarget,
            5 => UpstreamFailure::Prepare,
            6 => UpstreamFailure::Credential(known_reason(CREDENTIAL_REASONS, r.bytes()?)?),
            _ => return None,
        };
        r.end()?;
        Some(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> StoredResponse {
        StoredResponse {
            status: StatusCode::NOT_FOUND,
            headers: vec![
                (
                    HeaderName::from_static("content-type"),
                    HeaderValue::from_static("application/json"),
                ),
                (
                    HeaderName::from_static("etag"),
                    HeaderValue::from_static("\"abc\""),
                ),
            ],
            live_headers: vec![(
                HeaderName::from_static("x-ratelimit-remaining"),
                HeaderValue::from_static("4999"),
            )],
            credential_headers: vec![(
                HeaderName::from_static("x-oauth-scopes"),
                HeaderValue::from_static("repo"),
            )],
            link: Some("<https://api.github.com/x?page=2>; rel=\"next\"".to_owned()),
            location: None,
            etag: Some("\"abc\"".to_owned()),
            body: Bytes::from_static(b"{\"message\":\"Not Found\"}"),
            gzip: Some(Bytes::from_static(b"\x1f\x8b...")),
            fleet: None,
            age_offset: Duration::ZERO,
        }
    }

    #[test]
    fn an_answer_comes_back_without_its_live_headers() {
        let original = answer();
        let back = StoredResponse::decode(&original.encode()).expect("decodes");
        assert_eq!(back.status, original.status);
        assert_eq!(back.headers, original.headers);
        assert!(back.live_headers.is_empty());
        assert_eq!(back.credential_headers, original.credential_headers);
        assert_eq!(back.link, original.link);
        assert_eq!(back.location, None);
        assert_eq!(back.etag, original.etag);
        assert_eq!(back.body, original.body);
        assert_eq!(back.gzip, original.gzip);
    }

    #[test]
    fn a_damaged_answer_is_none() {
        let mut frame = answer().encode();
        let middle = frame.len() / 2;
        frame[middle] ^= 0x40;
        assert!(StoredResponse::decode(&frame).is_none());
    }

    #[test]
    fn every_failure_comes_back() {
        for failure in [
            UpstreamFailure::Status(502),
            UpstreamFailure::RateLimited {
                status: 429,
                retry_after: Some(30),
            },
            UpstreamFailure::RateLimited {
                status: 403,
                retry_after: None,
            },
            UpstreamFailure::Transport("timed out"),
            UpstreamFailure::InvalidTarget,
            UpstreamFailure::Prepare,
            UpstreamFailure::Credential("installation_revoked"),
        ] {
            let back = UpstreamFailure::decode(&failure.encode()).expect("decodes");
            assert_eq!(back.to_string(), failure.to_string());
        }
        assert!(UpstreamFailure::decode(b"junk").is_none());
    }
}
