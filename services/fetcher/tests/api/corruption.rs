//! Damaged snapshots in Redis (tampering, a bad restore): the fetcher reports them and replaces
//! them with the next good version instead of failing forever or writing on top of garbage.

use std::time::Duration;

use hubcache_shared::snapshot::{FIELD_BODY, FIELD_META, FIELD_VERSION};

use crate::helpers::{TestApp, repos_path, spawn_app};

async fn hset(app: &TestApp, path: &str, field: &str, value: &str) {
    let mut conn = app.conn.clone();
    let _: () = redis::cmd("HSET")
        .arg(app.keys.snapshot(path))
        .arg(field)
        .arg(value)
        .query_async(&mut conn)
        .await
        .expect("HSET");
}

#[tokio::test]
async fn a_fetcher_starting_over_damaged_snapshots_replaces_them_with_the_next_version() {
    let app = spawn_app().await;
    let first = app.start_fetcher().await;
    let before = app.wait_for_snapshots().await;
    first.stop().await;
    let org_path = app.paths()[1].clone();
    // Garbage body (no longer matches its content hash) and garbage meta.
    hset(&app, &repos_path(), FIELD_BODY, "[{\"truncated").await;
    hset(&app, &org_path, FIELD_META, "{not json").await;
    let events_before = app.events().await.len();

    let fetcher = app.start_fetcher().await;
    let repos = app
        .wait_for_version_above(
            &repos_path(),
            before[3].meta.version,
            Duration::from_secs(15),
        )
        .await;
    let org = app
        .wait_for_version_above(&org_path, before[1].meta.version, Duration::from_secs(15))
        .await;
    assert_eq!(repos.body, before[3].body, "the same upstream data again");
    assert_eq!(org.body, before[1].body);
    assert_eq!(repos.meta.version, before[3].meta.version + 1);
    assert_eq!(
        app.events().await.len(),
        events_before + 2,
        "one refresh event per replaced snapshot"
    );
    // The untouched ones are still the same versions.
    assert_eq!(app.version(&app.paths()[0]).await, before[0].meta.version);
    assert_eq!(app.version(&app.paths()[2]).await, before[2].meta.version);
    fetcher.stop().await;
}

#[tokio::test]
async fn a_garbled_version_under_a_running_fetcher_is_replaced_not_retried_forever() {
    let app = spawn_app().await;
    let fetcher = app.start_fetcher().await;
    let before = app.wait_for_snapshots().await;
    hset(&app, &repos_path(), FIELD_VERSION, "seven").await;

    let repaired = hubcache_testkit::eventually(
        Duration::from_secs(15),
        "the garbled version replaced",
        || async {
            let mut conn = app.conn.clone();
            let version: Option<String> = redis::cmd("HGET")
                .arg(app.keys.snapshot(&repos_path()))
                .arg(FIELD_VERSION)
                .query_async(&mut conn)
                .await
                .ok()?;
            version?.parse::<u64>().ok()
        },
    )
    .await
    .expect("a numeric version again");
    let snapshot = app.snapshot(&repos_path()).await.expect("a valid snapshot");
    assert_eq!(snapshot.meta.version, repaired);
    assert!(
        repaired > before[3].meta.version,
        "never back to an older version: {repaired}"
    );
    assert_eq!(snapshot.body, before[3].body);
    let status = app.status(&repos_path()).await;
    eprintln!("status after repairing a garbled version: {status:?}");
    fetcher.stop().await;
}
