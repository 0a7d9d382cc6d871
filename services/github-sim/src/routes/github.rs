//! The GitHub REST routes: every path outside `/_sim/`, answered the way api.github.com answers
//! (headers, conditional requests, rate limit, errors), with queued faults applied first.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use serde::Serialize;

use crate::catalog::{Rendered, Served};
use crate::conditional::{if_none_match_matches, not_modified_since};
use crate::credential::credential_label;
use crate::faults::{FaultAction, InjectedStatus};
use crate::pagination::{PageRequest, link_header};
use crate::rate_limit::{RateLimitState, RateLimiter};
use crate::state::SimState;

const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";
const VARY: &str = "Accept, Authorization, Cookie, X-GitHub-OTP";
const EXPOSED_HEADERS: &str = "ETag, Link, Location, Retry-After, X-GitHub-OTP, \
    X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, \
    X-RateLimit-Reset, X-OAuth-Scopes, X-Accepted-OAuth-Scopes, X-Poll-Interval, \
    X-GitHub-Media-Type, X-GitHub-SSO, X-GitHub-Request-Id, Deprecation, Sunset";
const DOCS: &str = "https://docs.github.com/rest";
const PRIMARY_LIMIT_DOCS: &str =
    "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting";
const SECONDARY_LIMIT_DOCS: &str = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits";

/// The error answers GitHub gives, each with its status and body.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GithubError {
    /// No such resource, or a method GitHub does not serve there (GitHub answers 404 to both).
    #[error("Not Found")]
    NotFound,
    /// The primary budget is spent (for real, or by an injected fault), anonymous client.
    #[error(
        "API rate limit exceeded for {ip}. (But here's the good news: Authenticated requests get a higher rate limit. Check out the documentation for more details.)"
    )]
    AnonymousRateLimit { ip: String },
    /// The primary budget is spent, client with credentials.
    #[error("API rate limit exceeded for user ID 1.")]
    AuthenticatedRateLimit,
    /// A secondary (abuse) limit: injected 403 or 429.
    #[error(
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID {request_id}."
    )]
    SecondaryRateLimit {
        status: StatusCode,
        request_id: String,
    },
    /// Any other injected status.
    #[error("{}", .0.canonical_reason().unwrap_or("Error"))]
    Injected(StatusCode),
}

/// GitHub's error body; field order as GitHub writes it.
#[derive(Serialize)]
struct ErrorBody {
    message: String,
    documentation_url: &'static str,
}

impl GithubError {
    fn status(&self) -> StatusCode {
        match self {
            GithubError::NotFound => StatusCode::NOT_FOUND,
            GithubError::AnonymousRateLimit { .. } | GithubError::AuthenticatedRateLimit => {
                StatusCode::FORBIDDEN
            }
            GithubError::SecondaryRateLimit { status, .. } | GithubError::Injected(status) => {
                *status
            }
        }
    }

    fn body(&self) -> ErrorBody {
        let documentation_url = match self {
            GithubError::AnonymousRateLimit { .. } | GithubError::AuthenticatedRateLimit => {
                PRIMARY_LIMIT_DOCS
            }
            GithubError::SecondaryRateLimit { .. } => SECONDARY_LIMIT_DOCS,
            GithubError::NotFound | GithubError::Injected(_) => DOCS,
        };
        ErrorBody {
            message: self.to_string(),
            documentation_url,
        }
    }
}

/// What every answer to one request shares.
struct Exchange<'a> {
    state: &'a SimState,
    request: &'a HttpRequest,
    authorized: bool,
    /// The request's rate-limit budget (see [`RateLimiter::key`]).
    budget: String,
    request_id: String,
}

/// Answers one GitHub request.
pub(crate) async fn github_api(request: HttpRequest, state: web::Data<SimState>) -> HttpResponse {
    let path = state.github_path(request.path());
    let authorization = request.headers().get(header::AUTHORIZATION);
    let authorized = authorization.is_some();
    let mut credential = credential_label(authorization.map(HeaderValue::as_bytes));
    let installation = match (&state.app, authorization.and_then(|v| v.to_str().ok())) {
        (Some(app), Some(value)) => app.installation_token(value),
        _ => None,
    };
    if let Some(Ok(id)) = installation {
        // Every token of an installation spends the installation's one budget.
        credential = format!("installation-{id}");
    }
    state
        .stats
        .request(path, request.method().as_str(), &credential, authorized);
    if let Some(app) = &state.app
        && let Some(answer) = super::app::app_route(app, &request, path)
    {
        return answer;
    }
    if let Some(Err(refused)) = installation {
        return super::app::refused(&refused);
    }
    let budget = RateLimiter::key(&credential, authorized, &client_ip(&request));
    let latency = state.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let exchange = Exchange {
        state: &state,
        request: &request,
        authorized,
        budget,
        request_id: state.next_request_id(),
    };
    let page = PageRequest::from_query(request.query_string());

    let mut truncate = false;
    if let Some(hit) = state.faults.take(path, page.page) {
        state.stats.fault_served();
        if !hit.delay.is_zero() {
            tokio::time::sleep(hit.delay).await;
        }
        match hit.action {
            FaultAction::Respond(injected) => return exchange.injected(injected),
            FaultAction::Truncate => truncate = true,
            FaultAction::Delay => {}
        }
    }

    let readable = matches!(*request.method(), Method::GET | Method::HEAD);
    let served = if readable {
        state.catalog.read().resolve(path, page)
    } else {
        None
    };
    if let Some(served) = &served
        && !truncate
        && exchange.not_modified(&served.rendered)
    {
        state.stats.not_modified();
        let rate = state.rate_limit.current(&exchange.budget);
        return exchange
            .found(StatusCode::NOT_MODIFIED, served, rate)
            .finish();
    }
    let rate = match state.rate_limit.spend(&exchange.budget) {
        Ok(rate) => {
            state.stats.rate_limit_spent();
            rate
        }
        Err(exhausted) => {
            state.stats.rate_limited();
            return exchange.error(&exchange.primary_limit(), exhausted);
        }
    };
    match served {
        None => exchange.error(&GithubError::NotFound, rate),
        Some(served) => {
            let body = &served.rendered.body;
            let body = if truncate {
                body.slice(..body.len() / 2)
            } else {
                body.clone()
            };
            exchange
                .found(StatusCode::OK, &served, rate)
                .insert_header((header::CONTENT_TYPE, JSON_CONTENT_TYPE))
                .body(body)
        }
    }
}

