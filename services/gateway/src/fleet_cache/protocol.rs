//! The fleet cache's Redis protocol: four Lua scripts over one entry's keys (entry, lock, result:
//! one hash tag, so one slot on a cluster) and the pub/sub announcement of a finished fetch.
//!
//! Every time is Redis's own clock (`TIME` inside the scripts), so the replicas' clocks never
//! need to agree: freshness and age are measured where the entry is kept.
//!
//! - `CLAIM` (one round trip per miss): a fresh entry is returned; else, for a caller that waited
//!   for the fetch with token T, T's shared result (an error or an uncacheable answer); else the
//!   lock is taken (`SET NX PX`) and the caller leads; else the caller learns who holds it and for
//!   how long. The expired entry, if any, comes back with the last three answers, so a leader can
//!   revalidate it with its ETag and a waiter can serve it stale.
//! - `STORE`: writes the entry with its freshness and key TTL, releases the lock if still ours,
//!   announces the entry id.
//! - `SHARE`: writes the fetch's result for its waiters (short TTL), releases, announces.
//! - `RENEW`: extends the lock while its holder is still fetching; `RELEASE`: gives it up.

use std::time::Duration;

use hubcache_shared::{KeySchema, RedisConnection};
use redis::{Script, Value};

const CLAIM: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local e = redis.call('HMGET', KEYS[1], 'fresh_until', 'received_at', 'data')
local fresh_until = tonumber(e[1])
local received_at = tonumber(e[2])
local has = fresh_until ~= nil and received_at ~= nil and e[3] ~= false
if has and now < fresh_until then
  return {'hit', e[3], now - received_at, fresh_until - now}
end
if ARGV[3] ~= '' then
  local r = redis.call('HMGET', KEYS[3], 'token', 'payload')
  if r[1] == ARGV[3] and r[2] ~= false then
    return {'shared', r[2]}
  end
end
local data, age, expired = '', 0, 0
if has then
  data = e[3]
  age = now - received_at
  expired = now - fresh_until
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'lead', data, age, expired}
end
return {'wait', data, age, expired, redis.call('GET', KEYS[2]) or '', redis.call('PTTL', KEYS[2])}
";

const STORE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'fresh_until', now + tonumber(ARGV[2]), 'received_at', now, 'data', ARGV[4])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[3]))
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
";

const SHARE: &str = r"
redis.call('HSET', KEYS[2], 'token', ARGV[1], 'payload', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
";

const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
";

/// The scripts, hashed once (`EVALSHA`, loaded on first use and after a Redis restart).
pub(crate) struct Scripts {
    claim: Script,
    store: Script,
    share: Script,
    renew: Script,
    release: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            claim: Script::new(CLAIM),
            store: Script::new(STORE),
            share: Script::new(SHARE),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
        }
    }
}

/// An entry as `CLAIM` found it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FoundEntry {
    /// The encoded answer.
    pub(crate) data: Vec<u8>,
    /// Since its upstream answer was received (Redis clock).
    pub(crate) age: Duration,
}

/// An expired entry and how long ago it expired.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ExpiredEntry {
    pub(crate) entry: FoundEntry,
    pub(crate) expired_for: Duration,
}

/// What `CLAIM` decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// A fresh entry, fresh for `fresh_for` more.
    Hit {
        entry: FoundEntry,
        fresh_for: Duration,
    },
    /// The awaited fetch ended without an entry: its result record.
    Shared(Vec<u8>),
    /// The caller holds the lock and fetches.
    Lead(Option<ExpiredEntry>),
    /// Another gateway fetches: lock token `holder`, expiring in `lock_left`.
    Wait {
        stale: Option<ExpiredEntry>,
        holder: Vec<u8>,
        lock_left: Duration,
    },
}

/// One entry's keys.
pub(crate) struct EntryKeys {
    pub(crate) id: String,
    entry: String,
    lock: String,
    result: String,
    channel: String,
}

