//! Sharing the orgs out between fetcher replicas: a membership sorted set and rendezvous
//! hashing with bounded load.
//!
//! Every replica registers in `{p}:fetchers` (member: its instance id, score: the Unix ms, on
//! Redis's clock, when its registration lapses) and renews that every third of a lease period,
//! in one script that also drops lapsed members and returns the live ones. Every replica then
//! computes the same assignment of the configured orgs to the live members
//! ([`preferred_fetcher`]): the orgs, taken in a fixed order, each go to the member ranked
//! highest by a stable hash of the org and the member ([`rendezvous_weight`]) among those
//! holding fewer than their share (`orgs / replicas`, rounded up). So the orgs spread evenly,
//! every replica within one org of the others (plain rendezvous hashing left 30 orgs on 3
//! replicas at 5, 12 and 13). A replica takes an org's lease only when the org is assigned to
//! it, and hands a lease it holds over when the org is assigned to another live member: a
//! joining replica takes its share, and when a replica dies its registration and leases lapse
//! within a lease period and its orgs go to the survivors. Most orgs stay where they are; the
//! few whose first choice filled up or freed up move with a graceful hand-over.
//!
//! Every replica must be configured with the same orgs: the assignment is computed from them,
//! and an org missing from its assigned replica's `GITHUB_ORGS` (mid rolling restart) waits until
//! that replica restarts with it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hubcache_shared::RedisConnection;
use redis::Script;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::poll_metrics::MEMBERS_METRIC;

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

/// The fetcher among `members` (live instance ids) that polls `org`, every replica being
/// configured with `orgs`: see [`assign_orgs`]. `None` without members, or for an org not in
/// `orgs`.
pub fn preferred_fetcher<'a>(
    org: &str,
    orgs: &[impl AsRef<str>],
    members: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let members: Vec<&str> = members.into_iter().collect();
    assign_orgs(orgs, &members)
        .get(&org.to_ascii_lowercase())
        .copied()
}

/// Every org of `orgs` (by lowercased login) with the member of `members` that polls it:
/// rendezvous hashing with bounded load. The orgs are taken in the order of their lowercased
/// logins; each goes to the highest-ranked member ([`rendezvous_weight`]) that holds fewer than
/// `ceil(orgs / members)`. The same inputs give the same assignment in every replica, whatever
/// the order of `members`.
pub fn assign_orgs<'a>(orgs: &[impl AsRef<str>], members: &[&'a str]) -> HashMap<String, &'a str> {
    let mut members: Vec<&'a str> = members.to_vec();
    members.sort_unstable();
    members.dedup();
    let mut logins: Vec<String> = orgs
        .iter()
        .map(|org| org.as_ref().to_ascii_lowercase())
        .collect();
    logins.sort_unstable();
    logins.dedup();
    let mut assignment = HashMap::with_capacity(logins.len());
    if members.is_empty() {
        return assignment;
    }
    let share = logins.len().div_ceil(members.len());
    let mut held = vec![0usize; members.len()];
    let mut ranked: Vec<(u64, usize)> = Vec::with_capacity(members.len());
    for login in logins {
        ranked.clear();
        ranked.extend(
            members
                .iter()
                .enumerate()
                .map(|(index, id)| (rendezvous_weight(&login, id), index)),
        );
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        // `share` times the member count covers every org, so some member has room.
        if let Some(&(_, index)) = ranked.iter().find(|(_, index)| held[*index] < share) {
            held[index] += 1;
            assignment.insert(login, members[index]);
        }
    }
    assignment
}

/// An assignment computed for one set of live members (see [`Members::preferred`]).
#[derive(Debug)]
struct Assignment {
    members: Vec<String>,
    owner: HashMap<String, String>,
}

/// The live fetchers as last seen, who this instance is, and the orgs every replica shares out.
#[derive(Debug, Clone)]
pub(crate) struct Members {
    me: String,
    /// Each live member with when its registration lapses (on this process's clock).
    live: Vec<(String, Instant)>,
    /// The configured orgs (the same in every replica).
    orgs: Arc<[String]>,
    /// The assignment for the members live at the last look, shared by the clones every org's
    /// loop reads (computed once per change of the live members, not once per org).
    assignment: Arc<parking_lot::Mutex<Option<Arc<Assignment>>>>,
}

impl Members {
    /// Nobody seen yet (before the first heartbeat: no org is preferred, nothing is taken).
    pub(crate) fn unknown(me: String, orgs: Arc<[String]>) -> Self {
        Self::new(me, Vec::new(), orgs)
    }

    /// The members as seen by a heartbeat.
    pub(crate) fn new(me: String, live: Vec<(String, Instant)>, orgs: Arc<[String]>) -> Self {
        Self {
            me,
            live,
            orgs,
            assignment: Arc::default(),
        }
    }

