//! Several workers share the group: every change is handled by one of them and stored once.

use serde_json::json;

use crate::helpers::{SOON, repo, spawn_app, wait_until};

#[tokio::test]
async fn two_workers_handle_each_event_once() {
    let mut app = spawn_app().await;
    app.spawn_worker().await;
    let repos = |v: u64| {
        json!([
            repo("acme/a", v as i64, 1, 1, "2024-01-01T00:00:00Z"),
            repo("acme/b", 3, 2, 1, "2024-01-01T00:00:00Z")
        ])
    };

    // One change at a time: each becomes exactly one stored and announced view set.
    const STEPPED: u64 = 6;
    for version in 1..=STEPPED {
        app.publish_repos(version, &repos(version)).await;
        app.wait_for_views(version, SOON).await;
    }
    wait_until(|| app.total(|s| s.events_acked()) == STEPPED).await;
    let versions: Vec<u64> = app.views_events().await.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=STEPPED).collect::<Vec<_>>());
    for worker in &app.workers {
        assert!(
            worker.stats.events_acked() > 0,
            "both workers took events: {}",
            worker.consumer
        );
    }

    // A burst: workers may skip versions (they rank the current snapshot), but no event is
    // handled twice and no version is stored or announced twice, in order.
    const BURST: u64 = 20;
    for version in STEPPED + 1..=STEPPED + BURST {
        app.publish_repos(version, &repos(version)).await;
    }
    let last = STEPPED + BURST;
    let views = app.wait_for_views(last, SOON).await;
    assert_eq!(
        views.views[&hubcache_shared::ViewName::Forks][0].0,
        "acme/a"
    );
    wait_until(|| app.total(|s| s.events_acked()) == last).await;
    assert_eq!(app.pending().await, 0);
    let versions: Vec<u64> = app.views_events().await.iter().map(|e| e.version).collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {versions:?}"
    );
    assert_eq!(versions.last(), Some(&last));
    assert_eq!(
        versions.len() as u64,
        app.total(|s| s.views_stored()),
        "each stored set announced once"
    );
}
