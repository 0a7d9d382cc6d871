//! End to end: github-sim → fetcher → Redis → views → gateway.

use std::time::Duration;

use hubcache_testkit::eventually;

use crate::helpers::spawn_pipeline;

async fn sim_list(app: &crate::helpers::TestApp, path: &str) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    for page in 1.. {
        let items = app
            .sim_json(&format!("{path}?per_page=100&page={page}"))
            .await
            .as_array()
            .cloned()
            .expect("a JSON array");
        if items.is_empty() {
            break;
        }
        all.extend(items);
    }
    all
}

#[tokio::test]
async fn the_gateway_serves_what_the_fetcher_and_views_stored_and_follows_changes() {
    let app = spawn_pipeline().await;
    app.wait_ready().await;

    let repos_path = format!("/orgs/{}/repos", app.org);
    let response = app.get(&repos_path).await;
    assert!(
        !response
            .headers()
            .keys()
            .any(|k| k.as_str().starts_with("x-ratelimit")),
        "upstream rate-limit headers are never served from a snapshot"
    );
    let served: Vec<serde_json::Value> = response.json().await.expect("merged array");
    let upstream = sim_list(&app, &repos_path).await;
    assert_eq!(served.len(), 150);
    assert_eq!(
        served, upstream,
        "the merged list is every upstream element, in order"
    );

    // GitHub's own next links (/organizations/{id}/repos) are served from the snapshot.
    let org: serde_json::Value =
        serde_json::from_str(&app.get_text(&format!("/orgs/{}", app.org)).await).expect("org");
    let id = org["id"].as_u64().expect("org id");
    let response = app
        .get(&format!("/organizations/{id}/repos?per_page=100&page=2"))
        .await;
    assert_eq!(response.headers()["cache-status"], "hubcache; hit");
    let page2: Vec<serde_json::Value> = response.json().await.expect("page");
    assert_eq!(page2, served[100..]);

    // Views match the data.
    let top: Vec<(String, i64)> =
        serde_json::from_str(&app.get_text("/view/top/1/stars").await).expect("view");
    let max = served
        .iter()
        .filter_map(|r| r["stargazers_count"].as_i64())
        .max()
        .expect("stars");
    assert_eq!(top[0].1, max);

    // A change upstream reaches the gateway (interval 1 s) without a restart.
    let name = served[42]["name"].as_str().expect("name").to_owned();
    app.sim
        .patch_repo(
            &app.org,
            &name,
            serde_json::json!({ "stargazers_count": 9_999_999 }),
        )
        .await;
    // Fetcher interval (1 s) + 1 s, with 1 s of slack for a busy CI machine.
    eventually(
        Duration::from_secs(3),
        "the list reflects the change",
        || async {
            let served: Vec<serde_json::Value> =
                serde_json::from_str(&app.get_text(&repos_path).await).ok()?;
            (served[42]["stargazers_count"] == 9_999_999).then_some(())
        },
    )
    .await
    .expect("cached keys follow upstream changes within the refresh interval");
    let expected = format!(r#"[["{}/{name}", 9999999]]"#, app.org);
    eventually(
        Duration::from_secs(2),
        "the view reflects the change",
        || async { (app.get_text("/view/top/1/stars").await == expected).then_some(()) },
    )
    .await
    .expect("views follow upstream changes");

    // Anything else goes through to GitHub (the simulator).
    let response = app.get(&format!("/repos/{}/{name}", app.org)).await;
    assert_eq!(response.status(), 200);
    let repo: serde_json::Value = response.json().await.expect("repo");
    assert_eq!(repo["name"], name.as_str());
}
