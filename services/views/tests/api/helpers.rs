//! Test support: a real redis-server, views workers running in-process, and the fetcher's side
//! of the contract (snapshots and refresh events written exactly as the fetcher writes them).

use std::collections::BTreeMap;
use std::time::Duration;

use hubcache_shared::events::RefreshEvent;
use hubcache_shared::settings::SettingsSource;
use hubcache_shared::shutdown::CancellationToken;
use hubcache_shared::snapshot::{self, FIELD_BODY, FIELD_META, FIELD_VERSION};
use hubcache_shared::{KeySchema, OrgKeys, SnapshotKind, SnapshotMeta, ViewSet, ViewsEvent};
use hubcache_testkit::{RedisServer, eventually};
use redis::AsyncCommands as _;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamInfoGroupsReply, StreamPendingReply, StreamRangeReply};
use serde_json::{Value, json};
use views::{Application, Settings, ViewsStats};

/// The organisation the tests cache (the first, when there are several).
pub const ORG: &str = "acme";
/// How long a test waits for something that should take milliseconds.
pub const SOON: Duration = Duration::from_secs(5);

/// A Redis with zero or more views workers attached, serving one or more organisations.
///
/// Dereferences to the first organisation's [`TestOrg`], so single-org tests read as before.
pub struct TestApp {
    pub redis: RedisServer,
    /// Every organisation's pipeline, first organisation first.
    pub orgs: Vec<TestOrg>,
    pub workers: Vec<TestWorker>,
}

/// One organisation's side of the contract: its keys and repos path, and the fetcher's writes
/// and the gateway's reads of them.
pub struct TestOrg {
    /// The login as configured.
    pub org: String,
    pub keys: OrgKeys,
    pub repos_path: String,
    redis_url: String,
}

impl std::ops::Deref for TestApp {
    type Target = TestOrg;

    fn deref(&self) -> &TestOrg {
        &self.orgs[0]
    }
}

/// One running views worker.
pub struct TestWorker {
    /// All organisations' counters together.
    pub stats: ViewsStats,
    /// Each organisation's counters, by login as configured.
    pub org_stats: BTreeMap<String, ViewsStats>,
    pub consumer: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestWorker {
    /// Cancels the worker and waits for `run` to return.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(SOON, self.task).await??
    }
}

