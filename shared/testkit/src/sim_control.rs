//! [`SimControl`]: the one client of github-sim's control API (`/_sim/...`) that every
//! service's tests use, to mutate the simulated data, inject faults and read the request
//! counters that tests wait on (what reached "GitHub" is observable state; a sleep is not).

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

/// A client of one github-sim's control API.
#[derive(Debug, Clone)]
pub struct SimControl {
    base_url: String,
    http: reqwest::Client,
}

impl SimControl {
    /// A client of the simulator at `base_url` (`http://127.0.0.1:{port}`, no trailing slash).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    /// The simulator's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends `method /_sim{path}` with an optional JSON body and returns the answer as it is
    /// (for tests of the control API's own errors).
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, format!("{}/_sim{path}", self.base_url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("github-sim control request")
    }

    /// Sends a control request that must succeed; its JSON answer (`null` when empty).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let response = self.send(method.clone(), path, body).await;
        let status = response.status();
        let text = response.text().await.expect("github-sim control body");
        assert!(
            status.is_success(),
            "sim control {method} {path}: {status} {text}"
        );
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("github-sim control answers JSON")
        }
    }

    /// The request counters (`total`, `by_path`, `not_modified`, `faults_served`,
    /// `authorization_seen`, `rate_limit_used`...) since the last reset.
    pub async fn stats(&self) -> Value {
        self.call(Method::GET, "/stats", None).await
    }

    /// One numeric counter of [`SimControl::stats`].
    pub async fn stat(&self, name: &str) -> u64 {
        let stats = self.stats().await;
        stats[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no numeric stat {name} in {stats}"))
    }

    /// Requests that reached `path` (without query) since the last reset. A request is
    /// counted when it arrives, before any injected delay: a count above zero means a slow
    /// request to `path` is in flight or done.
    pub async fn requests_to(&self, path: &str) -> u64 {
        self.stats().await["by_path"][path].as_u64().unwrap_or(0)
    }

    /// Waits until at least `count` requests reached `path`.
    pub async fn wait_for_requests(&self, path: &str, count: u64, timeout: Duration) {
        crate::eventually(
            timeout,
            &format!("{count} request(s) to {path} at github-sim"),
            || async { (self.requests_to(path).await >= count).then_some(()) },
        )
        .await
        .expect("the requests reach github-sim");
    }

    /// Requests to `path` (without query) that carried the credential labelled `credential`
    /// (`"anonymous"`, or `github_sim::credential_label` of the `Authorization` value): which
    /// request carried which credential, as the simulator recorded it.
    pub async fn requests_with(&self, path: &str, credential: &str) -> u64 {
        self.stats().await["by_path_credential"][path][credential]
            .as_u64()
            .unwrap_or(0)
    }

    /// Requests per credential label to `path` (`{"anonymous": 2, "1a2b3c4d": 5}`).
    pub async fn credentials_at(&self, path: &str) -> Value {
        self.stats().await["by_path_credential"][path].clone()
    }

    /// The GitHub App's installations: `[{id, org, revoked, tokens_issued}]`.
    pub async fn installations(&self) -> Value {
        self.call(Method::GET, "/installations", None).await
    }

    /// The installation id of `org` (case-insensitive); panics if it has none.
    pub async fn installation_of(&self, org: &str) -> u64 {
        let list = self.installations().await;
        list.as_array()
            .and_then(|all| {
                all.iter().find(|i| {
                    i["org"]
                        .as_str()
                        .is_some_and(|o| o.eq_ignore_ascii_case(org))
                })
            })
            .and_then(|i| i["id"].as_u64())
            .unwrap_or_else(|| panic!("no installation for {org} in {list}"))
    }

    /// How many tokens installation `id` was issued.
    pub async fn tokens_issued(&self, id: u64) -> u64 {
        let list = self.installations().await;
        list.as_array()
            .and_then(|all| all.iter().find(|i| i["id"].as_u64() == Some(id)))
            .and_then(|i| i["tokens_issued"].as_u64())
            .unwrap_or_default()
    }

    /// Revokes installation `id`: its tokens answer 401, new ones are refused.
    pub async fn revoke_installation(&self, id: u64) {
        let response = self
            .send(Method::POST, &format!("/installations/{id}/revoke"), None)
            .await;
        assert!(
            response.status().is_success(),
            "revoke {id}: {}",
            response.status()
        );
    }

    /// Every credential's rate-limit budget seen so far, by key (the credential label, or
    /// `anonymous@{ip}`): `{"limit", "remaining", "used", "reset"}` each.
    pub async fn rate_limits(&self) -> Value {
        self.call(Method::GET, "/rate-limits", None).await
    }

    /// Changes rate-limit budgets (`{"limit", "remaining", "reset_in_secs", "credential"}`;
    /// without `credential`, every budget and the one new credentials start from).
    pub async fn set_rate_limit(&self, update: Value) -> Value {
        self.call(Method::POST, "/rate-limit", Some(update)).await
    }

    /// Zeroes the counters.
    pub async fn reset_stats(&self) {
        self.call(Method::POST, "/stats/reset", None).await;
    }

    /// Adds a fault (`{"status": 500, "path_prefix": ..., "delay_ms": ..., "count": ...}`).
    pub async fn add_fault(&self, fault: Value) {
        self.call(Method::POST, "/faults", Some(fault)).await;
    }

    /// Removes every fault.
    pub async fn clear_faults(&self) {
        self.call(Method::DELETE, "/faults", None).await;
    }

    /// Changes fields of repository `owner/name` (e.g. `{"stargazers_count": 7}`).
    pub async fn patch_repo(&self, owner: &str, name: &str, fields: Value) {
        self.call(
            Method::PATCH,
            &format!("/repos/{owner}/{name}"),
            Some(fields),
        )
        .await;
    }
}
