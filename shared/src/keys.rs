//! The Redis key and stream schema: the only place in the workspace that spells a key.
//!
//! Every name starts with the hash tag `{PREFIX}` (`KEY_PREFIX`, default `hubcache`), so all of
//! hubcache's keys live in one Redis Cluster slot: the scripts that change a snapshot and append
//! its refresh event in one step run unchanged on a cluster, and two deployments with different
//! prefixes share a Redis without touching each other.
//!
//! | name | type | written by | holds |
//! |---|---|---|---|
//! | `{p}:snapshot:{path}` | hash | fetcher | `body`, `meta` (JSON [`SnapshotMeta`](crate::SnapshotMeta)), `version`, `status` (JSON [`SnapshotStatus`](crate::SnapshotStatus): last success and last error) |
//! | `{p}:views` | hash | views | `version`, `source_hash` (the content hash of the repos snapshot ranked), one field per view name (JSON entries) |
//! | `{p}:stream:refresh` | stream | fetcher | [`RefreshEvent`](crate::RefreshEvent)s |
//! | `{p}:stream:views` | stream | views | [`ViewsEvent`](crate::ViewsEvent)s |
//! | `{p}:lease:fetcher` | string (PX) | fetcher | the instance id of the one fetcher polling |
//! | `{p}:stream:hints` | stream | gateway | [`WebhookHint`](crate::WebhookHint)s: verified webhook deliveries for the fetcher |
//! | `{p}:webhook:delivery:{guid}` | string (PX) | gateway | a delivery id seen within the redelivery window |
//!
//! The refresh stream is read by the consumer group [`KeySchema::views_group`]; the gateways read
//! both streams with plain `XREAD` (each gateway sees every event). The fetcher reads the hints
//! stream with plain `XREAD` (only the lease holder acts on it).

/// Approximate bound (XADD `MAXLEN ~`) of each stream: enough for consumers that were down for
/// minutes, small enough to keep Redis memory flat.
pub const STREAM_MAX_LEN: usize = 10_000;

/// Approximate bound of the webhook hints stream: hints are read within a second or two, so
/// this only has to hold a burst between two reads (the fetcher reads up to 1,000 at a time);
/// a hint trimmed unread is covered by the safety poll.
pub const HINTS_STREAM_MAX_LEN: usize = 10_000;

/// Builds every Redis name from one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema {
    tag: String,
}

impl KeySchema {
    /// A schema for `prefix` (validated by `CommonSettings::validate`: no braces or spaces).
    pub fn new(prefix: &str) -> Self {
        Self {
            tag: format!("{{{prefix}}}"),
        }
    }

    /// The snapshot hash of one cached GitHub path (normalised, e.g. `/orgs/Netflix/repos`).
    pub fn snapshot(&self, path: &str) -> String {
        format!("{}:snapshot:{path}", self.tag)
    }

    /// The hash holding every computed view of one snapshot version.
    pub fn views(&self) -> String {
        format!("{}:views", self.tag)
    }

    /// The stream the fetcher appends a [`RefreshEvent`](crate::RefreshEvent) to after a change.
    pub fn refresh_stream(&self) -> String {
        format!("{}:stream:refresh", self.tag)
    }

    /// The stream the views service appends a [`ViewsEvent`](crate::ViewsEvent) to after storing.
    pub fn views_stream(&self) -> String {
        format!("{}:stream:views", self.tag)
    }

    /// The consumer group of views workers on the refresh stream.
    pub fn views_group(&self) -> &'static str {
        "views"
    }

    /// The lease that elects the one fetcher allowed to poll GitHub.
    pub fn fetcher_lease(&self) -> String {
        format!("{}:lease:fetcher", self.tag)
    }

    /// The stream the gateway appends a [`WebhookHint`](crate::WebhookHint) to for every
    /// verified, new webhook delivery; the fetcher holding the lease revalidates what it names.
    pub fn webhook_hints_stream(&self) -> String {
        format!("{}:stream:hints", self.tag)
    }

    /// The marker of one webhook delivery id (`X-GitHub-Delivery`), set for the redelivery
    /// window so a delivery seen by any gateway replica is acted on once.
    pub fn webhook_delivery(&self, delivery_id: &str) -> String {
        format!("{}:webhook:delivery:{delivery_id}", self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_shares_one_hash_tag() {
        let k = KeySchema::new("hubcache");
        for key in [
            k.snapshot("/orgs/Netflix/repos"),
            k.views(),
            k.refresh_stream(),
            k.views_stream(),
            k.fetcher_lease(),
            k.webhook_hints_stream(),
            k.webhook_delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ] {
            assert!(key.starts_with("{hubcache}:"), "{key}");
        }
        assert_eq!(k.snapshot("/"), "{hubcache}:snapshot:/");
    }

    #[test]
    fn prefixes_do_not_collide() {
        assert_ne!(KeySchema::new("a").views(), KeySchema::new("b").views());
    }
}
