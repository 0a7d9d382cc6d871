//! Optional per-client token bucket (`CLIENT_RATE_LIMIT_PER_SEC`, burst
//! `client_rate_limit_burst`), keyed by the peer IP: one noisy client cannot starve the others
//! or burn the server token's GitHub budget through the pass-through.
//!
//! `X-Forwarded-For` is only trusted when `client_rate_limit_trust_forwarded_for` is set (behind a
//! proxy you control); otherwise any client could pick its own bucket. `/livez`,
//! `/healthcheck` and `/metrics` are exempt so orchestrators never get 429. Exceeding the budget answers 429
//! JSON with `Retry-After` in whole seconds.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::json_error::json_error;
use crate::settings::Settings;

/// `hubcache_client_rate_limited_total`: requests refused with 429 by the per-client limit.
pub(crate) const RATE_LIMITED_METRIC: &str = "hubcache_client_rate_limited_total";

/// Paths never limited.
const EXEMPT: [&str; 3] = ["/livez", "/healthcheck", "/metrics"];

/// The limiter (absent when limiting is off) and how clients are identified.
pub(crate) struct ClientRateLimiter {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    trust_forwarded_for: bool,
    /// Requests refused with 429 so far (the status page's shed requests).
    refused: std::sync::atomic::AtomicU64,
}

impl ClientRateLimiter {
    /// From settings; `CLIENT_RATE_LIMIT_PER_SEC=0` turns it off.
    pub(crate) fn new(settings: &Settings) -> Self {
        let limiter = NonZeroU32::new(settings.client_rate_limit_per_sec).map(|rate| {
            let burst = NonZeroU32::new(settings.client_rate_limit_burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self {
            limiter,
            trust_forwarded_for: settings.client_rate_limit_trust_forwarded_for,
            refused: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Requests refused with 429 so far.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether limiting is on.
    pub(crate) fn is_enabled(&self) -> bool {
        self.limiter.is_some()
    }

    /// Forgets idle clients' buckets (run periodically so memory stays bounded).
    pub(crate) fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// `Err(wait)` when `client` has spent its budget.
    fn check(&self, client: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(&client).map_err(|not_until| {
            self.refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            not_until.wait_time_from(DefaultClock::default().now())
        })
    }

    fn client_of(&self, req: &ServiceRequest) -> Option<IpAddr> {
        if self.trust_forwarded_for
            && let Some(ip) = req
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
        {
            return Some(ip);
        }
        req.peer_addr().map(|addr| addr.ip())
    }
}

/// The middleware. Reads the limiter from the app data itself rather than through an extractor
/// argument: actix boxes the future of every `from_fn` middleware that takes extractors, and
/// this runs on every request.
pub(crate) async fn client_rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(limits) = req.app_data::<web::Data<ClientRateLimiter>>() else {
        return Err(actix_web::error::ErrorInternalServerError(
            "the client rate limiter is not registered",
        ));
    };
    let verdict = if !limits.is_enabled() || EXEMPT.contains(&req.path()) {
        Ok(())
    } else {
        match limits.client_of(&req) {
            Some(client) => limits.check(client),
            None => Ok(()),
        }
    };
    match verdict {
        Ok(()) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Err(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let secs = secs.max(1);
            metrics::counter!(RATE_LIMITED_METRIC).increment(1);

            let mut response = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("client rate limit exceeded; retry in {secs}s"),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}
