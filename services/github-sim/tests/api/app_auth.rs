//! The GitHub App: JWTs verified with the App's public key, one installation per org,
//! installation tokens that expire and spend their installation's own budget, revocation.

use std::time::{Duration, SystemTime};

use github_sim::SimConfig;
use hubcache_testkit::{AppKeyPair, eventually};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with, test_config};

const APP_ID: &str = "4242";

async fn spawn_with_app(keys: &AppKeyPair, ttl_secs: u64) -> TestApp {
    spawn_app_with(SimConfig {
        org: "alpha,beta".to_owned(),
        generate_repos: 3,
        app_id: Some(APP_ID.to_owned()),
        app_public_key: Some(keys.public_key_path()),
        installation_token_ttl_secs: ttl_secs,
        ..test_config()
    })
    .await
}

fn jwt(keys: &AppKeyPair, iss: &str, lifetime_secs: u64) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let key = EncodingKey::from_rsa_pem(keys.private_key_pem().as_bytes()).expect("key");
    let claims = json!({ "iat": now - 60, "exp": now - 60 + lifetime_secs, "iss": iss });
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).expect("signed")
}

async fn send(app: &TestApp, method: reqwest::Method, path: &str, bearer: &str) -> (u16, Value) {
    let response = app
        .client
        .request(method, app.url(path))
        .bearer_auth(bearer)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn token_for(app: &TestApp, keys: &AppKeyPair, org: &str) -> (u64, String) {
    let jwt = jwt(keys, APP_ID, 600);
    let (status, body) = send(
        app,
        reqwest::Method::GET,
        &format!("/orgs/{org}/installation"),
        &jwt,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_u64().expect("id");
    let path = format!("/app/installations/{id}/access_tokens");
    let (status, body) = send(app, reqwest::Method::POST, &path, &jwt).await;
    assert_eq!(status, 201, "{body}");
    assert!(
        body["expires_at"]
            .as_str()
            .is_some_and(|e| e.ends_with('Z')),
        "{body}"
    );
    (id, body["token"].as_str().expect("token").to_owned())
}

#[tokio::test]
async fn only_a_jwt_signed_by_the_app_key_and_short_lived_is_accepted() {
    let keys = AppKeyPair::generate().expect("key");
    let other = AppKeyPair::generate().expect("key");
    let app = spawn_with_app(&keys, 3600).await;
    for (bad, why) in [
        (jwt(&other, APP_ID, 600), "another key"),
        (jwt(&keys, "999", 600), "another App"),
        (jwt(&keys, APP_ID, 30), "expired"),
        (jwt(&keys, APP_ID, 3600), "too long-lived"),
        ("not-a-jwt".to_owned(), "garbage"),
    ] {
        let (status, _) = send(&app, reqwest::Method::GET, "/orgs/alpha/installation", &bad).await;
        assert_eq!(status, 401, "{why}");
    }
    let (alpha, _) = token_for(&app, &keys, "alpha").await;
    let (beta, _) = token_for(&app, &keys, "BETA").await;
    assert_ne!(alpha, beta, "one installation per org");
    let (status, _) = send(
        &app,
        reqwest::Method::GET,
        "/orgs/nope/installation",
        &jwt(&keys, APP_ID, 600),
    )
    .await;
    assert_eq!(status, 404, "no installation on an unknown org");
}

#[tokio::test]
async fn installation_tokens_expire_spend_their_own_budget_and_die_with_a_revocation() {
    let keys = AppKeyPair::generate().expect("key");
    let app = spawn_with_app(&keys, 2).await;
    let (alpha, alpha_token) = token_for(&app, &keys, "alpha").await;
    let (beta, beta_token) = token_for(&app, &keys, "beta").await;
    let (status, _) = send(&app, reqwest::Method::GET, "/orgs/alpha", &alpha_token).await;
    assert_eq!(status, 200);
    let label = format!("installation-{alpha}");
    assert_eq!(app.control.requests_with("/orgs/alpha", &label).await, 1);
    let budgets = app.control.rate_limits().await;
    assert_eq!(budgets[&label]["used"], 1, "{budgets}");

    app.control.revoke_installation(beta).await;
    let (status, _) = send(&app, reqwest::Method::GET, "/orgs/beta", &beta_token).await;
    assert_eq!(status, 401, "a revoked installation's token is refused");
    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        &format!("/app/installations/{beta}/access_tokens"),
        &jwt(&keys, APP_ID, 600),
    )
    .await;
    assert_eq!(status, 404, "no new token for a revoked installation");
    let installations = app.control.installations().await;
    assert_eq!(installations[1]["revoked"], true, "{installations}");

    eventually(Duration::from_secs(5), "the token to expire", || async {
        (send(&app, reqwest::Method::GET, "/orgs/alpha", &alpha_token)
            .await
            .0
            == 401)
            .then_some(())
    })
    .await
    .expect("expired");
    assert_eq!(app.control.tokens_issued(alpha).await, 1);
}
