//! Building and running the views service: per organisation, one consumer task and one claim
//! task sharing that org's worker; and the admin listener; all supervised together
//! (`hubcache_shared::shutdown`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hubcache_admin::{AdminListener, AdminServer, Liveness};
use hubcache_shared::shutdown::{self, CancellationToken, Supervisor};
use hubcache_shared::{KeySchema, RedisConnector};
use tracing::Instrument as _;

use crate::settings::Settings;
use crate::stats::{ViewsStats, WorkerStats};
use crate::worker::{ViewsWorker, WorkerConfig, consumer_name};

/// A configured views service (one worker per organisation), ready to run.
///
/// Building does not connect: Redis may come up after the views service (compose, Kubernetes),
/// and a views worker waits for it rather than exiting. [`Application::run`] connects, retrying
/// until Redis answers.
#[derive(Debug)]
pub struct Application {
    /// One worker per organisation, first organisation first, with the org's login.
    workers: Vec<(String, Arc<ViewsWorker>)>,
    connector: RedisConnector,
    consumer: String,
    stats: ViewsStats,
    org_stats: BTreeMap<String, ViewsStats>,
    shutdown_timeout: Duration,
    admin: Option<AdminListener>,
    liveness: Liveness,
}

impl Application {
    /// Validates `settings` and prepares one worker per organisation (the consumer name, the
    /// same in every org's group, is chosen here).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        let connector = RedisConnector::new(&settings.common.redis_target()?)?;
        let consumer = consumer_name();
        let schema = KeySchema::new(&settings.common.key_prefix);
        let stats = ViewsStats::default();
        let mut org_stats = BTreeMap::new();
        let mut workers = Vec::new();
        for source in settings.org_repos() {
            let own = ViewsStats::default();
            org_stats.insert(source.org.clone(), own.clone());
            let worker = ViewsWorker::new(
                WorkerConfig {
                    connector: connector.clone(),
                    keys: schema.org(&source.org),
                    repos_path: source.repos_path.clone(),
                    consumer: consumer.clone(),
                    claim_idle: settings.claim_idle(),
                    claim_interval: settings.claim_interval(),
                    consumer_expiry: settings.consumer_expiry(),
                },
                WorkerStats::new(&source.org, own, stats.clone()),
            );
            tracing::info!(
                org = %source.org,
                %consumer,
                repos_path = %source.repos_path,
                claim_idle = ?settings.claim_idle(),
                "views worker configured"
            );
            workers.push((source.org, Arc::new(worker)));
        }
        let metrics = hubcache_shared::metrics::install();
        crate::stats::describe_metrics();
        let liveness = Liveness::new();
        let admin = AdminListener::bind(settings.metrics_port, metrics, liveness.clone())?;
        Ok(Self {
            admin,
            liveness,
            workers,
            connector,
            consumer,
            stats,
            org_stats,
            shutdown_timeout: settings.shutdown_timeout(),
        })
    }

    /// This process's consumer name in every organisation's group (`hostname-pid-random`).
    pub fn consumer_name(&self) -> &str {
        &self.consumer
    }

    /// The admin listener's port (`/metrics`, `/livez`), `None` when `METRICS_PORT=0`.
    pub fn metrics_port(&self) -> Option<u16> {
        self.admin.as_ref().map(AdminListener::port)
    }

    /// Live counters of what this process's workers did, all organisations together; stays
    /// readable after `run` took `self`.
    pub fn stats(&self) -> ViewsStats {
        self.stats.clone()
    }

    /// Live counters of one organisation's worker (`org` as configured, any case); `None` for
    /// an organisation that is not configured.
    pub fn org_stats(&self, org: &str) -> Option<ViewsStats> {
        self.org_stats
            .iter()
            .find(|(login, _)| login.eq_ignore_ascii_case(org))
            .map(|(_, stats)| stats.clone())
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
            // Every org's tasks are its own: a Redis error, a slow snapshot or a retry backoff
            // in one org's worker leaves the others running. The shared connection is
            // multiplexed (one org's command never waits for another's reply); each consumer
            // opens its own blocking connection for `XREADGROUP ... BLOCK`.
            for (org, worker) in &self.workers {
                let span = tracing::info_span!("views.org", %org);
                let consume = Arc::clone(worker).consume(conn.clone(), stop.clone());
                supervisor.spawn(
                    "consumer",
                    async move {
                        consume.await;
                        Ok(())
                    }
                    .instrument(span.clone()),
                );
                let claim = Arc::clone(worker).claim_abandoned(conn.clone(), stop.clone());
                supervisor.spawn(
                    "claimer",
                    async move {
                        claim.await;
                        Ok(())
                    }
                    .instrument(span),
                );
            }
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
