//! Pass-through helpers (used by `tests/api/passthrough.rs`): a gateway over an unseeded Redis
//! in front of any upstream.

use hubcache_shared::{KeySchema, SettingsSource};
use hubcache_testkit::{RedisServer, SimControl};
use tokio_util::sync::CancellationToken;

use super::{ORG, TestApp, gateway_redis_user};

/// A gateway (over an unseeded Redis) whose upstream is `upstream`, or a fresh github-sim
/// (org `acme`, 5 repos) when `None`; `vars` are extra environment variables and `configure`
/// adjusts settings that have no variable (stale windows, negative TTL, upstream timeout).
pub async fn spawn_passthrough(
    upstream: Option<&str>,
    vars: &[(&str, &str)],
    configure: impl FnOnce(&mut gateway::Settings),
) -> TestApp {
    let gateway_user = gateway_redis_user();
    let redis = RedisServer::start_with_users(&[&gateway_user], &[])
        .await
        .expect("redis-server starts");
    let sim_url = match upstream {
        Some(url) => url.to_owned(),
        None => {
            let sim = github_sim::Application::build(github_sim::SimConfig {
                port: 0,
                org: ORG.to_owned(),
                generate_repos: 5,
                generate_members: 3,
                workers: 2,
                ..github_sim::SimConfig::default()
            })
            .await
            .expect("github-sim builds");
            let url = sim.base_url().to_owned();
            tokio::spawn(sim.run_until_stopped());
            url
        }
    };
    let mut all: Vec<(String, String)> = vec![
        ("REDIS_URL".to_owned(), redis.url()),
        ("GITHUB_API_URL".to_owned(), sim_url.clone()),
        ("GITHUB_ORG".to_owned(), ORG.to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
        ("WORKERS".to_owned(), "2".to_owned()),
        ("SHUTDOWN_TIMEOUT_SECS".to_owned(), "2".to_owned()),
    ];
    all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let mut gateway_vars: Vec<_> = all
        .iter()
        .filter(|(k, _)| k != "REDIS_URL")
        .cloned()
        .collect();
    gateway_vars.push(("REDIS_URL".to_owned(), gateway_user.url(redis.port())));
    let mut settings = gateway::Settings::load(&SettingsSource::from_vars(gateway_vars))
        .expect("gateway settings");
    settings.host = "127.0.0.1".to_owned();
    configure(&mut settings);
    let shutdown = CancellationToken::new();
    let application = gateway::Application::build(settings)
        .await
        .expect("gateway builds");
    let port = application.port();
    tokio::spawn(application.run(shutdown.clone()));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        redis,
        keys: KeySchema::new("hubcache"),
        org: ORG.to_owned(),
        sim: SimControl::new(sim_url.clone()),
        sim_url,
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        services: Vec::new(),
        vars: all,
        shutdown,
    }
}

impl TestApp {
    /// github-sim's own answer to `GET {path}` as JSON (the ground truth the gateway is
    /// compared with).
    pub async fn sim_json(&self, path: &str) -> serde_json::Value {
        self.client
            .get(format!("{}{path}", self.sim_url))
            .send()
            .await
            .expect("sim")
            .json()
            .await
            .expect("json")
    }

    /// The gateway paths of the org's repos (`/repos/{org}/{name}`), in github-sim's order (its
    /// first page of the repos list).
    pub async fn sim_repo_paths(&self) -> Vec<String> {
        let repos = self.sim_json(&format!("/orgs/{}/repos", self.org)).await;
        repos
            .as_array()
            .expect("a list")
            .iter()
            .map(|r| format!("/repos/{}/{}", self.org, r["name"].as_str().expect("name")))
            .collect()
    }
}
