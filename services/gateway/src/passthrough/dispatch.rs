//! [`PassThrough`]: which way a request goes. `GET`/`HEAD` through the coalescing cache (a
//! `Range` bypasses it), other methods forwarded with the client's own credential only, or
//! refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use anyhow::Context;
use bytes::Bytes;
use hubcache_shared::{GithubClient, SeenRateLimit};

use super::allow_lists::{FORWARDED_BYPASS, FORWARDED_CACHED, allowed_header};
use super::budget::{Budgets, PausedBudget};
use super::error::PassThroughError;
use super::fleet::FleetKey;
use super::rendering::Served;
use super::request_key::{CacheKey, DEFAULT_ACCEPT, normalise_accept, request_target};
use super::stored_answer::StoredResponse;
use super::token_scope::TokenScope;
use super::upstream::{OutgoingRequest, Upstream, UpstreamFailure};
use crate::body_urls::BodyUrlRewriter;
use crate::cache_status::{
    BYPASS, COLLAPSED, FETCHED_NOT_STORED, FETCHED_STORED, FLEET_COLLAPSED, HIT, HIT_STALE, L2_HIT,
    L2_STALE, REVALIDATED, REVALIDATION_FAILED_WARNING, STALE_WARNING,
};
use crate::coalescing_cache::{CachePolicy, CacheStats, CoalescingCache, FetchKind, Outcome};
use crate::fleet_cache::{FleetCache, FleetOrigin, FleetStats};
use crate::served_state::ServedState;
use crate::settings::Settings;

/// Largest request body forwarded for a client's own non-GET request (larger: 413 JSON). The
/// router's `web::PayloadConfig` must allow at least this much, or actix refuses first.
const MAX_FORWARDED_BODY: usize = 1024 * 1024;

/// The pass-through service: the coalescing cache in front of GitHub plus request forwarding.
/// Built once and shared by every worker, so coalescing spans the whole process.
pub(crate) struct PassThrough {
    cache: CoalescingCache<CacheKey, StoredResponse, UpstreamFailure>,
    upstream: Arc<Upstream>,
    bypassed: AtomicU64,
}

impl std::fmt::Debug for PassThrough {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassThrough")
            .field("cache", &self.cache)
            .field("github", &self.upstream.github)
            .finish_non_exhaustive()
    }
}

/// Counters for metrics: the cache's, plus requests that bypassed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PassThroughStats {
    /// Cache sizes and lookup counters.
    pub(crate) cache: CacheStats,
    /// Requests forwarded without the cache (other methods with a credential, `Range`).
    pub(crate) bypassed: u64,
    /// The fleet cache's counters, when it is on.
    pub(crate) fleet: Option<FleetStats>,
    /// Requests sent to GitHub by this process's pass-through.
    pub(crate) upstream_requests: u64,
    /// GitHub's rate-limit headers on the latest pass-through answer, if any came.
    pub(crate) upstream_rate_limit: Option<SeenRateLimit>,
}

impl PassThrough {
    /// Builds the cache and forwarding rules from `settings`; `github` is the upstream client
    /// (its base URL is the only host the pass-through ever connects to); `fleet` the cache
    /// shared with the other replicas, behind the in-process one; `served` knows the orgs'
    /// ids (for the token scope of `/organizations/{id}/...`).
    pub(crate) fn new(
        settings: &Settings,
        github: GithubClient,
        fleet: Option<FleetCache>,
        served: Arc<ServedState>,
    ) -> anyhow::Result<Self> {
        let public_url = settings.public_base_url()?;
        let policy = CachePolicy {
            max_entries: usize::try_from(settings.cache_max_entries)
                .context("CACHE_MAX_ENTRIES does not fit this platform")?,
            max_bytes: usize::try_from(settings.cache_max_bytes)
                .context("CACHE_MAX_BYTES does not fit this platform")?,
            stale_while_revalidate: Duration::from_secs(settings.stale_while_revalidate_secs),
            stale_if_error: Duration::from_secs(settings.stale_if_error_secs),
            fetch_timeout: settings.upstream_timeout(),
            max_fetches: settings.max_upstream_fetches,
        };
        let body_urls = BodyUrlRewriter::for_public_url(public_url.as_ref(), github.base_url());
        Ok(Self {
            cache: CoalescingCache::new(policy),
            upstream: Arc::new(Upstream {
                github,
                scope: TokenScope::new(
                    settings.server_token_scope()?,
                    served,
                    settings.common.github_api_token.clone(),
                ),
                budgets: Budgets::default(),
                public_url,
                body_urls,
                fresh_ttl: Duration::from_secs(settings.cache_ttl_secs),
                negative_ttl: Duration::from_secs(settings.negative_ttl_secs),
                timeout: settings.upstream_timeout(),
                fleet,
                sent: AtomicU64::new(0),
                rate_limit: parking_lot::Mutex::new(None),
            }),
            bypassed: AtomicU64::new(0),
        })
    }

