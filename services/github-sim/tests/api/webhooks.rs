//! Org webhooks: registration, signed deliveries of every mutation, the log and redelivery.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use hubcache_testkit::eventually;

use crate::helpers::{ORG, TestApp, dataset_repo_names, spawn_app};

const SECRET: &str = "It's a Secret to Everybody";

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    event: String,
    guid: String,
    signature: Option<String>,
    user_agent: String,
    body: Vec<u8>,
}

impl Received {
    fn payload(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON payload")
    }
}

/// A webhook receiver on a free port that answers with `status` and records every delivery.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    fn start() -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (log, answer) = (Arc::clone(&received), Arc::clone(&status));
        let server = HttpServer::new(move || {
            let (log, answer) = (Arc::clone(&log), Arc::clone(&answer));
            App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
                let (log, answer) = (Arc::clone(&log), Arc::clone(&answer));
                async move {
                    let header = |name: &str| {
                        request
                            .headers()
                            .get(name)
                            .and_then(|value| value.to_str().ok())
                            .map(str::to_owned)
                    };
                    log.lock().push(Received {
                        event: header("x-github-event").unwrap_or_default(),
                        guid: header("x-github-delivery").unwrap_or_default(),
                        signature: header("x-hub-signature-256"),
                        user_agent: header("user-agent").unwrap_or_default(),
                        body: body.to_vec(),
                    });
                    let status = answer.load(Ordering::Relaxed);
                    HttpResponse::build(
                        actix_web::http::StatusCode::from_u16(status).expect("status"),
                    )
                    .finish()
                }
            }))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .expect("receiver binds");
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        Self {
            url: format!("http://127.0.0.1:{port}/webhooks/github"),
            received,
            status,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().clone()
    }

    async fn wait_for(&self, count: usize) -> Vec<Received> {
        let arrived = eventually(Duration::from_secs(10), "deliveries", || async {
            (self.received.lock().len() >= count).then_some(())
        })
        .await;
        assert!(
            arrived.is_ok(),
            "{count} deliveries expected, got {:?}",
            self.received()
        );
        self.received()
    }
}

fn signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn register(app: &TestApp, receiver: &Receiver) -> u64 {
    let created = app
        .control
        .send(
            Method::POST,
            &format!("/orgs/{ORG}/hooks"),
            Some(
                json!({"name": "web", "config": {"url": receiver.url, "secret": SECRET,
                   "content_type": "json"}, "events": ["*"]}),
            ),
        )
        .await;
    assert_eq!(created.status(), 201);
    let hook: Value = created.json().await.expect("hook JSON");
    assert_eq!(
        hook["config"]["secret"], "********",
        "the secret is never shown"
    );
    hook["id"].as_u64().expect("hook id")
}

