use hubcache_shared::SnapshotKind;

use crate::helpers::{ORG, Options, members_body, spawn_with};

#[tokio::test]
async fn livez_answers_while_the_process_runs() {
    let app = spawn_with(Options::default()).await;
    assert_eq!(app.get("/livez").await.status(), 200);
    assert_eq!(app.head("/livez").await.status(), 200);
}

#[tokio::test]
async fn healthcheck_is_503_listing_what_is_missing_until_everything_is_loaded() {
    let app = spawn_with(Options::default()).await;
    let response = app.get("/healthcheck").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.expect("json");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let missing: Vec<String> =
        serde_json::from_value(body["missing"].clone()).expect("missing list");
    assert_eq!(
        missing,
        [
            "/",
            "/orgs/acme",
            "/orgs/acme/members",
            "/orgs/acme/repos",
            "views"
        ]
    );

    // A cached key that is not loaded yet is a 503 JSON, not a pass-through.
    let response = app.get("/orgs/acme/members").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("/orgs/acme/members")),
        "{body}"
    );

    // Arriving events load what they name, without a restart.
    app.seed_snapshot(
        &format!("/orgs/{ORG}/members"),
        SnapshotKind::List,
        &members_body(),
        1,
    )
    .await;
    hubcache_testkit::eventually(
        std::time::Duration::from_secs(5),
        "members loaded",
        || async { (app.get("/orgs/acme/members").await.status() == 200).then_some(()) },
    )
    .await
    .expect("members served");
    assert_eq!(
        app.get("/healthcheck").await.status(),
        503,
        "other keys still missing"
    );
    app.seed_all(2).await;
    app.wait_ready().await;
}

#[tokio::test]
async fn healthcheck_names_a_stuck_endpoint_with_the_fetchers_reason_until_it_heals() {
    let app = spawn_with(Options::default()).await;
    let repos = format!("/orgs/{ORG}/repos");
    // Page 2 fails until cleared (only the repos list has one): the list cannot be stored.
    app.sim
        .add_fault(serde_json::json!({"status": 502, "page": 2}))
        .await;
    let _fetcher = app.start_fetcher().await;
    let _views = app.start_views().await;

    let body = hubcache_testkit::eventually(
        std::time::Duration::from_secs(20),
        "the repos list reported failing",
        || async {
            let response = app.get("/healthcheck").await;
            if response.status() != 503 {
                return None;
            }
            let body: serde_json::Value = response.json().await.ok()?;
            let missing = body["missing"].as_array()?.len();
            // The other endpoints are stored; only the list (and the views built from it) miss.
            (missing == 2 && body["failing"].get(&repos).is_some()).then_some(body)
        },
    )
    .await
    .expect("the stuck endpoint is visible");
    let reason = body["failing"][&repos].as_str().expect("a reason");
    assert!(
        reason.contains("502") && reason.contains("page=2"),
        "{body}"
    );
    assert_eq!(
        body["missing"],
        serde_json::json!([repos, "views"]),
        "{body}"
    );
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains(&format!("{repos} (failing: ")),
        "{message}"
    );
    assert_eq!(
        body["failing"].as_object().map(|f| f.len()),
        Some(1),
        "only the list fails: {body}"
    );

    // It heals by itself once the upstream does, and stops being reported.
    app.sim.clear_faults().await;
    app.wait_ready().await;
    hubcache_testkit::eventually(
        std::time::Duration::from_secs(10),
        "no failing endpoint reported",
        || async {
            let body: serde_json::Value = app.get("/healthcheck").await.json().await.ok()?;
            (body["failing"] == serde_json::json!({})).then_some(())
        },
    )
    .await
    .expect("the healed endpoint is no longer failing");
}
