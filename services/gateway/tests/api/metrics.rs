//! `GET /metrics`: valid Prometheus text (checked by promtool) with requests by route template,
//! latency histograms, pass-through cache results, upstream calls, rate-limit refusals and the
//! served snapshot versions; and the `x-request-id` every answer carries.

use hubcache_testkit::prometheus_text::{promtool_check, sample};
use serde_json::Value;

use crate::helpers::{ORG, Options, TestApp, spawn_app, spawn_with};

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4"),
    );
    response.text().await.expect("scrape body")
}

fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(text, name, labels).unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_cache_results() {
    let app = spawn_app().await;
    app.wait_ready().await;
    let repos: Value = app
        .client
        .get(format!("{}/orgs/{ORG}/repos?per_page=1", app.sim_url))
        .send()
        .await
        .expect("sim answers")
        .json()
        .await
        .expect("json");
    let name = repos[0]["name"].as_str().expect("a repo name");
    let passthrough_path = format!("/repos/{ORG}/{name}");
    let before = scrape(&app).await;

    let view = app.get("/view/top/2/stars").await;
    assert_eq!(view.status(), 200);
    let request_id = view.headers()["x-request-id"].to_str().expect("ascii");
    assert!(!request_id.is_empty(), "a request id is echoed");
    assert_eq!(app.get(&format!("/orgs/{ORG}")).await.status(), 200);
    for _ in 0..2 {
        assert_eq!(app.get(&passthrough_path).await.status(), 200);
    }
    let text = scrape(&app).await;

    assert!(promtool_check(&text).expect("promtool accepts the scrape"));
    let view_route = [
        ("route", "/view/top/{n}/{view}"),
        ("method", "GET"),
        ("status", "200"),
    ];
    // (>=: under plain `cargo test` other tests' gateways share this process's recorder.)
    assert!(
        value(&text, "hubcache_http_requests_total", &view_route)
            >= value(&before, "hubcache_http_requests_total", &view_route) + 1.0,
        "the view request is counted under its route template"
    );
    let passthrough = [
        ("route", "passthrough"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert!(
        value(&text, "hubcache_http_requests_total", &passthrough)
            >= value(&before, "hubcache_http_requests_total", &passthrough) + 2.0
    );
    assert!(
        !text.contains(&passthrough_path),
        "raw pass-through paths never become label values"
    );
    assert!(
        value(
            &text,
            "hubcache_http_request_duration_seconds_count",
            &[("route", "/view/top/{n}/{view}")]
        ) >= 1.0
    );
    for result in ["miss", "hit"] {
        let labels = [("result", result)];
        assert!(
            value(&text, "hubcache_passthrough_cache_lookups_total", &labels)
                > value(&before, "hubcache_passthrough_cache_lookups_total", &labels),
            "a pass-through {result} is counted"
        );
    }
    let upstream = [("status", "200")];
    assert!(
        value(&text, "hubcache_upstream_requests_total", &upstream)
            > value(&before, "hubcache_upstream_requests_total", &upstream)
    );
    assert!(sample(&text, "hubcache_passthrough_cache_entries", &[]).is_some());
    assert!(sample(&text, "hubcache_passthrough_cache_bytes", &[]).is_some());
    assert!(
        value(
            &text,
            "hubcache_served_copy_responses_total",
            &[("result", "hit")]
        ) >= 2.0
    );
    assert!(
        sample(
            &text,
            "hubcache_served_snapshot_version",
            &[("path", &format!("/orgs/{ORG}"))]
        )
        .is_some_and(|v| v >= 1.0),
        "the served version is exported by cached path"
    );
    assert!(sample(&text, "hubcache_served_snapshot_age_seconds", &[]).is_some());
    assert!(sample(&text, "process_resident_memory_bytes", &[]).is_some_and(|v| v > 0.0));
}

#[tokio::test]
async fn metrics_count_client_rate_limit_refusals_and_are_never_limited() {
    let app = spawn_with(Options {
        seed: true,
        rate_limit: Some((1, 1)),
        ..Options::default()
    })
    .await;
    let before = value(
        &scrape(&app).await,
        "hubcache_client_rate_limited_total",
        &[],
    );
    let statuses = [
        app.get(&format!("/orgs/{ORG}")).await.status(),
        app.get(&format!("/orgs/{ORG}")).await.status(),
    ];
    assert_eq!(statuses[1], 429, "{statuses:?}");
    // Scrapes are exempt (`scrape` asserts 200): Prometheus is never refused, however often
    // it asks.
    scrape(&app).await;
    let text = scrape(&app).await;
    assert!(value(&text, "hubcache_client_rate_limited_total", &[]) >= before + 1.0);
    assert!(promtool_check(&text).expect("promtool accepts the scrape"));
}
