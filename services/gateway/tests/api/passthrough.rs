//! The pass-through: one upstream request per key however many clients ask, fresh/stale/negative
//! caching, revalidation, credential partitions, method rules, URL rewriting and header hygiene,
//! through the real gateway with github-sim (or a recording upstream) behind it.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use hubcache_testkit::eventually;
use parking_lot::Mutex;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{ORG, TestApp, spawn_passthrough};

const SERVER_TOKEN: &str = "ghp_serverTokenForPassThroughTests";

/// A gateway over a fresh github-sim, with `configure` applied to its settings.
async fn spawn(vars: &[(&str, &str)], configure: impl FnOnce(&mut gateway::Settings)) -> TestApp {
    spawn_passthrough(None, vars, configure).await
}

/// A pass-through path of the sim: one of its repositories.
async fn repo_path(app: &TestApp, index: usize) -> String {
    app.sim_repo_paths().await.swap_remove(index)
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn concurrent_misses_cost_one_upstream_request_and_get_identical_answers() {
    let app = spawn(&[], |_| {}).await;
    let path = repo_path(&app, 0).await;
    // Slow upstream: every request arrives while the first fetch is in flight.
    app.sim
        .call(Method::POST, "/latency", Some(json!({"ms": 300})))
        .await;
    let answers = join_all((0..200).map(|_| async {
        let response = app.get(&path).await;
        let status = response.status().as_u16();
        let cache_status = header(&response, "cache-status").to_owned();
        (status, cache_status, response.bytes().await.expect("body"))
    }))
    .await;
    assert_eq!(
        app.sim.requests_to(&path).await,
        1,
        "200 concurrent misses, one upstream request"
    );
    let first = &answers[0].2;
    assert!(!first.is_empty());
    for (status, _, body) in &answers {
        assert_eq!(*status, 200);
        assert_eq!(body, first, "identical answers");
    }
    let stored = answers
        .iter()
        .filter(|a| a.1 == "hubcache; fwd=uri-miss; stored")
        .count();
    let collapsed = answers
        .iter()
        .filter(|a| a.1 == "hubcache; fwd=uri-miss; collapsed")
        .count();
    let hits = answers.iter().filter(|a| a.1 == "hubcache; hit").count();
    assert_eq!(stored, 1);
    assert_eq!(
        stored + collapsed + hits,
        200,
        "collapsed {collapsed}, hits {hits}"
    );
}

#[tokio::test]
async fn a_hit_costs_no_upstream_request() {
    let app = spawn(&[], |_| {}).await;
    let path = repo_path(&app, 1).await;
    let first = app.get(&path).await;
    assert_eq!(
        header(&first, "cache-status"),
        "hubcache; fwd=uri-miss; stored"
    );
    assert!(
        !header(&first, "x-ratelimit-remaining").is_empty(),
        "a live answer shows the rate limit"
    );
    let first = first.text().await.expect("body");
    let before = app.sim.stats().await["total"].clone();
    for _ in 0..5 {
        let hit = app.get(&path).await;
        assert_eq!(hit.status(), 200);
        assert_eq!(header(&hit, "cache-status"), "hubcache; hit");
        assert!(!header(&hit, "age").is_empty());
        assert!(
            header(&hit, "x-ratelimit-remaining").is_empty(),
            "stale rate-limit headers are not replayed"
        );
        assert_eq!(hit.text().await.expect("body"), first);
    }
    // HEAD shares the GET entry; query order and Accept spelling do not make new entries.
    assert_eq!(
        header(&app.head(&path).await, "cache-status"),
        "hubcache; hit"
    );
    let reordered = app
        .get_with(&format!("{path}?b=2&a=1"), &[("accept", "*/*")])
        .await;
    assert_eq!(
        header(&reordered, "cache-status"),
        "hubcache; fwd=uri-miss; stored"
    );
    let same = app.get(&format!("{path}?a=1&b=%32")).await;
    assert_eq!(header(&same, "cache-status"), "hubcache; hit");
    let after = app.sim.stats().await["total"].clone();
    assert_eq!(after.as_u64().expect("n"), before.as_u64().expect("n") + 1);
}

#[tokio::test]
async fn not_found_is_cached_for_the_negative_ttl_only() {
    let app = spawn(&[], |s| s.negative_ttl_secs = 1).await;
    let path = format!("/repos/{ORG}/does-not-exist");
    for _ in 0..3 {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 404);
        assert_eq!(
            response.json::<Value>().await.expect("json")["message"],
            "Not Found"
        );
    }
    assert_eq!(app.sim.requests_to(&path).await, 1);
    // After the negative TTL a request fetches again (in the background while stale).
    eventually(
        Duration::from_secs(5),
        "the negative entry expires",
        || async {
            assert_eq!(app.get(&path).await.status(), 404);
            (app.sim.requests_to(&path).await == 2).then_some(())
        },
    )
    .await
    .expect("refetched after the negative TTL");
    assert_eq!(app.sim.requests_to(&path).await, 2);
}

