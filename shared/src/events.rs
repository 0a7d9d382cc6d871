//! Stream events: how the services tell each other that something changed.
//!
//! Events are flat string fields on a Redis stream entry (`XADD key * field value ...`), so they
//! are readable with `redis-cli XRANGE` and need no schema registry. Each carries the W3C
//! `traceparent` of the span that produced it, so one trace follows a refresh across services.

use std::collections::HashMap;

use redis::streams::StreamId;

/// The id of the newest entry of `stream` (`0-0` when it is empty or absent): a reader that
/// must see only what is appended from now on (a gateway after its initial load, the fetcher's
/// hint reader) starts its `XREAD` after it.
pub async fn newest_entry_id(
    conn: &mut crate::RedisConnection,
    stream: &str,
) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await
        .with_context(|| format!("reading the newest entry id of {stream}"))?;
    Ok(reply
        .ids
        .into_iter()
        .next()
        .map_or_else(|| "0-0".to_owned(), |entry| entry.id))
}

/// Why a stream entry is not a valid event. Such entries are acknowledged and skipped: a bad
/// entry must not block a consumer forever.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed stream entry {id}: {reason}")]
pub struct MalformedEvent {
    /// The stream entry id.
    pub id: String,
    /// What was missing or unparsable.
    pub reason: String,
}

/// Appended to the refresh stream by the fetcher after a snapshot really changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshEvent {
    /// The cached GitHub path whose snapshot changed.
    pub path: String,
    /// The new snapshot version.
    pub version: u64,
    /// The new body's content hash.
    pub content_hash: String,
    /// When the change was stored (Unix milliseconds).
    pub at_ms: u64,
    /// The producing span's W3C trace context, if tracing is on.
    pub traceparent: Option<String>,
}

/// Appended to the views stream by the views service after it stored a new view set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewsEvent {
    /// The repos snapshot version the stored views were computed from.
    pub version: u64,
    /// When they were stored (Unix milliseconds).
    pub at_ms: u64,
    /// The producing span's W3C trace context, if tracing is on.
    pub traceparent: Option<String>,
}

/// What a webhook delivery says may have changed, as the fetcher's cached paths of the org.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HintTarget {
    /// `/orgs/{org}/repos` (and so the views).
    Repos,
    /// `/orgs/{org}/members`.
    Members,
    /// `/orgs/{org}`.
    Org,
}

impl HintTarget {
    /// The name used in a hint's `targets` field.
    pub fn as_str(self) -> &'static str {
        match self {
            HintTarget::Repos => "repos",
            HintTarget::Members => "members",
            HintTarget::Org => "org",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "repos" => Some(HintTarget::Repos),
            "members" => Some(HintTarget::Members),
            "org" => Some(HintTarget::Org),
            _ => None,
        }
    }

    /// The cached GitHub path this target names for `org`.
    pub fn path(self, org: &str) -> String {
        match self {
            HintTarget::Repos => format!("/orgs/{org}/repos"),
            HintTarget::Members => format!("/orgs/{org}/members"),
            HintTarget::Org => format!("/orgs/{org}"),
        }
    }

    /// What a webhook event (its `X-GitHub-Event` name) changes in the cached data, or `None`
    /// for events hubcache does not use. Repository events change the repos list (and so the
    /// views); the ones that add, remove or hide a repository also change the org's
    /// `public_repos`. Membership and organization events change the members and the org.
    pub fn of_event(event: &str) -> Option<&'static [HintTarget]> {
        const REPOS: &[HintTarget] = &[HintTarget::Repos];
        const REPOS_AND_ORG: &[HintTarget] = &[HintTarget::Repos, HintTarget::Org];
        const MEMBERS_AND_ORG: &[HintTarget] = &[HintTarget::Members, HintTarget::Org];
        match event {
            "repository" | "public" => Some(REPOS_AND_ORG),
            "star" | "watch" | "fork" | "push" | "issues" => Some(REPOS),
            "member" | "membership" | "organization" => Some(MEMBERS_AND_ORG),
            _ => None,
        }
    }
}

