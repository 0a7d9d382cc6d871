//! The byte format of what the fleet cache keeps in Redis: a versioned, checksummed frame around
//! length-prefixed fields, so a damaged, truncated or foreign value decodes to `None` (a miss),
//! never to a wrong answer.
//!
//! Frame: `b"HCL2"`, a format version byte, the payload, then the first 16 bytes of the payload's
//! SHA-256. Payload fields are written with [`Writer`] and read back in the same order with
//! [`Reader`]; every length is checked against what is left.

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 4] = b"HCL2";
/// Bumped whenever a field changes: entries written by another version are misses.
const FORMAT_VERSION: u8 = 1;
const CHECKSUM_BYTES: usize = 16;

/// Builds one frame's payload.
pub(crate) struct Writer {
    out: Vec<u8>,
}

impl Writer {
    /// A writer with room for about `capacity` payload bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity + MAGIC.len() + 1 + CHECKSUM_BYTES);
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_VERSION);
        Self { out }
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.out.push(value);
    }

    pub(crate) fn u16(&mut self, value: u16) {
        self.bytes_raw(&value.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.bytes_raw(&value.to_be_bytes());
    }

    /// A length-prefixed byte string (at most 4 GiB, far above any entry bound).
    pub(crate) fn bytes(&mut self, value: &[u8]) {
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.bytes_raw(&len.to_be_bytes());
        self.bytes_raw(&value[..len as usize]);
    }

    /// An optional byte string: a presence byte, then the string.
    pub(crate) fn optional(&mut self, value: Option<&[u8]>) {
        match value {
            Some(value) => {
                self.u8(1);
                self.bytes(value);
            }
            None => self.u8(0),
        }
    }

    fn bytes_raw(&mut self, value: &[u8]) {
        self.out.extend_from_slice(value);
    }

    /// The whole frame, checksum appended.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let header = MAGIC.len() + 1;
        let digest = Sha256::digest(&self.out[header..]);
        self.out.extend_from_slice(&digest[..CHECKSUM_BYTES]);
        self.out
    }
}

/// Reads one frame's payload; every method returns `None` once anything is out of place.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// The payload of `frame`, if its magic, version and checksum are right.
    pub(crate) fn open(frame: &'a [u8]) -> Option<Self> {
        let header = MAGIC.len() + 1;
        if frame.len() < header + CHECKSUM_BYTES
            || &frame[..MAGIC.len()] != MAGIC
            || frame[MAGIC.len()] != FORMAT_VERSION
        {
            return None;
        }
        let (payload, checksum) = frame[header..].split_at(frame.len() - header - CHECKSUM_BYTES);
        (Sha256::digest(payload)[..CHECKSUM_BYTES] == *checksum).then_some(Self { rest: payload })
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if self.rest.len() < len {
            return None;
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(taken)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.take(2)?.try_into().ok().map(u16::from_be_bytes)
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_be_bytes)
    }

    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(self.take(4)?.try_into().ok()?);
        self.take(usize::try_from(len).ok()?)
    }

    pub(crate) fn optional(&mut self) -> Option<Option<&'a [u8]>> {
        match self.u8()? {
            0 => Some(None),
            1 => self.bytes().map(Some),
            _ => None,
        }
    }

    /// `Some(())` when everything was read: trailing bytes mean a different layout.
    pub(crate) fn end(self) -> Option<()> {
        self.rest.is_empty().then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = Writer::with_capacity(64);
        w.u8(7);
        w.u16(404);
        w.u64(u64::MAX - 1);
        w.bytes(b"body");
        w.optional(Some(b"etag"));
        w.optional(None);
        w.finish()
    }

    #[test]
    fn fields_come_back_in_order() {
        let frame = sample();
        let mut r = Reader::open(&frame).expect("valid frame");
        assert_eq!(r.u8(), Some(7));
        assert_eq!(r.u16(), Some(404));
        assert_eq!(r.u64(), Some(u64::MAX - 1));
        assert_eq!(r.bytes(), Some(&b"body"[..]));
        assert_eq!(r.optional(), Some(Some(&b"etag"[..])));
        assert_eq!(r.optional(), Some(None));
        assert_eq!(r.end(), Some(()));
    }

    #[test]
    fn any_damage_is_refused() {
        let frame = sample();
        for i in 0..frame.len() {
            let mut damaged = frame.clone();
            damaged[i] ^= 0x01;
            assert!(Reader::open(&damaged).is_none(), "flip at byte {i}");
        }
        for len in 0..frame.len() {
            assert!(Reader::open(&frame[..len]).is_none(), "cut at {len}");
        }
        assert!(Reader::open(b"not a frame at all, just text").is_none());
    }

    #[test]
    fn reading_past_the_payload_is_none() {
        let mut w = Writer::with_capacity(0);
        w.u16(1);
        let frame = w.finish();
        let mut r = Reader::open(&frame).expect("valid");
        assert_eq!(r.u64(), None);
    }
}
