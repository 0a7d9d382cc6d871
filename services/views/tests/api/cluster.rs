//! The views service on a three-master Redis Cluster with six organisations: each org's
//! group, blocking reads, snapshot, views and write script stay in the org's own slot, and the
//! orgs spread over more than one master.

use hubcache_shared::settings::SettingsSource;
use hubcache_shared::shutdown::CancellationToken;
use hubcache_shared::snapshot::{self, FIELD_BODY, FIELD_META, FIELD_VERSION};
use hubcache_shared::{
    KeySchema, RedisConnector, RefreshEvent, SnapshotKind, SnapshotMeta, ViewName, ViewSet,
};
use hubcache_testkit::{RedisCluster, eventually};
use redis::AsyncCommands as _;
use serde_json::json;
use views::{Application, Settings};

use crate::helpers::{SOON, repo};

const ORGS: [&str; 6] = ["org-a", "org-b", "org-c", "org-d", "org-e", "org-f"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_orgs_get_their_views_on_a_three_master_cluster() {
    let cluster = RedisCluster::start()
        .await
        .expect("a 3-master cluster forms");
    let nodes = cluster.node_addresses();
    let orgs = ORGS.join(",");
    let mut settings = Settings::load(&SettingsSource::from_vars([
        ("REDIS_CLUSTER_NODES", nodes.as_str()),
        ("GITHUB_ORGS", orgs.as_str()),
        ("KEY_PREFIX", "views-cluster"),
        ("METRICS_PORT", "0"),
    ]))
    .expect("cluster settings are valid");
    settings.claim_interval_ms = 200;
    let target = settings.common.redis_target().expect("a cluster target");
    let sources = settings.org_repos();
    let application = Application::build(settings)
        .await
        .expect("application builds");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(application.run(shutdown.clone()));

    let conn = RedisConnector::new(&target)
        .expect("connector")
        .shared()
        .await
        .expect("the test connects to the cluster");
    let schema = KeySchema::new("views-cluster");
    // The fetcher's writes, org by org: the snapshot, then its refresh event (same slot).
    for (i, source) in sources.iter().enumerate() {
        let keys = schema.org(&source.org);
        let repos = json!([repo(
            &format!("{}/top", source.org),
            1,
            i as i64 + 1,
            0,
            "2024-01-01T00:00:00Z"
        )]);
        let body = serde_json::to_vec(&repos).expect("json");
        let version = i as u64 + 1;
        let meta = SnapshotMeta {
            path: source.repos_path.clone(),
            version,
            content_hash: snapshot::content_hash(&body),
            kind: SnapshotKind::List,
            fetched_at_ms: snapshot::now_ms(),
            pages: Vec::new(),
        };
        let mut conn = conn.clone();
        let _: () = conn
            .hset_multiple(
                keys.snapshot(&source.repos_path),
                &[
                    (FIELD_BODY, body.clone()),
                    (FIELD_META, serde_json::to_vec(&meta).expect("meta")),
                    (FIELD_VERSION, version.to_string().into_bytes()),
                ],
            )
            .await
            .expect("snapshot written");
        let event = RefreshEvent {
            path: source.repos_path.clone(),
            version,
            content_hash: meta.content_hash.clone(),
            at_ms: snapshot::now_ms(),
            traceparent: None,
        };
        let _: String = conn
            .xadd(keys.refresh_stream(), "*", &event.to_fields())
            .await
            .expect("event appended");
    }

    for (i, source) in sources.iter().enumerate() {
        let keys = schema.org(&source.org);
        let views = eventually(SOON, &format!("{}'s views", source.org), || {
            let (mut conn, keys) = (conn.clone(), keys.clone());
            async move { ViewSet::load(&mut conn, &keys).await.ok().flatten() }
        })
        .await
        .expect("every org's views stored");
        assert_eq!(views.version, i as u64 + 1);
        assert_eq!(
            views.views[&ViewName::Stars][0].0,
            format!("{}/top", source.org)
        );
        let announced: usize = conn.clone().xlen(keys.views_stream()).await.expect("xlen");
        assert_eq!(announced, 1, "{}", source.org);
    }

    // The orgs' keys live on more than one master.
    let mut masters_with_keys = 0;
    for node in &cluster.nodes {
        let mut conn = node
            .client()
            .get_multiplexed_async_connection()
            .await
            .expect("node connects");
        let keys: usize = redis::cmd("DBSIZE")
            .query_async(&mut conn)
            .await
            .expect("DBSIZE");
        masters_with_keys += usize::from(keys > 0);
    }
    assert!(
        masters_with_keys > 1,
        "keys on {masters_with_keys} master(s)"
    );

    shutdown.cancel();
    task.await.expect("no panic").expect("clean stop");
}
