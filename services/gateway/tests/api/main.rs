//! The gateway's integration tests: real redis-server, github-sim, and (for the pipeline tests)
//! the real fetcher and views services, all in process. Each test starts its own stack.

mod cached_keys;
mod cluster;
mod health;
mod helpers;
mod http_semantics;
mod hygiene;
mod metrics;
mod passthrough;
mod pipeline;
mod rate_limit;
mod resilience;
mod sentinel;
mod traces;
mod views;
