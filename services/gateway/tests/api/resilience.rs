use std::time::Duration;

use hubcache_testkit::eventually;

use crate::helpers::{ORG, Options, org_body, spawn_app, spawn_with};

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
