//! The pass-through's in-process cache: one upstream request per key however many clients ask,
//! bounded by entries and bytes, with fresh/stale windows measured from when the answer arrived.
//!
//! It knows nothing about HTTP: keys, values and the fetch are the caller's, so the rules below
//! are unit-tested here without a server.
//!
//! # How a lookup goes
//! - **Fresh entry** → served (`hit`). A hit only moves the entry to the front of the LRU list;
//!   it never extends its lifetime: freshness runs from when the upstream answer was received
//!   (the seed's `gateway_cache` reset its soft TTL on every hit, so a hot key never refreshed).
//! - **Stale within `stale_while_revalidate`** → served at once, and one background refresh is
//!   started unless one is already in flight for the key.
//! - **Otherwise** → the caller joins the key's in-flight fetch, or starts it. The fetch runs in a
//!   spawned task with the upstream timeout inside it, so it completes (and is stored) even if
//!   every caller goes away; callers await a [`Shared`] handle on that task and are woken when it
//!   finishes (no polling). Waiters that joined are counted as `coalesced`, never as hits.
//! - **The fetch failed** (error or timeout) → every waiter gets the same error, nothing is cached,
//!   and a caller whose key still has an entry within `stale_if_error` past expiry gets that entry.
//! - **Too many fetches in flight** (`max_fetches`, shared with the pass-through's uncached
//!   forwards) → a caller that would start a new fetch is refused at once with
//!   [`FetchError::Overloaded`] (or gets its entry within `stale_if_error`), and a
//!   stale-while-revalidate refresh is skipped: no queue of upstream requests grows behind a slow
//!   or overwhelmed upstream, and joining a fetch already in flight is always allowed.
//!
//! # Why `lru` + a mutex rather than moka
//! moka 0.12 has one capacity (entries *or* weighted bytes), admits new keys through TinyLFU by
//! default, applies evictions asynchronously (bounds are approximate until pending tasks run), and
//! its `get_with` re-runs a fetch in a waiter when the leading caller is dropped. We need both an
//! entry bound and a byte bound enforced exactly, strict recency eviction, atomic "replace the
//! value and its accounting" and an in-flight map that is checked in the same critical section as
//! the entries (otherwise a waiter can miss both a just-finished fetch and its stored entry and
//! start a second fetch). A `lru::LruCache` plus a byte counter and the in-flight map under one
//! `parking_lot::Mutex` gives all of that in a few lines; the lock is held only for hash-map work,
//! never across an `.await`.
//!
//! Expired entries are kept (until evicted by pressure) because their validator lets the next
//! fetch revalidate with `If-None-Match` at no rate-limit cost.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use lru::LruCache;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub use contract::{CachePolicy, FetchError, Fetched, Lookup, Weigh};
pub(crate) use contract::{CacheStats, FetchKind, Outcome};

mod contract;

/// A per-key coalescing, bounded LRU cache with fresh, stale-while-revalidate and
/// stale-if-error windows. Cheap to clone: clones share one cache.
///
/// `pub` (with [`CoalescingCache::new`] and [`CoalescingCache::get_or_fetch`]) only for the benches, through [`crate::hot_paths`].
pub struct CoalescingCache<K, V, E> {
    state: Arc<State<K, V, E>>,
}

impl<K, V, E> Clone for CoalescingCache<K, V, E> {
    fn clone(&self) -> Self {
        Self {
            state: Arc::clone(&self.state),
        }
    }
}

impl<K, V, E> fmt::Debug for CoalescingCache<K, V, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoalescingCache")
            .field("policy", &self.state.policy)
            .finish_non_exhaustive()
    }
}

struct State<K, V, E> {
    policy: CachePolicy,
    /// One permit per running fetch ([`CachePolicy::max_fetches`]); never waited for.
    fetch_permits: Arc<Semaphore>,
    inner: Mutex<Inner<K, V, E>>,
    counters: Counters,
}

/// `hubcache_passthrough_cache_lookups_total{result}`: pass-through cache lookups by result
/// (`hit`, `miss`, `coalesced`, `stale`, `revalidated`, `fetch_error`, `overloaded`; the
/// pass-through adds `bypass`).
pub(crate) const LOOKUPS_METRIC: &str = "hubcache_passthrough_cache_lookups_total";
/// `hubcache_passthrough_cache_evictions_total`: entries evicted to respect the bounds.
pub(crate) const EVICTIONS_METRIC: &str = "hubcache_passthrough_cache_evictions_total";

