//! Several orgs: one lease per org, shared out between fetcher replicas by rendezvous hashing
//! over the membership set; an unknown org is backed off and reported; orgs added or removed at
//! restart; webhook hints go to the loop of the org they name.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fetcher::preferred_fetcher;
use hubcache_shared::snapshot::{REASON_NOT_FOUND, now_ms};
use hubcache_shared::{HintTarget, WebhookHint};
use hubcache_testkit::eventually;

use crate::helpers::{
    ORG, RunningFetcher, TestApp, TestOptions, org_paths, repos_of, spawn_app_with,
};

/// Three generated orgs (the first is the single-org tests' [`ORG`]).
const ORGS: [&str; 3] = [ORG, "beta", "gamma"];

/// Waits until every org in `orgs` is held by the fetcher rendezvous hashing prefers among
/// `live`; returns each org's holder.
async fn wait_for_spread(
    app: &TestApp,
    orgs: &[&str],
    live: &[&RunningFetcher],
    timeout: Duration,
) -> HashMap<String, String> {
    let ids: Vec<&str> = live.iter().map(|f| f.instance_id.as_str()).collect();
    eventually(
        timeout,
        "each org held by its preferred fetcher",
        || async {
            let mut holders = HashMap::new();
            for org in orgs {
                let holder = app.lease_holder_of(org).await?;
                let preferred = preferred_fetcher(org, orgs, ids.iter().copied())?;
                (holder == preferred).then_some(())?;
                holders.insert((*org).to_owned(), holder);
            }
            Some(holders)
        },
    )
    .await
    .expect("the orgs are spread as rendezvous hashing says")
}

/// Requests to each org's `/orgs/{org}` over a window of at least `polls` polls of the busiest,
/// and how long that window was.
async fn polls_per_org(app: &TestApp, orgs: &[&str], polls: u64) -> (Vec<u64>, Duration) {
    app.sim.reset_stats().await;
    let started = Instant::now();
    let counts = eventually(Duration::from_secs(15), "every org polled", || async {
        let mut counts = Vec::new();
        for org in orgs {
            counts.push(app.sim.requests_to(&format!("/orgs/{org}")).await);
        }
        (counts.iter().all(|c| *c >= polls)).then_some(counts)
    })
    .await
    .expect("every org is polled");
    (counts, started.elapsed())
}

/// One fetcher per org at most: over `window`, an org polled every second by one fetcher is
/// asked at most once per second (plus the poll in flight at each end).
fn assert_polled_once_per_interval(orgs: &[&str], counts: &[u64], window: Duration) {
    let most = window.as_secs() + 2;
    for (org, count) in orgs.iter().zip(counts) {
        assert!(
            *count <= most,
            "{org} was polled {count} times in {window:?}: more than one fetcher polls it"
        );
    }
}

