//! The fleet cache (L2): several gateway replicas on one Redis and one github-sim behave as one
//! pass-through cache. Replicas are the real `Application` (in process) or the real binary (for a
//! SIGKILL); upstream requests are counted by github-sim, each replica's L2 counters read from its
//! `/healthcheck`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::future::join_all;
use hubcache_shared::{SettingsSource, SnapshotKind};
use hubcache_testkit::{RedisCluster, eventually, free_port};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::helpers::{ORG, TestApp, cache_status, root_body, spawn_passthrough};

/// Upstream delay of the contended path: every miss below arrives while the fetch runs.
const UPSTREAM_DELAY_MS: u64 = 500;

/// One more gateway replica on `app`'s Redis and github-sim, stopped when dropped.
struct Replica {
    address: String,
    shutdown: CancellationToken,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn replica_vars(app: &TestApp, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_URL", app.gateway_redis_url()),
        ("GITHUB_API_URL", app.sim_url.clone()),
        ("GITHUB_ORG", ORG.to_owned()),
        ("PORT", port.to_string()),
        ("WORKERS", "2".to_owned()),
        ("SHUTDOWN_TIMEOUT_SECS", "2".to_owned()),
    ]
}

/// An L2 timeout far above a loaded test machine's Redis latency (the default 100 ms makes a
/// replica in a busy test process fall back to L1-only now and then, which is right, but not
/// what these tests look at); the Redis-paused test keeps the default.
fn patient(settings: &mut gateway::Settings) {
    settings.l2_timeout_ms = 10_000;
}