/// Counts one lookup result, both in the cache's own counters and in the process's metrics.
fn count(counter: &AtomicU64, result: &'static str) {
    counter.fetch_add(1, Ordering::Relaxed);
    metrics::counter!(LOOKUPS_METRIC, "result" => result).increment(1);
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    coalesced: AtomicU64,
    stale: AtomicU64,
    revalidated: AtomicU64,
    fetch_errors: AtomicU64,
    evictions: AtomicU64,
    overloaded: AtomicU64,
}

struct Inner<K, V, E> {
    entries: LruCache<K, Entry<V>>,
    bytes: usize,
    in_flight: HashMap<K, InFlight<V, E>>,
    next_flight: u64,
}

struct Entry<V> {
    value: Arc<V>,
    received_at: Instant,
    fresh_until: Instant,
    weight: usize,
}

impl<V> Clone for Entry<V> {
    fn clone(&self) -> Self {
        Self {
            value: Arc::clone(&self.value),
            received_at: self.received_at,
            fresh_until: self.fresh_until,
            weight: self.weight,
        }
    }
}

impl<K, V, E> CoalescingCache<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Weigh + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// An empty cache with `policy`.
    ///
    /// `pub` only for the benches, through [`crate::hot_paths`].
    pub fn new(policy: CachePolicy) -> Self {
        Self {
            state: Arc::new(State {
                policy,
                fetch_permits: Arc::new(Semaphore::new(policy.max_fetches)),
                inner: Mutex::new(Inner {
                    entries: LruCache::unbounded(),
                    bytes: 0,
                    in_flight: HashMap::new(),
                    next_flight: 0,
                }),
                counters: Counters::default(),
            }),
        }
    }

    /// The value for `key`: cached, or from one shared run of `fetch` per key.
    ///
    /// `fetch` receives the key's previous (possibly expired) value, if any, so it can revalidate
    /// it; it runs in a spawned task only if this call starts the key's fetch, and is dropped
    /// unused otherwise. Dropping the returned future does not cancel the fetch.
    ///
    /// `pub` only for the benches, through [`crate::hot_paths`].
    pub async fn get_or_fetch<F, Fut>(
        &self,
        key: K,
        fetch: F,
    ) -> Result<Lookup<V>, Arc<FetchError<E>>>
    where
        F: FnOnce(Option<Arc<V>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Fetched<V>, E>> + Send + 'static,
    {
        let state = &self.state;
        let now = Instant::now();
        let (answer, led) = {
            let mut inner = state.inner.lock();
            if let Some(entry) = inner.entries.get(&key).cloned() {
                if now < entry.fresh_until {
                    count(&state.counters.hits, "hit");
                    return Ok(entry.lookup(Outcome::Hit, now));
                }
                if now < entry.fresh_until + state.policy.stale_while_revalidate {
                    if !inner.in_flight.contains_key(&key)
                        && let Some(permit) = self.try_reserve_fetch()
                    {
                        let previous = Some(Arc::clone(&entry.value));
                        // Nobody awaits this refresh: its task stores the answer by itself.
                        drop(self.start_flight(&mut inner, key, fetch, previous, permit));
                    }
                    count(&state.counters.stale, "stale");
                    return Ok(entry.lookup(Outcome::StaleWhileRevalidate, now));
                }
            }
            match inner.in_flight.get(&key) {
                Some(flight) => (flight.answer.clone(), false),
                None => {
                    let Some(permit) = self.try_reserve_fetch() else {
                        return match inner.entries.get(&key) {
                            Some(entry)
                                if now < entry.fresh_until + state.policy.stale_if_error =>
                            {
                                count(&state.counters.stale, "stale");
                                Ok(entry.lookup(Outcome::StaleIfError, now))
                            }
                            _ => {
                                count(&state.counters.overloaded, "overloaded");
                                Err(Arc::new(FetchError::Overloaded(state.policy.max_fetches)))
                            }
                        };
                    };
                    let previous = inner.entries.peek(&key).map(|e| Arc::clone(&e.value));
                    let answer =
                        self.start_flight(&mut inner, key.clone(), fetch, previous, permit);
                    (answer, true)
                }
            }
        };
        if led {
            count(&state.counters.misses, "miss");
        } else {
            count(&state.counters.coalesced, "coalesced");
        }

        match answer.await {
            Ok(flown) => Ok(Lookup {
                value: flown.value,
                outcome: if led {
                    Outcome::Fetched(flown.kind)
                } else {
                    Outcome::Collapsed(flown.kind)
                },
                age: Instant::now().saturating_duration_since(flown.received_at),
            }),
            Err(error) => {
                let now = Instant::now();
                let mut inner = state.inner.lock();
                match inner.entries.get(&key) {
                    Some(entry) if now < entry.fresh_until + state.policy.stale_if_error => {
                        count(&state.counters.stale, "stale");
                        Ok(entry.lookup(Outcome::StaleIfError, now))
                    }
                    _ => Err(error),
                }
            }
        }
    }

    /// One of the [`CachePolicy::max_fetches`] fetch slots, held until the permit is dropped;
    /// `None` when all are taken. The pass-through takes one for each request it forwards
    /// without the cache, so both kinds of upstream request share one bound.
    pub(crate) fn try_reserve_fetch(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.state.fetch_permits)
            .try_acquire_owned()
            .ok()
    }

    /// Refuses one request for lack of a fetch slot: counted like a refused lookup.
    pub(crate) fn count_overloaded(&self) -> FetchError<E> {
        count(&self.state.counters.overloaded, "overloaded");
        FetchError::Overloaded(self.state.policy.max_fetches)
    }

    /// Spawns the fetch task for `key` and registers it as the key's flight. Called with the lock
    /// held, so the task's completion (which takes the lock) cannot overtake the registration.
    /// The task holds `permit` (its fetch slot) until it finishes.
    fn start_flight<F, Fut>(
        &self,
        inner: &mut Inner<K, V, E>,
        key: K,
        fetch: F,
        previous: Option<Arc<V>>,
        permit: OwnedSemaphorePermit,
    ) -> Shared<BoxFuture<'static, FlightAnswer<V, E>>>
    where
        F: FnOnce(Option<Arc<V>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Fetched<V>, E>> + Send + 'static,
    {
        let id = inner.next_flight;
        inner.next_flight += 1;
        let guard = FlightGuard {
            state: Arc::clone(&self.state),
            key: Some(key.clone()),
            id,
        };
        let timeout = self.state.policy.fetch_timeout;
        let task = tokio::spawn(async move {
            let result = match tokio::time::timeout(timeout, fetch(previous.clone())).await {
                Ok(Ok(fetched)) => Ok(fetched),
                Ok(Err(error)) => Err(FetchError::Failed(error)),
                Err(_) => Err(FetchError::TimedOut(timeout)),
            };
            drop(permit);
            guard.complete(previous, result)
        });
        let answer = async move {
            task.await
                .unwrap_or_else(|_| Err(Arc::new(FetchError::Aborted)))
        }
        .boxed()
        .shared();
        inner.in_flight.insert(
            key,
            InFlight {
                id,
                answer: answer.clone(),
            },
        );
        answer
    }

    /// Sizes and counters.
    pub(crate) fn stats(&self) -> CacheStats {
        let (entries, bytes) = {
            let inner = self.state.inner.lock();
            (inner.entries.len(), inner.bytes)
        };
        let c = &self.state.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CacheStats {
            entries,
            bytes,
            hits: load(&c.hits),
            misses: load(&c.misses),
            coalesced: load(&c.coalesced),
            stale: load(&c.stale),
            revalidated: load(&c.revalidated),
            fetch_errors: load(&c.fetch_errors),
            evictions: load(&c.evictions),
            overloaded: load(&c.overloaded),
        }
    }
}

