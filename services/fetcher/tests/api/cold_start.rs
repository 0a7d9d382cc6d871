//! A fetcher starting against an empty Redis stores every endpoint exactly as GitHub sent it.

use hubcache_shared::SnapshotKind;
use hubcache_shared::snapshot::content_hash;

use crate::helpers::{REPOS, repos_path, spawn_app};

#[tokio::test]
async fn cold_start_stores_every_endpoint_byte_for_byte_with_one_event_each() {
    let app = spawn_app().await;
    let fetcher = app.start_fetcher().await;

    let snapshots = app.wait_for_snapshots().await;

    // The repos list: three pages merged into one array of GitHub's own element bytes.
    let pages = app.sim_list_pages(&repos_path()).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    let repos = &snapshots[3];
    assert_eq!(repos.meta.kind, SnapshotKind::List);
    assert_eq!(
        String::from_utf8_lossy(&repos.body),
        String::from_utf8_lossy(&app.sim_merged_list(&repos_path()).await),
        "merged body must be the pages' elements, byte for byte"
    );
    assert_eq!(crate::helpers::repos_of(repos).len(), REPOS);
    assert_eq!(
        repos.meta.pages.iter().map(|p| p.items).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    assert!(
        repos.meta.pages[1].target.starts_with("/organizations/"),
        "{:?}",
        repos.meta.pages
    );
    assert!(repos.meta.pages.iter().all(|p| p.etag.is_some()));

    // Objects are the exact bodies.
    for (path, snapshot) in app.paths().iter().zip(&snapshots).take(2) {
        assert_eq!(snapshot.meta.kind, SnapshotKind::Object, "{path}");
        let body = app.sim_get(path).await.bytes().await.expect("body");
        assert_eq!(snapshot.body, body, "{path}");
    }
    let members = &snapshots[2];
    assert_eq!(members.body, app.sim_merged_list(&app.paths()[2]).await);

    // One event per endpoint, version 1, matching the stored content.
    let events = app.events().await;
    assert_eq!(events.len(), 4, "{events:?}");
    for (path, snapshot) in app.paths().iter().zip(&snapshots) {
        let event = events
            .iter()
            .find(|e| &e.path == path)
            .expect("event for path");
        assert_eq!(event.version, 1);
        assert_eq!(snapshot.meta.version, 1);
        assert_eq!(event.content_hash, content_hash(&snapshot.body));
    }

    // Each endpoint's status records the success.
    for path in app.paths() {
        let status = app.status(&path).await;
        assert!(status.last_success_at_ms.is_some(), "{path}: {status:?}");
        assert_eq!(status.last_error, None, "{path}");
    }
    fetcher.stop().await;
    assert_eq!(
        app.lease_holder().await,
        None,
        "graceful stop releases the lease"
    );
}
