//! Redis dies under the whole pipeline (github-sim → fetcher → Redis → views → gateway, all
//! real): the gateway keeps answering from memory, marked stale; no service exits; and when
//! Redis comes back, empty or from its append-only file, everything heals by itself. Measured
//! figures are printed for the record.

use std::time::{Duration, Instant};

use hubcache_shared::snapshot::FIELD_VERSION;
use hubcache_testkit::eventually;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{Options, TestApp, cache_status, spawn_with};

/// Recovery must take at most this long (issue 7).
const RECOVERY_BOUND: Duration = Duration::from_secs(30);

fn cached_paths(app: &TestApp) -> [String; 4] {
    [
        "/".to_owned(),
        format!("/orgs/{}", app.org),
        format!("/orgs/{}/members", app.org),
        format!("/orgs/{}/repos", app.org),
    ]
}

/// The `version` of every stored snapshot and of the views (0: absent).
async fn stored_versions(app: &TestApp) -> Vec<u64> {
    let mut conn = app
        .redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let mut versions = Vec::new();
    for key in cached_paths(app)
        .iter()
        .map(|p| app.keys.org(&app.org).snapshot(p))
        .chain([app.keys.org(&app.org).views()])
    {
        let version: Option<u64> = redis::cmd("HGET")
            .arg(key)
            .arg(FIELD_VERSION)
            .query_async(&mut conn)
            .await
            .expect("HGET version");
        versions.push(version.unwrap_or(0));
    }
    versions
}

/// Healthy, fed from a reachable Redis, serving copies that are not stale.
async fn fully_healthy(app: &TestApp) -> bool {
    let health = app.get("/healthcheck").await;
    if health.status() != 200 {
        return false;
    }
    let health: serde_json::Value = health.json().await.unwrap_or_default();
    if health["redis"] != "reachable" {
        return false;
    }
    for path in cached_paths(app) {
        if cache_status(&app.get(&path).await) != "hubcache; hit" {
            return false;
        }
    }
    cache_status(&app.get("/view/top/1/stars").await) == "hubcache; hit"
}

