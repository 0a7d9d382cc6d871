//! Building and running the views service: one consumer task and one claim task sharing a
//! worker, stopped together by one cancellation token.

use std::sync::Arc;
use std::time::Duration;

use hubcache_shared::shutdown::{self, CancellationToken};
use hubcache_shared::{KeySchema, RedisConnector};

use crate::admin::AdminListener;
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
                keys: KeySchema::new(&settings.common.key_prefix),
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
        let admin = AdminListener::bind(settings.metrics_port, metrics)?;
        Ok(Self {
            admin,
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
    /// stops on its own (a bug) stops the others and is reported as an error.
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let admin = self
            .admin
            .take()
            .map(|admin| tokio::spawn(admin.run(shutdown.clone())));
        let result = self.run_workers(shutdown).await;
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        result
    }

    async fn run_workers(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Some(conn) = self.connector.shared_with_retry(&shutdown).await else {
            return Ok(());
        };
        let stop = shutdown.child_token();
        let tasks = vec![
            spawn_guarded(
                &stop,
                self.worker.clone().consume(conn.clone(), stop.clone()),
            ),
            spawn_guarded(
                &stop,
                self.worker.clone().claim_abandoned(conn, stop.clone()),
            ),
        ];
        stop.cancelled().await;
        if !shutdown::drain(tasks, self.shutdown_timeout).await {
            tracing::warn!("views tasks were aborted after the shutdown timeout");
        }
        anyhow::ensure!(shutdown.is_cancelled(), "a views task stopped unexpectedly");
        tracing::info!("views stopped");
        Ok(())
    }

    /// Runs until SIGINT or SIGTERM, then drains.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let shutdown = CancellationToken::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            shutdown::signal().await;
            trigger.cancel();
        });
        self.run(shutdown).await
    }
}

/// Spawns `task`, cancelling `stop` when it ends for any reason (a panic included), so one
/// failed task never leaves the service half running.
fn spawn_guarded<F>(stop: &CancellationToken, task: F) -> tokio::task::JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let guard = stop.clone().drop_guard();
    tokio::spawn(async move {
        let _stop_all_when_done = guard;
        task.await;
    })
}
