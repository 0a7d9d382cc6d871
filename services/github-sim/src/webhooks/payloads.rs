//! Webhook events for the simulator's data mutations, shaped like GitHub's org webhook payloads
//! (`action`, `repository`, `organization`, `sender`, and `changes` where GitHub sends them).

use serde_json::{Value, json};

use crate::catalog::EventContext;
use crate::dataset::JsonObject;

/// One event to deliver: its `X-GitHub-Event` name, its `action` (for the delivery log) and the
/// payload object.
#[derive(Debug, Clone)]
pub(crate) struct WebhookEvent {
    /// The event name (`repository`, `star`, `ping`, ...).
    pub(crate) name: &'static str,
    /// The payload's `action`, when the event has one.
    pub(crate) action: Option<&'static str>,
    /// The payload.
    pub(crate) payload: Value,
}

impl WebhookEvent {
    fn new(name: &'static str, action: &'static str, payload: Value) -> Self {
        Self {
            name,
            action: Some(action),
            payload,
        }
    }
}

/// `repository` `created`, for a repository added through the control API.
pub(crate) fn repository_created(context: &EventContext, repo: &JsonObject) -> WebhookEvent {
    repository_event("created", context, repo, None)
}

/// `repository` `deleted`, carrying the repository as it was.
pub(crate) fn repository_deleted(context: &EventContext, repo: &JsonObject) -> WebhookEvent {
    repository_event("deleted", context, repo, None)
}

/// The event GitHub sends for a change from `before` to `after`: a rename, (un)archiving, a
/// visibility change, a star count change (`star`, `created` or `deleted`), or else `repository`
/// `edited` with the changed fields' old values in `changes`. One event per mutation, the most
/// specific that applies, in that order.
pub(crate) fn repository_changed(
    context: &EventContext,
    before: &JsonObject,
    after: &JsonObject,
) -> WebhookEvent {
    let changed = |field: &str| before.get(field) != after.get(field);
    if changed("name") {
        let changes = json!({"repository": {"name": {"from": before.get("name")}}});
        return repository_event("renamed", context, after, Some(changes));
    }
    if changed("archived") {
        let archived = after.get("archived").and_then(Value::as_bool) == Some(true);
        let action = if archived { "archived" } else { "unarchived" };
        return repository_event(action, context, after, None);
    }
    if changed("private") {
        let private = after.get("private").and_then(Value::as_bool) == Some(true);
        let action = if private { "privatized" } else { "publicized" };
        return repository_event(action, context, after, None);
    }
    if changed("stargazers_count") {
        let count = |repo: &JsonObject| repo.get("stargazers_count").and_then(Value::as_u64);
        let created = count(after) > count(before);
        let (action, starred_at) = if created {
            ("created", Value::String(now_timestamp()))
        } else {
            ("deleted", Value::Null)
        };
        let payload = json!({
            "action": action,
            "starred_at": starred_at,
            "repository": after,
            "organization": context.organization,
            "sender": context.sender,
        });
        return WebhookEvent::new("star", action, payload);
    }
    let changes: JsonObject = before
        .iter()
        .filter(|(field, value)| after.get(field.as_str()) != Some(value))
        .map(|(field, value)| (field.clone(), json!({ "from": value })))
        .collect();
    repository_event("edited", context, after, Some(Value::Object(changes)))
}

/// `ping`, sent when a hook is created: the hook itself and GitHub's zen line.
pub(crate) fn ping(context: &EventContext, hook: Value, hook_id: u64) -> WebhookEvent {
    WebhookEvent {
        name: "ping",
        action: None,
        payload: json!({
            "zen": "Keep it logically awesome.",
            "hook_id": hook_id,
            "hook": hook,
            "organization": context.organization,
            "sender": context.sender,
        }),
    }
}

fn repository_event(
    action: &'static str,
    context: &EventContext,
    repo: &JsonObject,
    changes: Option<Value>,
) -> WebhookEvent {
    let mut payload = json!({ "action": action });
    if let Some(changes) = changes {
        payload["changes"] = changes;
    }
    payload["repository"] = Value::Object(repo.clone());
    payload["organization"] = Value::Object(context.organization.clone());
    payload["sender"] = Value::Object(context.sender.clone());
    WebhookEvent::new("repository", action, payload)
}

/// Now in GitHub's timestamp format (`2024-01-02T03:04:05Z`).
pub(crate) fn now_timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> EventContext {
        EventContext {
            login: "Acme".into(),
            id: 7,
            organization: json!({"login": "Acme", "id": 7})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            sender: json!({"login": "ann", "id": 1})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        }
    }

    fn repo(fields: Value) -> JsonObject {
        fields.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_change_maps_to_the_most_specific_event() {
        let base = json!({"name": "one", "archived": false, "private": false,
                          "stargazers_count": 3, "description": "x"});
        let before = repo(base.clone());
        let cases = [
            (json!({"name": "two"}), "repository", "renamed"),
            (json!({"archived": true}), "repository", "archived"),
            (json!({"private": true}), "repository", "privatized"),
            (json!({"stargazers_count": 4}), "star", "created"),
            (json!({"stargazers_count": 2}), "star", "deleted"),
            (json!({"description": "y"}), "repository", "edited"),
        ];
        for (patch, name, action) in cases {
            let mut after = before.clone();
            after.extend(repo(patch.clone()));
            let event = repository_changed(&context(), &before, &after);
            assert_eq!((event.name, event.action), (name, Some(action)), "{patch}");
            assert_eq!(event.payload["organization"]["login"], "Acme");
            assert_eq!(event.payload["sender"]["login"], "ann");
        }
        let mut after = before.clone();
        after.insert("description".into(), json!("y"));
        let edited = repository_changed(&context(), &before, &after);
        assert_eq!(
            edited.payload["changes"],
            json!({"description": {"from": "x"}})
        );
        let mut renamed = before.clone();
        renamed.insert("name".into(), json!("two"));
        let event = repository_changed(&context(), &before, &renamed);
        assert_eq!(
            event.payload["changes"]["repository"]["name"]["from"],
            "one"
        );
        assert_eq!(event.payload["repository"]["name"], "two");
    }
}
