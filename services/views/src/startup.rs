//! Building and running the views service: one consumer task and one claim task sharing a
//! worker, and the admin listener, supervised together (`hubcache_shared::shutdown`).

use std::sync::Arc;
use std::time::Duration;

use hubcache_admin::{AdminListener, AdminServer, Liveness};
use hubcache_shared::shutdown::{self, CancellationToken, Supervisor};
use hubcache_shared::{KeySchema, RedisConnector};

use crate::settings::Settings;
use crate::stats::ViewsStats;
use crate::worker::{ViewsWorker, WorkerConfig, consumer_name};

/// A configured views worker, ready to run.
///
/// Building does not connect: Redis may come up after the views service (compose, Kubernetes),
/// and a views worker waits for it rather than exiting. [`Application::run`] connects, retrying
/// until Redis answers.
#[derive(Debug)]
pub struct Application {
    worker: Arc<ViewsWorker>,
    connector: RedisConnector,
    consumer: String,
    stats: ViewsStats,
    shutdown_timeout: Duration,
    admin: Option<AdminListener>,
    liveness: Liveness,
}

impl Application {
    /// Validates `settings` and prepares the worker (its consumer name is chosen here).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        let connector = RedisConnector::new(&settings.common.redis_target()?)?;
        let consumer = consumer_name();
        let stats = ViewsStats::default();
        let worker = ViewsWorker::new(
            WorkerConfig {
                connector: connector.clone(),
                keys: KeySchema::new(&settings.common.key_prefix).org(&settings.common.first_org()),
                repos_path: settings.repos_path(),
                consumer: consumer.clone(),
                claim_idle: settings.claim_idle(),
                claim_interval: settings.claim_interval(),
                consumer_expiry: settings.consumer_expiry(),
            },
            stats.clone(),
        );
        tracing::info!(
            %consumer,
            repos_path = %settings.repos_path(),
            claim_idle = ?settings.claim_idle(),
            "views worker configured"
        );
        let metrics = hubcache_shared::metrics::install();
        crate::stats::describe_metrics();
        let liveness = Liveness::new();
        let admin = AdminListener::bind(settings.metrics_port, metrics, liveness.clone())?;
        Ok(Self {
            admin,
            liveness,
            worker: Arc::new(worker),
            connector,
            consumer,
            stats,
            shutdown_timeout: settings.shutdown_timeout(),
        })
    }

    /// This worker's consumer name in the group (`hostname-pid-random`).
    pub fn consumer_name(&self) -> &str {
        &self.consumer
    }

    /// The admin listener's port (`/metrics`, `/livez`), `None` when `METRICS_PORT=0`.
    pub fn metrics_port(&self) -> Option<u16> {
        self.admin.as_ref().map(AdminListener::port)
    }

    /// Live counters of what this worker did; stays readable after `run` took `self`.
    pub fn stats(&self) -> ViewsStats {
        self.stats.clone()
    }

    /// Runs until `shutdown` is cancelled, then lets in-flight work finish (at most
    /// `SHUTDOWN_TIMEOUT_SECS`). Redis being down is never a reason to return; a task that
    /// stops on its own (an error, a panic, a bug) stops the others and is returned as the
    /// error. The admin listener answers `/livez` with 503 until the drain is over.
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let stop = shutdown.child_token();
        self.liveness.follow(&stop);
        let admin = self.admin.take().map(AdminListener::start).transpose()?;
        let result = self.run_workers(stop, admin.as_ref()).await;
        if let Some(admin) = admin {
            admin.stop().await;
        }
        result
    }

    async fn run_workers(
        self,
        stop: CancellationToken,
        admin: Option<&AdminServer>,
    ) -> anyhow::Result<()> {
        let mut supervisor = Supervisor::new(stop.clone());
        if let Some(admin) = admin {
            supervisor.spawn("admin listener", admin.watch(stop.clone()));
        }
        if let Some(conn) = self.connector.shared_with_retry(&stop).await {
            let consume = Arc::clone(&self.worker).consume(conn.clone(), stop.clone());
            supervisor.spawn("consumer", async move {
                consume.await;
                Ok(())
            });
            let claim = Arc::clone(&self.worker).claim_abandoned(conn, stop.clone());
            supervisor.spawn("claimer", async move {
                claim.await;
                Ok(())
            });
        }
        supervisor.supervise(self.shutdown_timeout).await?;
        tracing::info!("views stopped");
        Ok(())
    }

    /// Runs until SIGINT or SIGTERM (or a task fails), then drains.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run(shutdown::cancel_on_signal()).await
    }
}
