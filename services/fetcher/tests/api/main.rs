//! The fetcher's integration tests: a real redis-server, an in-process github-sim, and one or
//! more fetchers built exactly as `main` builds them.

mod app_auth;
mod change;
mod cold_start;
mod corruption;
mod faults;
mod helpers;
mod lease;
mod lifecycle;
mod metrics;
mod proxy;
mod settings;
mod sharding;
mod steady_state;
