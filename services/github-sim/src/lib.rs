//! github-sim: a stand-in for api.github.com's REST API, faithful where hubcache depends on it
//! (pagination and `Link`, ETags and 304s, the primary rate limit, error bodies), with a control
//! API to change data and inject faults. Used by hubcache's tests, demos and benchmarks.
//!
//! # Layout
//!
//! - `config`: the flags, [`SimConfig`] (clap-derived; `Default` for tests).
//! - `startup`: binding and running the server, [`Application`].
//! - `routes`: the route table; `routes::github` answers GitHub paths, `routes::control` the
//!   `/_sim/` control API.
//! - `dataset`: the dataset file format, [`Dataset`] and its records.
//! - `generator`: the deterministic org generator (no clock); `generator::rng` its seeded
//!   SplitMix64 stream, `generator::words` the word lists, `generator::root_document` GitHub's
//!   `GET /`, `generator::github_format` node ids, avatar URLs and timestamps.
//! - `catalog`: the data indexed by GitHub address, with cached serialized bodies and ETags;
//!   `catalog::render` turns values into body bytes.
//! - `pagination`: `per_page`/`page` and the `Link` header.
//! - `conditional`: ETags, `If-None-Match`, `If-Modified-Since`.
//! - `credential`: the non-secret label of a request's credential, [`credential_label`].
//! - `app_auth`: GitHub App authentication: JWT verification, one installation per org,
//!   expiring installation tokens, revoked installations.
//! - `rate_limit`: the primary rate limit windows, one per credential (anonymous: per client IP).
//! - `faults`: queued injected faults.
//! - `stats`: request counters.
//! - `webhooks`: org webhooks (registered hooks, signed deliveries of every mutation, the
//!   delivery log, redelivery).
//! - `state`: what the workers share.
//!
//! # GitHub routes (GET and HEAD)
//!
//! `/`, `/orgs/{org}`, `/orgs/{org}/repos`, `/orgs/{org}/members`, `/organizations/{id}/repos`,
//! `/organizations/{id}/members`, `/repos/{owner}/{repo}`, `/users/{user}`, `/users/{user}/orgs`,
//! `/user/{id}/orgs`, and the dataset's extra `paths`. Logins and repository names are
//! case-insensitive. Anything else, or another method, is GitHub's 404
//! `{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}`.
//!
//! # Dataset format (`--dataset FILE`)
//!
//! One JSON object; every key is optional:
//!
//! ```json
//! {
//!   "root": { "current_user_url": "https://api.github.com/user" },
//!   "orgs": [
//!     {
//!       "org": { "login": "acme", "id": 42, "public_repos": 1 },
//!       "repos": [ { "id": 7, "name": "rocket", "full_name": "acme/rocket", "network_count": 3 } ],
//!       "members": [ { "login": "ann", "id": 1001, "type": "User" } ]
//!     }
//!   ],
//!   "users": [
//!     { "user": { "login": "bob", "id": 1002, "type": "User" }, "orgs": ["acme"] }
//!   ],
//!   "paths": { "/orgs/acme/teams": [ { "id": 1, "name": "core" } ] }
//! }
//! ```
//!
//! - `root`: served at `/` (default: GitHub's 33-key root document under `--body-base-url`).
//! - `orgs[].org`: the org object; needs `login` and a numeric `id` (for `/organizations/{id}`).
//! - `orgs[].repos[]`: full repository objects (as `GET /repos/{owner}/{repo}` returns them, at
//!   `/repos/{org login}/{name}`); each needs `name`. List pages leave out the full-only fields
//!   (`organization`, `network_count`, `subscribers_count`, `parent`, `source`, ...).
//! - `orgs[].members[]`: simple-user objects; each needs `login`. Also served at
//!   `/users/{login}` unless `users` has that login.
//! - `users[]`: `user` is the object served at `/users/{login}`; `orgs` (org logins from this
//!   file, or org objects) is its org list, by default the orgs listing it as a member.
//! - `paths`: exact path to JSON value, served as is (arrays are paginated like lists).
//!
//! # Webhooks
//!
//! `POST /_sim/orgs/{org}/hooks` registers an org webhook (GitHub's request shape:
//! `{"config": {"url": "...", "secret": "..."}, "events": ["*"]}`), or `--webhook-url` with
//! `--webhook-secret` registers one on every org at start. Every data mutation then sends the
//! matching delivery, signed like GitHub's (`X-GitHub-Event`, `X-GitHub-Delivery`,
//! `X-Hub-Signature-256`, `User-Agent: GitHub-Hookshot/...`): a repository added → `repository`
//! `created`, deleted → `deleted`, patched → `renamed`, `archived`/`unarchived`,
//! `privatized`/`publicized`, `star` `created`/`deleted` (a `stargazers_count` change) or else
//! `edited` with `changes`. The delivery log and redelivery are under
//! `/_sim/orgs/{org}/hooks/{id}/deliveries`.
//!
//! Objects are served verbatim (compact JSON). `GET /_sim/dataset` returns the current state in
//! this format, so a generated or mutated state can be saved and replayed.

mod app_auth;
mod catalog;
mod conditional;
mod config;
mod credential;
mod dataset;
mod faults;
mod generator;
mod pagination;
mod rate_limit;
mod routes;
mod startup;
mod state;
mod stats;
mod webhooks;

pub use config::SimConfig;
pub use credential::{ANONYMOUS, credential_label};
pub use dataset::{Dataset, DatasetError, JsonObject, OrgRecord, UserOrg, UserRecord};
pub use startup::Application;
