//! The GitHub routes: shapes of the served objects, 404s, methods, case-insensitivity, HEAD.

use github_sim::SimConfig;
use serde_json::Value;
use url::Url;

use crate::helpers::{ORG, header, link, org_id, spawn_app, spawn_app_with, test_config};

const NOT_FOUND: &str =
    r#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}"#;

#[tokio::test]
async fn unknown_paths_and_methods_get_githubs_404() {
    let app = spawn_app().await;

    for target in [
        "/nope",
        "/orgs/no-such-org",
        "/repos/Netflix/no-such-repo",
        "/orgs/Netflix/teams",
    ] {
        let response = app.get(target).await;
        assert_eq!(response.status(), 404, "{target}");
        assert_eq!(
            header(response.headers(), "content-type"),
            "application/json; charset=utf-8"
        );
        assert_eq!(response.text().await.expect("body"), NOT_FOUND);
    }
    let post = app
        .client
        .post(format!("{}/orgs/{ORG}", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(post.status(), 404);
    assert_eq!(post.text().await.expect("body"), NOT_FOUND);
}

#[tokio::test]
async fn root_document_has_githubs_33_keys_under_the_body_base_url() {
    let app = spawn_app_with(SimConfig {
        body_base_url: Url::parse("http://sim.example").expect("url"),
        ..test_config()
    })
    .await;

    let root = app.get_json("/").await;
    let root = root.as_object().expect("object");
    assert_eq!(root.len(), 33);
    assert_eq!(
        root["organization_repositories_url"],
        "http://sim.example/orgs/{org}/repos{?type,page,per_page,sort}"
    );
    let repos = app.get_json(&format!("/orgs/{ORG}/repos?per_page=1")).await;
    assert_eq!(
        repos[0]["url"],
        format!(
            "http://sim.example/repos/{ORG}/{}",
            repos[0]["name"].as_str().expect("name")
        )
    );
}

#[tokio::test]
async fn logins_and_repo_names_are_case_insensitive() {
    let app = spawn_app().await;
    let org = app
        .get(&format!("/orgs/{ORG}"))
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(
        app.get("/orgs/NETFLIX").await.text().await.expect("body"),
        org
    );

    let repos = app.get_json(&format!("/orgs/{ORG}/repos?per_page=1")).await;
    let name = repos[0]["name"].as_str().expect("name");
    let full = app
        .get_json(&format!("/repos/netflix/{}", name.to_uppercase()))
        .await;
    assert_eq!(full["name"], name);
}

#[tokio::test]
async fn repositories_have_githubs_field_sets_and_list_items_drop_full_only_fields() {
    let app = spawn_app().await;
    let items = app
        .get_json(&format!("/orgs/{ORG}/repos?per_page=100"))
        .await;
    let item = items[3].as_object().expect("item").clone();
    for field in [
        "id",
        "node_id",
        "name",
        "full_name",
        "private",
        "owner",
        "html_url",
        "description",
        "fork",
        "url",
        "forks_url",
        "issues_url",
        "pulls_url",
        "created_at",
        "updated_at",
        "pushed_at",
        "git_url",
        "ssh_url",
        "clone_url",
        "svn_url",
        "homepage",
        "size",
        "stargazers_count",
        "watchers_count",
        "language",
        "has_issues",
        "forks_count",
        "open_issues_count",
        "license",
        "forks",
        "open_issues",
        "watchers",
        "default_branch",
        "topics",
        "visibility",
    ] {
        assert!(item.contains_key(field), "list item lacks {field}");
    }
    assert!(!item.contains_key("network_count"));
    let size = serde_json::to_vec(&items).expect("json").len() / 100;
    assert!(
        (4_000..8_000).contains(&size),
        "repo objects average {size} bytes"
    );

    let full = app
        .get_json(&format!(
            "/repos/{ORG}/{}",
            item["name"].as_str().expect("name")
        ))
        .await;
    let mut full = full.as_object().expect("full").clone();
    for field in ["network_count", "subscribers_count", "organization"] {
        assert!(full.remove(field).is_some(), "full repo lacks {field}");
    }
    full.retain(|field, _| {
        !["temp_clone_token", "custom_properties", "parent", "source"].contains(&field.as_str())
    });
    assert_eq!(full, item);
}

#[tokio::test]
async fn organizations_by_id_serve_the_same_lists() {
    let app = spawn_app().await;
    let id = org_id(&app).await;
    for list in ["repos", "members"] {
        let by_login = app
            .get(&format!("/orgs/{ORG}/{list}?per_page=9"))
            .await
            .text()
            .await
            .expect("body");
        let by_id = app
            .get(&format!("/organizations/{id}/{list}?per_page=9"))
            .await
            .text()
            .await
            .expect("body");
        assert_eq!(by_login, by_id, "{list}");
    }
    assert_eq!(app.get("/organizations/1/repos").await.status(), 404);
}

#[tokio::test]
async fn users_and_the_org_as_a_user_are_served() {
    let app = spawn_app().await;
    let members = app.get_json(&format!("/orgs/{ORG}/members")).await;
    let member = &members[0];
    let user = app
        .get_json(&format!(
            "/users/{}",
            member["login"].as_str().expect("login")
        ))
        .await;
    assert_eq!(user["id"], member["id"]);
    assert!(user["followers"].is_u64() && user["created_at"].is_string());

    let org_user = app.get_json(&format!("/users/{ORG}")).await;
    assert_eq!(org_user["type"], "Organization");
    let orgs = app.get_json(&format!("/user/{}/orgs", member["id"])).await;
    assert_eq!(orgs[0]["login"], ORG);
}

#[tokio::test]
async fn head_gets_the_headers_without_the_body() {
    let app = spawn_app().await;
    let get = app.get(&format!("/orgs/{ORG}")).await;
    let head = app
        .client
        .head(format!("{}/orgs/{ORG}", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(head.status(), 200);
    assert_eq!(
        header(head.headers(), "etag"),
        header(get.headers(), "etag")
    );
    assert!(head.bytes().await.expect("body").is_empty());
    assert_eq!(app.control.stats().await["by_method"]["HEAD"], 1);
}

#[tokio::test]
async fn a_base_url_path_prefixes_requests_and_links() {
    let app = spawn_app_with(SimConfig {
        base_url: Some(Url::parse("http://sim.test/api/v3").expect("url")),
        ..test_config()
    })
    .await;
    let response = app.get(&format!("/api/v3/orgs/{ORG}/repos")).await;
    assert_eq!(response.status(), 200);
    let next = link(response.headers(), "next").expect("next");
    assert!(
        next.starts_with("http://sim.test/api/v3/organizations/"),
        "{next}"
    );
    assert_eq!(
        app.control.stats().await["by_path"][format!("/orgs/{ORG}/repos")],
        1
    );
}

#[tokio::test]
async fn control_routes_are_not_counted_and_unknown_ones_are_json_404s() {
    let app = spawn_app().await;
    let unknown = app
        .control
        .send(reqwest::Method::GET, "/nothing", None)
        .await;
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.expect("JSON");
    assert!(body["message"].is_string());
    let wrong_method = app.control.send(reqwest::Method::PUT, "/stats", None).await;
    assert_eq!(wrong_method.status(), 404);

    app.get(&format!("/orgs/{ORG}")).await;
    app.get(&format!("/orgs/{ORG}?x=1")).await;
    let stats = app.control.stats().await;
    assert_eq!(stats["total"], 2);
    assert_eq!(stats["by_path"], serde_json::json!({"/orgs/Netflix": 2}));
    assert_eq!(stats["by_method"], serde_json::json!({"GET": 2}));

    let reset = app
        .control
        .send(reqwest::Method::POST, "/stats/reset", None)
        .await;
    assert_eq!(reset.status(), 204);
    assert_eq!(app.control.stats().await["total"], 0);
}
