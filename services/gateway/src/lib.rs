//! gateway: hubcache's HTTP front. Serves every configured organisation's cached keys and views
//! from in-process copies kept current from that org's Redis streams (the seed's view routes
//! serve the first org, `/orgs/{org}/view/...` any of them), and passes every other GitHub
//! request through a coalescing cache.
//!
//! Layout:
//! - [`settings`]: [`Settings`], the gateway's configuration.
//! - `startup`: [`Application`]: builds shared state once, runs the server and its tasks (the
//!   composition root: nothing imports it).
//! - `app_state`: `AppState`, what every handler reaches.
//! - `stream_listener`: one task per org: loads the org's snapshots and views, follows its
//!   refresh and views streams (one `XREAD`, one slot).
//! - `served_state`: the in-process copies per org (`arc_swap`), read lock-free by every
//!   request; each org's state (ready, loading, unknown to GitHub) and the bytes it holds.
//! - `served_snapshot`: one snapshot version prepared once: ETag, gzip/br copies, element
//!   boundaries for paging, the org id.
//! - `served_views`: views pre-rendered in the seed's text format; `TopN` validation.
//! - `representation`: a servable body with its validators and encodings, prepared once.
//! - `content_coding` (`Accept-Encoding` negotiation, gzip and brotli), `conditional`
//!   (`If-None-Match`, weak ETags), `cache_status` (the `Cache-Status` header and stale
//!   warnings): the HTTP rules the copies and the pass-through share, one home each.
//! - `paging`: GitHub-style `page`/`per_page` and `Link` headers.
//! - `passthrough` (a folder, one file per concern), `coalescing_cache`: everything else,
//!   answered from GitHub through a per-key coalescing, bounded cache; `passthrough::token_scope`
//!   decides which anonymous requests carry the server's credential
//!   (`PASSTHROUGH_SERVER_TOKEN_SCOPE`), `passthrough::budget` keeps requests off a credential
//!   whose GitHub rate limit is spent until it lifts.
//! - `fleet_cache`: the pass-through cache shared by all replicas in Redis (L2), behind the
//!   in-process one: fleet-wide coalescing, lock takeover, L1-only fallback.
//! - `routes`: the route table (health, webhooks, views of the first org and org-qualified
//!   views, every org's cached keys, pass-through glue).
//! - `request_hygiene`, `client_rate_limit`, `request_log`: middleware applied before routing.
//! - `public_base`: the gateway's own base URL for Link headers.
//! - `body_urls`: with `PUBLIC_URL`, upstream URLs in bodies (snapshots and pass-through answers)
//!   pointed at the gateway.
//! - `json_error`: the `{"message": ...}` error shape.
//! - `webhook_signature`, `webhook_intake`: GitHub webhook deliveries (`routes::webhooks`):
//!   `X-Hub-Signature-256` verification, and the hint (naming its org, any configured one)
//!   handed to the fetcher through Redis (delivery-id dedup and the hints stream), with the
//!   delivery counters.
//! - `status` (a folder): the operator's page `/status` and its data `/status.json`
//!   (`routes::status`): per-org versions, ages and the fetcher's latest polls and budget, this
//!   process's traffic and cache figures with a bounded history ring, a red/amber/green
//!   verdict; escaped HTML under a strict Content-Security-Policy; `STATUS_PAGE=off` or a
//!   `STATUS_PAGE_ALLOW` list of networks hides it.
//! - `hot_paths` (hidden): view slicing and the pass-through cache, exposed for `benches/` only.

mod app_state;
mod body_urls;
mod cache_status;
mod client_rate_limit;
mod coalescing_cache;
mod conditional;
mod content_coding;
mod fleet_cache;
mod json_error;
mod paging;
mod passthrough;
mod public_base;
mod representation;
mod request_hygiene;
mod request_log;
mod routes;
mod served_snapshot;
mod served_state;
mod served_views;
pub mod settings;
mod startup;
mod status;
mod stream_listener;
mod webhook_intake;
mod webhook_signature;

pub use settings::Settings;
pub use startup::Application;

/// The hot paths the criterion benches (`benches/hot_paths.rs`) measure: a bench target is another
/// crate and cannot reach `pub(crate)` items. For `benches/` only; not a stable API.
#[doc(hidden)]
pub mod hot_paths {
    pub use crate::coalescing_cache::{CachePolicy, CoalescingCache, Fetched, Weigh};
    pub use crate::representation::Representation;
    pub use crate::served_views::{Direction, ServedViews, TopN};
}