#[tokio::test]
async fn server_errors_are_not_cached_and_rate_limits_answer_503() {
    let app = spawn(&[], |_| {}).await;
    let path = repo_path(&app, 2).await;
    app.sim
        .add_fault(json!({"status": 500, "count": 1, "path_prefix": path}))
        .await;
    let failed = app.get(&path).await;
    assert_eq!(failed.status(), 502);
    let message = failed.json::<Value>().await.expect("json")["message"]
        .as_str()
        .expect("message")
        .to_owned();
    assert!(message.contains("500"), "{message}");
    let ok = app.get(&path).await;
    assert_eq!(ok.status(), 200, "the 500 was not cached");
    assert_eq!(app.sim.requests_to(&path).await, 2);

    let other = repo_path(&app, 3).await;
    app.sim
        .add_fault(json!({"status": 429, "count": 1, "retry_after": 9, "path_prefix": other}))
        .await;
    let limited = app.get(&other).await;
    assert_eq!(limited.status(), 503);
    assert_eq!(header(&limited, "retry-after"), "9");
    let message = limited.json::<Value>().await.expect("json")["message"]
        .as_str()
        .expect("message")
        .to_owned();
    assert!(message.contains("429"), "{message}");
}

#[tokio::test]
async fn stale_if_error_serves_the_stale_copy_with_a_warning() {
    let app = spawn(&[("CACHE_TTL_SECS", "1")], |s| {
        s.stale_while_revalidate_secs = 0;
        s.stale_if_error_secs = 60;
    })
    .await;
    let path = repo_path(&app, 0).await;
    let original = app.get_text(&path).await;
    app.sim
        .add_fault(json!({"status": 503, "path_prefix": path}))
        .await;
    let stale = eventually(Duration::from_secs(5), "the entry expires", || async {
        let response = app.get(&path).await;
        (header(&response, "cache-status") == "hubcache; hit; fwd=stale").then_some(response)
    })
    .await
    .expect("stale copy served");
    assert_eq!(stale.status(), 200);
    assert!(
        header(&stale, "warning").starts_with("111"),
        "{:?}",
        stale.headers()
    );
    assert_eq!(stale.text().await.expect("body"), original);
    app.sim.clear_faults().await;
}

#[tokio::test]
async fn stale_while_revalidate_answers_at_once_and_refreshes_once() {
    let app = spawn(&[("CACHE_TTL_SECS", "1")], |s| {
        s.stale_while_revalidate_secs = 30
    })
    .await;
    let path = repo_path(&app, 4).await;
    app.get_text(&path).await;
    // A slow refresh: the stale answers must not wait for it.
    app.sim
        .call(Method::POST, "/latency", Some(json!({"ms": 1000})))
        .await;
    eventually(Duration::from_secs(5), "the entry goes stale", || async {
        (header(&app.get(&path).await, "cache-status") == "hubcache; hit; fwd=stale").then_some(())
    })
    .await
    .expect("stale answer");
    let started = std::time::Instant::now();
    let answers = join_all((0..20).map(|_| app.get(&path))).await;
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "stale answers do not wait for the refresh"
    );
    for response in &answers {
        assert_eq!(header(response, "cache-status"), "hubcache; hit; fwd=stale");
        assert!(header(response, "warning").starts_with("110"));
    }
    eventually(Duration::from_secs(5), "refreshed entry", || async {
        (header(&app.get(&path).await, "cache-status") == "hubcache; hit").then_some(())
    })
    .await
    .expect("the background refresh stored a fresh entry");
    assert_eq!(
        app.sim.requests_to(&path).await,
        2,
        "one background refresh for 20 stale answers"
    );
}