impl Exchange<'_> {
    /// Whether the request's preconditions say the client's copy is current. `If-None-Match`
    /// decides when present; `If-Modified-Since` only otherwise (RFC 9110).
    fn not_modified(&self, rendered: &Rendered) -> bool {
        let headers = self.request.headers();
        let mut if_none_match = headers.get_all(header::IF_NONE_MATCH).peekable();
        if if_none_match.peek().is_some() {
            return if_none_match
                .filter_map(|value| value.to_str().ok())
                .any(|value| if_none_match_matches(value, &rendered.etag));
        }
        match (
            headers.get(header::IF_MODIFIED_SINCE),
            rendered.last_modified,
        ) {
            (Some(since), Some(last_modified)) => since
                .to_str()
                .is_ok_and(|since| not_modified_since(since, last_modified)),
            _ => false,
        }
    }

    /// Headers every API answer carries.
    fn builder(&self, status: StatusCode, rate: RateLimitState) -> HttpResponseBuilder {
        let mut builder = HttpResponse::build(status);
        builder
            .insert_header(("x-github-media-type", "github.v3; format=json"))
            .insert_header(("x-github-api-version-selected", "2022-11-28"))
            .insert_header(("x-github-request-id", self.request_id.as_str()))
            .insert_header(("x-ratelimit-limit", rate.limit))
            .insert_header(("x-ratelimit-remaining", rate.remaining))
            .insert_header(("x-ratelimit-used", rate.used))
            .insert_header(("x-ratelimit-reset", rate.reset))
            .insert_header(("x-ratelimit-resource", "core"))
            .insert_header((header::VARY, VARY))
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
            .insert_header((header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED_HEADERS))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
        builder
    }

    /// A 200 or 304 for a resource: the common headers plus its validators and `Link`.
    fn found(
        &self,
        status: StatusCode,
        served: &Served,
        rate: RateLimitState,
    ) -> HttpResponseBuilder {
        let mut builder = self.builder(status, rate);
        let cache_control = if self.authorized {
            "private, max-age=60, s-maxage=60"
        } else {
            "public, max-age=60, s-maxage=60"
        };
        builder
            .insert_header((header::CACHE_CONTROL, cache_control))
            .insert_header((header::ETAG, served.rendered.etag.as_str()));
        if let Some(last_modified) = served.rendered.last_modified {
            builder.insert_header((
                header::LAST_MODIFIED,
                httpdate::fmt_http_date(last_modified),
            ));
        }
        if let Some(listing) = &served.listing
            && let Some(link) = link_header(
                &self.state.base_url,
                &listing.link_path,
                self.request.query_string(),
                listing.page,
                listing.last_page,
            )
            && let Ok(link) = HeaderValue::from_str(&link)
        {
            builder.insert_header((header::LINK, link));
        }
        builder
    }

    fn error(&self, error: &GithubError, rate: RateLimitState) -> HttpResponse {
        self.builder(error.status(), rate)
            .insert_header((header::CONTENT_TYPE, JSON_CONTENT_TYPE))
            .json(error.body())
    }

    /// An injected error answer. Secondary limits (403/429) and injected primary limits spend
    /// nothing; other failures spend one request, as a failed request does on GitHub.
    fn injected(&self, injected: InjectedStatus) -> HttpResponse {
        let rate_limits = matches!(
            injected.status,
            StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
        );
        let (error, rate) = if injected.primary {
            (
                self.primary_limit(),
                self.state.rate_limit.current(&self.budget).exhausted(),
            )
        } else if rate_limits {
            let error = GithubError::SecondaryRateLimit {
                status: injected.status,
                request_id: self.request_id.clone(),
            };
            (error, self.state.rate_limit.current(&self.budget))
        } else {
            let rate = match self.state.rate_limit.spend(&self.budget) {
                Ok(rate) => {
                    self.state.stats.rate_limit_spent();
                    rate
                }
                Err(exhausted) => exhausted,
            };
            (GithubError::Injected(injected.status), rate)
        };
        let mut builder = self.builder(error.status(), rate);
        if let Some(seconds) = injected.retry_after {
            builder.insert_header((header::RETRY_AFTER, seconds));
        }
        builder
            .insert_header((header::CONTENT_TYPE, JSON_CONTENT_TYPE))
            .json(error.body())
    }

    fn primary_limit(&self) -> GithubError {
        if self.authorized {
            return GithubError::AuthenticatedRateLimit;
        }
        GithubError::AnonymousRateLimit {
            ip: client_ip(self.request),
        }
    }
}

/// The client's IP address, which GitHub counts anonymous requests by.
fn client_ip(request: &HttpRequest) -> String {
    request
        .peer_addr()
        .map_or_else(|| "127.0.0.1".to_owned(), |peer| peer.ip().to_string())
}
