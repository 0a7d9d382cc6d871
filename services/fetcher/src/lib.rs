//! fetcher: keeps an exact, fresh copy of each configured GitHub organisation's endpoints in
//! Redis while spending as little of GitHub's rate limit as possible.
//!
//! Layout:
//! - [`settings`]: [`Settings`] (shared settings plus `LEASE_SECS` and request limits).
//! - [`startup`]: [`Application`], built by `main` and the tests; runs one fetch loop per org,
//!   the membership heartbeat, the hint reader and the admin listener (`hubcache-admin`) under
//!   one supervisor.
//! - [`membership`]: sharing the orgs out between replicas: the `{p}:fetchers` heartbeat and
//!   rendezvous hashing with bounded load ([`assign_orgs`], [`preferred_fetcher`]): a replica
//!   takes an org's lease only while the org is assigned to it among the live replicas.
//! - `fetch_loop`: one org's task: wait until preferred and holding the org's lease, then poll
//!   its due endpoints while holding it; hand the lease over when another replica is preferred.
//! - `hints`: follows the webhook hints stream the gateway writes; hinted endpoints are polled
//!   at once by the loop of the org the hint names (a burst coalesces into one revalidation).
//! - `lease`: the per-org Redis lease that lets exactly one replica poll an org.
//! - `poller`: one poll of one endpoint: conditional requests for every page, merged bytes.
//! - `snapshot_writer`: the Lua script that replaces a snapshot and appends its event in one
//!   step, fenced by the org's lease and the version.
//! - `schedule`: per-endpoint due times and jittered exponential backoff (the longest at once
//!   for GitHub's 404); webhook hints (due now, rechecks while ETags lag, the safety interval
//!   while deliveries arrive).
//! - `budget`: the rate-limit budget, one per process shared by the org loops: pauses GitHub
//!   asks for, interval stretching.
//! - `poll_metrics`: metric names, HELP texts and what a poll records (per org: lease held;
//!   per replica: orgs held, live members).
//!
//! Architecture Invariant: a stored snapshot is only ever replaced by a complete, valid page set
//! fetched while holding its org's lease; every failure is recorded in `status` only.

pub mod membership;
pub mod settings;
pub mod startup;

mod budget;
mod fetch_loop;
mod hints;
mod lease;
mod poll_metrics;
mod poller;
mod schedule;
mod snapshot_writer;

pub use membership::{assign_orgs, preferred_fetcher};
pub use settings::Settings;
pub use startup::Application;
