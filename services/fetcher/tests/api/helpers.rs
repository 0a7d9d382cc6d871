//! Spawning Redis, the GitHub simulator and fetchers, and looking at what they did.

use std::time::Duration;

use fetcher::{Application, Settings};
use hubcache_shared::events::RefreshEvent;
use hubcache_shared::github::parse_link_header;
use hubcache_shared::shutdown::CancellationToken;
use hubcache_shared::{KeySchema, OrgKeys, SettingsSource, Snapshot, SnapshotStatus};
use hubcache_testkit::{RedisServer, SimControl, eventually};
use redis::aio::MultiplexedConnection;
use serde_json::Value;
use serde_json::value::RawValue;

/// The generated organisation.
pub const ORG: &str = "acme";
/// Its repositories: three pages of 100.
pub const REPOS: usize = 250;
/// The token the fetchers send (the simulator counts requests that carry one).
pub const TOKEN: &str = "test-token";
/// The Redis key prefix of the tests.
pub const PREFIX: &str = "fetchertest";

/// What the fetchers of a test are configured with.
#[derive(Debug, Clone)]
pub struct TestOptions {
    pub refresh_secs: u64,
    pub lease_secs: u64,
    pub request_timeout_ms: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// github-sim's `--base-url`: the base its `Link` headers name, when not its own address
    /// (a proxy in front of GitHub that leaves them naming api.github.com).
    pub advertised_base_url: Option<url::Url>,
    /// Appended to the simulator's address in `GITHUB_API_URL` (e.g. GitHub Enterprise's
    /// `/api/v3`, which the simulator accepts when its advertised base has that path).
    pub api_path: &'static str,
    /// The orgs github-sim generates (`--org`, comma-separated), each with [`REPOS`] repos.
    pub sim_orgs: &'static str,
    /// github-sim's GitHub App public key (`--app-public-key`, App ID [`APP_ID`]).
    pub app_public_key: Option<std::path::PathBuf>,
    /// github-sim's installation token lifetime.
    pub installation_token_ttl_secs: u64,
}

/// The GitHub App ID the simulator knows when `app_public_key` is set.
pub const APP_ID: &str = "4242";

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            refresh_secs: 1,
            lease_secs: 2,
            request_timeout_ms: 2_000,
            backoff_base_ms: 500,
            backoff_max_ms: 2_000,
            advertised_base_url: None,
            api_path: "",
            sim_orgs: ORG,
            app_public_key: None,
            installation_token_ttl_secs: 3600,
        }
    }
}

/// Redis, the simulator, and the means to start fetchers against them.
pub struct TestApp {
    pub redis: RedisServer,
    /// github-sim's control API (its base URL: `sim.base_url()`).
    pub sim: SimControl,
    /// A plain client for github-sim's GitHub routes (the ground truth).
    http: reqwest::Client,
    /// Every key of the test's prefix.
    pub schema: KeySchema,
    /// The keys of [`ORG`], the org of single-org tests.
    pub keys: OrgKeys,
    pub conn: MultiplexedConnection,
    pub options: TestOptions,
}

/// A fetcher running in a task of the test's runtime.
pub struct RunningFetcher {
    pub instance_id: String,
    /// Its admin listener's port (`/metrics`, `/livez`), if started with one.
    pub admin_port: Option<u16>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningFetcher {
    /// One sample of its `/metrics` (it must have an admin listener). The metrics recorder is
    /// process-wide: the value is this fetcher's under nextest, which runs each test in a
    /// process of its own.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let port = self.admin_port.expect("started with an admin listener");
        let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        hubcache_testkit::prometheus_text::sample(&text, name, &[])
    }

    /// One sample of its `/metrics` whose labels include `labels`.
    pub async fn metric_with(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let port = self.admin_port.expect("started with an admin listener");
        let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        hubcache_testkit::prometheus_text::sample(&text, name, labels)
    }

    /// Graceful shutdown: cancel and wait (the fetcher releases its lease).
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task
            .await
            .expect("fetcher task did not panic")
            .expect("fetcher ran cleanly");
    }

    /// Abrupt stop, like a killed process: the task is dropped mid-flight, nothing is released.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestOptions::default()).await
}

pub async fn spawn_app_with(options: TestOptions) -> TestApp {
    let redis = RedisServer::start().await.expect("redis-server starts");
    let config = github_sim::SimConfig {
        port: 0,
        workers: 2,
        org: options.sim_orgs.to_owned(),
        generate_repos: REPOS,
        generate_members: 40,
        base_url: options.advertised_base_url.clone(),
        app_id: options.app_public_key.as_ref().map(|_| APP_ID.to_owned()),
        app_public_key: options.app_public_key.clone(),
        installation_token_ttl_secs: options.installation_token_ttl_secs,
        ..github_sim::SimConfig::default()
    };
    let sim_app = github_sim::Application::build(config)
        .await
        .expect("github-sim builds");
    let address = format!("http://127.0.0.1:{}", sim_app.port());
    tokio::spawn(sim_app.run_until_stopped());
    let conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    TestApp {
        redis,
        sim: SimControl::new(address),
        http: reqwest::Client::new(),
        schema: KeySchema::new(PREFIX),
        keys: KeySchema::new(PREFIX).org(ORG),
        conn,
        options,
    }
}

