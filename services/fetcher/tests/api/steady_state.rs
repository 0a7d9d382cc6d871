//! With nothing changing upstream, polling costs no rate limit and produces no events.

use std::time::{Duration, Instant};

use hubcache_testkit::eventually;

use crate::helpers::spawn_app;

#[tokio::test]
async fn unchanged_upstream_costs_nothing_and_emits_nothing() {
    let app = spawn_app().await;
    let fetcher = app.start_fetcher().await;
    let before = app.wait_for_snapshots().await;
    let events_before = app.events().await.len();
    app.sim.reset_stats().await;
    let started = Instant::now();

    // Three full cycles (6 requests each: /, org, members, 3 repos pages), interval 1 s.
    eventually(Duration::from_secs(10), "three polling cycles", || async {
        (app.sim.stat("total").await >= 18).then_some(())
    })
    .await
    .expect("fetcher keeps polling");

    let stats = app.sim.stats().await;
    println!(
        "steady state: {} requests in {:?}, {} answered 304, {} rate-limit units spent",
        stats["total"],
        started.elapsed(),
        stats["not_modified"],
        stats["rate_limit_used"]
    );
    assert_eq!(stats["rate_limit_used"], 0, "{stats}");
    assert_eq!(
        stats["not_modified"], stats["total"],
        "every request revalidated: {stats}"
    );
    assert_eq!(
        stats["authorization_seen"], stats["total"],
        "the token is sent: {stats}"
    );
    assert_eq!(app.events().await.len(), events_before, "no new events");
    for (path, old) in app.paths().iter().zip(&before) {
        let now = app.snapshot(path).await.expect("still stored");
        assert_eq!(now.meta.version, old.meta.version, "{path}");
        assert_eq!(now.body, old.body, "{path}");
    }
    fetcher.stop().await;
}
