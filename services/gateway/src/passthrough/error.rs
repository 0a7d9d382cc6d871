//! Every way the pass-through refuses or fails, as a status and a JSON `{"message": ...}` that
//! never contains the token or an upstream URL.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use super::upstream::UpstreamFailure;
use crate::coalescing_cache::FetchError;
use crate::json_error::json_error;

/// `Retry-After` of an overload refusal: fetches last about an upstream round trip, so a slot
/// frees up quickly.
const OVERLOAD_RETRY_AFTER_SECS: u64 = 1;

/// Why the pass-through could not answer; each maps to a status and a JSON `{"message": ...}`
/// that never contains the token or an upstream URL.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PassThroughError {
    /// A method other than GET/HEAD without the client's own credential.
    #[error(
        "{0} is not allowed: the cache serves GET and HEAD; other methods are forwarded only with your own Authorization header"
    )]
    MethodNotAllowed(Method),
    /// A forwarded request body over the limit.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// A request target that is not a path.
    #[error("the request target must be a path starting with '/'")]
    BadTarget,
    /// GitHub failed (network, timeout or 5xx) and nothing stale was usable.
    #[error("GitHub is unavailable ({0}) and no cached copy is usable")]
    Unavailable(String),
    /// Too many upstream requests are in flight (`MAX_UPSTREAM_FETCHES`): refused at once
    /// rather than queued, so a slow or overwhelmed upstream never builds an unbounded backlog.
    #[error(
        "the gateway is overloaded ({0} upstream requests in flight) and no cached copy is usable; retry in {OVERLOAD_RETRY_AFTER_SECS}s"
    )]
    Overloaded(usize),
    /// GitHub is rate limiting and nothing stale was usable.
    #[error("GitHub is rate limiting (upstream status {status}) and no cached copy is usable")]
    RateLimited {
        /// The upstream status (403 or 429).
        status: u16,
        /// Seconds GitHub asked to wait.
        retry_after: Option<u64>,
    },
    /// A bug or an environment failure.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl PassThroughError {
    pub(super) fn from_failure(failure: &UpstreamFailure) -> Self {
        match failure {
            UpstreamFailure::Status(status) => {
                PassThroughError::Unavailable(format!("upstream status {status}"))
            }
            UpstreamFailure::RateLimited {
                status,
                retry_after,
            } => PassThroughError::RateLimited {
                status: *status,
                retry_after: *retry_after,
            },
            UpstreamFailure::Transport(what) => PassThroughError::Unavailable((*what).to_owned()),
            UpstreamFailure::InvalidTarget => PassThroughError::BadTarget,
            UpstreamFailure::Prepare | UpstreamFailure::Credential(_) => {
                PassThroughError::Unavailable(failure.to_string())
            }
        }
    }
}

impl From<Arc<FetchError<UpstreamFailure>>> for PassThroughError {
    fn from(error: Arc<FetchError<UpstreamFailure>>) -> Self {
        match error.as_ref() {
            FetchError::Failed(failure) => Self::from_failure(failure),
            FetchError::TimedOut(after) => {
                PassThroughError::Unavailable(format!("no answer within {}s", after.as_secs()))
            }
            FetchError::Overloaded(limit) => PassThroughError::Overloaded(*limit),
            other => PassThroughError::Unavailable(other.to_string()),
        }
    }
}

impl ResponseError for PassThroughError {
    fn status_code(&self) -> StatusCode {
        match self {
            PassThroughError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            PassThroughError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            PassThroughError::BadTarget => StatusCode::BAD_REQUEST,
            PassThroughError::Unavailable(_) => StatusCode::BAD_GATEWAY,
            PassThroughError::RateLimited { .. } | PassThroughError::Overloaded(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            PassThroughError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            PassThroughError::Unexpected(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        let mut response = json_error(self.status_code(), &message);
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            PassThroughError::MethodNotAllowed(_) => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
            PassThroughError::RateLimited {
                retry_after: Some(seconds),
                ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
            }
            PassThroughError::Overloaded(_) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(OVERLOAD_RETRY_AFTER_SECS),
                );
            }
            _ => {}
        }
        response
    }
}