/// Another replica, [`patient`], then `configure`d.
async fn replica(app: &TestApp, configure: impl FnOnce(&mut gateway::Settings)) -> Replica {
    let mut settings = gateway::Settings::load(&SettingsSource::from_vars(replica_vars(app, 0)))
        .expect("gateway settings");
    settings.host = "127.0.0.1".to_owned();
    patient(&mut settings);
    configure(&mut settings);
    let application = gateway::Application::build(settings)
        .await
        .expect("gateway builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(application.run(shutdown.clone()));
    let replica = Replica { address, shutdown };
    wait_subscribed(app, &replica.address).await;
    replica
}

/// This replica's fleet cache counters (`/healthcheck`'s `pass_through.fleet`; it answers 503
/// on an unseeded Redis, with the same body).
async fn fleet_stats(app: &TestApp, base: &str) -> Value {
    try_fleet_stats(app, base).await.expect("healthcheck")
}

async fn try_fleet_stats(app: &TestApp, base: &str) -> Option<Value> {
    let response = app
        .client
        .get(format!("{base}/healthcheck"))
        .send()
        .await
        .ok()?;
    let body: Value = response.json().await.ok()?;
    Some(body["pass_through"]["fleet"].clone())
}

/// Waits until the replica's wake-up subscription is live (its waiters are then woken by
/// announcements, not by the lock's expiry).
async fn wait_subscribed(app: &TestApp, base: &str) {
    eventually(Duration::from_secs(20), "fleet subscription", || async {
        (try_fleet_stats(app, base).await?["subscribed"] == true).then_some(())
    })
    .await
    .expect("the replica subscribes to the fleet wake-ups");
}

async fn slow_path(app: &TestApp, index: usize) -> String {
    let path = app.sim_repo_paths().await.remove(index);
    app.sim
        .add_fault(json!({"delay_ms": UPSTREAM_DELAY_MS, "path_prefix": path}))
        .await;
    path
}

async fn get(app: &TestApp, base: &str, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.client.get(format!("{base}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request reaches the gateway")
}

/// `count` concurrent GETs of `path`, spread round-robin over `bases`: (status, Cache-Status,
/// body, seconds) of each.
async fn spread(
    app: &TestApp,
    bases: &[&str],
    path: &str,
    count: usize,
) -> Vec<(u16, String, String, f64)> {
    join_all((0..count).map(|i| {
        let base = bases[i % bases.len()];
        async move {
            let started = Instant::now();
            let response = get(app, base, path, &[]).await;
            let status = response.status().as_u16();
            let cache = cache_status(&response);
            let body = response.text().await.expect("body");
            (status, cache, body, started.elapsed().as_secs_f64())
        }
    }))
    .await
}

#[tokio::test]
async fn three_replicas_cost_github_one_request_for_300_concurrent_misses() {
    // A lock TTL far above the upstream delay: a waiter woken only by the lock's expiry would
    // answer after 10 s, one woken by the announcement right after the fetch.
    let long_lock = |s: &mut gateway::Settings| {
        patient(s);
        s.l2_lock_ttl_ms = 10_000;
    };
    let app = spawn_passthrough(None, &[], long_lock).await;
    wait_subscribed(&app, &app.address).await;
    let second = replica(&app, long_lock).await;
    let third = replica(&app, long_lock).await;
    let path = slow_path(&app, 0).await;
    let bases = [app.address.as_str(), &second.address, &third.address];

    let answers = spread(&app, &bases, &path, 300).await;
    let expected = &answers[0].2;
    for (status, cache, body, _) in &answers {
        assert_eq!(*status, 200, "{cache}");
        assert_eq!(body, expected, "every client gets the same answer");
    }
    assert_eq!(
        app.sim.requests_to(&path).await,
        1,
        "300 misses on three replicas, one upstream request"
    );
    let fleet_collapsed = answers
        .iter()
        .filter(|(_, cache, _, _)| cache.ends_with("detail=fleet"))
        .count();
    let slowest = answers.iter().map(|a| a.3).fold(0.0, f64::max);
    eprintln!(
        "fleet: 300 misses, 1 upstream request, {fleet_collapsed} answers woken from another \
         replica's fetch, slowest {slowest:.3}s (upstream delay {UPSTREAM_DELAY_MS} ms)"
    );
    assert!(
        slowest < 5.0,
        "slowest answer {slowest:.3}s: woken by the lock's expiry, not the announcement"
    );
    let mut leads = 0;
    let mut others = 0;
    for base in bases {
        let stats = fleet_stats(&app, base).await;
        leads += stats["lead"].as_u64().expect("lead");
        // A replica whose first request came after the store reads the entry instead.
        others += stats["waiter"].as_u64().expect("waiter") + stats["hit"].as_u64().expect("hit");
    }
    assert_eq!(leads, 1, "one replica fetched for the fleet");
    assert_eq!(
        others, 2,
        "one L2 read per other replica (L1 coalesces the rest)"
    );

    // A replica started afterwards answers from L2, cold L1 and all.
    let fourth = replica(&app, |_| {}).await;
    let response = get(&app, &fourth.address, &path, &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(cache_status(&response), "hubcache; hit; detail=l2");
    let age: u64 = response.headers()["age"]
        .to_str()
        .expect("age")
        .parse()
        .expect("seconds");
    assert!(age < 60, "Age counts from the upstream answer: {age}");
    assert_eq!(&response.text().await.expect("body"), expected);
    assert_eq!(app.sim.requests_to(&path).await, 1, "no upstream request");
}

/// A gateway process killed with SIGKILL when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_replica_killed_while_fetching_for_the_fleet_delays_the_others_only_until_its_lock_expires()
 {
    let app = spawn_passthrough(None, &[], patient).await;
    let port = free_port().expect("port");
    let mut doomed = Process(
        Command::new(env!("CARGO_BIN_EXE_gateway"))
            .env_clear()
            .envs(replica_vars(&app, port))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the gateway binary"),
    );
    let doomed_base = format!("http://127.0.0.1:{port}");
    wait_subscribed(&app, &doomed_base).await;
    let second = replica(&app, |_| {}).await;
    let path = app.sim_repo_paths().await.remove(1);
    // Long enough that the kill lands while the doomed replica's request is upstream.
    app.sim
        .add_fault(json!({"delay_ms": 1500, "path_prefix": path}))
        .await;

    let doomed_clients = tokio::spawn({
        let client = app.client.clone();
        let url = format!("{doomed_base}{path}");
        async move {
            join_all((0..100).map(|_| client.get(&url).send())).await;
        }
    });
    eventually(
        Duration::from_secs(10),
        "the doomed replica's fetch",
        || async { (app.sim.requests_to(&path).await == 1).then_some(()) },
    )
    .await
    .expect("the doomed replica fetches for the fleet");
    let bases = [app.address.as_str(), second.address.as_str()];
    let survivors = tokio::spawn({
        let app_client = app.client.clone();
        let urls: Vec<String> = (0..200)
            .map(|i| format!("{}{path}", bases[i % 2]))
            .collect();
        async move {
            join_all(urls.into_iter().map(|url| {
                let client = app_client.clone();
                async move {
                    let response = client.get(url).send().await.expect("answered");
                    (
                        response.status().as_u16(),
                        response.text().await.expect("body"),
                    )
                }
            }))
            .await
        }
    });
    for base in bases {
        eventually(Duration::from_secs(10), "a fleet waiter", || async {
            (fleet_stats(&app, base).await["waiter"].as_u64() == Some(1)).then_some(())
        })
        .await
        .expect("each surviving replica waits for the doomed one's fetch");
    }
    let killed_at = Instant::now();
    let _ = doomed.0.kill();
    let _ = doomed.0.wait();
    let answers = survivors.await.expect("survivors");
    let after_kill = killed_at.elapsed().as_secs_f64();
    let _ = doomed_clients.await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body, &answers[0].1);
    }
    let upstream = app.sim.requests_to(&path).await;
    assert!(upstream <= 2, "{upstream} upstream requests");
    let mut takeovers = 0;
    for base in bases {
        takeovers += fleet_stats(&app, base).await["takeover"]
            .as_u64()
            .expect("takeover");
    }
    assert_eq!(takeovers, 1, "one survivor took the expired lock");
    eprintln!(
        "fleet takeover: 200 surviving clients answered {after_kill:.2}s after the kill \
         (lock TTL 2 s + one 1.5 s upstream request), {upstream} upstream requests"
    );
}

#[tokio::test]
async fn credential_partitions_hold_across_replicas() {
    let app = spawn_passthrough(None, &[], patient).await;
    let second = replica(&app, |_| {}).await;
    let third = replica(&app, |_| {}).await;
    let path = app.sim_repo_paths().await.remove(2);
    let token_a = "token fleet-client-a-secret";
    let as_a = [("authorization", token_a)];
    let as_b = [("authorization", "token fleet-client-b")];

    let first = get(&app, &app.address, &path, &as_a).await;
    assert_eq!(cache_status(&first), "hubcache; fwd=uri-miss; stored");
    // Neither an anonymous client nor another token gets A's answer, on any replica.
    let anonymous = get(&app, &second.address, &path, &[]).await;
    assert_eq!(cache_status(&anonymous), "hubcache; fwd=uri-miss; stored");
    let other = get(&app, &third.address, &path, &as_b).await;
    assert_eq!(cache_status(&other), "hubcache; fwd=uri-miss; stored");
    let stats = app.sim.stats().await;
    assert_eq!(
        stats["by_path"][&path], 3,
        "A, the anonymous partition and B each fetched once: {stats}"
    );
    // A's own answer is shared with A on another replica, once its L2 write landed (each
    // replica writes after answering its client).
    eventually(Duration::from_secs(20), "three L2 entries", || async {
        (entry_keys(&app).await.len() >= 3).then_some(())
    })
    .await
    .expect("A's, the anonymous and B's answers are written to L2");
    let again = get(&app, &second.address, &path, &as_a).await;
    assert_eq!(cache_status(&again), "hubcache; hit; detail=l2");
    assert_eq!(app.sim.requests_to(&path).await, 3);

    // No credential in any key or value the fleet cache wrote.
    let mut conn = app
        .redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("hubcache:pt:*")
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    assert!(!keys.is_empty());
    for key in keys {
        assert!(!key.contains("fleet-client"), "{key}");
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("TYPE");
        if kind == "hash" {
            let fields: Vec<Vec<u8>> = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .expect("HGETALL");
            for field in fields {
                assert!(
                    !String::from_utf8_lossy(&field).contains("fleet-client"),
                    "a credential in {key}"
                );
            }
        }
    }
}

/// The entry keys of the pass-through cache in `app`'s Redis.
async fn entry_keys(app: &TestApp) -> Vec<String> {
    let mut conn = app
        .redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    redis::cmd("KEYS")
        .arg("hubcache:pt:*:entry")
        .query_async(&mut conn)
        .await
        .expect("KEYS")
}

/// The entry key of the only pass-through entry, once its (asynchronous) write landed.
async fn only_entry_key(app: &TestApp) -> String {
    let keys = eventually(Duration::from_secs(20), "an L2 entry", || async {
        let keys = entry_keys(app).await;
        (!keys.is_empty()).then_some(keys)
    })
    .await
    .expect("the answer is written to L2");
    assert_eq!(keys.len(), 1, "{keys:?}");
    keys.into_iter().next().expect("one")
}

#[tokio::test]
async fn a_damaged_entry_is_a_miss_and_is_replaced() {
    let app = spawn_passthrough(None, &[], patient).await;
    let second = replica(&app, |_| {}).await;
    let third = replica(&app, |_| {}).await;
    let path = app.sim_repo_paths().await.remove(3);
    assert_eq!(app.get(&path).await.status(), 200);
    let entry = only_entry_key(&app).await;
    app.redis_cmd(
        redis::cmd("HSET")
            .arg(&entry)
            .arg("data")
            .arg("HCL2 but not really"),
    )
    .await;
    let response = get(&app, &second.address, &path, &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(cache_status(&response), "hubcache; fwd=uri-miss; stored");
    assert_eq!(fleet_stats(&app, &second.address).await["damaged"], 1);
    assert_eq!(app.sim.requests_to(&path).await, 2);
    let replaced = get(&app, &third.address, &path, &[]).await;
    // Read after the new entry's write, or woken by its announcement.
    assert!(
        [
            "hubcache; hit; detail=l2",
            "hubcache; fwd=uri-miss; collapsed; detail=fleet"
        ]
        .contains(&cache_status(&replaced).as_str()),
        "{}",
        cache_status(&replaced)
    );
    assert_eq!(app.sim.requests_to(&path).await, 2);
}

#[tokio::test]
async fn answers_above_the_entry_bound_stay_l1_only_and_entries_expire_with_their_ttl() {
    let small = |s: &mut gateway::Settings| {
        patient(s);
        s.l2_max_entry_bytes = 200;
    };
    let app = spawn_passthrough(None, &[], small).await;
    let second = replica(&app, small).await;
    let path = app.sim_repo_paths().await.remove(0);
    assert_eq!(app.get(&path).await.status(), 200);
    eventually(Duration::from_secs(5), "too_large counted", || async {
        (fleet_stats(&app, &app.address).await["too_large"] == 1).then_some(())
    })
    .await
    .expect("the answer is kept L1-only");
    assert!(entry_keys(&app).await.is_empty());
    let response = get(&app, &second.address, &path, &[]).await;
    assert_eq!(cache_status(&response), "hubcache; fwd=uri-miss; stored");
    assert_eq!(app.sim.requests_to(&path).await, 2, "nothing shared");

    // Within the bound: stored with a key TTL of fresh + max(stale windows, lock TTL).
    let app = spawn_passthrough(None, &[], patient).await;
    let path = app.sim_repo_paths().await.remove(0);
    assert_eq!(app.get(&path).await.status(), 200);
    let entry = only_entry_key(&app).await;
    let mut conn = app
        .redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&entry)
        .query_async(&mut conn)
        .await
        .expect("PTTL");
    // Defaults: CACHE_TTL_SECS 60, stale-if-error 300 s.
    assert!(ttl > 300_000 && ttl <= 360_000, "PTTL {ttl}");
}

#[tokio::test]
async fn redis_down_or_slow_falls_back_to_l1_only_and_l2_comes_back_by_itself() {
    let mut app = spawn_passthrough(None, &[], |_| {}).await;
    wait_subscribed(&app, &app.address).await;
    let paths = app.sim_repo_paths().await;

    // Slow: Redis answers nothing for 2 s; the miss goes upstream after the 100 ms L2 timeout.
    let pauser = app.redis.client();
    let mut conn = pauser
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2000)
        .arg("ALL")
        .query_async(&mut conn)
        .await
        .expect("CLIENT PAUSE");
    let started = Instant::now();
    let response = app.get(&paths[0]).await;
    let slow_redis = started.elapsed();
    assert_eq!(response.status(), 200);
    assert_eq!(cache_status(&response), "hubcache; fwd=uri-miss; stored");
    assert!(slow_redis < Duration::from_millis(1500), "{slow_redis:?}");

    // Down: the same, without even the timeout once a failure was seen.
    app.redis.stop();
    let started = Instant::now();
    let response = app.get(&paths[1]).await;
    let down = started.elapsed();
    assert_eq!(response.status(), 200);
    assert!(down < Duration::from_millis(1500), "{down:?}");
    eprintln!("fleet fallback: miss with Redis paused {slow_redis:?}, with Redis down {down:?}");

    // Back: a new miss is stored in L2 again, without a restart of the gateway.
    app.redis.restart().await.expect("redis restarts");
    let attempt = std::sync::atomic::AtomicUsize::new(0);
    eventually(Duration::from_secs(20), "L2 used again", || async {
        // A new key each time: an L1 hit would not reach L2.
        let n = attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let response = app.get(&format!("{}?attempt={n}", paths[2])).await;
        assert_eq!(response.status(), 200);
        (!entry_keys(&app).await.is_empty()).then_some(())
    })
    .await
    .expect("the fleet cache comes back by itself");
}

