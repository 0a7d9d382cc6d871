//! The coalescing cache's rules seen from outside, through the real gateway and github-sim:
//! shared errors, a shared fetch that outlives its first client, keys that never block each
//! other, the entry and byte bounds, the cache key's `Accept` part, and per-response Link hosts.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{ORG, TestApp, cache_status, spawn_passthrough};

#[tokio::test]
async fn concurrent_waiters_share_one_upstream_error_which_is_not_cached() {
    let app = spawn_passthrough(None, &[], |_| {}).await;
    let path = app.sim_repo_paths().await.remove(0);
    // One slow 500: every request below arrives while it is in flight.
    app.sim
        .add_fault(json!({"status": 500, "count": 1, "delay_ms": 400, "path_prefix": path}))
        .await;
    let answers = join_all((0..50).map(|_| async {
        let response = app.get(&path).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("a JSON error");
        (status, body)
    }))
    .await;
    for (status, body) in &answers {
        assert_eq!(*status, 502, "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains("500")),
            "{body}"
        );
    }
    assert_eq!(
        app.sim.requests_to(&path).await,
        1,
        "50 waiters, one upstream request, one shared error"
    );
    // The error was not cached: the next request fetches again and succeeds.
    let response = app.get(&path).await;
    assert_eq!(response.status(), 200);
    assert_eq!(cache_status(&response), "hubcache; fwd=uri-miss; stored");
    assert_eq!(app.sim.requests_to(&path).await, 2);
}

#[tokio::test]
async fn the_shared_fetch_completes_and_is_stored_when_its_first_client_leaves() {
    let app = spawn_passthrough(None, &[], |_| {}).await;
    let path = app.sim_repo_paths().await.remove(1);
    app.sim
        .add_fault(json!({"delay_ms": 700, "path_prefix": path}))
        .await;
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(150))
        .build()
        .expect("client");
    let gone = impatient.get(format!("{}{path}", app.address)).send().await;
    assert!(
        gone.is_err_and(|e| e.is_timeout()),
        "the first client gave up"
    );
    // A second client arrives while the fetch is still in flight and joins it.
    let joined = app.get(&path).await;
    assert_eq!(joined.status(), 200);
    assert_eq!(cache_status(&joined), "hubcache; fwd=uri-miss; collapsed");
    let hit = app.get(&path).await;
    assert_eq!(cache_status(&hit), "hubcache; hit", "the answer was stored");
    assert_eq!(
        app.sim.requests_to(&path).await,
        1,
        "the departed client's fetch was neither cancelled nor repeated"
    );
}

#[tokio::test]
async fn a_slow_key_blocks_no_other_key() {
    let app = spawn_passthrough(None, &[], |_| {}).await;
    let paths = app.sim_repo_paths().await;
    let (slow, quick) = (paths[2].clone(), paths[3].clone());
    app.sim
        .add_fault(json!({"delay_ms": 3000, "path_prefix": slow}))
        .await;
    let waiting = {
        let app_address = app.address.clone();
        let client = app.client.clone();
        let slow = slow.clone();
        tokio::spawn(async move {
            client
                .get(format!("{app_address}{slow}"))
                .send()
                .await
                .expect("gateway")
                .status()
        })
    };
    // The slow fetch is in flight once github-sim has counted it (it counts a request when it
    // arrives, before the injected delay).
    app.sim
        .wait_for_requests(&slow, 1, Duration::from_secs(10))
        .await;
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(app.get(&quick).await.status(), 200);
    }
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "another key answered while the slow fetch was in flight ({:?})",
        started.elapsed()
    );
    assert!(!waiting.is_finished(), "the slow fetch was still running");
    assert_eq!(waiting.await.expect("task"), 200);
}

#[tokio::test]
async fn the_entry_bound_evicts_the_least_recently_used() {
    let app = spawn_passthrough(None, &[("CACHE_MAX_ENTRIES", "2")], |_| {}).await;
    let paths = app.sim_repo_paths().await;
    let (a, b, c) = (&paths[0], &paths[1], &paths[2]);
    app.get(a).await;
    app.get(b).await;
    assert_eq!(cache_status(&app.get(a).await), "hubcache; hit");
    // A third key evicts the least recently used one: b (a was just used).
    app.get(c).await;
    assert_eq!(cache_status(&app.get(a).await), "hubcache; hit");
    assert_eq!(
        cache_status(&app.get(b).await),
        "hubcache; fwd=uri-miss; stored",
        "b was evicted"
    );
    assert_eq!(app.sim.requests_to(a).await, 1);
    assert_eq!(app.sim.requests_to(b).await, 2);
    let health: Value = app.get("/healthcheck").await.json().await.expect("json");
    assert_eq!(health["pass_through"]["entries"], 2, "{health}");
}

async fn cached_bytes(app: &TestApp) -> u64 {
    let health: Value = app.get("/healthcheck").await.json().await.expect("json");
    health["pass_through"]["bytes"].as_u64().expect("bytes")
}

