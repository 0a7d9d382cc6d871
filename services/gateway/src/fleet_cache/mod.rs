//! The fleet cache (L2): the pass-through answers every gateway replica shares through Redis, so
//! N replicas cost GitHub what one would.
//!
//! It sits *inside* the L1 [`CoalescingCache`](crate::coalescing_cache::CoalescingCache)'s fetch:
//! an L1 hit never reaches it, and L1 coalescing lets only one task per replica and key get here.
//! That task:
//! 1. registers a local wake-up for the entry id (see `waiters`), then runs `CLAIM` (one round
//!    trip, with the short `l2_timeout_ms`): a fresh entry is an **L2 hit**;
//! 2. otherwise, if it took the lock (`SET NX PX`, `l2_lock_ttl_ms`), it **leads**: one upstream
//!    request (revalidating the expired entry with its ETag when there is one), the lock renewed
//!    every third of its TTL meanwhile; then `STORE` (entry + announcement) or, for an error or an
//!    uncacheable answer, `SHARE` (a short-lived result for the waiters);
//! 3. otherwise it **waits** for the announcement, woken the moment it is published (pub/sub, no
//!    polling interval), or at the latest when the holder's lock would expire, and claims again:
//!    the entry (a fleet-coalesced answer), the holder's shared error, or, if the holder died
//!    and its lock expired, the lock (a **takeover**). A waiter with an expired entry still
//!    within stale-while-revalidate serves it at once instead of waiting.
//!
//! When Redis is down, slow (no answer within `l2_timeout_ms`) or answers an error, the fetch
//! goes straight upstream (L1-only coalescing, as before) and L2 is skipped for
//! [`RETRY_AFTER_FAILURE`]; then it is tried again, so it comes back by itself. A damaged entry
//! is deleted and treated as a miss. Answers larger than `l2_max_entry_bytes` stay L1-only.

mod budget;
mod codec;
mod protocol;
mod stats;
mod waiters;

pub(crate) use codec::{Reader, Writer};
pub(crate) use stats::{FLEET_METRIC, FleetStats};

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures::StreamExt as _;
use hubcache_shared::{KeySchema, RedisConnection, RedisConnector};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::coalescing_cache::{Fetched, Weigh};
pub(crate) use budget::SharedPause;
use protocol::{Claim, EntryKeys, ExpiredEntry, Scripts};
use stats::{Counters, count};
use waiters::Waiters;

/// After a Redis failure, L2 is skipped (fetches go straight upstream) for this long.
pub(crate) const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// A fresh subscription is opened this often, so the wake-ups follow a moved master.
const RESUBSCRIBE_EVERY: Duration = Duration::from_secs(30);
/// A waiter re-claims at the latest this long after the holder's lock would have expired.
const WAIT_MARGIN: Duration = Duration::from_millis(20);
/// The least time a (background) `STORE` is given, whatever `l2_timeout_ms`.
const STORE_TIMEOUT: Duration = Duration::from_secs(1);
/// A damaged entry is deleted and claimed again at most this many times per fetch.
const MAX_DAMAGED: usize = 2;

/// How the fleet cache obtained a value, for `Cache-Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FleetOrigin {
    /// A fresh L2 entry, read without waiting.
    Hit,
    /// Another replica's fetch, waited for.
    Collapsed,
    /// An expired L2 entry within stale-while-revalidate; another replica revalidates it.
    Stale,
    /// An expired L2 entry within stale-if-error; the upstream failed.
    StaleIfError,
    /// The expired L2 entry, revalidated by this replica with a 304.
    Revalidated,
}

/// A value the fleet cache can keep: its encoding (see [`Writer`], [`Reader`]) and how it
/// records where it came from.
pub(crate) trait FleetValue: Weigh + Clone + Sized + Send + Sync + 'static {
    /// The bytes kept in Redis (framed by [`Writer::finish`]).
    fn encode(&self) -> Vec<u8>;
    /// The value from its bytes; `None` when they are damaged.
    fn decode(frame: &[u8]) -> Option<Self>;
    /// This value as read from L2: how, and how old its upstream answer is.
    fn obtained_from_fleet(self, origin: FleetOrigin, age: Duration) -> Self;
}

