//! The webhook control routes, shaped like GitHub's org hook API under `/_sim`:
//!
//! - `POST /_sim/orgs/{org}/hooks` `{"config": {"url", "secret"}, "events": ["*"]}`: register
//!   (201, the hook; a `ping` is delivered at once); `GET` lists the org's hooks.
//! - `DELETE /_sim/orgs/{org}/hooks/{id}`.
//! - `GET /_sim/orgs/{org}/hooks/{id}/deliveries`: the delivery log, newest first, each with
//!   `guid`, `event`, `action`, `status` (`pending`, `OK`, `HTTP 503`, or the transport error),
//!   `status_code`, `duration` and `redelivery`; `GET .../deliveries/{delivery}` adds the payload.
//! - `POST /_sim/orgs/{org}/hooks/{id}/deliveries/{delivery}/attempts`: redeliver (202), same
//!   GUID and body, as GitHub's redelivery does.

use actix_web::{HttpResponse, web};

use super::control::{ControlError, resource};
use crate::catalog::CatalogError;
use crate::state::SimState;
use crate::webhooks::HookSpec;

/// Registers the hook routes (inside the `/_sim` scope).
pub(super) fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            resource("/orgs/{org}/hooks")
                .route(web::post().to(create_hook))
                .route(web::get().to(list_hooks)),
        )
        .service(resource("/orgs/{org}/hooks/{id}").route(web::delete().to(delete_hook)))
        .service(resource("/orgs/{org}/hooks/{id}/deliveries").route(web::get().to(deliveries)))
        .service(
            resource("/orgs/{org}/hooks/{id}/deliveries/{delivery}").route(web::get().to(delivery)),
        )
        .service(
            resource("/orgs/{org}/hooks/{id}/deliveries/{delivery}/attempts")
                .route(web::post().to(redeliver)),
        );
}

fn context(state: &SimState, org: &str) -> Result<crate::catalog::EventContext, ControlError> {
    state
        .catalog
        .read()
        .event_context(org)
        .ok_or_else(|| CatalogError::OrgNotFound(org.to_owned()).into())
}

async fn create_hook(
    state: web::Data<SimState>,
    org: web::Path<String>,
    spec: web::Json<HookSpec>,
) -> Result<HttpResponse, ControlError> {
    let context = context(&state, &org)?;
    let hook = state.webhooks.create(&context, spec.into_inner())?;
    tracing::info!(org = %context.login, hook = %hook["id"], "webhook registered");
    Ok(HttpResponse::Created().json(hook))
}

async fn list_hooks(
    state: web::Data<SimState>,
    org: web::Path<String>,
) -> Result<HttpResponse, ControlError> {
    let context = context(&state, &org)?;
    Ok(HttpResponse::Ok().json(state.webhooks.list(&context.login)))
}

async fn delete_hook(
    state: web::Data<SimState>,
    path: web::Path<(String, u64)>,
) -> Result<HttpResponse, ControlError> {
    let (org, id) = path.into_inner();
    state.webhooks.delete(&org, id)?;
    Ok(HttpResponse::NoContent().finish())
}

async fn deliveries(
    state: web::Data<SimState>,
    path: web::Path<(String, u64)>,
) -> Result<HttpResponse, ControlError> {
    let (org, id) = path.into_inner();
    Ok(HttpResponse::Ok().json(state.webhooks.deliveries(&org, id)?))
}

async fn delivery(
    state: web::Data<SimState>,
    path: web::Path<(String, u64, u64)>,
) -> Result<HttpResponse, ControlError> {
    let (org, id, delivery) = path.into_inner();
    Ok(HttpResponse::Ok().json(state.webhooks.delivery(&org, id, delivery)?))
}

async fn redeliver(
    state: web::Data<SimState>,
    path: web::Path<(String, u64, u64)>,
) -> Result<HttpResponse, ControlError> {
    let (org, id, delivery) = path.into_inner();
    let context = context(&state, &org)?;
    state.webhooks.redeliver(&org, id, delivery, context.id)?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({})))
}