#[tokio::test]
async fn revalidation_with_the_etag_costs_no_rate_limit() {
    let app = spawn(&[("CACHE_TTL_SECS", "1")], |s| {
        s.stale_while_revalidate_secs = 0;
    })
    .await;
    let path = repo_path(&app, 1).await;
    let first = app.get(&path).await;
    let etag = header(&first, "etag").to_owned();
    let body = first.text().await.expect("body");
    let used = app.sim.stats().await["rate_limit_used"]
        .as_u64()
        .expect("used");
    // Hits until the entry expires (they cost nothing), then one revalidation.
    let revalidated = eventually(Duration::from_secs(5), "a revalidation", || async {
        let response = app.get(&path).await;
        (header(&response, "cache-status") == "hubcache; fwd=stale; fwd-status=304; stored")
            .then_some(response)
    })
    .await
    .expect("the expired entry is revalidated");
    assert_eq!(
        revalidated.text().await.expect("body"),
        body,
        "the stored body is kept"
    );
    let stats = app.sim.stats().await;
    assert_eq!(stats["not_modified"], 1, "{stats}");
    assert_eq!(
        stats["rate_limit_used"].as_u64(),
        Some(used),
        "a 304 spends nothing"
    );
    // Fresh again: a hit; and the client's own If-None-Match gets a 304 from the gateway.
    let conditional = app.get_with(&path, &[("if-none-match", &etag)]).await;
    assert_eq!(conditional.status(), 304);
    assert_eq!(header(&conditional, "cache-status"), "hubcache; hit");
    assert_eq!(app.sim.requests_to(&path).await, 2);
}

#[tokio::test]
async fn client_credentials_get_their_own_partition() {
    let app = spawn(&[("GITHUB_API_TOKEN", SERVER_TOKEN)], |_| {}).await;
    let path = repo_path(&app, 0).await;
    let as_a = [("authorization", "token client-a")];
    let as_b = [("authorization", "token client-b")];
    assert_eq!(
        header(&app.get_with(&path, &as_a).await, "cache-status"),
        "hubcache; fwd=uri-miss; stored"
    );
    assert_eq!(
        header(&app.get_with(&path, &as_a).await, "cache-status"),
        "hubcache; hit"
    );
    // Neither another client nor an anonymous one gets A's answer.
    assert_eq!(
        header(&app.get_with(&path, &as_b).await, "cache-status"),
        "hubcache; fwd=uri-miss; stored"
    );
    assert_eq!(
        header(&app.get(&path).await, "cache-status"),
        "hubcache; fwd=uri-miss; stored"
    );
    assert_eq!(
        header(&app.get(&path).await, "cache-status"),
        "hubcache; hit"
    );
    let stats = app.sim.stats().await;
    assert_eq!(stats["by_path"][&path], 3, "{stats}");
    // A, B, and the anonymous fetch with the server token each carried one credential.
    assert_eq!(stats["authorization_seen"], 3, "{stats}");

    let no_token = spawn(
        &[
            ("GITHUB_API_TOKEN", SERVER_TOKEN),
            ("PASSTHROUGH_USE_SERVER_TOKEN", "false"),
        ],
        |_| {},
    )
    .await;
    no_token.get_text(&path).await;
    assert_eq!(
        no_token.sim.stats().await["authorization_seen"],
        0,
        "server token switched off"
    );
}

