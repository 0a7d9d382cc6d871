//! Who may spend the server's credential: github-sim's record of which request carried which
//! credential shows the configured org's own resources fetched with it and everything else
//! anonymous (the default), the setting widening or narrowing that, and the cache partition
//! following the credential actually sent, across replicas sharing the fleet cache.

use std::time::Duration;

use hubcache_testkit::eventually;

use crate::helpers::{ORG, ORG_ID, Options, TestApp, spawn_passthrough, spawn_with};

const SERVER_TOKEN: &str = "ghp_scopeTestServerTokenNeverShown";

/// github-sim's label of the server credential (`Authorization: Bearer {token}`).
fn server_label() -> String {
    github_sim::credential_label(Some(format!("Bearer {SERVER_TOKEN}").as_bytes()))
}

/// Requests to `path` that carried the server credential / none.
async fn carried(app: &TestApp, path: &str) -> (u64, u64) {
    (
        app.sim.requests_with(path, &server_label()).await,
        app.sim.requests_with(path, github_sim::ANONYMOUS).await,
    )
}

/// An L2 timeout far above a loaded test machine's Redis latency (the default 100 ms lets a
/// busy replica fall back to its own cache now and then, which is right, but not looked at here).
fn patient(settings: &mut gateway::Settings) {
    settings.l2_timeout_ms = 10_000;
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn by_default_only_the_configured_orgs_own_resources_carry_the_server_credential() {
    let app = spawn_with(Options {
        seed: true,
        vars: vec![("GITHUB_API_TOKEN", SERVER_TOKEN.to_owned())],
        ..Options::default()
    })
    .await;
    // Ready: the seeded `/orgs/acme` (id ORG_ID) is loaded, so the org's id is known.
    app.wait_ready().await;
    let repo = app.sim_repo_paths().await.swap_remove(0);
    app.sim.reset_stats().await;

    let org_paths = [
        repo,
        format!("/orgs/{ORG}/teams"),
        format!("/repos/{ORG}/no-such-repo/issues"),
        format!("/organizations/{ORG_ID}/teams"),
    ];
    let other_paths = [
        "/users/octocat".to_owned(),
        "/user/repos".to_owned(),
        "/repos/someone-else/thing".to_owned(),
        "/orgs/someone-else".to_owned(),
        "/organizations/1/teams".to_owned(),
    ];
    for path in org_paths.iter().chain(&other_paths) {
        let status = app.get(path).await.status();
        assert!(status == 200 || status == 404, "{path}: {status}");
    }
    for path in &org_paths {
        assert_eq!(carried(&app, path).await, (1, 0), "{path}");
    }
    for path in &other_paths {
        assert_eq!(carried(&app, path).await, (0, 1), "{path}");
    }
    // A target that URL resolution turns into another path never gets the credential.
    let (status, _) = app
        .raw(&format!(
            "GET /repos/{ORG}/x/../../../user HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        ))
        .await;
    assert!(status < 500, "{status}");
    let stats = app.sim.stats().await;
    assert_eq!(
        stats["by_credential"][server_label()],
        org_paths.len(),
        "only the org's own resources carried the server credential: {stats}"
    );
}

#[tokio::test]
async fn the_setting_widens_or_narrows_the_scope() {
    let all = spawn_passthrough(
        None,
        &[
            ("GITHUB_API_TOKEN", SERVER_TOKEN),
            ("PASSTHROUGH_SERVER_TOKEN_SCOPE", "all"),
        ],
        |_| {},
    )
    .await;
    all.get("/users/octocat").await;
    assert_eq!(
        carried(&all, "/users/octocat").await,
        (1, 0),
        "all: every path"
    );

    let none = spawn_passthrough(
        None,
        &[
            ("GITHUB_API_TOKEN", SERVER_TOKEN),
            ("PASSTHROUGH_SERVER_TOKEN_SCOPE", "none"),
        ],
        |_| {},
    )
    .await;
    let repo = none.sim_repo_paths().await.swap_remove(0);
    assert_eq!(none.get(&repo).await.status(), 200);
    assert_eq!(
        carried(&none, &repo).await,
        (0, 1),
        "none: not even the org's"
    );
}

#[tokio::test]
async fn an_answer_fetched_with_the_server_credential_is_never_served_where_it_would_not_be_sent() {
    // Replica A widens the scope; replica B keeps the default; both share the fleet cache.
    let wide = spawn_passthrough(
        None,
        &[
            ("GITHUB_API_TOKEN", SERVER_TOKEN),
            ("PASSTHROUGH_SERVER_TOKEN_SCOPE", "all"),
        ],
        patient,
    )
    .await;
    let members = wide.sim_json(&format!("/orgs/{ORG}/members")).await;
    let login = members[0]["login"].as_str().expect("a member");
    let path = format!("/users/{login}");
    assert_eq!(wide.get(&path).await.status(), 200);
    assert_eq!(carried(&wide, &path).await, (1, 0));
    wait_for_l2_entries(&wide, 1).await;

    // A replica with the same scope shares the entry: one upstream request for both.
    let also_wide = wide
        .other_gateway_with(
            &[
                ("GITHUB_API_TOKEN", SERVER_TOKEN),
                ("PASSTHROUGH_SERVER_TOKEN_SCOPE", "all"),
            ],
            patient,
        )
        .await;
    wait_subscribed(&wide, &also_wide.address).await;
    assert_eq!(wide.get_from(&also_wide.address, &path).await.status(), 200);
    assert_eq!(carried(&wide, &path).await, (1, 0), "shared through L2");

    // A replica that would not send the credential for this path never gets that answer.
    let narrow = wide
        .other_gateway_with(&[("GITHUB_API_TOKEN", SERVER_TOKEN)], patient)
        .await;
    wait_subscribed(&wide, &narrow.address).await;
    let response = wide.get_from(&narrow.address, &path).await;
    assert_eq!(response.status(), 200);
    assert!(
        !header(&response, "cache-status").contains("hit"),
        "not served from the server credential's partition: {:?}",
        response.headers()
    );
    assert_eq!(
        carried(&wide, &path).await,
        (1, 1),
        "fetched again, anonymously"
    );
}

/// Waits until the fleet cache (L2) holds `count` entries: a replica writes its answer there
/// after answering its own client, so another replica asking before the write lands fetches
/// again (right, but not what the test looks at).
async fn wait_for_l2_entries(app: &TestApp, count: usize) {
    // Entry keys are `p:pt:{id}:entry`; `{*}` globs every id.
    let pattern = app.keys.passthrough_entry("*");
    eventually(
        Duration::from_secs(20),
        "the answer written to L2",
        || async {
            let mut conn = app.redis_conn().await;
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut conn)
                .await
                .ok()?;
            (keys.len() >= count).then_some(())
        },
    )
    .await
    .expect("the answer is written to L2");
}

/// Waits until the replica at `base` is subscribed to the fleet cache's wake-ups (a request
/// arriving while another replica's answer is being written to L2 then waits for it).
async fn wait_subscribed(app: &TestApp, base: &str) {
    eventually(Duration::from_secs(20), "fleet subscription", || async {
        let response = app.get_from(base, "/healthcheck").await;
        let body: serde_json::Value = response.json().await.ok()?;
        (body["pass_through"]["fleet"]["subscribed"] == true).then_some(())
    })
    .await
    .expect("the replica subscribes to the fleet wake-ups");
}
