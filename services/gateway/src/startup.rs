//! Building and running the gateway: Redis, the in-process copies, the HTTP server and the
//! background tasks beside it.
//!
//! All shared state (served copies, pass-through, rate limiter) is built once here, outside the
//! `HttpServer::new` closure, and cloned (as `Arc`s) into every worker: state built inside the
//! closure would exist once per worker and split the caches.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use hubcache_admin::Liveness;
use hubcache_shared::github::ClientOptions;
use hubcache_shared::shutdown::{self, CancellationToken, Supervisor};
use hubcache_shared::{GithubClient, KeySchema, RedisConnector};
use tracing_actix_web::TracingLogger;

use crate::app_state::AppState;
use crate::body_urls::BodyUrlRewriter;
use crate::client_rate_limit::{ClientRateLimiter, client_rate_limit};
use crate::fleet_cache::FleetCache;
use crate::passthrough::PassThrough;
use crate::request_hygiene::{RequestHygiene, request_hygiene};
use crate::request_log::{PathOnlyRootSpan, RequestMetrics, request_log};
use crate::routes;
use crate::routes::status::StatusRoutes;
use crate::served_state::ServedState;
use crate::settings::Settings;
use crate::status::StatusBoard;
use crate::stream_listener::{Connected, SharedRedis, StreamListener};
use crate::webhook_intake::{WebhookConfig, WebhookIntake};
use crate::webhook_signature::WebhookSecret;

/// How often idle clients' rate-limit buckets are forgotten.
const RATE_LIMIT_UPKEEP: Duration = Duration::from_secs(60);
/// A client must send its whole request head within this (else 408 and the connection is
/// closed): a slow client (slowloris) holds a connection slot no longer than this.
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle keep-alive connection is closed after this, freeing its slot.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// A connection being shut down is dropped after this even if the client never acknowledges.
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A built gateway: listening, with its copies loaded if Redis was reachable.
pub struct Application {
    port: u16,
    server: Server,
    /// One stream listener per org, with the session opened at build (if Redis was up).
    listeners: Vec<(StreamListener, Option<Connected>)>,
    rate_limiter: web::Data<ClientRateLimiter>,
    liveness: Liveness,
    /// The pass-through cache shared with the other replicas (its connection and wake-ups).
    fleet: Option<FleetCache>,
    /// The status page's board (sampled in the background), unless `STATUS_PAGE=off`.
    status_board: Option<Arc<StatusBoard>>,
    shutdown_timeout: Duration,
}

/// Unsent response bytes a client connection may hold in the kernel before the socket stops
/// reporting itself writable (Linux `TCP_NOTSENT_LOWAT`). Without it a connection keeps writing
/// until its autotuned send buffer (up to 4 MiB) is full, so one fast reader takes a whole multi-MB
/// body per turn while the others wait: `scripts/bench.sh` measured p99 1.3 s on the 5 MB repos list
/// against 0.12 s with this bound (and 1.5x the throughput). It bounds only data not yet sent, not
/// the congestion window, so a distant client's transfer rate is unchanged. 64 KiB is one body
/// slice (`representation`); 16 and 32 KiB measured worse (more wake-ups per response).
const UNSENT_LOW_WATER_BYTES: u32 = 64 * 1024;

/// The `on_connect` hook that tunes every client connection:
/// - `TCP_USER_TIMEOUT`: response data left unacknowledged (including a receive window the client
///   keeps closed by not reading) for `stall` aborts the connection. actix bounds reading the
///   request head, and `request_hygiene` the body, but nothing bounds writing the response.
/// - `TCP_NOTSENT_LOWAT` ([`UNSENT_LOW_WATER_BYTES`]): large bodies are shared fairly between
///   connections.
fn tune_client_socket(
    stall: Duration,
) -> impl Fn(&dyn std::any::Any, &mut actix_web::dev::Extensions) + Send + Sync + Clone + 'static {
    move |connection, _| {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
            let socket = socket2::SockRef::from(tcp);
            if let Err(e) = socket.set_tcp_user_timeout(Some(stall)) {
                tracing::debug!(error = %e, "setting TCP_USER_TIMEOUT on a client connection failed");
            }
            if let Err(e) = socket.set_tcp_notsent_lowat(UNSENT_LOW_WATER_BYTES) {
                tracing::debug!(error = %e, "setting TCP_NOTSENT_LOWAT on a client connection failed");
            }
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let _ = (connection, stall);
    }
}

