//! The Redis key and stream schema: the only place in the workspace that spells a key.
//!
//! Each organisation's pipeline lives under its own hash tag `{PREFIX:org}` ([`OrgKeys`]; the
//! login lowercased; `KEY_PREFIX` defaults to `hubcache`): the scripts that change a snapshot
//! and append its refresh event in one step touch one slot, so they run unchanged on a Redis
//! Cluster, and a cluster spreads the orgs over its masters. The org-independent cached
//! endpoints (the root document `/`) belong to the first configured org. What is shared by all
//! orgs (the hints stream, delivery markers, the fetcher membership) lives under `{PREFIX}`.
//! Two deployments with different prefixes share a Redis without touching each other.
//!
//! | name | type | written by | holds |
//! |---|---|---|---|
//! | `{p:org}:snapshot:{path}` | hash | fetcher | `body`, `meta` (JSON [`SnapshotMeta`](crate::SnapshotMeta)), `version`, `status` (JSON [`SnapshotStatus`](crate::SnapshotStatus): last success and last error) |
//! | `{p:org}:views` | hash | views | `version`, `source_hash` (the content hash of the repos snapshot ranked), one field per view name (JSON entries) |
//! | `{p:org}:stream:refresh` | stream | fetcher | [`RefreshEvent`](crate::RefreshEvent)s of the org's endpoints |
//! | `{p:org}:stream:views` | stream | views | [`ViewsEvent`](crate::ViewsEvent)s of the org |
//! | `{p:org}:lease:fetcher` | string (PX) | fetcher | the instance id of the one fetcher polling the org |
//! | `{p}:fetchers` | sorted set | fetcher | live fetcher instance ids, scored by when their registration lapses (Unix ms) |
//! | `{p}:stream:hints` | stream | gateway | [`WebhookHint`](crate::WebhookHint)s: verified webhook deliveries for the fetcher |
//! | `{p}:webhook:delivery:{guid}` | string (PX) | gateway | a delivery id seen within the redelivery window |
//!
//! The gateways' shared pass-through cache (L2) is the exception to the one hash tag: it is
//! spread over a cluster's slots so that more nodes carry more pass-through traffic. Its keys
//! start with the plain prefix (`p:pt:`, no braces) and carry a per-entry hash tag, the entry's
//! id (hex of a hash of the pass-through cache key, never a credential), so an entry, its lock
//! and its shared result sit in one slot and the scripts that touch them together run on a
//! cluster:
//!
//! | name | type | written by | holds |
//! |---|---|---|---|
//! | `p:pt:{id}:entry` | hash (PX) | gateway | `fresh_until`, `received_at` (Redis clock, ms), `data` (the encoded answer) |
//! | `p:pt:{id}:lock` | string (PX) | gateway | the token of the one gateway fetching the entry from GitHub |
//! | `p:pt:{id}:result` | hash (PX) | gateway | `token`, `payload`: an error or uncacheable answer for that fetch's waiters |
//! | `p:pt:done` | pub/sub channel | gateway | the id of each entry whose fetch finished |
//!
//! Each org's refresh stream is read by the consumer group [`OrgKeys::views_group`]; the gateways
//! read both streams of each org with plain `XREAD` (each gateway sees every event). The fetcher
//! reads the hints stream with plain `XREAD` (only the holder of the named org's lease acts on
//! it).

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
    /// The prefix without braces: the pass-through cache's keys spread over slots and the org
    /// tags start with it.
    prefix: String,
}

/// The names of one organisation's pipeline: its snapshots, views, streams and fetcher lease,
/// all under the org's own hash tag `{p:org}` (the login lowercased, as GitHub logins are
/// case-insensitive), so one org's keys share a Redis Cluster slot (its scripts run there) and
/// a cluster spreads different orgs over its masters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgKeys {
    tag: String,
}

impl KeySchema {
    /// A schema for `prefix` (validated by `CommonSettings::validate`: no braces or spaces).
    pub fn new(prefix: &str) -> Self {
        Self {
            tag: format!("{{{prefix}}}"),
            prefix: prefix.to_owned(),
        }
    }

    /// The names of organisation `org`'s pipeline (any spelling of the login: the tag is
    /// lowercased).
    pub fn org(&self, org: &str) -> OrgKeys {
        OrgKeys {
            tag: format!("{{{}:{}}}", self.prefix, org.to_ascii_lowercase()),
        }
    }

    /// The sorted set of live fetcher replicas (member: instance id, score: the Unix ms its
    /// registration lapses); every replica reads it to share the orgs' leases out evenly.
    pub fn fetcher_members(&self) -> String {
        format!("{}:fetchers", self.tag)
    }

