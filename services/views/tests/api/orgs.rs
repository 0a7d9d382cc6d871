//! Several organisations: each org's views come from its own repos, live under its own keys and
//! are announced on its own stream; a corrupt snapshot or a failing Redis write in one org does
//! not stop another; each org's group claims its own dead consumers' entries; orgs come and go
//! at restart without anything done in Redis.

use hubcache_shared::{RefreshEvent, ViewName, ViewSet, snapshot};
use redis::AsyncCommands as _;
use redis::streams::{StreamReadOptions, StreamReadReply};
use serde_json::{Value, json};

use crate::helpers::{SOON, TestOrg, repo, spawn_redis_with_orgs, wait_until};

/// A repo list whose most starred repo is `{org}/{top}`.
fn repos_of(org: &str, top: &str, stars: i64) -> Value {
    json!([
        repo(&format!("{org}/{top}"), 1, stars, 1, "2024-01-01T00:00:00Z"),
        repo(&format!("{org}/other"), 2, 1, 0, "2024-01-02T00:00:00Z"),
    ])
}

fn top_star(views: &ViewSet) -> &str {
    &views.views[&ViewName::Stars][0].0
}

async fn announced(org: &TestOrg) -> Vec<u64> {
    org.views_events().await.iter().map(|e| e.version).collect()
}

#[tokio::test]
async fn each_org_gets_views_of_its_own_repos_under_its_keys_and_on_its_stream() {
    // Mixed-case logins: keys use the lowercased login, paths the configured spelling.
    let mut app = spawn_redis_with_orgs(&["acme", "Beta", "gamma"]).await;
    app.spawn_worker().await;
    let [acme, beta, gamma] = [app.org("acme"), app.org("Beta"), app.org("gamma")];
    assert_eq!(beta.repos_path, "/orgs/Beta/repos");
    assert!(beta.keys.views().starts_with("{views-test:beta}:"));

    // Different versions per org: each org's versions are its own.
    let published = [
        (acme, 3, repos_of("acme", "rocket", 10), "acme/rocket"),
        (beta, 1, repos_of("Beta", "bee", 20), "Beta/bee"),
        (gamma, 7, repos_of("gamma", "ray", 30), "gamma/ray"),
    ];
    for (org, version, repos, _) in &published {
        org.publish_repos(*version, repos).await;
    }
    for (org, version, repos, top) in &published {
        let views = org.wait_for_views(*version, SOON).await;
        assert_eq!(top_star(&views), *top, "{}", org.org);
        let body = serde_json::to_vec(repos).expect("json");
        assert_eq!(views.source_hash, snapshot::content_hash(&body));
        assert_eq!(announced(org).await, [*version], "{}", org.org);
    }
    let worker = &app.workers[0];
    wait_until(|| worker.org_stats.values().all(|s| s.events_acked() == 1)).await;
    for org in ["acme", "Beta", "gamma"] {
        assert_eq!(worker.org_stats[org].views_stored(), 1, "{org}");
    }

    // An event on acme's stream naming Beta's repos is not Beta's business: acme's worker
    // treats it as another path, and Beta's views and stream stay as they were.
    let beta_before = beta.views().await;
    let stray = RefreshEvent {
        path: beta.repos_path.clone(),
        version: 99,
        content_hash: "x".into(),
        at_ms: snapshot::now_ms(),
        traceparent: None,
    };
    let id = acme.xadd_refresh(&stray.to_fields()).await;
    acme.wait_acked(&id).await;
    assert_eq!(beta.views().await, beta_before);
    assert_eq!(announced(beta).await, [1]);
    assert_eq!(acme.views().await.map(|v| v.version), Some(3));

    // A second change in one org moves only that org's views.
    beta.publish_repos(2, &repos_of("Beta", "hive", 50)).await;
    let views = beta.wait_for_views(2, SOON).await;
    assert_eq!(top_star(&views), "Beta/hive");
    assert_eq!(announced(beta).await, [1, 2]);
    assert_eq!(announced(acme).await, [3]);
    assert_eq!(announced(gamma).await, [7]);
}

