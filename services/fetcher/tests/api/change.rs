//! An upstream change reaches the snapshot within one interval, as one new version and event,
//! paying only for the page that changed.

use std::time::{Duration, Instant};

use crate::helpers::{repos_of, repos_path, spawn_app};

#[tokio::test]
async fn a_change_on_page_two_reaches_redis_within_one_interval() {
    let app = spawn_app().await;
    let fetcher = app.start_fetcher().await;
    let before = app.wait_for_snapshots().await.remove(3);
    let events_before = app.events().await;
    let target = repos_of(&before)[150].clone();
    let name = target["name"].as_str().expect("name").to_owned();
    let stars = target["stargazers_count"].as_u64().expect("stars") + 1_000;

    app.sim.reset_stats().await;
    let changed_at = Instant::now();
    let changed_at_ms = hubcache_shared::snapshot::now_ms();
    app.set_stars(&name, stars).await;
    let after = app
        .wait_for_version_above(&repos_path(), before.meta.version, Duration::from_secs(5))
        .await;
    assert_eq!(
        repos_of(&after)[150]["stargazers_count"].as_u64(),
        Some(stars)
    );
    let observed = changed_at.elapsed();
    let units = app.sim.stat("rate_limit_used").await;

    // One new version, one new event, the exact new bytes.
    assert_eq!(after.meta.version, before.meta.version + 1);
    assert_eq!(after.body, app.sim_merged_list(&repos_path()).await);
    let events = app.events().await;
    assert_eq!(events.len(), events_before.len() + 1, "{events:?}");
    let event = events.last().expect("event");
    // The event's time is when the fetcher stored the change (the test's own reads of a 1.5 MB
    // snapshot in a debug build add to `observed`).
    let latency = Duration::from_millis(event.at_ms.saturating_sub(changed_at_ms));
    println!(
        "change-to-snapshot latency: {latency:?} (observed by the test: {observed:?}); units spent: {units}"
    );
    let interval = Duration::from_secs(app.options.refresh_secs);
    assert!(latency <= interval + Duration::from_secs(1), "{latency:?}");
    assert_eq!(event.path, repos_path());
    assert_eq!(event.version, after.meta.version);
    assert_eq!(event.content_hash, after.meta.content_hash);

    // Only page 2 was paid for; pages 1 and 3 kept their ETags.
    assert_eq!(units, 1, "{}", app.sim.stats().await);
    let etags = |s: &hubcache_shared::Snapshot| {
        s.meta
            .pages
            .iter()
            .map(|p| p.etag.clone())
            .collect::<Vec<_>>()
    };
    let (old, new) = (etags(&before), etags(&after));
    assert_eq!(old[0], new[0]);
    assert_ne!(old[1], new[1]);
    assert_eq!(old[2], new[2]);
    fetcher.stop().await;
}