/// A worker on a runtime of its own, so that it can be killed like a process: dropping the
/// runtime drops every task the service spawned (aborting `run`'s task alone would leave its
/// consumer and claim tasks running).
pub struct KillableWorker {
    pub stats: ViewsStats,
    pub consumer: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl KillableWorker {
    /// Kills it: every task stops at its next await, nothing in flight is acknowledged.
    pub fn kill(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for KillableWorker {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for worker in &self.workers {
            worker.shutdown.cancel();
        }
    }
}

/// Redis plus one running worker.
pub async fn spawn_app() -> TestApp {
    let mut app = spawn_redis().await;
    app.spawn_worker().await;
    app
}

/// Redis only: tests that prepare state before any worker starts.
pub async fn spawn_redis() -> TestApp {
    spawn_redis_with_orgs(&[ORG]).await
}

/// Redis only, for workers serving `orgs` (`GITHUB_ORGS`, first one first).
pub async fn spawn_redis_with_orgs(orgs: &[&str]) -> TestApp {
    let redis = RedisServer::start().await.expect("redis-server starts");
    let settings = settings_for_orgs(&redis.url(), orgs);
    let schema = KeySchema::new(&settings.common.key_prefix);
    TestApp {
        orgs: settings
            .org_repos()
            .into_iter()
            .map(|source| TestOrg {
                keys: schema.org(&source.org),
                org: source.org,
                repos_path: source.repos_path,
                redis_url: redis.url(),
            })
            .collect(),
        redis,
        workers: Vec::new(),
    }
}

/// Settings as a deployment would load them for `orgs` (`GITHUB_ORGS`), with claim timing
/// shortened for tests.
pub fn settings_for_orgs(redis_url: &str, orgs: &[&str]) -> Settings {
    let orgs = orgs.join(",");
    let mut settings = Settings::load(&SettingsSource::from_vars([
        ("REDIS_URL", redis_url),
        ("GITHUB_ORGS", orgs.as_str()),
        ("KEY_PREFIX", "views-test"),
        ("SHUTDOWN_TIMEOUT_SECS", "2"),
        // No admin listener (several workers run in one test); tests/api/metrics.rs turns it on.
        ("METRICS_PORT", "0"),
    ]))
    .expect("test settings are valid");
    settings.claim_idle_secs = 1;
    settings.claim_interval_ms = 200;
    settings.consumer_expiry_secs = 3;
    settings.validate().expect("shortened settings are valid");
    settings
}

/// A repo object with GitHub's field names (watchers equal stars, as GitHub reports them).
pub fn repo(full_name: &str, forks: i64, stars: i64, open_issues: i64, updated_at: &str) -> Value {
    json!({
        "id": 1,
        "name": full_name.split('/').nth(1).unwrap_or(full_name),
        "full_name": full_name,
        "private": false,
        "owner": {"login": ORG, "id": 9},
        "forks_count": forks,
        "stargazers_count": stars,
        "watchers_count": stars,
        "open_issues_count": open_issues,
        "updated_at": updated_at,
        "topics": ["test"],
    })
}

impl TestApp {
    /// Starts another worker in the group, serving every org of the app.
    pub async fn spawn_worker(&mut self) -> &TestWorker {
        let orgs: Vec<String> = self.orgs.iter().map(|o| o.org.clone()).collect();
        let orgs: Vec<&str> = orgs.iter().map(String::as_str).collect();
        self.spawn_worker_for(&orgs).await
    }

    /// Starts another worker serving only `orgs` (as a process configured with fewer or other
    /// orgs than the app's would).
    pub async fn spawn_worker_for(&mut self, orgs: &[&str]) -> &TestWorker {
        let application = Application::build(settings_for_orgs(&self.redis.url(), orgs))
            .await
            .expect("application builds");
        let shutdown = CancellationToken::new();
        let stats = application.stats();
        let org_stats = orgs
            .iter()
            .map(|org| {
                let stats = application.org_stats(org).expect("a configured org");
                ((*org).to_owned(), stats)
            })
            .collect();
        let consumer = application.consumer_name().to_owned();
        let task = tokio::spawn(application.run(shutdown.clone()));
        self.workers.push(TestWorker {
            stats,
            org_stats,
            consumer,
            shutdown,
            task,
        });
        self.workers.last().expect("just pushed")
    }

    /// Starts a worker in the group on its own runtime (see [`KillableWorker`]).
    pub async fn spawn_killable_worker(&self) -> KillableWorker {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let settings = self.settings();
        let (started, ready) = tokio::sync::oneshot::channel();
        runtime.spawn(async move {
            let application = Application::build(settings)
                .await
                .expect("application builds");
            let _ = started.send((application.stats(), application.consumer_name().to_owned()));
            application.run(CancellationToken::new()).await
        });
        let (stats, consumer) = ready.await.expect("the worker started");
        KillableWorker {
            stats,
            consumer,
            runtime: Some(runtime),
        }
    }

    /// The settings every worker of this app is built with.
    pub fn settings(&self) -> Settings {
        let orgs: Vec<&str> = self.orgs.iter().map(|o| o.org.as_str()).collect();
        settings_for_orgs(&self.redis.url(), &orgs)
    }

    /// The pipeline of organisation `org` (as configured).
    pub fn org(&self, org: &str) -> &TestOrg {
        self.orgs
            .iter()
            .find(|o| o.org == org)
            .expect("a configured org")
    }

    /// The sum of one counter over every worker.
    pub fn total(&self, counter: fn(&ViewsStats) -> u64) -> u64 {
        self.workers.iter().map(|w| counter(&w.stats)).sum()
    }
}

impl TestOrg {
    /// A fresh connection (the server may have been restarted since the last one).
    pub async fn conn(&self) -> MultiplexedConnection {
        redis::Client::open(self.redis_url.as_str())
            .expect("a loopback redis URL is valid")
            .get_multiplexed_async_connection()
            .await
            .expect("test connects to redis")
    }

    /// The snapshot meta the fetcher would store with `body` as version `version`.
    pub fn meta(&self, version: u64, body: &[u8]) -> SnapshotMeta {
        SnapshotMeta {
            path: self.repos_path.clone(),
            version,
            content_hash: snapshot::content_hash(body),
            kind: SnapshotKind::List,
            fetched_at_ms: snapshot::now_ms(),
            pages: Vec::new(),
        }
    }

    /// Writes the repos snapshot hash as the fetcher does, without an event.
    pub async fn write_snapshot(&self, body: &[u8], meta: &SnapshotMeta) {
        let _: () = self
            .conn()
            .await
            .hset_multiple(
                self.keys.snapshot(&self.repos_path),
                &[
                    (FIELD_BODY, body.to_vec()),
                    (
                        FIELD_META,
                        serde_json::to_vec(meta).expect("meta serialises"),
                    ),
                    (FIELD_VERSION, meta.version.to_string().into_bytes()),
                ],
            )
            .await
            .expect("snapshot written");
    }

    /// The fetcher's change: the snapshot and its refresh event, atomically (`MULTI`).
    pub async fn publish_snapshot(&self, body: &[u8], meta: &SnapshotMeta) -> RefreshEvent {
        let event = RefreshEvent {
            path: meta.path.clone(),
            version: meta.version,
            content_hash: meta.content_hash.clone(),
            at_ms: snapshot::now_ms(),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned()),
        };
        let _: () = redis::pipe()
            .atomic()
            .hset_multiple(
                self.keys.snapshot(&self.repos_path),
                &[
                    (FIELD_BODY, body.to_vec()),
                    (
                        FIELD_META,
                        serde_json::to_vec(meta).expect("meta serialises"),
                    ),
                    (FIELD_VERSION, meta.version.to_string().into_bytes()),
                ],
            )
            .ignore()
            .xadd(self.keys.refresh_stream(), "*", &event.to_fields())
            .ignore()
            .query_async(&mut self.conn().await)
            .await
            .expect("snapshot and event written");
        event
    }

    /// A new repos snapshot version holding `repos`, published with its event.
    pub async fn publish_repos(&self, version: u64, repos: &Value) -> RefreshEvent {
        let body = serde_json::to_vec(repos).expect("repos serialise");
        self.publish_snapshot(&body, &self.meta(version, &body))
            .await
    }

    /// Appends a raw entry to the refresh stream; returns its id.
    pub async fn xadd_refresh(&self, fields: &[(&str, String)]) -> String {
        self.conn()
            .await
            .xadd(self.keys.refresh_stream(), "*", fields)
            .await
            .expect("xadd")
    }

    /// The stored views, if any.
    pub async fn views(&self) -> Option<ViewSet> {
        ViewSet::load(&mut self.conn().await, &self.keys)
            .await
            .expect("views readable")
    }

    /// One raw field of the views hash (the exact JSON the gateway serves from).
    pub async fn views_field(&self, field: &str) -> Option<String> {
        self.conn()
            .await
            .hget(self.keys.views(), field)
            .await
            .expect("hget")
    }

    /// Waits until views of exactly `version` are stored.
    pub async fn wait_for_views(&self, version: u64, timeout: Duration) -> ViewSet {
        eventually(timeout, &format!("views of version {version}"), || async {
            self.views().await.filter(|v| v.version == version)
        })
        .await
        .expect("views stored in time")
    }

    /// Every views event appended so far, oldest first.
    pub async fn views_events(&self) -> Vec<ViewsEvent> {
        let reply: StreamRangeReply = self
            .conn()
            .await
            .xrange_all(self.keys.views_stream())
            .await
            .expect("xrange");
        reply
            .ids
            .iter()
            .map(|e| ViewsEvent::from_entry(e).expect("views events are well formed"))
            .collect()
    }

    /// Entries delivered to some consumer of the group and not acknowledged.
    pub async fn pending(&self) -> usize {
        let reply: StreamPendingReply = self
            .conn()
            .await
            .xpending(self.keys.refresh_stream(), self.keys.views_group())
            .await
            .expect("xpending");
        reply.count()
    }

    /// The group's last delivered id, `None` if the group does not exist.
    pub async fn last_delivered(&self) -> Option<String> {
        let reply: StreamInfoGroupsReply = self
            .conn()
            .await
            .xinfo_groups(self.keys.refresh_stream())
            .await
            .ok()?;
        reply
            .groups
            .into_iter()
            .find(|g| g.name == self.keys.views_group())
            .map(|g| g.last_delivered_id)
    }

    /// Waits until every entry up to `id` was delivered and acknowledged.
    pub async fn wait_acked(&self, id: &str) {
        eventually(
            SOON,
            &format!("entry {id} delivered and acknowledged"),
            || async {
                let delivered = self
                    .last_delivered()
                    .await
                    .is_some_and(|last| stream_id(&last) >= stream_id(id));
                (delivered && self.pending().await == 0).then_some(())
            },
        )
        .await
        .expect("acknowledged in time");
    }

    /// The names of the group's consumers.
    pub async fn consumers(&self) -> Vec<String> {
        let reply: redis::streams::StreamInfoConsumersReply = self
            .conn()
            .await
            .xinfo_consumers(self.keys.refresh_stream(), self.keys.views_group())
            .await
            .expect("xinfo consumers");
        reply.consumers.into_iter().map(|c| c.name).collect()
    }
}

/// A stream id as a comparable pair.
fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// Waits until `condition` holds (for in-process counters).
pub async fn wait_until(condition: impl Fn() -> bool) {
    eventually(SOON, "condition", || async { condition().then_some(()) })
        .await
        .expect("condition met in time");
}
