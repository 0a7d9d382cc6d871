//! The high-availability tests' stack: the whole pipeline on a Sentinel or Cluster Redis.

use std::time::Duration;

use hubcache_shared::SettingsSource;
use hubcache_testkit::eventually;
use tokio_util::sync::CancellationToken;

/// The whole pipeline (github-sim generating each of `orgs` with `repos` repositories, the
/// fetcher, views and gateway serving all of them, the first one first) on the Redis that
/// `redis_vars` name (`REDIS_SENTINELS`,
/// `REDIS_CLUSTER_NODES`, ...): the high-availability tests' stack. Everything stops when dropped.
pub struct HaPipeline {
    /// The gateway's base URL.
    pub address: String,
    /// github-sim's base URL.
    pub sim_url: String,
    /// A client with a 10 s timeout and no proxy.
    pub client: reqwest::Client,
    /// What the Redis settings resolved to.
    pub target: hubcache_shared::RedisTarget,
    /// Stops every service when dropped: keep it bound for the whole test.
    pub stop_everything: tokio_util::sync::DropGuard,
}

/// The (first) org of [`HaPipeline`].
pub const HA_ORG: &str = "Netflix";

/// Starts an [`HaPipeline`] and waits until the gateway is healthy (everything loaded).
///
/// Every service here, the gateway included, connects as the default Redis user: an ACL user
/// would have to be declared on each master, replica and cluster node (ACL rules are not
/// replicated), and the gateway also asks the Sentinels (`SENTINEL`, `ROLE`), which have users
/// of their own. The single-Redis tests hold the gateway to reading ([`gateway_redis_user`]).
pub async fn spawn_ha_pipeline(
    redis_vars: Vec<(&'static str, String)>,
    orgs: &[&str],
    repos: usize,
) -> HaPipeline {
    let sim = github_sim::Application::build(github_sim::SimConfig {
        port: 0,
        org: orgs.join(","),
        generate_repos: repos,
        generate_members: 5,
        ..github_sim::SimConfig::default()
    })
    .await
    .expect("github-sim builds");
    let sim_url = sim.base_url().to_owned();
    tokio::spawn(sim.run_until_stopped());

    let mut vars = redis_vars;
    vars.extend([
        ("GITHUB_API_URL", sim_url.clone()),
        ("GITHUB_ORGS", orgs.join(",")),
        ("REFRESH_INTERVAL_SECS", "1".to_owned()),
        ("PORT", "0".to_owned()),
        ("WORKERS", "2".to_owned()),
        ("SHUTDOWN_TIMEOUT_SECS", "2".to_owned()),
        ("METRICS_PORT", "0".to_owned()),
    ]);
    let source = SettingsSource::from_vars(vars);
    let shutdown = CancellationToken::new();
    let fetcher =
        fetcher::Application::build(fetcher::Settings::load(&source).expect("fetcher settings"))
            .await
            .expect("fetcher builds");
    tokio::spawn(fetcher.run(shutdown.clone()));
    let views = views::Application::build(views::Settings::load(&source).expect("views settings"))
        .await
        .expect("views builds");
    tokio::spawn(views.run(shutdown.clone()));
    let mut settings = gateway::Settings::load(&source).expect("gateway settings");
    settings.host = "127.0.0.1".to_owned();
    let target = settings.common.redis_target().expect("a Redis target");
    let gateway = gateway::Application::build(settings)
        .await
        .expect("gateway builds");
    let address = format!("http://127.0.0.1:{}", gateway.port());
    tokio::spawn(gateway.run(shutdown.clone()));

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    eventually(Duration::from_secs(30), "gateway ready", || async {
        let r = client
            .get(format!("{address}/healthcheck"))
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())
    })
    .await
    .expect("the fetcher, views and gateway fill and load everything");
    HaPipeline {
        address,
        sim_url,
        client,
        target,
        stop_everything: shutdown.drop_guard(),
    }
}