    /// Answers any request that is not a cached key, view or health route (all methods).
    pub(crate) async fn handle(&self, req: HttpRequest, body: web::Bytes) -> HttpResponse {
        match self.answer(&req, body).await {
            Ok(response) => response,
            Err(error) => {
                match &error {
                    PassThroughError::Unexpected(e) => {
                        tracing::error!(
                            path = req.path(),
                            error = format!("{e:#}"),
                            "pass-through failed"
                        );
                    }
                    PassThroughError::Unavailable(_) | PassThroughError::RateLimited { .. } => {
                        tracing::warn!(path = req.path(), error = %error, "pass-through upstream failed");
                    }
                    _ => {}
                }
                error.error_response()
            }
        }
    }

    /// The credential partitions paused now because GitHub refused them for a rate limit.
    pub(crate) fn paused_budgets(&self) -> Vec<PausedBudget> {
        self.upstream.budgets.paused()
    }

    /// Cache sizes and counters.
    pub(crate) fn stats(&self) -> PassThroughStats {
        PassThroughStats {
            cache: self.cache.stats(),
            bypassed: self.bypassed.load(Ordering::Relaxed),
            fleet: self.upstream.fleet.as_ref().map(FleetCache::stats),
            upstream_requests: self.upstream.sent.load(Ordering::Relaxed),
            upstream_rate_limit: *self.upstream.rate_limit.lock(),
        }
    }

    async fn answer(
        &self,
        req: &HttpRequest,
        body: Bytes,
    ) -> Result<HttpResponse, PassThroughError> {
        let target = request_target(req)?;
        let credential = req.headers().get(header::AUTHORIZATION).cloned();
        let method = req.method();
        if method == Method::GET || method == Method::HEAD {
            if req.headers().contains_key(header::RANGE) {
                return self.forward(req, target, Bytes::new(), credential).await;
            }
            return self.cached(req, target, credential).await;
        }
        if credential.is_none() {
            return Err(PassThroughError::MethodNotAllowed(method.clone()));
        }
        if body.len() > MAX_FORWARDED_BODY {
            return Err(PassThroughError::PayloadTooLarge(MAX_FORWARDED_BODY));
        }
        self.forward(req, target, body, credential).await
    }

