//! Turning served values into body bytes: list items without the full-repository-only fields,
//! JSON arrays built item by item, and `Last-Modified` from `updated_at`.

use std::time::SystemTime;

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;

use crate::dataset::{JsonObject, string_field};

/// Fields `GET /repos/{owner}/{repo}` has that list pages leave out.
pub(super) const FULL_REPOSITORY_ONLY: [&str; 21] = [
    "organization",
    "network_count",
    "subscribers_count",
    "parent",
    "source",
    "template_repository",
    "temp_clone_token",
    "custom_properties",
    "allow_squash_merge",
    "allow_merge_commit",
    "allow_rebase_merge",
    "allow_auto_merge",
    "delete_branch_on_merge",
    "allow_update_branch",
    "use_squash_pr_title_as_default",
    "squash_merge_commit_title",
    "squash_merge_commit_message",
    "merge_commit_title",
    "merge_commit_message",
    "security_and_analysis",
    "code_of_conduct",
];

/// A repository as list pages show it: without the full-repository-only fields.
pub(super) struct ListedRepository<'a>(pub(super) &'a JsonObject);

impl Serialize for ListedRepository<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (field, value) in self.0 {
            if !FULL_REPOSITORY_ONLY.contains(&field.as_str()) {
                map.serialize_entry(field, value)?;
            }
        }
        map.end()
    }
}

/// One JSON value as bytes, with `Last-Modified` from its `updated_at` when it has one.
pub(super) fn single<T: Serialize + AsUpdatedAt>(value: &T) -> (Vec<u8>, Option<SystemTime>) {
    (to_json(value), value.updated_at())
}

pub(super) fn json_array<T: Serialize>(items: impl Iterator<Item = T>) -> Vec<u8> {
    let mut body = vec![b'['];
    for (i, item) in items.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&to_json(&item));
    }
    body.push(b']');
    body
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Values built from serde_json's own types (string keys only) cannot fail to serialize.
    serde_json::to_vec(value).expect("JSON values serialize")
}

/// Where a value's `Last-Modified` comes from.
pub(super) trait AsUpdatedAt {
    fn updated_at(&self) -> Option<SystemTime>;
}

impl AsUpdatedAt for JsonObject {
    fn updated_at(&self) -> Option<SystemTime> {
        let text = string_field(self, "updated_at")?;
        let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()?;
        Some(at.into())
    }
}

impl AsUpdatedAt for Value {
    fn updated_at(&self) -> Option<SystemTime> {
        self.as_object().and_then(AsUpdatedAt::updated_at)
    }
}