#[tokio::test]
async fn other_methods_need_the_clients_own_credential() {
    let app = spawn(&[("GITHUB_API_TOKEN", SERVER_TOKEN)], |_| {}).await;
    let url = format!("{}/repos/{ORG}/x/issues", app.address);
    let refused = app
        .client
        .post(&url)
        .body("{}")
        .send()
        .await
        .expect("gateway");
    assert_eq!(refused.status(), 405);
    assert_eq!(header(&refused, "allow"), "GET, HEAD");
    assert!(refused.json::<Value>().await.expect("json")["message"].is_string());
    assert_eq!(
        app.sim.stats().await["total"],
        0,
        "nothing was sent upstream"
    );

    let forwarded = app
        .client
        .post(&url)
        .header("authorization", "token client-own")
        .body(r#"{"title":"x"}"#)
        .send()
        .await
        .expect("gateway");
    assert_eq!(header(&forwarded, "cache-status"), "hubcache; fwd=bypass");
    assert_eq!(
        forwarded.status(),
        404,
        "github-sim's answer to a POST is passed on"
    );
    let stats = app.sim.stats().await;
    assert_eq!(stats["by_method"]["POST"], 1, "{stats}");
    assert_eq!(stats["authorization_seen"], 1);
    // Never cached: a second POST is forwarded again.
    app.client
        .post(&url)
        .header("authorization", "token client-own")
        .send()
        .await
        .expect("gateway");
    assert_eq!(app.sim.stats().await["by_method"]["POST"], 2);
    // Bodies are bounded: an oversized one is refused before anything goes upstream.
    let huge = app
        .client
        .post(&url)
        .header("authorization", "token client-own")
        .body(vec![b'x'; 2 * 1024 * 1024])
        .send()
        .await
        .expect("gateway");
    assert_eq!(huge.status(), 413);
    assert_eq!(app.sim.stats().await["by_method"]["POST"], 2);
}

#[tokio::test]
async fn public_url_rewrites_upstream_urls_in_bodies_only_when_set() {
    let plain = spawn(&[], |_| {}).await;
    let path = repo_path(&plain, 0).await;
    let upstream_body = plain
        .client
        .get(format!("{}{path}", plain.sim_url))
        .send()
        .await
        .expect("sim")
        .text()
        .await
        .expect("body");
    assert!(upstream_body.contains("https://api.github.com/"));
    assert_eq!(
        plain.get_text(&path).await,
        upstream_body,
        "served verbatim without PUBLIC_URL"
    );

    let public = spawn(&[("PUBLIC_URL", "https://cache.example.test")], |_| {}).await;
    let body = public.get_text(&path).await;
    assert!(!body.contains("https://api.github.com"), "{body}");
    let json: Value = serde_json::from_str(&body).expect("still valid JSON");
    let url = json["url"].as_str().expect("url");
    assert_eq!(url, format!("https://cache.example.test{path}"));
    assert!(
        json["html_url"]
            .as_str()
            .expect("html_url")
            .starts_with("https://github.com/")
    );
}

/// An upstream that records each request's head and answers with a fixed response, for what
/// github-sim cannot show: exact request headers, and hop-by-hop headers in answers.
struct RecordingUpstream {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl RecordingUpstream {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let base = url.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let recorded = Arc::clone(&recorded);
                let base = base.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; length];
                    let _ = stream.read_exact(&mut body).await;
                    recorded.lock().push(head);
                    let body = format!(
                        r#"{{"url":"{base}/repos/acme/x","gh":"https://api.github.com/users/u"}}"#
                    );
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\n\
                         connection: close, x-hop-secret\r\nx-hop-secret: 1\r\nkeep-alive: timeout=5\r\n\
                         proxy-authenticate: Basic\r\nset-cookie: session=upstream\r\netag: \"e1\"\r\n\
                         link: <{base}/repos/acme/x/issues?page=2>; rel=\"next\", <https://api.github.com/repos/acme/x/issues?page=5>; rel=\"last\"\r\n\
                         content-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { url, requests }
    }

    /// The recorded request heads (lowercased).
    fn heads(&self) -> Vec<String> {
        self.requests.lock().clone()
    }
}

fn header_values<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}:");
    head.lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .map(str::trim)
        .collect()
}

