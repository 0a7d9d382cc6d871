//! [`AppState`]: what every handler reaches through `web::Data`. Its own module so that the
//! routes depend on it and not on `startup`, the composition root that builds it (which nothing
//! imports).

use std::sync::Arc;

use hubcache_shared::metrics::MetricsHandle;
use url::Url;

use crate::passthrough::PassThrough;
use crate::served_state::ServedState;

/// What every handler can reach (one instance per process, shared by all workers).
pub(crate) struct AppState {
    /// The in-process copies of cached keys and views.
    pub(crate) served: Arc<ServedState>,
    /// `PUBLIC_URL`, if set (Link headers use it, else the request's Host).
    pub(crate) public_url: Option<Url>,
    /// Everything that is not a cached key, view or health route.
    pub(crate) pass_through: PassThrough,
    /// Renders `GET /metrics` (the process-wide recorder).
    pub(crate) metrics: MetricsHandle,
}
