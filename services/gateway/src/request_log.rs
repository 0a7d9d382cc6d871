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

/// The request span, as `tracing-actix-web`'s default but with `http.target` holding the path
/// only: a query string can carry a credential (`?access_token=`), and spans end up in logs and
/// trace backends. The client address is the peer address, not a forwarded-for header.
pub(crate) struct PathOnlyRootSpan;

impl tracing_actix_web::RootSpanBuilder for PathOnlyRootSpan {
    fn on_request_start(request: &ServiceRequest) -> tracing::Span {
        let method = request.method().as_str().to_owned();
        let route = request
            .match_pattern()
            .unwrap_or_else(|| PASSTHROUGH_ROUTE.to_owned());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let peer = request
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        tracing::info_span!(
            "HTTP request",
            http.method = %method,
            http.route = %route,
            http.target = %request.path(),
            http.client_ip = %peer,
            http.status_code = tracing::field::Empty,
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: tracing::Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

#[cfg(test)]
mod root_span_tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Captures formatted log output.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[actix_web::test]
    async fn the_request_span_never_records_the_query_string() {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = actix_web::test::init_service(
            actix_web::App::new()
                .wrap(actix_web::middleware::from_fn(request_log))
                .wrap(tracing_actix_web::TracingLogger::<PathOnlyRootSpan>::new())
                .route("/x", actix_web::web::get().to(actix_web::HttpResponse::Ok)),
        )
        .await;
        let req = actix_web::test::TestRequest::get()
            .uri("/x?access_token=ghp_supersecret")
            .to_request();
        let resp = actix_web::test::call_service(&app, req).await;
        assert!(resp.status().is_success());
        let logged = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
        assert!(logged.contains("\"http.target\":\"/x\""), "{logged}");
        assert!(!logged.contains("ghp_supersecret"), "{logged}");
    }
}
