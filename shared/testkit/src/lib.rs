//! hubcache-testkit: test support for hubcache's integration tests (a dev-dependency only).
//!
//! Layout:
//! - [`RedisServer`]: a real `redis-server` process on a free loopback port, killed on drop.
//!   hubcache never tests against a mock Redis.
//! - [`acl_user`]: a Redis ACL user ([`AclUser`]) a service under test connects as, so Redis
//!   refuses what the service must never do (the gateway's writes).
//! - [`free_port`]: a currently unused loopback TCP port.
//! - [`eventually`]: poll an async condition until it holds or a deadline passes.
//! - [`run_to_exit`], [`assert_settings_refused`]: run a service binary with only the given
//!   environment until it exits; check that bad settings stop it at once, named.
//! - [`ServiceProcess`]: a service binary left running, to send it SIGTERM and read its exit
//!   code (lifecycle tests).
//! - [`prometheus_text`]: validate a `/metrics` scrape with promtool, read sample values.
//! - [`sentinel`]: a master, a replica and three Redis Sentinels on loopback ([`SentinelSet`]),
//!   for failover tests.
//! - [`cluster`]: a three-master Redis Cluster on loopback ([`RedisCluster`]).
//! - [`sim_control`]: the client of github-sim's control API ([`SimControl`]): data changes,
//!   faults, and the request counters tests wait on; the App's installations.
//! - [`app_key`]: a GitHub App RSA key pair generated at test time ([`AppKeyPair`]).

pub mod acl_user;
pub mod app_key;
pub mod cluster;
pub mod prometheus_text;
pub mod sentinel;
pub mod service_process;
pub mod sim_control;

pub use acl_user::AclUser;
pub use app_key::AppKeyPair;
pub use cluster::RedisCluster;
pub use sentinel::SentinelSet;
pub use service_process::{
    ServiceProcess, assert_sigterm_exits_zero, assert_task_panic_exits_non_zero,
};
pub use sim_control::SimControl;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A real redis-server on 127.0.0.1, without persistence unless asked, stopped on drop.
pub struct RedisServer {
    port: u16,
    child: Child,
    dir: std::path::PathBuf,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a redis-server on a free port and waits until it answers PING.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(&[]).await
    }

    /// Starts one with extra `redis-server` arguments (e.g. `["--appendonly", "yes"]`).
    pub async fn start_with(extra: &[&str]) -> anyhow::Result<Self> {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        Self::start_picking(|| Ok(extra.clone())).await
    }

    /// Starts one whose extra arguments `make_extra` builds anew for every attempt. A port that
    /// was free when picked can be taken before redis-server binds it (other tests bind ports
    /// all the time): then the process exits at once, and the next attempt picks other ports.
    pub(crate) async fn start_picking(
        make_extra: impl Fn() -> anyhow::Result<Vec<String>>,
    ) -> anyhow::Result<Self> {
        const ATTEMPTS: usize = 5;
        let mut last_error = None;
        for _ in 0..ATTEMPTS {
            let port = free_port()?;
            let dir =
                std::env::temp_dir().join(format!("hubcache-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).context("creating redis dir")?;
            let extra = make_extra()?;
            let child = spawn_redis(port, &dir, &extra)?;
            let mut server = Self {
                port,
                child,
                dir,
                extra,
            };
            match server.wait_ready().await {
                Ok(()) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error
            .expect("at least one attempt ran")
            .context(format!("redis-server did not start in {ATTEMPTS} attempts")))
    }

    /// Starts one that also knows `users` (declared on its command line, so they survive
    /// [`RedisServer::restart`]), with extra arguments as in [`RedisServer::start_with`].
    pub async fn start_with_users(users: &[&AclUser], extra: &[&str]) -> anyhow::Result<Self> {
        let mut args: Vec<String> = users.iter().flat_map(|user| user.server_args()).collect();
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        Self::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>()).await
    }

    /// Kills the server (as a crash would: no shutdown save) and leaves it down until
    /// [`RedisServer::restart`]; for testing how services ride out a Redis outage.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server if it runs and starts a new one on the same port with the same arguments,
    /// waiting until it answers PING. Without persistence arguments it comes back empty, like a
    /// Redis restarted without its data.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.child = spawn_redis(self.port, &self.dir, &self.extra)?;
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = redis::Client::open(self.url())?;
        loop {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait().context("polling redis-server")? {
                bail!(
                    "redis-server on port {} exited before answering PING ({status}); \
                     its port was probably taken",
                    self.port
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "redis-server on port {} did not answer PING within 10s",
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Its URL, for `REDIS_URL`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A plain client to inspect or tamper with what the services stored.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("a loopback redis URL is valid")
    }
}

fn spawn_redis(port: u16, dir: &std::path::Path, extra: &[String]) -> anyhow::Result<Child> {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "no", "--dir"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning redis-server (install it: apt-get install redis-server; scripts/test.sh does)")
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a probe port")?;
    Ok(listener.local_addr()?.port())
}

/// Polls `check` every 50 ms until it returns `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How a binary run by [`run_to_exit`] ended.
#[derive(Debug)]
pub struct Exited {
    /// Its exit status.
    pub status: std::process::ExitStatus,
    /// Everything it wrote to stdout and stderr (logs go to either).
    pub output: String,
}

/// Runs `binary` with only `env` (no inherited variables) and no arguments, and waits for it
/// to exit; fails (killing it) if it still runs after `timeout`, as a service that should
/// have refused its settings but started anyway would.
pub fn run_to_exit(
    binary: &std::path::Path,
    env: &[(&str, &str)],
    timeout: Duration,
) -> anyhow::Result<Exited> {
    let mut child = Command::new(binary)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{} still running after {timeout:?}", binary.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output()?;
    Ok(Exited {
        status: out.status,
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

/// Asserts that `binary` refuses each `(variable, value)` at start: it exits (within 20 s)
/// with a failure status and a message naming the variable (a config file: its path) and the
/// value, and never echoes the token it was also given.
pub fn assert_settings_refused(binary: &std::path::Path, cases: &[(&str, &str)]) {
    const TOKEN: &str = "ghp_neverEchoedInSettingsErrors";
    for (name, value) in cases {
        let exited = run_to_exit(
            binary,
            &[
                (name, value),
                ("GITHUB_API_TOKEN", TOKEN),
                ("RUST_LOG", "info"),
            ],
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{name}={value}: {e:#}"));
        assert!(!exited.status.success(), "{name}={value}: exited 0");
        let named = exited.output.contains(name)
            || (*name == "HUBCACHE_CONFIG" && exited.output.contains("config file"));
        assert!(
            named && exited.output.contains(value),
            "{name}={value}: the error names the variable and the value: {}",
            exited.output
        );
        assert!(
            !exited.output.contains(TOKEN),
            "{name}={value}: token echoed"
        );
    }
}
