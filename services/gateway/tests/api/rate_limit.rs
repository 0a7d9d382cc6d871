use crate::helpers::{Options, spawn_with};

#[tokio::test]
async fn clients_over_their_budget_get_429_with_retry_after() {
    let app = spawn_with(Options {
        seed: true,
        rate_limit: Some((1, 3)),
        ..Options::default()
    })
    .await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..6 {
        let response = app.get("/orgs/acme").await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            limited = Some(response);
        }
    }
    assert_eq!(
        &statuses[..3],
        [200, 200, 200],
        "the burst is allowed: {statuses:?}"
    );
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    let limited = limited.expect("a 429");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = limited.json().await.expect("json error");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("rate limit")),
        "{body}"
    );

    // Health routes are exempt.
    for _ in 0..5 {
        assert_eq!(app.get("/livez").await.status(), 200);
        assert_eq!(app.get("/healthcheck").await.status(), 200);
    }
}
