//! The admin listener: `/metrics` is valid Prometheus text (checked by promtool) and reports
//! what the fetcher did; `/livez` answers.

use std::time::Duration;

use fetcher::Application;
use hubcache_shared::shutdown::CancellationToken;
use hubcache_testkit::prometheus_text::{promtool_check, sample};
use hubcache_testkit::{eventually, free_port};

use crate::helpers::{TOKEN, repos_path, spawn_app};

async fn scrape(client: &reqwest::Client, port: u16) -> String {
    let response = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("scrape answers");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4"),
        "Prometheus text content type"
    );
    response.text().await.expect("scrape body")
}

#[tokio::test]
async fn metrics_report_polls_by_outcome_the_lease_and_the_rate_limit_budget() {
    let app = spawn_app().await;
    let mut settings = app.settings(Some(TOKEN));
    settings.metrics_port = free_port().expect("a free port");
    let fetcher = Application::build(settings).await.expect("fetcher builds");
    let port = fetcher.metrics_port().expect("admin listener enabled");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(fetcher.run(shutdown.clone()));
    let client = reqwest::Client::new();

    let livez = client
        .get(format!("http://127.0.0.1:{port}/livez"))
        .send()
        .await
        .expect("livez answers");
    assert_eq!(livez.status(), 200);

    app.wait_for_version_above(&repos_path(), 0, Duration::from_secs(15))
        .await;
    let repos = repos_path();
    // The first poll stored the snapshot (changed); the next ones, 1 s apart, are 304s.
    let text = eventually(
        Duration::from_secs(10),
        "an unchanged poll of the repos list",
        || async {
            let text = scrape(&client, port).await;
            let unchanged = sample(
                &text,
                "hubcache_fetcher_polls_total",
                &[("endpoint", &repos), ("outcome", "unchanged")],
            )?;
            (unchanged >= 1.0).then_some(text)
        },
    )
    .await
    .expect("polls are counted");

    assert!(promtool_check(&text).expect("promtool accepts the scrape"));
    let changed = sample(
        &text,
        "hubcache_fetcher_polls_total",
        &[("endpoint", &repos), ("outcome", "changed")],
    );
    assert!(changed >= Some(1.0), "changed polls: {changed:?}\n{text}");
    assert_eq!(sample(&text, "hubcache_fetcher_lease_held", &[]), Some(1.0));
    let limit = sample(&text, "hubcache_github_rate_limit_limit", &[]).expect("limit gauge");
    let remaining =
        sample(&text, "hubcache_github_rate_limit_remaining", &[]).expect("remaining gauge");
    assert!(
        remaining > 0.0 && remaining < limit,
        "the fetch spent some budget: {remaining}/{limit}"
    );
    let count = sample(
        &text,
        "hubcache_fetcher_poll_duration_seconds_count",
        &[("endpoint", &repos)],
    );
    assert!(count >= Some(2.0), "poll durations recorded: {count:?}");
    let fetched = sample(
        &text,
        "hubcache_snapshot_fetched_timestamp_seconds",
        &[("endpoint", &repos)],
    )
    .expect("snapshot timestamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    assert!(
        (now - 60.0..=now + 1.0).contains(&fetched),
        "fetched {fetched}, now {now}"
    );
    // Process metrics (CPU seconds are whole seconds: 0 is a fine value in a short test).
    assert!(sample(&text, "process_cpu_seconds_total", &[]).is_some());
    for process_metric in ["process_resident_memory_bytes", "process_open_fds"] {
        assert!(
            sample(&text, process_metric, &[]).is_some_and(|v| v > 0.0),
            "{process_metric} missing:\n{text}"
        );
    }

    shutdown.cancel();
    task.await.expect("no panic").expect("clean stop");
}
