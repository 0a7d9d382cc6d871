//! The gateway's routes, registered in one place so the table reads top to bottom:
//! health, metrics, the status page, the webhook receiver, views (the seed's, for the first org, and the
//! org-qualified `/orgs/{org}/view/...` for every org), the orgs' lists by numeric id, every
//! org's cached keys, then the pass-through for everything else.

mod cached_keys;
mod health;
mod metrics;
mod pass_through;
pub(crate) mod status;
mod views;
mod webhooks;

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponseBuilder, guard, web};

use crate::app_state::AppState;
use crate::cache_status::{CACHE_STATUS, HIT, HIT_STALE, STALE_WARNING};
use crate::served_state::ServedState;
use crate::served_views::Direction;

pub(crate) use metrics::describe as describe_metrics;
pub(crate) use pass_through::pass_through;

/// `hubcache_served_copy_responses_total{result}`: answers from the in-process copies (`hit`, or
/// `stale` while Redis is unreachable).
const SERVED_COPY_METRIC: &str = "hubcache_served_copy_responses_total";

/// Where GitHub's org webhook delivers (`POST`, on the gateway's port and `PUBLIC_URL`).
pub(crate) const WEBHOOK_PATH: &str = "/webhooks/github";

/// Registers every route. `served` tells which cached paths exist, every org's (fixed at
/// start).
///
/// The hot resources are named after their first pattern: the request log labels requests with
/// the route template, and reading a matched resource's name costs nothing, while asking actix for
/// the matched pattern rebuilds it as a new `String` (see `request_log::route_label`).
pub(crate) fn configure(cfg: &mut web::ServiceConfig, served: &ServedState) {
    let get_or_head = || guard::Any(guard::Get()).or(guard::Head());
    cfg.route(
        "/livez",
        web::route().guard(get_or_head()).to(health::livez),
    )
    .route(
        "/healthcheck",
        web::route().guard(get_or_head()).to(health::healthcheck),
    )
    .route(
        "/metrics",
        web::route().guard(get_or_head()).to(metrics::metrics),
    )
    .route(
        "/status",
        web::route().guard(get_or_head()).to(status::page),
    )
    .route(
        "/status.json",
        web::route().guard(get_or_head()).to(status::json),
    )
    .service(
        web::resource(WEBHOOK_PATH)
            .name(WEBHOOK_PATH)
            .route(web::post().to(webhooks::receive))
            .default_service(web::to(pass_through)),
    );
    for (prefix, direction) in [("top", Direction::Top), ("bottom", Direction::Bottom)] {
        let pattern = format!("/view/{prefix}/{{n}}/{{view}}");
        cfg.service(
            web::resource([pattern.clone(), format!("{pattern}/")])
                .name(&pattern)
                .route(web::route().guard(get_or_head()).to(
                    move |req: HttpRequest, state: web::Data<AppState>| {
                        views::view(req, state, direction)
                    },
                ))
                .default_service(web::to(pass_through)),
        );
        let pattern = format!("/orgs/{{org}}/view/{prefix}/{{n}}/{{view}}");
        cfg.service(
            web::resource([pattern.clone(), format!("{pattern}/")])
                .name(&pattern)
                .route(web::route().guard(get_or_head()).to(
                    move |req: HttpRequest, state: web::Data<AppState>| {
                        views::org_view(req, state, direction)
                    },
                ))
                .default_service(web::to(pass_through)),
        );
    }
    cfg.service(
        web::resource(["/organizations/{id}/{list}", "/organizations/{id}/{list}/"])
            .name("/organizations/{id}/{list}")
            .route(
                web::route()
                    .guard(get_or_head())
                    .to(cached_keys::organization_list),
            )
            .default_service(web::to(pass_through)),
    );
    for path in served.cached_paths() {
        let patterns = if path == "/" {
            vec![path.clone()]
        } else {
            vec![path.clone(), format!("{path}/")]
        };
        let path: Arc<str> = Arc::from(path.as_str());
        cfg.service(
            web::resource(patterns)
                .name(&path)
                .route(web::route().guard(get_or_head()).to(
                    move |req: HttpRequest, body: web::Bytes, state: web::Data<AppState>| {
                        cached_keys::cached_key(req, body, state, Arc::clone(&path))
                    },
                ))
                .default_service(web::to(pass_through)),
        );
    }
    cfg.default_service(web::to(pass_through));
}

/// Adds `Cache-Status` (and a staleness `Warning` while Redis is unreachable).
fn mark_hit(builder: &mut HttpResponseBuilder, stale: bool) {
    // Literal labels: the label set is a `static`, so counting allocates nothing.
    if stale {
        ::metrics::counter!(SERVED_COPY_METRIC, "result" => "stale").increment(1);
        builder
            .insert_header((CACHE_STATUS, HeaderValue::from_static(HIT_STALE)))
            .insert_header((header::WARNING, HeaderValue::from_static(STALE_WARNING)));
    } else {
        ::metrics::counter!(SERVED_COPY_METRIC, "result" => "hit").increment(1);
        builder.insert_header((CACHE_STATUS, HeaderValue::from_static(HIT)));
    }
}