async fn deliveries(app: &TestApp, hook: u64) -> Vec<Value> {
    let response = app
        .control
        .send(
            Method::GET,
            &format!("/orgs/{ORG}/hooks/{hook}/deliveries"),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("deliveries JSON")
}

#[tokio::test]
async fn every_mutation_sends_a_signed_delivery_like_githubs() {
    let app = spawn_app().await;
    let receiver = Receiver::start();
    register(&app, &receiver).await;
    let ping = receiver.wait_for(1).await.remove(0);
    assert_eq!(ping.event, "ping");
    assert_eq!(ping.payload()["organization"]["login"], ORG);

    let name = dataset_repo_names(&app).await.remove(0);
    let repo_path = format!("/repos/{ORG}/{name}");
    let repo = app.get_json(&repo_path).await;
    let stars = repo["stargazers_count"].as_u64().expect("stars");
    let patch = |body: Value| app.control.send(Method::PATCH, &repo_path, Some(body));
    assert_eq!(
        patch(json!({"stargazers_count": stars + 1})).await.status(),
        200
    );
    assert_eq!(patch(json!({"description": "changed"})).await.status(), 200);
    assert_eq!(patch(json!({"archived": true})).await.status(), 200);
    let added = app
        .control
        .send(
            Method::POST,
            &format!("/orgs/{ORG}/repos"),
            Some(json!({"name": "hooked"})),
        )
        .await;
    assert_eq!(added.status(), 201);
    let deleted = app
        .control
        .send(Method::DELETE, &format!("/repos/{ORG}/hooked"), None)
        .await;
    assert_eq!(deleted.status(), 204);

    let all = receiver.wait_for(6).await;
    let seen: Vec<(String, Value)> = all
        .iter()
        .map(|delivery| (delivery.event.clone(), delivery.payload()["action"].clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("ping".to_owned(), Value::Null),
            ("star".to_owned(), json!("created")),
            ("repository".to_owned(), json!("edited")),
            ("repository".to_owned(), json!("archived")),
            ("repository".to_owned(), json!("created")),
            ("repository".to_owned(), json!("deleted")),
        ]
    );
    for delivery in &all {
        assert_eq!(
            delivery.signature.as_deref(),
            Some(signature(&delivery.body).as_str())
        );
        assert!(delivery.user_agent.starts_with("GitHub-Hookshot/"));
        assert_eq!(delivery.guid.len(), 36, "a GUID: {}", delivery.guid);
        let payload = delivery.payload();
        assert_eq!(payload["organization"]["login"], ORG);
        assert!(payload["sender"]["login"].is_string());
    }
    let edited = all[2].payload();
    assert_eq!(
        edited["changes"]["description"]["from"],
        repo["description"]
    );
    assert_eq!(edited["repository"]["full_name"], repo["full_name"]);
    let mut guids: Vec<&str> = all.iter().map(|d| d.guid.as_str()).collect();
    guids.sort_unstable();
    guids.dedup();
    assert_eq!(guids.len(), all.len(), "every delivery has its own GUID");
}

#[tokio::test]
async fn outcomes_are_logged_and_a_delivery_can_be_redelivered() {
    let app = spawn_app().await;
    let receiver = Receiver::start();
    receiver.status.store(503, Ordering::Relaxed);
    let hook = register(&app, &receiver).await;
    receiver.wait_for(1).await;
    let logged = eventually(Duration::from_secs(5), "the failed ping logged", || async {
        (deliveries(&app, hook).await[0]["status"] == "HTTP 503").then_some(())
    })
    .await;
    assert!(
        logged.is_ok(),
        "the failed ping is logged: {:?}",
        deliveries(&app, hook).await
    );

    receiver.status.store(200, Ordering::Relaxed);
    let failed = deliveries(&app, hook).await.remove(0);
    let redelivered = app
        .control
        .send(
            Method::POST,
            &format!(
                "/orgs/{ORG}/hooks/{hook}/deliveries/{}/attempts",
                failed["id"]
            ),
            Some(json!({})),
        )
        .await;
    assert_eq!(redelivered.status(), 202);
    let both = receiver.wait_for(2).await;
    assert_eq!(both[1].guid, both[0].guid, "a redelivery keeps its GUID");
    assert_eq!(both[1].body, both[0].body);
    let logged = eventually(Duration::from_secs(5), "the redelivery logged", || async {
        let log = deliveries(&app, hook).await;
        (log[0]["status"] == "OK" && log[0]["redelivery"] == true && log[0]["status_code"] == 200)
            .then_some(())
    })
    .await;
    assert!(logged.is_ok(), "{:?}", deliveries(&app, hook).await);
    let one = app
        .control
        .send(
            Method::GET,
            &format!("/orgs/{ORG}/hooks/{hook}/deliveries/{}", failed["id"]),
            None,
        )
        .await
        .json::<Value>()
        .await
        .expect("delivery JSON");
    assert!(one["request"]["payload"]["zen"].is_string());
}

#[tokio::test]
async fn bad_hooks_are_refused_and_deleted_hooks_get_nothing() {
    let app = spawn_app().await;
    for body in [
        json!({"config": {"url": "ftp://example.com/"}}),
        json!({"config": {"url": "not a url"}}),
        json!({"config": {"url": "http://127.0.0.1:1/", "content_type": "form"}}),
        json!({"config": {"url": "http://127.0.0.1:1/"}, "events": []}),
    ] {
        let refused = app
            .control
            .send(Method::POST, &format!("/orgs/{ORG}/hooks"), Some(body))
            .await;
        assert_eq!(refused.status(), 422);
        assert!(refused.json::<Value>().await.expect("JSON")["message"].is_string());
    }
    let missing_org = app
        .control
        .send(
            Method::POST,
            "/orgs/nobody/hooks",
            Some(json!({"config": {"url": "http://127.0.0.1:1/"}})),
        )
        .await;
    assert_eq!(missing_org.status(), 404);

    let receiver = Receiver::start();
    let hook = register(&app, &receiver).await;
    receiver.wait_for(1).await;
    let deleted = app
        .control
        .send(Method::DELETE, &format!("/orgs/{ORG}/hooks/{hook}"), None)
        .await;
    assert_eq!(deleted.status(), 204);
    let hooks: Value = app
        .control
        .send(Method::GET, &format!("/orgs/{ORG}/hooks"), None)
        .await
        .json()
        .await
        .expect("hooks JSON");
    assert_eq!(hooks, json!([]));
    let added = app
        .control
        .send(
            Method::POST,
            &format!("/orgs/{ORG}/repos"),
            Some(json!({"name": "unheard"})),
        )
        .await;
    assert_eq!(added.status(), 201);
    // A later hook's ping arrives after anything the deleted hook could still have been sent.
    let witness = Receiver::start();
    register(&app, &witness).await;
    witness.wait_for(1).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "only the ping reached the deleted hook"
    );
}
