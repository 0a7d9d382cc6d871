//! Spawning a simulator on a free port and talking to it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use github_sim::{Application, SimConfig};
use hubcache_testkit::SimControl;
use reqwest::Response;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// The generated org of the default configuration.
pub const ORG: &str = "Netflix";
/// Repositories the test configuration generates.
pub const REPOS: usize = 150;

/// A running simulator.
pub struct TestApp {
    /// `http://127.0.0.1:{port}`.
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    /// The control API (`/_sim/...`), through the client every service's tests use.
    pub control: SimControl,
}

/// The configuration tests start from: a free port, one worker, the default generated org.
pub fn test_config() -> SimConfig {
    SimConfig {
        port: 0,
        workers: 1,
        generate_repos: REPOS,
        ..SimConfig::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_config()).await
}

pub async fn spawn_app_with(config: SimConfig) -> TestApp {
    let application = Application::build(config)
        .await
        .expect("the simulator builds");
    let port = application.port();
    tokio::spawn(application.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::new(),
        control: SimControl::new(format!("http://127.0.0.1:{port}")),
    }
}

impl TestApp {
    /// GET a path (with query) or an absolute URL.
    pub async fn get(&self, target: &str) -> Response {
        self.get_with(target, &[]).await
    }

    pub async fn get_with(&self, target: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = self.client.get(self.url(target));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request sent")
    }

    pub async fn get_json(&self, target: &str) -> Value {
        let response = self.get(target).await;
        assert_eq!(response.status(), 200, "GET {target}");
        response.json().await.expect("JSON body")
    }

    /// Follows `rel="next"` from `first` to the end; returns each page's URL and items.
    pub async fn walk_pages(&self, first: &str) -> Vec<(String, Vec<Value>)> {
        let mut pages = Vec::new();
        let mut next = Some(self.url(first));
        while let Some(url) = next {
            let response = self.get(&url).await;
            assert_eq!(response.status(), 200, "GET {url}");
            next = link(response.headers(), "next");
            let items: Vec<Value> = response.json().await.expect("page JSON");
            pages.push((url, items));
            assert!(pages.len() <= 200, "pagination does not end");
        }
        pages
    }

    pub fn url(&self, target: &str) -> String {
        if target.starts_with("http") {
            target.to_owned()
        } else {
            format!("{}{target}", self.address)
        }
    }
}

/// The URL of relation `rel` in the response's `Link` header.
pub fn link(headers: &HeaderMap, rel: &str) -> Option<String> {
    let value = headers.get("link")?.to_str().ok()?;
    value.split(", ").find_map(|entry| {
        let (url, params) = entry.split_once(';')?;
        (params.trim() == format!("rel=\"{rel}\"")).then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

/// A numeric header.
pub fn header_u64(headers: &HeaderMap, name: &str) -> u64 {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("numeric header {name}"))
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("header {name}"))
}

/// The org's numeric id, as `/organizations/{id}` uses it.
pub async fn org_id(app: &TestApp) -> u64 {
    app.get_json(&format!("/orgs/{ORG}")).await["id"]
        .as_u64()
        .expect("org id")
}

/// Repository names in list order, as the control API's dataset export holds them.
pub async fn dataset_repo_names(app: &TestApp) -> Vec<String> {
    let dataset = app
        .control
        .call(reqwest::Method::GET, "/dataset", None)
        .await;
    dataset["orgs"][0]["repos"]
        .as_array()
        .expect("repos")
        .iter()
        .map(|repo| repo["name"].as_str().expect("name").to_owned())
        .collect()
}

pub fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["name"].as_str().expect("name").to_owned())
        .collect()
}

/// A file in the temp dir, removed on drop.
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    pub fn with_contents(contents: &[u8]) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "github-sim-test-{}-{}.json",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).expect("temp file written");
        Self { path }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
