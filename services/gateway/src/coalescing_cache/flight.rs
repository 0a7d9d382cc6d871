//! One upstream fetch in flight for a key: the shared answer every waiter awaits, and the guard
//! its task owns, which stores the answer (or, if the task dies first, still unregisters the
//! flight so the key is never stuck).

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, Shared};
use tokio::time::Instant;

use super::{Entry, FetchError, FetchKind, Fetched, State, Weigh, count};

/// The answer of a finished flight, as every waiter sees it.
pub(super) type FlightAnswer<V, E> = Result<Flown<V>, Arc<FetchError<E>>>;

pub(super) struct InFlight<V, E> {
    pub(super) id: u64,
    pub(super) answer: Shared<BoxFuture<'static, FlightAnswer<V, E>>>,
}

pub(super) struct Flown<V> {
    pub(super) value: Arc<V>,
    pub(super) received_at: Instant,
    pub(super) kind: FetchKind,
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
pub(super) struct FlightGuard<K: Hash + Eq, V, E> {
    pub(super) state: Arc<State<K, V, E>>,
    pub(super) key: Option<K>,
    pub(super) id: u64,
}

impl<K: Hash + Eq, V: Weigh, E> FlightGuard<K, V, E> {
    pub(super) fn complete(
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
