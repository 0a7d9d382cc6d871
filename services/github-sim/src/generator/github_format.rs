//! How GitHub writes identifiers and dates in bodies: avatar URLs, node ids, timestamps.

use serde_json::Value;

use crate::dataset::JsonObject;

pub(super) fn avatar_url(id: u64) -> String {
    format!("https://avatars.githubusercontent.com/u/{id}?v=4")
}

/// GitHub's legacy global node id: base64 of `0{len}:{Type}{id}`, e.g. `MDQ6VXNlcjE=` for user 1.
pub(super) fn node_id(kind: &str, id: u64) -> String {
    base64(format!("0{}:{kind}{id}", kind.len()).as_bytes())
}

/// Standard base64 with padding (the node ids are its only use).
pub(super) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `2024-01-02T03:04:05Z`, GitHub's timestamp format.
pub(super) fn timestamp(unix_secs: i64) -> String {
    let at = time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(unix_secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

pub(super) fn into_object(value: Value) -> JsonObject {
    match value {
        Value::Object(object) => object,
        _ => JsonObject::new(),
    }
}