impl Application {
    /// Connects to Redis and loads the cached keys and views (if Redis is down, starts anyway:
    /// unloaded keys answer 503 and a background task keeps retrying), then binds `host:port`
    /// (port 0 picks a free port: see [`Application::port`]).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        let orgs = settings.common.orgs();
        let cached = settings.common.cached()?;
        let served = Arc::new(ServedState::new(&orgs, &cached));
        let connector = RedisConnector::new(&settings.common.redis_target()?)?;
        let keys = KeySchema::new(&settings.common.key_prefix);
        let fleet = settings
            .fleet_policy()?
            .map(|policy| FleetCache::new(connector.clone(), keys.clone(), policy));
        let public_url = settings.public_base_url()?;
        let body_urls = BodyUrlRewriter::for_public_url(
            public_url.as_ref(),
            &settings.common.github_base_url()?,
        );
        let webhooks = settings.github_webhook_secret.clone().map(|secret| {
            web::Data::new(WebhookIntake::new(
                WebhookConfig {
                    secret: WebhookSecret::new(secret),
                    orgs: orgs.clone(),
                    max_body_bytes: usize::try_from(settings.webhook_max_body_bytes)
                        .unwrap_or(usize::MAX),
                    delivery_window: Duration::from_secs(settings.webhook_delivery_window_secs),
                },
                KeySchema::new(&settings.common.key_prefix),
                connector.clone(),
            ))
        });
        let redis = SharedRedis::new(connector);
        let webhook_stats = webhooks.as_ref().map(|intake| Arc::clone(&intake.stats));
        let listeners = served.orgs().iter().map(|org| {
            StreamListener::new(
                redis.clone(),
                keys.org(org.login()),
                Arc::clone(org),
                body_urls.clone(),
            )
            .with_webhook_stats(webhook_stats.clone())
        });
        // Every org loads at once: start-up takes as long as the largest org, not the sum.
        let listeners = futures::future::join_all(listeners.map(|listener| async move {
            let connected = match listener.connect_and_load().await {
                Ok(connected) => Some(connected),
                Err(e) => {
                    tracing::warn!(org = listener.org(), error = %format!("{e:#}"), "Redis unavailable at start; serving 503 until it is reachable");
                    None
                }
            };
            (listener, connected)
        }))
        .await;

        let github = GithubClient::new(
            settings.common.github_base_url()?,
            settings.common.github_api_token.clone(),
            &ClientOptions {
                request_timeout: settings.upstream_timeout(),
                ..ClientOptions::default()
            },
        )
        .context("building the GitHub client")?;
        let state = web::Data::new(AppState {
            served: Arc::clone(&served),
            public_url,
            pass_through: PassThrough::new(&settings, github, fleet.clone(), Arc::clone(&served))?,
            metrics: hubcache_shared::metrics::install(),
        });
        routes::describe_metrics();
        crate::webhook_intake::describe_metrics();
        let hygiene = web::Data::new(RequestHygiene::new(&settings)?);
        let rate_limiter = web::Data::new(ClientRateLimiter::new(&settings));
        let request_metrics = web::Data::new(RequestMetrics::default());
        let status_board = settings.status_page_enabled().then(|| {
            Arc::new(StatusBoard::new(
                state.clone(),
                request_metrics.clone(),
                rate_limiter.clone(),
                webhook_stats.clone(),
                &cached,
            ))
        });
        let status_routes = web::Data::new(StatusRoutes {
            board: status_board.clone(),
            allow: settings.status_allow_list()?,
        });
        let liveness = Liveness::new();
        let app_liveness = web::Data::new(liveness.clone());

