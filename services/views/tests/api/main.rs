//! Integration tests of the views service against a real redis-server: snapshots and refresh
//! events are written exactly as the fetcher writes them, and views workers run in-process.

mod bad_input;
mod cluster;
mod group;
mod helpers;
mod lifecycle;
mod metrics;
mod orgs;
mod recovery;
mod refresh;
mod settings;
