//! Injected faults: queued misbehaviours (error statuses, rate-limit rejections, slow or cut
//! bodies) that the next matching GitHub requests get instead of, or on top of, their answer.

use std::time::Duration;

use actix_web::http::StatusCode;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// A fault as posted to `POST /_sim/faults` (and listed by `GET /_sim/faults`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultSpec {
    /// Status to answer with (400-599); absent for a pure delay or a truncated body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<u16>,
    /// How many requests get the fault; absent means until cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) count: Option<u64>,
    /// Only requests whose path starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) path_prefix: Option<String>,
    /// Only requests for this page number (a request without `page` is for page 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) page: Option<u64>,
    /// Delay before answering.
    #[serde(default)]
    pub(crate) delay_ms: u64,
    /// Seconds for a `Retry-After` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retry_after: Option<u64>,
    /// Answer 200 with the real body cut in half (invalid JSON), like a broken transfer.
    #[serde(default)]
    pub(crate) truncate_body: bool,
    /// With status 403: a primary rate limit rejection (remaining 0) instead of a secondary one.
    #[serde(default)]
    pub(crate) primary: bool,
}

/// Why a fault was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum InvalidFault {
    #[error("status must be between 400 and 599, got {0}")]
    Status(u16),
    #[error("count must be at least 1")]
    ZeroCount,
    #[error("truncate_body serves the real status; do not combine it with status")]
    TruncateWithStatus,
    #[error("primary applies to status 403 without retry_after")]
    Primary,
    #[error("retry_after needs a status")]
    RetryAfterWithoutStatus,
}

/// What a matched fault makes the simulator do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FaultAction {
    /// Answer with this status instead of the resource.
    Respond(InjectedStatus),
    /// Serve the resource with half its body.
    Truncate,
    /// Serve the resource normally (after the delay).
    Delay,
}

/// An injected error answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InjectedStatus {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: Option<u64>,
    /// A primary rate limit rejection (only with 403).
    pub(crate) primary: bool,
}

/// A matched fault: what to do and how long to wait first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FaultHit {
    pub(crate) action: FaultAction,
    pub(crate) delay: Duration,
}

/// A queued fault as listed by `GET /_sim/faults`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct QueuedFault {
    id: u64,
    #[serde(flatten)]
    spec: FaultSpec,
    /// Requests it will still hit; `null` when unlimited.
    remaining: Option<u64>,
    #[serde(skip)]
    action: FaultAction,
}

/// The queue. The first queued fault matching a request is used (and its count decremented).
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    queue: Mutex<Faults>,
}

#[derive(Debug, Default)]
struct Faults {
    next_id: u64,
    queued: Vec<QueuedFault>,
}

impl FaultSpec {
    fn action(&self) -> Result<FaultAction, InvalidFault> {
        if self.count == Some(0) {
            return Err(InvalidFault::ZeroCount);
        }
        if self.truncate_body && self.status.is_some() {
            return Err(InvalidFault::TruncateWithStatus);
        }
        if self.primary && (self.status != Some(403) || self.retry_after.is_some()) {
            return Err(InvalidFault::Primary);
        }
        match self.status {
            Some(code) => {
                let status = StatusCode::from_u16(code)
                    .ok()
                    .filter(|s| s.is_client_error() || s.is_server_error())
                    .ok_or(InvalidFault::Status(code))?;
                Ok(FaultAction::Respond(InjectedStatus {
                    status,
                    retry_after: self.retry_after,
                    primary: self.primary,
                }))
            }
            None if self.retry_after.is_some() => Err(InvalidFault::RetryAfterWithoutStatus),
            None if self.truncate_body => Ok(FaultAction::Truncate),
            None => Ok(FaultAction::Delay),
        }
    }

    fn matches(&self, path: &str, page: u64) -> bool {
        self.path_prefix
            .as_deref()
            .is_none_or(|prefix| path.starts_with(prefix))
            && self.page.is_none_or(|wanted| wanted == page)
    }
}

impl FaultQueue {
    /// Validates and queues a fault; returns it as listed.
    pub(crate) fn push(&self, spec: FaultSpec) -> Result<QueuedFault, InvalidFault> {
        let action = spec.action()?;
        let mut faults = self.queue.lock();
        faults.next_id += 1;
        let queued = QueuedFault {
            id: faults.next_id,
            remaining: spec.count,
            spec,
            action,
        };
        faults.queued.push(queued.clone());
        Ok(queued)
    }

    pub(crate) fn list(&self) -> Vec<QueuedFault> {
        self.queue.lock().queued.clone()
    }

    pub(crate) fn clear(&self) {
        self.queue.lock().queued.clear();
    }

    /// The fault the request for `path`, page `page` gets, if any; uses up one of its count.
    pub(crate) fn take(&self, path: &str, page: u64) -> Option<FaultHit> {
        let mut faults = self.queue.lock();
        let index = faults
            .queued
            .iter()
            .position(|fault| fault.spec.matches(path, page))?;
        let fault = &mut faults.queued[index];
        let hit = FaultHit {
            action: fault.action.clone(),
            delay: Duration::from_millis(fault.spec.delay_ms),
        };
        if let Some(remaining) = fault.remaining.as_mut() {
            *remaining -= 1;
            if *remaining == 0 {
                faults.queued.remove(index);
            }
        }
        Some(hit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> FaultSpec {
        serde_json::from_str(json).expect("valid fault json")
    }

    #[test]
    fn counted_faults_run_out_and_filters_apply() {
        let faults = FaultQueue::default();
        faults
            .push(spec(
                r#"{"status":500,"count":2,"path_prefix":"/orgs","page":2}"#,
            ))
            .expect("valid");
        assert_eq!(faults.take("/orgs/x/repos", 1), None);
        assert_eq!(faults.take("/users/x", 2), None);
        assert!(faults.take("/orgs/x/repos", 2).is_some());
        assert!(faults.take("/orgs/x/repos", 2).is_some());
        assert_eq!(faults.take("/orgs/x/repos", 2), None);
        assert!(faults.list().is_empty());
    }

    #[test]
    fn contradictory_faults_are_refused() {
        let faults = FaultQueue::default();
        for (json, why) in [
            (r#"{"status":200}"#, InvalidFault::Status(200)),
            (r#"{"status":500,"count":0}"#, InvalidFault::ZeroCount),
            (
                r#"{"status":500,"truncate_body":true}"#,
                InvalidFault::TruncateWithStatus,
            ),
            (r#"{"status":429,"primary":true}"#, InvalidFault::Primary),
            (
                r#"{"retry_after":3}"#,
                InvalidFault::RetryAfterWithoutStatus,
            ),
        ] {
            assert_eq!(faults.push(spec(json)).map(|_| ()), Err(why), "{json}");
        }
    }
}
