//! How hubcache waits and names itself when it retries: one backoff policy for every retry loop
//! (fetcher polls, views consumers) and one process identity for leases and consumer names.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with full jitter between `base` and a ceiling that doubles per failure up
/// to `max`. Jitter spreads the retries of several replicas apart, so a fleet does not hammer a
/// GitHub or Redis that is coming back; a retry never comes sooner than `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// Delays start at `base`; their ceiling doubles per failure up to `max`.
    pub const fn new(base: Duration, max: Duration) -> Self {
        let max = if max.as_nanos() < base.as_nanos() {
            base
        } else {
            max
        };
        Self { base, max }
    }

    /// The largest delay after `failures` consecutive failures (at least one).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.base.saturating_mul(1u32 << doublings).min(self.max)
    }

    /// A random delay in `[base, ceiling(failures)]`.
    pub fn delay(&self, failures: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(failures);
        if ceiling <= self.base {
            return self.base;
        }
        rng.random_range(self.base..=ceiling)
    }
}

/// A unique id for this process: `hostname-pid-random`, readable in `redis-cli`. The random part
/// keeps a restarted process with the same host and pid (pid 1 in a container) from being taken
/// for its previous life: it neither inherits a lease nor pending stream entries.
pub fn instance_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_stays_in_bounds() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        assert_eq!(b.ceiling(1), Duration::from_secs(1));
        assert_eq!(b.ceiling(2), Duration::from_secs(2));
        assert_eq!(b.ceiling(5), Duration::from_secs(16));
        assert_eq!(b.ceiling(40), Duration::from_secs(300));
        let mut rng = rand::rng();
        for failures in 1..50 {
            let d = b.delay(failures, &mut rng);
            assert!(
                d >= Duration::from_secs(1) && d <= b.ceiling(failures),
                "{d:?}"
            );
        }
    }

    #[test]
    fn backoff_is_jittered() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(60));
        let mut rng = rand::rng();
        let delays: std::collections::HashSet<Duration> =
            (0..20).map(|_| b.delay(8, &mut rng)).collect();
        assert!(delays.len() > 1, "{delays:?}");
    }

    #[test]
    fn instance_ids_are_unique_and_name_the_process() {
        let (a, b) = (instance_id(), instance_id());
        assert_ne!(a, b);
        assert!(a.contains(&format!("-{}-", std::process::id())), "{a}");
    }
}
