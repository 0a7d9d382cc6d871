//! "The gateway writes only pass-through cache keys and webhook hints", held by Redis: every
//! gateway in these tests connects as `gateway_redis_user`, which reads, and writes only the fleet
//! cache's keys (`hubcache:pt:*`) and, through the webhook script, the hints stream and the
//! delivery-id markers (`webhooks.rs` runs that path as this user). These tests check that user:
//! the gateway works with it (the fleet cache included), and any other write it might attempt is
//! refused, so a gateway change that writes elsewhere fails the tests instead of passing silently.

use hubcache_shared::snapshot::FIELD_VERSION;

use std::time::Duration;

use hubcache_testkit::eventually;

use crate::helpers::{ORG, spawn_app};

#[tokio::test]
async fn the_gateway_serves_everything_as_a_redis_user_that_may_write_only_pass_through_keys() {
    let app = spawn_app().await;
    app.wait_ready().await;
    assert_eq!(app.get(&format!("/orgs/{ORG}")).await.status(), 200);
    assert_eq!(app.get("/view/top/3/stars").await.status(), 200);
    // A pass-through answer lands in the fleet cache, written as that user.
    let repo = app.sim_repo_paths().await.remove(0);
    let attempt = std::sync::atomic::AtomicUsize::new(0);
    eventually(Duration::from_secs(10), "an L2 entry", || async {
        // A new key each time: on a loaded machine one miss may skip a slow Redis (L1 only).
        let n = attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(app.get(&format!("{repo}?attempt={n}")).await.status(), 200);
        let mut conn = app
            .redis
            .client()
            .get_multiplexed_async_connection()
            .await
            .ok()?;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(app.keys.passthrough_pattern())
            .query_async(&mut conn)
            .await
            .ok()?;
        (!keys.is_empty()).then_some(())
    })
    .await
    .expect("the gateway's user writes the fleet cache");

    let client = redis::Client::open(app.gateway_redis_url()).expect("a valid URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("the gateway's user connects");
    let snapshot = app.keys.org(&app.org).snapshot(&format!("/orgs/{ORG}"));
    let version: u64 = redis::cmd("HGET")
        .arg(&snapshot)
        .arg(FIELD_VERSION)
        .query_async(&mut conn)
        .await
        .expect("the gateway's user reads");
    assert_eq!(version, 1);
    // Nothing the gateway did was refused: Redis logs every denied command (`ACL LOG`).
    let denied: Vec<redis::Value> = redis::cmd("ACL")
        .arg("LOG")
        .query_async(
            &mut app
                .redis
                .client()
                .get_multiplexed_async_connection()
                .await
                .expect("default user"),
        )
        .await
        .expect("ACL LOG");
    assert!(denied.is_empty(), "the gateway was refused: {denied:?}");

    let writes = [
        redis::cmd("HSET")
            .arg(&snapshot)
            .arg(FIELD_VERSION)
            .arg(2)
            .clone(),
        redis::cmd("XADD")
            .arg(app.keys.org(&app.org).refresh_stream())
            .arg("*")
            .arg("path")
            .arg("/")
            .clone(),
        redis::cmd("DEL")
            .arg(app.keys.org(&app.org).views())
            .clone(),
        redis::cmd("SET")
            .arg(app.keys.org(&app.org).fetcher_lease())
            .arg("gateway")
            .clone(),
        redis::cmd("EVAL")
            .arg("return redis.call('DEL', KEYS[1])")
            .arg(1)
            .arg(&snapshot)
            .clone(),
        redis::cmd("FLUSHALL").clone(),
    ];
    for write in &writes {
        let refused = write
            .query_async::<redis::Value>(&mut conn)
            .await
            .expect_err("a write as the gateway's user is refused");
        assert!(
            refused.to_string().to_lowercase().contains("noperm"),
            "refused for lack of permission: {refused}"
        );
    }
    assert_eq!(
        app.hash(&snapshot).await[FIELD_VERSION],
        b"1".to_vec(),
        "nothing changed"
    );
}
