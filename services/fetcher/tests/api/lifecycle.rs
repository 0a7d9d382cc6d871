//! The fetcher binary's lifecycle: a task that panics stops the process with a failure exit
//! code within the shutdown timeout (the cause logged once); SIGTERM stops it with exit code 0.

use std::path::Path;
use std::time::Duration;

use hubcache_testkit::{RedisServer, free_port};

const SHUTDOWN_TIMEOUT_SECS: &str = "2";

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_fetcher"))
}

fn shutdown_timeout() -> Duration {
    Duration::from_secs(SHUTDOWN_TIMEOUT_SECS.parse().expect("a number"))
}

/// A fetcher against a real Redis and an upstream that refuses connections (it keeps retrying).
fn env(redis_url: String, metrics_port: u16) -> Vec<(&'static str, String)> {
    let upstream = format!("http://127.0.0.1:{}", free_port().expect("a free port"));
    vec![
        ("REDIS_URL", redis_url),
        ("GITHUB_API_URL", upstream),
        ("METRICS_PORT", metrics_port.to_string()),
        ("SHUTDOWN_TIMEOUT_SECS", SHUTDOWN_TIMEOUT_SECS.to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ]
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn a_panicking_fetch_loops_task_makes_the_binary_exit_non_zero_within_the_shutdown_timeout() {
    let redis = RedisServer::start().await.expect("redis-server starts");
    let env = env(redis.url(), free_port().expect("a free port"));
    hubcache_testkit::assert_task_panic_exits_non_zero(
        binary(),
        &borrowed(&env),
        "fetch loops",
        shutdown_timeout(),
    );
}

#[tokio::test]
async fn sigterm_makes_the_binary_exit_zero() {
    let redis = RedisServer::start().await.expect("redis-server starts");
    let metrics_port = free_port().expect("a free port");
    let env = env(redis.url(), metrics_port);
    hubcache_testkit::assert_sigterm_exits_zero(
        binary(),
        &borrowed(&env),
        metrics_port,
        shutdown_timeout(),
    )
    .await;
}
