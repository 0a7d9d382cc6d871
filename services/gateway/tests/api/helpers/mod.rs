//! Test harness: a real redis-server, github-sim, and the gateway on a free port, plus (for
//! pipeline tests) the real fetcher and views services, all in this process.
//!
//! Two ways to fill Redis:
//! - `seed_*` writes snapshots and views exactly as the fetcher and views services do (the
//!   shared schema, field constants, `SnapshotMeta`, `ViewSet::to_fields`) and appends their
//!   stream events: fast, and the data is chosen by the test;
//! - `spawn_pipeline` runs the fetcher and views against github-sim: the real thing end to end.
//!
//! `passthrough` starts a gateway for the pass-through tests, `ha` the whole pipeline on a
//! Sentinel or Cluster Redis.

use std::time::Duration;

use hubcache_shared::{KeySchema, SettingsSource};
use hubcache_testkit::{AclUser, RedisServer, SimControl, eventually};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

mod ha;
mod passthrough;
mod seed;

pub use ha::{HA_ORG, HaPipeline, spawn_ha_pipeline};
pub use passthrough::spawn_passthrough;
pub use seed::{members_body, org_body, repos_body, repos_body_of, root_body};

/// The org of seeded tests.
pub const ORG: &str = "acme";
/// Its numeric id (in the seeded `/orgs/acme` body).
pub const ORG_ID: u64 = 4242;
/// Number of seeded repos.
pub const REPO_COUNT: usize = 7;

/// The Redis user the gateway connects as in these tests. "The gateway writes only pass-through
/// cache keys and webhook hints" is enforced by Redis: this user may read any key, write only
/// the fleet cache's keys (`hubcache:pt:*`, through its scripts), the hints stream and the
/// delivery-id markers (through the webhook script), and use only the fleet cache's wake-up
/// channel, so any other gateway write fails with `NOPERM` and the test with it. The fetcher,
/// views and the tests' own seeding write as the default user.
///
/// When the gateway is allowed to write more, add the key patterns to the `write_keys`
/// argument and the commands it uses to `commands`: here, and nowhere else.
pub fn gateway_redis_user() -> AclUser {
    let keys = KeySchema::new("hubcache");
    let (hints, deliveries) = (keys.webhook_hints_stream(), keys.webhook_delivery("*"));
    AclUser::new(
        "gateway",
        &[
            // XREAD, XREVRANGE, HMGET, HGETALL: following the streams, loading snapshots and views.
            "+@read", // What redis-rs sends while connecting.
            "+auth",
            "+hello",
            "+ping",
            "+select",
            // The fleet cache: its scripts (loaded on first use) and what they run, limited to
            // the pass-through keys below; SUBSCRIBE for its wake-ups. Webhook deliveries: the
            // one script and what it runs (SET, XADD) on the hints stream and delivery markers.
            "+evalsha",
            "+eval",
            "+script|load",
            "+time",
            "+set",
            "+hset",
            "+pexpire",
            "+del",
            "+xadd",
            "+publish",
            "+subscribe",
            "+unsubscribe",
        ],
        &["*"],
        &[&keys.passthrough_pattern(), &hints, &deliveries],
    )
    .with_channels(&[&keys.passthrough_pattern()])
}

