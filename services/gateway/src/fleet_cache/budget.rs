//! Paused rate-limit budgets shared through Redis, so that one replica's refused request pauses
//! the credential for every replica: a key per credential partition (`KeySchema::
//! passthrough_budget`, named by a digest of the partition), its value the refusal, its TTL the
//! time left. Bounded by the fleet cache's timeout; Redis down or slow, each replica keeps its
//! own pauses only.

use std::time::Duration;

use super::FleetCache;

/// A pause read back from Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SharedPause {
    /// The status GitHub refused with.
    pub(crate) status: u16,
    /// A primary limit (else secondary).
    pub(crate) primary: bool,
    /// Secondary limits in a row (the back-off exponent).
    pub(crate) streak: u32,
    /// Time left.
    pub(crate) left: Duration,
}

impl FleetCache {
    /// The fleet's pause of budget `id`, if any (and Redis answers in time).
    pub(crate) async fn shared_pause(&self, id: &str) -> Option<SharedPause> {
        let mut conn = self.connection()?;
        let key = self.inner.keys.passthrough_budget(id);
        let (value, left_ms): (Option<String>, i64) = self
            .bounded(
                "budget read",
                redis::pipe().get(&key).pttl(&key).query_async(&mut conn),
            )
            .await?;
        let mut fields = value?
            .split(' ')
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .into_iter();
        let status = fields.next()?.parse().ok()?;
        let primary = fields.next()? == "primary";
        let streak = fields.next()?.parse().ok()?;
        let left = Duration::from_millis(u64::try_from(left_ms).ok().filter(|ms| *ms > 0)?);
        Some(SharedPause {
            status,
            primary,
            streak,
            left,
        })
    }

    /// Tells the fleet that budget `id` is paused for `pause.left`.
    pub(crate) async fn share_pause(&self, id: &str, pause: SharedPause) {
        let Some(mut conn) = self.connection() else {
            return;
        };
        let key = self.inner.keys.passthrough_budget(id);
        let kind = if pause.primary {
            "primary"
        } else {
            "secondary"
        };
        let value = format!("{} {kind} {}", pause.status, pause.streak);
        let ttl_ms = u64::try_from(pause.left.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let _: Option<()> = self
            .bounded(
                "budget write",
                redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async(&mut conn),
            )
            .await;
    }
}
