//! Where the data comes from: the deterministic generator and dataset files.

use github_sim::{Application, SimConfig};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ORG, TempFile, TestApp, header, spawn_app_with, test_config};

/// Bodies and ETags of a set of pages, to compare two simulators.
async fn snapshot(app: &TestApp, targets: &[String]) -> Vec<(String, bytes::Bytes)> {
    let mut pages = Vec::new();
    for target in targets {
        let response = app.get(target).await;
        assert_eq!(response.status(), 200, "{target}");
        let etag = header(response.headers(), "etag").to_owned();
        pages.push((etag, response.bytes().await.expect("body")));
    }
    pages
}

async fn export(app: &TestApp) -> bytes::Bytes {
    let response = app.control.send(Method::GET, "/dataset", None).await;
    assert_eq!(response.status(), 200);
    response.bytes().await.expect("dataset")
}

fn generated_targets(first_repo: &str) -> Vec<String> {
    vec![
        "/".to_owned(),
        format!("/orgs/{ORG}"),
        format!("/orgs/{ORG}/repos?per_page=100"),
        format!("/orgs/{ORG}/repos?per_page=100&page=2"),
        format!("/orgs/{ORG}/members?per_page=100"),
        format!("/repos/{ORG}/{first_repo}"),
    ]
}

#[tokio::test]
async fn the_generator_gives_identical_bytes_on_every_build() {
    let first = spawn_app_with(test_config()).await;
    let second = spawn_app_with(test_config()).await;
    let other_seed = spawn_app_with(SimConfig {
        seed: 2,
        ..test_config()
    })
    .await;

    let dataset = export(&first).await;
    assert_eq!(dataset, export(&second).await);
    assert_ne!(dataset, export(&other_seed).await);

    let repos = first
        .get_json(&format!("/orgs/{ORG}/repos?per_page=1"))
        .await;
    let targets = generated_targets(repos[0]["name"].as_str().expect("name"));
    assert_eq!(
        snapshot(&first, &targets).await,
        snapshot(&second, &targets).await
    );
}

#[tokio::test]
async fn a_dataset_file_is_served_and_read_back() {
    let dataset = json!({
        "root": {"current_user_url": "https://ghe.example/api/v3/user"},
        "orgs": [{
            "org": {"login": "acme", "id": 42, "public_repos": 3, "updated_at": "2024-01-02T03:04:05Z"},
            "repos": [
                {"id": 1, "name": "rocket", "full_name": "acme/rocket", "network_count": 5},
                {"id": 2, "name": "anvil", "full_name": "acme/anvil"},
                {"id": 3, "name": "magnet", "full_name": "acme/magnet"}
            ],
            "members": [{"login": "wile", "id": 1001, "type": "User"}]
        }],
        "users": [{"user": {"login": "roadrunner", "id": 1002, "type": "User"}, "orgs": ["ACME"]}],
        "paths": {"/orgs/acme/teams": [{"id": 1}, {"id": 2}, {"id": 3}]}
    });
    let file = TempFile::with_contents(&serde_json::to_vec(&dataset).expect("json"));
    let app = spawn_app_with(SimConfig {
        dataset: Some(file.path.clone()),
        ..test_config()
    })
    .await;

    assert_eq!(app.get_json("/").await, dataset["root"]);
    let org = app.get("/orgs/ACME").await;
    assert_eq!(
        header(org.headers(), "last-modified"),
        "Tue, 02 Jan 2024 03:04:05 GMT"
    );
    assert_eq!(
        org.json::<Value>().await.expect("org"),
        dataset["orgs"][0]["org"]
    );
    let page = app.get("/orgs/acme/repos?per_page=2").await;
    let next = crate::helpers::link(page.headers(), "next").expect("next");
    assert_eq!(
        next,
        format!("{}/organizations/42/repos?per_page=2&page=2", app.address)
    );
    assert_eq!(
        page.json::<Value>().await.expect("page"),
        json!([{"id": 1, "name": "rocket", "full_name": "acme/rocket"}, {"id": 2, "name": "anvil", "full_name": "acme/anvil"}])
    );
    assert_eq!(app.get_json("/repos/acme/rocket").await["network_count"], 5);
    assert_eq!(
        app.get_json("/users/wile").await,
        dataset["orgs"][0]["members"][0]
    );
    assert_eq!(
        app.get_json("/users/roadrunner/orgs").await,
        json!([{"login": "acme", "id": 42}])
    );
    assert_eq!(
        app.get_json("/orgs/acme/teams?per_page=2&page=2").await,
        json!([{"id": 3}])
    );

    let exported: Value = serde_json::from_slice(&export(&app).await).expect("export");
    assert_eq!(exported, dataset);
}