#[tokio::test]
async fn three_replicas_share_three_orgs_and_a_killed_ones_orgs_move_within_a_lease_period() {
    let app = spawn_app_with(TestOptions {
        sim_orgs: "acme,beta,gamma",
        ..TestOptions::default()
    })
    .await;
    let mut fetchers = Vec::new();
    for _ in 0..3 {
        fetchers.push(app.start_fetcher_for(&ORGS).await);
    }
    let all: Vec<&RunningFetcher> = fetchers.iter().collect();
    let holders = wait_for_spread(&app, &ORGS, &all, Duration::from_secs(15)).await;
    for org in ORGS {
        app.wait_for_org(org, Duration::from_secs(15)).await;
    }
    let mut ids: Vec<String> = fetchers.iter().map(|f| f.instance_id.clone()).collect();
    ids.sort();
    assert_eq!(app.members().await, ids, "every replica is registered");
    println!("org holders: {holders:?}");
    // Each replica polls its share: one org each.
    for fetcher in &fetchers {
        assert_eq!(
            holders
                .values()
                .filter(|h| **h == fetcher.instance_id)
                .count(),
            1,
            "{holders:?}"
        );
    }

    // Each org is polled by its holder alone (the others stand by).
    let (counts, window) = polls_per_org(&app, &ORGS, 3).await;
    assert_polled_once_per_interval(&ORGS, &counts, window);
    // The spread holds while everyone lives (no handing back and forth).
    assert_eq!(
        wait_for_spread(&app, &ORGS, &all, Duration::from_secs(1)).await,
        holders
    );

    // Kill (no release, no leaving) the replica holding the most orgs.
    let victim = (0..fetchers.len())
        .max_by_key(|i| {
            holders
                .values()
                .filter(|h| **h == fetchers[*i].instance_id)
                .count()
        })
        .expect("three fetchers");
    let victim = fetchers.remove(victim);
    let moved: Vec<&str> = ORGS
        .into_iter()
        .filter(|org| holders[*org] == victim.instance_id)
        .collect();
    assert!(!moved.is_empty(), "the victim held something: {holders:?}");
    let victim_id = victim.instance_id.clone();
    let killed_at = Instant::now();
    victim.kill().await;
    let survivors: Vec<&RunningFetcher> = fetchers.iter().collect();
    let lease = Duration::from_secs(app.options.lease_secs);
    let after = wait_for_spread(&app, &ORGS, &survivors, lease + Duration::from_secs(3)).await;
    let takeover = killed_at.elapsed();
    println!("moved {moved:?} after a kill in {takeover:?} (lease {lease:?}): {after:?}");
    assert!(
        takeover <= lease + Duration::from_secs(1),
        "{takeover:?} for a lease of {lease:?}"
    );
    // The two survivors share the three orgs out evenly: two and one.
    let mut shares: Vec<usize> = survivors
        .iter()
        .map(|f| after.values().filter(|h| **h == f.instance_id).count())
        .collect();
    shares.sort_unstable();
    assert_eq!(shares, [1, 2], "{after:?}");
    assert!(
        !app.members().await.contains(&victim_id),
        "its registration lapsed"
    );

    // The survivors poll every org, each once, and a change in a moved org is stored.
    let (counts, window) = polls_per_org(&app, &ORGS, 2).await;
    assert_polled_once_per_interval(&ORGS, &counts, window);
    let org = moved[0];
    let repos = format!("/orgs/{org}/repos");
    let before = app.snapshot_of(org, &repos).await.expect("stored");
    let repo = repos_of(&before)[0]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    app.sim
        .patch_repo(
            org,
            &repo,
            serde_json::json!({ "stargazers_count": 313_131 }),
        )
        .await;
    let changed = eventually(Duration::from_secs(10), "the change stored", || async {
        let now = app.snapshot_of(org, &repos).await?;
        (now.meta.version > before.meta.version).then_some(now)
    })
    .await
    .expect("a survivor stores the moved org's change");
    assert_eq!(repos_of(&changed)[0]["stargazers_count"], 313_131);
    for fetcher in fetchers {
        fetcher.stop().await;
    }
    assert!(
        app.members().await.is_empty(),
        "a graceful stop leaves the set"
    );
}

#[tokio::test]
async fn a_joining_replica_takes_its_share_and_every_replica_polls_one_org() {
    let app = spawn_app_with(TestOptions {
        sim_orgs: "acme,beta,gamma",
        ..TestOptions::default()
    })
    .await;
    let first = app.start_fetcher_for(&ORGS).await;
    let second = app.start_fetcher_for(&ORGS).await;
    let before = wait_for_spread(&app, &ORGS, &[&first, &second], Duration::from_secs(15)).await;
    for org in ORGS {
        app.wait_for_org(org, Duration::from_secs(15)).await;
    }
    // A third replica: three orgs on three replicas, one each.
    let joiner = app.start_fetcher_for(&ORGS).await;
    let after = wait_for_spread(
        &app,
        &ORGS,
        &[&first, &second, &joiner],
        Duration::from_secs(5),
    )
    .await;
    let taken: Vec<&str> = ORGS
        .into_iter()
        .filter(|org| after[*org] == joiner.instance_id)
        .collect();
    assert_eq!(taken.len(), 1, "the joiner takes its share: {after:?}");
    for fetcher in [&first, &second] {
        assert_eq!(
            after
                .values()
                .filter(|h| **h == fetcher.instance_id)
                .count(),
            1,
            "before {before:?}, after {after:?}"
        );
    }
    // The handed-over orgs are polled by the joiner alone, revalidated with the stored ETags.
    let (counts, window) = polls_per_org(&app, &ORGS, 3).await;
    assert_polled_once_per_interval(&ORGS, &counts, window);
    assert_eq!(app.sim.stat("rate_limit_used").await, 0);
    for fetcher in [first, second, joiner] {
        fetcher.stop().await;
    }
}

