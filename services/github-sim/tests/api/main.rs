//! github-sim's HTTP behaviour, tested against a real server on a free port: pagination and
//! `Link`, ETags and 304s, the rate limit, faults, errors, the control API and the data sources.

mod app_auth;
mod conditional;
mod control;
mod data_sources;
mod faults;
mod helpers;
mod pagination;
mod rate_limit;
mod routes;
mod webhooks;
