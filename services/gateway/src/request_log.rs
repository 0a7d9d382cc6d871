//! One log line per request (method, route template, status, latency) inside the request span
//! that `tracing-actix-web` opens, and the span's request id echoed as `x-request-id` so a
//! client's report can be matched to the logs.
//!
//! Never logged: headers (the `Authorization` header and the token in particular) and bodies.

use std::time::Instant;

use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
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
    tracing::info!(
        method = %method,
        route = response.request().match_pattern().as_deref().unwrap_or("(pass-through)"),
        status = response.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    Ok(response)
}