/// What to start.
#[derive(Default)]
pub struct Options {
    /// Seed the snapshots and views before the gateway starts.
    pub seed: bool,
    /// Stop Redis before the gateway starts.
    pub redis_down: bool,
    /// `CLIENT_RATE_LIMIT_PER_SEC` and burst.
    pub rate_limit: Option<(u32, u32)>,
    /// Run github-sim, the fetcher and views (the org is the sim's).
    pub pipeline: bool,
    /// `PUBLIC_URL` of the gateway.
    pub public_url: Option<&'static str>,
    /// More environment variables for every service (e.g. `MAX_CONNECTIONS`).
    pub vars: Vec<(&'static str, String)>,
    /// Start Redis with its append-only file on (for restarts that keep the data).
    pub redis_aof: bool,
    /// The gateway's `client_stall_timeout_secs` (config file only), if not the default.
    pub client_stall_timeout_secs: Option<u64>,
    /// Orgs served after the first (`GITHUB_ORGS` lists the test's org, then these); with
    /// `pipeline`, github-sim generates them too unless named in `unknown_orgs`.
    pub more_orgs: Vec<&'static str>,
    /// Of `more_orgs`, those github-sim does not know (it answers 404 for them, as GitHub).
    pub unknown_orgs: Vec<&'static str>,
    /// Authenticate as a GitHub App with this key pair: github-sim knows the App ([`APP_ID`])
    /// and installs it on every org it generates; every service gets `GITHUB_APP_ID` and
    /// `GITHUB_APP_PRIVATE_KEY_FILE`.
    pub app: Option<&'static hubcache_testkit::AppKeyPair>,
    /// github-sim's installation token lifetime with `app` (default an hour).
    pub installation_token_ttl_secs: Option<u64>,
}

/// The GitHub App ID github-sim knows with [`Options::app`].
pub const APP_ID: &str = "4242";

/// A running gateway and what it talks to. Everything stops when dropped.
pub struct TestApp {
    /// `http://127.0.0.1:{port}`.
    pub address: String,
    /// The gateway's port.
    pub port: u16,
    /// The real Redis behind it.
    pub redis: RedisServer,
    /// The key schema in use.
    pub keys: KeySchema,
    /// The org served first (the seed's routes serve it).
    pub org: String,
    /// github-sim's base URL.
    pub sim_url: String,
    /// github-sim's control API (data changes, faults, request counters).
    pub sim: SimControl,
    /// A client that neither decompresses nor uses a proxy.
    pub client: reqwest::Client,
    /// The in-process fetcher and views of a pipeline (empty otherwise), by name.
    pub services: Vec<Service>,
    /// The settings variables the services were started with.
    vars: Vec<(String, String)>,
    shutdown: CancellationToken,
}

/// A service (fetcher or views) running in a task of the test's runtime.
pub struct Service {
    /// `fetcher` or `views`.
    pub name: &'static str,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Service {
    /// Whether it has returned (it never should while the test runs: no service exits because
    /// a dependency is down).
    pub fn has_exited(&self) -> bool {
        self.task.is_finished()
    }

    /// Abrupt stop, like a killed process: nothing is released or acknowledged.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A gateway over seeded data.
pub async fn spawn_app() -> TestApp {
    spawn_with(Options {
        seed: true,
        ..Options::default()
    })
    .await
}

/// A gateway fed by the real fetcher and views from github-sim.
pub async fn spawn_pipeline() -> TestApp {
    spawn_with(Options {
        pipeline: true,
        ..Options::default()
    })
    .await
}

/// A gateway with the given options.
pub async fn spawn_with(options: Options) -> TestApp {
    let aof: &[&str] = if options.redis_aof {
        &["--appendonly", "yes", "--appendfsync", "always"]
    } else {
        &[]
    };
    let redis = RedisServer::start_with_users(&[&gateway_redis_user()], aof)
        .await
        .expect("redis-server starts");
    let org = if options.pipeline { "Netflix" } else { ORG };
    let known: Vec<&str> = std::iter::once(org)
        .chain(
            options
                .more_orgs
                .iter()
                .copied()
                .filter(|o| !options.unknown_orgs.contains(o)),
        )
        .collect();
    let orgs: Vec<&str> = std::iter::once(org)
        .chain(options.more_orgs.iter().copied())
        .collect();
    let sim = github_sim::Application::build(github_sim::SimConfig {
        port: 0,
        org: known.join(","),
        generate_repos: 150,
        generate_members: 12,
        app_id: options.app.map(|_| APP_ID.to_owned()),
        app_public_key: options.app.map(|keys| keys.public_key_path()),
        installation_token_ttl_secs: options.installation_token_ttl_secs.unwrap_or(3600),
        ..github_sim::SimConfig::default()
    })
    .await
    .expect("github-sim builds");
    let sim_url = sim.base_url().to_owned();
    tokio::spawn(sim.run_until_stopped());

    let mut vars = vec![
        ("REDIS_URL".to_owned(), redis.url()),
        ("GITHUB_API_URL".to_owned(), sim_url.clone()),
        ("GITHUB_ORGS".to_owned(), orgs.join(",")),
        ("REFRESH_INTERVAL_SECS".to_owned(), "1".to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
        ("WORKERS".to_owned(), "2".to_owned()),
        ("SHUTDOWN_TIMEOUT_SECS".to_owned(), "2".to_owned()),
        // The in-process fetcher and views: no admin listeners (tests run side by side).
        ("METRICS_PORT".to_owned(), "0".to_owned()),
    ];
    if let Some(keys) = options.app {
        vars.push(("GITHUB_APP_ID".to_owned(), APP_ID.to_owned()));
        vars.push((
            "GITHUB_APP_PRIVATE_KEY_FILE".to_owned(),
            keys.private_key_path().display().to_string(),
        ));
    }
    vars.extend(
        options
            .vars
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone())),
    );
    if let Some((rate, _)) = options.rate_limit {
        vars.push(("CLIENT_RATE_LIMIT_PER_SEC".to_owned(), rate.to_string()));
    }
    if let Some(public_url) = options.public_url {
        vars.push(("PUBLIC_URL".to_owned(), public_url.to_owned()));
    }
    let keys = KeySchema::new("hubcache");
    let shutdown = CancellationToken::new();

