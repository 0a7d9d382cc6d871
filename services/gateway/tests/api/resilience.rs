use std::time::{Duration, Instant};

use hubcache_testkit::eventually;
use serde_json::json;

use crate::helpers::{ORG, Options, org_body, spawn_app, spawn_passthrough, spawn_with};

#[tokio::test]
async fn redis_down_serves_stale_copies_and_heals_when_it_returns() {
    let mut app = spawn_app().await;
    app.redis.stop();
    eventually(Duration::from_secs(5), "stale marking", || async {
        let r = app.get(&format!("/orgs/{ORG}")).await;
        (r.headers()
            .get("cache-status")
            .and_then(|v| v.to_str().ok())
            == Some("hubcache; hit; fwd=stale"))
        .then_some(r)
    })
    .await
    .expect("marked stale while Redis is down");
    let response = app.get(&format!("/orgs/{ORG}")).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("warning"));
    assert_eq!(response.text().await.expect("body"), org_body(1));
    assert_eq!(
        app.get_text("/view/top/1/stars").await,
        r#"[["acme/r0", 100]]"#
    );
    let health: serde_json::Value = app.get("/healthcheck").await.json().await.expect("json");
    assert_eq!(health["redis"], "unreachable");

    // Redis comes back empty; the copies stay, the marking goes, and new data flows again.
    app.redis.restart().await.expect("redis restarts");
    eventually(Duration::from_secs(10), "healed", || async {
        let r = app.get(&format!("/orgs/{ORG}")).await;
        (r.headers()
            .get("cache-status")
            .and_then(|v| v.to_str().ok())
            == Some("hubcache; hit"))
        .then_some(())
    })
    .await
    .expect("fresh again after Redis returns");
    assert_eq!(app.get_text(&format!("/orgs/{ORG}")).await, org_body(1));
    app.seed_all(5).await;
    eventually(Duration::from_secs(5), "new data after heal", || async {
        (app.get_text(&format!("/orgs/{ORG}")).await == org_body(5)).then_some(())
    })
    .await
    .expect("events are followed again");
}

#[tokio::test]
async fn a_cold_gateway_without_redis_answers_503_json_then_heals() {
    let mut app = spawn_with(Options {
        seed: true,
        redis_down: true,
        ..Options::default()
    })
    .await;
    let response = app.get(&format!("/orgs/{ORG}")).await;
    assert_eq!(response.status(), 503);
    assert!(response.text().await.expect("body").contains("\"message\""));
    assert_eq!(app.get("/view/top/1/stars").await.status(), 503);
    assert_eq!(app.get("/healthcheck").await.status(), 503);
    assert_eq!(app.get("/livez").await.status(), 200);

    app.redis.restart().await.expect("redis starts");
    app.seed_all(1).await;
    app.wait_ready().await;
    assert_eq!(app.get_text(&format!("/orgs/{ORG}")).await, org_body(1));
}

fn message(body: &serde_json::Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn an_unreachable_github_without_a_stale_copy_is_502_json() {
    // Nothing listens on port 1: every connection is refused.
    let app = spawn_passthrough(Some("http://127.0.0.1:1"), &[], |_| {}).await;
    let response = app.get("/repos/acme/x").await;
    assert_eq!(response.status(), 502);
    let body: serde_json::Value = response.json().await.expect("a JSON error");
    assert!(message(&body).contains("connection failed"), "{body}");
}

#[tokio::test]
async fn a_primary_rate_limit_answers_503_json_with_the_upstream_status() {
    let app = spawn_passthrough(None, &[], |_| {}).await;
    app.sim
        .call(
            reqwest::Method::POST,
            "/faults",
            Some(json!({"status": 403, "primary": true, "count": 1, "path_prefix": "/users/"})),
        )
        .await;
    let response = app.get("/users/someone").await;
    assert_eq!(response.status(), 503);
    assert!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|secs| secs >= 1),
        "{:?}",
        response.headers()
    );
    let body: serde_json::Value = response.json().await.expect("a JSON error");
    assert!(message(&body).contains("403"), "{body}");
}

#[tokio::test]
async fn a_hanging_github_fails_within_the_upstream_timeout() {
    let app = spawn_passthrough(None, &[], |s| s.upstream_timeout_secs = 1).await;
    app.sim
        .call(
            reqwest::Method::POST,
            "/faults",
            Some(json!({"delay_ms": 5000, "path_prefix": "/users/slow"})),
        )
        .await;
    let started = Instant::now();
    let response = app.get("/users/slow").await;
    assert!(
        started.elapsed() < Duration::from_millis(4000),
        "answered after the 1 s timeout, not the 5 s delay: {:?}",
        started.elapsed()
    );
    assert_eq!(response.status(), 502);
    let body: serde_json::Value = response.json().await.expect("a JSON error");
    // The client's timeout or the cache's fetch deadline, whichever fires first (both 1 s).
    assert!(
        message(&body).contains("timed out") || message(&body).contains("no answer within 1s"),
        "{body}"
    );
}

#[tokio::test]
async fn stale_if_error_ends_with_its_window() {
    let app = spawn_passthrough(None, &[("CACHE_TTL_SECS", "1")], |s| {
        s.stale_while_revalidate_secs = 0;
        s.stale_if_error_secs = 2;
    })
    .await;
    let path = app.sim_repo_paths().await.swap_remove(0);
    assert_eq!(app.get(&path).await.status(), 200);
    app.sim
        .call(
            reqwest::Method::POST,
            "/faults",
            Some(json!({"status": 500, "path_prefix": path})),
        )
        .await;
    let cache_status = |r: &reqwest::Response| {
        r.headers()
            .get("cache-status")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    // Expired, GitHub failing, within the window: the stale copy, marked as such.
    let stale = eventually(Duration::from_secs(5), "a stale answer", || async {
        let r = app.get(&path).await;
        (cache_status(&r) == "hubcache; hit; fwd=stale").then_some(r)
    })
    .await
    .expect("the stale copy is served while GitHub fails");
    assert_eq!(stale.status(), 200);
    // Past TTL + window: GitHub's failure, as JSON with its status.
    let failed = eventually(Duration::from_secs(8), "the window ends", || async {
        let r = app.get(&path).await;
        (r.status() == 502).then_some(r)
    })
    .await
    .expect("the stale copy is no longer served after the window");
    let body: serde_json::Value = failed.json().await.expect("a JSON error");
    assert!(message(&body).contains("500"), "{body}");
}
