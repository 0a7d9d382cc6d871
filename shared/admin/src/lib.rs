//! hubcache-admin: the admin endpoints every hubcache service serves, for Prometheus and
//! liveness probes (compose health checks, Kubernetes `livenessProbe`).
//!
//! Layout:
//! - [`Liveness`]: whether the process is draining; [`livez`], the `GET /livez` handler that
//!   answers 200 until then and 503 from then on.
//! - [`AdminListener`]: the listener on `METRICS_PORT` that the fetcher and the views service
//!   run beside their workers (`/metrics`, `/livez`), and [`AdminServer`], the running one.
//!   The gateway serves the same [`livez`] on its own port.
//!
//! A crate of its own because `hubcache-shared` knows no HTTP server (its architecture
//! invariant), while the services must not each keep a copy of this one.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use actix_web::dev::ServerHandle;
use actix_web::http::header;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use hubcache_shared::metrics::{CONTENT_TYPE, MetricsHandle};
use tokio_util::sync::CancellationToken;

/// What `/livez` reports: alive until the service begins to drain.
///
/// Made before the server that reads it (the gateway builds its `HttpServer` before it runs), and
/// tied to the service's stop token with [`Liveness::follow`] when the service starts its tasks.
/// Once that token is cancelled (a signal, or a task that failed) `/livez` answers 503, so a
/// probe sees a process that is on its way out, never a healthy-looking one that stopped working.
#[derive(Debug, Clone, Default)]
pub struct Liveness {
    stop: Arc<OnceLock<CancellationToken>>,
}

impl Liveness {
    /// Alive, until [`Liveness::follow`] ties it to a token that is then cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on the process counts as draining as soon as `stop` is cancelled. Only the first
    /// call counts (a service runs once).
    pub fn follow(&self, stop: &CancellationToken) {
        if self.stop.set(stop.clone()).is_err() {
            tracing::warn!("liveness already follows a stop token; ignoring another one");
        }
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.stop.get().is_some_and(CancellationToken::is_cancelled)
    }
}

/// `GET /livez`: 200 `{"status":"alive"}` while the process runs, 503 `{"message":...}` once it
/// drains (see [`Liveness`]). Needs `web::Data<Liveness>` in the app.
pub async fn livez(liveness: web::Data<Liveness>) -> HttpResponse {
    if liveness.is_draining() {
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "message": "shutting down", "status": "draining" }))
    } else {
        HttpResponse::Ok().json(serde_json::json!({ "status": "alive" }))
    }
}

/// `GET /metrics`: the process's Prometheus text exposition.
async fn render_metrics(metrics: web::Data<MetricsHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, CONTENT_TYPE))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(metrics.render())
}

/// The admin routes (`/metrics`, `/livez`) with their state, for an `App`.
fn routes(
    metrics: web::Data<MetricsHandle>,
    liveness: web::Data<Liveness>,
) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        cfg.app_data(metrics.clone())
            .app_data(liveness.clone())
            .route("/metrics", web::get().to(render_metrics))
            .route("/livez", web::get().to(livez));
    }
}

/// The bound, not yet serving admin listener of a service without an HTTP front of its own.
///
/// Separate from any data path on purpose, and small: one actix-web worker is plenty for a
/// scrape every few seconds and a probe.
pub struct AdminListener {
    tcp: std::net::TcpListener,
    port: u16,
    metrics: MetricsHandle,
    liveness: Liveness,
}

impl std::fmt::Debug for AdminListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminListener")
            .field("port", &self.port)
            .field("liveness", &self.liveness)
            .finish_non_exhaustive()
    }
}

impl AdminListener {
    /// Binds `0.0.0.0:port` (all interfaces: Prometheus scrapes from another host or
    /// container); `None` when `port` is 0 (disabled). Binding at build time makes a taken port
    /// fail the start, and lets tests read the real port.
    pub fn bind(
        port: u16,
        metrics: MetricsHandle,
        liveness: Liveness,
    ) -> anyhow::Result<Option<Self>> {
        if port == 0 {
            return Ok(None);
        }
        let tcp = std::net::TcpListener::bind(("0.0.0.0", port))
            .with_context(|| format!("binding the admin listener METRICS_PORT={port}"))?;
        let port = tcp.local_addr()?.port();
        tracing::info!(port, "admin listener (/metrics, /livez) bound");
        Ok(Some(Self {
            tcp,
            port,
            metrics,
            liveness,
        }))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts serving (needs a Tokio runtime). It serves until [`AdminServer::stop`], which a
    /// service calls after its other tasks drained, so `/livez` answers 503 all through the
    /// drain.
    pub fn start(self) -> anyhow::Result<AdminServer> {
        let routes = routes(web::Data::new(self.metrics), web::Data::new(self.liveness));
        let server = HttpServer::new(move || App::new().configure(routes.clone()))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(self.tcp)
            .context("starting the admin listener")?
            .run();
        let handle = server.handle();
        let ended = CancellationToken::new();
        let task = tokio::spawn({
            let ended = ended.clone();
            async move {
                if let Err(e) = server.await {
                    tracing::error!(error = %e, "admin listener failed");
                }
                ended.cancel();
            }
        });
        Ok(AdminServer {
            handle,
            ended,
            task,
        })
    }
}

/// A running admin listener.
#[derive(Debug)]
pub struct AdminServer {
    handle: ServerHandle,
    ended: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl AdminServer {
    /// A task for the service's supervisor: `Ok` once `stop` is cancelled (the server itself
    /// keeps serving until [`AdminServer::stop`]), an error if the server stopped before that.
    pub fn watch(
        &self,
        stop: CancellationToken,
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
        let ended = self.ended.clone();
        async move {
            tokio::select! {
                biased;
                () = stop.cancelled() => Ok(()),
                () = ended.cancelled() => anyhow::bail!("the admin listener stopped by itself"),
            }
        }
    }

    /// Stops serving (requests in progress finish, at most 1 s) and waits until it stopped.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test;

    use super::*;

    async fn livez_status(liveness: &Liveness) -> u16 {
        let app = test::init_service(App::new().configure(routes(
            web::Data::new(hubcache_shared::metrics::install()),
            web::Data::new(liveness.clone()),
        )))
        .await;
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/livez").to_request()).await;
        response.status().as_u16()
    }

    #[actix_web::test]
    async fn livez_answers_200_until_the_followed_token_is_cancelled_then_503() {
        let liveness = Liveness::new();
        assert_eq!(
            livez_status(&liveness).await,
            200,
            "alive before it follows a token"
        );
        let stop = CancellationToken::new();
        liveness.follow(&stop);
        assert_eq!(livez_status(&liveness).await, 200);
        stop.cancel();
        assert!(liveness.is_draining());
        assert_eq!(livez_status(&liveness).await, 503);
    }

    #[actix_web::test]
    async fn metrics_are_prometheus_text() {
        let app = test::init_service(App::new().configure(routes(
            web::Data::new(hubcache_shared::metrics::install()),
            web::Data::new(Liveness::new()),
        )))
        .await;
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(CONTENT_TYPE.as_bytes())
        );
    }
}
