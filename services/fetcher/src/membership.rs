//! Sharing the orgs out between fetcher replicas: a membership sorted set and rendezvous
//! hashing.
//!
//! Every replica registers in `{p}:fetchers` (member: its instance id, score: the Unix ms, on
//! Redis's clock, when its registration lapses) and renews that every third of a lease period,
//! in one script that also drops lapsed members and returns the live ones. For each org, every
//! replica ranks the live members by a stable hash of the org and the member
//! ([`rendezvous_weight`]); the highest is the org's *preferred* fetcher. A replica takes an
//! org's lease only when it is preferred, and hands a lease it holds over when another live
//! member is. So the orgs spread evenly (about `orgs / replicas` each), a joining replica takes
//! about its share from the others (and nothing else moves), and when a replica dies its
//! registration and leases lapse within a lease period and each of its orgs goes to that org's
//! next-ranked survivor.
//!
//! Every replica must be configured with the same orgs: an org is polled by its preferred
//! replica only, so one missing from that replica's `GITHUB_ORGS` (mid rolling restart) waits
//! until it leaves.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use hubcache_shared::RedisConnection;
use redis::Script;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long to wait before retrying a heartbeat Redis refused or did not answer.
const RETRY: Duration = Duration::from_millis(500);

/// Margin after a member's lapse before looking again (Redis's clock and ours are compared
/// through one round trip).
const LAPSE_MARGIN: Duration = Duration::from_millis(5);

