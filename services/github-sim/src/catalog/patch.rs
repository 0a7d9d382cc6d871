//! Edits of the stored JSON objects the control API makes: a patch merged into an object, and an
//! org's repository count kept in step with its repositories.

use serde_json::Value;

use crate::dataset::JsonObject;

/// Merges `patch` into `target`: nested objects are merged, everything else replaced.
pub(super) fn merge(target: &mut JsonObject, patch: JsonObject) {
    for (field, value) in patch {
        match (target.get_mut(&field), value) {
            (Some(Value::Object(existing)), Value::Object(nested)) => merge(existing, nested),
            (_, value) => {
                target.insert(field, value);
            }
        }
    }
}

/// Adds `delta` to an org object's `public_repos` (a repository created or deleted).
pub(super) fn adjust_public_repos(org: &mut JsonObject, delta: i64) {
    if let Some(count) = org.get("public_repos").and_then(Value::as_u64) {
        let adjusted = count.saturating_add_signed(delta);
        org.insert("public_repos".into(), Value::from(adjusted));
    }
}
