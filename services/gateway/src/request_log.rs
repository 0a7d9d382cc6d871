//! One log line per request (method, route template, status, latency, `Cache-Status`) and the
//! request metrics (count by route template, method and status; latency histogram), inside the
//! request span that `tracing-actix-web` opens; the span's request id is echoed as
//! `x-request-id` so a
//! client's report can be matched to the logs.
//!
//! Never logged: headers (the `Authorization` header and the token in particular) and bodies.

use std::time::Instant;

use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing_actix_web::RequestId;

/// The response header carrying the request id.
pub(crate) const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The middleware (registered inside `TracingLogger`, so it runs in the request's span).
pub(crate) async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let mut response = next.call(req).await?;
    let request_id = response.request().extensions().get::<RequestId>().copied();
    if let Some(id) = request_id
        && let Ok(value) = HeaderValue::from_str(&id.to_string())
    {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let elapsed = started.elapsed();
    let pattern = response.request().match_pattern();
    let route = pattern.as_deref().unwrap_or(PASSTHROUGH_ROUTE);
    let status = response.status();
    let cache_status = response
        .headers()
        .get("cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info!(
        method = %method,
        route,
        status = status.as_u16(),
        latency_us = elapsed.as_micros() as u64,
        cache_status,
        "request"
    );
    let method = method_label(&method);
    metrics::counter!(
        REQUESTS_METRIC,
        "route" => route.to_owned(),
        "method" => method,
        "status" => status.as_str().to_owned()
    )
    .increment(1);
    metrics::histogram!(DURATION_METRIC, "route" => route.to_owned(), "method" => method)
        .record(elapsed.as_secs_f64());
    Ok(response)
}

/// The route label of requests no route template matched (the pass-through): one value, so
/// arbitrary client paths never become label values.
pub(crate) const PASSTHROUGH_ROUTE: &str = "passthrough";
/// `hubcache_http_requests_total{route,method,status}`.
const REQUESTS_METRIC: &str = "hubcache_http_requests_total";
/// `hubcache_http_request_duration_seconds{route,method}`: time to the response head.
const DURATION_METRIC: &str = "hubcache_http_request_duration_seconds";

/// The method as a bounded label value (clients may send any token as a method).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
