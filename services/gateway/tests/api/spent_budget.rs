//! Respecting a spent budget: once GitHub answers 403 with `x-ratelimit-remaining: 0` (or a
//! secondary limit), the gateway sends nothing more with that credential until the limit lifts,
//! answering from its cache or with 503 + `Retry-After`; other partitions are unaffected; paused
//! budgets show in `/healthcheck` and `/metrics`.

use std::time::{Duration, SystemTime};

use hubcache_testkit::eventually;
use hubcache_testkit::prometheus_text::sample;
use serde_json::{Value, json};

use crate::helpers::{ORG, TestApp, spawn_passthrough};

const SERVER_TOKEN: &str = "ghp_budgetTestServerToken";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", response.headers()))
}

async fn health(app: &TestApp) -> Value {
    app.get("/healthcheck")
        .await
        .json()
        .await
        .expect("health JSON")
}

async fn paused_gauge(app: &TestApp, kind: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    sample(
        &text,
        "hubcache_gateway_budget_paused",
        &[("partition_kind", kind)],
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn after_the_403_no_request_goes_upstream_until_the_reset() {
    // The scenario: a 300-request limit, distinct anonymous misses.
    let app = spawn_passthrough(None, &[("CACHE_TTL_SECS", "1")], |s| {
        s.stale_if_error_secs = 600;
    })
    .await;
    let members = app.sim_json(&format!("/orgs/{ORG}/members")).await;
    let cached = format!("/users/{}", members[0]["login"].as_str().expect("login"));
    let state = app
        .sim
        .set_rate_limit(json!({"limit": 300, "reset_in_secs": 8}))
        .await;
    let reset = state["reset"].as_u64().expect("reset");
    assert_eq!(app.get(&cached).await.status(), 200);

    let mut misses = 0;
    let limited = loop {
        let response = app.get(&format!("/users/miss-{misses}")).await;
        misses += 1;
        if response.status() == 503 {
            break response;
        }
        assert_eq!(response.status(), 404);
        assert!(misses <= 300, "the limit was never reached");
    };
    assert!(retry_after(&limited) >= 1);
    let upstream_at_403 = app.sim.stat("total").await;
    assert_eq!(app.sim.stat("rate_limited").await, 1);

    assert_eq!(
        health(&app).await["pass_through"]["paused_budgets"][0]["kind"],
        "anonymous"
    );
    assert_eq!(paused_gauge(&app, "anonymous").await, 1.0);
    // The cached answer is still served (stale allowed), with no upstream request.
    let from_cache = app.get(&cached).await;
    assert_eq!(from_cache.status(), 200);

    let mut refused = 0;
    let resumed_at = eventually(Duration::from_secs(20), "the budget's reset", || {
        let app = &app;
        let path = format!("/users/after-{refused}");
        refused += 1;
        async move {
            let response = app.get(&path).await;
            if response.status() == 503 {
                assert!(retry_after(&response) >= 1);
                assert_eq!(
                    app.sim.stat("total").await,
                    upstream_at_403,
                    "no upstream request while the budget is spent"
                );
                return None;
            }
            assert_eq!(response.status(), 404, "{path}");
            Some(now_secs())
        }
    })
    .await
    .expect("requests resume after the reset");
    assert!(
        resumed_at + 1 >= reset,
        "resumed at {resumed_at}, before the reset {reset}"
    );
    assert!(refused > 1, "some misses were refused while paused");
    assert_eq!(app.sim.stat("total").await, upstream_at_403 + 1);
    println!(
        "{misses} misses until the 403, {} refused without an upstream request",
        refused - 1
    );
    assert_eq!(paused_gauge(&app, "anonymous").await, 0.0);
}

#[tokio::test]
async fn a_clients_own_token_is_paused_only_for_its_own_partition() {
    let app = spawn_passthrough(None, &[("GITHUB_API_TOKEN", SERVER_TOKEN)], |_| {}).await;
    let spent = "token client-spent-secret";
    let fine = "token client-fine-secret";
    let spent_label = github_sim::credential_label(Some(spent.as_bytes()));
    let server_label =
        github_sim::credential_label(Some(format!("Bearer {SERVER_TOKEN}").as_bytes()));
    app.sim
        .set_rate_limit(json!({"credential": spent_label, "remaining": 0, "reset_in_secs": 600}))
        .await;

    let first = app
        .get_with("/users/one", &[("authorization", spent)])
        .await;
    assert_eq!(first.status(), 503);
    let second = app
        .get_with("/users/two", &[("authorization", spent)])
        .await;
    assert_eq!(second.status(), 503);
    assert!(retry_after(&second) > 500);
    assert_eq!(app.sim.requests_with("/users/one", &spent_label).await, 1);
    assert_eq!(
        app.sim.requests_with("/users/two", &spent_label).await,
        0,
        "nothing more with the spent token"
    );

    // Another client, anonymous clients and the server credential are unaffected.
    assert_eq!(
        app.get_with("/users/two", &[("authorization", fine)])
            .await
            .status(),
        404
    );
    assert_eq!(app.get("/users/two").await.status(), 404);
    let repo = app.sim_repo_paths().await.swap_remove(0);
    assert_eq!(app.get(&repo).await.status(), 200);
    assert_eq!(app.sim.requests_with(&repo, &server_label).await, 1);

    let health = health(&app).await;
    let paused = &health["pass_through"]["paused_budgets"];
    assert_eq!(paused.as_array().map(Vec::len), Some(1), "{health}");
    assert_eq!(paused[0]["kind"], "client");
    assert_eq!(paused[0]["limit"], "primary");
    assert!(
        paused[0].get("credential").is_none(),
        "a client is never named"
    );
    let text = app.get("/metrics").await.text().await.expect("metrics");
    assert_eq!(
        sample(
            &text,
            "hubcache_gateway_budget_paused",
            &[("partition_kind", "client")]
        ),
        Some(1.0)
    );
    for shown in [health.to_string(), text] {
        assert!(!shown.contains("secret") && !shown.contains(&spent_label));
    }
}

#[tokio::test]
async fn a_secondary_limit_pauses_for_its_retry_after() {
    let app = spawn_passthrough(None, &[("GITHUB_API_TOKEN", SERVER_TOKEN)], |_| {}).await;
    let repo = app.sim_repo_paths().await.swap_remove(1);
    let teams = format!("/orgs/{ORG}/teams");
    app.sim
        .add_fault(json!({"status": 403, "retry_after": 3, "count": 1, "path_prefix": teams}))
        .await;
    let limited = app.get(&teams).await;
    assert_eq!(limited.status(), 503);
    assert_eq!(retry_after(&limited), 3);

    // The same credential (the server's) on another path: refused at once, nothing sent.
    let refused = app.get(&repo).await;
    assert_eq!(refused.status(), 503);
    assert!(retry_after(&refused) <= 3);
    assert_eq!(app.sim.requests_to(&repo).await, 0);
    assert_eq!(
        health(&app).await["pass_through"]["paused_budgets"][0]["limit"],
        "secondary"
    );
    // Anonymous upstream requests are another budget.
    assert_eq!(app.get("/users/octocat").await.status(), 404);

    eventually(
        Duration::from_secs(10),
        "the retry-after to pass",
        || async { (app.get(&repo).await.status() == 200).then_some(()) },
    )
    .await
    .expect("the credential is used again after retry-after");
    assert_eq!(app.sim.requests_to(&repo).await, 1);
}

#[tokio::test]
async fn a_pause_one_replica_learns_is_shared_with_the_others() {
    let patient = |s: &mut gateway::Settings| s.l2_timeout_ms = 10_000;
    let app = spawn_passthrough(None, &[("GITHUB_API_TOKEN", SERVER_TOKEN)], patient).await;
    let other = app
        .other_gateway_with(&[("GITHUB_API_TOKEN", SERVER_TOKEN)], patient)
        .await;
    let repo = app.sim_repo_paths().await.swap_remove(2);
    let teams = format!("/orgs/{ORG}/teams");
    app.sim
        .add_fault(json!({"status": 403, "primary": true, "count": 1, "path_prefix": teams}))
        .await;
    assert_eq!(app.get(&teams).await.status(), 503);

    // The other replica never saw the 403, yet sends nothing with the spent credential.
    let refused = app.get_from(&other.address, &repo).await;
    assert_eq!(refused.status(), 503);
    assert!(retry_after(&refused) >= 1);
    assert_eq!(app.sim.requests_to(&repo).await, 0);
    let health: Value = app
        .get_from(&other.address, "/healthcheck")
        .await
        .json()
        .await
        .expect("health JSON");
    assert_eq!(
        health["pass_through"]["paused_budgets"][0]["kind"],
        "server"
    );
}