impl<V> Entry<V> {
    fn lookup(&self, outcome: Outcome, now: Instant) -> Lookup<V> {
        Lookup {
            value: Arc::clone(&self.value),
            outcome,
            age: now.saturating_duration_since(self.received_at),
        }
    }
}

/// The answer of a finished flight, as every waiter sees it.
type FlightAnswer<V, E> = Result<Flown<V>, Arc<FetchError<E>>>;

struct InFlight<V, E> {
    id: u64,
    answer: Shared<BoxFuture<'static, FlightAnswer<V, E>>>,
}

struct Flown<V> {
    value: Arc<V>,
    received_at: Instant,
    kind: FetchKind,
}

impl<V> Clone for Flown<V> {
    fn clone(&self) -> Self {
        Self {
            value: Arc::clone(&self.value),
            received_at: self.received_at,
            kind: self.kind,
        }
    }
}

/// Owned by a fetch task: stores its answer and unregisters the flight, or, if the task panics
/// or is cancelled before that, still unregisters it on drop so the key is never stuck.
struct FlightGuard<K: Hash + Eq, V, E> {
    state: Arc<State<K, V, E>>,
    key: Option<K>,
    id: u64,
}

impl<K: Hash + Eq, V: Weigh, E> FlightGuard<K, V, E> {
    fn complete(
        mut self,
        previous: Option<Arc<V>>,
        result: Result<Fetched<V>, FetchError<E>>,
    ) -> FlightAnswer<V, E> {
        let Some(key) = self.key.take() else {
            return Err(Arc::new(FetchError::Aborted));
        };
        let state = &self.state;
        let now = Instant::now();
        let mut inner = state.inner.lock();
        if inner.in_flight.get(&key).is_some_and(|f| f.id == self.id) {
            inner.in_flight.remove(&key);
        }
        let fresh = |value: Arc<V>, ttl: Duration| {
            let weight = value.weight();
            Entry {
                value,
                received_at: now,
                fresh_until: now + ttl,
                weight,
            }
        };
        let (value, kind) = match result {
            Ok(Fetched::Store { value, ttl }) => {
                let value = Arc::new(value);
                let stored = inner.store(key, fresh(Arc::clone(&value), ttl), state);
                (
                    value,
                    FetchKind {
                        stored,
                        revalidated: false,
                    },
                )
            }
            Ok(Fetched::NotModified { ttl }) => match previous {
                Some(value) => {
                    count(&state.counters.revalidated, "revalidated");
                    let stored = inner.store(key, fresh(Arc::clone(&value), ttl), state);
                    (
                        value,
                        FetchKind {
                            stored,
                            revalidated: true,
                        },
                    )
                }
                None => {
                    count(&state.counters.fetch_errors, "fetch_error");
                    return Err(Arc::new(FetchError::NotModifiedWithoutEntry));
                }
            },
            Ok(Fetched::Uncacheable(value)) => {
                inner.remove(&key);
                let kind = FetchKind {
                    stored: false,
                    revalidated: false,
                };
                (Arc::new(value), kind)
            }
            Err(error) => {
                count(&state.counters.fetch_errors, "fetch_error");
                return Err(Arc::new(error));
            }
        };
        Ok(Flown {
            value,
            received_at: now,
            kind,
        })
    }
}

