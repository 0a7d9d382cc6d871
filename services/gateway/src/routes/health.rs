//! `/livez` (the process runs and is not draining) and `/healthcheck` (the seed's readiness:
//! everything loaded), with each org's state, the pass-through counters, the rate-limit budgets
//! paused now and, when webhooks are on, this replica's delivery counters.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::app_state::AppState;
use crate::served_state::{Missing, OrgServed};
use crate::webhook_intake::WebhookIntake;

/// 200 while the process serves, 503 once it drains: the same handler, fed by the same
/// supervised stop token, as the fetcher's and views' admin listeners.
pub(crate) use hubcache_admin::livez;

/// 200 once every cached key and the views of every org GitHub knows are loaded (even while
/// Redis is unreachable, or the fetcher's polls fail: the copies are still served); 503 listing
/// what is missing otherwise. An org GitHub answered 404 for never loads: it is reported as
/// `unknown_org` and does not keep the gateway unready. Both carry `orgs` (each org's state,
/// what it misses, what fails, the bytes its copies hold), `failing` (each cached key whose
/// latest poll failed, with the fetcher's error: a stuck endpoint says why), the Redis state,
/// the pass-through cache's counters, `paused_budgets` (credential partitions GitHub refused for
/// a spent rate limit: kind, `primary`/`secondary`, seconds left; a paused budget does not make
/// the gateway unready, it still answers from its caches) and (with `GITHUB_WEBHOOK_SECRET`)
/// this replica's webhook deliveries.
pub(crate) async fn healthcheck(
    state: web::Data<AppState>,
    webhooks: Option<web::Data<WebhookIntake>>,
) -> HttpResponse {
    // Present only with GITHUB_WEBHOOK_SECRET: this replica's deliveries.
    let webhooks = webhooks.map(|intake| intake.stats.view());
    let missing = state.served.missing();
    let failing = state.served.failing();
    let redis = if state.served.is_stale() {
        "unreachable"
    } else {
        "reachable"
    };
    let orgs: serde_json::Map<String, serde_json::Value> = state
        .served
        .orgs()
        .iter()
        .map(|org| (org.login().to_owned(), org_health(org)))
        .collect();
    let stats = state.pass_through.stats();
    let pass_through = serde_json::json!({
        "entries": stats.cache.entries,
        "bytes": stats.cache.bytes,
        "hits": stats.cache.hits,
        "misses": stats.cache.misses,
        "coalesced": stats.cache.coalesced,
        "stale": stats.cache.stale,
        "revalidated": stats.cache.revalidated,
        "fetch_errors": stats.cache.fetch_errors,
        "evictions": stats.cache.evictions,
        "overloaded": stats.cache.overloaded,
        "bypassed": stats.bypassed,
        "fleet": stats.fleet,
        "paused_budgets": state.pass_through.paused_budgets(),
    });
    if missing.is_empty() {
        HttpResponse::Ok().json(serde_json::json!({
            "status": "ok",
            "orgs": orgs,
            "failing": failing,
            "redis": redis,
            "pass_through": pass_through,
            "webhooks": webhooks,
        }))
    } else {
        let described: Vec<String> = missing
            .iter()
            .map(|path| match failing.get(path) {
                Some(error) => format!("{path} (failing: {error})"),
                None => path.clone(),
            })
            .collect();
        HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(serde_json::json!({
            "message": format!("not ready: not loaded yet: {}", described.join(", ")),
            "missing": missing,
            "orgs": orgs,
            "failing": failing,
            "redis": redis,
            "pass_through": pass_through,
            "webhooks": webhooks,
        }))
    }
}

/// One org's entry in `/healthcheck`: its state, what it misses (`views` for its views), its
/// failing keys, why it is unknown (the fetcher's 404) and the bytes its copies hold.
fn org_health(org: &OrgServed) -> serde_json::Value {
    let state = org.state();
    let missing: Vec<String> = org
        .missing()
        .into_iter()
        .map(|item| match item {
            Missing::Path(path) => path,
            Missing::Views => "views".to_owned(),
        })
        .collect();
    let mut entry = serde_json::json!({
        "state": state.as_str(),
        "missing": missing,
        "failing": org.failing(),
        "redis": if org.is_stale() { "unreachable" } else { "reachable" },
        "served_bytes": org.held_bytes(),
    });
    if let Some((_, error)) = org.unservable() {
        entry["error"] = serde_json::Value::from(error);
    }
    entry
}
