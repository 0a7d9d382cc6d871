//! Building and running the fetcher: the [`Application`] that `main` and the tests start.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hubcache_admin::{AdminListener, Liveness};
use hubcache_shared::github::ClientOptions;
use hubcache_shared::shutdown::{self, CancellationToken, Supervisor};
use hubcache_shared::{GithubClient, KeySchema, RedisConnector};

use crate::Settings;
use crate::budget::SharedBudget;
use crate::fetch_loop::FetchLoop;
use crate::hints::{HintBoard, HintReader, HintRoute};
use crate::lease::Lease;
use crate::membership::{Members, Membership};
use crate::poll_metrics::ORGS_HELD_METRIC;
use crate::poller::Poller;
use crate::schedule::Schedule;
use crate::snapshot_writer::SnapshotWriter;
use hubcache_shared::{Backoff, CachedEndpoint};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument as _;

/// One configured org: what its poll loop polls and where its webhook hints go.
#[derive(Debug)]
struct OrgPlan {
    org: String,
    endpoints: Vec<CachedEndpoint>,
    board: Arc<HintBoard>,
}

/// A configured fetcher, ready to run.
///
/// Building validates everything that can be checked without the network; Redis is connected
/// when it runs (and retried until it answers), so a fetcher started before Redis waits instead
/// of exiting.
#[derive(Debug)]
pub struct Application {
    settings: Settings,
    instance_id: String,
    client: GithubClient,
    connector: RedisConnector,
    admin: Option<AdminListener>,
    liveness: Liveness,
}