/// An upstream failure the fleet cache can share with other replicas' waiters.
pub(crate) trait FleetFailure: Sized + Send + 'static {
    /// The bytes of the shared result (framed by [`Writer::finish`]).
    fn encode(&self) -> Vec<u8>;
    /// The failure from its bytes; `None` when they are damaged.
    fn decode(frame: &[u8]) -> Option<Self>;
}

/// Bounds and timings of the fleet cache.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FleetPolicy {
    /// `l2_max_entry_bytes`: larger answers stay L1-only.
    pub(crate) max_entry_bytes: usize,
    /// `l2_lock_ttl_ms`: how long a dead holder can keep others waiting.
    pub(crate) lock_ttl: Duration,
    /// `l2_timeout_ms`: the longest any L2 command may take before the fetch goes upstream.
    pub(crate) timeout: Duration,
    /// How long after expiry an L2 entry may be served while another replica revalidates it.
    pub(crate) stale_while_revalidate: Duration,
    /// How long after expiry an L2 entry may be served when the upstream fails.
    pub(crate) stale_if_error: Duration,
}

impl FleetPolicy {
    /// How long an entry is kept after it expires (its key TTL is fresh + this).
    fn keep_after_expiry(&self) -> Duration {
        self.stale_while_revalidate
            .max(self.stale_if_error)
            .max(self.lock_ttl)
    }
}

/// The shared pass-through cache. Cheap to clone: clones share one state.
#[derive(Clone)]
pub(crate) struct FleetCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FleetCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetCache")
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

struct Inner {
    keys: KeySchema,
    connector: RedisConnector,
    policy: FleetPolicy,
    scripts: Scripts,
    /// Set by [`FleetCache::run`] once Redis answered.
    connection: ArcSwapOption<RedisConnection>,
    /// L2 is skipped until this instant (ms since `epoch`) after a failure.
    skip_until_ms: AtomicU64,
    epoch: Instant,
    /// Whether the wake-up subscription is live (else waiters rely on the lock's expiry).
    subscribed: AtomicBool,
    waiters: Waiters,
    counters: Counters,
    /// Lock tokens: this process's id and a counter.
    instance: String,
    next_token: AtomicU64,
}

/// A cache key's L2 identity: hex of a hash of its parts (never a credential: the credential
/// part is itself a hash).
pub(crate) fn fleet_id(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"hubcache-passthrough-v1");
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Tag bytes of a shared result.
const SHARED_VALUE: u8 = b'v';
const SHARED_FAILURE: u8 = b'e';

impl FleetCache {
    /// A fleet cache over `connector`'s Redis; inactive until [`FleetCache::run`] connects.
    pub(crate) fn new(connector: RedisConnector, keys: KeySchema, policy: FleetPolicy) -> Self {
        Self {
            inner: Arc::new(Inner {
                keys,
                connector,
                policy,
                scripts: Scripts::default(),
                connection: ArcSwapOption::empty(),
                skip_until_ms: AtomicU64::new(0),
                epoch: Instant::now(),
                subscribed: AtomicBool::new(false),
                waiters: Waiters::default(),
                counters: Counters::default(),
                instance: hubcache_shared::instance_id(),
                next_token: AtomicU64::new(0),
            }),
        }
    }

