//! The bad input sweep: hostile request targets and headers, and damaged data in Redis. Each
//! gets a clear error (or is skipped and reported), nothing crashes, nothing stored changes, and
//! the gateway goes on serving.
//!
//! Covered elsewhere: traversal, control bytes, absolute-form hosts and 8 KiB limits
//! (hygiene.rs), malformed view parameters (views.rs), slow clients (overload.rs).

use std::time::Duration;

use hubcache_shared::SnapshotKind;
use hubcache_shared::snapshot::{FIELD_BODY, FIELD_META};
use hubcache_testkit::eventually;

use crate::helpers::{ORG, members_body, org_body, spawn_app};

#[tokio::test]
async fn hostile_targets_and_headers_get_clear_errors_and_change_nothing() {
    let app = spawn_app().await;
    app.wait_ready().await;
    let org_key = app.keys.org(&app.org).snapshot(&format!("/orgs/{ORG}"));
    let stored_before = app.hash(&org_key).await;

    // Each: the raw request, and whether our JSON error is expected (heads that the HTTP parser
    // itself refuses get actix's bare status, or a closed connection).
    let huge_target = format!("/orgs/{}", "a".repeat(300 * 1024));
    let many_headers: String = (0..200).map(|i| format!("x-h{i}: v\r\n")).collect();
    let huge_header = format!("x-big: {}\r\n", "v".repeat(300 * 1024));
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "raw non-UTF-8 path",
            b"GET /orgs/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            false,
        ),
        (
            "encoded non-UTF-8 view count",
            b"GET /view/top/%ff/stars HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            true,
        ),
        (
            "encoded non-UTF-8 view name",
            b"GET /view/top/3/%c0%af HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            true,
        ),
        (
            "300 KiB target",
            format!("GET {huge_target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .into_bytes(),
            false,
        ),
        (
            "200 headers",
            format!("GET /orgs/{ORG} HTTP/1.1\r\nHost: x\r\n{many_headers}Connection: close\r\n\r\n")
                .into_bytes(),
            false,
        ),
        (
            "300 KiB header",
            format!("GET /orgs/{ORG} HTTP/1.1\r\nHost: x\r\n{huge_header}Connection: close\r\n\r\n")
                .into_bytes(),
            false,
        ),
        (
            "not HTTP at all",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec(),
            false,
        ),
        (
            "unknown method on a cached key",
            format!("BREW /orgs/{ORG} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .into_bytes(),
            true,
        ),
        (
            "2 MB body on a GET",
            format!(
                "GET /orgs/{ORG} HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nConnection: close\r\n\r\n{}",
                "b".repeat(2_000_000)
            )
            .into_bytes(),
            true,
        ),
    ];
    for (what, request, ours) in cases {
        let (status, body) = app.raw_bytes(&request).await;
        eprintln!("bad input: {what}: {status:?}");
        if let Some(status) = status {
            assert!(
                (400..500).contains(&status),
                "{what}: a client error, not {status}: {body}"
            );
        }
        if ours {
            assert!(status.is_some(), "{what}: answered");
            let json: serde_json::Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{what}: a JSON error ({e}): {body:?}"));
            assert!(json["message"].is_string(), "{what}: {json}");
        }
    }

    // A header value with bytes outside ASCII is carried, not fatal.
    let (status, body) = app
        .raw_bytes(
            format!("GET /orgs/{ORG} HTTP/1.1\r\nHost: x\r\nx-odd: caf\u{e9}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
    assert_eq!(status, Some(200), "{body}");

    // Still serving, the same data; nothing stored was touched.
    assert_eq!(app.get_text(&format!("/orgs/{ORG}")).await, org_body(1));
    assert_eq!(app.get("/healthcheck").await.status(), 200);
    assert_eq!(app.hash(&org_key).await, stored_before);
}

#[tokio::test]
async fn damaged_snapshots_views_and_events_in_redis_are_skipped_and_the_served_copies_kept() {
    let app = spawn_app().await;
    app.wait_ready().await;
    let org_path = format!("/orgs/{ORG}");
    let members_path = format!("/orgs/{ORG}/members");
    let views_before = app.get_text("/view/top/7/stars").await;

    // A snapshot whose body no longer matches its hash, announced by a well-formed event.
    app.redis_cmd(
        redis::cmd("HSET")
            .arg(app.keys.org(&app.org).snapshot(&org_path))
            .arg(FIELD_BODY)
            .arg("{\"login\":\"tampered\""),
    )
    .await;
    // A snapshot whose meta is not JSON.
    app.redis_cmd(
        redis::cmd("HSET")
            .arg(app.keys.org(&app.org).snapshot("/"))
            .arg(FIELD_META)
            .arg("{not json"),
    )
    .await;
    for fields in [
        vec![
            ("path", org_path.as_str()),
            ("version", "2"),
            ("content_hash", "x"),
            ("at_ms", "1"),
        ],
        vec![
            ("path", "/"),
            ("version", "2"),
            ("content_hash", "y"),
            ("at_ms", "1"),
        ],
        // Entries with missing or garbled fields.
        vec![("garbage", "1")],
        vec![("path", org_path.as_str()), ("version", "two")],
        vec![
            ("path", "/not/cached"),
            ("version", "3"),
            ("content_hash", "z"),
            ("at_ms", "1"),
        ],
    ] {
        let mut xadd = redis::cmd("XADD");
        xadd.arg(app.keys.org(&app.org).refresh_stream()).arg("*");
        for (k, v) in fields {
            xadd.arg(k).arg(v);
        }
        app.redis_cmd(&xadd).await;
    }
    // Views that are not JSON, announced twice (once garbled).
    app.redis_cmd(
        redis::cmd("HSET")
            .arg(app.keys.org(&app.org).views())
            .arg("stars")
            .arg("[[\"acme/x\",")
            .arg("version")
            .arg("2"),
    )
    .await;
    app.redis_cmd(
        redis::cmd("XADD")
            .arg(app.keys.org(&app.org).views_stream())
            .arg("*")
            .arg("version")
            .arg("2")
            .arg("at_ms")
            .arg("1"),
    )
    .await;
    app.redis_cmd(
        redis::cmd("XADD")
            .arg(app.keys.org(&app.org).views_stream())
            .arg("*")
            .arg("version")
            .arg("-1"),
    )
    .await;
    let damaged_org = app.hash(&app.keys.org(&app.org).snapshot(&org_path)).await;

    // A good change after the damage: the listener went past every bad entry.
    let members_v2 = members_body().replace("cy", "dee");
    app.seed_snapshot(&members_path, SnapshotKind::List, &members_v2, 2)
        .await;
    eventually(
        Duration::from_secs(10),
        "the good change served",
        || async { (app.get_text(&members_path).await == members_v2).then_some(()) },
    )
    .await
    .expect("events after the damaged ones are followed");

    let response = app.get(&org_path).await;
    assert_eq!(
        response.headers()["cache-status"],
        "hubcache; hit",
        "not stale"
    );
    assert_eq!(
        response.text().await.expect("body"),
        org_body(1),
        "served copy kept"
    );
    assert!(app.get_text("/").await.contains("current_user_url"));
    assert_eq!(app.get_text("/view/top/7/stars").await, views_before);
    let health: serde_json::Value = app.get("/healthcheck").await.json().await.expect("json");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["redis"], "reachable", "{health}");
    assert_eq!(
        app.hash(&app.keys.org(&app.org).snapshot(&org_path)).await,
        damaged_org,
        "the gateway never writes a snapshot"
    );

    // A gateway starting now, over the damage: it serves what is intact, says what is missing,
    // and picks up the repair when the fetcher writes the next version.
    let fresh = app.other_gateway().await;
    let response = app.get_from(&fresh.address, "/healthcheck").await;
    assert_eq!(response.status(), 503);
    let health: serde_json::Value = response.json().await.expect("json");
    let missing = health["missing"].to_string();
    assert!(
        missing.contains(&format!("\"{org_path}\"")) && missing.contains("views"),
        "{health}"
    );
    assert_eq!(app.get_from(&fresh.address, &org_path).await.status(), 503);
    assert_eq!(
        app.get_from(&fresh.address, &members_path)
            .await
            .text()
            .await
            .expect("body"),
        members_v2
    );
    assert_eq!(app.get_from(&fresh.address, "/livez").await.status(), 200);
    app.seed_all(3).await;
    eventually(Duration::from_secs(10), "the repair served", || async {
        (app.get_from(&fresh.address, "/healthcheck").await.status() == 200).then_some(())
    })
    .await
    .expect("the new gateway heals once the data is repaired");
    let repaired = app.get_from(&fresh.address, &org_path).await;
    assert_eq!(repaired.text().await.expect("body"), org_body(3));
}
