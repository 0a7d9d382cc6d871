//! "The gateway writes nothing but webhook hints", held by Redis: every gateway in these tests
//! connects as `gateway_redis_user`, which reads, and writes only the hints stream and the
//! delivery-id markers through the webhook script (`webhooks.rs` runs that path as this user). These tests check that user: the
//! gateway works with it, and any write it might attempt is refused, so a gateway change that
//! writes fails the tests instead of passing silently.

use hubcache_shared::snapshot::FIELD_VERSION;

use crate::helpers::{ORG, spawn_app};

#[tokio::test]
async fn the_gateway_serves_everything_as_a_redis_user_that_may_only_read() {
    let app = spawn_app().await;
    app.wait_ready().await;
    assert_eq!(app.get(&format!("/orgs/{ORG}")).await.status(), 200);
    assert_eq!(app.get("/view/top/3/stars").await.status(), 200);

    let client = redis::Client::open(app.gateway_redis_url()).expect("a valid URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("the gateway's user connects");
    let snapshot = app.keys.snapshot(&format!("/orgs/{ORG}"));
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
            .arg(app.keys.refresh_stream())
            .arg("*")
            .arg("path")
            .arg("/")
            .clone(),
        redis::cmd("DEL").arg(app.keys.views()).clone(),
        redis::cmd("SET")
            .arg(app.keys.fetcher_lease())
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
