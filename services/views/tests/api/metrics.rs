//! The admin listener: `/metrics` is valid Prometheus text (checked by promtool) and reports,
//! per organisation (`org` label), the events handled, the recompute time and the group's
//! backlog; `/livez` answers.

use hubcache_shared::shutdown::CancellationToken;
use hubcache_testkit::prometheus_text::{promtool_check, sample};
use hubcache_testkit::{eventually, free_port};
use serde_json::json;
use views::Application;

use crate::helpers::{SOON, repo, spawn_redis_with_orgs};

#[tokio::test]
async fn metrics_report_handled_events_recompute_time_and_backlog() {
    let app = spawn_redis_with_orgs(&["acme", "Beta"]).await;
    let mut settings = app.settings();
    settings.metrics_port = free_port().expect("a free port");
    let worker = Application::build(settings).await.expect("views builds");
    let port = worker.metrics_port().expect("admin listener enabled");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(worker.run(shutdown.clone()));
    let client = reqwest::Client::new();

    let livez = client
        .get(format!("http://127.0.0.1:{port}/livez"))
        .send()
        .await
        .expect("livez answers");
    assert_eq!(livez.status(), 200);

    let repos = json!([repo("acme/a", 1, 2, 3, "2024-05-01T00:00:00Z")]);
    app.publish_repos(1, &repos).await;
    app.wait_for_views(1, SOON).await;

    let text = eventually(
        SOON,
        "the stored views and the backlog in /metrics",
        || async {
            let response = client
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .send()
                .await
                .ok()?;
            let text = response.text().await.ok()?;
            let acme = [("org", "acme")];
            let stored = sample(
                &text,
                "hubcache_views_events_total",
                &[("org", "acme"), ("result", "stored")],
            )?;
            // Beta has no snapshot: its catch-up found none, under its own label.
            let waiting = sample(
                &text,
                "hubcache_views_events_total",
                &[("org", "Beta"), ("result", "no_snapshot")],
            )?;
            // The claim loops (every 200 ms in tests) sample each org's backlog: once the
            // event is delivered and acknowledged, nothing is pending or undelivered.
            let pending = sample(&text, "hubcache_views_pending_entries", &acme)?;
            let lag = sample(&text, "hubcache_views_stream_lag_entries", &acme)?;
            let beta_lag = sample(
                &text,
                "hubcache_views_stream_lag_entries",
                &[("org", "Beta")],
            )?;
            (stored >= 1.0 && waiting >= 1.0 && pending == 0.0 && lag == 0.0 && beta_lag == 0.0)
                .then_some(text)
        },
    )
    .await
    .expect("metrics reflect the handled event");

    assert!(promtool_check(&text).expect("promtool accepts the scrape"));
    let recomputes = sample(
        &text,
        "hubcache_views_recompute_duration_seconds_count",
        &[("org", "acme")],
    );
    assert!(
        recomputes >= Some(1.0),
        "recompute time recorded: {recomputes:?}"
    );
    assert!(sample(&text, "process_resident_memory_bytes", &[]).is_some_and(|v| v > 0.0));

    shutdown.cancel();
    task.await.expect("no panic").expect("clean stop");
}
