//! The control API under `/_sim/`: counters, data mutations (each sent to the org's webhooks),
//! faults, latency and the rate-limit budget; `hooks` adds the webhook routes. Never part of
//! GitHub's surface, never counted in stats or the rate limit.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::{Deserialize, Serialize};

use crate::catalog::CatalogError;
use crate::dataset::JsonObject;
use crate::faults::{FaultSpec, InvalidFault};
use crate::rate_limit::{RateLimitUpdate, RemainingAboveLimit};
use crate::state::SimState;
use crate::webhooks::{self, HookError};

/// Why a control request failed; answered as `{"message": ...}` with the mapped status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Fault(#[from] InvalidFault),
    #[error(transparent)]
    RateLimit(#[from] RemainingAboveLimit),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error("invalid JSON body: {0}")]
    BadBody(String),
    #[error("no GitHub App is configured (--app-id, --app-public-key)")]
    NoApp,
    #[error("no installation {0}")]
    NoInstallation(u64),
    #[error("no control route {method} {path}")]
    NoRoute { method: String, path: String },
}

#[derive(Serialize)]
struct ControlErrorBody {
    message: String,
}

impl ResponseError for ControlError {
    fn status_code(&self) -> StatusCode {
        match self {
            ControlError::Catalog(CatalogError::OrgNotFound(_) | CatalogError::RepoNotFound(_))
            | ControlError::Hook(HookError::HookNotFound(_) | HookError::DeliveryNotFound(_))
            | ControlError::NoRoute { .. }
            | ControlError::NoApp
            | ControlError::NoInstallation(_) => StatusCode::NOT_FOUND,
            ControlError::Hook(
                HookError::BadUrl(_) | HookError::ContentType | HookError::NoEvents,
            ) => StatusCode::UNPROCESSABLE_ENTITY,
            ControlError::Catalog(CatalogError::InvalidName | CatalogError::NameTaken(_)) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ControlError::Fault(_) | ControlError::RateLimit(_) | ControlError::BadBody(_) => {
                StatusCode::BAD_REQUEST
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(ControlErrorBody {
            message: self.to_string(),
        })
    }
}

/// Registers the control routes (inside the `/_sim` scope).
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .app_data(
            web::JsonConfig::default()
                .content_type_required(false)
                .error_handler(|error, _| ControlError::BadBody(error.to_string()).into()),
        )
        .service(resource("/stats").route(web::get().to(stats)))
        .service(resource("/stats/reset").route(web::post().to(reset_stats)))
        .service(
            resource("/repos/{owner}/{repo}")
                .route(web::patch().to(patch_repo))
                .route(web::delete().to(delete_repo)),
        )
        .service(resource("/orgs/{org}/repos").route(web::post().to(add_repo)))
        .service(
            resource("/faults")
                .route(web::get().to(list_faults))
                .route(web::post().to(add_fault))
                .route(web::delete().to(clear_faults)),
        )
        .service(resource("/latency").route(web::post().to(set_latency)))
        .service(
            resource("/rate-limit")
                .route(web::get().to(rate_limit))
                .route(web::post().to(set_rate_limit)),
        )
        .service(resource("/rate-limits").route(web::get().to(rate_limits)))
        .service(resource("/dataset").route(web::get().to(dataset)))
        .service(resource("/installations").route(web::get().to(installations)))
        .service(resource("/installations/{id}/revoke").route(web::post().to(revoke_installation)))
        .configure(super::hooks::configure)
        .default_service(web::to(no_route));
}

/// A control resource whose unsupported methods get the JSON 404 too.
pub(super) fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(no_route))
}

pub(super) async fn no_route(request: HttpRequest) -> Result<HttpResponse, ControlError> {
    Err(ControlError::NoRoute {
        method: request.method().to_string(),
        path: request.path().to_owned(),
    })
}

/// The App's installations (one per org), revoked or not, with the tokens each was issued.
async fn installations(state: web::Data<SimState>) -> Result<HttpResponse, ControlError> {
    let app = state.app.as_ref().ok_or(ControlError::NoApp)?;
    Ok(HttpResponse::Ok().json(app.list()))
}

/// Revokes an installation: its tokens answer 401 and no new one is issued (404).
async fn revoke_installation(
    state: web::Data<SimState>,
    id: web::Path<u64>,
) -> Result<HttpResponse, ControlError> {
    let app = state.app.as_ref().ok_or(ControlError::NoApp)?;
    let id = id.into_inner();
    app.revoke(id)
        .map_err(|_| ControlError::NoInstallation(id))?;
    tracing::info!(installation = id, "installation revoked");
    Ok(HttpResponse::NoContent().finish())
}

