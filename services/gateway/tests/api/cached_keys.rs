use std::time::Duration;

use hubcache_testkit::eventually;

use crate::helpers::{
    ORG, ORG_ID, Options, REPO_COUNT, members_body, org_body, repos_body, root_body, spawn_app,
    spawn_with,
};

#[tokio::test]
async fn cached_keys_serve_the_exact_snapshot_bytes_as_json() {
    let app = spawn_app().await;
    for (path, body) in [
        ("/".to_owned(), root_body()),
        (format!("/orgs/{ORG}"), org_body(1)),
        (format!("/orgs/{ORG}/repos"), repos_body(1)),
        (format!("/orgs/{ORG}/members"), members_body()),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json; charset=utf-8"
        );
        assert_eq!(response.headers()["cache-status"], "hubcache; hit");
        assert!(
            !response
                .headers()
                .keys()
                .any(|k| k.as_str().starts_with("x-ratelimit")),
            "no upstream rate-limit headers on cached keys: {path}"
        );
        assert_eq!(response.text().await.expect("body"), body, "{path}");
    }
}

#[tokio::test]
async fn public_url_points_upstream_urls_in_cached_bodies_at_the_gateway() {
    let app = spawn_with(Options {
        seed: true,
        public_url: Some("https://cache.example:8443/"),
        ..Options::default()
    })
    .await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(etag.starts_with('"'), "a strong ETag: {etag}");
    let served = response.text().await.expect("body");
    assert_eq!(
        served,
        root_body().replace("https://api.github.com", "https://cache.example:8443")
    );
    // The ETag names the served (rewritten) bytes, not the stored ones.
    let verbatim = spawn_app().await;
    let stored_etag = verbatim.get("/").await.headers()["etag"].clone();
    assert_ne!(etag, stored_etag.to_str().expect("ascii"));
    let revalidated = app.get_with("/", &[("if-none-match", &etag)]).await;
    assert_eq!(revalidated.status(), 304);
    // Bodies without upstream URLs are served as stored.
    assert_eq!(app.get_text(&format!("/orgs/{ORG}")).await, org_body(1));
}

#[tokio::test]
async fn trailing_slash_and_head_are_the_same_resource() {
    let app = spawn_app().await;
    assert_eq!(app.get_text(&format!("/orgs/{ORG}/")).await, org_body(1));
    assert_eq!(
        app.get_text(&format!("/orgs/{ORG}/repos/")).await,
        repos_body(1)
    );
    let head = app.head(&format!("/orgs/{ORG}/repos")).await;
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        repos_body(1).len().to_string().as_str()
    );
    assert!(head.headers().contains_key("etag"));
    assert!(head.bytes().await.expect("body").is_empty());
}

fn elements(text: &str) -> Vec<serde_json::Value> {
    serde_json::from_str(text).expect("a JSON array")
}

fn next_link(response: &reqwest::Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?.to_owned();
    link.split(", ")
        .find(|l| l.ends_with("rel=\"next\""))
        .map(|l| {
            l.trim_start_matches('<')
                .split_once('>')
                .map(|(url, _)| url.to_owned())
                .expect("url in <>")
        })
}