impl EntryKeys {
    pub(crate) fn new(keys: &KeySchema, id: String) -> Self {
        Self {
            entry: keys.passthrough_entry(&id),
            lock: keys.passthrough_lock(&id),
            result: keys.passthrough_result(&id),
            channel: keys.passthrough_done_channel(),
            id,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Scripts {
    /// `CLAIM` with this caller's `token`; `awaited` is the holder it waited for, if any.
    pub(crate) async fn claim(
        &self,
        conn: &mut RedisConnection,
        keys: &EntryKeys,
        token: &str,
        lock_ttl: Duration,
        awaited: Option<&[u8]>,
    ) -> redis::RedisResult<Claim> {
        let reply: Vec<Value> = self
            .claim
            .key(&keys.entry)
            .key(&keys.lock)
            .key(&keys.result)
            .arg(token)
            .arg(millis(lock_ttl))
            .arg(awaited.unwrap_or_default())
            .invoke_async(conn)
            .await?;
        parse_claim(reply)
    }

    /// `STORE`: `data` fresh for `fresh`, kept `keep` longer for revalidation and stale use.
    pub(crate) async fn store(
        &self,
        conn: &mut RedisConnection,
        keys: &EntryKeys,
        token: &str,
        fresh: Duration,
        keep: Duration,
        data: &[u8],
    ) -> redis::RedisResult<()> {
        self.store
            .key(&keys.entry)
            .key(&keys.lock)
            .arg(token)
            .arg(u64::try_from(fresh.as_millis()).unwrap_or(u64::MAX))
            .arg(millis(keep))
            .arg(data)
            .arg(&keys.channel)
            .arg(&keys.id)
            .invoke_async(conn)
            .await
    }

    /// `SHARE`: `payload` for the waiters of the fetch holding `token`, kept for `keep`.
    pub(crate) async fn share(
        &self,
        conn: &mut RedisConnection,
        keys: &EntryKeys,
        token: &str,
        payload: &[u8],
        keep: Duration,
    ) -> redis::RedisResult<()> {
        self.share
            .key(&keys.lock)
            .key(&keys.result)
            .arg(token)
            .arg(payload)
            .arg(millis(keep))
            .arg(&keys.channel)
            .arg(&keys.id)
            .invoke_async(conn)
            .await
    }

    /// `RENEW`: whether the lock was still ours (and is now extended to `ttl`).
    pub(crate) async fn renew(
        &self,
        conn: &mut RedisConnection,
        keys: &EntryKeys,
        token: &str,
        ttl: Duration,
    ) -> redis::RedisResult<bool> {
        self.renew
            .key(&keys.lock)
            .arg(token)
            .arg(millis(ttl))
            .invoke_async(conn)
            .await
    }

    /// `RELEASE`: the lock is given up without an entry or result; waiters are woken to claim.
    pub(crate) async fn release(
        &self,
        conn: &mut RedisConnection,
        keys: &EntryKeys,
        token: &str,
    ) -> redis::RedisResult<()> {
        self.release
            .key(&keys.lock)
            .arg(token)
            .arg(&keys.channel)
            .arg(&keys.id)
            .invoke_async(conn)
            .await
    }
}

/// Deletes a damaged entry (the next claim leads a fetch that replaces it).
pub(crate) async fn drop_entry(
    conn: &mut RedisConnection,
    keys: &EntryKeys,
) -> redis::RedisResult<()> {
    redis::cmd("DEL").arg(&keys.entry).query_async(conn).await
}

fn parse_claim(reply: Vec<Value>) -> redis::RedisResult<Claim> {
    let bad = || {
        redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "unexpected CLAIM reply",
        ))
    };
    let mut fields = reply.into_iter();
    let mut next = || fields.next().ok_or_else(bad);
    let kind: String = redis::from_redis_value(next()?)?;
    let bytes = |v: Value| -> redis::RedisResult<Vec<u8>> { Ok(redis::from_redis_value(v)?) };
    let ms = |v: Value| -> redis::RedisResult<Duration> {
        let n: i64 = redis::from_redis_value(v)?;
        Ok(Duration::from_millis(u64::try_from(n).unwrap_or(0)))
    };
    let expired = |data: Vec<u8>, age, expired_for| {
        (!data.is_empty()).then_some(ExpiredEntry {
            entry: FoundEntry { data, age },
            expired_for,
        })
    };
    match kind.as_str() {
        "hit" => Ok(Claim::Hit {
            entry: FoundEntry {
                data: bytes(next()?)?,
                age: ms(next()?)?,
            },
            fresh_for: ms(next()?)?,
        }),
        "shared" => Ok(Claim::Shared(bytes(next()?)?)),
        "lead" => {
            let (data, age, expired_for) = (bytes(next()?)?, ms(next()?)?, ms(next()?)?);
            Ok(Claim::Lead(expired(data, age, expired_for)))
        }
        "wait" => {
            let (data, age, expired_for) = (bytes(next()?)?, ms(next()?)?, ms(next()?)?);
            Ok(Claim::Wait {
                stale: expired(data, age, expired_for),
                holder: bytes(next()?)?,
                lock_left: ms(next()?)?,
            })
        }
        _ => Err(bad()),
    }
}
