use crate::helpers::{ORG, org_body, spawn_app};

fn proxied_client(app: &crate::helpers::TestApp) -> reqwest::Client {
    // An HTTP proxy setting makes the client send absolute-form targets, as `gh` does.
    reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(&app.address).expect("proxy url"))
        .build()
        .expect("client")
}

#[tokio::test]
async fn absolute_form_for_the_github_api_is_served_like_the_path() {
    let app = spawn_app().await;
    let client = proxied_client(&app);
    let response = client
        .get(format!("http://api.github.com/orgs/{ORG}"))
        .send()
        .await
        .expect("sent through the gateway");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-status"], "hubcache; hit");
    assert_eq!(response.text().await.expect("body"), org_body(1));

    // The configured upstream's own authority is accepted too.
    let response = client
        .get(format!("{}/orgs/{ORG}", app.sim_url))
        .send()
        .await
        .expect("sent through the gateway");
    assert_eq!(response.text().await.expect("body"), org_body(1));
}

#[tokio::test]
async fn absolute_form_for_other_hosts_is_refused() {
    let app = spawn_app().await;
    let client = proxied_client(&app);
    for url in [
        "http://example.com/orgs/acme",
        "http://api.github.com.evil.test/",
        "http://127.0.0.1:1/x",
    ] {
        let response = client
            .get(url)
            .send()
            .await
            .expect("answered by the gateway");
        assert_eq!(response.status(), 403, "{url}");
        let body: serde_json::Value = response.json().await.expect("json error");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("not an open proxy")),
            "{body}"
        );
    }
    let (status, _) = app
        .raw("CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn traversal_and_control_bytes_are_refused_with_json() {
    let app = spawn_app().await;
    for target in [
        "/orgs/acme/../../etc/passwd",
        "/orgs/%2e%2e/x",
        "/orgs/acme%2Frepos",
        "/repos/a/b/..",
        "/orgs/acme%00",
        "/orgs/%zz",
    ] {
        let (status, body) = app
            .raw(&format!(
                "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            ))
            .await;
        assert_eq!(status, 400, "{target}");
        assert!(body.contains("\"message\""), "{target}: {body}");
    }
}

#[tokio::test]
async fn oversized_targets_and_headers_are_clear_4xx() {
    let app = spawn_app().await;
    let long = format!("/orgs/{}", "a".repeat(9000));
    let response = app.get(&long).await;
    assert_eq!(response.status(), 414);
    assert!(response.text().await.expect("body").contains("\"message\""));

    let big = "v".repeat(9000);
    let response = app.get_with("/orgs/acme", &[("x-big", &big)]).await;
    assert_eq!(response.status(), 431);
    assert!(response.text().await.expect("body").contains("\"message\""));
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let a = app.get("/livez").await;
    let b = app.get("/view/top/1/stars").await;
    let id = |r: &reqwest::Response| {
        r.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    assert_eq!(id(&a).len(), 36, "a UUID");
    assert_ne!(id(&a), id(&b));
}

#[tokio::test]
async fn a_foreign_host_is_never_connected_to() {
    let app = spawn_app().await;
    // A listening server the request names: it must see no connection at all.
    let foreign = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let foreign_url = format!("http://{}", foreign.local_addr().expect("addr"));
    let response = proxied_client(&app)
        .get(format!("{foreign_url}/orgs/{ORG}"))
        .send()
        .await
        .expect("answered by the gateway");
    assert_eq!(response.status(), 403);
    // Neither may a Host or X-Forwarded-Host header steer the pass-through there.
    let response = app
        .get_with(
            "/users/someone",
            &[
                ("host", foreign_url.trim_start_matches("http://")),
                (
                    "x-forwarded-host",
                    foreign_url.trim_start_matches("http://"),
                ),
            ],
        )
        .await;
    assert_ne!(response.status(), 403, "an ordinary request");
    let accepted =
        tokio::time::timeout(std::time::Duration::from_millis(300), foreign.accept()).await;
    assert!(
        accepted.is_err(),
        "the gateway connected to the foreign host"
    );
}
