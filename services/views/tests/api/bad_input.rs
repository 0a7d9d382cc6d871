//! Malformed events and damaged snapshots are acknowledged and logged; good views stay.

use std::collections::BTreeMap;

use hubcache_shared::snapshot;
use redis::AsyncCommands as _;
use serde_json::json;

use crate::helpers::{SOON, repo, spawn_app, wait_until};

#[tokio::test]
async fn bad_entries_and_corrupt_snapshots_are_skipped_and_good_views_kept() {
    let app = spawn_app().await;
    app.publish_repos(
        1,
        &json!([repo("acme/good", 1, 1, 1, "2024-01-01T00:00:00Z")]),
    )
    .await;
    app.wait_for_views(1, SOON).await;
    let hash = || async {
        let fields: BTreeMap<String, String> = app
            .conn()
            .await
            .hgetall(app.keys.views())
            .await
            .expect("hgetall");
        fields
    };
    let good = hash().await;

    // Entries that are not refresh events.
    app.xadd_refresh(&[("garbage", "1".to_owned())]).await;
    app.xadd_refresh(&[
        ("path", app.repos_path.clone()),
        ("version", "two".to_owned()),
    ])
    .await;
    // A snapshot whose body does not match its content hash.
    let body = serde_json::to_vec(&json!([repo(
        "acme/evil",
        99,
        99,
        99,
        "2030-01-01T00:00:00Z"
    )]))
    .expect("json");
    let mut meta = app.meta(2, &body);
    meta.content_hash = snapshot::content_hash(b"something else");
    app.publish_snapshot(&body, &meta).await;
    // A snapshot that is intact but not a repo list.
    let body = br#"{"message":"Not Found"}"#;
    let event = app.publish_snapshot(body, &app.meta(3, body)).await;
    assert_eq!(event.version, 3);

    wait_until(|| app.workers[0].stats.events_acked() == 5).await;
    assert_eq!(app.pending().await, 0, "all acknowledged");
    assert_eq!(app.workers[0].stats.rejected(), 4);
    assert_eq!(hash().await, good, "good views untouched");
    assert_eq!(app.views_events().await.len(), 1);

    // The worker is still running.
    app.publish_repos(
        4,
        &json!([repo("acme/next", 1, 1, 1, "2024-01-01T00:00:00Z")]),
    )
    .await;
    let views = app.wait_for_views(4, SOON).await;
    assert_eq!(
        views.views[&hubcache_shared::ViewName::Forks][0].0,
        "acme/next"
    );
}
