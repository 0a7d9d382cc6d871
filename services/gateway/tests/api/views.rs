use crate::helpers::spawn_app;

#[tokio::test]
async fn top_and_bottom_use_the_seeds_exact_text_format() {
    let app = spawn_app().await;
    let response = app.get("/view/top/2/stars").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(response.headers()["cache-status"], "hubcache; hit");
    assert!(response.headers().contains_key("etag"));
    assert_eq!(
        response.text().await.expect("body"),
        r#"[["acme/r0", 100], ["acme/r1", 99]]"#
    );
    assert_eq!(
        app.get_text("/view/bottom/2/forks").await,
        r#"[["acme/r5", 95], ["acme/r6", 94]]"#,
        "bottom N: the last entries, still descending"
    );
    assert_eq!(
        app.get_text("/view/top/1/last_updated").await,
        r#"[["acme/r0", "2024-01-09T00:00:00Z"]]"#
    );
    let all = app.get_text("/view/top/1000/watchers").await;
    assert_eq!(
        all,
        app.get_text("/view/top/7/watchers").await,
        "N beyond the view is the whole view"
    );
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&all)
            .expect("json")
            .len(),
        7
    );
    assert_eq!(
        app.get_text("/view/bottom/99/stars/").await,
        app.get_text("/view/top/99/stars").await
    );
}

#[tokio::test]
async fn n_must_be_a_positive_integer() {
    let app = spawn_app().await;
    for bad in [
        "0",
        "-1",
        "abc",
        "1.5",
        "99999999999999999999999999999",
        "%2B3",
        "1e3",
    ] {
        for direction in ["top", "bottom"] {
            let response = app.get(&format!("/view/{direction}/{bad}/stars")).await;
            assert_eq!(response.status(), 400, "/view/{direction}/{bad}/stars");
            let body: serde_json::Value = response.json().await.expect("json error");
            assert!(
                body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("positive integer")),
                "{body}"
            );
        }
    }
}

#[tokio::test]
async fn unknown_views_are_404_json() {
    let app = spawn_app().await;
    for view in ["Stars", "nope", "stars_count"] {
        let response = app.get(&format!("/view/top/3/{view}")).await;
        assert_eq!(response.status(), 404, "{view}");
        let body: serde_json::Value = response.json().await.expect("json error");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("unknown view")),
            "{body}"
        );
    }
}
