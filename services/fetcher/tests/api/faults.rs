//! Upstream failures never replace a good snapshot: they are recorded in `status`, retried at
//! the pace GitHub asks for (or with backoff), and the fetcher recovers when they clear.

use std::time::{Duration, Instant};

use hubcache_shared::Snapshot;
use hubcache_testkit::eventually;
use serde_json::json;

use crate::helpers::{ORG, TestApp, TestOptions, repos_of, repos_path, spawn_app, spawn_app_with};

/// Changes a repo on page 2 so that the next successful poll must store a new version.
async fn change_page_two(app: &TestApp, before: &Snapshot) -> u64 {
    let repo = repos_of(before)[120]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let stars = 777_777;
    app.set_stars(&repo, stars).await;
    stars
}

async fn wait_for_error(app: &TestApp, path: &str, needle: &str) -> String {
    eventually(Duration::from_secs(10), "the failure in status", || async {
        let status = app.status(path).await;
        status.last_error.filter(|e| e.contains(needle))
    })
    .await
    .expect("status records the failure")
}

async fn wait_for_recovery(app: &TestApp, before: &Snapshot, stars: u64) -> Snapshot {
    let snapshot = app
        .wait_for_version_above(&repos_path(), before.meta.version, Duration::from_secs(10))
        .await;
    assert_eq!(
        repos_of(&snapshot)[120]["stargazers_count"].as_u64(),
        Some(stars)
    );
    assert_eq!(snapshot.body, app.sim_merged_list(&repos_path()).await);
    let status = app.status(&repos_path()).await;
    assert!(
        status.last_success_at_ms > status.last_error_at_ms,
        "success after the error: {status:?}"
    );
    snapshot
}

fn assert_untouched(before: &Snapshot, now: &Snapshot) {
    assert_eq!(now.meta.version, before.meta.version);
    assert_eq!(
        now.body, before.body,
        "the good snapshot stays byte-identical"
    );
}

#[tokio::test]
async fn server_errors_mid_pagination_keep_the_snapshot_and_back_off() {
    let app = spawn_app().await;
    let fetcher = app.start_fetcher().await;
    let before = app.wait_for_snapshots().await.remove(3);
    let events_before = app.events().await.len();
    app.sim
        .add_fault(json!({ "status": 500, "path_prefix": "/organizations/", "page": 2 }))
        .await;
    let stars = change_page_two(&app, &before).await;

    let error = wait_for_error(&app, &repos_path(), "500").await;
    println!("status during 500s: {error}");
    assert!(!error.contains(crate::helpers::TOKEN));
    app.sim.reset_stats().await;
    let window = Instant::now();
    // An observation window, not a wait for something: the retry rate over 3 s is what is
    // measured.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats = app.sim.stats().await;
    let failing = stats["faults_served"].as_u64().expect("faults_served");
    println!(
        "500s: {failing} failing requests in {:?} (backoff base 500 ms, cap 2 s)",
        window.elapsed()
    );
    assert!((1..=8).contains(&failing), "retries must back off: {stats}");
    // Other endpoints keep being polled meanwhile.
    assert!(
        app.sim.requests_to(&format!("/orgs/{ORG}")).await >= 2,
        "{stats}"
    );
    assert_untouched(&before, &app.snapshot(&repos_path()).await.expect("stored"));
    assert_eq!(
        app.events().await.len(),
        events_before,
        "no event for a failed poll"
    );

    app.sim.clear_faults().await;
    let after = wait_for_recovery(&app, &before, stars).await;
    assert_eq!(after.meta.version, before.meta.version + 1);
    fetcher.stop().await;
}

#[tokio::test]
async fn a_truncated_page_two_is_never_stored() {
    let app = spawn_app().await;
    let fetcher = app.start_fetcher().await;
    let before = app.wait_for_snapshots().await.remove(3);
    app.sim
        .add_fault(json!({ "truncate_body": true, "path_prefix": "/organizations/", "page": 2, "count": 3 }))
        .await;
    let stars = change_page_two(&app, &before).await;

    let error = wait_for_error(&app, &repos_path(), "invalid JSON").await;
    println!("status after a truncated page: {error}");
    assert_untouched(&before, &app.snapshot(&repos_path()).await.expect("stored"));
    wait_for_recovery(&app, &before, stars).await;
    fetcher.stop().await;
}

