//! Telemetry: structured logs through `tracing`, and OpenTelemetry traces when a collector is
//! configured.
//!
//! Logs are human-readable on a terminal and JSON otherwise (containers, CI), filtered by
//! `RUST_LOG` (default `info`). Spans are exported over OTLP/HTTP only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, so the services run the same with no collector present.
//! The W3C trace context crosses services inside stream events ([`current_traceparent`],
//! [`continue_trace`]). JSON lines are `tracing-subscriber`'s JSON format, written by a faster
//! formatter of the same bytes (`json_lines`): services log one line per request.

mod json_lines;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The variable that turns OTLP export on (standard OpenTelemetry name).
pub const OTLP_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The name of the per-request server span (one per HTTP request a service answers). Such spans
/// are exported as traces but never rendered into log lines: the service's one log line per
/// request carries their fields (request id, route, status) itself. Rendering them would format
/// a dozen fields to JSON when the span opens, again when the status is recorded and again for
/// every event inside it; measured on the gateway, that was half the CPU of serving a cached key.
pub const REQUEST_SPAN_NAME: &str = "HTTP request";

/// Whether [`init`] installed an OTLP exporter (read on every request, hence an atomic).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (`OTEL_EXPORTER_OTLP_ENDPOINT` was set at [`init`]). Services skip
/// building per-request spans ([`REQUEST_SPAN_NAME`]) when nothing would record them: their
/// fields cost more to compute than a cached answer.
pub fn is_exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Keeps the exporter alive; flushes pending spans when dropped at shutdown.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("telemetry: flushing spans failed: {e}");
        }
    }
}

/// Installs the global subscriber for `service` (e.g. `"gateway"`). Call once, first thing in
/// `main`. Fails only if the OTLP exporter is configured but cannot be built.
pub fn init(service: &'static str) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = !std::io::stderr().is_terminal();
    // Log lines never render request spans (see REQUEST_SPAN_NAME); with no exporter either,
    // such a span is disabled outright and costs nothing.
    let not_a_request_span =
        || filter_fn(|meta| !(meta.is_span() && meta.name() == REQUEST_SPAN_NAME));
    let fmt_human = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(not_a_request_span())
    });
    let fmt_json = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .event_format(json_lines::JsonLines::new())
            .with_writer(std::io::stderr)
            .with_filter(not_a_request_span())
    });

    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = match std::env::var(OTLP_ENDPOINT_VAR) {
        Ok(endpoint) if !endpoint.is_empty() => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()
                .map_err(|e| {
                    anyhow::anyhow!(
                        "building the OTLP exporter for {OTLP_ENDPOINT_VAR}={endpoint}: {e}"
                    )
                })?;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build();
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource)
                    .build(),
            )
        }
        _ => None,
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service)));

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_human)
        .with(fmt_json)
        .with(otel)
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the tracing subscriber: {e}"))?;
    EXPORTING.store(provider.is_some(), Ordering::Relaxed);
    Ok(TelemetryGuard { provider })
}

struct MapCarrier<'a>(&'a mut HashMap<String, String>);

impl Injector for MapCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct TraceparentCarrier<'a>(&'a str);

impl Extractor for TraceparentCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent").then_some(self.0)
    }
    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

/// The W3C `traceparent` of the current span, to put in a stream event; `None` when no trace
/// is being recorded (no exporter configured).
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let mut map = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut MapCarrier(&mut map))
    });
    map.remove("traceparent")
}

/// Makes `span` a child of the producer's span named by `traceparent` (from a stream event), so
/// one trace spans fetcher, views and gateway.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(tp) = traceparent {
        let parent =
            opentelemetry::global::get_text_map_propagator(|p| p.extract(&TraceparentCarrier(tp)));
        if let Err(e) = span.set_parent(parent) {
            tracing::debug!(error = %e, "could not link span to its producer");
        }
    }
}
