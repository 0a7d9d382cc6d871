//! Seeding Redis as the fetcher and views services write it (the shared schema, field
//! constants, `SnapshotMeta`, `ViewSet::to_fields`), with their stream events, in any org's
//! keys; and the seeded bodies.

use hubcache_shared::events::{RefreshEvent, ViewsEvent};
use hubcache_shared::snapshot::{FIELD_BODY, FIELD_META, FIELD_VERSION, content_hash, now_ms};
use hubcache_shared::{SnapshotKind, SnapshotMeta, ViewEntry, ViewName, ViewSet, ViewValue};

use super::{ORG, ORG_ID, REPO_COUNT, TestApp};

impl TestApp {
    /// Stores a snapshot of the first org and appends its refresh event, as the fetcher does.
    pub async fn seed_snapshot(&self, path: &str, kind: SnapshotKind, body: &str, version: u64) {
        self.seed_org_snapshot(&self.org, path, kind, body, version)
            .await;
    }

    /// Stores a snapshot in `org`'s keys and appends its refresh event to `org`'s stream.
    pub async fn seed_org_snapshot(
        &self,
        org: &str,
        path: &str,
        kind: SnapshotKind,
        body: &str,
        version: u64,
    ) {
        let keys = self.keys.org(org);
        let meta = SnapshotMeta {
            path: path.to_owned(),
            version,
            content_hash: content_hash(body.as_bytes()),
            kind,
            fetched_at_ms: now_ms(),
            pages: vec![],
        };
        let mut conn = self.redis_conn().await;
        let _: () = redis::cmd("HSET")
            .arg(keys.snapshot(path))
            .arg(FIELD_BODY)
            .arg(body)
            .arg(FIELD_META)
            .arg(serde_json::to_string(&meta).expect("meta"))
            .arg(FIELD_VERSION)
            .arg(version)
            .query_async(&mut conn)
            .await
            .expect("HSET snapshot");
        let event = RefreshEvent {
            path: path.to_owned(),
            version,
            content_hash: meta.content_hash.clone(),
            at_ms: now_ms(),
            traceparent: None,
        };
        let mut xadd = redis::cmd("XADD");
        xadd.arg(keys.refresh_stream()).arg("*");
        for (k, v) in event.to_fields() {
            xadd.arg(k).arg(v);
        }
        let _: String = xadd.query_async(&mut conn).await.expect("XADD refresh");
    }

    /// Stores a view set of the first org and appends its views event, as the views service
    /// does.
    pub async fn seed_views(&self, set: &ViewSet) {
        self.seed_org_views(&self.org, set).await;
    }

    /// Stores a view set in `org`'s keys and appends its views event to `org`'s stream.
    pub async fn seed_org_views(&self, org: &str, set: &ViewSet) {
        let keys = self.keys.org(org);
        let mut conn = self.redis_conn().await;
        let mut hset = redis::cmd("HSET");
        hset.arg(keys.views());
        for (k, v) in set.to_fields().expect("fields") {
            hset.arg(k).arg(v);
        }
        let _: () = hset.query_async(&mut conn).await.expect("HSET views");
        let event = ViewsEvent {
            version: set.version,
            at_ms: now_ms(),
            traceparent: None,
        };
        let mut xadd = redis::cmd("XADD");
        xadd.arg(keys.views_stream()).arg("*");
        for (k, v) in event.to_fields() {
            xadd.arg(k).arg(v);
        }
        let _: String = xadd.query_async(&mut conn).await.expect("XADD views");
    }

    /// Seeds every cached key of the seeded org and its views, at `version`.
    pub async fn seed_all(&self, version: u64) {
        self.seed_snapshot("/", SnapshotKind::Object, &root_body(), version)
            .await;
        self.seed_snapshot(
            &format!("/orgs/{ORG}"),
            SnapshotKind::Object,
            &org_body(version),
            version,
        )
        .await;
        self.seed_snapshot(
            &format!("/orgs/{ORG}/repos"),
            SnapshotKind::List,
            &repos_body(version),
            version,
        )
        .await;
        self.seed_snapshot(
            &format!("/orgs/{ORG}/members"),
            SnapshotKind::List,
            &members_body(),
            version,
        )
        .await;
        self.seed_views(&view_set(version)).await;
    }

    /// Seeds the cached keys of another org (`/orgs/{org}`, with numeric id `id`, its members
    /// and repos) and its views, at `version`, in that org's keys.
    pub async fn seed_other_org(&self, org: &str, id: u64, version: u64) {
        let body = format!(r#"{{"login":"{org}","id":{id},"description":"version {version}"}}"#);
        self.seed_org_snapshot(
            org,
            &format!("/orgs/{org}"),
            SnapshotKind::Object,
            &body,
            version,
        )
        .await;
        self.seed_org_snapshot(
            org,
            &format!("/orgs/{org}/repos"),
            SnapshotKind::List,
            &repos_body_of(org, version),
            version,
        )
        .await;
        self.seed_org_snapshot(
            org,
            &format!("/orgs/{org}/members"),
            SnapshotKind::List,
            &members_body(),
            version,
        )
        .await;
        self.seed_org_views(org, &view_set_of(org, version)).await;
    }
}

/// The seeded `/` body.
pub fn root_body() -> String {
    r#"{"current_user_url":"https://api.github.com/user","organization_url":"https://api.github.com/orgs/{org}"}"#
        .to_owned()
}

/// The seeded `/orgs/acme` body (its description names the version).
pub fn org_body(version: u64) -> String {
    format!(r#"{{"login":"{ORG}","id":{ORG_ID},"description":"version {version}"}}"#)
}

/// The seeded repos list: irregular spacing on purpose (bytes must be served as stored).
pub fn repos_body(version: u64) -> String {
    repos_body_of(ORG, version)
}

/// [`repos_body`] of any org.
pub fn repos_body_of(org: &str, version: u64) -> String {
    let repos: Vec<String> = (0..REPO_COUNT)
        .map(|i| {
            format!(
                r#"{{"id": {i}, "full_name":"{org}/r{i}", "stargazers_count": {}, "v":{version}, "pad":"{}"}}"#,
                100 - i,
                "x".repeat(200)
            )
        })
        .collect();
    format!("[{}]", repos.join(",\n "))
}

/// The seeded members list.
pub fn members_body() -> String {
    r#"[{"login":"ann","id":1},{"login":"bob","id":2},{"login":"cy","id":3}]"#.to_owned()
}

/// The seeded views: stars are `[acme/r0, 100], ... [acme/r6, 94]`.
pub fn view_set(version: u64) -> ViewSet {
    view_set_of(ORG, version)
}

/// [`view_set`] of any org (`[{org}/r0, 100], ...`).
pub fn view_set_of(org: &str, version: u64) -> ViewSet {
    let counts: Vec<ViewEntry> = (0..REPO_COUNT)
        .map(|i| ViewEntry(format!("{org}/r{i}"), ViewValue::Count(100 - i as i64)))
        .collect();
    let updated: Vec<ViewEntry> = (0..REPO_COUNT)
        .map(|i| {
            ViewEntry(
                format!("{org}/r{i}"),
                ViewValue::Timestamp(format!("2024-01-0{}T00:00:00Z", 9 - i)),
            )
        })
        .collect();
    ViewSet {
        version,
        source_hash: content_hash(repos_body_of(org, version).as_bytes()),
        views: ViewName::ALL
            .into_iter()
            .map(|v| {
                (
                    v,
                    if v == ViewName::LastUpdated {
                        updated.clone()
                    } else {
                        counts.clone()
                    },
                )
            })
            .collect(),
    }
}
