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
