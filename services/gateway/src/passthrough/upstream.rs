//! The one upstream call: an [`OutgoingRequest`] built from allow-listed headers, sent to the
//! configured base only, with the server token only where the rules allow it.

use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderValue};
use bytes::Bytes;
use hubcache_shared::{GithubClient, RateLimit, SeenRateLimit};
use url::Url;

use super::allow_lists::allowed_header;
use super::budget::{BudgetPartition, Budgets};
use super::token_scope::{ServerCredential, TokenScope};
use crate::body_urls::BodyUrlRewriter;
use crate::fleet_cache::FleetCache;

/// `hubcache_upstream_requests_total{status}`: requests the pass-through sent to GitHub, by
/// response status (`error`: no response).
pub(crate) const UPSTREAM_METRIC: &str = "hubcache_upstream_requests_total";

/// What the fetches share: the client, the freshness rules and the body rewriting.
pub(super) struct Upstream {
    pub(super) github: GithubClient,
    /// Which anonymous requests carry the server's credential, and that credential.
    pub(super) scope: TokenScope,
    /// Credential partitions GitHub refused for a spent rate limit, until it lifts.
    pub(super) budgets: Budgets,
    pub(super) public_url: Option<Url>,
    /// With `PUBLIC_URL` set: rewrites upstream URLs in stored bodies to it.
    pub(super) body_urls: Option<BodyUrlRewriter>,
    pub(super) fresh_ttl: Duration,
    pub(super) negative_ttl: Duration,
    pub(super) timeout: Duration,
    /// Requests sent to GitHub so far (the status page's upstream requests).
    pub(super) sent: std::sync::atomic::AtomicU64,
    /// The `x-ratelimit-*` state of GitHub's latest answer to this gateway, with when it came:
    /// the budget of the credential the pass-through uses (the server token, or none).
    pub(super) rate_limit: parking_lot::Mutex<Option<SeenRateLimit>>,
    /// The fleet cache (L2) shared with the other replicas, unless `l2_enabled` is off.
    pub(super) fleet: Option<FleetCache>,
}

/// A request about to be sent upstream. Built from allow-listed headers only.
pub(super) struct OutgoingRequest {
    pub(super) method: reqwest::Method,
    pub(super) target: String,
    pub(super) headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    /// The client's own `Authorization`.
    pub(super) credential: Option<HeaderValue>,
    /// The server's credential, when the token scope gives it to this anonymous request.
    pub(super) server_credential: Option<ServerCredential>,
    /// Whose rate-limit budget the request spends.
    pub(super) budget: BudgetPartition,
    pub(super) body: Option<Bytes>,
}

impl OutgoingRequest {
    pub(super) fn new(method: reqwest::Method, target: String) -> Self {
        Self {
            method,
            target,
            headers: Vec::new(),
            credential: None,
            server_credential: None,
            budget: BudgetPartition::Anonymous,
            body: None,
        }
    }

    pub(super) fn copy_header(&mut self, headers: &HeaderMap, name: &'static str) {
        if let Some(value) = allowed_header(headers, name)
            && let Ok(value) = reqwest::header::HeaderValue::from_bytes(value.as_bytes())
        {
            self.headers
                .push((reqwest::header::HeaderName::from_static(name), value));
        }
    }
}

/// An upstream answer, before it is classified.
pub(super) struct RawAnswer {
    pub(super) status: reqwest::StatusCode,
    pub(super) headers: reqwest::header::HeaderMap,
    pub(super) body: Bytes,
}

/// Why an upstream fetch gave no usable answer. Shared by waiters; never holds a URL or token.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum UpstreamFailure {
    /// GitHub answered a server error.
    #[error("GitHub answered {0}")]
    Status(u16),
    /// GitHub refused because a rate limit is spent (403 or 429).
    #[error("GitHub is rate limiting (status {status})")]
    RateLimited {
        /// The upstream status.
        status: u16,
        /// Seconds GitHub asked to wait.
        retry_after: Option<u64>,
    },
    /// No answer: connection, timeout or broken body.
    #[error("GitHub could not be reached: {0}")]
    Transport(&'static str),
    /// The target cannot be put under the configured upstream.
    #[error("the request target cannot be sent upstream")]
    InvalidTarget,
    /// The answer could not be prepared for the cache.
    #[error("the upstream answer could not be prepared")]
    Prepare,
    /// The server's credential could not be had: the GitHub App's installation token for the
    /// org (its kind from a fixed set, e.g. `installation_revoked`; never a token).
    #[error("no credential for the org ({0})")]
    Credential(&'static str),
}

impl UpstreamFailure {
    /// A transport error described without its URL (which could carry a query).
    fn transport(error: &reqwest::Error) -> Self {
        UpstreamFailure::Transport(if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "connection failed"
        } else if error.is_body() || error.is_decode() {
            "the answer was cut off"
        } else {
            "request failed"
        })
    }
}