#[tokio::test]
async fn a_spent_primary_limit_pauses_all_polling_until_the_reset() {
    let app = spawn_app().await;
    let fetcher = app.start_fetcher().await;
    let before = app.wait_for_snapshots().await.remove(3);
    // The window resets in 3 s; the next request is told the budget is spent.
    app.sim
        .call(
            reqwest::Method::POST,
            "/rate-limit",
            Some(json!({ "reset_in_secs": 3 })),
        )
        .await;
    let reset_at = Instant::now() + Duration::from_secs(3);
    app.sim.reset_stats().await;
    app.sim
        .add_fault(json!({ "status": 403, "primary": true, "count": 1 }))
        .await;
    let stars = change_page_two(&app, &before).await;

    let hit_at = eventually(Duration::from_secs(5), "the 403", || async {
        (app.sim.stat("faults_served").await == 1).then(Instant::now)
    })
    .await
    .expect("fault served");
    let requests_at_hit = app.sim.stat("total").await;
    let resumed_at = eventually(Duration::from_secs(8), "polling to resume", || async {
        (app.sim.stat("total").await > requests_at_hit).then(Instant::now)
    })
    .await
    .expect("resumes after the reset");
    println!(
        "primary limit: paused {:?} (reset was {:?} after the 403)",
        resumed_at - hit_at,
        reset_at.saturating_duration_since(hit_at)
    );
    assert!(
        resumed_at + Duration::from_millis(200) >= reset_at,
        "no request before the reset"
    );
    // The 403 hit whichever endpoint was polled at that moment.
    let mut errors = Vec::new();
    for path in app.paths() {
        errors.extend(app.status(&path).await.last_error);
    }
    let error = errors
        .iter()
        .find(|e| e.contains("403"))
        .cloned()
        .unwrap_or_default();
    assert!(error.contains("403"), "{errors:?}");
    assert_untouched(&before, &app.snapshot(&repos_path()).await.expect("stored"));
    wait_for_recovery(&app, &before, stars).await;
    fetcher.stop().await;
}

#[tokio::test]
async fn retry_after_is_obeyed_for_all_endpoints() {
    let app = spawn_app().await;
    let fetcher = app.start_fetcher().await;
    let before = app.wait_for_snapshots().await.remove(3);
    app.sim.reset_stats().await;
    app.sim
        .add_fault(json!({ "status": 429, "retry_after": 2, "count": 1, "path_prefix": "/orgs/" }))
        .await;
    let hit_at = eventually(Duration::from_secs(5), "the 429", || async {
        (app.sim.stat("faults_served").await == 1).then(Instant::now)
    })
    .await
    .expect("fault served");
    let requests_at_hit = app.sim.stat("total").await;
    let resumed_at = eventually(Duration::from_secs(6), "polling to resume", || async {
        (app.sim.stat("total").await > requests_at_hit).then(Instant::now)
    })
    .await
    .expect("resumes after Retry-After");
    let pause = resumed_at - hit_at;
    println!("429 Retry-After 2: paused {pause:?}");
    assert!(pause >= Duration::from_millis(1_800), "{pause:?}");
    assert_untouched(&before, &app.snapshot(&repos_path()).await.expect("stored"));
    fetcher.stop().await;
}

#[tokio::test]
async fn slow_responses_time_out_and_recover() {
    let app = spawn_app_with(TestOptions {
        request_timeout_ms: 400,
        ..TestOptions::default()
    })
    .await;
    let fetcher = app.start_fetcher().await;
    let before = app.wait_for_snapshots().await.remove(3);
    app.sim
        .add_fault(json!({ "delay_ms": 1_500, "path_prefix": "/organizations/", "page": 2 }))
        .await;
    let stars = change_page_two(&app, &before).await;

    let error = wait_for_error(&app, &repos_path(), "timed out").await;
    println!("status during slow responses: {error}");
    app.sim.reset_stats().await;
    // An observation window: the retry rate over 3 s is what is measured.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let slow = app.sim.stat("faults_served").await;
    assert!((1..=8).contains(&slow), "timeouts must back off: {slow}");
    assert_untouched(&before, &app.snapshot(&repos_path()).await.expect("stored"));

    app.sim.clear_faults().await;
    wait_for_recovery(&app, &before, stars).await;
    fetcher.stop().await;
}
