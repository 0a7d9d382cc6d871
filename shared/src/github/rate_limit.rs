//! GitHub's rate-limit headers: the primary limit (`x-ratelimit-*`) and `Retry-After`.

use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap};

/// GitHub's primary rate-limit state from the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// `x-ratelimit-limit`: requests allowed per window.
    pub limit: u64,
    /// `x-ratelimit-remaining`: requests left in this window.
    pub remaining: u64,
    /// `x-ratelimit-used`: requests spent in this window.
    pub used: u64,
    /// `x-ratelimit-reset`: when the window resets, Unix seconds.
    pub reset_epoch_secs: u64,
}

impl RateLimit {
    /// Parses the headers; `None` unless limit, remaining and reset are all present and numeric
    /// (a partial or malformed set is ignored rather than guessed at). `used` defaults to
    /// `limit - remaining`.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let num =
            |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        let limit = num("x-ratelimit-limit")?;
        let remaining = num("x-ratelimit-remaining")?;
        let reset_epoch_secs = num("x-ratelimit-reset")?;
        if remaining > limit {
            return None;
        }
        let used = num("x-ratelimit-used").unwrap_or(limit - remaining);
        Some(Self {
            limit,
            remaining,
            used,
            reset_epoch_secs,
        })
    }

    /// Time until the window resets (zero if it already has).
    pub fn until_reset(&self, now: SystemTime) -> Duration {
        let reset = SystemTime::UNIX_EPOCH + Duration::from_secs(self.reset_epoch_secs);
        reset.duration_since(now).unwrap_or_default()
    }
}

/// Parses `Retry-After` as delay-seconds or an HTTP-date; `None` when absent or malformed.
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let raw = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(raw).ok()?;
    Some(when.duration_since(now).unwrap_or_default())
}
