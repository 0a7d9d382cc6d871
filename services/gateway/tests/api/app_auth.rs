//! The pass-through with GitHub App credentials, against github-sim: an anonymous request for a
//! configured org's own resource carries that org's installation token (its own rate limit),
//! tokens are renewed before they expire with no failed request, and a revoked installation is
//! reported in `/healthcheck` and refused for its org only.

use std::time::Duration;

use hubcache_testkit::{AppKeyPair, eventually};

use crate::helpers::{ORG, Options, TestApp, spawn_with};

/// A key pair for the whole test run (its files live as long as the process).
fn app_keys() -> &'static AppKeyPair {
    static KEYS: std::sync::OnceLock<AppKeyPair> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| AppKeyPair::generate().expect("an App key pair (openssl)"))
}

/// github-sim's label of requests carrying installation `id`'s token.
fn installation(id: u64) -> String {
    format!("installation-{id}")
}

/// The `/repos/{org}/{name}` paths of up to 100 of the org's repos, from github-sim.
async fn repo_paths(app: &TestApp, org: &str) -> Vec<String> {
    let repos = app
        .sim_json(&format!("/orgs/{org}/repos?per_page=100"))
        .await;
    repos
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| format!("/repos/{org}/{}", r["name"].as_str().expect("name")))
        .collect()
}

#[tokio::test]
async fn each_orgs_resources_carry_its_installation_token_renewed_before_it_expires() {
    let app = spawn_with(Options {
        more_orgs: vec!["beta"],
        app: Some(app_keys()),
        installation_token_ttl_secs: Some(3),
        ..Options::default()
    })
    .await;
    let ours = app.sim.installation_of(ORG).await;
    let beta = app.sim.installation_of("beta").await;
    let ours_paths = repo_paths(&app, ORG).await;
    let beta_path = repo_paths(&app, "beta").await.swap_remove(0);
    app.sim.reset_stats().await;

    assert_eq!(app.get(&ours_paths[0]).await.status(), 200);
    assert_eq!(app.get(&beta_path).await.status(), 200);
    // github-sim knows no users: its 404 comes through, as GitHub's would.
    assert_eq!(app.get("/users/octocat").await.status(), 404);
    assert_eq!(
        app.sim
            .requests_with(&ours_paths[0], &installation(ours))
            .await,
        1
    );
    assert_eq!(
        app.sim.requests_with(&beta_path, &installation(beta)).await,
        1,
        "beta's resource carries beta's installation"
    );
    assert_eq!(
        app.sim.requests_with(&beta_path, &installation(ours)).await,
        0
    );
    assert_eq!(
        app.sim
            .requests_with("/users/octocat", github_sim::ANONYMOUS)
            .await,
        1,
        "outside every org an App has no credential: anonymous"
    );

    // Tokens live 3 s. Misses keep going upstream while the gateway renews the token (no
    // fetcher runs here, so every token issued is the gateway's); none is refused.
    let issued = app.sim.tokens_issued(ours).await;
    let mut sent = 0;
    for path in ours_paths.iter().skip(1).cycle().take(400) {
        let target = format!("{path}?renewal={sent}");
        let response = app.get(&target).await;
        assert_eq!(response.status(), 200, "{target}");
        sent += 1;
        if app.sim.tokens_issued(ours).await >= issued + 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        app.sim.tokens_issued(ours).await >= issued + 2,
        "two renewals within {sent} requests"
    );
    assert_eq!(app.sim.stat("rate_limited").await, 0);
    let stats = app.sim.stats().await;
    assert!(
        !stats.to_string().contains("ghs_"),
        "github-sim's record names installations, never tokens"
    );
}

#[tokio::test]
async fn a_revoked_installation_is_reported_and_refused_for_its_org_only() {
    let app = spawn_with(Options {
        pipeline: true,
        more_orgs: vec!["beta"],
        app: Some(app_keys()),
        ..Options::default()
    })
    .await;
    app.wait_ready().await;
    let beta = app.sim.installation_of("beta").await;
    let ours_paths = repo_paths(&app, &app.org).await;
    let beta_paths = repo_paths(&app, "beta").await;
    assert_eq!(app.get(&beta_paths[0]).await.status(), 200);

    app.sim.revoke_installation(beta).await;
    let health = eventually(
        Duration::from_secs(20),
        "beta reported as installation_revoked",
        || async {
            let health: serde_json::Value =
                app.get("/healthcheck").await.json().await.expect("json");
            (health["orgs"]["beta"]["state"] == "installation_revoked").then_some(health)
        },
    )
    .await
    .expect("the revocation reported");
    assert!(
        health["orgs"]["beta"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("installation") && !e.contains("ghs_")),
        "{health}"
    );
    assert_eq!(health["orgs"][&app.org]["state"], "ready", "{health}");
    assert_eq!(
        app.get("/healthcheck").await.status(),
        200,
        "one org's revocation does not make the gateway unready"
    );

    // Beta's pass-through misses are refused with a clear JSON error once the gateway's own
    // token is found refused (GitHub answers 401 to it, then no new token is issued).
    let mut misses = beta_paths.iter().skip(1);
    let refusal = eventually(Duration::from_secs(20), "beta's misses refused", || {
        let path = misses.next().cloned();
        async {
            let response = app.get(&path?).await;
            (response.status() == 502).then_some(response)
        }
    })
    .await
    .expect("a refusal");
    let body: serde_json::Value = refusal.json().await.expect("a JSON error");
    assert!(body.to_string().contains("installation_revoked"), "{body}");
    assert_eq!(
        app.get(&ours_paths[1]).await.status(),
        200,
        "the other org's installation is unaffected"
    );
}
