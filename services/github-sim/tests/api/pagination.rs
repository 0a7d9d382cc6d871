//! Pagination like GitHub: page sizes, `Link` relations by org id, the end of a list.

use serde_json::Value;

use crate::helpers::{ORG, REPOS, dataset_repo_names, link, names, org_id, spawn_app};

#[tokio::test]
async fn default_page_is_30_items_with_next_and_last_links_by_org_id() {
    let app = spawn_app().await;
    let id = org_id(&app).await;

    let response = app.get(&format!("/orgs/{ORG}/repos")).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let items: Vec<Value> = response.json().await.expect("page");

    assert_eq!(items.len(), 30);
    // The default base URL is the bound host and port.
    let base = format!("http://127.0.0.1:{}/organizations/{id}/repos", app.port);
    assert_eq!(link(&headers, "next"), Some(format!("{base}?page=2")));
    assert_eq!(
        link(&headers, "last"),
        Some(format!("{base}?page={}", REPOS / 30))
    );
    assert_eq!(link(&headers, "prev"), None);
    assert_eq!(link(&headers, "first"), None);
}

#[tokio::test]
async fn per_page_above_100_is_clamped_and_kept_in_links() {
    let app = spawn_app().await;

    let response = app.get(&format!("/orgs/{ORG}/repos?per_page=500")).await;
    let next = link(response.headers(), "next").expect("next link");
    let items: Vec<Value> = response.json().await.expect("page");

    assert_eq!(items.len(), 100);
    assert!(next.ends_with("/repos?per_page=500&page=2"), "{next}");
}

#[tokio::test]
async fn links_followed_to_the_end_cover_the_whole_list_in_order() {
    let app = spawn_app().await;
    let id = org_id(&app).await;
    let expected = dataset_repo_names(&app).await;
    assert_eq!(expected.len(), REPOS);

    let pages = app
        .walk_pages(&format!("/orgs/{ORG}/repos?per_page=7&type=all"))
        .await;

    assert_eq!(pages.len(), REPOS.div_ceil(7));
    for (url, _) in &pages[1..] {
        let by_id = format!(
            "{}/organizations/{id}/repos?per_page=7&type=all&page=",
            app.address
        );
        assert!(url.starts_with(&by_id), "{url}");
    }
    let merged: Vec<String> = pages.iter().flat_map(|(_, items)| names(items)).collect();
    assert_eq!(merged, expected);

    let by_hundreds: Vec<String> = app
        .walk_pages(&format!("/orgs/{ORG}/repos?per_page=100"))
        .await
        .iter()
        .flat_map(|(_, items)| names(items))
        .collect();
    assert_eq!(by_hundreds, expected);
}

#[tokio::test]
async fn last_page_links_back_and_pages_past_the_end_are_empty() {
    let app = spawn_app().await;
    let id = org_id(&app).await;
    let base = format!("{}/organizations/{id}/repos", app.address);

    let last = app
        .get(&format!("/organizations/{id}/repos?per_page=100&page=2"))
        .await;
    assert_eq!(link(last.headers(), "next"), None);
    assert_eq!(link(last.headers(), "last"), None);
    assert_eq!(
        link(last.headers(), "prev"),
        Some(format!("{base}?per_page=100&page=1"))
    );
    assert_eq!(
        link(last.headers(), "first"),
        Some(format!("{base}?per_page=100&page=1"))
    );
    let items: Vec<Value> = last.json().await.expect("page");
    assert_eq!(items.len(), REPOS - 100);

    let past = app
        .get(&format!("/orgs/{ORG}/repos?per_page=100&page=9"))
        .await;
    assert_eq!(past.status(), 200);
    assert_eq!(
        link(past.headers(), "prev"),
        Some(format!("{base}?per_page=100&page=8"))
    );
    assert_eq!(link(past.headers(), "next"), None);
    assert_eq!(past.text().await.expect("body"), "[]");
}

#[tokio::test]
async fn invalid_or_zero_page_means_page_one() {
    let app = spawn_app().await;
    let first = app
        .get(&format!("/orgs/{ORG}/repos"))
        .await
        .text()
        .await
        .expect("body");

    for query in ["page=0", "page=abc", "page=-3", "per_page=0"] {
        let body = app
            .get(&format!("/orgs/{ORG}/repos?{query}"))
            .await
            .text()
            .await
            .expect("body");
        assert_eq!(body, first, "{query}");
    }
}

#[tokio::test]
async fn short_lists_have_no_link_header() {
    let app = spawn_app().await;

    let members = app.get(&format!("/orgs/{ORG}/members?per_page=100")).await;
    assert!(members.headers().get("link").is_none());
    let members: Vec<Value> = members.json().await.expect("members");
    assert_eq!(members.len(), 40);

    let login = members[0]["login"].as_str().expect("login");
    let orgs = app.get(&format!("/users/{login}/orgs")).await;
    assert!(orgs.headers().get("link").is_none());
    let orgs: Vec<Value> = orgs.json().await.expect("orgs");
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0]["login"], ORG);
}

#[tokio::test]
async fn member_pages_are_linked_by_org_id_too() {
    let app = spawn_app().await;
    let id = org_id(&app).await;

    let response = app
        .get(&format!("/orgs/{}/members?per_page=25", ORG.to_uppercase()))
        .await;
    let next = link(response.headers(), "next").expect("next");
    assert_eq!(
        next,
        format!(
            "{}/organizations/{id}/members?per_page=25&page=2",
            app.address
        )
    );
    let second: Vec<Value> = app.get_json(&next).await.as_array().cloned().expect("page");
    assert_eq!(second.len(), 15);
}
