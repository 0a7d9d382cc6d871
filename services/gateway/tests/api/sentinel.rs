//! Redis high availability: the whole pipeline (github-sim → fetcher → Redis → views → gateway)
//! on a Sentinel-managed master and replica, with the master killed (SIGKILL) under steady load.
//!
//! Measured and printed (eprintln; recorded in `bench/measurements.md`): the time until the
//! replica is promoted, until a snapshot write lands on the new master, and until a change made
//! upstream after the kill is served in the views; the gateway requests made meanwhile and how
//! many failed. Asserted: no request fails (the gateway serves from memory), every version the test
//! sees (stored in Redis and served by the gateway) only grows, nothing stored before the kill
//! is missing afterwards, and the upstream change reaches the views through the new master.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hubcache_shared::snapshot::FIELD_VERSION;
use hubcache_shared::views::FIELD_VIEWS_VERSION;
use hubcache_shared::{KeySchema, OrgKeys, RedisConnection, RedisConnector, RedisTarget};
use hubcache_testkit::prometheus_text::sample;
use hubcache_testkit::{SentinelSet, SimControl, eventually};
use parking_lot::Mutex;

use crate::helpers::{HA_ORG as ORG, HaPipeline, spawn_ha_pipeline};
/// Stars given to the tracked repo, increasing from here: always the top of `/view/top/1/stars`.
const STARS_BASE: u64 = 50_000_000;

/// Everything the background tasks observe, shared with the test body.
#[derive(Default)]
struct Observed {
    requests: AtomicU64,
    failures: Mutex<Vec<String>>,
    /// (what, previous, new) for every version or star count seen going down.
    regressions: Mutex<Vec<(String, u64, u64)>>,
    /// Highest value seen per series ("redis /path", "gateway views", ...).
    highest: Mutex<BTreeMap<String, u64>>,
    /// When each stars value was set upstream.
    patched: Mutex<Vec<(u64, Instant)>>,
    /// First time the stored repos snapshot version grew after the kill.
    redis_write_after_kill: Mutex<Option<Instant>>,
    killed_at: Mutex<Option<(Instant, u64)>>,
}

impl Observed {
    /// Records `value` for `series`; a value below the highest seen is a regression.
    fn see(&self, series: &str, value: u64) {
        let mut highest = self.highest.lock();
        let previous = highest.get(series).copied();
        match previous {
            Some(previous) if value < previous => {
                self.regressions
                    .lock()
                    .push((series.to_owned(), previous, value));
            }
            _ => {
                highest.insert(series.to_owned(), value);
            }
        }
    }