async fn upstream_total(app: &TestApp) -> u64 {
    app.sim.stats().await["total"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn redis_killed_and_restarted_empty_the_stack_serves_stale_then_repopulates_itself() {
    let mut app = spawn_with(Options {
        pipeline: true,
        ..Options::default()
    })
    .await;
    app.wait_ready().await;
    let paths = cached_paths(&app);
    let mut before = Vec::new();
    for path in &paths {
        before.push(app.get_text(path).await);
    }
    let top_before = app.get_text("/view/top/5/stars").await;

    // Redis is killed: the gateway answers from memory, marked stale.
    app.redis.stop();
    let killed = Instant::now();
    eventually(Duration::from_secs(10), "stale marking", || async {
        (cache_status(&app.get(&paths[1]).await) == "hubcache; hit; fwd=stale").then_some(())
    })
    .await
    .expect("copies marked stale while Redis is down");
    let marked_after = killed.elapsed();
    let upstream_at_outage = upstream_total(&app).await;
    // The outage's length, not a wait for something: the gateway's reconnects (one a second)
    // fail meanwhile, and it must go on answering from memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (path, body) in paths.iter().zip(&before) {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path} during the outage");
        assert_eq!(cache_status(&response), "hubcache; hit; fwd=stale");
        assert_eq!(&response.text().await.expect("body"), body);
    }
    let response = app.get("/view/top/5/stars").await;
    assert_eq!(cache_status(&response), "hubcache; hit; fwd=stale");
    assert_eq!(response.text().await.expect("body"), top_before);
    let health: serde_json::Value = app.get("/healthcheck").await.json().await.expect("json");
    assert_eq!(health["redis"], "unreachable", "{health}");
    let upstream_during_outage = upstream_total(&app).await - upstream_at_outage;
    let outage = killed.elapsed();
    for service in &app.services {
        assert!(
            !service.has_exited(),
            "{} exited while Redis was down",
            service.name
        );
    }
    // At most the one polling cycle (5 requests) that was under way when Redis died: a
    // fetcher that cannot store never keeps spending the upstream budget.
    assert!(
        upstream_during_outage <= 5,
        "{upstream_during_outage} upstream requests while Redis was down"
    );

    // Redis comes back empty: lease, snapshots, views, streams and group are all gone.
    app.redis.restart().await.expect("redis restarts");
    let restarted = Instant::now();
    assert_eq!(stored_versions(&app).await, [0; 5], "came back empty");
    let upstream_at_restart = upstream_total(&app).await;
    eventually(
        RECOVERY_BOUND + Duration::from_secs(15),
        "Redis repopulated and the gateway fresh",
        || async {
            let repopulated = stored_versions(&app).await.iter().all(|v| *v > 0);
            (repopulated && fully_healthy(&app).await).then_some(())
        },
    )
    .await
    .expect("the stack heals after Redis restarts empty");
    let recovery = restarted.elapsed();
    let upstream_to_repopulate = upstream_total(&app).await - upstream_at_restart;
    eprintln!(
        "Redis killed and restarted empty: copies marked stale {marked_after:?} after the kill; \
         {upstream_during_outage} upstream requests during the {outage:?} outage; everything \
         repopulated in Redis and served fresh {recovery:?} after Redis came back, with \
         {upstream_to_repopulate} upstream requests"
    );
    assert!(
        recovery < RECOVERY_BOUND,
        "recovered in {recovery:?}, bound {RECOVERY_BOUND:?}"
    );
    for service in &app.services {
        assert!(!service.has_exited(), "{} exited", service.name);
    }
    for (path, body) in paths.iter().zip(&before) {
        assert_eq!(
            &app.get_text(path).await,
            body,
            "{path}: the same data again"
        );
    }
    assert_eq!(app.get_text("/view/top/5/stars").await, top_before);

    // And changes flow end to end again.
    let repos: Vec<serde_json::Value> = serde_json::from_str(&before[3]).expect("the repos list");
    let name = repos[7]["name"].as_str().expect("name").to_owned();
    app.sim
        .call(
            Method::PATCH,
            &format!("/repos/{}/{name}", app.org),
            Some(json!({ "stargazers_count": 8_888_888 })),
        )
        .await;
    let expected = format!(r#"[["{}/{name}", 8888888]]"#, app.org);
    eventually(Duration::from_secs(15), "a new change served", || async {
        (app.get_text("/view/top/1/stars").await == expected).then_some(())
    })
    .await
    .expect("the pipeline follows upstream changes after the restart");
}

#[tokio::test]
async fn redis_restarted_from_its_aof_costs_no_rate_limit_and_changes_no_version() {
    let mut app = spawn_with(Options {
        pipeline: true,
        redis_aof: true,
        // A killed fetcher's lease survives in the AOF: keep the takeover short.
        vars: vec![("LEASE_SECS", "3".to_owned())],
        ..Options::default()
    })
    .await;
    app.wait_ready().await;
    eventually(Duration::from_secs(10), "views stored", || async {
        (stored_versions(&app).await.iter().all(|v| *v > 0)).then_some(())
    })
    .await
    .expect("everything stored");
    let versions_before = stored_versions(&app).await;
    let org_path = cached_paths(&app)[1].clone();
    let org_before = app.get_text(&org_path).await;

    // Redis and the fetcher crash together; a new fetcher has only the ETags stored in Redis.
    let fetcher = app.services.remove(0);
    fetcher.kill().await;
    app.redis.stop();
    app.sim.reset_stats().await;
    app.redis
        .restart()
        .await
        .expect("redis restarts from its AOF");
    let restarted = Instant::now();
    assert_eq!(
        stored_versions(&app).await,
        versions_before,
        "the AOF brought everything back"
    );
    app.services.insert(0, app.start_fetcher().await);

    // Healthy again, and the new fetcher has checked every endpoint at least twice.
    eventually(RECOVERY_BOUND, "healthy and two polling cycles", || async {
        let stats = app.sim.stats().await;
        let polled = cached_paths(&app)
            .iter()
            .all(|p| stats["by_path"][p.as_str()].as_u64().unwrap_or(0) >= 2);
        (polled && fully_healthy(&app).await).then_some(())
    })
    .await
    .expect("the stack heals after Redis restarts from its AOF");
    let recovery = restarted.elapsed();
    let stats = app.sim.stats().await;
    eprintln!(
        "Redis restarted from its AOF (fetcher killed with it): healthy and re-polled after \
         {recovery:?}; upstream: {} requests, {} answered 304, {} rate-limit units",
        stats["total"], stats["not_modified"], stats["rate_limit_used"]
    );
    assert_eq!(
        stats["rate_limit_used"], 0,
        "unchanged data is revalidated with the stored ETags: {stats}"
    );
    assert_eq!(stats["not_modified"], stats["total"], "{stats}");
    assert_eq!(
        stored_versions(&app).await,
        versions_before,
        "nothing refetched or rewritten"
    );
    assert_eq!(app.get_text(&org_path).await, org_before);
    for service in &app.services {
        assert!(!service.has_exited(), "{} exited", service.name);
    }
}
