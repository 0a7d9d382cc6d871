//! Injected faults: counts, filters, Retry-After, rate-limit rejections, cut bodies, latency.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{ORG, header, header_u64, spawn_app};

#[tokio::test]
async fn a_counted_fault_hits_that_many_matching_requests() {
    let app = spawn_app().await;
    let queued = app
        .control
        .send(
            reqwest::Method::POST,
            "/faults",
            Some(json!({"status": 502, "count": 2, "path_prefix": "/orgs"})),
        )
        .await;
    assert_eq!(queued.status(), 201);

    let user = app.get("/users/Netflix").await;
    assert_eq!(user.status(), 200, "other paths are not affected");
    for _ in 0..2 {
        let failed = app.get(&format!("/orgs/{ORG}/repos")).await;
        assert_eq!(failed.status(), 502);
        let body: Value = failed.json().await.expect("body");
        assert_eq!(
            body,
            json!({"message": "Bad Gateway", "documentation_url": "https://docs.github.com/rest"})
        );
    }
    assert_eq!(app.get(&format!("/orgs/{ORG}/repos")).await.status(), 200);

    let stats = app.control.stats().await;
    assert_eq!(stats["faults_served"], 2);
}

#[tokio::test]
async fn a_secondary_limit_has_retry_after_and_spends_nothing() {
    let app = spawn_app().await;
    app.control
        .send(
            reqwest::Method::POST,
            "/faults",
            Some(json!({"status": 429, "count": 1, "retry_after": 5})),
        )
        .await;

    let limited = app.get(&format!("/orgs/{ORG}")).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(header(limited.headers(), "retry-after"), "5");
    assert_eq!(header_u64(limited.headers(), "x-ratelimit-remaining"), 5000);
    let body: Value = limited.json().await.expect("body");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.starts_with("You have exceeded a secondary rate limit. Please wait a few minutes before you try again."),
        "{message}"
    );

    let next = app.get(&format!("/orgs/{ORG}")).await;
    assert_eq!(next.status(), 200);
    assert_eq!(header_u64(next.headers(), "x-ratelimit-remaining"), 4999);
}

#[tokio::test]
async fn a_primary_fault_looks_like_a_spent_budget() {
    let app = spawn_app().await;
    app.control
        .send(
            reqwest::Method::POST,
            "/faults",
            Some(json!({"status": 403, "primary": true, "count": 1})),
        )
        .await;

    let limited = app.get(&format!("/orgs/{ORG}")).await;
    assert_eq!(limited.status(), 403);
    assert_eq!(header_u64(limited.headers(), "x-ratelimit-remaining"), 0);
    assert!(header_u64(limited.headers(), "x-ratelimit-reset") > 0);
    let body: Value = limited.json().await.expect("body");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .starts_with("API rate limit exceeded for")
    );
}

#[tokio::test]
async fn truncate_body_cuts_the_page_it_targets_in_half() {
    let app = spawn_app().await;
    let target = format!("/orgs/{ORG}/repos?per_page=100&page=2");
    let whole = app.get(&target).await.bytes().await.expect("body");
    app.control
        .send(
            reqwest::Method::POST,
            "/faults",
            Some(json!({"truncate_body": true, "count": 1, "page": 2})),
        )
        .await;

    let first_page = app.get(&format!("/orgs/{ORG}/repos?per_page=100")).await;
    assert!(
        first_page.json::<Value>().await.is_ok(),
        "page 1 is not targeted"
    );
    let broken = app.get(&target).await;
    assert_eq!(broken.status(), 200);
    let broken = broken.bytes().await.expect("body");
    assert_eq!(broken.len(), whole.len() / 2);
    assert_eq!(&broken[..], &whole[..whole.len() / 2]);
    assert!(serde_json::from_slice::<Value>(&broken).is_err());
    assert_eq!(app.get(&target).await.bytes().await.expect("body"), whole);
}

#[tokio::test]
async fn unlimited_faults_last_until_cleared() {
    let app = spawn_app().await;
    app.control
        .send(
            reqwest::Method::POST,
            "/faults",
            Some(json!({"status": 503})),
        )
        .await;
    for _ in 0..3 {
        assert_eq!(app.get("/").await.status(), 503);
    }
    let listed: Value = app
        .control
        .send(reqwest::Method::GET, "/faults", None)
        .await
        .json()
        .await
        .expect("list");
    assert_eq!(listed[0]["status"], 503);
    assert_eq!(listed[0]["remaining"], Value::Null);

    let cleared = app
        .control
        .send(reqwest::Method::DELETE, "/faults", None)
        .await;
    assert_eq!(cleared.status(), 204);
    assert_eq!(app.get("/").await.status(), 200);
}

#[tokio::test]
async fn contradictory_faults_are_refused() {
    let app = spawn_app().await;
    for body in [
        json!({"status": 200}),
        json!({"status": 500, "truncate_body": true}),
        json!({"status": 500, "count": 0}),
        json!({"status": 500, "unknown": 1}),
    ] {
        let response = app
            .control
            .send(reqwest::Method::POST, "/faults", Some(body.clone()))
            .await;
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.expect("JSON error");
        assert!(error["message"].is_string());
    }
}

#[tokio::test]
async fn delays_and_latency_slow_answers_down() {
    let app = spawn_app().await;
    app.control
        .send(
            reqwest::Method::POST,
            "/faults",
            Some(json!({"delay_ms": 300, "count": 1})),
        )
        .await;
    let started = Instant::now();
    assert_eq!(app.get("/").await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    let set = app
        .control
        .send(reqwest::Method::POST, "/latency", Some(json!({"ms": 1500})))
        .await;
    assert_eq!(set.status(), 200);
    let started = Instant::now();
    assert_eq!(app.get(&format!("/orgs/{ORG}")).await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let started = Instant::now();
    app.control.stats().await;
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "control routes are not slowed"
    );
}
