//! The admin listener on `METRICS_PORT`: `GET /metrics` (Prometheus text format) and
//! `GET /livez` (200 while the process runs), for Prometheus and liveness probes.
//!
//! Separate from any data path on purpose: the views service serves no clients, so this is its only
//! listener. One actix-web worker is plenty for a scrape every few seconds. (The fetcher has
//! the same module: shared/ must not know any HTTP server.)

use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use hubcache_shared::metrics::{CONTENT_TYPE, MetricsHandle};
use tokio_util::sync::CancellationToken;

/// A bound admin server, started by [`AdminListener::run`].
pub(crate) struct AdminListener {
    server: Server,
    port: u16,
}

impl std::fmt::Debug for AdminListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminListener")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl AdminListener {
    /// Binds `0.0.0.0:port` (all interfaces: Prometheus scrapes from another host or
    /// container); `None` when `port` is 0 (disabled).
    pub(crate) fn bind(port: u16, metrics: MetricsHandle) -> anyhow::Result<Option<Self>> {
        if port == 0 {
            return Ok(None);
        }
        let tcp = std::net::TcpListener::bind(("0.0.0.0", port))
            .with_context(|| format!("binding the admin listener METRICS_PORT={port}"))?;
        let port = tcp.local_addr()?.port();
        tracing::info!(port, "admin listener (/metrics, /livez) bound");
        let metrics = web::Data::new(metrics);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(metrics.clone())
                .route("/metrics", web::get().to(render_metrics))
                .route("/livez", web::get().to(livez))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(tcp)?
        .run();
        Ok(Some(Self { server, port }))
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        shutdown.cancelled().await;
        handle.stop(true).await;
        if let Ok(Err(e)) = server.await {
            tracing::warn!(error = %e, "admin listener failed");
        }
    }
}

async fn render_metrics(metrics: web::Data<MetricsHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, CONTENT_TYPE))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(metrics.render())
}

async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "alive" }))
}