#[tokio::test]
async fn an_exported_state_replays_byte_for_byte() {
    let generated = spawn_app_with(test_config()).await;
    let repos = generated
        .get_json(&format!("/orgs/{ORG}/repos?per_page=1"))
        .await;
    let first_repo = repos[0]["name"].as_str().expect("name").to_owned();
    generated
        .control
        .send(
            Method::PATCH,
            &format!("/repos/{ORG}/{first_repo}"),
            Some(json!({"open_issues_count": 12345})),
        )
        .await;
    let file = TempFile::with_contents(&export(&generated).await);

    let replayed = spawn_app_with(SimConfig {
        dataset: Some(file.path.clone()),
        ..test_config()
    })
    .await;

    let mut targets = generated_targets(&first_repo);
    targets.push(format!("/users/{ORG}"));
    assert_eq!(
        snapshot(&generated, &targets).await,
        snapshot(&replayed, &targets).await
    );
    assert_eq!(
        replayed
            .get_json(&format!("/repos/{ORG}/{first_repo}"))
            .await["open_issues_count"],
        12345
    );
}

#[tokio::test]
async fn an_invalid_dataset_is_refused_with_the_offending_entry() {
    let file = TempFile::with_contents(
        br#"{"orgs": [{"org": {"login": "acme", "id": 1}, "repos": [{"id": 5}]}]}"#,
    );
    let error = Application::build(SimConfig {
        dataset: Some(file.path.clone()),
        ..test_config()
    })
    .await
    .err()
    .expect("the dataset is refused");
    let message = format!("{error:#}");
    assert!(
        message.contains("orgs[0].repos[0]") && message.contains("name"),
        "{message}"
    );
}

#[tokio::test]
async fn several_generated_orgs_are_served_each_with_its_own_data_and_unknown_orgs_are_404() {
    let alone = spawn_app_with(test_config()).await;
    let three = spawn_app_with(SimConfig {
        org: format!("{ORG}, acme ,octo-org"),
        ..test_config()
    })
    .await;
    // The first org is byte-for-byte what it is when generated alone.
    let first_repos = format!("/orgs/{ORG}/repos?per_page=100");
    let alone_page = alone.get(&first_repos).await;
    let three_page = three.get(&first_repos).await;
    assert_eq!(
        header(alone_page.headers(), "etag"),
        header(three_page.headers(), "etag")
    );

    let mut repo_ids = std::collections::HashSet::new();
    for org in [ORG, "acme", "octo-org"] {
        let object = three.get_json(&format!("/orgs/{org}")).await;
        assert_eq!(object["login"], org);
        let pages = three
            .walk_pages(&format!("/orgs/{org}/repos?per_page=100"))
            .await;
        let repos: Vec<&Value> = pages.iter().flat_map(|(_, page)| page).collect();
        assert_eq!(
            repos.len() as u64,
            object["public_repos"].as_u64().expect("count")
        );
        for repo in repos {
            assert_eq!(repo["owner"]["login"], org);
            assert!(
                repo_ids.insert(repo["id"].as_u64().expect("id")),
                "ids are unique"
            );
        }
        let members = three.get_json(&format!("/orgs/{org}/members")).await;
        let login = members[0]["login"].as_str().expect("a member");
        let user_orgs = three.get_json(&format!("/users/{login}/orgs")).await;
        assert_eq!(
            user_orgs[0]["login"], org,
            "members are not shared across orgs"
        );
    }
    let unknown = three.get("/orgs/not-an-org-here").await;
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.expect("GitHub's error body");
    assert_eq!(body["message"], "Not Found");

    let repeated = Application::build(SimConfig {
        org: "acme,ACME".to_owned(),
        port: 0,
        ..SimConfig::default()
    })
    .await;
    assert!(repeated.is_err(), "an org listed twice is refused");
}