    fn highest(&self, series: &str) -> Option<u64> {
        self.highest.lock().get(series).copied()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_survives_a_sentinel_failover_without_failed_requests_or_lost_versions() {
    let started = Instant::now();
    let mut redis = SentinelSet::start("hubcache-ha")
        .await
        .expect("master, replica and three sentinels start");
    let sentinel_ready = started.elapsed();

    let HaPipeline {
        address,
        sim_url,
        client,
        target,
        stop_everything: _stop_everything,
    } = spawn_ha_pipeline(
        vec![
            ("REDIS_SENTINELS", redis.sentinel_addresses()),
            ("REDIS_SENTINEL_MASTER", redis.master_name().to_owned()),
        ],
        &[ORG],
        60,
    )
    .await;
    assert!(matches!(target, RedisTarget::Sentinel { .. }), "{target:?}");

    // The repo whose stars the upstream writer keeps raising.
    let first: Vec<serde_json::Value> = client
        .get(format!("{sim_url}/orgs/{ORG}/repos?per_page=1"))
        .send()
        .await
        .expect("sim")
        .json()
        .await
        .expect("json");
    let repo = first[0]["name"].as_str().expect("name").to_owned();

    let observed = Arc::new(Observed::default());
    let stop_load = Arc::new(AtomicBool::new(false));
    let keys = KeySchema::new("hubcache").org(ORG);
    let cached_paths = [
        "/".to_owned(),
        format!("/orgs/{ORG}"),
        format!("/orgs/{ORG}/members"),
        format!("/orgs/{ORG}/repos"),
    ];
    // The test reads Redis through the same Sentinel-following connection the services use.
    let conn = RedisConnector::new(&target)
        .expect("connector")
        .shared()
        .await
        .expect("test connection to the master");

    let mut tasks = Vec::new();
    // Steady load: four clients, each request checked.
    for worker in 0..4 {
        let (client, address, observed, stop) = (
            client.clone(),
            address.clone(),
            Arc::clone(&observed),
            Arc::clone(&stop_load),
        );
        let paths: Vec<String> = cached_paths
            .iter()
            .cloned()
            .chain([
                "/view/top/5/stars".to_owned(),
                "/view/top/3/forks".to_owned(),
            ])
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while !stop.load(Ordering::Relaxed) {
                let path = &paths[i % paths.len()];
                i += 1;
                observed.requests.fetch_add(1, Ordering::Relaxed);
                match client.get(format!("{address}{path}")).send().await {
                    Ok(r) if r.status() == 200 => {
                        if r.bytes().await.is_err() {
                            observed.failures.lock().push(format!("{path}: body cut"));
                        }
                    }
                    Ok(r) => observed
                        .failures
                        .lock()
                        .push(format!("{path}: {}", r.status())),
                    Err(e) => observed.failures.lock().push(format!("{path}: {e}")),
                }
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        }));
    }
    // Upstream writer: raises the tracked repo's stars every 300 ms.
    {
        let (sim, repo, observed, stop) = (
            SimControl::new(sim_url.as_str()),
            repo.clone(),
            Arc::clone(&observed),
            Arc::clone(&stop_load),
        );
        tasks.push(tokio::spawn(async move {
            let mut stars = STARS_BASE;
            while !stop.load(Ordering::Relaxed) {
                stars += 1;
                let patched = sim
                    .send(
                        reqwest::Method::PATCH,
                        &format!("/repos/{ORG}/{repo}"),
                        Some(serde_json::json!({ "stargazers_count": stars })),
                    )
                    .await
                    .status()
                    .is_success();
                if patched {
                    observed.patched.lock().push((stars, Instant::now()));
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }));
    }
    // Monitor: every 100 ms, the versions stored in Redis (through the master of the moment),
    // the versions the gateway serves (its /metrics gauges) and the top star count it serves.
    {
        let (client, address, observed, stop, keys, paths) = (
            client.clone(),
            address.clone(),
            Arc::clone(&observed),
            Arc::clone(&stop_load),
            keys.clone(),
            cached_paths.clone(),
        );
        let mut conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                monitor_once(&client, &address, &mut conn, &keys, &paths, &observed).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }

    // Writes flow before the kill: an upstream change reaches the views.
    eventually(
        Duration::from_secs(20),
        "pre-kill change in views",
        || async { (observed.highest("gateway top stars")? > STARS_BASE + 1).then_some(()) },
    )
    .await
    .expect("upstream changes reach the views before the failover");
    load_for_more_requests(&observed, 100).await;

    let repos_key = format!("redis {}", cached_paths[3]);
    let before: BTreeMap<String, u64> = observed.highest.lock().clone();
    let requests_before = observed.requests.load(Ordering::Relaxed);
    let killed_at = Instant::now();
    *observed.killed_at.lock() = Some((
        killed_at,
        before.get(&repos_key).copied().expect("repos version seen"),
    ));
    redis.kill_master();

    let promoted = redis
        .wait_for_promotion(killed_at, Duration::from_secs(30))
        .await
        .expect("the sentinels promote the replica");
    // The first value written upstream after the kill must reach the views via the new master.
    let first_after_kill = eventually(Duration::from_secs(5), "a post-kill patch", || async {
        observed
            .patched
            .lock()
            .iter()
            .find(|(_, at)| *at > killed_at)
            .map(|(stars, _)| *stars)
    })
    .await
    .expect("the upstream writer keeps writing");
    let views_resumed = eventually(
        Duration::from_secs(40),
        "the post-kill change in the views",
        || async {
            (observed.highest("gateway top stars")? >= first_after_kill)
                .then(|| killed_at.elapsed())
        },
    )
    .await
    .expect("changes flow again after the failover");
    // The monitor reads Redis before the gateway in each round: give it a round or two.
    let redis_resumed = eventually(
        Duration::from_secs(5),
        "the monitor to see the post-kill snapshot write",
        || async {
            observed
                .redis_write_after_kill
                .lock()
                .map(|at| at - killed_at)
        },
    )
    .await
    .expect("a snapshot write after the kill was seen");
    // Steady state on the new master for a little longer, still under load.
    load_for_more_requests(&observed, 100).await;
    stop_load.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("load task");
    }

    let requests = observed.requests.load(Ordering::Relaxed);
    let failures = observed.failures.lock().clone();
    let regressions = observed.regressions.lock().clone();
    let after: BTreeMap<String, u64> = observed.highest.lock().clone();
    let master_port = redis.master_port().await.expect("sentinels answer");
    eprintln!(
        "sentinel failover: sentinels ready in {sentinel_ready:?}; replica promoted {promoted:?} \
         after SIGKILL of the master; first snapshot write on the new master {redis_resumed:?} \
         after; first upstream change made after the kill served in the views {views_resumed:?} \
         after; gateway requests {requests} ({} during and after the failover), failed {}; \
         version regressions {}",
        requests - requests_before,
        failures.len(),
        regressions.len()
    );
    eprintln!("versions before the kill: {before:?}");
    eprintln!("versions at the end:      {after:?}");

    assert_eq!(
        master_port,
        redis.replica.port(),
        "the sentinels name the promoted replica as master"
    );
    assert!(
        failures.is_empty(),
        "gateway requests failed during the failover: {failures:?}"
    );
    assert!(
        regressions.is_empty(),
        "versions went backwards: {regressions:?}"
    );
    for (series, version) in &before {
        let now = after.get(series).copied().unwrap_or(0);
        assert!(
            now >= *version,
            "{series} was at {version} before the kill and is at {now} after: lost"
        );
    }
    // Every cached key and the views are stored on the new master (nothing lost).
    let mut conn = conn;
    for path in &cached_paths {
        let version: Option<u64> = redis::cmd("HGET")
            .arg(keys.snapshot(path))
            .arg(FIELD_VERSION)
            .query_async(&mut conn)
            .await
            .expect("HGET on the new master");
        let version = version.unwrap_or_else(|| panic!("{path} missing on the new master"));
        assert!(version >= before[&format!("redis {path}")], "{path}");
    }
    let views_version: Option<u64> = redis::cmd("HGET")
        .arg(keys.views())
        .arg(FIELD_VIEWS_VERSION)
        .query_async(&mut conn)
        .await
        .expect("HGET views on the new master");
    assert!(views_version.expect("views stored") >= before["redis views"]);
}

/// Keeps the load running until the clients have sent `more` further requests (a span of
/// load counted in requests served, not in seconds).
async fn load_for_more_requests(observed: &Observed, more: u64) {
    let target = observed.requests.load(Ordering::Relaxed) + more;
    eventually(
        Duration::from_secs(30),
        &format!("{more} more requests under load"),
        || async { (observed.requests.load(Ordering::Relaxed) >= target).then_some(()) },
    )
    .await
    .expect("the load clients keep sending");
}

/// One look at Redis and at the gateway, recording every version and the top star count.
async fn monitor_once(
    client: &reqwest::Client,
    address: &str,
    conn: &mut RedisConnection,
    keys: &OrgKeys,
    paths: &[String],
    observed: &Observed,
) {
    // Errors are expected while the master is down: the next look retries.
    for path in paths {
        let version: Result<Option<u64>, _> = redis::cmd("HGET")
            .arg(keys.snapshot(path))
            .arg(FIELD_VERSION)
            .query_async(conn)
            .await;
        if let Ok(Some(version)) = version {
            observed.see(&format!("redis {path}"), version);
            if path.ends_with("/repos")
                && let Some((_, before)) = *observed.killed_at.lock()
                && version > before
            {
                observed
                    .redis_write_after_kill
                    .lock()
                    .get_or_insert_with(Instant::now);
            }
        }
    }
    let views: Result<Option<u64>, _> = redis::cmd("HGET")
        .arg(keys.views())
        .arg(FIELD_VIEWS_VERSION)
        .query_async(conn)
        .await;
    if let Ok(Some(version)) = views {
        observed.see("redis views", version);
    }

    if let Ok(r) = client.get(format!("{address}/metrics")).send().await
        && let Ok(text) = r.text().await
    {
        for path in paths {
            if let Some(v) = sample(&text, "hubcache_served_snapshot_version", &[("path", path)]) {
                observed.see(&format!("gateway {path}"), v as u64);
            }
        }
        if let Some(v) = sample(&text, "hubcache_served_views_version", &[]) {
            observed.see("gateway views", v as u64);
        }
    }
    if let Ok(r) = client
        .get(format!("{address}/view/top/1/stars"))
        .send()
        .await
        && let Ok(top) = r.json::<Vec<(String, u64)>>().await
        && let Some((_, stars)) = top.first()
    {
        observed.see("gateway top stars", *stars);
    }
}