#[tokio::test]
async fn an_unknown_org_is_backed_off_and_reported_while_the_others_are_stored() {
    let app = spawn_app_with(TestOptions {
        sim_orgs: "acme,beta",
        // A 404 waits the longest backoff at once: far beyond this test.
        backoff_max_ms: 120_000,
        ..TestOptions::default()
    })
    .await;
    let fetcher = app
        .start_fetcher_for_with_admin(&[ORG, "nope", "beta"])
        .await;
    app.wait_for_org(ORG, Duration::from_secs(15)).await;
    app.wait_for_org("beta", Duration::from_secs(15)).await;
    let status = eventually(Duration::from_secs(10), "the 404 recorded", || async {
        let status = app.status_of("nope", "/orgs/nope").await;
        status.failing_reason().is_some().then_some(status)
    })
    .await
    .expect("the unknown org's status says why");
    assert_eq!(
        status.failing_reason(),
        Some(REASON_NOT_FOUND),
        "{status:?}"
    );
    assert!(
        status.failing().is_some_and(|e| e.contains("404")),
        "{status:?}"
    );
    assert!(app.snapshot_of("nope", "/orgs/nope").await.is_none());
    assert_eq!(
        fetcher
            .metric_with(
                "hubcache_fetcher_poll_errors_total",
                &[("endpoint", "/orgs/nope"), ("reason", REASON_NOT_FOUND)]
            )
            .await,
        Some(1.0)
    );
    assert_eq!(
        fetcher
            .metric_with(
                "hubcache_fetcher_endpoint_failing",
                &[("endpoint", "/orgs/nope")]
            )
            .await,
        Some(1.0)
    );

    // The known orgs keep being polled each second; the unknown one is not asked again.
    let (counts, window) = polls_per_org(&app, &[ORG, "beta"], 3).await;
    assert_polled_once_per_interval(&[ORG, "beta"], &counts, window);
    for path in org_paths("nope") {
        assert_eq!(app.sim.requests_to(&path).await, 0, "{path} retried");
    }
    assert_eq!(
        fetcher.metric_with("hubcache_fetcher_orgs_held", &[]).await,
        Some(3.0),
        "the one fetcher holds every org, the unknown one too"
    );
    assert_eq!(
        fetcher
            .metric_with("hubcache_fetcher_lease_held", &[("org", "nope")])
            .await,
        Some(1.0)
    );
    assert_eq!(
        fetcher.metric_with("hubcache_fetcher_members", &[]).await,
        Some(1.0)
    );
    fetcher.stop().await;
}

#[tokio::test]
async fn github_asking_one_org_to_wait_pauses_every_org_of_the_replica() {
    let app = spawn_app_with(TestOptions {
        sim_orgs: "acme,beta",
        ..TestOptions::default()
    })
    .await;
    let fetcher = app.start_fetcher_for(&[ORG, "beta"]).await;
    app.wait_for_org(ORG, Duration::from_secs(15)).await;
    app.wait_for_org("beta", Duration::from_secs(15)).await;
    app.sim.reset_stats().await;
    app.sim
        .add_fault(serde_json::json!({ "status": 429, "retry_after": 3, "count": 1, "path_prefix": "/orgs/beta" }))
        .await;
    let hit_at = eventually(Duration::from_secs(5), "the 429", || async {
        (app.sim.stat("faults_served").await == 1).then(Instant::now)
    })
    .await
    .expect("fault served");
    // An observation window inside the pause, not a wait for something: a poll of the other
    // org already in flight finishes within a few milliseconds; after that, silence, although
    // both orgs are due every second.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.sim.reset_stats().await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let stats = app.sim.stats().await;
    assert!(
        hit_at.elapsed() < Duration::from_secs(3),
        "the window overran the pause"
    );
    assert_eq!(stats["total"], 0, "one credential, one budget: {stats}");
    for org in [ORG, "beta"] {
        app.sim
            .wait_for_requests(&format!("/orgs/{org}"), 1, Duration::from_secs(6))
            .await;
    }
    fetcher.stop().await;
}

