//! hubcache-shared: the small leaf crate every hubcache service builds on.
//!
//! Layout:
//! - [`settings`]: the loader of every service's typed settings (defaults, config file, the
//!   documented environment) and the settings all services share ([`CommonSettings`]); each
//!   service declares its own variables ([`settings::ServiceSettings`]).
//! - [`keys`]: the Redis key and stream schema ([`KeySchema`], per org [`OrgKeys`]); no other
//!   crate spells a key.
//! - [`snapshot`]: snapshots of GitHub endpoints as stored in Redis ([`Snapshot`], [`SnapshotMeta`]).
//! - [`views`]: ranked views of the repos snapshot ([`ViewName`], [`ViewSet`]).
//! - [`events`]: stream events between services ([`RefreshEvent`], [`ViewsEvent`],
//!   [`WebhookHint`]).
//! - [`github`]: the GitHub REST client ([`GithubClient`]), Link and rate-limit parsing; a
//!   folder: `app` (the GitHub App's JWT and installation tokens), `credentials`
//!   ([`github::Credentials`]: each org's credential and its non-secret partition).
//! - [`json_array`]: JSON arrays as bytes: element ranges, split and join, never re-serialised.
//! - [`retry`]: the one backoff policy and the process identity ([`Backoff`], [`instance_id`]).
//! - [`redis_connector`]: how services reach Redis: one Redis, through Sentinel, or a Cluster
//!   ([`RedisConnector`], [`RedisConnection`], [`RedisTarget`]; a folder: target, connection,
//!   sentinel, cluster).
//! - [`telemetry`]: logs and optional OpenTelemetry export.
//! - [`metrics`]: the process-wide Prometheus recorder and process metrics (no HTTP server).
//! - [`shutdown`]: the one graceful-shutdown approach every service follows: signals, the
//!   [`shutdown::Supervisor`] of a service's tasks, the exit code.
//!
//! Architecture Invariant: this crate knows nothing about actix-web or any HTTP server; it is
//! a library of types and clients, not a framework.

pub mod events;
pub mod github;
pub mod json_array;
pub mod keys;
pub mod metrics;
pub mod redis_connector;
pub mod retry;
pub mod settings;
pub mod shutdown;
pub mod snapshot;
pub mod telemetry;
pub mod views;

pub use events::{HintTarget, MalformedEvent, RefreshEvent, ViewsEvent, WebhookHint};
pub use github::{GithubClient, GithubResponse, Links, RateLimit};
pub use keys::{KeySchema, OrgKeys};
pub use redis_connector::{RedisConnection, RedisConnector, RedisTarget};
pub use retry::{Backoff, instance_id};
pub use settings::{CachedEndpoint, CommonSettings, SettingsError, SettingsSource};
pub use snapshot::{SeenRateLimit, Snapshot, SnapshotKind, SnapshotMeta, SnapshotStatus};
pub use views::{ViewEntry, ViewName, ViewSet, ViewValue};