/// Appended to the hints stream by the gateway for a verified, new webhook delivery: the fetcher
/// holding the lease revalidates the named targets of the org at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookHint {
    /// The org login, as the payload spells it.
    pub org: String,
    /// What may have changed.
    pub targets: Vec<HintTarget>,
    /// The `X-GitHub-Event` name.
    pub event: String,
    /// The `X-GitHub-Delivery` id.
    pub delivery: String,
    /// When the gateway received the delivery (Unix milliseconds).
    pub received_at_ms: u64,
    /// The receiving span's W3C trace context, if tracing is on.
    pub traceparent: Option<String>,
}

impl WebhookHint {
    /// The stream entry fields (`XADD` arguments).
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let targets: Vec<&str> = self.targets.iter().map(|t| t.as_str()).collect();
        let mut fields = vec![
            ("org", self.org.clone()),
            ("targets", targets.join(",")),
            ("event", self.event.clone()),
            ("delivery", self.delivery.clone()),
            ("received_at_ms", self.received_at_ms.to_string()),
        ];
        if let Some(tp) = &self.traceparent {
            fields.push(("traceparent", tp.clone()));
        }
        fields
    }

    /// Parses a stream entry read with `XREAD`.
    pub fn from_entry(entry: &StreamId) -> Result<Self, MalformedEvent> {
        let fields = EntryFields::new(entry);
        let raw_targets = fields.string("targets")?;
        let targets = raw_targets
            .split(',')
            .map(|name| {
                HintTarget::parse(name)
                    .ok_or_else(|| fields.malformed(format!("unknown target {name:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            org: fields.string("org")?,
            targets,
            event: fields.string("event")?,
            delivery: fields.string("delivery")?,
            received_at_ms: fields.number("received_at_ms")?,
            traceparent: fields.optional("traceparent"),
        })
    }
}

impl RefreshEvent {
    /// The stream entry fields (`XADD` arguments).
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("path", self.path.clone()),
            ("version", self.version.to_string()),
            ("content_hash", self.content_hash.clone()),
            ("at_ms", self.at_ms.to_string()),
        ];
        if let Some(tp) = &self.traceparent {
            fields.push(("traceparent", tp.clone()));
        }
        fields
    }

    /// Parses a stream entry read with `XREAD`/`XREADGROUP`.
    pub fn from_entry(entry: &StreamId) -> Result<Self, MalformedEvent> {
        let fields = EntryFields::new(entry);
        Ok(Self {
            path: fields.string("path")?,
            version: fields.number("version")?,
            content_hash: fields.string("content_hash")?,
            at_ms: fields.number("at_ms")?,
            traceparent: fields.optional("traceparent"),
        })
    }
}

impl ViewsEvent {
    /// The stream entry fields (`XADD` arguments).
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("version", self.version.to_string()),
            ("at_ms", self.at_ms.to_string()),
        ];
        if let Some(tp) = &self.traceparent {
            fields.push(("traceparent", tp.clone()));
        }
        fields
    }

    /// Parses a stream entry read with `XREAD`.
    pub fn from_entry(entry: &StreamId) -> Result<Self, MalformedEvent> {
        let fields = EntryFields::new(entry);
        Ok(Self {
            version: fields.number("version")?,
            at_ms: fields.number("at_ms")?,
            traceparent: fields.optional("traceparent"),
        })
    }
}

/// A stream entry's fields decoded as UTF-8 strings.
struct EntryFields<'a> {
    id: &'a str,
    map: HashMap<&'a str, String>,
}

impl<'a> EntryFields<'a> {
    fn new(entry: &'a StreamId) -> Self {
        let map = entry
            .map
            .iter()
            .filter_map(|(k, v)| {
                redis::from_redis_value_ref::<String>(v)
                    .ok()
                    .map(|s| (k.as_str(), s))
            })
            .collect();
        Self { id: &entry.id, map }
    }

    fn malformed(&self, reason: String) -> MalformedEvent {
        MalformedEvent {
            id: self.id.to_owned(),
            reason,
        }
    }