        let tcp = std::net::TcpListener::bind((settings.host.as_str(), settings.port))
            .with_context(|| format!("binding {}:{}", settings.host, settings.port))?;
        let port = tcp.local_addr()?.port();
        let app_limiter = rate_limiter.clone();
        let mut server = HttpServer::new(move || {
            let app = App::new()
                .app_data(state.clone())
                .app_data(hygiene.clone())
                .app_data(app_limiter.clone())
                .app_data(request_metrics.clone())
                .app_data(app_liveness.clone())
                .app_data(status_routes.clone());
            // Registered only with GITHUB_WEBHOOK_SECRET; the route answers 404 without it.
            let app = match &webhooks {
                Some(intake) => app.app_data(intake.clone()),
                None => app,
            };
            app.wrap(from_fn(client_rate_limit))
                .wrap(from_fn(request_hygiene))
                .wrap(from_fn(request_log))
                .wrap(TracingLogger::<PathOnlyRootSpan>::new())
                .configure(|cfg| routes::configure(cfg, &served))
        })
        .shutdown_timeout(settings.common.shutdown_timeout_secs)
        .max_connections(settings.max_connections_per_worker())
        .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
        .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
        .keep_alive(KEEP_ALIVE)
        .on_connect(tune_client_socket(Duration::from_secs(
            settings.client_stall_timeout_secs,
        )))
        .disable_signals();
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        let server = server.listen(tcp)?.run();
        Ok(Self {
            port,
            server,
            listeners,
            rate_limiter,
            fleet,
            status_board,
            liveness,
            shutdown_timeout: Duration::from_secs(settings.common.shutdown_timeout_secs),
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight requests and stops the
    /// background tasks (at most `SHUTDOWN_TIMEOUT_SECS`). The HTTP server, each org's stream
    /// listener, the fleet cache (its connection and wake-ups) and the rate-limit upkeep are
    /// supervised: one that ends unexpectedly (an error, a panic) stops the others and is
    /// returned as the error. `/livez` answers 503 from the moment the drain begins.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let stop = shutdown.child_token();
        self.liveness.follow(&stop);
        let mut supervisor = Supervisor::new(stop.clone());
        supervisor.spawn("http server", serve_until(self.server, stop.clone()));
        for (listener, connected) in self.listeners {
            let listener = listener.run(connected, stop.clone());
            // One name for every org's listener: a task name is fixed and short.
            supervisor.spawn("stream listener", async move {
                listener.await;
                Ok(())
            });
        }
        if let Some(fleet) = self.fleet {
            let run = fleet.run(stop.clone());
            supervisor.spawn("fleet cache", async move {
                run.await;
                Ok(())
            });
        }
        if let Some(board) = self.status_board {
            let run = board.run(stop.clone());
            supervisor.spawn("status sampler", async move {
                run.await;
                Ok(())
            });
        }
        if self.rate_limiter.is_enabled() {
            let limiter = self.rate_limiter.clone();
            supervisor.spawn("rate-limit upkeep", async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return Ok(()),
                        () = tokio::time::sleep(RATE_LIMIT_UPKEEP) => limiter.forget_idle(),
                    }
                }
            });
        }
        Ok(supervisor.supervise(self.shutdown_timeout).await?)
    }

    /// Serves until SIGINT/SIGTERM (or a task fails).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run(shutdown::cancel_on_signal()).await
    }
}

/// Runs `server` until `stop` is cancelled, then stops it gracefully (in-flight requests finish,
/// within the server's shutdown timeout).
async fn serve_until(server: Server, stop: CancellationToken) -> anyhow::Result<()> {
    let handle = server.handle();
    let mut server = std::pin::pin!(server);
    tokio::select! {
        finished = &mut server => finished.context("the HTTP server failed"),
        () = stop.cancelled() => {
            // The server future carries out the stop command: poll both.
            let ((), stopped) = tokio::join!(handle.stop(true), server);
            stopped.context("the HTTP server failed while stopping")
        }
    }
}
