//! `GET /status` and `/status.json`: the figures, the red/amber/green verdict and its reasons,
//! escaping of text from outside, the Content-Security-Policy, `STATUS_PAGE=off`, and
//! `STATUS_PAGE_ALLOW`.

use std::time::Duration;

use hubcache_shared::SnapshotStatus;
use hubcache_shared::snapshot::{FIELD_STATUS, now_ms};
use serde_json::Value;

use crate::helpers::{ORG, Options, TestApp, spawn_app, spawn_pipeline, spawn_with};

/// `/status.json`, parsed.
async fn status(app: &TestApp) -> Value {
    let response = app.get("/status.json").await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("status JSON")
}

/// Waits until the verdict is `level`, returning that status.
async fn wait_for_level(app: &TestApp, level: &str, timeout: Duration) -> Value {
    hubcache_testkit::eventually(timeout, &format!("a {level} verdict"), || async {
        let body = status(app).await;
        (body["verdict"]["level"] == level).then_some(body)
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"))
}

#[tokio::test]
async fn a_fresh_pipeline_is_green_with_its_figures_and_a_failing_github_turns_it_red() {
    let app = spawn_pipeline().await;
    app.wait_ready().await;
    let body = wait_for_level(&app, "green", Duration::from_secs(20)).await;
    assert_eq!(body["verdict"]["reasons"], serde_json::json!([]), "{body}");

    // Traffic this test sends shows in the gateway's figures.
    for _ in 0..5 {
        assert_eq!(app.get("/orgs/Netflix").await.status(), 200);
    }
    let body = hubcache_testkit::eventually(
        Duration::from_secs(20),
        "every poll confirmed, the fetcher's budget recorded, the answers counted",
        || async {
            let body = status(&app).await;
            let confirmed = body["orgs"][0]["endpoints"]
                .as_array()?
                .iter()
                .all(|e| e["last_success_at_ms"].is_u64());
            (confirmed
                && body["orgs"][0]["fetcher_rate_limit"].is_object()
                && body["gateway"]["requests_total"].as_u64()? >= 5)
                .then_some(body)
        },
    )
    .await
    .expect("figures");
    let org = &body["orgs"][0];
    assert_eq!(org["org"], "Netflix", "{body}");
    assert_eq!(org["state"], "ready", "{body}");
    assert!(org["views_version"].as_u64().is_some(), "{body}");
    let endpoints = org["endpoints"].as_array().expect("endpoints");
    assert!(!endpoints.is_empty(), "{body}");
    for endpoint in endpoints {
        assert!(
            endpoint["version"].as_u64().is_some_and(|v| v >= 1),
            "{endpoint}"
        );
        assert_eq!(endpoint["interval_secs"], 1, "{endpoint}");
        assert_eq!(endpoint["failing"], false, "{endpoint}");
        assert!(
            endpoint["last_success_at_ms"].as_u64().is_some(),
            "{endpoint}"
        );
    }
    let budget = &org["fetcher_rate_limit"];
    assert!(
        budget["remaining"].as_u64() <= budget["limit"].as_u64()
            && budget["limit"].as_u64() > Some(0),
        "{budget}"
    );
    let gateway = &body["gateway"];
    assert_eq!(gateway["redis"], "reachable");
    assert_eq!(gateway["hit_ratio"]["cached_keys"], 1.0, "{gateway}");
    assert!(
        gateway["requests_per_sec"]
            .as_f64()
            .is_some_and(|r| r > 0.0),
        "{gateway}"
    );
    assert_eq!(gateway["shed_requests"], 0, "{gateway}");
    let text = body.to_string();
    assert!(
        !text.to_lowercase().contains("token"),
        "no credential: {text}"
    );

    // GitHub fails: every poll fails, the fetcher records it, the verdict turns red and says why.
    app.sim.add_fault(serde_json::json!({"status": 500})).await;
    let body = wait_for_level(&app, "red", Duration::from_secs(30)).await;
    let reason = body["verdict"]["reasons"][0].as_str().expect("a reason");
    assert!(
        reason.starts_with("Netflix: every endpoint's latest poll failed")
            && reason.contains("500"),
        "{body}"
    );
    let page = app.get_text("/status").await;
    assert!(page.contains("<span id=\"level\">RED</span>"), "{page}");
    assert!(
        page.contains("every endpoint&#39;s latest poll failed"),
        "{page}"
    );
}

#[tokio::test]
async fn a_hostile_error_text_is_shown_as_text_under_a_strict_policy_and_the_verdict_is_amber() {
    let app = spawn_app().await;
    app.wait_ready().await;
    wait_for_level(&app, "green", Duration::from_secs(10)).await;

    // The fetcher's status of one endpoint, written as the fetcher writes it, with an error
    // text from outside: the last good copy is still served, so amber, not red.
    let hostile = "GET /orgs/acme: 502 <script>alert('pwned')</script> & \"quotes\"";
    let path = format!("/orgs/{ORG}");
    let failed = SnapshotStatus::default().failed_because(now_ms(), "status", hostile);
    app.redis_cmd(
        redis::cmd("HSET")
            .arg(app.keys.org(ORG).snapshot(&path))
            .arg(FIELD_STATUS)
            .arg(serde_json::to_string(&failed).expect("status JSON")),
    )
    .await;
    let body = wait_for_level(&app, "amber", Duration::from_secs(10)).await;
    let reason = body["verdict"]["reasons"][0].as_str().expect("a reason");
    assert!(
        reason.contains(&format!(
            "{ORG} {path}: latest poll failed (status: {hostile})"
        )),
        "{body}"
    );

    let response = app.get("/status").await;
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let csp = header("content-security-policy");
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(header("content-type").starts_with("text/html"));
    assert_eq!(header("x-content-type-options"), "nosniff");
    let page = response.text().await.expect("page");
    assert!(
        !page.contains("<script>alert"),
        "the error is not markup: {page}"
    );
    assert!(
        page.contains(
            "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"
        ),
        "{page}"
    );
    assert!(page.contains("<span id=\"level\">AMBER</span>"), "{page}");
    // One script, the page's own (allowed by hash); no external resource.
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    assert!(!page.contains("src=") && !page.contains("href="), "{page}");
}

#[tokio::test]
async fn every_endpoint_failing_on_seeded_copies_is_red() {
    let app = spawn_app().await;
    app.wait_ready().await;
    let body = status(&app).await;
    let paths: Vec<String> = body["orgs"][0]["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .filter_map(|e| e["path"].as_str().map(str::to_owned))
        .collect();
    assert!(paths.len() >= 3, "{body}");
    for path in paths {
        let failed =
            SnapshotStatus::default().failed_because(now_ms(), "transport", "connection refused");
        app.redis_cmd(
            redis::cmd("HSET")
                .arg(app.keys.org(ORG).snapshot(&path))
                .arg(FIELD_STATUS)
                .arg(serde_json::to_string(&failed).expect("status JSON")),
        )
        .await;
    }
    let body = wait_for_level(&app, "red", Duration::from_secs(10)).await;
    assert!(
        body["verdict"]["reasons"][0]
            .as_str()
            .is_some_and(|r| r
                .contains("every endpoint's latest poll failed (transport: connection refused)")),
        "{body}"
    );
}

#[tokio::test]
async fn status_page_off_answers_404_on_both_routes() {
    let app = spawn_with(Options {
        seed: true,
        vars: vec![("STATUS_PAGE", "off".to_owned())],
        ..Options::default()
    })
    .await;
    for path in ["/status", "/status.json"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.expect("JSON error");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("STATUS_PAGE=off"))
        );
    }
}

#[tokio::test]
async fn a_client_outside_status_page_allow_gets_403_on_both_routes_and_nothing_goes_upstream() {
    let app = spawn_with(Options {
        seed: true,
        vars: vec![("STATUS_PAGE_ALLOW", "10.0.0.0/8".to_owned())],
        ..Options::default()
    })
    .await;
    app.wait_ready().await;
    for path in ["/status", "/status.json"] {
        // X-Forwarded-For is the client's own claim: it does not let it in.
        let response = app.get_with(path, &[("x-forwarded-for", "10.1.2.3")]).await;
        assert_eq!(response.status(), 403, "{path}");
        assert!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json")),
            "{path}"
        );
        let body: Value = response.json().await.expect("JSON error");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("STATUS_PAGE_ALLOW") && message.contains("127.0.0.1"),
            "{path}: {body}"
        );
        assert_eq!(app.head(path).await.status(), 403, "HEAD {path}");
    }
    for path in ["/status", "/status.json"] {
        assert_eq!(app.sim.requests_to(path).await, 0, "{path} went upstream");
    }
}

#[tokio::test]
async fn a_client_inside_status_page_allow_sees_the_page() {
    let app = spawn_with(Options {
        seed: true,
        vars: vec![("STATUS_PAGE_ALLOW", "10.0.0.0/8, 127.0.0.0/8".to_owned())],
        ..Options::default()
    })
    .await;
    app.wait_ready().await;
    let page = app.get("/status").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .expect("page")
            .contains("<span id=\"level\">")
    );
    status(&app).await;
}

#[tokio::test]
async fn status_page_off_wins_over_status_page_allow() {
    let app = spawn_with(Options {
        seed: true,
        vars: vec![
            ("STATUS_PAGE", "off".to_owned()),
            ("STATUS_PAGE_ALLOW", "10.0.0.0/8".to_owned()),
        ],
        ..Options::default()
    })
    .await;
    for path in ["/status", "/status.json"] {
        assert_eq!(app.get(path).await.status(), 404, "{path}");
    }
}
