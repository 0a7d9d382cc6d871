//! One log line per request (method, route template, status, latency, `Cache-Status`) and the
//! request metrics (count by route template, method and status; latency histogram), inside the
//! request span that `tracing-actix-web` opens; the span's request id is echoed as
//! `x-request-id` so a
//! client's report can be matched to the logs.
//!
//! Never logged: headers (the `Authorization` header and the token in particular) and bodies.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, web};
use parking_lot::RwLock;
use tracing_actix_web::RequestId;

use crate::cache_status::CACHE_STATUS;

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
    let mut request_id_text = uuid::Uuid::encode_buffer();
    let request_id: &str = match request_id {
        Some(id) => uuid::Uuid::from(id)
            .hyphenated()
            .encode_lower(&mut request_id_text),
        None => "",
    };
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let elapsed = started.elapsed();
    let route = route_label(response.request());
    let status = response.status();
    let cache_status = response
        .headers()
        .get(CACHE_STATUS)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info!(
        method = %method,
        route = &*route,
        status = status.as_u16(),
        latency_us = elapsed.as_micros() as u64,
        cache_status,
        request_id,
        "request"
    );
    let method = method_label(&method);
    match response.request().app_data::<web::Data<RequestMetrics>>() {
        Some(metrics) => metrics.record(&route, method, status, elapsed),
        None => RequestHandles::register(&route, method, status).record(elapsed),
    }
    Ok(response)
}

/// The route template a request matched, or [`PASSTHROUGH_ROUTE`].
///
/// A matched resource's name (the routes name their resources after their first pattern) is
/// read without allocating; otherwise actix rebuilds the pattern (allocating, and for an
/// unmatched path trying every route again), which only unnamed and unmatched routes pay.
fn route_label(req: &HttpRequest) -> Cow<'_, str> {
    if let Some(name) = req.match_name() {
        return Cow::Borrowed(name);
    }
    req.match_pattern()
        .map_or(Cow::Borrowed(PASSTHROUGH_ROUTE), Cow::Owned)
}

/// The request metrics' handles, registered once per (route template, method, status) and
/// reused.
///
/// Looking a labelled metric up through the `metrics` macros builds its key (owned label
/// strings, a hash) and searches the recorder's registry on every request; a handle skips both.
/// Every label is bounded (route templates, [`method_label`], status codes), so this map is too.
/// Registered in the app's data when the recorder exists; without it (unit tests) the macros
/// are used directly.
#[derive(Default)]
pub(crate) struct RequestMetrics {
    /// Requests answered by this process (the status page's request rate).
    answered: std::sync::atomic::AtomicU64,
    by_route: RwLock<HashMap<Box<str>, HashMap<(&'static str, u16), RequestHandles>>>,
}

impl RequestMetrics {
    /// Requests answered so far by this process.
    pub(crate) fn answered(&self) -> u64 {
        self.answered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts one request and records its latency.
    fn record(&self, route: &str, method: &'static str, status: StatusCode, elapsed: Duration) {
        self.answered
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = (method, status.as_u16());
        if let Some(handles) = self.by_route.read().get(route).and_then(|m| m.get(&key)) {
            handles.record(elapsed);
            return;
        }
        let handles = RequestHandles::register(route, method, status);
        handles.record(elapsed);
        self.by_route
            .write()
            .entry(Box::from(route))
            .or_default()
            .insert(key, handles);
    }
}

/// The two series one request updates.
struct RequestHandles {
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

impl RequestHandles {
    fn register(route: &str, method: &'static str, status: StatusCode) -> Self {
        Self {
            requests: metrics::counter!(
                REQUESTS_METRIC,
                "route" => route.to_owned(),
                "method" => method,
                "status" => status.as_str().to_owned()
            ),
            duration: metrics::histogram!(
                DURATION_METRIC,
                "route" => route.to_owned(),
                "method" => method
            ),
        }
    }

    fn record(&self, elapsed: Duration) {
        self.requests.increment(1);
        self.duration.record(elapsed.as_secs_f64());
    }
}

/// The route label of requests no route template matched (the pass-through): one value, so
/// arbitrary client paths never become label values.
pub(crate) const PASSTHROUGH_ROUTE: &str = "passthrough";
/// `hubcache_http_requests_total{route,method,status}`.
pub(crate) const REQUESTS_METRIC: &str = "hubcache_http_requests_total";
/// `hubcache_http_request_duration_seconds{route,method}`: time to the response head.
pub(crate) const DURATION_METRIC: &str = "hubcache_http_request_duration_seconds";

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
    /// The request span when traces are exported; otherwise none at all. Log lines never render
    /// it (see `REQUEST_SPAN_NAME`: the request log line carries the request id), and computing
    /// its fields (the route template means matching the path again) costs more than serving a
    /// cached key.
    fn on_request_start(request: &ServiceRequest) -> tracing::Span {
        if hubcache_shared::telemetry::is_exporting() {
            request_span(request)
        } else {
            tracing::Span::none()
        }
    }

    fn on_request_end<B: MessageBody>(
        span: tracing::Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The exported request span: OpenTelemetry's HTTP server attributes, with `http.target`
/// holding the path only.
fn request_span(request: &ServiceRequest) -> tracing::Span {
    let route = request
        .match_pattern()
        .unwrap_or_else(|| PASSTHROUGH_ROUTE.to_owned());
    tracing::info_span!(
        hubcache_shared::telemetry::REQUEST_SPAN_NAME,
        http.method = %request.method(),
        http.route = %route,
        http.target = %request.path(),
        http.client_ip = %request.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default(),
        http.status_code = tracing::field::Empty,
        otel.name = %format!("{} {route}", request.method()),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        request_id = %request.extensions().get::<RequestId>().map(ToString::to_string).unwrap_or_default(),
        exception.message = tracing::field::Empty,
        exception.details = tracing::field::Empty,
    )
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

    /// A JSON subscriber that renders the current span into every line, like a log pipeline
    /// that did not know to leave request spans out (trace backends see every field).
    fn json_capture() -> (Capture, impl tracing::Subscriber) {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_writer(move || writer.clone())
            .finish();
        (capture, subscriber)
    }

    #[actix_web::test]
    async fn the_exported_request_span_never_records_the_query_string() {
        let (capture, subscriber) = json_capture();
        let _guard = tracing::subscriber::set_default(subscriber);
        let req = actix_web::test::TestRequest::get()
            .uri("/x?access_token=ghp_supersecret")
            .to_srv_request();
        request_span(&req).in_scope(|| tracing::info!("inside"));
        let logged = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
        assert!(logged.contains("\"http.target\":\"/x\""), "{logged}");
        assert!(!logged.contains("ghp_supersecret"), "{logged}");
    }

    #[actix_web::test]
    async fn the_request_log_line_has_the_request_id_and_no_query_string() {
        let (capture, subscriber) = json_capture();
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
        let request_id = resp
            .headers()
            .get(REQUEST_ID_HEADER)
            .expect("x-request-id")
            .to_str()
            .expect("ascii");
        assert_eq!(request_id.len(), 36, "a hyphenated uuid: {request_id}");
        let logged = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
        let line: serde_json::Value = logged
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .find(|v: &serde_json::Value| v["fields"]["message"] == "request")
            .unwrap_or_else(|| panic!("no request line in {logged}"));
        assert_eq!(line["fields"]["request_id"], request_id, "{line}");
        assert_eq!(line["fields"]["route"], "/x", "{line}");
        assert_eq!(line["fields"]["status"], 200, "{line}");
        assert!(!logged.contains("ghp_supersecret"), "{logged}");
    }
}