    let mut app = TestApp {
        address: String::new(),
        port: 0,
        redis,
        keys,
        org: org.to_owned(),
        sim: SimControl::new(sim_url.clone()),
        sim_url,
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        services: Vec::new(),
        vars: vars.clone(),
        shutdown: shutdown.clone(),
    };
    if options.seed {
        app.seed_all(1).await;
    }
    if options.pipeline {
        let fetcher = app.start_fetcher().await;
        app.services.push(fetcher);
        let views = app.start_views().await;
        app.services.push(views);
    }
    if options.redis_down {
        app.redis.stop();
    }

    let mut settings = gateway::Settings::load(&SettingsSource::from_vars(app.gateway_vars()))
        .expect("gateway settings");
    settings.host = "127.0.0.1".to_owned();
    if let Some((_, burst)) = options.rate_limit {
        settings.client_rate_limit_burst = burst;
    }
    if let Some(secs) = options.client_stall_timeout_secs {
        settings.client_stall_timeout_secs = secs;
    }
    let application = gateway::Application::build(settings)
        .await
        .expect("gateway builds");
    app.port = application.port();
    app.address = format!("http://127.0.0.1:{}", app.port);
    tokio::spawn(application.run(shutdown));
    app
}

impl TestApp {
    /// `REDIS_URL` for a gateway: as [`gateway_redis_user`], which may only read.
    pub fn gateway_redis_url(&self) -> String {
        gateway_redis_user().url(self.redis.port())
    }

    /// The variables a gateway of this test starts with: the services' own, but connecting
    /// to Redis as [`gateway_redis_user`].
    fn gateway_vars(&self) -> Vec<(String, String)> {
        let mut vars = self.vars.clone();
        for (name, value) in &mut vars {
            if name == "REDIS_URL" {
                *value = self.gateway_redis_url();
            }
        }
        vars
    }

    /// Starts a fetcher with this test's settings (stopped with the test).
    pub async fn start_fetcher(&self) -> Service {
        let source = SettingsSource::from_vars(self.vars.clone());
        let fetcher = fetcher::Application::build(
            fetcher::Settings::load(&source).expect("fetcher settings"),
        )
        .await
        .expect("fetcher builds");
        Service {
            name: "fetcher",
            task: tokio::spawn(fetcher.run(self.shutdown.clone())),
        }
    }

    /// Starts a views service with this test's settings (stopped with the test).
    pub async fn start_views(&self) -> Service {
        let source = SettingsSource::from_vars(self.vars.clone());
        let views =
            views::Application::build(views::Settings::load(&source).expect("views settings"))
                .await
                .expect("views builds");
        Service {
            name: "views",
            task: tokio::spawn(views.run(self.shutdown.clone())),
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_with(path, &[]).await
    }

    /// `GET path` with extra headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request reaches the gateway")
    }