    /// A shared pass-through cache entry (hash), named by its id: a hex digest of the
    /// pass-through cache key (callers pass only hex, so `{id}` is a valid hash tag).
    pub fn passthrough_entry(&self, id: &str) -> String {
        format!("{}:pt:{{{id}}}:entry", self.prefix)
    }

    /// The lock naming the one gateway that fetches entry `id` from GitHub (same slot as the
    /// entry).
    pub fn passthrough_lock(&self, id: &str) -> String {
        format!("{}:pt:{{{id}}}:lock", self.prefix)
    }

    /// The short-lived result (an error or an uncacheable answer) of one fetch of entry `id`,
    /// for the gateways that waited for it (same slot as the entry).
    pub fn passthrough_result(&self, id: &str) -> String {
        format!("{}:pt:{{{id}}}:result", self.prefix)
    }

    /// A paused GitHub rate-limit budget of the pass-through, shared by every gateway replica:
    /// `id` is a hex digest of the credential partition (never the credential), the value says
    /// why, the key's TTL is the time left. Under `p:pt:`, which the gateway may write.
    pub fn passthrough_budget(&self, id: &str) -> String {
        format!("{}:pt:{{{id}}}:budget", self.prefix)
    }

    /// The pub/sub channel on which a finished fetch announces its entry id.
    pub fn passthrough_done_channel(&self) -> String {
        format!("{}:pt:done", self.prefix)
    }

    /// The glob every pass-through cache key and channel matches (`p:pt:*`): what a Redis ACL
    /// user of the gateway may write (`%RW~p:pt:*` and `&p:pt:*`), and nothing else.
    pub fn passthrough_pattern(&self) -> String {
        format!("{}:pt:*", self.prefix)
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

impl OrgKeys {
    /// The snapshot hash of one cached GitHub path (normalised, e.g. `/orgs/Netflix/repos`).
    pub fn snapshot(&self, path: &str) -> String {
        format!("{}:snapshot:{path}", self.tag)
    }

    /// The hash holding every computed view of one snapshot version of the org's repos.
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

    /// The lease that elects the one fetcher allowed to poll this org's endpoints.
    pub fn fetcher_lease(&self) -> String {
        format!("{}:lease:fetcher", self.tag)
    }

    /// The org's hash tag with braces (`{p:org}`): every key of the org starts with it.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_orgs_keys_share_its_own_hash_tag_whatever_the_login_spelling() {
        let k = KeySchema::new("hubcache");
        let org = k.org("Netflix");
        for key in [
            org.snapshot("/orgs/Netflix/repos"),
            org.views(),
            org.refresh_stream(),
            org.views_stream(),
            org.fetcher_lease(),
        ] {
            assert!(key.starts_with("{hubcache:netflix}:"), "{key}");
        }
        assert_eq!(org.tag(), "{hubcache:netflix}");
        assert_eq!(k.org("NETFLIX"), org);
        assert_eq!(org.snapshot("/"), "{hubcache:netflix}:snapshot:/");
        assert_ne!(k.org("a").views(), k.org("b").views());
    }

    #[test]
    fn keys_shared_by_all_orgs_use_the_prefix_tag() {
        let k = KeySchema::new("hubcache");
        for key in [
            k.fetcher_members(),
            k.webhook_hints_stream(),
            k.webhook_delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ] {
            assert!(key.starts_with("{hubcache}:"), "{key}");
        }
    }

    #[test]
    fn passthrough_keys_share_a_per_entry_tag_and_not_the_pipeline_tag() {
        let k = KeySchema::new("hubcache");
        let id = "0123abcd";
        let keys = [
            k.passthrough_entry(id),
            k.passthrough_lock(id),
            k.passthrough_result(id),
            k.passthrough_budget(id),
        ];
        for key in &keys {
            assert!(key.starts_with("hubcache:pt:{0123abcd}:"), "{key}");
            assert!(!key.contains("{hubcache}"), "{key}");
        }
        assert_eq!(k.passthrough_entry(id), "hubcache:pt:{0123abcd}:entry");
        assert_eq!(k.passthrough_done_channel(), "hubcache:pt:done");
        assert_eq!(k.passthrough_pattern(), "hubcache:pt:*");
        assert_ne!(k.passthrough_entry("a"), k.passthrough_entry("b"));
    }

    #[test]
    fn prefixes_do_not_collide() {
        assert_ne!(
            KeySchema::new("a").org("x").views(),
            KeySchema::new("b").org("x").views()
        );
        assert_ne!(
            KeySchema::new("a").webhook_hints_stream(),
            KeySchema::new("b").webhook_hints_stream()
        );
    }
}