#[tokio::test]
async fn hop_by_hop_and_private_headers_are_stripped_both_ways() {
    let upstream = RecordingUpstream::start().await;
    let app = spawn_passthrough(Some(&upstream.url), &[], |_| {}).await;
    let response = app
        .get_with(
            "/repos/acme/x",
            &[
                ("connection", "keep-alive, x-github-api-version"),
                ("x-github-api-version", "2099-01-01"),
                ("te", "trailers"),
                ("proxy-authorization", "Basic c2VjcmV0"),
                ("cookie", "session=client"),
                ("x-forwarded-host", "evil.example"),
                ("x-forwarded-for", "10.0.0.1"),
                ("accept", "application/vnd.github.raw+json"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    for name in [
        "x-hop-secret",
        "keep-alive",
        "proxy-authenticate",
        "set-cookie",
    ] {
        assert!(
            response.headers().get(name).is_none(),
            "{name} leaked to the client"
        );
    }
    let heads = upstream.heads();
    assert_eq!(heads.len(), 1);
    let head = &heads[0];
    for name in [
        "te",
        "proxy-authorization",
        "cookie",
        "x-forwarded-host",
        "x-forwarded-for",
    ] {
        assert!(
            header_values(head, name).is_empty(),
            "{name} forwarded:\n{head}"
        );
    }
    // Named by Connection, so the client's value is dropped (the gateway's own default remains).
    assert_eq!(header_values(head, "x-github-api-version"), ["2022-11-28"]);
    assert_eq!(
        header_values(head, "accept"),
        ["application/vnd.github.raw+json"]
    );
    assert_eq!(
        header_values(head, "host"),
        [upstream.url.trim_start_matches("http://")]
    );
}

#[tokio::test]
async fn the_server_token_goes_only_with_anonymous_reads() {
    let upstream = RecordingUpstream::start().await;
    let app = spawn_passthrough(
        Some(&upstream.url),
        &[("GITHUB_API_TOKEN", SERVER_TOKEN)],
        |_| {},
    )
    .await;
    // An anonymous read of the org's own resource (the default token scope).
    app.get("/orgs/acme/teams").await;
    app.get_with("/users/own", &[("authorization", "token client-own")])
        .await;
    app.client
        .patch(format!("{}/repos/acme/x", app.address))
        .header("authorization", "token client-own")
        .body("{}")
        .send()
        .await
        .expect("gateway");
    // An anonymous read outside the scope goes without any credential.
    app.get("/users/anon").await;
    let heads = upstream.heads();
    assert_eq!(heads.len(), 4);
    let server = format!("bearer {}", SERVER_TOKEN.to_ascii_lowercase());
    assert_eq!(header_values(&heads[0], "authorization"), [server.as_str()]);
    assert_eq!(
        header_values(&heads[1], "authorization"),
        ["token client-own"],
        "only the client's"
    );
    assert!(heads[2].starts_with("patch "));
    assert_eq!(
        header_values(&heads[2], "authorization"),
        ["token client-own"],
        "only the client's"
    );
    assert!(header_values(&heads[3], "authorization").is_empty());

    let off = spawn_passthrough(
        Some(&upstream.url),
        &[
            ("GITHUB_API_TOKEN", SERVER_TOKEN),
            ("PASSTHROUGH_USE_SERVER_TOKEN", "false"),
        ],
        |_| {},
    )
    .await;
    off.get("/orgs/acme/teams").await;
    assert!(header_values(&upstream.heads()[4], "authorization").is_empty());
}

#[tokio::test]
async fn link_headers_point_at_the_gateway_and_bodies_follow_public_url() {
    let upstream = RecordingUpstream::start().await;
    let app = spawn_passthrough(Some(&upstream.url), &[], |_| {}).await;
    let response = app.get("/repos/acme/x/issues").await;
    let link = header(&response, "link").to_owned();
    assert_eq!(
        link,
        format!(
            "<{0}/repos/acme/x/issues?page=2>; rel=\"next\", <{0}/repos/acme/x/issues?page=5>; rel=\"last\"",
            app.address
        )
    );
    let body = response.text().await.expect("body");
    assert!(
        body.contains(&format!("{}/repos/acme/x", upstream.url)),
        "verbatim without PUBLIC_URL: {body}"
    );

    let public = spawn_passthrough(
        Some(&upstream.url),
        &[("PUBLIC_URL", "https://cache.example.test/")],
        |_| {},
    )
    .await;
    let response = public.get("/repos/acme/x/issues").await;
    assert!(
        header(&response, "link")
            .starts_with("<https://cache.example.test/repos/acme/x/issues?page=2>")
    );
    let json: Value = response.json().await.expect("valid JSON");
    assert_eq!(json["url"], "https://cache.example.test/repos/acme/x");
    assert_eq!(json["gh"], "https://cache.example.test/users/u");
}

#[tokio::test]
async fn the_token_never_appears_in_metrics_or_health() {
    let app = spawn(&[("GITHUB_API_TOKEN", SERVER_TOKEN)], |_| {}).await;
    let path = repo_path(&app, 0).await;
    app.get_text(&path).await;
    app.get_with(&path, &[("authorization", "token client-secret")])
        .await;
    app.get(&format!("/repos/{ORG}/nope")).await;
    assert!(
        app.sim.stats().await["authorization_seen"].as_u64() >= Some(2),
        "the token was in use"
    );
    // (/healthcheck is 503 here, no snapshots are seeded: its body still shows cache counters.)
    for page in ["/metrics", "/healthcheck"] {
        let text = app.get(page).await.text().await.expect("body");
        assert!(!text.is_empty(), "{page}");
        assert!(!text.contains(SERVER_TOKEN), "the server token in {page}");
        assert!(
            !text.contains("client-secret"),
            "a client credential in {page}"
        );
    }
}

#[tokio::test]
async fn gone_is_cached_like_not_found() {
    let app = spawn(&[], |s| s.negative_ttl_secs = 60).await;
    let path = repo_path(&app, 3).await;
    app.sim
        .add_fault(json!({"status": 410, "count": 1, "path_prefix": path}))
        .await;
    for _ in 0..3 {
        assert_eq!(app.get(&path).await.status(), 410);
    }
    assert_eq!(app.sim.requests_to(&path).await, 1, "the 410 was cached");
}