#[tokio::test]
async fn a_corrupt_snapshot_or_a_failing_org_does_not_stop_the_others() {
    let mut app = spawn_redis_with_orgs(&["acme", "beta", "gamma"]).await;
    app.spawn_worker().await;
    let [acme, beta, gamma] = [app.org("acme"), app.org("beta"), app.org("gamma")];
    for org in [acme, beta, gamma] {
        org.publish_repos(1, &repos_of(&org.org, "first", 5)).await;
        org.wait_for_views(1, SOON).await;
    }

    // acme: a snapshot whose body does not match its content hash (rejected and acknowledged).
    let body = serde_json::to_vec(&repos_of("acme", "evil", 99)).expect("json");
    let mut meta = acme.meta(2, &body);
    meta.content_hash = snapshot::content_hash(b"something else");
    acme.publish_snapshot(&body, &meta).await;
    // beta: its views key holds the wrong type, so storing fails on every attempt and its
    // worker keeps retrying (with backoff) with the event read and unacknowledged.
    let _: () = redis::cmd("SET")
        .arg(beta.keys.views())
        .arg("not a hash")
        .query_async(&mut beta.conn().await)
        .await
        .expect("SET");
    beta.publish_repos(2, &repos_of("beta", "second", 5)).await;
    hubcache_testkit::eventually(SOON, "beta's event read and stuck", || async {
        (beta.pending().await == 1).then_some(())
    })
    .await
    .expect("beta's worker read the event");

    // gamma keeps going meanwhile, change after change; so does acme after its bad snapshot.
    for version in 2..=4 {
        gamma
            .publish_repos(version, &repos_of("gamma", &format!("v{version}"), 5))
            .await;
        let views = gamma.wait_for_views(version, SOON).await;
        assert_eq!(top_star(&views), format!("gamma/v{version}"));
    }
    assert_eq!(announced(gamma).await, [1, 2, 3, 4]);
    let acme_stats = &app.workers[0].org_stats["acme"];
    wait_until(|| acme_stats.rejected() == 1).await;
    assert_eq!(acme.views().await.map(|v| v.version), Some(1), "kept");
    acme.publish_repos(3, &repos_of("acme", "third", 5)).await;
    let views = acme.wait_for_views(3, SOON).await;
    assert_eq!(top_star(&views), "acme/third");
    assert_eq!(announced(acme).await, [1, 3]);
    assert_eq!(acme.pending().await, 0);
    assert_eq!(beta.pending().await, 1, "beta still stuck");
    assert_eq!(app.workers[0].org_stats["beta"].views_stored(), 1);

    // Repaired, beta catches up by itself: the retried event stores its views, once.
    let _: () = redis::cmd("DEL")
        .arg(beta.keys.views())
        .query_async(&mut beta.conn().await)
        .await
        .expect("DEL");
    let views = beta
        .wait_for_views(2, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(top_star(&views), "beta/second");
    hubcache_testkit::eventually(SOON, "beta's event acknowledged", || async {
        (beta.pending().await == 0).then_some(())
    })
    .await
    .expect("acknowledged after the repair");
    assert_eq!(announced(beta).await, [1, 2]);
}

#[tokio::test]
async fn each_org_claims_the_entries_its_own_dead_consumer_left() {
    let mut app = spawn_redis_with_orgs(&["acme", "beta"]).await;
    let beta = app.org("beta");
    let mut conn = beta.conn().await;
    let _: () = conn
        .xgroup_create_mkstream(beta.keys.refresh_stream(), beta.keys.views_group(), "0")
        .await
        .expect("group created");
    beta.publish_repos(1, &repos_of("beta", "b", 3)).await;
    // A worker reads beta's event and dies before acknowledging it.
    let read: StreamReadReply = conn
        .xread_options(
            &[beta.keys.refresh_stream()],
            &[">"],
            &StreamReadOptions::default()
                .group(beta.keys.views_group(), "dead-worker")
                .count(10),
        )
        .await
        .expect("dead worker reads");
    assert_eq!(read.keys[0].ids.len(), 1);

    app.spawn_worker().await;
    let worker = &app.workers[0];
    let acme = app.org("acme");
    acme.publish_repos(1, &repos_of("acme", "a", 3)).await;
    acme.wait_for_views(1, SOON).await;
    // beta's claim sweep (1 s claim idle) takes the dead consumer's entry and acknowledges it.
    wait_until(|| worker.org_stats["beta"].entries_claimed() == 1).await;
    let beta = app.org("beta");
    hubcache_testkit::eventually(SOON, "beta's claimed entry acknowledged", || async {
        (beta.pending().await == 0).then_some(())
    })
    .await
    .expect("acknowledged");
    assert_eq!(worker.org_stats["acme"].entries_claimed(), 0);
    // The catch-up at start stored beta's views already; the claimed event found them current.
    assert_eq!(beta.views().await.map(|v| v.version), Some(1));
    assert_eq!(announced(beta).await, [1], "applied exactly once");
    assert_eq!(announced(acme).await, [1]);
}

#[tokio::test]
async fn an_org_added_or_removed_at_restart_needs_nothing_done_in_redis() {
    let mut app = spawn_redis_with_orgs(&["acme", "beta"]).await;
    app.spawn_worker_for(&["acme"]).await;
    let [acme, beta] = [app.org("acme"), app.org("beta")];
    acme.publish_repos(1, &repos_of("acme", "a", 3)).await;
    beta.publish_repos(1, &repos_of("beta", "b", 3)).await;
    acme.wait_for_views(1, SOON).await;
    // A process without beta leaves beta's keys alone: no group, no views.
    wait_until(|| app.workers[0].stats.events_acked() == 1).await;
    assert_eq!(beta.last_delivered().await, None);
    assert_eq!(beta.views().await, None);

    // Restarted with beta added: beta's group is created from the stream's start and its
    // views stored (once), acme's left as they were.
    let first = app.workers.remove(0);
    first.stop().await.expect("stops cleanly");
    app.spawn_worker_for(&["acme", "beta"]).await;
    let [acme, beta] = [app.org("acme"), app.org("beta")];
    let views = beta.wait_for_views(1, SOON).await;
    assert_eq!(top_star(&views), "beta/b");
    let stats = &app.workers[0].org_stats;
    wait_until(|| stats["beta"].events_acked() == 1).await;
    assert_eq!(beta.pending().await, 0);
    assert_eq!(announced(beta).await, [1]);
    assert_eq!(announced(acme).await, [1]);

    // Restarted with acme removed: beta carries on; acme's keys stay as they were, unread.
    let second = app.workers.remove(0);
    second.stop().await.expect("stops cleanly");
    app.spawn_worker_for(&["beta"]).await;
    let [acme, beta] = [app.org("acme"), app.org("beta")];
    acme.publish_repos(2, &repos_of("acme", "a2", 3)).await;
    beta.publish_repos(2, &repos_of("beta", "b2", 3)).await;
    beta.wait_for_views(2, SOON).await;
    assert_eq!(acme.views().await.map(|v| v.version), Some(1));
    assert_eq!(announced(acme).await, [1]);
}
