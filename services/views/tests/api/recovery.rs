//! Surviving crashes: of a views worker between read and ack, and of Redis.

use std::time::Duration;

use redis::AsyncCommands as _;
use redis::streams::{StreamReadOptions, StreamReadReply};
use serde_json::json;

use crate::helpers::{SOON, repo, spawn_app, spawn_redis, wait_until};

#[tokio::test]
async fn an_event_read_by_a_dead_worker_is_claimed_and_applied_once() {
    let mut app = spawn_redis().await;
    let mut conn = app.conn().await;
    let _: () = conn
        .xgroup_create_mkstream(app.keys.refresh_stream(), app.keys.views_group(), "0")
        .await
        .expect("group created");
    app.publish_repos(1, &json!([repo("acme/a", 1, 1, 1, "2024-01-01T00:00:00Z")]))
        .await;
    // A worker reads the event and dies before acknowledging it.
    let read: StreamReadReply = conn
        .xread_options(
            &[app.keys.refresh_stream()],
            &[">"],
            &StreamReadOptions::default()
                .group(app.keys.views_group(), "dead-worker")
                .count(10),
        )
        .await
        .expect("dead worker reads");
    assert_eq!(read.keys[0].ids.len(), 1);
    assert_eq!(app.pending().await, 1);

    app.spawn_worker().await;
    // Claimed after the 1 s claim timeout, handled, acknowledged.
    wait_until(|| app.workers[0].stats.entries_claimed() == 1).await;
    wait_until(|| app.workers[0].stats.events_acked() == 1).await;
    assert_eq!(app.pending().await, 0);
    assert_eq!(app.views().await.map(|v| v.version), Some(1));
    let versions: Vec<u64> = app.views_events().await.iter().map(|e| e.version).collect();
    assert_eq!(versions, [1], "applied exactly once");

    // The dead consumer, idle with nothing pending, is eventually dropped from the group.
    let live = app.workers[0].consumer.clone();
    hubcache_testkit::eventually(
        Duration::from_secs(6),
        "the dead consumer forgotten",
        || async { (app.consumers().await == [live.clone()]).then_some(()) },
    )
    .await
    .expect("dead consumer deleted");
}

#[tokio::test]
async fn a_real_worker_killed_between_read_and_ack_loses_nothing_and_applies_once() {
    let mut app = spawn_redis().await;
    let worker = app.spawn_killable_worker().await;
    let mut conn = app.conn().await;
    app.publish_repos(1, &json!([repo("acme/a", 1, 1, 1, "2024-01-01T00:00:00Z")]))
        .await;
    app.wait_for_views(1, SOON).await;
    // The views key now holds the wrong type, so the worker reads the next event but cannot
    // store its views: the event stays read and unacknowledged while the worker retries.
    let _: () = redis::cmd("SET")
        .arg(app.keys.views())
        .arg("not a hash")
        .query_async(&mut conn)
        .await
        .expect("SET");
    app.publish_repos(2, &json!([repo("acme/b", 2, 2, 2, "2024-02-01T00:00:00Z")]))
        .await;
    hubcache_testkit::eventually(Duration::from_secs(5), "the event read", || async {
        (app.pending().await == 1).then_some(())
    })
    .await
    .expect("read, not acknowledged");
    let killed_consumer = worker.consumer.clone();
    assert_eq!(worker.stats.events_acked(), 1, "only the first event");
    let killed_stats = worker.stats.clone();
    worker.kill();
    assert_eq!(app.pending().await, 1, "the kill left the entry pending");

    // The damage is repaired and a new worker starts: it claims the dead worker's entry
    // (claim idle 1 s), stores the views once and acknowledges.
    let _: () = redis::cmd("DEL")
        .arg(app.keys.views())
        .query_async(&mut conn)
        .await
        .expect("DEL");
    app.spawn_worker().await;
    assert_ne!(app.workers[0].consumer, killed_consumer);
    wait_until(|| app.workers[0].stats.events_acked() == 1).await;
    assert_eq!(app.workers[0].stats.entries_claimed(), 1);
    assert_eq!(app.pending().await, 0);
    let views = app.views().await.expect("views stored");
    assert_eq!(views.version, 2);
    assert_eq!(
        views.views[&hubcache_shared::ViewName::Stars][0].0,
        "acme/b"
    );
    let versions: Vec<u64> = app.views_events().await.iter().map(|e| e.version).collect();
    assert_eq!(versions, [1, 2], "each applied exactly once");
    assert_eq!(
        killed_stats.events_acked(),
        1,
        "the killed worker acknowledged nothing more"
    );
}

#[tokio::test]
async fn the_worker_survives_a_redis_restart_and_handles_new_events() {
    let mut app = spawn_app().await;
    app.publish_repos(1, &json!([repo("acme/a", 1, 1, 1, "2024-01-01T00:00:00Z")]))
        .await;
    app.wait_for_views(1, SOON).await;

    // Redis dies, stays down a moment (the worker retries), and comes back empty.
    app.redis.stop();
    // The outage's length, not a wait for something: the worker's retries fail meanwhile.
    tokio::time::sleep(Duration::from_millis(700)).await;
    app.redis.restart().await.expect("redis restarts");
    assert_eq!(app.views().await, None, "Redis came back empty");

    // The fetcher writes its first snapshot again: the worker recreates the group and stores it.
    app.publish_repos(1, &json!([repo("acme/b", 5, 5, 5, "2024-03-01T00:00:00Z")]))
        .await;
    let views = eventually_views(&app, 1).await;
    assert_eq!(
        views.views[&hubcache_shared::ViewName::Stars][0].0,
        "acme/b"
    );
    app.publish_repos(2, &json!([repo("acme/c", 5, 5, 5, "2024-03-01T00:00:00Z")]))
        .await;
    app.wait_for_views(2, SOON).await;
    assert_eq!(app.pending().await, 0);
    assert!(app.last_delivered().await.is_some(), "group recreated");
    let worker = app.workers.remove(0);
    worker
        .stop()
        .await
        .expect("the worker never gave up and stops cleanly");
}

async fn eventually_views(app: &crate::helpers::TestApp, version: u64) -> hubcache_shared::ViewSet {
    app.wait_for_views(version, Duration::from_secs(10)).await
}