impl Upstream {
    /// Sends `outgoing` to the configured upstream (`GithubClient` resolves every target under
    /// it, so a credential goes nowhere else), unless its budget is paused: then nothing is
    /// sent and the refusal comes back at once. A rate-limit refusal pauses the budget.
    pub(super) async fn send(
        &self,
        outgoing: OutgoingRequest,
    ) -> Result<RawAnswer, UpstreamFailure> {
        self.budgets.check(&outgoing.budget)?;
        if let Some(fleet) = &self.fleet
            && let Some(shared) = fleet.shared_pause(&outgoing.budget.fleet_id()).await
        {
            self.budgets.adopt(&outgoing.budget, shared);
            self.budgets.check(&outgoing.budget)?;
        }
        let url = self
            .github
            .resolve(&outgoing.target)
            .map_err(|_| UpstreamFailure::InvalidTarget)?;
        // The client's own credential is sent as is; else the server's, had only now (an
        // installation token may need fetching or renewing, which a cache hit never waits for).
        let server = match (&outgoing.credential, &outgoing.server_credential) {
            (None, Some(server)) => match self.scope.credential(server).await {
                Ok(credential) => credential,
                Err(error) => {
                    tracing::warn!(
                        partition = &*server.partition,
                        error = %error,
                        "the pass-through has no credential for the org"
                    );
                    return Err(UpstreamFailure::Credential(error.reason()));
                }
            },
            _ => None,
        };
        let mut builder = self
            .github
            .request_as(outgoing.method, url, server.as_ref())
            // Store plain bodies; the gateway compresses once per entry itself.
            .header(reqwest::header::ACCEPT_ENCODING, "identity");
        for (name, value) in outgoing.headers {
            builder = builder.header(name, value);
        }
        if let Some(credential) = outgoing.credential {
            let mut value = reqwest::header::HeaderValue::from_bytes(credential.as_bytes())
                .map_err(|_| UpstreamFailure::InvalidTarget)?;
            value.set_sensitive(true);
            builder = builder.header(reqwest::header::AUTHORIZATION, value);
        }
        if let Some(body) = outgoing.body {
            builder = builder.body(body);
        }
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let response = builder.send().await.map_err(|e| {
            metrics::counter!(UPSTREAM_METRIC, "status" => "error").increment(1);
            UpstreamFailure::transport(&e)
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED
            && server.is_some()
            && let Some(server) = &outgoing.server_credential
        {
            self.scope.refused(server).await;
        }
        metrics::counter!(UPSTREAM_METRIC, "status" => status.as_str().to_owned()).increment(1);
        let headers = response.headers().clone();
        if let Some(rl) = RateLimit::from_headers(&headers) {
            *self.rate_limit.lock() = Some(SeenRateLimit {
                limit: rl.limit,
                remaining: rl.remaining,
                reset_epoch_secs: rl.reset_epoch_secs,
                seen_at_ms: hubcache_shared::snapshot::now_ms(),
            });
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| UpstreamFailure::transport(&e))?;
        let wait = super::freshness::rate_limit_duration(status, &headers, &body);
        let paused = self
            .budgets
            .observe(&outgoing.budget, status.as_u16(), &headers, wait);
        // Shared before the refusal is answered, so no other replica's next request goes out.
        if let (Some(pause), Some(fleet)) = (paused, &self.fleet) {
            fleet.share_pause(&outgoing.budget.fleet_id(), pause).await;
        }
        Ok(RawAnswer {
            status,
            headers,
            body,
        })
    }
}
