//! What a caller of the [`CoalescingCache`](super::CoalescingCache) gives and gets: the value
//! trait ([`Weigh`]), the bounds ([`CachePolicy`]), what a fetch returns ([`Fetched`],
//! [`FetchError`]) and what a lookup answers ([`Lookup`], [`Outcome`], [`CacheStats`]).

use std::sync::Arc;
use std::time::Duration;

/// A cached value's size in bytes, for the byte bound (an estimate of what it keeps alive).
///
/// `pub` (a bench implements it for its values) only for the benches, through [`crate::hot_paths`].
pub trait Weigh {
    /// Bytes this value accounts for.
    fn weight(&self) -> usize;
}

/// Bounds and windows of a [`CoalescingCache`](super::CoalescingCache). Fresh lifetimes are per answer ([`Fetched`]).
///
/// `pub`, fields included (a bench builds one), only for the benches, through [`crate::hot_paths`].
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    /// At most this many entries are kept.
    pub max_entries: usize,
    /// At most this many bytes (sum of [`Weigh::weight`]) are kept; a larger value is not stored.
    pub max_bytes: usize,
    /// How long after expiry an entry is served at once while one refresh runs.
    pub stale_while_revalidate: Duration,
    /// How long after expiry an entry is served when the refresh fails.
    pub stale_if_error: Duration,
    /// The whole fetch (connect, headers, body, preparation) must finish within this.
    pub fetch_timeout: Duration,
    /// At most this many fetches run at once (see [`CoalescingCache::try_reserve_fetch`](super::CoalescingCache::try_reserve_fetch));
    /// a lookup that would start one more is refused with [`FetchError::Overloaded`].
    pub max_fetches: usize,
}

/// What a fetch decided about its upstream answer.
///
/// `pub` (a bench's fetches return it) only for the benches, through [`crate::hot_paths`].
#[derive(Debug)]
pub enum Fetched<V> {
    /// Cache this answer, fresh for `ttl` from now.
    Store {
        /// The answer.
        value: V,
        /// Fresh lifetime, from now.
        ttl: Duration,
    },
    /// The previous value (passed to the fetch) is still valid: fresh again for `ttl`, body kept.
    NotModified {
        /// Fresh lifetime, from now.
        ttl: Duration,
    },
    /// Give this answer to the waiters but do not cache it; it also evicts the key's old entry,
    /// which no longer describes the resource.
    Uncacheable(V),
}

/// Why a shared fetch produced no answer. Shared by all waiters (hence `Arc`), never cached.
///
/// `pub` (the error type of [`CoalescingCache::get_or_fetch`](super::CoalescingCache::get_or_fetch), not re-exported) only for the benches, through [`crate::hot_paths`].
#[derive(Debug, thiserror::Error)]
pub enum FetchError<E> {
    /// The fetch took longer than [`CachePolicy::fetch_timeout`].
    #[error("no upstream answer within {0:?}")]
    TimedOut(Duration),
    /// The fetch itself failed.
    #[error("{0}")]
    Failed(E),
    /// The fetch answered "not modified" although no previous value was sent to revalidate.
    #[error("upstream answered 304 to an unconditional request")]
    NotModifiedWithoutEntry,
    /// The fetch task panicked or was cancelled (runtime shutdown).
    #[error("the fetch task ended without an answer")]
    Aborted,
    /// [`CachePolicy::max_fetches`] fetches were already running; this one was not started.
    #[error("{0} upstream fetches are already in flight")]
    Overloaded(usize),
}

/// How a lookup was answered; maps to `Cache-Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A fresh entry.
    Hit,
    /// A stale entry within the stale-while-revalidate window; a refresh is running.
    StaleWhileRevalidate,
    /// A stale entry served because the upstream failed.
    StaleIfError,
    /// This caller started the fetch.
    Fetched(FetchKind),
    /// This caller joined another caller's fetch.
    Collapsed(FetchKind),
}

/// What the fetch a caller started or joined did with its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FetchKind {
    /// The answer is now cached.
    pub(crate) stored: bool,
    /// The upstream answered 304: the previous value was revalidated.
    pub(crate) revalidated: bool,
}

/// A lookup's answer.
///
/// `pub` (the answer of [`CoalescingCache::get_or_fetch`](super::CoalescingCache::get_or_fetch), not re-exported; the fields stay
/// crate-private) only for the benches, through [`crate::hot_paths`].
#[derive(Debug)]
pub struct Lookup<V> {
    /// The value (shared with the cache and other callers).
    pub(crate) value: Arc<V>,
    /// How it was obtained.
    pub(crate) outcome: Outcome,
    /// Time since the upstream answer behind `value` was received (revalidations reset it).
    pub(crate) age: Duration,
}

/// Counters and sizes, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CacheStats {
    /// Entries held.
    pub(crate) entries: usize,
    /// Bytes held (sum of weights).
    pub(crate) bytes: usize,
    /// Lookups answered by a fresh entry.
    pub(crate) hits: u64,
    /// Lookups that started an upstream fetch.
    pub(crate) misses: u64,
    /// Lookups that joined a fetch already in flight.
    pub(crate) coalesced: u64,
    /// Lookups answered by a stale entry (while revalidating or because the upstream failed).
    pub(crate) stale: u64,
    /// Fetches answered 304, refreshing an entry without a new body.
    pub(crate) revalidated: u64,
    /// Fetches (foreground or background) that failed or timed out.
    pub(crate) fetch_errors: u64,
    /// Entries evicted by the entry or byte bound.
    pub(crate) evictions: u64,
    /// Lookups refused because [`CachePolicy::max_fetches`] fetches were in flight.
    pub(crate) overloaded: u64,
}
