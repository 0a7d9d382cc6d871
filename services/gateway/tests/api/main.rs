//! The gateway's integration tests: real redis-server, github-sim, and (for the pipeline tests)
//! the real fetcher and views services, all in process. Each test starts its own stack.

mod bad_input;
mod cached_keys;
mod cluster;
mod coalescing;
mod fleet;
mod health;
mod helpers;
mod http_semantics;
mod hygiene;
mod lifecycle;
mod load_balancer;
mod metrics;
mod orgs;
mod overload;
mod passthrough;
mod pipeline;
mod rate_limit;
mod redis_permissions;
mod redis_restart;
mod resilience;
mod sentinel;
mod settings;
mod spent_budget;
mod status;
mod token_scope;
mod traces;
mod views;
mod webhooks;
