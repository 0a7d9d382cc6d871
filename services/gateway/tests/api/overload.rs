//! Overload: far more clients than the gateway can serve. Upstream work is bounded
//! (`MAX_UPSTREAM_FETCHES`): what does not fit is refused at once with 503 JSON and
//! `Retry-After`, never queued; copies served from memory are never refused; connections are
//! bounded (`MAX_CONNECTIONS`) and slow clients cannot hold them; and everything is served
//! normally as soon as the load drops.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use hubcache_testkit::eventually;
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{ORG, Options, org_body, spawn_with};

/// The resident set size of this test process (gateway, github-sim and clients), in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn far_more_clients_than_upstream_slots_are_shed_with_503_and_served_once_load_drops() {
    const SLOTS: usize = 4;
    const CLIENTS: usize = 400;
    let app = spawn_with(Options {
        seed: true,
        vars: vec![("MAX_UPSTREAM_FETCHES", SLOTS.to_string())],
        ..Options::default()
    })
    .await;
    app.wait_ready().await;
    // A slow upstream: every pass-through fetch holds its slot for 800 ms.
    app.sim
        .call(Method::POST, "/latency", Some(json!({ "ms": 800 })))
        .await;
    let upstream_before = app.sim.stats().await["total"].as_u64().unwrap_or(0);
    let rss_before = rss_kib();

    // Every client asks for a different uncached path: each would need its own upstream request.
    let started = Instant::now();
    let misses = join_all((0..CLIENTS).map(|i| {
        let app = &app;
        async move {
            let response = app.get(&format!("/repos/{ORG}/missing-{i}")).await;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body: serde_json::Value = response.json().await.expect("a JSON body");
            (status, retry_after, body)
        }
    }));
    // Meanwhile, the copies in memory are served as usual.
    let from_memory = async {
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(app.get(&format!("/orgs/{ORG}")).await.status().as_u16());
            statuses.push(app.get("/view/top/3/stars").await.status().as_u16());
        }
        statuses
    };
    let (misses, from_memory) = tokio::join!(misses, from_memory);
    let burst = started.elapsed();
    let rss_after = rss_kib();

    let served = misses.iter().filter(|(status, ..)| *status == 404).count();
    let shed: Vec<_> = misses
        .iter()
        .filter(|(status, ..)| *status == 503)
        .collect();
    let upstream = app.sim.stats().await["total"].as_u64().unwrap_or(0) - upstream_before;
    eprintln!(
        "overload: {CLIENTS} concurrent clients, {SLOTS} upstream slots, upstream latency 800 ms: \
         {served} answered from upstream, {} shed with 503 in {burst:?}; {upstream} upstream \
         requests; RSS {rss_before} KiB -> {rss_after} KiB",
        shed.len()
    );
    assert_eq!(
        served + shed.len(),
        CLIENTS,
        "every client gets the upstream answer (404) or a 503: {:?}",
        misses
            .iter()
            .map(|(s, ..)| *s)
            .filter(|s| *s != 404 && *s != 503)
            .collect::<Vec<_>>()
    );
    assert!(served >= SLOTS, "the slots were used: {served}");
    assert!(
        shed.len() >= CLIENTS / 2,
        "most of a burst {CLIENTS} wide is shed, not queued: {} shed",
        shed.len()
    );
    assert_eq!(
        upstream, served as u64,
        "a shed request costs no upstream request"
    );
    for (_, retry_after, body) in &shed {
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("overloaded")),
            "{body}"
        );
    }
    assert!(
        from_memory.iter().all(|s| *s == 200),
        "copies in memory are never shed: {from_memory:?}"
    );
    let health: serde_json::Value = app.get("/healthcheck").await.json().await.expect("json");
    assert_eq!(
        health["pass_through"]["overloaded"].as_u64(),
        Some(shed.len() as u64),
        "{health}"
    );

    // The load drops: every client is served again, including the ones that were shed.
    app.sim
        .call(Method::POST, "/latency", Some(json!({ "ms": 0 })))
        .await;
    for i in 0..CLIENTS {
        let response = app.get(&format!("/repos/{ORG}/missing-{i}")).await;
        assert_eq!(response.status(), 404, "missing-{i} after the burst");
    }
    assert_eq!(app.get_text(&format!("/orgs/{ORG}")).await, org_body(1));
}