    fn string(&self, name: &str) -> Result<String, MalformedEvent> {
        self.map
            .get(name)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| self.malformed(format!("field {name} missing")))
    }

    fn number(&self, name: &str) -> Result<u64, MalformedEvent> {
        let raw = self.string(name)?;
        raw.parse()
            .map_err(|_| self.malformed(format!("field {name}={raw:?} is not an integer")))
    }

    fn optional(&self, name: &str) -> Option<String> {
        self.map.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &str)]) -> StreamId {
        StreamId {
            id: "1-0".to_owned(),
            map: fields
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_owned(),
                        redis::Value::BulkString(v.as_bytes().to_vec()),
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn refresh_event_round_trips() {
        let e = RefreshEvent {
            path: "/orgs/Netflix/repos".into(),
            version: 3,
            content_hash: "ab".into(),
            at_ms: 42,
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        };
        let fields: Vec<(&str, String)> = e.to_fields();
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(RefreshEvent::from_entry(&entry(&pairs)), Ok(e));
    }

    #[test]
    fn webhook_hint_round_trips_and_rejects_unknown_targets() {
        let hint = WebhookHint {
            org: "Netflix".into(),
            targets: vec![HintTarget::Repos, HintTarget::Org],
            event: "repository".into(),
            delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
            received_at_ms: 42,
            traceparent: None,
        };
        let fields = hint.to_fields();
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(WebhookHint::from_entry(&entry(&pairs)), Ok(hint));
        let bad = WebhookHint::from_entry(&entry(&[
            ("org", "o"),
            ("targets", "repos,teams"),
            ("event", "x"),
            ("delivery", "d"),
            ("received_at_ms", "1"),
        ]))
        .expect_err("unknown target");
        assert!(bad.reason.contains("teams"), "{bad}");
    }

    #[test]
    fn webhook_events_map_to_what_they_change() {
        assert_eq!(HintTarget::of_event("star"), Some(&[HintTarget::Repos][..]));
        assert_eq!(
            HintTarget::of_event("member"),
            Some(&[HintTarget::Members, HintTarget::Org][..])
        );
        assert_eq!(HintTarget::of_event("ping"), None);
        assert_eq!(HintTarget::of_event("deployment"), None);
        assert_eq!(HintTarget::Repos.path("Netflix"), "/orgs/Netflix/repos");
    }

    #[test]
    fn malformed_entries_are_reported_not_panicked() {
        let err = RefreshEvent::from_entry(&entry(&[("path", "/x"), ("version", "nope")]))
            .expect_err("bad");
        assert!(err.reason.contains("version"), "{err}");
        assert!(ViewsEvent::from_entry(&entry(&[])).is_err());
    }
}

/// Property tests: stream entries come from whatever is in Redis.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn value() -> impl Strategy<Value = redis::Value> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..24).prop_map(redis::Value::BulkString),
            "[0-9]{0,22}".prop_map(|s| redis::Value::BulkString(s.into_bytes())),
            any::<i64>().prop_map(redis::Value::Int),
            Just(redis::Value::Nil),
        ]
    }

    fn entry() -> impl Strategy<Value = StreamId> {
        let name = prop_oneof![
            Just("path".to_owned()),
            Just("version".to_owned()),
            Just("content_hash".to_owned()),
            Just("at_ms".to_owned()),
            Just("traceparent".to_owned()),
            "[a-z_]{0,8}",
        ];
        proptest::collection::hash_map(name, value(), 0..7).prop_map(|map| StreamId {
            id: "1-0".to_owned(),
            map,
            ..Default::default()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_entry_parses_or_is_reported_without_panicking(entry in entry()) {
            if let Ok(event) = RefreshEvent::from_entry(&entry) {
                prop_assert!(!event.path.is_empty());
                prop_assert!(!event.content_hash.is_empty());
            }
            if let Err(e) = ViewsEvent::from_entry(&entry) {
                prop_assert!(e.reason.contains("version") || e.reason.contains("at_ms"), "{}", e);
            }
        }

        #[test]
        fn events_round_trip_through_their_fields(
            path in "/[ -~]{0,40}",
            version in any::<u64>(),
            content_hash in "[0-9a-f]{1,64}",
            at_ms in any::<u64>(),
            traceparent in proptest::option::of("[0-9a-f-]{1,55}"),
        ) {
            let event = RefreshEvent { path, version, content_hash, at_ms, traceparent };
            let entry = StreamId {
                id: "1-0".to_owned(),
                map: event
                    .to_fields()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), redis::Value::BulkString(v.into_bytes())))
                    .collect(),
                ..Default::default()
            };
            prop_assert_eq!(RefreshEvent::from_entry(&entry), Ok(event));
        }
    }
}
