//! How GitHub writes identifiers and dates in bodies: avatar URLs, node ids, timestamps.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::dataset::JsonObject;

pub(super) fn avatar_url(id: u64) -> String {
    format!("https://avatars.githubusercontent.com/u/{id}?v=4")
}

/// GitHub's legacy global node id: base64 of `0{len}:{Type}{id}`, e.g. `MDQ6VXNlcjE=` for user 1.
pub(super) fn node_id(kind: &str, id: u64) -> String {
    STANDARD.encode(format!("0{}:{kind}{id}", kind.len()))
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
