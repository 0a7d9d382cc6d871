//! The whole pipeline (github-sim → fetcher → Redis → views → gateway) on a three-master Redis
//! Cluster: the same code runs there because every key carries the `{prefix}` hash tag, so the
//! multi-key scripts, pipelines and two-stream `XREAD`s stay in one slot.

use std::time::Duration;

use hubcache_shared::snapshot::FIELD_VERSION;
use hubcache_shared::{KeySchema, RedisConnector, RedisTarget};
use hubcache_testkit::{RedisCluster, SimControl, eventually};

use crate::helpers::{HA_ORG as ORG, HaPipeline, spawn_ha_pipeline};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_runs_on_a_three_master_redis_cluster() {
    let cluster = RedisCluster::start()
        .await
        .expect("a 3-master cluster forms");
    let HaPipeline {
        address,
        sim_url,
        client,
        target,
        stop_everything: _stop_everything,
    } = spawn_ha_pipeline(vec![("REDIS_CLUSTER_NODES", cluster.node_addresses())], 150).await;
    assert!(matches!(target, RedisTarget::Cluster { .. }), "{target:?}");
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{address}{path}");
        async move {
            let response = client.get(url).send().await.ok()?;
            (response.status() == 200).then_some(())?;
            response.text().await.ok()
        }
    };
    // The merged list is the upstream list; the stars view agrees with it.
    let repos_path = format!("/orgs/{ORG}/repos");
    let served: Vec<serde_json::Value> =
        serde_json::from_str(&get(repos_path.clone()).await.expect("repos")).expect("json");
    assert_eq!(served.len(), 150);
    let max = served
        .iter()
        .filter_map(|r| r["stargazers_count"].as_i64())
        .max()
        .expect("stars");
    let top: Vec<(String, i64)> =
        serde_json::from_str(&get("/view/top/1/stars".to_owned()).await.expect("view"))
            .expect("json");
    assert_eq!(top[0].1, max);

    // A change upstream flows through the cluster's streams and scripts to the views.
    let name = served[42]["name"].as_str().expect("name").to_owned();
    SimControl::new(sim_url.as_str())
        .patch_repo(
            ORG,
            &name,
            serde_json::json!({ "stargazers_count": 9_999_999 }),
        )
        .await;
    let expected = format!(r#"[["{ORG}/{name}", 9999999]]"#);
    eventually(
        Duration::from_secs(15),
        "the view reflects the change",
        || {
            let get = get("/view/top/1/stars".to_owned());
            let expected = expected.clone();
            async move { (get.await? == expected).then_some(()) }
        },
    )
    .await
    .expect("views follow upstream changes on a cluster");

    // The data lives in the cluster: read back through a cluster connection, and the node
    // owning the hash tag's slot holds every key.
    let keys = KeySchema::new("hubcache");
    let mut conn = RedisConnector::new(&target)
        .expect("connector")
        .shared()
        .await
        .expect("cluster connection");
    let version: Option<u64> = redis::cmd("HGET")
        .arg(keys.snapshot(&repos_path))
        .arg(FIELD_VERSION)
        .query_async(&mut conn)
        .await
        .expect("HGET through the cluster");
    assert!(version.expect("repos snapshot stored") >= 2);
    let mut holders = 0;
    let mut stored = 0;
    for node in &cluster.nodes {
        let mut node_conn = node
            .client()
            .get_multiplexed_async_connection()
            .await
            .expect("node");
        let size: u64 = redis::cmd("DBSIZE")
            .query_async(&mut node_conn)
            .await
            .expect("DBSIZE");
        if size > 0 {
            holders += 1;
            stored = size;
        }
    }
    assert_eq!(holders, 1, "all keys share the {{hubcache}} slot's node");
    // 4 snapshots, the views hash, two streams and the lease.
    assert_eq!(stored, 8);
}