    /// `GET`/`HEAD` through the coalescing cache.
    async fn cached(
        &self,
        req: &HttpRequest,
        target: String,
        credential: Option<HeaderValue>,
    ) -> Result<HttpResponse, PassThroughError> {
        let headers = req.headers();
        let accept = normalise_accept(headers);
        let api_version = allowed_header(headers, "x-github-api-version")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned());
        let route = self
            .upstream
            .scope
            .route(&target, credential.as_ref(), true);
        // The fleet cache's key parts, moved into the fetch (no copy unless a version is sent).
        let fleet_key = FleetKey {
            partition: route.partition.clone(),
            accept: accept.clone(),
            api_version: api_version.clone(),
        };
        let key = CacheKey {
            partition: route.partition,
            target: target.clone(),
            accept,
            api_version,
        };
        let mut outgoing = OutgoingRequest::new(reqwest::Method::GET, target);
        for name in FORWARDED_CACHED {
            if *name == "accept" && fleet_key.accept == DEFAULT_ACCEPT {
                continue; // GithubClient sends GitHub's JSON media type by default.
            }
            outgoing.copy_header(headers, name);
        }
        let client_credential = credential.is_some();
        outgoing.server_credential = route.server_credential;
        outgoing.budget = route.budget;
        outgoing.credential = credential;
        let upstream = Arc::clone(&self.upstream);
        let lookup = self
            .cache
            .get_or_fetch(key, move |previous| {
                upstream.fetch_shared(fleet_key, outgoing, previous)
            })
            .await
            .map_err(PassThroughError::from)?;
        let (status, warning, live) = served_as(lookup.outcome, lookup.value.fleet);
        let served = Served {
            cache_status: status,
            warning,
            live,
            // An answer from L2 was already this old when this replica received it.
            age: Some(lookup.age + lookup.value.age_offset),
            client_credential,
        };
        Ok(self.upstream.render(req, &lookup.value, &served))
    }

    /// A request sent upstream as is (within the allow-list) and never cached.
    async fn forward(
        &self,
        req: &HttpRequest,
        target: String,
        body: Bytes,
        credential: Option<HeaderValue>,
    ) -> Result<HttpResponse, PassThroughError> {
        // The same bound as the cache's fetches: held until the upstream answer is prepared.
        let Some(_fetch_slot) = self.cache.try_reserve_fetch() else {
            return Err(PassThroughError::from(Arc::new(
                self.cache.count_overloaded(),
            )));
        };
        self.bypassed.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::coalescing_cache::LOOKUPS_METRIC, "result" => "bypass")
            .increment(1);
        let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
            .context("an HTTP method actix accepted")?;
        let readable = method == reqwest::Method::GET || method == reqwest::Method::HEAD;
        let mut outgoing = OutgoingRequest::new(method, target);
        for name in FORWARDED_BYPASS {
            outgoing.copy_header(req.headers(), name);
        }
        let client_credential = credential.is_some();
        // The server's credential only ever accompanies anonymous reads within its scope.
        let route = self
            .upstream
            .scope
            .route(&outgoing.target, credential.as_ref(), readable);
        outgoing.server_credential = route.server_credential;
        outgoing.budget = route.budget;
        outgoing.credential = credential;
        outgoing.body = (!body.is_empty()).then_some(body);
        let upstream = Arc::clone(&self.upstream);
        let answer = tokio::time::timeout(upstream.timeout, upstream.send(outgoing))
            .await
            .map_err(|_| {
                PassThroughError::Unavailable(format!(
                    "no answer within {}s",
                    upstream.timeout.as_secs()
                ))
            })?
            .map_err(|failure| PassThroughError::from_failure(&failure))?;
        let stored = upstream.prepare(answer, client_credential, false).await?;
        let served = Served {
            cache_status: BYPASS,
            warning: None,
            live: true,
            age: None,
            client_credential,
        };
        Ok(upstream.render(req, &stored, &served))
    }
}

