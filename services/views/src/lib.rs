//! views: turns each new copy of an organisation's repos snapshot into ranked views, exactly
//! once per change, surviving crashes.
//!
//! The fetcher appends a refresh event to an organisation's refresh stream after each real
//! snapshot change of that org. A views process runs one worker per organisation of
//! `GITHUB_ORGS`: each consumes its org's stream through the org's consumer group `views` (its
//! own tasks, blocking connection and claim of dead consumers' entries), recomputes every view
//! from the org's current repos snapshot (`/orgs/{org}/repos`) and stores them under the org's
//! keys in one versioned write that also announces them on the org's views stream. A slow or
//! broken org never holds up another. Several processes may run; each change is stored and
//! announced once.
//!
//! # Layout
//!
//! - [`settings`](Settings): the shared settings plus the claim timing ([`Settings`]), and each
//!   organisation's repos snapshot path ([`OrgRepos`]).
//! - [`startup`](Application): building one worker per organisation and running their tasks
//!   and the admin listener (`hubcache-admin`) under one supervisor ([`Application`]).
//! - `worker`: one organisation's consumer loop (`XREADGROUP`, catch-up, retries);
//!   `worker/claim`: its claim loop (`XAUTOCLAIM`, forgetting dead consumers, backlog gauges).
//! - [`ranking`](rank_repos): the pure function from a repos body to a `ViewSet` (ordering, ties,
//!   missing values).
//! - `views_store`: the Lua script that stores a view set only if newer and appends its
//!   `ViewsEvent` in the same step.
//! - [`stats`](ViewsStats): counters of what the workers did (per organisation and in total)
//!   and the metrics, labelled by `org`.
//! - `dropped_connection`: one immediate retry of idempotent commands after Redis dropped the
//!   connection.
//!
//! # Redis
//!
//! Per organisation, under its hash tag `{p:org}` (see `hubcache_shared::keys`): reads
//! `{p:org}:stream:refresh` (group `views`) and `{p:org}:snapshot:/orgs/{org}/repos`; writes
//! `{p:org}:views` and `{p:org}:stream:views`. Nothing it touches spans two orgs, so every
//! command and script runs on a Redis Cluster.

mod dropped_connection;
mod ranking;
mod settings;
mod startup;
mod stats;
mod views_store;
mod worker;

pub use ranking::{RankingError, rank_repos};
pub use settings::{OrgRepos, Settings};
pub use startup::Application;
pub use stats::ViewsStats;
