//! The whole pipeline (github-sim → fetcher → Redis → views → gateway) for six organisations on
//! a three-master Redis Cluster: each org's keys carry its own hash tag `{prefix:org}`, so its
//! multi-key scripts, pipelines and two-stream `XREAD`s stay in one slot, while different orgs
//! land on different masters (the cluster adds capacity, not only failover).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hubcache_shared::snapshot::FIELD_VERSION;
use hubcache_shared::{KeySchema, RedisConnector, RedisTarget};
use hubcache_testkit::{RedisCluster, SimControl, eventually};

use crate::helpers::{HA_ORG, HaPipeline, spawn_ha_pipeline};

/// Six orgs, the first one the seed's; their tags spread over the three masters' slot ranges.
const ORGS: [&str; 6] = [HA_ORG, "acme", "globex", "initech", "umbrella", "hooli"];
/// Repos per org: more than one page of 100, so every org's list is merged from pages.
const REPOS: usize = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_orgs_run_on_a_three_master_redis_cluster_their_keys_spread_over_masters() {
    let cluster = RedisCluster::start()
        .await
        .expect("a 3-master cluster forms");
    let HaPipeline {
        address,
        sim_url,
        client,
        target,
        stop_everything: _stop_everything,
    } = spawn_ha_pipeline(
        vec![("REDIS_CLUSTER_NODES", cluster.node_addresses())],
        &ORGS,
        REPOS,
    )
    .await;
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
    // Every org is served: its merged list is the upstream list and its own stars view agrees
    // with it; the seed's route is the first org's.
    let mut served_lists = BTreeMap::new();
    for org in ORGS {
        let served: Vec<serde_json::Value> = serde_json::from_str(
            &get(format!("/orgs/{org}/repos"))
                .await
                .unwrap_or_else(|| panic!("{org}'s repos")),
        )
        .expect("json");
        assert_eq!(served.len(), REPOS, "{org}");
        let max = served
            .iter()
            .filter_map(|r| r["stargazers_count"].as_i64())
            .max()
            .expect("stars");
        let top: Vec<(String, i64)> = serde_json::from_str(
            &get(format!("/orgs/{org}/view/top/1/stars"))
                .await
                .unwrap_or_else(|| panic!("{org}'s view")),
        )
        .expect("json");
        assert_eq!(top[0].1, max, "{org}");
        assert!(top[0].0.starts_with(&format!("{org}/")), "{org}: {top:?}");
        served_lists.insert(org, served);
    }
    let seed_top = get("/view/top/1/stars".to_owned())
        .await
        .expect("seed view");
    assert_eq!(
        Some(seed_top),
        get(format!("/orgs/{HA_ORG}/view/top/1/stars")).await,
        "the seed's route serves the first org"
    );

    // A change upstream in one org flows through that org's streams and scripts to its views.
    let changed = ORGS[3];
    let name = served_lists[changed][42]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    SimControl::new(sim_url.as_str())
        .patch_repo(
            changed,
            &name,
            serde_json::json!({ "stargazers_count": 9_999_999 }),
        )
        .await;
    let expected = format!(r#"[["{changed}/{name}", 9999999]]"#);
    eventually(
        Duration::from_secs(20),
        "the org's view reflects the change",
        || {
            let get = get(format!("/orgs/{changed}/view/top/1/stars"));
            let expected = expected.clone();
            async move { (get.await? == expected).then_some(()) }
        },
    )
    .await
    .expect("views follow upstream changes on a cluster");

    // The data lives in the cluster: read back through a cluster connection.
    let keys = KeySchema::new("hubcache");
    let mut conn = RedisConnector::new(&target)
        .expect("connector")
        .shared()
        .await
        .expect("cluster connection");
    for org in ORGS {
        let version: Option<u64> = redis::cmd("HGET")
            .arg(keys.org(org).snapshot(&format!("/orgs/{org}/repos")))
            .arg(FIELD_VERSION)
            .query_async(&mut conn)
            .await
            .expect("HGET through the cluster");
        assert!(version.is_some(), "{org}'s repos snapshot stored");
    }
    // Each org's keys sit together on one master (its tag's slot), and the orgs use more than
    // one master.
    let mut org_node: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for (index, node) in cluster.nodes.iter().enumerate() {
        let mut node_conn = node
            .client()
            .get_multiplexed_async_connection()
            .await
            .expect("node");
        let stored: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut node_conn)
            .await
            .expect("KEYS");
        for org in ORGS {
            let tag = keys.org(org).tag().to_owned();
            if stored.iter().any(|key| key.starts_with(&tag)) {
                org_node.entry(org.to_owned()).or_default().insert(index);
            }
        }
    }
    for org in ORGS {
        assert_eq!(
            org_node.get(org).map(BTreeSet::len),
            Some(1),
            "{org}'s keys on exactly one master: {org_node:?}"
        );
    }
    let masters: BTreeSet<usize> = org_node.values().flatten().copied().collect();
    assert!(
        masters.len() > 1,
        "the orgs are spread over more than one master: {org_node:?}"
    );
}