impl TestApp {
    /// The settings a fetcher of this test runs with (`token`: whether it sends one).
    pub fn settings(&self, token: Option<&str>) -> Settings {
        self.settings_for(&[ORG], token)
    }

    /// The settings of a fetcher caching `orgs` (`GITHUB_ORGS`, the first one first).
    pub fn settings_for(&self, orgs: &[&str], token: Option<&str>) -> Settings {
        let mut vars = vec![
            ("REDIS_URL", self.redis.url()),
            (
                "GITHUB_API_URL",
                format!("{}{}", self.sim.base_url(), self.options.api_path),
            ),
            ("GITHUB_ORGS", orgs.join(",")),
            (
                "REFRESH_INTERVAL_SECS",
                self.options.refresh_secs.to_string(),
            ),
            ("KEY_PREFIX", PREFIX.to_owned()),
            ("LEASE_SECS", self.options.lease_secs.to_string()),
            ("SHUTDOWN_TIMEOUT_SECS", "5".to_owned()),
            // No admin listener (several fetchers run in one test); tests/api/metrics.rs
            // turns it on.
            ("METRICS_PORT", "0".to_owned()),
        ];
        if let Some(token) = token {
            vars.push(("GITHUB_API_TOKEN", token.to_owned()));
        }
        let mut settings =
            Settings::load(&SettingsSource::from_vars(vars)).expect("test settings are valid");
        settings.github_request_timeout_ms = self.options.request_timeout_ms;
        settings.backoff_base_ms = self.options.backoff_base_ms;
        settings.backoff_max_ms = self.options.backoff_max_ms;
        settings
    }

    /// Starts a fetcher sending the test token.
    pub async fn start_fetcher(&self) -> RunningFetcher {
        self.start_fetcher_with(Some(TOKEN)).await
    }

    /// Starts a fetcher, with or without a token.
    pub async fn start_fetcher_with(&self, token: Option<&str>) -> RunningFetcher {
        self.start_fetcher_from(self.settings(token)).await
    }

    /// Starts a fetcher with the test token and an admin listener on a free port (one per
    /// test: the metrics are process-wide).
    pub async fn start_fetcher_with_admin(&self) -> RunningFetcher {
        let mut settings = self.settings(Some(TOKEN));
        settings.metrics_port = hubcache_testkit::free_port().expect("a free port");
        self.start_fetcher_from(settings).await
    }

    /// Starts a fetcher caching `orgs`, sending the test token.
    pub async fn start_fetcher_for(&self, orgs: &[&str]) -> RunningFetcher {
        self.start_fetcher_from(self.settings_for(orgs, Some(TOKEN)))
            .await
    }

    /// Starts a fetcher caching `orgs` with an admin listener (one per test).
    pub async fn start_fetcher_for_with_admin(&self, orgs: &[&str]) -> RunningFetcher {
        let mut settings = self.settings_for(orgs, Some(TOKEN));
        settings.metrics_port = hubcache_testkit::free_port().expect("a free port");
        self.start_fetcher_from(settings).await
    }

    pub async fn start_fetcher_from(&self, settings: Settings) -> RunningFetcher {
        let app = Application::build(settings).await.expect("fetcher builds");
        start(app)
    }
}

/// Runs a built fetcher in a task of the test's runtime.
pub fn start(app: Application) -> RunningFetcher {
    let admin_port = app.metrics_port();
    let instance_id = app.instance_id().to_owned();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run(shutdown.clone()));
    RunningFetcher {
        instance_id,
        admin_port,
        shutdown,
        task,
    }
}

impl TestApp {
    /// The four default cached paths.
    pub fn paths(&self) -> [String; 4] {
        [
            "/".to_owned(),
            format!("/orgs/{ORG}"),
            format!("/orgs/{ORG}/members"),
            repos_path(),
        ]
    }

    pub async fn snapshot(&self, path: &str) -> Option<Snapshot> {
        self.snapshot_of(ORG, path).await
    }

    /// `path`'s snapshot in `org`'s keys.
    pub async fn snapshot_of(&self, org: &str, path: &str) -> Option<Snapshot> {
        let mut conn = self.conn.clone();
        Snapshot::load(&mut conn, &self.schema.org(org), path)
            .await
            .expect("snapshot readable")
    }