/// One field of `INFO` as a number.
async fn info_number(conn: &mut redis::aio::MultiplexedConnection, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").query_async(conn).await.expect("INFO");
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO"))
}

#[tokio::test]
async fn at_maxmemory_with_volatile_lru_redis_evicts_fleet_entries_never_pipeline_keys() {
    let app = spawn_passthrough(None, &[], patient).await;
    app.seed_snapshot("/", SnapshotKind::Object, &root_body(), 1)
        .await;
    let mut conn = app
        .redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    // The production setting (see ARCHITECTURE.md, "Memory bound"): 2 MB above what is there.
    let limit = info_number(&mut conn, "used_memory").await + 2 * 1024 * 1024;
    for (name, value) in [
        ("maxmemory-policy", "volatile-lru".to_owned()),
        ("maxmemory", limit.to_string()),
    ] {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query_async(&mut conn)
            .await
            .expect("CONFIG SET");
    }
    // Distinct keys (the query is part of the key), about 8 KB each with the gzip copy: 10 MB.
    let path = app.sim_repo_paths().await.remove(0);
    for chunk in (0..1200).collect::<Vec<_>>().chunks(24) {
        let answers = join_all(chunk.iter().map(|i| {
            let (app, target) = (&app, format!("{path}?variant={i}"));
            async move { app.get(&target).await }
        }))
        .await;
        for answer in answers {
            assert_eq!(answer.status(), 200, "no client sees Redis's memory limit");
        }
    }
    let used = info_number(&mut conn, "used_memory").await;
    let evicted = info_number(&mut conn, "evicted_keys").await;
    eprintln!("fleet maxmemory: limit {limit} B, used {used} B, {evicted} keys evicted");
    assert!(evicted > 0, "the limit was reached");
    assert!(
        used <= limit + 64 * 1024,
        "used {used} B over the limit {limit} B"
    );
    let snapshot = app.hash(&app.keys.org(&app.org).snapshot("/")).await;
    assert!(!snapshot.is_empty(), "a key without TTL is never evicted");
    let entries = entry_keys(&app).await.len();
    assert!((1..1200).contains(&entries), "{entries} entries kept");
}