#[tokio::test]
async fn pages_follow_github_semantics_and_links_walk_the_whole_list() {
    let app = spawn_app().await;
    let all = elements(&repos_body(1));

    let mut url = format!("{}/orgs/{ORG}/repos?per_page=3", app.address);
    let mut walked = Vec::new();
    let mut pages = 0;
    loop {
        let response = app.client.get(&url).send().await.expect("page");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-status"], "hubcache; hit");
        let next = next_link(&response);
        if pages == 0 {
            let link = response.headers()["link"]
                .to_str()
                .expect("ascii")
                .to_owned();
            assert_eq!(
                link,
                format!(
                    "<{a}/orgs/{ORG}/repos?per_page=3&page=2>; rel=\"next\", <{a}/orgs/{ORG}/repos?per_page=3&page=3>; rel=\"last\"",
                    a = app.address
                )
            );
        }
        walked.extend(elements(&response.text().await.expect("body")));
        pages += 1;
        match next {
            Some(next) => {
                assert!(
                    next.starts_with(&app.address),
                    "links point at the gateway: {next}"
                );
                url = next;
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        walked, all,
        "following Link gives every element once, in order"
    );

    // Page past the end, page defaults, cap at 100.
    assert_eq!(
        app.get_text(&format!("/orgs/{ORG}/repos?per_page=3&page=9"))
            .await,
        "[]"
    );
    assert_eq!(
        elements(&app.get_text(&format!("/orgs/{ORG}/repos?page=1")).await),
        all
    );
    assert_eq!(
        elements(
            &app.get_text(&format!("/orgs/{ORG}/repos?per_page=1000"))
                .await
        ),
        all
    );
    assert_eq!(
        elements(
            &app.get_text(&format!("/orgs/{ORG}/repos?per_page=2&page=0"))
                .await
        ),
        all[..2]
    );
    // A page is cut from the stored bytes: the first element exactly as stored.
    let first = app.get_text(&format!("/orgs/{ORG}/repos?per_page=1")).await;
    let stored = repos_body(1);
    assert_eq!(
        first,
        format!("[{}]", &stored[1..stored.find(",\n ").expect("separator")])
    );
    assert_eq!(REPO_COUNT, all.len());
}

#[tokio::test]
async fn links_use_public_url_when_configured_else_the_host() {
    let app = spawn_app().await;
    let response = app
        .get_with(
            &format!("/orgs/{ORG}/members?per_page=1"),
            &[("host", "cache.example:8080")],
        )
        .await;
    let link = response.headers()["link"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        link.starts_with("<http://cache.example:8080/orgs/acme/members?per_page=1&page=2>"),
        "{link}"
    );
}

#[tokio::test]
async fn organization_id_paths_are_served_from_the_snapshot() {
    let app = spawn_app().await;
    let response = app
        .get(&format!("/organizations/{ORG_ID}/repos?per_page=5&page=2"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-status"], "hubcache; hit");
    let link = response.headers()["link"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        link.contains(&format!(
            "/organizations/{ORG_ID}/repos?per_page=5&page=1>; rel=\"prev\""
        )),
        "{link}"
    );
    assert_eq!(
        elements(&response.text().await.expect("body")),
        elements(&repos_body(1))[5..]
    );
    assert_eq!(
        app.get_text(&format!("/organizations/{ORG_ID}/members"))
            .await,
        members_body()
    );

    // Another org's id is not ours: it goes to the pass-through (the simulator).
    let response = app.get("/organizations/1/repos").await;
    assert_eq!(response.status(), 404);
    assert!(
        response.headers()["cache-status"]
            .to_str()
            .expect("ascii")
            .contains("fwd=")
    );
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("documentation_url"),
        "GitHub's 404 body"
    );
}

#[tokio::test]
async fn other_query_parameters_are_not_answered_from_the_snapshot() {
    let app = spawn_app().await;
    let response = app.get(&format!("/orgs/{ORG}/repos?sort=updated")).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["cache-status"]
            .to_str()
            .expect("ascii")
            .contains("fwd=")
    );
    // The simulator's org has 150 repos: GitHub's default page of 30, not the 7 seeded ones.
    assert_eq!(elements(&response.text().await.expect("body")).len(), 30);
}

#[tokio::test]
async fn a_new_version_replaces_the_served_copy_without_restart() {
    let app = spawn_app().await;
    assert_eq!(app.get_text(&format!("/orgs/{ORG}")).await, org_body(1));
    app.seed_all(2).await;
    eventually(Duration::from_secs(5), "version 2 served", || async {
        (app.get_text(&format!("/orgs/{ORG}")).await == org_body(2)).then_some(())
    })
    .await
    .expect("new version served");
    eventually(Duration::from_secs(5), "repos version 2 served", || async {
        (app.get_text(&format!("/orgs/{ORG}/repos?per_page=2"))
            .await
            .contains("\"v\":2"))
        .then_some(())
    })
    .await
    .expect("pages of the new version served");
}
