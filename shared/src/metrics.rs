//! Prometheus metrics: the one process-wide recorder every service's `metrics::counter!` /
//! `gauge!` / `histogram!` calls feed, rendered in the Prometheus text format, plus the standard
//! process metrics (CPU seconds, resident memory, open file descriptors).
//!
//! Serving `/metrics` is each service's job (this crate knows no HTTP server): call [`install`]
//! at start and answer scrapes with [`MetricsHandle::render`] and [`CONTENT_TYPE`].
//!
//! Naming: every hubcache metric starts with `hubcache_` and follows Prometheus conventions
//! (`_total` counters, `_seconds` and `_bytes` units). Process metrics keep their standard
//! unprefixed names (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_open_fds`) so stock dashboards and alerts work unchanged.
//!
//! Histograms share [`LATENCY_BUCKETS`] (seconds), so they render as real Prometheus histograms
//! (`_bucket`/`_sum`/`_count`) that `histogram_quantile` can aggregate across replicas.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The `Content-Type` of a Prometheus text-format scrape.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of every histogram's buckets: 0.5 ms to 10 s, enough for an in-memory
/// hit (sub-millisecond) as well as a slow upstream page.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often the recorder's histogram buffers are drained even when nobody scrapes (the
/// exporter crate requires this upkeep, or unscraped histograms grow without bound).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Renders this process's metrics. Cheap to clone; every clone reads the same recorder.
#[derive(Clone)]
pub struct MetricsHandle {
    prometheus: PrometheusHandle,
    process: Arc<metrics_process::Collector>,
}

impl std::fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsHandle").finish_non_exhaustive()
    }
}

impl MetricsHandle {
    /// The Prometheus text exposition of every metric recorded in this process, with the
    /// process metrics sampled now.
    pub fn render(&self) -> String {
        self.process.collect();
        self.prometheus.render()
    }
}

static HANDLE: OnceLock<MetricsHandle> = OnceLock::new();

/// Installs the process-wide recorder (first call) and returns a handle to render it.
///
/// Idempotent: later calls (several applications in one test process) return the same handle,
/// so all of them record into, and render, one registry. Also starts a small background thread
/// that runs the recorder's periodic upkeep.
pub fn install() -> MetricsHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .expect("the latency buckets are not empty")
                .build_recorder();
            let prometheus = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                // Only possible if something else installed a recorder first: render what we
                // have (nothing) rather than fail the service.
                tracing::warn!(error = %e, "a metrics recorder was already installed");
            }
            let upkeep = prometheus.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "could not start the metrics upkeep thread");
            }
            let process = metrics_process::Collector::default();
            process.describe();
            MetricsHandle {
                prometheus,
                process: Arc::new(process),
            }
        })
        .clone()
}

/// Milliseconds since the Unix epoch as seconds elapsed until now (0 for a time in the future):
/// the value of the `*_age_seconds` gauges computed from stored `*_at_ms` timestamps.
pub fn age_seconds(at_ms: u64) -> f64 {
    let now = crate::snapshot::now_ms();
    now.saturating_sub(at_ms) as f64 / 1000.0
}
