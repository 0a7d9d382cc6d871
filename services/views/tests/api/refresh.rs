//! A new repos snapshot becomes views: sorted, tagged, announced, once.

use std::time::Duration;

use hubcache_shared::snapshot;
use hubcache_shared::views::FIELD_VIEWS_VERSION;
use hubcache_shared::{ViewName, ViewSet};
use serde_json::json;

use crate::helpers::{SOON, repo, spawn_app, spawn_redis};

#[tokio::test]
async fn a_new_repos_snapshot_becomes_sorted_views_within_a_second() {
    let app = spawn_app().await;
    let repos = json!([
        repo("acme/beta", 5, 10, 1, "2024-05-01T00:00:00Z"),
        repo("acme/alpha", 5, 20, 1, "2024-05-01T00:00:00Z"),
        repo("acme/gamma", 7, 10, 0, "2024-06-01T12:00:00Z"),
        // No open_issues_count and a null updated_at: counts as 0, left out of last_updated.
        {"full_name": "acme/delta", "forks_count": 1, "stargazers_count": 30, "watchers_count": 30,
         "updated_at": null},
    ]);

    let event = app.publish_repos(3, &repos).await;
    let views = app.wait_for_views(3, Duration::from_secs(1)).await;

    let body = serde_json::to_vec(&repos).expect("serialises");
    assert_eq!(views.version, 3);
    assert_eq!(views.source_hash, snapshot::content_hash(&body));
    // The exact stored JSON: descending, ties by full_name ascending.
    let expected = [
        (
            "forks",
            r#"[["acme/gamma",7],["acme/alpha",5],["acme/beta",5],["acme/delta",1]]"#,
        ),
        (
            "stars",
            r#"[["acme/delta",30],["acme/alpha",20],["acme/beta",10],["acme/gamma",10]]"#,
        ),
        (
            "watchers",
            r#"[["acme/delta",30],["acme/alpha",20],["acme/beta",10],["acme/gamma",10]]"#,
        ),
        (
            "open_issues",
            r#"[["acme/alpha",1],["acme/beta",1],["acme/delta",0],["acme/gamma",0]]"#,
        ),
        (
            "last_updated",
            r#"[["acme/gamma","2024-06-01T12:00:00Z"],["acme/alpha","2024-05-01T00:00:00Z"],["acme/beta","2024-05-01T00:00:00Z"]]"#,
        ),
    ];
    for (field, json) in expected {
        assert_eq!(
            app.views_field(field).await.as_deref(),
            Some(json),
            "view {field}"
        );
    }
    assert_eq!(views.views.len(), ViewName::ALL.len());

    let announced = app.views_events().await;
    assert_eq!(announced.len(), 1, "{announced:?}");
    assert_eq!(announced[0].version, 3);
    let latency_ms = announced[0].at_ms.saturating_sub(event.at_ms);
    eprintln!("refresh event to stored views: {latency_ms} ms");
    assert!(latency_ms < 1_000, "took {latency_ms} ms");
}

#[tokio::test]
async fn older_or_repeated_events_never_overwrite_or_reannounce() {
    let app = spawn_app().await;
    let v2 = json!([repo("acme/new", 9, 9, 9, "2024-02-02T00:00:00Z")]);
    let event = app.publish_repos(2, &v2).await;
    let stored = app.wait_for_views(2, SOON).await;
    let acked = || app.total(|s| s.events_acked());
    crate::helpers::wait_until(|| acked() == 1).await;

    // A late event of version 1 (its snapshot long replaced), then the same event of version 2
    // delivered again, then an event claiming version 1 with an older body stored meanwhile
    // (as after out-of-order writes): none may move or re-announce the views.
    let mut late = event.clone();
    late.version = 1;
    app.xadd_refresh(&late.to_fields()).await;
    app.xadd_refresh(&event.to_fields()).await;
    let old_body = serde_json::to_vec(&json!([repo("acme/old", 1, 1, 1, "2024-01-01T00:00:00Z")]))
        .expect("json");
    let last = app
        .publish_snapshot(&old_body, &app.meta(1, &old_body))
        .await;
    let last_id = app.xadd_refresh(&last.to_fields()).await;
    app.wait_acked(&last_id).await;

    assert_eq!(acked(), 5);
    assert_eq!(app.views().await, Some(stored), "views untouched");
    let announced = app.views_events().await;
    assert_eq!(
        announced.iter().map(|e| e.version).collect::<Vec<_>>(),
        [2],
        "announced once"
    );

    // A newer version is still taken.
    app.publish_repos(3, &v2).await;
    app.wait_for_views(3, SOON).await;
    assert_eq!(app.views_events().await.len(), 2);
}

#[tokio::test]
async fn a_starting_worker_catches_up_without_any_pending_event() {
    let mut app = spawn_redis().await;
    // Views of version 2 are stored, the snapshot is at 4, and no event is pending (as when
    // the views workers were all down while the fetcher wrote and the events were trimmed).
    let old = ViewSet {
        version: 2,
        source_hash: "old".into(),
        views: ViewName::ALL.into_iter().map(|v| (v, Vec::new())).collect(),
    };
    let _: () = redis::AsyncCommands::hset_multiple(
        &mut app.conn().await,
        app.keys.views(),
        &old.to_fields().expect("fields"),
    )
    .await
    .expect("old views stored");
    let body = serde_json::to_vec(&json!([repo("acme/a", 1, 2, 3, "2024-01-01T00:00:00Z")]))
        .expect("json");
    app.write_snapshot(&body, &app.meta(4, &body)).await;

    app.spawn_worker().await;
    let views = app.wait_for_views(4, SOON).await;
    assert_eq!(views.source_hash, snapshot::content_hash(&body));
    assert_eq!(app.views_events().await.len(), 1);

    // A restarted worker finds the views current: nothing is rewritten or announced. An event
    // for another path, once acknowledged, proves its start-up catch-up has run.
    let first = app.workers.remove(0);
    first.stop().await.expect("stops cleanly");
    app.spawn_worker().await;
    let id = app
        .xadd_refresh(
            &hubcache_shared::RefreshEvent {
                path: "/orgs/acme".into(),
                version: 9,
                content_hash: "x".into(),
                at_ms: 1,
                traceparent: None,
            }
            .to_fields(),
        )
        .await;
    app.wait_acked(&id).await;
    assert_eq!(app.workers[0].stats.views_stored(), 0);
    assert_eq!(app.views_events().await.len(), 1);
    assert_eq!(
        app.views_field(FIELD_VIEWS_VERSION).await.as_deref(),
        Some("4")
    );
}
