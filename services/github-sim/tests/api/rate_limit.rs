//! The primary rate limit: headers on every answer, 403 when spent, free 304s, window resets.

use std::time::{Duration, SystemTime};

use github_sim::SimConfig;
use hubcache_testkit::eventually;
use serde_json::{Value, json};

use crate::helpers::{ORG, header, header_u64, spawn_app, spawn_app_with, test_config};

#[tokio::test]
async fn every_answer_reports_the_budget_and_spends_one() {
    let app = spawn_app().await;

    let first = app.get(&format!("/orgs/{ORG}")).await;
    let missing = app.get("/no/such/path").await;

    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    for (response, remaining) in [(&first, 4999), (&missing, 4998)] {
        let headers = response.headers();
        assert_eq!(header_u64(headers, "x-ratelimit-limit"), 5000);
        assert_eq!(header_u64(headers, "x-ratelimit-remaining"), remaining);
        assert_eq!(header_u64(headers, "x-ratelimit-used"), 5000 - remaining);
        assert_eq!(header(headers, "x-ratelimit-resource"), "core");
        let reset = header_u64(headers, "x-ratelimit-reset");
        assert!(
            reset > now && reset <= now + 3601,
            "reset {reset} vs now {now}"
        );
    }
}

#[tokio::test]
async fn a_spent_budget_answers_403_with_githubs_message_until_reset() {
    let app = spawn_app_with(SimConfig {
        rate_limit: 2,
        ..test_config()
    })
    .await;
    let target = format!("/orgs/{ORG}");
    let ok = app.get(&target).await;
    let etag = header(ok.headers(), "etag").to_owned();
    assert_eq!(app.get(&target).await.status(), 200);

    let limited = app.get(&target).await;
    assert_eq!(limited.status(), 403);
    assert_eq!(header_u64(limited.headers(), "x-ratelimit-remaining"), 0);
    assert_eq!(header_u64(limited.headers(), "x-ratelimit-used"), 2);
    assert!(header_u64(limited.headers(), "x-ratelimit-reset") > 0);
    let body: Value = limited.json().await.expect("body");
    assert_eq!(
        body,
        json!({
            "message": "API rate limit exceeded for 127.0.0.1. (But here's the good news: Authenticated requests get a higher rate limit. Check out the documentation for more details.)",
            "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"
        })
    );

    let authorized = app.get_with(&target, &[("authorization", "token x")]).await;
    assert_eq!(
        authorized.status(),
        200,
        "a credential has its own budget, untouched by anonymous requests"
    );
    assert_eq!(header_u64(authorized.headers(), "x-ratelimit-remaining"), 1);
    assert_eq!(
        app.get_with(&target, &[("authorization", "token x")])
            .await
            .status(),
        200
    );
    let authorized = app.get_with(&target, &[("authorization", "token x")]).await;
    assert_eq!(authorized.status(), 403);
    let body: Value = authorized.json().await.expect("body");
    assert_eq!(body["message"], "API rate limit exceeded for user ID 1.");

    let revalidated = app.get_with(&target, &[("if-none-match", &etag)]).await;
    assert_eq!(
        revalidated.status(),
        304,
        "conditional requests stay free when spent"
    );

    let stats = app.control.stats().await;
    assert_eq!(stats["rate_limited"], 2);
    assert_eq!(stats["rate_limit_used"], 4);
}

#[tokio::test]
async fn budgets_and_the_request_record_are_kept_per_credential() {
    let app = spawn_app_with(SimConfig {
        rate_limit: 3,
        ..test_config()
    })
    .await;
    let org = format!("/orgs/{ORG}");
    let secret = "Bearer very-secret-value";
    let label = github_sim::credential_label(Some(secret.as_bytes()));
    for _ in 0..3 {
        assert_eq!(
            app.get_with(&org, &[("authorization", secret)])
                .await
                .status(),
            200
        );
    }
    assert_eq!(
        app.get_with(&org, &[("authorization", secret)])
            .await
            .status(),
        403
    );
    assert_eq!(app.get(&org).await.status(), 200, "anonymous is separate");
    assert_eq!(app.get("/users/nobody").await.status(), 404);

    assert_eq!(app.control.requests_with(&org, &label).await, 4);
    assert_eq!(app.control.requests_with(&org, "anonymous").await, 1);
    assert_eq!(
        app.control
            .requests_with("/users/nobody", "anonymous")
            .await,
        1
    );
    assert_eq!(app.control.requests_with("/users/nobody", &label).await, 0);
    let stats = app.control.stats().await;
    assert_eq!(stats["by_credential"][&label], 4);
    assert!(
        !stats.to_string().contains("very-secret"),
        "the secret is never kept: {stats}"
    );

    let budgets = app.control.rate_limits().await;
    assert_eq!(budgets[&label]["remaining"], 0);
    assert_eq!(budgets["anonymous@127.0.0.1"]["remaining"], 1);

    // One credential's budget can be changed alone.
    app.control
        .set_rate_limit(json!({"credential": label, "limit": 10}))
        .await;
    assert_eq!(
        app.get_with(&org, &[("authorization", secret)])
            .await
            .status(),
        200
    );
    assert_eq!(
        app.control.rate_limits().await["anonymous@127.0.0.1"]["limit"],
        3
    );
}

#[tokio::test]
async fn the_window_refills_after_its_reset() {
    let app = spawn_app().await;
    let update = app
        .control
        .send(
            reqwest::Method::POST,
            "/rate-limit",
            Some(json!({"limit": 100, "remaining": 0, "reset_in_secs": 1})),
        )
        .await;
    assert_eq!(update.status(), 200);
    let state: Value = update.json().await.expect("state");
    assert_eq!(state["used"], 100);

    let target = format!("/orgs/{ORG}");
    assert_eq!(app.get(&target).await.status(), 403);
    eventually(
        Duration::from_secs(5),
        "the budget refills after reset_in_secs",
        || async { (app.get(&target).await.status() == 200).then_some(()) },
    )
    .await
    .expect("the budget refills after reset_in_secs");
    let response = app.get(&target).await;
    assert_eq!(header_u64(response.headers(), "x-ratelimit-limit"), 100);
    assert_eq!(header_u64(response.headers(), "x-ratelimit-remaining"), 98);
}

#[tokio::test]
async fn remaining_above_limit_is_refused() {
    let app = spawn_app().await;
    let response = app
        .control
        .send(
            reqwest::Method::POST,
            "/rate-limit",
            Some(json!({"limit": 10, "remaining": 11})),
        )
        .await;
    assert_eq!(response.status(), 400);
}
