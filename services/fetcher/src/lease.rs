//! The fetcher lease: the Redis key that elects the one replica allowed to poll GitHub.
//!
//! `SET key id NX PX ttl` acquires it; renewal and release are compare-and-set scripts, so a
//! replica can only extend or delete a lease it still holds. The snapshot scripts check the same
//! key (fencing): a replica that lost its lease while a poll was in flight writes nothing.

use std::time::Duration;

use anyhow::Context as _;
use hubcache_shared::RedisConnection;
use redis::Script;

/// Takes the lease if free, or extends it if already ours: {1, id, -1}; else {0, holder, pttl}.
const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, ARGV[1], -1}
end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, ARGV[1], -1}
end
return {0, holder, redis.call('PTTL', KEYS[1])}
";

/// Extends the lease only if this instance still holds it. 1: renewed, 0: not ours.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// Deletes the lease only if this instance holds it. 1: released, 0: not ours.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

/// One instance's handle on the fetcher lease.
#[derive(Clone)]
pub(crate) struct Lease {
    key: String,
    instance_id: String,
    ttl: Duration,
    acquire: Script,
    renew: Script,
    release: Script,
}

/// What an acquisition attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Acquire {
    /// This instance holds the lease now.
    Held,
    /// Another instance does.
    HeldByOther {
        /// Its id (absent if the lease vanished between the two reads).
        holder: Option<String>,
        /// Time left on its lease, if it has an expiry.
        expires_in: Option<Duration>,
    },
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.key)
            .field("instance_id", &self.instance_id)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl Lease {
    /// A handle for `instance_id` on the lease `key` lasting `ttl` without renewal.
    pub(crate) fn new(key: String, instance_id: String, ttl: Duration) -> Self {
        Self {
            key,
            instance_id,
            ttl,
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
        }
    }

    /// The Redis key (the snapshot scripts check it).
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The value this instance writes into the lease.
    pub(crate) fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// How long the lease lives without renewal.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How often a holder renews: three chances before the lease would expire.
    pub(crate) fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Takes the lease if nobody holds it (or extends it if this instance already does, e.g.
    /// after a reply was lost); otherwise reports who holds it and for how long.
    pub(crate) async fn try_acquire(&self, conn: &mut RedisConnection) -> anyhow::Result<Acquire> {
        let (held, holder, pttl): (i64, Option<String>, i64) = self
            .acquire
            .key(&self.key)
            .arg(&self.instance_id)
            .arg(self.ttl_ms())
            .invoke_async(conn)
            .await
            .context("acquiring the fetcher lease")?;
        if held == 1 {
            return Ok(Acquire::Held);
        }
        Ok(Acquire::HeldByOther {
            holder,
            expires_in: u64::try_from(pttl).ok().map(Duration::from_millis),
        })
    }

    /// Extends the lease; `false` when another instance holds it (or nobody: it expired).
    pub(crate) async fn renew(&self, conn: &mut RedisConnection) -> anyhow::Result<bool> {
        let renewed: i64 = self
            .renew
            .key(&self.key)
            .arg(&self.instance_id)
            .arg(self.ttl_ms())
            .invoke_async(conn)
            .await
            .context("renewing the fetcher lease")?;
        Ok(renewed == 1)
    }

    /// Gives the lease up so a successor can take over at once; `false` if it was not ours.
    pub(crate) async fn release(&self, conn: &mut RedisConnection) -> anyhow::Result<bool> {
        let released: i64 = self
            .release
            .key(&self.key)
            .arg(&self.instance_id)
            .invoke_async(conn)
            .await
            .context("releasing the fetcher lease")?;
        Ok(released == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_leaves_time_for_retries() {
        let lease = Lease::new("k".into(), "me".into(), Duration::from_secs(15));
        assert_eq!(lease.renew_every(), Duration::from_secs(5));
        assert_eq!(lease.ttl_ms(), 15_000);
    }
}
