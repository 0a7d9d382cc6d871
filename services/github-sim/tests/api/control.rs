//! Data mutations through the control API.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ORG, REPOS, dataset_repo_names, names, spawn_app};

#[tokio::test]
async fn patching_a_missing_repo_is_404_and_a_bad_body_400() {
    let app = spawn_app().await;
    let missing = app
        .control
        .send(
            Method::PATCH,
            &format!("/repos/{ORG}/no-such-repo"),
            Some(json!({"size": 1})),
        )
        .await;
    assert_eq!(missing.status(), 404);

    let name = dataset_repo_names(&app).await.remove(0);
    for body in [json!([1, 2]), json!("text")] {
        let bad = app
            .control
            .send(Method::PATCH, &format!("/repos/{ORG}/{name}"), Some(body))
            .await;
        assert_eq!(bad.status(), 400);
        let error: Value = bad.json().await.expect("JSON error");
        assert!(error["message"].is_string());
    }
    let unparsable = app
        .client
        .patch(format!("{}/_sim/repos/{ORG}/{name}", app.address))
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(unparsable.status(), 400);
}

#[tokio::test]
async fn a_patch_merges_nested_objects() {
    let app = spawn_app().await;
    let name = dataset_repo_names(&app).await.remove(5);
    let patched = app
        .control
        .send(
            Method::PATCH,
            &format!("/repos/{ORG}/{name}"),
            Some(json!({"owner": {"site_admin": true}, "description": null})),
        )
        .await;
    assert_eq!(patched.status(), 200);

    let repo = app.get_json(&format!("/repos/{ORG}/{name}")).await;
    assert_eq!(repo["owner"]["site_admin"], true);
    assert_eq!(repo["owner"]["login"], ORG);
    assert_eq!(repo["description"], Value::Null);
}

#[tokio::test]
async fn added_repos_go_last_and_deleted_repos_disappear() {
    let app = spawn_app().await;
    let added = app
        .control
        .send(
            reqwest::Method::POST,
            &format!("/orgs/{}/repos", ORG.to_lowercase()),
            Some(json!({"name": "brand-new", "stargazers_count": 7})),
        )
        .await;
    assert_eq!(added.status(), 201);
    let added: Value = added.json().await.expect("repo");
    assert_eq!(added["full_name"], format!("{ORG}/brand-new"));
    assert_eq!(added["stargazers_count"], 7);

    let pages = app
        .walk_pages(&format!("/orgs/{ORG}/repos?per_page=100"))
        .await;
    let listed: Vec<String> = pages.iter().flat_map(|(_, items)| names(items)).collect();
    assert_eq!(listed.len(), REPOS + 1);
    assert_eq!(listed.last().map(String::as_str), Some("brand-new"));
    assert_eq!(
        app.get_json(&format!("/orgs/{ORG}")).await["public_repos"],
        REPOS + 1
    );

    let again = app
        .control
        .send(
            reqwest::Method::POST,
            &format!("/orgs/{ORG}/repos"),
            Some(json!({"name": "BRAND-NEW"})),
        )
        .await;
    assert_eq!(again.status(), 422);
    let no_org = app
        .control
        .send(
            reqwest::Method::POST,
            "/orgs/nobody/repos",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(no_org.status(), 404);

    let deleted = app
        .control
        .send(Method::DELETE, &format!("/repos/{ORG}/brand-new"), None)
        .await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        app.get(&format!("/repos/{ORG}/brand-new")).await.status(),
        404
    );
    assert_eq!(dataset_repo_names(&app).await.len(), REPOS);
    let again = app
        .control
        .send(Method::DELETE, &format!("/repos/{ORG}/brand-new"), None)
        .await;
    assert_eq!(again.status(), 404);
}