    /// Connects (retrying each second) and then keeps the wake-up subscription open until
    /// `shutdown`, resubscribing after any loss and every [`RESUBSCRIBE_EVERY`].
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let inner = &self.inner;
        let Some(connection) = inner.connector.shared_with_retry(&shutdown).await else {
            return;
        };
        inner.connection.store(Some(Arc::new(connection)));
        let channel = inner.keys.passthrough_done_channel();
        loop {
            let subscription = tokio::select! {
                () = shutdown.cancelled() => return,
                subscribed = inner.connector.subscribe(&channel) => subscribed,
            };
            match subscription {
                Ok(mut messages) => {
                    inner.subscribed.store(true, Ordering::Release);
                    let renew_at = tokio::time::sleep(RESUBSCRIBE_EVERY);
                    tokio::pin!(renew_at);
                    loop {
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = &mut renew_at => break,
                            message = messages.next() => match message {
                                Some(id) => inner.waiters.wake(&id),
                                None => {
                                    inner.subscribed.store(false, Ordering::Release);
                                    break;
                                }
                            },
                        }
                    }
                }
                Err(e) => {
                    inner.subscribed.store(false, Ordering::Release);
                    tracing::debug!(error = %format!("{e:#}"), "fleet cache wake-ups unavailable; retrying in 1s");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(RETRY_AFTER_FAILURE) => {}
                    }
                }
            }
        }
    }

    /// The connection, unless L2 is unavailable right now.
    fn connection(&self) -> Option<RedisConnection> {
        let inner = &self.inner;
        let now_ms = u64::try_from(inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        if now_ms < inner.skip_until_ms.load(Ordering::Relaxed) {
            return None;
        }
        inner.connection.load().as_deref().cloned()
    }

    /// Marks L2 unavailable for [`RETRY_AFTER_FAILURE`].
    fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        let inner = &self.inner;
        let until = inner.epoch.elapsed() + RETRY_AFTER_FAILURE;
        inner.skip_until_ms.store(
            u64::try_from(until.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        count(&self.inner.counters.unavailable, "unavailable");
        tracing::warn!(error = %error, "fleet cache {what} failed; L1 only for {RETRY_AFTER_FAILURE:?}");
    }

    /// Runs one L2 command on a request's path within the policy's timeout; a failure marks L2
    /// unavailable.
    async fn bounded<T>(
        &self,
        what: &str,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        self.bounded_by(self.inner.policy.timeout, what, command)
            .await
    }

    /// Runs one L2 command within `timeout`; a failure marks L2 unavailable.
    async fn bounded_by<T>(
        &self,
        timeout: Duration,
        what: &str,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        match tokio::time::timeout(timeout, command).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                self.failed(what, &e);
                None
            }
            Err(_) => {
                self.failed(what, &format!("no answer within {timeout:?}"));
                None
            }
        }
    }

    /// The answer for entry `id`: from L2, from another replica's fetch, or from `upstream` (run
    /// at most once, by the replica holding the lock, or by this one alone when L2 is
    /// unavailable). `previous` is L1's expired value, passed on to `upstream` to revalidate.
    pub(crate) async fn fetch<V, E, F, Fut>(
        &self,
        id: String,
        previous: Option<Arc<V>>,
        upstream: F,
    ) -> Result<Fetched<V>, E>
    where
        V: FleetValue,
        E: FleetFailure,
        F: FnOnce(Option<Arc<V>>) -> Fut,
        Fut: Future<Output = Result<Fetched<V>, E>>,
    {
        let Some(mut conn) = self.connection() else {
            return upstream(previous).await;
        };
        let inner = &self.inner;
        let policy = inner.policy;
        let keys = EntryKeys::new(&inner.keys, id);
        let token = format!(
            "{}:{}",
            inner.instance,
            inner.next_token.fetch_add(1, Ordering::Relaxed)
        );
        let registration = inner.waiters.register(&keys.id);
        let mut awaited: Option<Vec<u8>> = None;
        let mut waited = false;
        let mut damaged = 0;
        let mut stale_seen: Option<ExpiredEntry> = None;
        loop {
            let notified = registration.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let claim = inner.scripts.claim(
                &mut conn,
                &keys,
                &token,
                policy.lock_ttl,
                awaited.as_deref(),
            );
            let Some(claim) = self.bounded("read", claim).await else {
                return upstream(previous).await;
            };
            match claim {
                Claim::Hit { entry, fresh_for } => match V::decode(&entry.data) {
                    Some(value) => {
                        if !waited {
                            count(&self.inner.counters.hit, "hit");
                        }
                        let origin = if waited {
                            FleetOrigin::Collapsed
                        } else {
                            FleetOrigin::Hit
                        };
                        return Ok(Fetched::Store {
                            value: value.obtained_from_fleet(origin, entry.age),
                            ttl: fresh_for,
                        });
                    }
                    None => {
                        count(&self.inner.counters.damaged, "damaged");
                        damaged += 1;
                        let dropped = protocol::drop_entry(&mut conn, &keys);
                        if damaged > MAX_DAMAGED || self.bounded("delete", dropped).await.is_none()
                        {
                            return upstream(previous).await;
                        }
                    }
                },
                Claim::Shared(payload) => {
                    match decode_shared::<V, E>(&payload) {
                        Some(Ok(value)) => return Ok(Fetched::Uncacheable(value)),
                        Some(Err(failure)) => {
                            return match self
                                .stale_if_error(stale_seen.as_ref(), previous.is_none())
                            {
                                Some(value) => Ok(value),
                                None => Err(failure),
                            };
                        }
                        // Damaged: claim afresh (the holder released the lock with it).
                        None => awaited = None,
                    }
                }
                Claim::Lead(expired) => {
                    if waited {
                        count(&self.inner.counters.takeover, "takeover");
                    }
                    count(&self.inner.counters.lead, "lead");
                    return self
                        .lead(keys, token, conn, previous, expired, upstream)
                        .await;
                }
                Claim::Wait {
                    stale,
                    holder,
                    lock_left,
                } => {
                    if !waited {
                        count(&self.inner.counters.waiter, "waiter");
                    }
                    waited = true;
                    if previous.is_none()
                        && let Some(expired) = &stale
                        && expired.expired_for < policy.stale_while_revalidate
                        && let Some(value) = V::decode(&expired.entry.data)
                    {
                        count(&self.inner.counters.stale, "stale");
                        return Ok(Fetched::Store {
                            value: value.obtained_from_fleet(FleetOrigin::Stale, expired.entry.age),
                            ttl: Duration::ZERO,
                        });
                    }
                    stale_seen = stale;
                    awaited = Some(holder);
                    // Without the subscription, the lock's expiry is the only wake-up.
                    let _ = tokio::time::timeout(lock_left + WAIT_MARGIN, notified).await;
                }
            }
        }
    }

    /// This replica holds the lock: fetch upstream (renewing the lock), then store the answer for
    /// the fleet (in a task of its own, so the answer is not delayed by it) or share the error
    /// or uncacheable answer with the fleet's waiters (before answering).
    async fn lead<V, E, F, Fut>(
        &self,
        keys: EntryKeys,
        token: String,
        mut conn: RedisConnection,
        previous: Option<Arc<V>>,
        expired: Option<ExpiredEntry>,
        upstream: F,
    ) -> Result<Fetched<V>, E>
    where
        V: FleetValue,
        E: FleetFailure,
        F: FnOnce(Option<Arc<V>>) -> Fut,
        Fut: Future<Output = Result<Fetched<V>, E>>,
    {
        let policy = self.inner.policy;
        // Revalidate L1's expired value, or else L2's (then a 304 means "L2's value is fresh").
        let fleet_validator = match (&previous, &expired) {
            (None, Some(expired)) => V::decode(&expired.entry.data).map(Arc::new),
            _ => None,
        };
        let validator = previous.clone().or_else(|| fleet_validator.clone());
        let fetch = upstream(validator);
        tokio::pin!(fetch);
        let renew_every = (policy.lock_ttl / 3).max(Duration::from_millis(1));
        let mut renew = tokio::time::interval_at(Instant::now() + renew_every, renew_every);
        let result = loop {
            tokio::select! {
                result = &mut fetch => break result,
                _ = renew.tick() => {
                    let renewed = self.inner.scripts.renew(&mut conn, &keys, &token, policy.lock_ttl);
                    let _ = tokio::time::timeout(policy.timeout, renewed).await;
                }
            }
        };
        let result = match (result, fleet_validator) {
            (Ok(Fetched::NotModified { ttl }), Some(validator)) => Ok(Fetched::Store {
                value: V::clone(&validator)
                    .obtained_from_fleet(FleetOrigin::Revalidated, Duration::ZERO),
                ttl,
            }),
            (result, _) => result,
        };
        // What the fleet gets: the entry to store, or the result for the waiters.
        let outcome = match &result {
            Ok(Fetched::Store { value, ttl }) => Outcome::Store(value.clone(), *ttl),
            Ok(Fetched::NotModified { ttl }) => match &previous {
                Some(value) => Outcome::Store(V::clone(value), *ttl),
                None => Outcome::Release,
            },
            Ok(Fetched::Uncacheable(value)) if value.weight() <= policy.max_entry_bytes => {
                Outcome::Share(SHARED_VALUE, value.encode())
            }
            Ok(Fetched::Uncacheable(_)) => Outcome::Release,
            Err(failure) => Outcome::Share(SHARED_FAILURE, failure.encode()),
        };
        if let Outcome::Store(..) = outcome {
            // Off the answer's path: until it lands, others wait on the lock and are woken.
            let fleet = self.clone();
            tokio::spawn(async move { fleet.publish(keys, token, conn, outcome).await });
        } else {
            // Before answering: a request that comes after this answer must not take the
            // shared error for its own (it would, finding the lock still held and waiting).
            self.clone().publish(keys, token, conn, outcome).await;
        }
        match result {
            Err(failure) => match self.stale_if_error(expired.as_ref(), previous.is_none()) {
                Some(value) => Ok(value),
                None => Err(failure),
            },
            result => result,
        }
    }

    /// Stores or shares a leader's outcome and wakes the waiters.
    async fn publish<V: FleetValue>(
        self,
        keys: EntryKeys,
        token: String,
        mut conn: RedisConnection,
        outcome: Outcome<V>,
    ) {
        let inner = &self.inner;
        let policy = inner.policy;
        match outcome {
            Outcome::Store(value, ttl) => {
                let data = (value.weight() <= policy.max_entry_bytes).then(|| value.encode());
                match data.filter(|data| data.len() <= policy.max_entry_bytes) {
                    Some(data) => {
                        let keep = policy.keep_after_expiry();
                        let store = inner
                            .scripts
                            .store(&mut conn, &keys, &token, ttl, keep, &data);
                        // Off the answer's path: a slow write is waited for longer than a read
                        // (dropping it would leave the waiters to the lock's expiry).
                        let bound = policy.timeout.max(STORE_TIMEOUT);
                        self.bounded_by(bound, "write", store).await;
                    }
                    None => {
                        count(&self.inner.counters.too_large, "too_large");
                        let release = inner.scripts.release(&mut conn, &keys, &token);
                        self.bounded("release", release).await;
                    }
                }
            }
            Outcome::Share(tag, frame) => {
                let mut writer = Writer::with_capacity(frame.len() + 8);
                writer.u8(tag);
                writer.bytes(&frame);
                let payload = writer.finish();
                let share =
                    inner
                        .scripts
                        .share(&mut conn, &keys, &token, &payload, policy.lock_ttl);
                self.bounded("write", share).await;
            }
            Outcome::Release => {
                let release = inner.scripts.release(&mut conn, &keys, &token);
                self.bounded("release", release).await;
            }
        }
    }

    /// An expired L2 entry served because the upstream failed, if it is recent enough and L1
    /// has no value of its own (L1 applies its own stale-if-error to those).
    fn stale_if_error<V: FleetValue>(
        &self,
        expired: Option<&ExpiredEntry>,
        no_l1_value: bool,
    ) -> Option<Fetched<V>> {
        let expired = expired.filter(|_| no_l1_value)?;
        if expired.expired_for >= self.inner.policy.stale_if_error {
            return None;
        }
        let value = V::decode(&expired.entry.data)?;
        count(&self.inner.counters.stale, "stale");
        Some(Fetched::Store {
            value: value.obtained_from_fleet(FleetOrigin::StaleIfError, expired.entry.age),
            ttl: Duration::ZERO,
        })
    }

    /// This replica's counters and connection state.
    pub(crate) fn stats(&self) -> FleetStats {
        let inner = &self.inner;
        let c = &inner.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FleetStats {
            connected: inner.connection.load().is_some(),
            subscribed: inner.subscribed.load(Ordering::Acquire),
            hit: load(&c.hit),
            lead: load(&c.lead),
            waiter: load(&c.waiter),
            takeover: load(&c.takeover),
            stale: load(&c.stale),
            unavailable: load(&c.unavailable),
            damaged: load(&c.damaged),
            too_large: load(&c.too_large),
        }
    }
}

/// What a leader leaves in Redis for the fleet.
enum Outcome<V> {
    Store(V, Duration),
    Share(u8, Vec<u8>),
    Release,
}

fn decode_shared<V: FleetValue, E: FleetFailure>(payload: &[u8]) -> Option<Result<V, E>> {
    let mut reader = Reader::open(payload)?;
    let tag = reader.u8()?;
    let frame = reader.bytes()?;
    reader.end()?;
    match tag {
        SHARED_VALUE => V::decode(frame).map(Ok),
        SHARED_FAILURE => E::decode(frame).map(Err),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_and_depend_on_every_part_and_its_boundaries() {
        let a = fleet_id(&[b"server", b"/repos/a/b", b"json"]);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, fleet_id(&[b"server", b"/repos/a/b", b"json"]));
        assert_ne!(a, fleet_id(&[b"server", b"/repos/a/c", b"json"]));
        assert_ne!(
            fleet_id(&[b"ab", b"c"]),
            fleet_id(&[b"a", b"bc"]),
            "parts are length-prefixed"
        );
    }
}