    /// The live member assigned `org` at `now` (none before the first heartbeat).
    pub(crate) fn preferred(&self, org: &str, now: Instant) -> Option<&str> {
        let mut live: Vec<&str> = self
            .live
            .iter()
            .filter(|(_, lapses_at)| *lapses_at > now)
            .map(|(id, _)| id.as_str())
            .collect();
        live.sort_unstable();
        let assignment = {
            let mut cached = self.assignment.lock();
            match cached.as_ref() {
                Some(assignment)
                    if assignment
                        .members
                        .iter()
                        .map(String::as_str)
                        .eq(live.iter().copied()) =>
                {
                    Arc::clone(assignment)
                }
                _ => {
                    let owner = assign_orgs(&self.orgs, &live)
                        .into_iter()
                        .map(|(org, id)| (org, id.to_owned()))
                        .collect();
                    let fresh = Arc::new(Assignment {
                        members: live.iter().map(|id| (*id).to_owned()).collect(),
                        owner,
                    });
                    *cached = Some(Arc::clone(&fresh));
                    fresh
                }
            }
        };
        let owner = assignment.owner.get(&org.to_ascii_lowercase())?;
        live.into_iter().find(|id| id == owner)
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
    orgs: Arc<[String]>,
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
    pub(crate) fn new(
        key: String,
        instance_id: String,
        lapse: Duration,
        orgs: Arc<[String]>,
    ) -> Self {
        Self {
            key,
            instance_id,
            lapse,
            orgs,
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
        Ok(Members::new(
            self.instance_id.clone(),
            live,
            Arc::clone(&self.orgs),
        ))
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
                    metrics::gauge!(MEMBERS_METRIC).set(seen.live.len() as f64);
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

    fn orgs(names: &[String]) -> Arc<[String]> {
        names.iter().cloned().collect()
    }

    fn members(me: &str, ids: &[&str], orgs: &Arc<[String]>, now: Instant) -> Members {
        Members::new(
            me.to_owned(),
            ids.iter()
                .map(|id| ((*id).to_owned(), now + Duration::from_secs(10)))
                .collect(),
            Arc::clone(orgs),
        )
    }

    fn owners(ids: &[&str], all: &Arc<[String]>, now: Instant) -> Vec<String> {
        all.iter()
            .map(|org| {
                members(ids[0], ids, all, now)
                    .preferred(org, now)
                    .expect("an owner")
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn every_replica_agrees_and_each_takes_an_equal_share() {
        let now = Instant::now();
        let ids = ["fetcher-a", "fetcher-b", "fetcher-c"];
        let all = orgs(&(0..30).map(|i| format!("org-{i}")).collect::<Vec<_>>());
        let mut counts = [0usize; 3];
        for org in all.iter() {
            let picks: Vec<Option<String>> = ids
                .iter()
                .map(|me| {
                    // Each replica sees the members in its own order.
                    let mut seen = ids;
                    seen.rotate_left(ids.iter().position(|id| id == me).expect("a member"));
                    members(me, &seen, &all, now)
                        .preferred(org, now)
                        .map(str::to_owned)
                })
                .collect();
            assert!(picks.windows(2).all(|w| w[0] == w[1]), "{org}: {picks:?}");
            let winner = picks[0].clone().expect("a preferred member");
            counts[ids.iter().position(|id| *id == winner).expect("a member")] += 1;
            let me = members(&winner, &ids, &all, now);
            assert!(me.prefers_me(org, now) && !me.prefers_another(org, now));
        }
        assert_eq!(counts, [10, 10, 10]);
        // Uneven counts: within one org of each other.
        let seven = orgs(&(0..7).map(|i| format!("org-{i}")).collect::<Vec<_>>());
        let mut counts = HashMap::new();
        for owner in owners(&ids, &seven, now) {
            *counts.entry(owner).or_insert(0) += 1;
        }
        let mut counts: Vec<usize> = counts.into_values().collect();
        counts.sort_unstable();
        assert_eq!(counts, [2, 2, 3]);
    }

    #[test]
    fn logins_are_case_insensitive_and_a_dead_members_orgs_go_to_the_survivors() {
        let now = Instant::now();
        let all = orgs(&(0..30).map(|i| format!("Org{i}")).collect::<Vec<_>>());
        let before = owners(&["a", "b", "c"], &all, now);
        for (org, owner) in all.iter().zip(&before) {
            assert_eq!(
                members("a", &["a", "b", "c"], &all, now).preferred(&org.to_uppercase(), now),
                Some(owner.as_str())
            );
        }
        let after = owners(&["a", "b"], &all, now);
        assert_eq!(after.iter().filter(|o| *o == "a").count(), 15);
        assert_eq!(after.iter().filter(|o| *o == "b").count(), 15);
        // The survivors keep most of their orgs: only those whose first choice filled up or
        // freed up move besides the dead one's ten.
        let kept = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| *b != "c" && b == a)
            .count();
        assert!(kept >= 15, "only {kept} of the survivors' 20 orgs stayed");
    }

    #[test]
    fn lapsed_or_unknown_members_are_never_preferred() {
        let now = Instant::now();
        let x = orgs(&["x".to_owned()]);
        assert_eq!(
            Members::unknown("a".into(), Arc::clone(&x)).preferred("x", now),
            None
        );
        let lapsed = Members::new(
            "a".into(),
            vec![
                ("a".into(), now + Duration::from_secs(5)),
                ("b".into(), now - Duration::from_millis(1)),
            ],
            Arc::clone(&x),
        );
        assert_eq!(lapsed.preferred("x", now), Some("a"));
        assert_eq!(lapsed.preferred("not-configured", now), None);
        assert_eq!(
            lapsed.next_lapse(now - Duration::from_secs(1)),
            Some(now - Duration::from_millis(1))
        );
        assert_eq!(lapsed.next_lapse(now), None);
    }
}