impl<K: Hash + Eq, V, E> Drop for FlightGuard<K, V, E> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut inner = self.state.inner.lock();
            if inner.in_flight.get(&key).is_some_and(|f| f.id == self.id) {
                inner.in_flight.remove(&key);
            }
        }
    }
}

impl<K: Hash + Eq, V, E> Inner<K, V, E> {
    /// Replaces the key's entry in place (value and byte accounting together), then evicts
    /// least-recently-used entries until both bounds hold. A value larger than the byte bound is
    /// not stored, and the stale entry it supersedes is dropped. Returns whether it was stored.
    fn store(&mut self, key: K, entry: Entry<V>, state: &State<K, V, E>) -> bool {
        if entry.weight > state.policy.max_bytes {
            self.remove(&key);
            return false;
        }
        self.bytes += entry.weight;
        if let Some(old) = self.entries.put(key, entry) {
            self.bytes -= old.weight;
        }
        while self.entries.len() > state.policy.max_entries || self.bytes > state.policy.max_bytes {
            match self.entries.pop_lru() {
                Some((_, evicted)) => {
                    self.bytes -= evicted.weight;
                    state.counters.evictions.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!(EVICTIONS_METRIC).increment(1);
                }
                None => break,
            }
        }
        true
    }

    fn remove(&mut self, key: &K) {
        if let Some(old) = self.entries.pop(key) {
            self.bytes -= old.weight;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use futures::future::join_all;
    use hubcache_testkit::eventually;
    use tokio::sync::{Notify, oneshot};

    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    struct Body(String, usize);

    impl Weigh for Body {
        fn weight(&self) -> usize {
            self.1
        }
    }

    fn body(text: &str) -> Body {
        Body(text.to_owned(), 10)
    }

    type TestCache = CoalescingCache<&'static str, Body, String>;

    fn policy() -> CachePolicy {
        CachePolicy {
            max_entries: 100,
            max_bytes: 10_000,
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            fetch_timeout: Duration::from_secs(30),
            max_fetches: 100,
        }
    }

    const TTL: Duration = Duration::from_secs(10);

    /// A fetch that counts its runs and stores `text` fresh for [`TTL`].
    fn counted(
        calls: &Arc<AtomicUsize>,
        text: &'static str,
    ) -> impl FnOnce(Option<Arc<Body>>) -> BoxFuture<'static, Result<Fetched<Body>, String>>
    + Send
    + 'static {
        let calls = Arc::clone(calls);
        move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok(Fetched::Store {
                    value: body(text),
                    ttl: TTL,
                })
            }
            .boxed()
        }
    }

    async fn fill(cache: &TestCache, key: &'static str, weight: usize) {
        cache
            .get_or_fetch(key, move |_| async move {
                Ok(Fetched::Store {
                    value: Body(key.to_owned(), weight),
                    ttl: TTL,
                })
            })
            .await
            .expect("stored");
    }

    #[tokio::test]
    async fn fetches_beyond_the_bound_are_refused_at_once_but_joining_one_is_not() {
        let cache = TestCache::new(CachePolicy {
            max_fetches: 1,
            stale_if_error: Duration::from_secs(60),
            ..policy()
        });
        // "old" expires at once but stays usable for stale-if-error.
        cache
            .get_or_fetch("old", |_| async {
                Ok(Fetched::Store {
                    value: body("old"),
                    ttl: Duration::ZERO,
                })
            })
            .await
            .expect("stored");
        let (release, released) = oneshot::channel::<()>();
        let slow = tokio::spawn({
            let cache = cache.clone();
            async move {
                cache
                    .get_or_fetch("a", |_| async move {
                        let _ = released.await;
                        Ok(Fetched::Store {
                            value: body("a"),
                            ttl: TTL,
                        })
                    })
                    .await
            }
        });
        tokio::task::yield_now().await;
        let calls = Arc::new(AtomicUsize::new(0));
        let refused = cache
            .get_or_fetch("b", counted(&calls, "b"))
            .await
            .expect_err("no slot for a second fetch");
        assert!(
            matches!(refused.as_ref(), FetchError::Overloaded(1)),
            "{refused}"
        );
        let stale = cache
            .get_or_fetch("old", counted(&calls, "new"))
            .await
            .expect("a stale copy instead of a refusal");
        assert_eq!(stale.outcome, Outcome::StaleIfError);
        assert_eq!(calls.load(Ordering::SeqCst), 0, "refused fetches never run");
        let joined = tokio::spawn({
            let cache = cache.clone();
            let calls = Arc::clone(&calls);
            async move { cache.get_or_fetch("a", counted(&calls, "a2")).await }
        });
        tokio::task::yield_now().await;
        release.send(()).expect("fetch waiting");
        assert_eq!(slow.await.expect("task").expect("ok").value.0, "a");
        let joined = joined
            .await
            .expect("task")
            .expect("joined the running fetch");
        assert!(matches!(
            joined.outcome,
            Outcome::Collapsed(_) | Outcome::Hit
        ));
        // The slot is free again.
        let b = cache
            .get_or_fetch("b", counted(&calls, "b"))
            .await
            .expect("ok");
        assert_eq!(b.value.0, "b");
        assert_eq!(cache.stats().overloaded, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_share_one_fetch() {
        let cache = TestCache::new(policy());
        let calls = Arc::new(AtomicUsize::new(0));
        let lookups = (0..200).map(|_| {
            let cache = cache.clone();
            let calls = Arc::clone(&calls);
            tokio::spawn(async move {
                cache
                    .get_or_fetch("k", move |_| async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(Fetched::Store {
                            value: body("v"),
                            ttl: TTL,
                        })
                    })
                    .await
            })
        });
        let results = join_all(lookups).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "one upstream fetch for 200 lookups"
        );
        let first = Arc::clone(
            &results[0]
                .as_ref()
                .expect("joined")
                .as_ref()
                .expect("ok")
                .value,
        );
        let mut fetched = 0;
        for result in &results {
            let lookup = result.as_ref().expect("joined").as_ref().expect("ok");
            assert!(Arc::ptr_eq(&lookup.value, &first), "identical answers");
            match lookup.outcome {
                Outcome::Fetched(kind) => {
                    fetched += 1;
                    assert!(kind.stored);
                }
                Outcome::Collapsed(_) | Outcome::Hit => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(fetched, 1);
        let stats = cache.stats();
        assert_eq!(stats.misses, 1);
        assert_eq!(stats.coalesced + stats.hits, 199);
        assert_eq!(stats.entries, 1);
    }

    #[tokio::test]
    async fn a_dropped_first_caller_does_not_cause_a_second_fetch() {
        let cache = TestCache::new(policy());
        let calls = Arc::new(AtomicUsize::new(0));
        let (started_tx, started_rx) = oneshot::channel();
        let release = Arc::new(Notify::new());
        let first = {
            let (cache, calls, release) = (cache.clone(), Arc::clone(&calls), Arc::clone(&release));
            tokio::spawn(async move {
                cache
                    .get_or_fetch("k", move |_| async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        let _ = started_tx.send(());
                        release.notified().await;
                        Ok(Fetched::Store {
                            value: body("v"),
                            ttl: TTL,
                        })
                    })
                    .await
            })
        };
        started_rx.await.expect("fetch started");
        first.abort();
        assert!(first.await.expect_err("aborted").is_cancelled());

        let second = {
            let (cache, calls) = (cache.clone(), Arc::clone(&calls));
            tokio::spawn(async move { cache.get_or_fetch("k", counted(&calls, "other")).await })
        };
        tokio::task::yield_now().await;
        release.notify_one();
        let lookup = second.await.expect("joined").expect("ok");
        assert_eq!(
            lookup.value.0, "v",
            "the waiter got the first caller's fetch"
        );
        assert!(matches!(lookup.outcome, Outcome::Collapsed(_)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // And it was stored although its starter had gone.
        let hit = cache
            .get_or_fetch("k", counted(&calls, "x"))
            .await
            .expect("ok");
        assert_eq!(hit.outcome, Outcome::Hit);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_fetch_completes_and_is_stored_even_if_every_caller_leaves() {
        let cache = TestCache::new(policy());
        let calls = Arc::new(AtomicUsize::new(0));
        let lookup = cache.get_or_fetch("k", {
            let calls = Arc::clone(&calls);
            move |_| async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(Fetched::Store {
                    value: body("v"),
                    ttl: TTL,
                })
            }
        });
        // Poll once (starting the fetch), then drop the caller.
        assert!(futures::poll!(Box::pin(lookup)).is_pending());
        eventually(
            Duration::from_secs(5),
            "the abandoned fetch stored",
            || async { (cache.stats().entries == 1).then_some(()) },
        )
        .await
        .expect("stored without a caller");
        let hit = cache
            .get_or_fetch("k", counted(&calls, "x"))
            .await
            .expect("ok");
        assert_eq!(hit.outcome, Outcome::Hit);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn errors_are_shared_but_not_cached() {
        let cache = TestCache::new(policy());
        let calls = Arc::new(AtomicUsize::new(0));
        let lookups = (0..20).map(|_| {
            let calls = Arc::clone(&calls);
            cache.get_or_fetch("k", move |_| async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                Err::<Fetched<Body>, _>("upstream 502".to_owned())
            })
        });
        let results = join_all(lookups).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let first = results[0].as_ref().expect_err("failed");
        for result in &results {
            let error = result.as_ref().expect_err("failed");
            assert!(Arc::ptr_eq(error, first), "the same error is shared");
            assert!(matches!(error.as_ref(), FetchError::Failed(e) if e == "upstream 502"));
        }
        // Not cached: the next lookup fetches again.
        let lookup = cache
            .get_or_fetch("k", counted(&calls, "v"))
            .await
            .expect("ok");
        assert!(matches!(lookup.outcome, Outcome::Fetched(_)));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(cache.stats().fetch_errors, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hanging_key_blocks_no_other_key() {
        let cache = TestCache::new(policy());
        let calls = Arc::new(AtomicUsize::new(0));
        fill(&cache, "cached", 10).await;
        let misses_before = cache.stats().misses;
        let hanging = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_fetch("slow", |_| {
                        futures::future::pending::<Result<Fetched<Body>, String>>()
                    })
                    .await
            })
        };
        eventually(
            Duration::from_secs(5),
            "the hanging fetch started",
            || async { (cache.stats().misses == misses_before + 1).then_some(()) },
        )
        .await
        .expect("the hanging key is in flight");
        let other = tokio::time::timeout(Duration::from_secs(2), async {
            let miss = cache
                .get_or_fetch("other", counted(&calls, "o"))
                .await
                .expect("ok");
            let hit = cache
                .get_or_fetch("cached", counted(&calls, "x"))
                .await
                .expect("ok");
            (miss, hit)
        })
        .await
        .expect("other keys are answered while one hangs");
        assert_eq!(other.0.value.0, "o");
        assert_eq!(other.1.outcome, Outcome::Hit);
        assert!(!hanging.is_finished());
        hanging.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn the_fetch_timeout_fails_all_waiters() {
        let cache = TestCache::new(CachePolicy {
            fetch_timeout: Duration::from_secs(5),
            ..policy()
        });
        let results = join_all((0..3).map(|_| {
            cache.get_or_fetch("k", |_| {
                futures::future::pending::<Result<Fetched<Body>, String>>()
            })
        }))
        .await;
        for result in results {
            assert!(matches!(
                result.expect_err("timed out").as_ref(),
                FetchError::TimedOut(_)
            ));
        }
        assert_eq!(cache.stats().misses, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn hits_never_extend_the_ttl() {
        let cache = TestCache::new(policy());
        let calls = Arc::new(AtomicUsize::new(0));
        cache
            .get_or_fetch("k", counted(&calls, "v1"))
            .await
            .expect("ok");
        for _ in 0..9 {
            tokio::time::advance(Duration::from_secs(1)).await;
            let hit = cache
                .get_or_fetch("k", counted(&calls, "x"))
                .await
                .expect("ok");
            assert_eq!(hit.outcome, Outcome::Hit);
        }
        // 10 s after the answer arrived (not after the last hit) it is refetched.
        tokio::time::advance(Duration::from_millis(1001)).await;
        let lookup = cache
            .get_or_fetch("k", counted(&calls, "v2"))
            .await
            .expect("ok");
        assert!(matches!(lookup.outcome, Outcome::Fetched(_)));
        assert_eq!(lookup.value.0, "v2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (9, 2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn stale_while_revalidate_serves_stale_and_refreshes_once() {
        let cache = TestCache::new(CachePolicy {
            stale_while_revalidate: Duration::from_secs(30),
            ..policy()
        });
        let calls = Arc::new(AtomicUsize::new(0));
        cache
            .get_or_fetch("k", counted(&calls, "v1"))
            .await
            .expect("ok");
        tokio::time::advance(TTL + Duration::from_secs(1)).await;
        let slow_refresh = |calls: &Arc<AtomicUsize>| {
            let calls = Arc::clone(calls);
            move |previous: Option<Arc<Body>>| async move {
                assert_eq!(previous.expect("the stale value is offered").0, "v1");
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(Fetched::Store {
                    value: body("v2"),
                    ttl: TTL,
                })
            }
        };
        for _ in 0..5 {
            let lookup = cache
                .get_or_fetch("k", slow_refresh(&calls))
                .await
                .expect("ok");
            assert_eq!(lookup.outcome, Outcome::StaleWhileRevalidate);
            assert_eq!(lookup.value.0, "v1");
            assert_eq!(lookup.age, TTL + Duration::from_secs(1));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "one initial fetch, one background refresh"
        );
        let lookup = cache
            .get_or_fetch("k", counted(&calls, "x"))
            .await
            .expect("ok");
        assert_eq!(
            (lookup.outcome, lookup.value.0.as_str()),
            (Outcome::Hit, "v2")
        );
        assert_eq!(cache.stats().stale, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn stale_if_error_serves_the_old_entry_within_its_window_only() {
        let cache = TestCache::new(CachePolicy {
            stale_if_error: Duration::from_secs(60),
            ..policy()
        });
        let calls = Arc::new(AtomicUsize::new(0));
        cache
            .get_or_fetch("k", counted(&calls, "v1"))
            .await
            .expect("ok");
        let failing = || |_| async { Err::<Fetched<Body>, _>("down".to_owned()) };
        tokio::time::advance(TTL + Duration::from_secs(30)).await;
        let lookup = cache.get_or_fetch("k", failing()).await.expect("stale");
        assert_eq!(
            (lookup.outcome, lookup.value.0.as_str()),
            (Outcome::StaleIfError, "v1")
        );
        tokio::time::advance(Duration::from_secs(31)).await;
        let error = cache
            .get_or_fetch("k", failing())
            .await
            .expect_err("too old");
        assert!(matches!(error.as_ref(), FetchError::Failed(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn not_modified_refreshes_the_entry_and_keeps_its_value() {
        let cache = TestCache::new(policy());
        let calls = Arc::new(AtomicUsize::new(0));
        let first = cache
            .get_or_fetch("k", counted(&calls, "v1"))
            .await
            .expect("ok");
        tokio::time::advance(TTL * 2).await;
        let lookup = cache
            .get_or_fetch("k", |previous| async move {
                assert!(
                    previous.is_some(),
                    "the expired entry is offered for revalidation"
                );
                Ok(Fetched::NotModified { ttl: TTL })
            })
            .await
            .expect("ok");
        assert!(Arc::ptr_eq(&lookup.value, &first.value));
        assert_eq!(
            lookup.outcome,
            Outcome::Fetched(FetchKind {
                stored: true,
                revalidated: true
            })
        );
        tokio::time::advance(TTL / 2).await;
        let hit = cache
            .get_or_fetch("k", counted(&calls, "x"))
            .await
            .expect("ok");
        assert_eq!((hit.outcome, hit.age), (Outcome::Hit, TTL / 2));
        assert_eq!(cache.stats().revalidated, 1);
        // A 304 without anything to revalidate is an error, not an empty answer.
        let error = cache
            .get_or_fetch("new", |_| async { Ok(Fetched::NotModified { ttl: TTL }) })
            .await
            .expect_err("no entry");
        assert!(matches!(
            error.as_ref(),
            FetchError::NotModifiedWithoutEntry
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn short_ttls_expire_sooner() {
        // Negative answers (404/410) are stored with their own, shorter TTL.
        let cache = TestCache::new(policy());
        let calls = Arc::new(AtomicUsize::new(0));
        let negative = |calls: &Arc<AtomicUsize>| {
            let calls = Arc::clone(calls);
            move |_| async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(Fetched::Store {
                    value: body("404"),
                    ttl: Duration::from_secs(2),
                })
            }
        };
        cache
            .get_or_fetch("missing", negative(&calls))
            .await
            .expect("ok");
        tokio::time::advance(Duration::from_secs(1)).await;
        let hit = cache
            .get_or_fetch("missing", negative(&calls))
            .await
            .expect("ok");
        assert_eq!(hit.outcome, Outcome::Hit);
        tokio::time::advance(Duration::from_secs(1)).await;
        let again = cache
            .get_or_fetch("missing", negative(&calls))
            .await
            .expect("ok");
        assert!(matches!(again.outcome, Outcome::Fetched(_)));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn uncacheable_answers_are_shared_and_evict_the_old_entry() {
        let cache = TestCache::new(CachePolicy {
            stale_while_revalidate: Duration::from_secs(60),
            ..policy()
        });
        cache
            .get_or_fetch("k", |_| async {
                Ok(Fetched::Store {
                    value: body("old"),
                    ttl: Duration::ZERO,
                })
            })
            .await
            .expect("ok");
        // Stale: served while the refresh runs; the refresh says "do not cache".
        let stale = cache
            .get_or_fetch("k", |_| async { Ok(Fetched::Uncacheable(body("401"))) })
            .await
            .expect("ok");
        assert_eq!(stale.outcome, Outcome::StaleWhileRevalidate);
        eventually(
            Duration::from_secs(5),
            "the outdated entry gone",
            || async { (cache.stats().entries == 0).then_some(()) },
        )
        .await
        .expect("the background refresh evicts the outdated entry");
        let lookup = cache
            .get_or_fetch("k", |_| async { Ok(Fetched::Uncacheable(body("401"))) })
            .await
            .expect("ok");
        assert_eq!(lookup.value.0, "401");
        assert_eq!(
            lookup.outcome,
            Outcome::Fetched(FetchKind {
                stored: false,
                revalidated: false
            })
        );
    }

    #[tokio::test]
    async fn the_entry_bound_evicts_the_least_recently_used() {
        let cache = TestCache::new(CachePolicy {
            max_entries: 3,
            ..policy()
        });
        for key in ["a", "b", "c"] {
            fill(&cache, key, 10).await;
        }
        let calls = Arc::new(AtomicUsize::new(0));
        // Touch "a": "b" becomes the least recently used.
        cache
            .get_or_fetch("a", counted(&calls, "x"))
            .await
            .expect("ok");
        fill(&cache, "d", 10).await;
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.bytes, stats.evictions), (3, 30, 1));
        for key in ["a", "c", "d"] {
            let hit = cache
                .get_or_fetch(key, counted(&calls, "x"))
                .await
                .expect("ok");
            assert_eq!(hit.outcome, Outcome::Hit, "{key}");
        }
        let b = cache
            .get_or_fetch("b", counted(&calls, "b2"))
            .await
            .expect("ok");
        assert!(matches!(b.outcome, Outcome::Fetched(_)), "b was evicted");
    }

    #[tokio::test]
    async fn the_byte_bound_evicts_the_least_recently_used_and_refuses_giants() {
        let cache = TestCache::new(CachePolicy {
            max_bytes: 100,
            ..policy()
        });
        fill(&cache, "a", 40).await;
        fill(&cache, "b", 40).await;
        let calls = Arc::new(AtomicUsize::new(0));
        cache
            .get_or_fetch("a", counted(&calls, "x"))
            .await
            .expect("ok");
        fill(&cache, "c", 40).await;
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.bytes), (2, 80));
        assert_eq!(
            cache
                .get_or_fetch("a", counted(&calls, "x"))
                .await
                .expect("ok")
                .outcome,
            Outcome::Hit
        );
        // Replacing an entry adjusts the byte count instead of adding to it.
        tokio::time::pause();
        tokio::time::advance(TTL).await;
        fill(&cache, "a", 50).await;
        assert_eq!(cache.stats().bytes, 90);
        // A value larger than the whole cache is served but not stored, and evicts nothing.
        let giant = cache
            .get_or_fetch("giant", |_| async {
                Ok(Fetched::Store {
                    value: Body("big".to_owned(), 101),
                    ttl: TTL,
                })
            })
            .await
            .expect("ok");
        assert_eq!(
            giant.outcome,
            Outcome::Fetched(FetchKind {
                stored: false,
                revalidated: false
            })
        );
        assert_eq!(cache.stats().entries, 2);
    }

    #[tokio::test]
    async fn a_panicking_fetch_does_not_wedge_its_key() {
        let cache = TestCache::new(policy());
        let error = cache
            .get_or_fetch("k", |_| async { panic!("fetch bug") })
            .await
            .expect_err("panicked");
        assert!(matches!(error.as_ref(), FetchError::Aborted));
        let calls = Arc::new(AtomicUsize::new(0));
        let lookup = cache
            .get_or_fetch("k", counted(&calls, "v"))
            .await
            .expect("ok");
        assert!(matches!(lookup.outcome, Outcome::Fetched(_)));
    }
}