impl Application {
    /// Builds the GitHub client and Redis connector from `settings`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate().context("invalid fetcher settings")?;
        let base = settings.common.github_base_url()?;
        let request_timeout = Duration::from_millis(settings.github_request_timeout_ms);
        let options = ClientOptions {
            connect_timeout: request_timeout.min(Duration::from_secs(5)),
            request_timeout,
            ..ClientOptions::default()
        };
        let client = GithubClient::new(base, settings.common.github_api_token.clone(), &options)
            .context("building the GitHub client")?;
        let connector = RedisConnector::new(&settings.common.redis_target()?)?;
        let metrics = hubcache_shared::metrics::install();
        crate::poll_metrics::describe_metrics();
        let liveness = Liveness::new();
        let admin = AdminListener::bind(settings.metrics_port, metrics, liveness.clone())?;
        Ok(Self {
            settings,
            instance_id: hubcache_shared::instance_id(),
            client,
            connector,
            admin,
            liveness,
        })
    }

    /// This replica's id: its member in the membership set and the value it writes into the
    /// lease of each org it polls.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The admin listener's port (`/metrics`, `/livez`), `None` when `METRICS_PORT=0`.
    pub fn metrics_port(&self) -> Option<u16> {
        self.admin.as_ref().map(AdminListener::port)
    }

    /// Runs until `shutdown` is cancelled, then releases the leases it holds. The org poll
    /// loops, the webhook hint reader and the admin listener are supervised: if one ends
    /// unexpectedly (an error, a panic) the others stop too and `run` returns the cause; the
    /// admin listener answers `/livez` with 503 until the drain (at most
    /// `SHUTDOWN_TIMEOUT_SECS`) is over.
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let stop = shutdown.child_token();
        self.liveness.follow(&stop);
        let timeout = Duration::from_secs(self.settings.common.shutdown_timeout_secs);
        let admin = self.admin.take().map(AdminListener::start).transpose()?;
        let mut supervisor = Supervisor::new(stop.clone());
        if let Some(admin) = &admin {
            supervisor.spawn("admin listener", admin.watch(stop.clone()));
        }
        let orgs = self.org_plans()?;
        let hints = HintReader::new(
            self.connector.clone(),
            &KeySchema::new(&self.settings.common.key_prefix),
            orgs.iter().map(|plan| {
                (
                    plan.org.clone(),
                    HintRoute::new(
                        Arc::clone(&plan.board),
                        plan.endpoints.iter().map(|e| e.path.clone()),
                    ),
                )
            }),
        );
        supervisor.spawn("webhook hint reader", hints.run(stop.clone()));
        supervisor.spawn("fetch loops", self.poll_until_cancelled(orgs, stop));
        let result = supervisor.supervise(timeout).await;
        if let Some(admin) = admin {
            admin.stop().await;
        }
        Ok(result?)
    }

    /// Each configured org with its cached endpoints and the board its hints go to.
    fn org_plans(&self) -> anyhow::Result<Vec<OrgPlan>> {
        let endpoints = self.settings.endpoints()?;
        Ok(self
            .settings
            .common
            .orgs()
            .into_iter()
            .map(|org| OrgPlan {
                endpoints: endpoints.iter().filter(|e| e.org == org).cloned().collect(),
                org,
                board: Arc::new(HintBoard::default()),
            })
            .collect())
    }

    /// Runs one poll loop per org until `shutdown`; a loop ending early (a panic) ends them all.
    async fn poll_until_cancelled(
        self,
        orgs: Vec<OrgPlan>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        tracing::info!(
            instance = %self.instance_id,
            upstream = %self.client.base_url(),
            orgs = ?orgs.iter().map(|o| o.org.as_str()).collect::<Vec<_>>(),
            lease_secs = self.settings.lease_secs,
            "fetcher starting"
        );
        let Some(conn) = self.connector.shared_with_retry(&shutdown).await else {
            return Ok(());
        };
        let keys = KeySchema::new(&self.settings.common.key_prefix);
        let backoff = Backoff::new(
            Duration::from_millis(self.settings.backoff_base_ms),
            Duration::from_millis(self.settings.backoff_max_ms),
        );
        let credentials = hubcache_shared::github::Credentials::from_settings(
            &self.settings.common,
            &self.client,
        )?;
        let poller = Poller::new(self.client, credentials.clone(), self.settings.max_pages);
        // GitHub's limit is per credential: one budget per partition (the personal token's
        // is shared by every org; each App installation has its own).
        let mut budgets: std::collections::HashMap<String, SharedBudget> =
            std::collections::HashMap::new();
        metrics::gauge!(ORGS_HELD_METRIC).set(0.0);
        // Every replica shares out the same orgs (README: the same GITHUB_ORGS everywhere).
        let org_logins: std::sync::Arc<[String]> =
            orgs.iter().map(|plan| plan.org.clone()).collect();
        let membership = Membership::new(
            keys.fetcher_members(),
            self.instance_id.clone(),
            self.settings.lease(),
            std::sync::Arc::clone(&org_logins),
        );
        let (members_tx, members) =
            watch::channel(Members::unknown(self.instance_id.clone(), org_logins));
        // A JoinSet, not a bare spawn: if this task is dropped (a crash, in tests) the
        // heartbeat stops with it, as it would with the process.
        let mut heartbeat = JoinSet::new();
        heartbeat.spawn(
            membership
                .clone()
                .run(conn.clone(), members_tx, shutdown.clone()),
        );
        let mut loops = JoinSet::new();
        for plan in orgs {
            let org_keys = keys.org(&plan.org);
            let lease = Lease::new(
                org_keys.fetcher_lease(),
                self.instance_id.clone(),
                self.settings.lease(),
            );
            let schedule = Schedule::new(plan.endpoints, backoff, std::time::Instant::now())
                .with_webhook_policy(self.settings.webhook_policy());
            let fetch_loop = FetchLoop::new(
                plan.org.clone(),
                conn.clone(),
                lease,
                poller.clone(),
                SnapshotWriter::new(org_keys),
                schedule,
                budgets
                    .entry(credentials.partition(&plan.org))
                    .or_default()
                    .clone(),
                members.clone(),
                plan.board,
            );
            let span = tracing::info_span!("org", org = %plan.org);
            loops.spawn(fetch_loop.run(shutdown.clone()).instrument(span));
        }
        loop {
            tokio::select! {
                joined = loops.join_next() => match joined {
                    None => break,
                    Some(Ok(())) => {}
                    Some(Err(e)) => {
                        shutdown.cancel();
                        return Err(anyhow::anyhow!("an org's poll loop failed: {e}"));
                    }
                },
                // It ends by itself only on shutdown; before that, the loops would go on with
                // a frozen view of the membership while the others count this replica dead.
                Some(joined) = heartbeat.join_next() => {
                    if !shutdown.is_cancelled() {
                        shutdown.cancel();
                        return Err(anyhow::anyhow!(
                            "the membership heartbeat ended early: {joined:?}"
                        ));
                    }
                }
            }
        }
        // Every lease is released by now: leave, so the others take the orgs at their next
        // heartbeat.
        while heartbeat.join_next().await.is_some() {}
        let mut conn = conn;
        membership.leave(&mut conn).await;
        tracing::info!("fetcher stopped");
        Ok(())
    }

    /// Runs until SIGINT/SIGTERM (or a task fails), then drains within `SHUTDOWN_TIMEOUT_SECS`.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run(shutdown::cancel_on_signal()).await
    }
}