/// `Cache-Status`, `Warning` and whether the live headers apply, from how the in-process cache
/// answered and, for an answer it obtained just now, how the fleet cache obtained it.
fn served_as(
    outcome: Outcome,
    fleet: Option<FleetOrigin>,
) -> (&'static str, Option<&'static str>, bool) {
    match (outcome, fleet) {
        (Outcome::Hit, _) => (HIT, None, false),
        (Outcome::StaleWhileRevalidate, _) => (HIT_STALE, Some(STALE_WARNING), false),
        (Outcome::StaleIfError, _) => (HIT_STALE, Some(REVALIDATION_FAILED_WARNING), false),
        (
            Outcome::Fetched(FetchKind {
                revalidated: true, ..
            }),
            _,
        )
        | (_, Some(FleetOrigin::Revalidated)) => (REVALIDATED, None, false),
        (
            Outcome::Collapsed(FetchKind {
                revalidated: true, ..
            }),
            _,
        ) => (COLLAPSED, None, false),
        (_, Some(FleetOrigin::Hit)) => (L2_HIT, None, false),
        (_, Some(FleetOrigin::Collapsed)) => (FLEET_COLLAPSED, None, false),
        (_, Some(FleetOrigin::Stale)) => (L2_STALE, Some(STALE_WARNING), false),
        (_, Some(FleetOrigin::StaleIfError)) => {
            (L2_STALE, Some(REVALIDATION_FAILED_WARNING), false)
        }
        (Outcome::Fetched(FetchKind { stored: true, .. }), None) => (FETCHED_STORED, None, true),
        (Outcome::Fetched(_), None) => (FETCHED_NOT_STORED, None, true),
        (Outcome::Collapsed(_), None) => (COLLAPSED, None, true),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex as StdMutex;

    use actix_web::http::StatusCode;
    use actix_web::http::header::HeaderMap;
    use actix_web::test::TestRequest;
    use hubcache_shared::SettingsSource;
    use hubcache_shared::github::ClientOptions;

    use super::*;
    use crate::cache_status::CACHE_STATUS;

    const TOKEN: &str = "ghp_hubcacheTestTokenThatMustNeverLeak42";

    struct Harness {
        pass: PassThrough,
        sim_url: String,
        http: reqwest::Client,
    }

    async fn start_sim() -> String {
        let sim = github_sim::Application::build(github_sim::SimConfig {
            port: 0,
            generate_repos: 3,
            generate_members: 2,
            workers: 1,
            ..github_sim::SimConfig::default()
        })
        .await
        .expect("github-sim builds");
        let url = sim.base_url().to_owned();
        tokio::spawn(sim.run_until_stopped());
        url
    }

    fn pass_through(upstream: &str, vars: &[(&str, &str)]) -> PassThrough {
        let mut all = vec![("GITHUB_API_URL", upstream), ("GITHUB_API_TOKEN", TOKEN)];
        all.extend_from_slice(vars);
        let mut settings =
            Settings::load(&SettingsSource::from_vars(all.iter().copied())).expect("settings");
        settings.upstream_timeout_secs = 2;
        let github = GithubClient::new(
            settings.common.github_base_url().expect("url"),
            settings.common.github_api_token.clone(),
            &ClientOptions::default(),
        )
        .expect("client");
        let served = Arc::new(ServedState::new(&["Netflix".to_owned()], &[]));
        PassThrough::new(&settings, github, None, served).expect("pass-through")
    }

    impl Harness {
        async fn new(vars: &[(&str, &str)]) -> Self {
            let sim_url = start_sim().await;
            Self {
                pass: pass_through(&sim_url, vars),
                sim_url,
                http: reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .expect("client"),
            }
        }

        async fn sim(
            &self,
            method: reqwest::Method,
            path: &str,
            body: Option<&str>,
        ) -> serde_json::Value {
            let mut request = self
                .http
                .request(method, format!("{}/_sim{path}", self.sim_url));
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_owned());
            }
            request
                .send()
                .await
                .expect("sim")
                .json()
                .await
                .unwrap_or_default()
        }
    }

    /// Calls `handle` and returns status, headers and body.
    async fn call(
        pass: &PassThrough,
        request: TestRequest,
        body: &'static [u8],
    ) -> (StatusCode, HeaderMap, Bytes) {
        let response = pass
            .handle(request.to_http_request(), Bytes::from_static(body))
            .await;
        let status = response.status();
        let headers = response.headers().clone();
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .expect("body");
        (status, headers, body)
    }

    /// A `tracing` writer that keeps everything in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<StdMutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Everything a user or operator can see: answers (headers and bodies) and log lines.
    #[tokio::test]
    async fn the_token_never_appears_in_answers_or_logs() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        // Current-thread runtime: the spawned fetch tasks log on this thread too.
        let _guard = tracing::subscriber::set_default(subscriber);

        // Every anonymous read carries the token here: the widest exposure is the one to check.
        let all = [("PASSTHROUGH_SERVER_TOKEN_SCOPE", "all")];
        let h = Harness::new(&all).await;
        let down = pass_through("http://127.0.0.1:1", &all);
        h.sim(
            reqwest::Method::POST,
            "/faults",
            Some(r#"{"status":500,"count":1,"path_prefix":"/users/five"}"#),
        )
        .await;
        h.sim(
            reqwest::Method::POST,
            "/faults",
            Some(r#"{"status":403,"primary":true,"count":1,"path_prefix":"/users/limited"}"#),
        )
        .await;
        h.sim(
            reqwest::Method::POST,
            "/faults",
            Some(r#"{"status":429,"retry_after":7,"count":1,"path_prefix":"/users/slow"}"#),
        )
        .await;
        let mut answers = vec![
            call(
                &h.pass,
                TestRequest::get().uri("/orgs/Netflix?b=1&a=2"),
                b"",
            )
            .await,
            call(
                &h.pass,
                TestRequest::get().uri("/orgs/Netflix?a=2&b=1"),
                b"",
            )
            .await,
            call(&h.pass, TestRequest::get().uri("/no/such/thing"), b"").await,
            call(&h.pass, TestRequest::get().uri("/users/five"), b"").await,
            // The 429 pauses the server credential's budget: the next one is refused at once.
            call(&h.pass, TestRequest::get().uri("/users/slow"), b"").await,
            call(&h.pass, TestRequest::get().uri("/users/limited"), b"").await,
            call(
                &h.pass,
                TestRequest::post().uri("/orgs/Netflix/repos"),
                b"{}",
            )
            .await,
            call(
                &h.pass,
                TestRequest::post()
                    .uri("/orgs/Netflix/repos")
                    .insert_header(("authorization", "token client-own")),
                b"{}",
            )
            .await,
            call(&down, TestRequest::get().uri("/orgs/Netflix?access=1"), b"").await,
        ];
        answers.push(
            call(
                &h.pass,
                TestRequest::get()
                    .uri("/orgs/Netflix")
                    .insert_header(("authorization", "token client-own")),
                b"",
            )
            .await,
        );
        let statuses: Vec<u16> = answers.iter().map(|(s, _, _)| s.as_u16()).collect();
        assert_eq!(statuses, [200, 200, 404, 502, 503, 503, 405, 404, 502, 200]);
        assert_eq!(
            answers[1].1.get(CACHE_STATUS).expect("status"),
            HIT,
            "query order ignored"
        );
        assert_eq!(
            answers[4].1.get(header::RETRY_AFTER).expect("retry-after"),
            "7"
        );
        let message = |i: usize| {
            serde_json::from_slice::<serde_json::Value>(&answers[i].2).expect("json")["message"]
                .clone()
        };
        assert!(
            message(3).as_str().expect("text").contains("500"),
            "{}",
            message(3)
        );
        assert!(
            message(4).as_str().expect("text").contains("429"),
            "{}",
            message(4)
        );
        assert!(
            !message(8).as_str().expect("text").contains("access=1"),
            "no upstream query"
        );
        assert_eq!(answers[6].1.get(header::ALLOW).expect("allow"), "GET, HEAD");

        for (status, headers, body) in &answers {
            for (name, value) in headers {
                assert!(
                    !String::from_utf8_lossy(value.as_bytes()).contains(TOKEN),
                    "{status}: header {name}"
                );
            }
            assert!(
                !String::from_utf8_lossy(body).contains(TOKEN),
                "{status}: body"
            );
        }
        let logs = String::from_utf8_lossy(&captured.0.lock().expect("logs")).into_owned();
        assert!(
            logs.contains("pass-through upstream failed"),
            "logs were captured: {logs}"
        );
        assert!(!logs.contains(TOKEN), "token in logs");
        assert!(!logs.contains("client-own"), "client credential in logs");
        let stats = h.sim(reqwest::Method::GET, "/stats", None).await;
        // The anonymous requests carried the server token; the client's carried its own; the
        // one refused for the paused budget never left.
        assert_eq!(stats["authorization_seen"], 6, "{stats}");
        assert_eq!(stats["by_path"].get("/users/limited"), None, "{stats}");
    }

    #[tokio::test]
    async fn head_shares_the_get_entry_and_answers_without_fetching_again() {
        let h = Harness::new(&[]).await;
        let (status, _, body) = call(&h.pass, TestRequest::get().uri("/orgs/Netflix"), b"").await;
        assert_eq!(status, 200);
        assert!(!body.is_empty());
        let (status, headers, _) = call(
            &h.pass,
            TestRequest::default()
                .method(Method::HEAD)
                .uri("/orgs/Netflix"),
            b"",
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(headers.get(CACHE_STATUS).expect("status"), HIT);
        let stats = h.sim(reqwest::Method::GET, "/stats", None).await;
        assert_eq!(stats["total"], 1, "{stats}");
    }

    #[tokio::test]
    async fn gzip_copies_are_made_once_and_served_to_clients_that_accept_them() {
        let h = Harness::new(&[]).await;
        let plain = call(&h.pass, TestRequest::get().uri("/orgs/Netflix/repos"), b"").await;
        assert_eq!(plain.0, 200);
        assert!(plain.1.get(header::CONTENT_ENCODING).is_none());
        let gz = call(
            &h.pass,
            TestRequest::get()
                .uri("/orgs/Netflix/repos")
                .insert_header(("accept-encoding", "gzip, deflate")),
            b"",
        )
        .await;
        assert_eq!(gz.1.get(header::CONTENT_ENCODING).expect("encoded"), "gzip");
        assert!(
            gz.1.get(header::ETAG)
                .expect("etag")
                .as_bytes()
                .starts_with(b"W/")
        );
        let mut decoded = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz.2[..]), &mut decoded)
            .expect("gzip");
        assert_eq!(decoded, plain.2);
        assert!(gz.2.len() < plain.2.len());
        let vary: Vec<_> =
            gz.1.get_all(header::VARY)
                .filter_map(|v| v.to_str().ok())
                .collect();
        assert!(
            vary.iter().any(|v| v.contains("Accept-Encoding")),
            "{vary:?}"
        );
    }
}