    /// `HEAD path`.
    pub async fn head(&self, path: &str) -> reqwest::Response {
        self.client
            .head(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request reaches the gateway")
    }

    /// The body of a 200 `GET path`, as text.
    pub async fn get_text(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.expect("body")
    }

    /// Sends `request` verbatim over a new TCP connection (for targets HTTP clients would
    /// normalise); returns the status and body.
    pub async fn raw(&self, request: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// Waits until `/healthcheck` answers 200.
    pub async fn wait_ready(&self) {
        eventually(
            Duration::from_secs(20),
            "gateway healthcheck 200",
            || async { (self.get("/healthcheck").await.status() == 200).then_some(()) },
        )
        .await
        .expect("gateway becomes ready");
    }

    pub(crate) async fn redis_conn(&self) -> redis::aio::MultiplexedConnection {
        self.redis
            .client()
            .get_multiplexed_async_connection()
            .await
            .expect("redis connection")
    }
}

/// One more gateway over the same Redis and github-sim (a replica, or a restarted process);
/// stops when dropped.
pub struct OtherGateway {
    /// `http://127.0.0.1:{port}`.
    pub address: String,
    shutdown: CancellationToken,
}

impl Drop for OtherGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    /// Starts another gateway on this test's Redis and github-sim.
    pub async fn other_gateway(&self) -> OtherGateway {
        self.other_gateway_with(&[], |_| {}).await
    }

    /// Starts another gateway on this test's Redis and github-sim, with more variables (e.g.
    /// `GITHUB_API_TOKEN`: none is passed on otherwise), then `configure`d.
    pub async fn other_gateway_with(
        &self,
        more: &[(&str, &str)],
        configure: impl FnOnce(&mut gateway::Settings),
    ) -> OtherGateway {
        let mut vars = vec![
            ("REDIS_URL", self.gateway_redis_url()),
            ("GITHUB_API_URL", self.sim_url.clone()),
            ("GITHUB_ORGS", self.orgs().join(",")),
            ("PORT", "0".to_owned()),
            ("WORKERS", "1".to_owned()),
            ("SHUTDOWN_TIMEOUT_SECS", "2".to_owned()),
        ];
        vars.extend(
            more.iter()
                .map(|(name, value)| (*name, (*value).to_owned())),
        );
        let mut settings =
            gateway::Settings::load(&SettingsSource::from_vars(vars)).expect("gateway settings");
        settings.host = "127.0.0.1".to_owned();
        configure(&mut settings);
        let application = gateway::Application::build(settings)
            .await
            .expect("gateway builds");
        let address = format!("http://127.0.0.1:{}", application.port());
        let shutdown = CancellationToken::new();
        tokio::spawn(application.run(shutdown.clone()));
        OtherGateway { address, shutdown }
    }

    /// Every org this test's services serve, first one first.
    pub fn orgs(&self) -> Vec<String> {
        self.vars
            .iter()
            .find(|(name, _)| name == "GITHUB_ORGS" || name == "GITHUB_ORG")
            .map(|(_, orgs)| orgs.split(',').map(str::to_owned).collect())
            .unwrap_or_else(|| vec![self.org.clone()])
    }

    /// `GET {base}{path}` with this test's client.
    pub async fn get_from(&self, base: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("request reaches the gateway")
    }

    /// Sends raw bytes over a new connection; the status (`None` if the gateway closed the
    /// connection without answering) and the body.
    pub async fn raw_bytes(&self, request: &[u8]) -> (Option<u16>, String) {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect");
        // The gateway may answer and close before reading everything: a write error is fine.
        let _ = stream.write_all(request).await;
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|s| s.parse().ok());
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// Every field of a Redis hash (to prove nothing was changed).
    pub async fn hash(&self, key: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
        let mut conn = self.redis_conn().await;
        redis::cmd("HGETALL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("HGETALL")
    }

    /// Runs one Redis command (tampering with stored data, as a test of damage).
    pub async fn redis_cmd(&self, cmd: &redis::Cmd) {
        let mut conn = self.redis_conn().await;
        let _: redis::Value = cmd.query_async(&mut conn).await.expect("redis command");
    }
}

/// A response's `Cache-Status` header (empty when absent).
pub fn cache_status(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