#[tokio::test]
async fn the_byte_bound_evicts_and_never_holds_more_than_allowed() {
    // The weight of each of three answers, measured on an unbounded gateway.
    let probe = spawn_passthrough(None, &[], |_| {}).await;
    let paths = probe.sim_repo_paths().await;
    let (a, b, c) = (&paths[0], &paths[1], &paths[2]);
    let mut weights = Vec::new();
    for path in [a, b, c] {
        let before = cached_bytes(&probe).await;
        probe.get(path).await;
        weights.push(cached_bytes(&probe).await - before);
    }
    // Room for the last two, not for all three.
    let bound = weights[1] + weights[2];

    let app = spawn_passthrough(None, &[("CACHE_MAX_BYTES", &bound.to_string())], |_| {}).await;
    for path in [a, b, c] {
        assert_eq!(
            cache_status(&app.get(path).await),
            "hubcache; fwd=uri-miss; stored"
        );
    }
    let health: Value = app.get("/healthcheck").await.json().await.expect("json");
    let counters = &health["pass_through"];
    assert_eq!(counters["bytes"].as_u64(), Some(bound), "{counters}");
    assert_eq!(counters["entries"], 2, "{counters}");
    assert_eq!(counters["evictions"], 1, "{counters}");
    assert_eq!(cache_status(&app.get(c).await), "hubcache; hit");
    assert_eq!(
        cache_status(&app.get(a).await),
        "hubcache; fwd=uri-miss; stored",
        "the least recently used entry went first"
    );
    assert!(cached_bytes(&app).await <= bound);
    assert_eq!(app.sim.requests_to(a).await, 2);
}

#[tokio::test]
async fn the_accept_header_is_part_of_the_cache_key() {
    let app = spawn_passthrough(None, &[], |_| {}).await;
    let path = app.sim_repo_paths().await.remove(4);
    let json = [("accept", "application/vnd.github+json")];
    let raw = [("accept", "application/vnd.github.raw+json")];
    assert_eq!(
        cache_status(&app.get_with(&path, &json).await),
        "hubcache; fwd=uri-miss; stored"
    );
    // Absent and */* mean GitHub's default type: the same entry.
    assert_eq!(cache_status(&app.get(&path).await), "hubcache; hit");
    assert_eq!(
        cache_status(&app.get_with(&path, &[("accept", "*/*")]).await),
        "hubcache; hit"
    );
    assert_eq!(
        cache_status(&app.get_with(&path, &raw).await),
        "hubcache; fwd=uri-miss; stored",
        "another media type is another entry"
    );
    assert_eq!(
        cache_status(&app.get_with(&path, &raw).await),
        "hubcache; hit"
    );
    assert_eq!(app.sim.requests_to(&path).await, 2);
}

#[tokio::test]
async fn link_headers_are_computed_per_response_from_each_requests_host() {
    let app = spawn_passthrough(None, &[], |_| {}).await;
    // A pass-through list (a query the snapshot cannot answer) with several pages.
    let path = format!("/orgs/{ORG}/repos?per_page=2&sort=full_name");
    let link = |response: &reqwest::Response| {
        response.headers()["link"]
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    let first = app.get_with(&path, &[("host", "one.example:8080")]).await;
    assert_eq!(cache_status(&first), "hubcache; fwd=uri-miss; stored");
    assert!(
        link(&first).starts_with("<http://one.example:8080/"),
        "{}",
        link(&first)
    );
    let second = app.get_with(&path, &[("host", "two.example")]).await;
    assert_eq!(cache_status(&second), "hubcache; hit");
    let second_link = link(&second);
    assert!(
        second_link.starts_with("<http://two.example/") && !second_link.contains("one.example"),
        "the stored entry keeps the upstream Link, rewritten for each response: {second_link}"
    );
    assert!(second_link.contains("rel=\"next\""), "{second_link}");
}

#[tokio::test]
async fn waiters_are_counted_as_coalesced_never_as_hits() {
    let app = spawn_passthrough(None, &[], |_| {}).await;
    let path = app.sim_repo_paths().await.remove(0);
    app.sim
        .add_fault(json!({"delay_ms": 400, "path_prefix": path}))
        .await;
    let statuses = join_all((0..20).map(|_| async { cache_status(&app.get(&path).await) })).await;
    let count = |wanted: &str| statuses.iter().filter(|s| *s == wanted).count() as u64;
    let health: Value = app.get("/healthcheck").await.json().await.expect("json");
    let counters = &health["pass_through"];
    assert_eq!(counters["misses"], 1, "{counters}");
    assert_eq!(
        counters["coalesced"].as_u64(),
        Some(count("hubcache; fwd=uri-miss; collapsed")),
        "{counters} {statuses:?}"
    );
    assert_eq!(
        counters["hits"].as_u64(),
        Some(count("hubcache; hit")),
        "only answers from a stored entry are hits: {counters} {statuses:?}"
    );
    assert!(
        counters["coalesced"].as_u64() >= Some(10),
        "most requests joined the in-flight fetch: {counters}"
    );
}

#[tokio::test]
async fn a_refreshed_entry_replaces_the_expired_one_without_leaking_its_accounting() {
    let app = spawn_passthrough(None, &[("CACHE_TTL_SECS", "1")], |s| {
        s.stale_while_revalidate_secs = 0;
    })
    .await;
    let paths = app.sim_repo_paths().await;
    app.get(&paths[0]).await;
    app.get(&paths[1]).await;
    let health: Value = app.get("/healthcheck").await.json().await.expect("json");
    let (entries, bytes) = (
        health["pass_through"]["entries"].clone(),
        health["pass_through"]["bytes"].clone(),
    );
    assert_eq!(entries, 2);
    // Both expire; each is refreshed in place (revalidated with its ETag), several times over.
    for round in 0..2 {
        // Expiry is what is tested: the clock has to pass the 1 s TTL.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        for path in &paths[..2] {
            assert_eq!(
                cache_status(&app.get(path).await),
                "hubcache; fwd=stale; fwd-status=304; stored",
                "round {round}: {path}"
            );
            assert_eq!(cache_status(&app.get(path).await), "hubcache; hit");
        }
    }
    let health: Value = app.get("/healthcheck").await.json().await.expect("json");
    assert_eq!(health["pass_through"]["entries"], entries, "{health}");
    assert_eq!(health["pass_through"]["bytes"], bytes, "{health}");
    assert_eq!(health["pass_through"]["evictions"], 0, "{health}");
}
