//! views: turns each new copy of the repos snapshot into ranked views, exactly once per change,
//! surviving crashes.
//!
//! The fetcher appends a refresh event after each real snapshot change; views workers consume
//! them through the consumer group `views`, recompute every view from the current repos snapshot
//! (`/orgs/{GITHUB_ORG}/repos`) and store them in one versioned write that also announces them on
//! the views stream. Several workers may run; each change is stored and announced once.
//!
//! # Layout
//!
//! - [`settings`](Settings): the shared settings plus the claim timing ([`Settings`]).
//! - [`startup`](Application): building and running the worker tasks and the admin listener
//!   (`hubcache-admin`) under one supervisor ([`Application`]).
//! - `worker`: the consumer loop (`XREADGROUP`, catch-up, retries) and the claim loop
//!   (`XAUTOCLAIM`).
//! - [`ranking`](rank_repos): the pure function from a repos body to a `ViewSet` (ordering, ties,
//!   missing values).
//! - `views_store`: the Lua script that stores a view set only if newer and appends its
//!   `ViewsEvent` in the same step.
//! - [`stats`](ViewsStats): counters of what a worker did.
//! - `dropped_connection`: one immediate retry of idempotent commands after Redis dropped the
//!   connection.
//!
//! # Redis
//!
//! Reads `{p}:stream:refresh` (group `views`) and `{p}:snapshot:/orgs/{org}/repos`; writes
//! `{p}:views` and `{p}:stream:views` (see `hubcache_shared::keys`).

mod dropped_connection;
mod ranking;
mod settings;
mod startup;
mod stats;
mod views_store;
mod worker;

pub use ranking::{RankingError, rank_repos};
pub use settings::Settings;
pub use startup::Application;
pub use stats::ViewsStats;