/// A gateway replica on a Redis Cluster (as the default user), sharing `app`'s github-sim.
async fn cluster_replica(app: &TestApp, cluster: &RedisCluster) -> Replica {
    let vars = [
        ("REDIS_CLUSTER_NODES", cluster.node_addresses()),
        ("GITHUB_API_URL", app.sim_url.clone()),
        ("GITHUB_ORG", ORG.to_owned()),
        ("PORT", "0".to_owned()),
        ("WORKERS", "2".to_owned()),
        ("SHUTDOWN_TIMEOUT_SECS", "2".to_owned()),
    ];
    let mut settings =
        gateway::Settings::load(&SettingsSource::from_vars(vars)).expect("gateway settings");
    settings.host = "127.0.0.1".to_owned();
    patient(&mut settings);
    let application = gateway::Application::build(settings)
        .await
        .expect("gateway builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(application.run(shutdown.clone()));
    let replica = Replica { address, shutdown };
    wait_subscribed(app, &replica.address).await;
    replica
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_entries_spread_over_the_nodes_and_replicas_share_one_fetch() {
    let cluster = RedisCluster::start()
        .await
        .expect("a 3-master cluster forms");
    // github-sim (its own single-Redis gateway stays unused).
    let app = spawn_passthrough(None, &[], |_| {}).await;
    let first = cluster_replica(&app, &cluster).await;
    let second = cluster_replica(&app, &cluster).await;
    let path = slow_path(&app, 0).await;
    let bases = [first.address.as_str(), second.address.as_str()];
    let answers = spread(&app, &bases, &path, 60).await;
    for (status, cache, body, _) in &answers {
        assert_eq!(*status, 200, "{cache}");
        assert_eq!(body, &answers[0].2);
    }
    assert_eq!(
        app.sim.requests_to(&path).await,
        1,
        "two replicas on a cluster, one upstream request"
    );

    // Entries spread over the cluster's slots: 30 keys land on more than one node.
    let other = app.sim_repo_paths().await.remove(1);
    for i in 0..30 {
        let response = get(&app, &first.address, &format!("{other}?spread={i}"), &[]).await;
        assert_eq!(response.status(), 200);
    }
    let shared = get(&app, &second.address, &format!("{other}?spread=7"), &[]).await;
    assert!(
        cache_status(&shared).ends_with("detail=l2")
            || cache_status(&shared).ends_with("detail=fleet"),
        "{}",
        cache_status(&shared)
    );
    let mut holders = 0;
    for node in &cluster.nodes {
        let mut conn = node
            .client()
            .get_multiplexed_async_connection()
            .await
            .expect("node");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("hubcache:pt:*:entry")
            .query_async(&mut conn)
            .await
            .expect("KEYS");
        if !keys.is_empty() {
            holders += 1;
        }
    }
    assert!(holders >= 2, "fleet entries on {holders} node(s)");
}

#[tokio::test]
async fn an_expired_entry_is_revalidated_once_for_the_fleet_with_its_etag() {
    let short = |s: &mut gateway::Settings| {
        patient(s);
        s.cache_ttl_secs = 2;
    };
    let app = spawn_passthrough(None, &[], short).await;
    let second = replica(&app, short).await;
    let path = app.sim_repo_paths().await.remove(4);
    let original = app.get(&path).await;
    assert_eq!(original.status(), 200);
    let body = original.text().await.expect("body");
    let entry = only_entry_key(&app).await;
    wait_expired(&app, &entry).await;

    // A replica with nothing in memory revalidates the fleet's expired copy: a 304, for free.
    let revalidated = get(&app, &second.address, &path, &[]).await;
    assert_eq!(
        cache_status(&revalidated),
        "hubcache; fwd=stale; fwd-status=304; stored"
    );
    assert_eq!(revalidated.text().await.expect("body"), body);
    let stats = app.sim.stats().await;
    assert_eq!(stats["by_path"][&path], 2, "{stats}");
    assert_eq!(stats["not_modified"], 1, "{stats}");
    // The first replica's copy expired too: its refresh reads the fleet's revalidated entry.
    assert_eq!(app.get(&path).await.status(), 200);
    eventually(Duration::from_secs(5), "a refresh from L2", || async {
        (fleet_stats(&app, &app.address).await["hit"] == 1).then_some(())
    })
    .await
    .expect("the first replica refreshes from L2");
    assert_eq!(
        app.sim.requests_to(&path).await,
        2,
        "one revalidation for the fleet"
    );
}

/// Waits until the L2 entry `entry` is expired by Redis's clock, the one the fleet cache goes by.
async fn wait_expired(app: &TestApp, entry: &str) {
    let conn = app
        .redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    eventually(Duration::from_secs(10), "the L2 entry expires", || {
        let mut conn = conn.clone();
        async move {
            let fresh_until: u64 = redis::cmd("HGET")
                .arg(entry)
                .arg("fresh_until")
                .query_async(&mut conn)
                .await
                .ok()?;
            let (secs, micros): (u64, u64) =
                redis::cmd("TIME").query_async(&mut conn).await.ok()?;
            (secs * 1000 + micros / 1000 >= fresh_until).then_some(())
        }
    })
    .await
    .expect("the entry expires");
}

#[tokio::test]
async fn stale_if_error_serves_the_fleets_expired_copy_on_a_cold_replica() {
    let short = |s: &mut gateway::Settings| {
        patient(s);
        s.cache_ttl_secs = 1;
        s.stale_while_revalidate_secs = 0;
        s.stale_if_error_secs = 60;
    };
    let app = spawn_passthrough(None, &[], short).await;
    let second = replica(&app, short).await;
    let path = app.sim_repo_paths().await.remove(3);
    let body = app.get_text(&path).await;
    let entry = only_entry_key(&app).await;
    wait_expired(&app, &entry).await;
    app.sim
        .add_fault(json!({"status": 503, "path_prefix": path}))
        .await;
    // Nothing in the second replica's memory: GitHub fails, the fleet's expired copy answers.
    let stale = get(&app, &second.address, &path, &[]).await;
    assert_eq!(stale.status(), 200);
    assert_eq!(cache_status(&stale), "hubcache; hit; fwd=stale; detail=l2");
    assert!(
        stale.headers()["warning"]
            .to_str()
            .expect("warning")
            .starts_with("111"),
        "a Revalidation Failed warning"
    );
    assert_eq!(stale.text().await.expect("body"), body);
    assert_eq!(fleet_stats(&app, &second.address).await["stale"], 1);
}
