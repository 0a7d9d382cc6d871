//! Several fetchers, one org's lease: only the holder (the replica rendezvous hashing prefers)
//! polls; a successor takes over when it stops.
//!
//! The first fetcher sends a token and the second does not, so the simulator's counters tell
//! their requests apart (`authorization_seen` vs the rest).

use std::time::{Duration, Instant};

use hubcache_testkit::eventually;

use fetcher::preferred_fetcher;

use crate::helpers::{ORG, RunningFetcher, TestApp, repos_of, repos_path, spawn_app};

/// Waits for `cycles` polling cycles' worth of requests (6 per cycle) after a stats reset.
async fn observe_cycles(app: &TestApp, cycles: u64) -> serde_json::Value {
    app.sim.reset_stats().await;
    eventually(Duration::from_secs(10), "polling cycles", || async {
        (app.sim.stat("total").await >= 6 * cycles).then_some(())
    })
    .await
    .expect("someone polls");
    app.sim.stats().await
}

async fn wait_for_holder(app: &TestApp, id: &str, timeout: Duration) {
    eventually(timeout, "the lease to change hands", || async {
        (app.lease_holder().await.as_deref() == Some(id)).then_some(())
    })
    .await
    .expect("takeover");
}

/// Starts a second fetcher (without a token) beside `first` (with one) and waits until the
/// org's lease is held by the one rendezvous hashing prefers: `(holder, standby)`. Which one
/// that is depends on their random instance ids, so callers tell their requests apart by
/// whether the holder sends the token.
async fn second_fetcher(app: &TestApp, first: RunningFetcher) -> (RunningFetcher, RunningFetcher) {
    let second = app.start_fetcher_with(None).await;
    let preferred = preferred_fetcher(
        ORG,
        &[ORG],
        [first.instance_id.as_str(), second.instance_id.as_str()],
    )
    .expect("two members")
    .to_owned();
    wait_for_holder(app, &preferred, Duration::from_secs(5)).await;
    if preferred == first.instance_id {
        (first, second)
    } else {
        (second, first)
    }
}

/// How many of the requests in `stats` the fetcher `sends_token` sent.
fn requests_by(stats: &serde_json::Value, sends_token: bool) -> u64 {
    let authorized = stats["authorization_seen"].as_u64().expect("a counter");
    if sends_token {
        authorized
    } else {
        stats["total"].as_u64().expect("a counter") - authorized
    }
}

#[tokio::test]
async fn only_the_holder_polls_and_a_graceful_stop_hands_over_at_once() {
    let app = spawn_app().await;
    let first = app.start_fetcher().await;
    let first_id = first.instance_id.clone();
    app.wait_for_snapshots().await;
    let (holder, standby) = second_fetcher(&app, first).await;
    let holder_sends_token = holder.instance_id == first_id;

    let stats = observe_cycles(&app, 3).await;
    assert_eq!(
        requests_by(&stats, holder_sends_token),
        stats["total"].as_u64().expect("a counter"),
        "the standby must not poll: {stats}"
    );
    assert_eq!(
        app.lease_holder().await.as_deref(),
        Some(holder.instance_id.as_str())
    );

    let stopped_at = Instant::now();
    holder.stop().await;
    wait_for_holder(&app, &standby.instance_id, Duration::from_secs(3)).await;
    let takeover = stopped_at.elapsed();
    println!("graceful takeover: {takeover:?}");
    // The survivor sees the member gone at its next heartbeat (every third of the lease).
    let lease = Duration::from_secs(app.options.lease_secs);
    assert!(
        takeover < lease / 3 + Duration::from_millis(500),
        "{takeover:?}"
    );

    let stats = observe_cycles(&app, 2).await;
    assert_eq!(
        requests_by(&stats, holder_sends_token),
        0,
        "the stopped fetcher must not poll: {stats}"
    );
    // The successor revalidates with the stored ETags: it pays nothing.
    assert_eq!(stats["rate_limit_used"], 0, "{stats}");
    standby.stop().await;
}

#[tokio::test]
async fn a_killed_holder_is_replaced_within_one_lease_period() {
    let app = spawn_app().await;
    let first = app.start_fetcher().await;
    let first_id = first.instance_id.clone();
    let before = app.wait_for_snapshots().await;
    let (holder, standby) = second_fetcher(&app, first).await;
    let holder_sends_token = holder.instance_id == first_id;

    let holder_id = holder.instance_id.clone();
    let killed_at = Instant::now();
    holder.kill().await;
    assert_eq!(
        app.lease_holder().await.as_deref(),
        Some(holder_id.as_str()),
        "a killed fetcher releases nothing"
    );
    let lease = Duration::from_secs(app.options.lease_secs);
    wait_for_holder(&app, &standby.instance_id, lease + Duration::from_secs(2)).await;
    let takeover = killed_at.elapsed();
    println!("takeover after a kill: {takeover:?} (lease {lease:?})");
    assert!(
        takeover <= lease + Duration::from_millis(500),
        "{takeover:?}"
    );

    let stats = observe_cycles(&app, 2).await;
    assert_eq!(requests_by(&stats, holder_sends_token), 0, "{stats}");
    assert_eq!(stats["rate_limit_used"], 0, "{stats}");
    for (path, old) in app.paths().iter().zip(&before) {
        assert_eq!(
            app.snapshot(path).await.expect("stored").meta.version,
            old.meta.version
        );
    }
    standby.stop().await;
}

#[tokio::test]
async fn a_fetcher_that_loses_its_lease_stops_polling_and_writes_nothing() {
    let app = spawn_app().await;
    let fetcher = app.start_fetcher_with_admin().await;
    let before = app.wait_for_snapshots().await.remove(3);

    // Someone else takes the lease (as after a long pause of this process).
    let mut conn = app.conn.clone();
    let _: () = redis::cmd("SET")
        .arg(app.keys.fetcher_lease())
        .arg("intruder")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut conn)
        .await
        .expect("SET lease");
    let repo = repos_of(&before)[0]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    app.set_stars(&repo, 424_242).await;
    // Renewal notices within a third of the lease: the fetcher stops leading (its gauge drops
    // to 0); after that, silence.
    eventually(
        Duration::from_secs(app.options.lease_secs * 2),
        "the fetcher to report the lease lost",
        || async { (fetcher.metric("hubcache_fetcher_lease_held").await? == 0.0).then_some(()) },
    )
    .await
    .expect("the lost lease is noticed");
    app.sim.reset_stats().await;
    // An observation window, not a wait for something: a leading fetcher polls each second
    // (REFRESH_INTERVAL_SECS=1), so 1.5 s of silence shows it stopped.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let stats = app.sim.stats().await;
    assert_eq!(
        stats["total"], 0,
        "a fetcher without the lease must not poll: {stats}"
    );
    let now = app.snapshot(&repos_path()).await.expect("stored");
    assert_eq!(
        now.meta.version, before.meta.version,
        "nothing written without the lease"
    );

    // The lease comes free: the fetcher resumes and stores the change.
    let _: () = redis::cmd("DEL")
        .arg(app.keys.fetcher_lease())
        .query_async(&mut conn)
        .await
        .expect("DEL lease");
    let after = app
        .wait_for_version_above(&repos_path(), before.meta.version, Duration::from_secs(5))
        .await;
    assert_eq!(repos_of(&after)[0]["stargazers_count"], 424_242);
    assert_eq!(
        app.lease_holder().await.as_deref(),
        Some(fetcher.instance_id.as_str())
    );
    fetcher.stop().await;
}