/// Registers this instance until `now + ARGV[2]` ms (Redis's clock), drops lapsed members and
/// returns `{now, {member, score, ...}}`.
const HEARTBEAT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return {now, redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')}
";

/// The rank of `member` for `org` (higher wins): the first 8 bytes of SHA-256 of the
/// lowercased login, a newline and the instance id. Stable across processes and versions, so
/// every replica computes the same preferred fetcher from the same members.
pub fn rendezvous_weight(org: &str, member: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(org.to_ascii_lowercase().as_bytes());
    hasher.update(b"\n");
    hasher.update(member.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The fetcher among `members` (live instance ids) that polls `org`: the one ranked highest by
/// [`rendezvous_weight`], as every replica computes it (`None` without members).
pub fn preferred_fetcher<'a>(
    org: &str,
    members: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    members
        .into_iter()
        .map(|id| (rendezvous_weight(org, id), id))
        .max()
        .map(|(_, id)| id)
}

/// The live fetchers as last seen, and who this instance is.
#[derive(Debug, Clone)]
pub(crate) struct Members {
    me: String,
    /// Each live member with when its registration lapses (on this process's clock).
    live: Vec<(String, Instant)>,
}

impl Members {
    /// Nobody seen yet (before the first heartbeat: no org is preferred, nothing is taken).
    pub(crate) fn unknown(me: String) -> Self {
        Self {
            me,
            live: Vec::new(),
        }
    }

    /// The members as seen by a heartbeat.
    pub(crate) fn new(me: String, live: Vec<(String, Instant)>) -> Self {
        Self { me, live }
    }

    /// The live member preferred for `org` at `now` (none before the first heartbeat).
    pub(crate) fn preferred(&self, org: &str, now: Instant) -> Option<&str> {
        preferred_fetcher(
            org,
            self.live
                .iter()
                .filter(|(_, lapses_at)| *lapses_at > now)
                .map(|(id, _)| id.as_str()),
        )
    }

    /// Whether this instance is the one preferred for `org`.
    pub(crate) fn prefers_me(&self, org: &str, now: Instant) -> bool {
        self.preferred(org, now) == Some(self.me.as_str())
    }

    /// Whether another live member is preferred for `org` (a holder then hands its lease over).
    pub(crate) fn prefers_another(&self, org: &str, now: Instant) -> bool {
        self.preferred(org, now)
            .is_some_and(|preferred| preferred != self.me)
    }

    /// When the next other member's registration lapses, if any is live.
    fn next_lapse(&self, now: Instant) -> Option<Instant> {
        self.live
            .iter()
            .filter(|(id, lapses_at)| *id != self.me && *lapses_at > now)
            .map(|(_, lapses_at)| *lapses_at)
            .min()
    }

    fn ids(&self) -> impl Iterator<Item = &str> {
        self.live.iter().map(|(id, _)| id.as_str())
    }
}

/// This instance's registration in the membership set.
#[derive(Clone)]
pub(crate) struct Membership {
    key: String,
    instance_id: String,
    lapse: Duration,
    heartbeat: Script,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("key", &self.key)
            .field("instance_id", &self.instance_id)
            .field("lapse", &self.lapse)
            .finish()
    }
}

impl Membership {
    /// Registers `instance_id` in the sorted set `key`, lapsing `lapse` (the lease period)
    /// after the latest heartbeat.
    pub(crate) fn new(key: String, instance_id: String, lapse: Duration) -> Self {
        Self {
            key,
            instance_id,
            lapse,
            heartbeat: Script::new(HEARTBEAT),
        }
    }

    /// How often the registration is renewed: three chances before it would lapse.
    fn renew_every(&self) -> Duration {
        self.lapse / 3
    }

    /// Renews the registration and reads the live members.
    async fn beat(&self, conn: &mut RedisConnection) -> anyhow::Result<Members> {
        let lapse_ms = u64::try_from(self.lapse.as_millis()).unwrap_or(u64::MAX);
        let (redis_now, flat): (i64, Vec<String>) = self
            .heartbeat
            .key(&self.key)
            .arg(&self.instance_id)
            .arg(lapse_ms)
            .invoke_async(conn)
            .await
            .context("heartbeat in the fetcher membership set")?;
        let seen_at = Instant::now();
        let live = flat
            .chunks_exact(2)
            .filter_map(|pair| {
                let lapses_ms = pair[1].parse::<f64>().ok()? as i64;
                let left = u64::try_from(lapses_ms.saturating_sub(redis_now)).ok()?;
                Some((pair[0].clone(), seen_at + Duration::from_millis(left)))
            })
            .collect();
        Ok(Members::new(self.instance_id.clone(), live))
    }

    /// Heartbeats until `shutdown`, publishing the members after each one; looks again as soon
    /// as another member's registration lapses, so its orgs are taken over at once.
    pub(crate) async fn run(
        self,
        mut conn: RedisConnection,
        members: watch::Sender<Members>,
        shutdown: CancellationToken,
    ) {
        loop {
            let wait = match self.beat(&mut conn).await {
                Ok(seen) => {
                    let now = Instant::now();
                    let wait = seen
                        .next_lapse(now)
                        .map(|lapse| lapse + LAPSE_MARGIN - now)
                        .unwrap_or(self.renew_every())
                        .min(self.renew_every());
                    members.send_if_modified(|current| {
                        let changed = !current.ids().eq(seen.ids());
                        if changed {
                            tracing::info!(
                                members = ?seen.ids().collect::<Vec<_>>(),
                                "fetcher membership changed"
                            );
                        }
                        *current = seen;
                        changed
                    });
                    wait
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "fetcher membership heartbeat failed; retrying");
                    RETRY.min(self.renew_every())
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
            }
        }
    }

    /// Leaves the set (graceful shutdown, after the leases were released), so the others
    /// stop counting this instance at their next heartbeat.
    pub(crate) async fn leave(&self, conn: &mut RedisConnection) {
        let left: Result<i64, _> = redis::cmd("ZREM")
            .arg(&self.key)
            .arg(&self.instance_id)
            .query_async(conn)
            .await;
        if let Err(e) = left {
            tracing::warn!(error = %e, "leaving the fetcher membership set failed; the registration lapses on its own");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(me: &str, ids: &[&str], now: Instant) -> Members {
        Members::new(
            me.to_owned(),
            ids.iter()
                .map(|id| ((*id).to_owned(), now + Duration::from_secs(10)))
                .collect(),
        )
    }

    #[test]
    fn every_replica_agrees_and_the_orgs_spread_out() {
        let now = Instant::now();
        let ids = ["fetcher-a", "fetcher-b", "fetcher-c"];
        let orgs: Vec<String> = (0..30).map(|i| format!("org-{i}")).collect();
        let mut counts = [0usize; 3];
        for org in &orgs {
            let picks: Vec<Option<String>> = ids
                .iter()
                .map(|me| {
                    members(me, &ids, now)
                        .preferred(org, now)
                        .map(str::to_owned)
                })
                .collect();
            assert!(picks.windows(2).all(|w| w[0] == w[1]), "{org}: {picks:?}");
            let winner = picks[0].clone().expect("a preferred member");
            counts[ids.iter().position(|id| *id == winner).expect("a member")] += 1;
            let me = members(&winner, &ids, now);
            assert!(me.prefers_me(org, now) && !me.prefers_another(org, now));
        }
        assert!(counts.iter().all(|c| (4..=16).contains(c)), "{counts:?}");
    }

    #[test]
    fn logins_are_case_insensitive_and_only_a_dead_members_orgs_move() {
        let now = Instant::now();
        let all = ["a", "b", "c"];
        let orgs: Vec<String> = (0..30).map(|i| format!("Org{i}")).collect();
        for org in &orgs {
            let before = members("a", &all, now)
                .preferred(org, now)
                .map(str::to_owned);
            assert_eq!(
                members("a", &all, now)
                    .preferred(&org.to_uppercase(), now)
                    .map(str::to_owned),
                before
            );
            let after = members("a", &["a", "b"], now)
                .preferred(org, now)
                .map(str::to_owned);
            if before.as_deref() != Some("c") {
                assert_eq!(after, before, "{org} moved although its fetcher lives");
            }
        }
    }

    #[test]
    fn lapsed_or_unknown_members_are_never_preferred() {
        let now = Instant::now();
        assert_eq!(Members::unknown("a".into()).preferred("x", now), None);
        let lapsed = Members::new(
            "a".into(),
            vec![
                ("a".into(), now + Duration::from_secs(5)),
                ("b".into(), now - Duration::from_millis(1)),
            ],
        );
        assert_eq!(lapsed.preferred("x", now), Some("a"));
        assert_eq!(
            lapsed.next_lapse(now - Duration::from_secs(1)),
            Some(now - Duration::from_millis(1))
        );
        assert_eq!(lapsed.next_lapse(now), None);
    }
}
