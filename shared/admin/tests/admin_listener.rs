//! The admin listener over a real socket: `/livez` turns 503 once its stop token is cancelled
//! and keeps answering until the listener is stopped; `/metrics` answers.

use hubcache_admin::{AdminListener, Liveness};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn livez_answers_503_while_draining_until_the_listener_stops() {
    let liveness = Liveness::new();
    let port = hubcache_testkit::free_port().expect("a free port");
    let listener = AdminListener::bind(port, hubcache_shared::metrics::install(), liveness.clone())
        .expect("binds")
        .expect("enabled for a non-zero port");
    assert_eq!(listener.port(), port);
    let server = listener.start().expect("starts");
    let stop = CancellationToken::new();
    liveness.follow(&stop);
    let watch = tokio::spawn(server.watch(stop.clone()));
    let client = reqwest::Client::new();
    let get = |path: &'static str| {
        let client = client.clone();
        async move {
            client
                .get(format!("http://127.0.0.1:{port}{path}"))
                .send()
                .await
                .expect("the admin listener answers")
        }
    };

    assert_eq!(get("/livez").await.status(), 200);
    assert_eq!(get("/metrics").await.status(), 200);
    assert!(
        !watch.is_finished(),
        "the watch runs while the server serves"
    );

    stop.cancel();
    watch
        .await
        .expect("no panic")
        .expect("a requested stop is not a failure");
    let draining = get("/livez").await;
    assert_eq!(draining.status(), 503, "draining is visible to probes");

    server.stop().await;
    assert!(
        client
            .get(format!("http://127.0.0.1:{port}/livez"))
            .send()
            .await
            .is_err(),
        "stopped: nothing listens any more"
    );
}
