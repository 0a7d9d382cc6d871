//! In-process wake-ups for fleet waiters: each gateway subscribes once to the pass-through
//! "done" channel, and a message naming an entry id wakes the local task waiting for that id.
//!
//! A waiter registers (and enables its `Notified` future) before it asks Redis whether the
//! entry is there yet, so an announcement that arrives between that answer and the wait is not
//! lost. Thanks to the L1 cache in front, at most one task per gateway waits for a given id.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Local waiters by entry id.
#[derive(Default)]
pub(crate) struct Waiters {
    by_id: Mutex<HashMap<String, Arc<Notify>>>,
}

/// A registration; unregisters on drop (when it is the last for its id).
pub(crate) struct Registration<'a> {
    waiters: &'a Waiters,
    id: String,
    notify: Arc<Notify>,
}

impl Waiters {
    /// Registers interest in `id` until the registration is dropped.
    pub(crate) fn register(&self, id: &str) -> Registration<'_> {
        let notify = Arc::clone(self.by_id.lock().entry(id.to_owned()).or_default());
        let id = id.to_owned();
        Registration {
            waiters: self,
            id,
            notify,
        }
    }

    /// Wakes every waiter of the id named by an announcement.
    pub(crate) fn wake(&self, id: &[u8]) {
        let Ok(id) = std::str::from_utf8(id) else {
            return;
        };
        if let Some(notify) = self.by_id.lock().get(id) {
            notify.notify_waiters();
        }
    }

    /// Ids with a waiter (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_id.lock().len()
    }
}

impl Registration<'_> {
    /// What to await; create the `Notified` and `enable` it before checking Redis.
    pub(crate) fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut by_id = self.waiters.by_id.lock();
        // One reference in the map, one here: nobody else waits for this id.
        if Arc::strong_count(&self.notify) == 2 {
            by_id.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_wake_before_the_wait_is_not_lost_once_enabled() {
        let waiters = Waiters::default();
        let registration = waiters.register("abc");
        let notified = registration.notify().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        waiters.wake(b"abc");
        tokio::time::timeout(Duration::from_secs(1), notified)
            .await
            .expect("woken");
    }

    #[tokio::test]
    async fn other_ids_do_not_wake_and_registrations_are_removed() {
        let waiters = Waiters::default();
        {
            let registration = waiters.register("abc");
            let notified = registration.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            waiters.wake(b"other");
            assert!(
                tokio::time::timeout(Duration::from_millis(50), notified)
                    .await
                    .is_err()
            );
            let second = waiters.register("abc");
            drop(second);
            assert_eq!(waiters.len(), 1, "still registered by the first");
        }
        assert_eq!(waiters.len(), 0);
    }
}
