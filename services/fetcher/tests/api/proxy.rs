//! GitHub behind a proxy that does not rewrite `Link` headers (Prow's ghproxy): the links name
//! another host than `GITHUB_API_URL`, and the fetcher follows them under `GITHUB_API_URL`,
//! never to the host they name. A link it cannot follow leaves the endpoint stuck, visibly.

use std::time::Duration;

use hubcache_testkit::{SimControl, eventually};
use serde_json::value::RawValue;

use crate::helpers::{ORG, REPOS, TestApp, TestOptions, repos_path, spawn_app_with};

/// A second simulator, serving the same organisation, standing for the host the links name
/// (api.github.com behind the proxy). Were the fetcher to follow the links there, it would get
/// the same pages: only its request counter tells.
async fn advertised_host() -> SimControl {
    let sim = github_sim::Application::build(github_sim::SimConfig {
        port: 0,
        workers: 1,
        org: ORG.to_owned(),
        generate_repos: REPOS,
        generate_members: 40,
        ..github_sim::SimConfig::default()
    })
    .await
    .expect("the advertised host's simulator builds");
    let address = format!("http://127.0.0.1:{}", sim.port());
    tokio::spawn(sim.run_until_stopped());
    SimControl::new(address)
}

/// The repos list as the configured upstream serves it, pages requested by number (its links
/// name the other host).
async fn expected_repos(app: &TestApp) -> Vec<u8> {
    let mut elements = Vec::new();
    for page in 1..=REPOS.div_ceil(100) {
        let response = app
            .sim_get(&format!(
                "{}{}?per_page=100&page={page}",
                app.options.api_path,
                repos_path()
            ))
            .await;
        assert_eq!(response.status(), 200, "page {page}");
        let body = response.text().await.expect("page body");
        let page: Vec<&RawValue> = serde_json::from_str(&body).expect("a JSON array page");
        elements.extend(page.iter().map(|e| e.get().to_owned()));
    }
    format!("[{}]", elements.join(",")).into_bytes()
}

/// Starts a fetcher against a simulator advertising `advertised` (plus `api_path` in
/// `GITHUB_API_URL`) and checks the whole repos list is stored from the configured upstream.
async fn caches_every_page_without_contacting_the_advertised_host(
    advertised_path: &str,
    api_path: &'static str,
) {
    let other = advertised_host().await;
    let advertised = url::Url::parse(&format!("{}{advertised_path}", other.base_url()))
        .expect("advertised base URL");
    let app = spawn_app_with(TestOptions {
        advertised_base_url: Some(advertised.clone()),
        api_path,
        ..TestOptions::default()
    })
    .await;
    // The premise: the upstream's links name the other host.
    let first = app
        .sim_get(&format!("{api_path}{}?per_page=100", repos_path()))
        .await;
    let link = first.headers()["link"].to_str().expect("ascii").to_owned();
    assert!(link.contains(advertised.as_str()), "{link}");

    let fetcher = app.start_fetcher().await;
    let snapshot = app
        .wait_for_version_above(&repos_path(), 0, Duration::from_secs(20))
        .await;
    assert_eq!(snapshot.meta.pages.len(), REPOS.div_ceil(100));
    assert_eq!(snapshot.body, expected_repos(&app).await);
    // Page targets are recorded relative to GITHUB_API_URL, so the next poll revalidates them.
    let targets: Vec<&str> = snapshot
        .meta
        .pages
        .iter()
        .map(|p| p.target.as_str())
        .collect();
    assert!(
        targets[1].starts_with("/organizations/") && targets[1].ends_with("&page=2"),
        "{targets:?}"
    );
    // And it does: a later poll succeeds (every page answered, all 304: no new version).
    let first_success = app.status(&repos_path()).await.last_success_at_ms;
    eventually(
        Duration::from_secs(10),
        "a later successful poll of every page",
        || async {
            (app.status(&repos_path()).await.last_success_at_ms > first_success).then_some(())
        },
    )
    .await
    .expect("pages revalidated");
    assert_eq!(app.version(&repos_path()).await, 1);
    assert_eq!(app.status(&repos_path()).await.failing(), None);
    assert_eq!(
        other.stat("total").await,
        0,
        "no request (and so no token) went to the host the links name"
    );
    fetcher.stop().await;
}

#[tokio::test]
async fn links_naming_another_host_are_followed_under_the_configured_url() {
    caches_every_page_without_contacting_the_advertised_host("", "").await;
}

#[tokio::test]
async fn links_keep_a_github_enterprise_path_the_configured_url_also_has() {
    caches_every_page_without_contacting_the_advertised_host("/api/v3", "/api/v3").await;
}

#[tokio::test]
async fn an_endpoint_stuck_on_a_refused_link_says_why_in_its_status_and_metrics() {
    let app = spawn_app_with(TestOptions {
        // Not an http(s) URL: a link that cannot be followed anywhere.
        advertised_base_url: Some(url::Url::parse("ftp://mirror.example").expect("url")),
        ..TestOptions::default()
    })
    .await;
    let fetcher = app.start_fetcher_with_admin().await;
    let repos = repos_path();
    let error = eventually(
        Duration::from_secs(15),
        "a failed poll of the repos list",
        || async { app.status(&repos).await.failing().map(str::to_owned) },
    )
    .await
    .expect("the failure is recorded");
    assert!(
        error.contains("next link refused") && error.contains("not an http(s) URL"),
        "{error}"
    );
    assert!(
        !error.contains("page=2"),
        "the link's query is not echoed: {error}"
    );
    assert_eq!(app.version(&repos).await, 0, "nothing stored");
    // The endpoints without a next link are cached meanwhile.
    eventually(Duration::from_secs(10), "the org stored", || async {
        app.snapshot(&format!("/orgs/{ORG}")).await
    })
    .await
    .expect("the org is cached");

    let port = fetcher.admin_port.expect("admin listener");
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("scrape body");
    let sample = |name: &str, labels: &[(&str, &str)]| {
        hubcache_testkit::prometheus_text::sample(&text, name, labels)
    };
    assert!(
        sample(
            "hubcache_fetcher_poll_errors_total",
            &[("endpoint", &repos), ("reason", "refused_link")]
        ) >= Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample("hubcache_fetcher_endpoint_failing", &[("endpoint", &repos)]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            "hubcache_fetcher_endpoint_failing",
            &[("endpoint", &format!("/orgs/{ORG}"))]
        ),
        Some(0.0),
        "{text}"
    );
    assert!(
        hubcache_testkit::prometheus_text::promtool_check(&text).expect("promtool runs"),
        "{text}"
    );
    fetcher.stop().await;
}
