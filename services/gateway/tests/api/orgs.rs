//! Several organisations (issue 16): every configured org's cached keys and views are served
//! from its own keys and streams, the seed's routes keep meaning the first org, the
//! org-qualified `/orgs/{org}/view/...` serves any configured org, an org not configured there
//! is a 404, and an org GitHub does not know is reported without keeping the gateway unready.

use std::time::Duration;

use hubcache_shared::SnapshotKind;
use hubcache_testkit::eventually;
use hubcache_testkit::prometheus_text::sample;
use serde_json::Value;

use crate::helpers::{ORG, Options, members_body, repos_body_of, spawn_with};

/// The second org of the seeded tests, and its numeric id.
const BETA: &str = "beta";
const BETA_ID: u64 = 777;

#[tokio::test]
async fn a_second_orgs_keys_and_views_are_served_and_the_seed_routes_stay_the_first_orgs() {
    let app = spawn_with(Options {
        seed: true,
        more_orgs: vec![BETA],
        ..Options::default()
    })
    .await;
    // The first org is loaded; the second is not yet, and keeps the gateway unready.
    let response = app.get("/healthcheck").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["missing"],
        serde_json::json!([
            "/orgs/beta",
            "/orgs/beta/members",
            "/orgs/beta/repos",
            "/orgs/beta/view"
        ]),
        "{body}"
    );
    assert_eq!(body["orgs"][ORG]["state"], "ready", "{body}");
    assert_eq!(body["orgs"][BETA]["state"], "loading", "{body}");
    assert_eq!(
        app.get("/orgs/beta/view/top/2/stars").await.status(),
        503,
        "a configured org's views not loaded yet"
    );

    // The second org's data arrives on its own streams and is served without a restart.
    app.seed_other_org(BETA, BETA_ID, 3).await;
    app.wait_ready().await;
    assert_eq!(
        app.get_text("/orgs/beta/repos").await,
        repos_body_of(BETA, 3),
        "served byte for byte from the second org's keys"
    );
    assert_eq!(app.get_text("/orgs/beta/members").await, members_body());
    let org: Value = serde_json::from_str(&app.get_text("/orgs/beta").await).expect("org object");
    assert_eq!(org["id"], BETA_ID);
    // GitHub's Link headers name the org's lists by id: served from the second org's copy.
    let by_id = app.get(&format!("/organizations/{BETA_ID}/members")).await;
    assert_eq!(by_id.status(), 200);
    assert!(
        crate::helpers::cache_status(&by_id).contains("hit"),
        "{by_id:?}"
    );
    assert_eq!(by_id.text().await.expect("body"), members_body());

    let beta_top = r#"[["beta/r0", 100], ["beta/r1", 99]]"#;
    assert_eq!(app.get_text("/orgs/beta/view/top/2/stars").await, beta_top);
    assert_eq!(
        app.get_text("/orgs/BETA/view/top/2/stars/").await,
        beta_top,
        "logins are case-insensitive"
    );
    assert_eq!(
        app.get_text("/orgs/beta/view/bottom/1/stars").await,
        r#"[["beta/r6", 94]]"#
    );
    // The seed's routes are the first org's, which the qualified form serves too.
    let acme_top = r#"[["acme/r0", 100], ["acme/r1", 99]]"#;
    assert_eq!(app.get_text("/view/top/2/stars").await, acme_top);
    assert_eq!(
        app.get_text(&format!("/orgs/{ORG}/view/top/2/stars")).await,
        acme_top
    );

    // An org that is not configured: a 404 JSON, not a pass-through to GitHub.
    let before = app.sim.requests_to("/orgs/gamma/view/top/2/stars").await;
    let response = app.get("/orgs/gamma/view/top/2/stars").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("a JSON error");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("gamma")),
        "{body}"
    );
    assert_eq!(
        app.sim.requests_to("/orgs/gamma/view/top/2/stars").await,
        before
    );
    assert_eq!(app.get("/orgs/beta/view/top/0/stars").await.status(), 400);
    assert_eq!(app.get("/orgs/beta/view/top/2/nope").await.status(), 404);

    // Each org reported ready, with the memory its copies hold; the same in the metrics.
    let health: Value = app.get("/healthcheck").await.json().await.expect("json");
    for org in [ORG, BETA] {
        assert_eq!(health["orgs"][org]["state"], "ready", "{health}");
        assert!(
            health["orgs"][org]["served_bytes"]
                .as_u64()
                .is_some_and(|b| b > 1000),
            "{health}"
        );
    }
    let metrics = app.get_text("/metrics").await;
    for org in [ORG, BETA] {
        assert_eq!(
            sample(
                &metrics,
                "hubcache_gateway_org_state",
                &[("org", org), ("state", "ready")]
            ),
            Some(1.0),
            "{org}"
        );
        assert!(
            sample(
                &metrics,
                "hubcache_gateway_org_served_bytes",
                &[("org", org)]
            )
            .is_some_and(|b| b > 1000.0),
            "{org}"
        );
    }
    assert_eq!(
        sample(&metrics, "hubcache_served_views_version", &[("org", BETA)]),
        Some(3.0)
    );
    assert_eq!(
        sample(&metrics, "hubcache_served_views_version", &[("org", ORG)]),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_new_version_of_one_org_leaves_the_other_org_as_it_was() {
    let app = spawn_with(Options {
        seed: true,
        more_orgs: vec![BETA],
        ..Options::default()
    })
    .await;
    app.seed_other_org(BETA, BETA_ID, 1).await;
    app.wait_ready().await;
    let acme_repos = app.get_text(&format!("/orgs/{ORG}/repos")).await;
    app.seed_org_snapshot(
        BETA,
        "/orgs/beta/repos",
        SnapshotKind::List,
        &repos_body_of(BETA, 2),
        2,
    )
    .await;
    eventually(
        Duration::from_secs(5),
        "the second org's new version served",
        || async {
            (app.get_text("/orgs/beta/repos").await == repos_body_of(BETA, 2)).then_some(())
        },
    )
    .await
    .expect("the new version is served");
    assert_eq!(
        app.get_text(&format!("/orgs/{ORG}/repos")).await,
        acme_repos
    );
}

#[tokio::test]
async fn an_unknown_org_among_known_ones_is_reported_and_does_not_keep_the_gateway_unready() {
    // github-sim knows Netflix and beta; it answers 404 for nope, as GitHub does.
    let app = spawn_with(Options {
        pipeline: true,
        more_orgs: vec![BETA, "nope"],
        unknown_orgs: vec!["nope"],
        ..Options::default()
    })
    .await;
    app.wait_ready().await;
    let health = eventually(
        Duration::from_secs(20),
        "the unknown org reported",
        || async {
            let response = app.get("/healthcheck").await;
            let body: Value = response.json().await.ok()?;
            (body["orgs"]["nope"]["state"] == "unknown_org").then_some(body)
        },
    )
    .await
    .expect("the unknown org is visible");
    assert_eq!(
        health["status"], "ok",
        "ready despite the unknown org: {health}"
    );
    assert!(
        health["orgs"]["nope"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("404")),
        "the fetcher's reason is shown: {health}"
    );
    assert!(health["failing"].get("/orgs/nope").is_some(), "{health}");
    for known in [app.org.as_str(), BETA] {
        assert_eq!(health["orgs"][known]["state"], "ready", "{health}");
    }
    let missing: Vec<Value> = health["orgs"]["nope"]["missing"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!missing.is_empty(), "nothing of it is loaded: {health}");

    // Its routes say why at once instead of 503 "try again".
    for path in ["/orgs/nope/view/top/1/stars", "/orgs/nope/repos"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.expect("JSON error");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains("404")),
            "{path}: {body}"
        );
    }
    // The known orgs are served; the seed's route is the first org's.
    let top: Vec<(String, i64)> =
        serde_json::from_str(&app.get_text("/orgs/beta/view/top/1/stars").await).expect("json");
    assert!(top[0].0.starts_with("beta/"), "{top:?}");
    let seed: Vec<(String, i64)> =
        serde_json::from_str(&app.get_text("/view/top/1/stars").await).expect("json");
    assert!(seed[0].0.starts_with(&format!("{}/", app.org)), "{seed:?}");

    // Measured memory per org (printed with `--no-capture`; ARCHITECTURE.md quotes it): the
    // list of 150 generated repos with its gzip and brotli copies, the members, the views.
    for org in [app.org.as_str(), BETA] {
        let repos = app.get_text(&format!("/orgs/{org}/repos")).await.len();
        let held = health["orgs"][org]["served_bytes"].as_u64().expect("bytes");
        println!("{org}: served_bytes {held} for a repos list of {repos} bytes");
        assert!(held as usize > repos, "the list itself is counted");
    }
    let metrics = app.get_text("/metrics").await;
    for (org, state, value) in [
        ("nope", "unknown_org", 1.0),
        ("nope", "loading", 0.0),
        ("nope", "ready", 0.0),
        (BETA, "ready", 1.0),
        (app.org.as_str(), "ready", 1.0),
    ] {
        assert_eq!(
            sample(
                &metrics,
                "hubcache_gateway_org_state",
                &[("org", org), ("state", state)]
            ),
            Some(value),
            "{org} {state}"
        );
    }
}
