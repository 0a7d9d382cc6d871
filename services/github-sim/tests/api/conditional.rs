//! ETags and conditional requests: 304s are empty and free; a mutation changes only the ETags of
//! the bodies it touches.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{ORG, header, header_u64, spawn_app};

#[tokio::test]
async fn every_200_carries_the_weak_sha256_etag_of_its_body() {
    let app = spawn_app().await;

    for target in [
        "/",
        "/orgs/Netflix",
        "/orgs/Netflix/repos?page=3",
        "/orgs/Netflix/members",
    ] {
        let response = app.get(target).await;
        assert_eq!(response.status(), 200);
        let etag = header(response.headers(), "etag").to_owned();
        let body = response.bytes().await.expect("body");
        assert_eq!(
            etag,
            format!("W/\"{}\"", hex::encode(Sha256::digest(&body))),
            "{target}"
        );
    }
}

#[tokio::test]
async fn matching_if_none_match_is_an_empty_304_that_costs_nothing() {
    let app = spawn_app().await;
    let target = format!("/orgs/{ORG}/repos?per_page=100");
    let first = app.get(&target).await;
    let etag = header(first.headers(), "etag").to_owned();
    let remaining = header_u64(first.headers(), "x-ratelimit-remaining");
    let strong = etag.trim_start_matches("W/").to_owned();

    for if_none_match in [
        etag.clone(),
        strong,
        format!("\"other\", {etag}"),
        "*".to_owned(),
    ] {
        let response = app
            .get_with(&target, &[("if-none-match", &if_none_match)])
            .await;
        assert_eq!(response.status(), 304, "{if_none_match}");
        assert_eq!(header(response.headers(), "etag"), etag);
        assert_eq!(
            header_u64(response.headers(), "x-ratelimit-remaining"),
            remaining
        );
        assert!(response.bytes().await.expect("body").is_empty());
    }
    let stats = app.control.stats().await;
    assert_eq!(stats["not_modified"], 4);
    assert_eq!(stats["rate_limit_used"], 1);

    let stale = app
        .get_with(&target, &[("if-none-match", "W/\"0000\"")])
        .await;
    assert_eq!(stale.status(), 200);
    assert_eq!(
        header_u64(stale.headers(), "x-ratelimit-remaining"),
        remaining - 1
    );
}

#[tokio::test]
async fn if_modified_since_the_last_modified_date_is_304() {
    let app = spawn_app().await;
    let org = app.get(&format!("/orgs/{ORG}")).await;
    let last_modified = header(org.headers(), "last-modified").to_owned();

    let response = app
        .get_with(
            &format!("/orgs/{ORG}"),
            &[("if-modified-since", &last_modified)],
        )
        .await;
    assert_eq!(response.status(), 304);
    let older = app
        .get_with(
            &format!("/orgs/{ORG}"),
            &[("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")],
        )
        .await;
    assert_eq!(older.status(), 200);
}

#[tokio::test]
async fn a_patch_changes_the_etag_of_the_pages_holding_the_repo_only() {
    let app = spawn_app().await;
    let pages = ["page=1", "page=2", "page=3", "page=4", "page=5"];
    let mut before = Vec::new();
    for page in pages {
        let response = app.get(&format!("/orgs/{ORG}/repos?{page}")).await;
        before.push(header(response.headers(), "etag").to_owned());
    }
    let page_two: Vec<Value> = app
        .get_json(&format!("/orgs/{ORG}/repos?page=2"))
        .await
        .as_array()
        .cloned()
        .expect("page");
    let name = page_two[10]["name"].as_str().expect("name").to_owned();

    let patched = app
        .control
        .send(
            reqwest::Method::PATCH,
            &format!("/repos/{ORG}/{name}"),
            Some(json!({"stargazers_count": 99999})),
        )
        .await;
    assert_eq!(patched.status(), 200);

    for (index, page) in pages.iter().enumerate() {
        let response = app.get(&format!("/orgs/{ORG}/repos?{page}")).await;
        let etag = header(response.headers(), "etag");
        if index == 1 {
            assert_ne!(etag, before[index], "the patched page changes");
        } else {
            assert_eq!(etag, before[index], "{page} is untouched");
        }
    }
    let page_two: Vec<Value> = app
        .get_json(&format!("/orgs/{ORG}/repos?page=2"))
        .await
        .as_array()
        .cloned()
        .expect("page");
    assert_eq!(page_two[10]["stargazers_count"], 99999);
    let full = app.get_json(&format!("/repos/{ORG}/{name}")).await;
    assert_eq!(full["stargazers_count"], 99999);
    let stale = app
        .get_with(
            &format!("/orgs/{ORG}/repos?page=2"),
            &[("if-none-match", &before[1])],
        )
        .await;
    assert_eq!(stale.status(), 200);
}

#[tokio::test]
async fn cache_control_is_private_with_authorization_and_stats_count_it() {
    let app = spawn_app().await;

    let anonymous = app.get(&format!("/orgs/{ORG}")).await;
    assert_eq!(
        header(anonymous.headers(), "cache-control"),
        "public, max-age=60, s-maxage=60"
    );
    let authorized = app
        .get_with(
            &format!("/orgs/{ORG}"),
            &[("authorization", "Bearer secret-token")],
        )
        .await;
    assert_eq!(
        header(authorized.headers(), "cache-control"),
        "private, max-age=60, s-maxage=60"
    );
    assert_eq!(
        header(authorized.headers(), "vary"),
        "Accept, Authorization, Cookie, X-GitHub-OTP"
    );

    let stats = app.control.stats().await;
    assert_eq!(stats["authorization_seen"], 1);
    assert!(!stats.to_string().contains("secret-token"));
}