/// Opens a connection that sends a request head one header line every 300 ms, forever.
/// Returns when the gateway closes it, with what the gateway sent (if anything).
/// `started` counts the slow clients whose connection is established and whose request line
/// is sent.
async fn slowloris(port: u16, started: &AtomicUsize) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut answer = Vec::new();
    let sent = stream
        .write_all(format!("GET /orgs/{ORG} HTTP/1.1\r\nHost: localhost\r\n").as_bytes())
        .await;
    started.fetch_add(1, Ordering::SeqCst);
    if sent.is_err() {
        return String::new();
    }
    let mut buf = [0u8; 1024];
    for i in 0.. {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
            () = tokio::time::sleep(Duration::from_millis(300)) => {
                if stream.write_all(format!("x-slow-{i}: 1\r\n").as_bytes()).await.is_err() {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn slow_clients_filling_every_connection_slot_are_cut_off_and_others_then_served() {
    // Two workers with two connections each.
    let app = spawn_with(Options {
        seed: true,
        vars: vec![
            ("MAX_CONNECTIONS", "4".to_owned()),
            ("WORKERS", "2".to_owned()),
        ],
        ..Options::default()
    })
    .await;
    let port = app.port;
    let started = Instant::now();
    let connected = Arc::new(AtomicUsize::new(0));
    let attackers: Vec<_> = (0..4)
        .map(|_| {
            let connected = Arc::clone(&connected);
            tokio::spawn(async move { (slowloris(port, &connected).await, started.elapsed()) })
        })
        .collect();
    // Every slow client is connected (ahead of the normal one in the accept queue) and has
    // sent its request line.
    eventually(
        Duration::from_secs(10),
        "4 slow clients connected",
        || async { (connected.load(Ordering::SeqCst) == 4).then_some(()) },
    )
    .await
    .expect("the slow clients connect");

    // A normal client: it waits (in the listen backlog) while the slow ones hold every slot,
    // and is served once the head timeout (5 s) has cut them off.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let asked = Instant::now();
    let response = client
        .get(format!("{}/orgs/{ORG}", app.address))
        .send()
        .await
        .expect("the normal client is served");
    let waited = asked.elapsed();
    assert_eq!(response.status(), 200);
    assert!(
        waited > Duration::from_secs(3),
        "the normal client waited for the slow ones to be cut off (head timeout 5 s), so they \
         did hold every slot: waited {waited:?}"
    );
    assert_eq!(response.text().await.expect("body"), org_body(1));

    let mut cut_after = Vec::new();
    for attacker in attackers {
        let (answer, after) = tokio::time::timeout(Duration::from_secs(20), attacker)
            .await
            .expect("every slow client is cut off")
            .expect("slowloris task");
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "a slow head gets 408 or a close: {answer:?}"
        );
        cut_after.push(after);
    }
    eprintln!(
        "slowloris: 4 slow clients holding all 4 connection slots were cut off after {cut_after:?}; \
         a normal client waited {waited:?} and was served"
    );
    for after in &cut_after {
        assert!(
            *after < Duration::from_secs(15),
            "the head timeout (5 s) bounds a slow client: {after:?}"
        );
    }
}

/// Sends a complete head announcing a body, then trickles the body one byte every 300 ms.
async fn slow_body(port: u16, target: &str) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: localhost\r\nAuthorization: token x\r\nContent-Length: 100000\r\n\r\n"
    );
    let mut answer = Vec::new();
    if stream.write_all(head.as_bytes()).await.is_err() {
        return (String::new(), started.elapsed());
    }
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
            () = tokio::time::sleep(Duration::from_millis(300)) => {
                if stream.write_all(b"x").await.is_err() {
                    break;
                }
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn slow_request_bodies_are_cut_off_with_408() {
    let app = spawn_with(Options {
        seed: true,
        ..Options::default()
    })
    .await;
    let (issues, org) = (format!("/repos/{ORG}/r0/issues"), format!("/orgs/{ORG}"));
    let (pass_through, cached) =
        tokio::join!(slow_body(app.port, &issues), slow_body(app.port, &org));
    eprintln!(
        "slow bodies: pass-through cut after {:?} ({:?}), cached key after {:?} ({:?})",
        pass_through.1,
        pass_through.0.lines().next(),
        cached.1,
        cached.0.lines().next()
    );
    for (answer, after) in [pass_through, cached] {
        // The body deadline is 10 s; the connection is closed after the answer.
        assert!(
            after < Duration::from_secs(25),
            "a slow body is cut off: {after:?}"
        );
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
        assert!(
            answer.contains(r#"{"message":"#),
            "a JSON error: {answer:?}"
        );
    }
    // Meanwhile and afterwards, everyone else is served.
    assert_eq!(app.get_text(&org).await, org_body(1));
}

#[tokio::test]
async fn a_client_that_stops_reading_a_large_answer_is_dropped() {
    // The whole pipeline: github-sim's 150 repos make a ~800 KB list, far more than a closed
    // receive window and the socket buffers hold.
    let app = spawn_with(Options {
        pipeline: true,
        client_stall_timeout_secs: Some(2),
        ..Options::default()
    })
    .await;
    app.wait_ready().await;
    let path = format!("/orgs/{}/repos", app.org);
    let full = app.get(&path).await.bytes().await.expect("body").len();

    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut stream = socket
        .connect(([127, 0, 0, 1], app.port).into())
        .await
        .expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("request");
    // Not reading at all for longer than the stall timeout (plus zero-window probe backoff).
    tokio::time::sleep(Duration::from_secs(12)).await;
    let mut received = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(0)) => break "closed",
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => break "reset",
            Err(_) => break "still open",
        }
    };
    eprintln!(
        "slow reader: a {full}-byte answer, client not reading for 12 s: got {} bytes, then {ended}",
        received.len()
    );
    assert!(
        received.len() < full,
        "the stalled connection was dropped before the answer was delivered"
    );
    // Everyone else is served as usual.
    assert_eq!(app.get(&path).await.status(), 200);
}