    /// The fetchers registered in the membership set (live or not yet dropped).
    pub async fn members(&self) -> Vec<String> {
        let mut conn = self.conn.clone();
        let mut members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.schema.fetcher_members())
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .expect("ZRANGE members");
        members.sort();
        members
    }

    /// The stored version (0: none), read cheaply without the body.
    pub async fn version(&self, path: &str) -> u64 {
        let mut conn = self.conn.clone();
        let version: Option<u64> = redis::cmd("HGET")
            .arg(self.keys.snapshot(path))
            .arg(hubcache_shared::snapshot::FIELD_VERSION)
            .query_async(&mut conn)
            .await
            .expect("HGET version");
        version.unwrap_or(0)
    }

    /// Waits for a version above `above` and returns that snapshot.
    pub async fn wait_for_version_above(
        &self,
        path: &str,
        above: u64,
        timeout: Duration,
    ) -> Snapshot {
        eventually(timeout, "a new snapshot version", || async {
            (self.version(path).await > above).then_some(())
        })
        .await
        .expect("a new version is stored");
        self.snapshot(path).await.expect("stored")
    }

    pub async fn status(&self, path: &str) -> SnapshotStatus {
        self.status_of(ORG, path).await
    }

    /// `path`'s status in `org`'s keys.
    pub async fn status_of(&self, org: &str, path: &str) -> SnapshotStatus {
        let mut conn = self.conn.clone();
        Snapshot::load_status(&mut conn, &self.schema.org(org), path)
            .await
            .expect("status readable")
    }

    /// Every refresh event in the stream, oldest first.
    pub async fn events(&self) -> Vec<RefreshEvent> {
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.keys.refresh_stream())
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .expect("XRANGE");
        reply
            .ids
            .iter()
            .map(|entry| RefreshEvent::from_entry(entry).expect("well-formed event"))
            .collect()
    }

    pub async fn lease_holder(&self) -> Option<String> {
        self.lease_holder_of(ORG).await
    }

    /// The instance holding `org`'s lease, if any.
    pub async fn lease_holder_of(&self, org: &str) -> Option<String> {
        let mut conn = self.conn.clone();
        redis::cmd("GET")
            .arg(self.schema.org(org).fetcher_lease())
            .query_async(&mut conn)
            .await
            .expect("GET lease")
    }

    /// Waits until every default endpoint has a snapshot; returns them in `paths()` order.
    pub async fn wait_for_snapshots(&self) -> Vec<Snapshot> {
        eventually(Duration::from_secs(15), "all four snapshots", || async {
            let mut all = Vec::new();
            for path in self.paths() {
                all.push(self.snapshot(&path).await?);
            }
            Some(all)
        })
        .await
        .expect("snapshots stored")
    }
}

impl TestApp {
    /// Waits until `org`'s own endpoints (`/orgs/{org}`, members, repos) have snapshots;
    /// returns them in that order.
    pub async fn wait_for_org(&self, org: &str, timeout: Duration) -> Vec<Snapshot> {
        eventually(timeout, &format!("{org}'s snapshots"), || async {
            let mut all = Vec::new();
            for path in org_paths(org) {
                all.push(self.snapshot_of(org, &path).await?);
            }
            Some(all)
        })
        .await
        .expect("the org's snapshots are stored")
    }
}

/// An org's own default endpoints: the org, its members, its repos.
pub fn org_paths(org: &str) -> [String; 3] {
    [
        format!("/orgs/{org}"),
        format!("/orgs/{org}/members"),
        format!("/orgs/{org}/repos"),
    ]
}

pub fn repos_path() -> String {
    format!("/orgs/{ORG}/repos")
}

impl TestApp {
    /// Sets a repository's `stargazers_count` through the control API.
    pub async fn set_stars(&self, repo: &str, stars: u64) {
        self.sim
            .patch_repo(ORG, repo, serde_json::json!({ "stargazers_count": stars }))
            .await;
    }

    /// GETs a target as GitHub serves it (no token: the simulator does not care).
    pub async fn sim_get(&self, target: &str) -> reqwest::Response {
        let url = if target.starts_with("http") {
            target.to_owned()
        } else {
            format!("{}{target}", self.sim.base_url())
        };
        // The machine may be loaded: retry a failed connection rather than fail the test.
        for _ in 0..2 {
            if let Ok(response) = self.http.get(&url).send().await {
                return response;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.http.get(&url).send().await.expect("GET sim")
    }

    /// Every page of a list, fetched like GitHub clients do, as each page's raw element bytes.
    pub async fn sim_list_pages(&self, path: &str) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut target = Some(format!("{path}?per_page=100"));
        while let Some(current) = target.take() {
            let response = self.sim_get(&current).await;
            assert_eq!(response.status(), 200, "GET {current}");
            let links = response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .map(parse_link_header)
                .unwrap_or_default();
            let body = response.text().await.expect("page body");
            let elements: Vec<&RawValue> = serde_json::from_str(&body).expect("a JSON array page");
            pages.push(elements.iter().map(|e| e.get().to_owned()).collect());
            target = links.next;
        }
        pages
    }

    /// What the fetcher must store for a list: the pages' raw elements joined into one array.
    pub async fn sim_merged_list(&self, path: &str) -> Vec<u8> {
        let elements: Vec<String> = self
            .sim_list_pages(path)
            .await
            .into_iter()
            .flatten()
            .collect();
        format!("[{}]", elements.join(",")).into_bytes()
    }
}

/// The repos snapshot's elements as JSON values.
pub fn repos_of(snapshot: &Snapshot) -> Vec<Value> {
    serde_json::from_slice(&snapshot.body).expect("repos snapshot is a JSON array")
}