async fn stats(state: web::Data<SimState>) -> HttpResponse {
    HttpResponse::Ok().json(state.stats.snapshot())
}

async fn reset_stats(state: web::Data<SimState>) -> HttpResponse {
    state.stats.reset();
    HttpResponse::NoContent().finish()
}

async fn patch_repo(
    state: web::Data<SimState>,
    path: web::Path<(String, String)>,
    patch: web::Json<JsonObject>,
) -> Result<HttpResponse, ControlError> {
    let (owner, repo) = path.into_inner();
    // The event is queued under the write lock, so deliveries leave in mutation order.
    let mut catalog = state.catalog.write();
    let before = catalog.repo(&owner, &repo).cloned();
    let updated = catalog.patch_repo(&owner, &repo, patch.into_inner())?;
    if let (Some(before), Some(context)) = (before, catalog.event_context(&owner)) {
        let event = webhooks::repository_changed(&context, &before, &updated);
        state.webhooks.emit(&context, &event);
    }
    drop(catalog);
    tracing::info!(%owner, %repo, "repository patched");
    Ok(HttpResponse::Ok().json(updated))
}

async fn add_repo(
    state: web::Data<SimState>,
    org: web::Path<String>,
    fields: web::Json<JsonObject>,
) -> Result<HttpResponse, ControlError> {
    let mut catalog = state.catalog.write();
    let added = catalog.add_repo(&org, fields.into_inner())?;
    if let Some(context) = catalog.event_context(&org) {
        state
            .webhooks
            .emit(&context, &webhooks::repository_created(&context, &added));
    }
    drop(catalog);
    tracing::info!(org = %org, name = ?added.get("name"), "repository added");
    Ok(HttpResponse::Created().json(added))
}

async fn delete_repo(
    state: web::Data<SimState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ControlError> {
    let (owner, repo) = path.into_inner();
    let mut catalog = state.catalog.write();
    let removed = catalog.delete_repo(&owner, &repo)?;
    if let Some(context) = catalog.event_context(&owner) {
        state
            .webhooks
            .emit(&context, &webhooks::repository_deleted(&context, &removed));
    }
    drop(catalog);
    tracing::info!(%owner, %repo, "repository deleted");
    Ok(HttpResponse::NoContent().finish())
}

async fn list_faults(state: web::Data<SimState>) -> HttpResponse {
    HttpResponse::Ok().json(state.faults.list())
}

async fn add_fault(
    state: web::Data<SimState>,
    spec: web::Json<FaultSpec>,
) -> Result<HttpResponse, ControlError> {
    let queued = state.faults.push(spec.into_inner())?;
    tracing::info!(fault = ?queued, "fault queued");
    Ok(HttpResponse::Created().json(queued))
}

async fn clear_faults(state: web::Data<SimState>) -> HttpResponse {
    state.faults.clear();
    HttpResponse::NoContent().finish()
}

/// Body of `POST /_sim/latency`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Latency {
    ms: u64,
}

async fn set_latency(state: web::Data<SimState>, latency: web::Json<Latency>) -> HttpResponse {
    state.set_latency(Duration::from_millis(latency.ms));
    HttpResponse::Ok().json(latency.into_inner())
}

/// Query of `GET /_sim/rate-limit`: one credential's budget (a label or `anonymous@{ip}`);
/// without it, the budget a credential not seen yet starts from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitQuery {
    credential: Option<String>,
}

async fn rate_limit(state: web::Data<SimState>, query: web::Query<RateLimitQuery>) -> HttpResponse {
    let current = match &query.credential {
        Some(key) => state.rate_limit.current(key),
        None => state.rate_limit.current_default(),
    };
    HttpResponse::Ok().json(current)
}

/// Every credential's budget seen so far, by key (label, or `anonymous@{ip}`).
async fn rate_limits(state: web::Data<SimState>) -> HttpResponse {
    HttpResponse::Ok().json(state.rate_limit.all())
}

async fn set_rate_limit(
    state: web::Data<SimState>,
    update: web::Json<RateLimitUpdate>,
) -> Result<HttpResponse, ControlError> {
    let current = state.rate_limit.update(update.into_inner())?;
    Ok(HttpResponse::Ok().json(current))
}

async fn dataset(state: web::Data<SimState>) -> HttpResponse {
    let dataset = state.catalog.read().to_dataset();
    HttpResponse::Ok().json(dataset)
}