#[tokio::test]
async fn an_org_added_at_restart_is_polled_and_one_removed_is_dropped() {
    let app = spawn_app_with(TestOptions {
        sim_orgs: "acme,beta",
        ..TestOptions::default()
    })
    .await;
    let first = app.start_fetcher_for(&[ORG]).await;
    let acme = app.wait_for_org(ORG, Duration::from_secs(15)).await;
    first.stop().await;
    assert!(app.members().await.is_empty());

    // Restarted with a second org: it is cached; the first org is revalidated, not refetched.
    let second = app.start_fetcher_for(&[ORG, "beta"]).await;
    app.wait_for_org("beta", Duration::from_secs(15)).await;
    app.sim.reset_stats().await;
    app.sim
        .wait_for_requests("/orgs/acme/repos", 2, Duration::from_secs(10))
        .await;
    assert_eq!(app.sim.stat("rate_limit_used").await, 0);
    for (path, old) in org_paths(ORG).iter().zip(&acme) {
        let now = app.snapshot_of(ORG, path).await.expect("kept");
        assert_eq!(now.meta.version, old.meta.version, "{path}");
    }
    assert_eq!(
        app.lease_holder_of("beta").await.as_deref(),
        Some(second.instance_id.as_str())
    );
    second.stop().await;

    // Restarted without the first org: nobody polls it any more.
    let third = app.start_fetcher_for(&["beta"]).await;
    eventually(Duration::from_secs(5), "beta's lease taken", || async {
        (app.lease_holder_of("beta").await? == third.instance_id).then_some(())
    })
    .await
    .expect("the remaining org is polled");
    let (counts, window) = polls_per_org(&app, &["beta"], 3).await;
    assert_polled_once_per_interval(&["beta"], &counts, window);
    assert_eq!(app.sim.requests_to("/orgs/acme").await, 0);
    assert_eq!(app.lease_holder_of(ORG).await, None);
    third.stop().await;
}

#[tokio::test]
async fn a_webhook_hint_is_answered_by_the_loop_of_the_org_it_names() {
    let app = spawn_app_with(TestOptions {
        sim_orgs: "acme,beta",
        // No scheduled poll during the test: only a hint makes an endpoint due.
        refresh_secs: 60,
        ..TestOptions::default()
    })
    .await;
    let fetcher = app.start_fetcher_for(&[ORG, "beta"]).await;
    app.wait_for_org(ORG, Duration::from_secs(15)).await;
    let before = app.wait_for_org("beta", Duration::from_secs(15)).await;
    let repo = repos_of(&before[2])[0]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    app.sim
        .patch_repo(
            "beta",
            &repo,
            serde_json::json!({ "stargazers_count": 77_777 }),
        )
        .await;
    app.sim.reset_stats().await;
    let mut conn = app.conn.clone();
    for org in ["elsewhere", "BETA"] {
        let hint = WebhookHint {
            org: org.to_owned(),
            targets: vec![HintTarget::Repos],
            event: "repository".to_owned(),
            delivery: format!("delivery-{org}"),
            received_at_ms: now_ms(),
            traceparent: None,
        };
        let _: String = redis::cmd("XADD")
            .arg(app.schema.webhook_hints_stream())
            .arg("*")
            .arg(hint.to_fields())
            .query_async(&mut conn)
            .await
            .expect("XADD hint");
    }
    let changed = eventually(
        Duration::from_secs(10),
        "the hinted change stored",
        || async {
            let now = app.snapshot_of("beta", "/orgs/beta/repos").await?;
            (now.meta.version > before[2].meta.version).then_some(now)
        },
    )
    .await
    .expect("the hint (login in another case) reaches beta's loop");
    assert_eq!(repos_of(&changed)[0]["stargazers_count"], 77_777);
    assert_eq!(
        app.sim.requests_to("/orgs/acme/repos").await,
        0,
        "the other org's loop is not woken"
    );
    fetcher.stop().await;
}
