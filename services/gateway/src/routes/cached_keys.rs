//! Cached keys (the fetcher's endpoints) served from the in-process snapshots: whole, or one
//! GitHub-style page with a `Link` header pointing at the gateway.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::app_state::AppState;
use crate::json_error::json_error;
use crate::paging::CachedQuery;
use crate::public_base::public_base;

/// Why a cached key cannot be answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CachedKeyError {
    /// The snapshot has not been loaded from Redis yet (cold start, Redis down).
    #[error("{0} is not loaded yet; try again shortly")]
    NotLoaded(String),
}

impl ResponseError for CachedKeyError {
    fn status_code(&self) -> StatusCode {
        match self {
            CachedKeyError::NotLoaded(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        json_error(self.status_code(), &self.to_string())
    }
}

/// A cached path (registered with and without trailing slash).
pub(crate) async fn cached_key(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    path: Arc<str>,
) -> Result<HttpResponse, CachedKeyError> {
    serve(req, body, state, &path, &path).await
}

/// `/organizations/{id}/{list}`: GitHub's own Link headers name the org's lists by numeric id.
/// Served from the snapshot when `id` is the cached org's and the list is cached; otherwise
/// passed through.
pub(crate) async fn organization_list(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CachedKeyError> {
    let id = req
        .match_info()
        .get("id")
        .and_then(|id| id.parse::<u64>().ok());
    let list = req.match_info().get("list").unwrap_or_default();
    if let (Some(id), Some(org_id)) = (id, state.served.org_id())
        && id == org_id
    {
        let snapshot_path = format!("{}/{list}", state.served.org_path());
        if state.served.is_cached(&snapshot_path) {
            let link_path = format!("/organizations/{id}/{list}");
            return serve(req, body, state, &snapshot_path, &link_path).await;
        }
    }
    Ok(super::pass_through(req, body, state).await)
}

async fn serve(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    snapshot_path: &str,
    link_path: &str,
) -> Result<HttpResponse, CachedKeyError> {
    let query = CachedQuery::parse(req.query_string());
    if query == CachedQuery::Other {
        return Ok(super::pass_through(req, body, state).await);
    }
    let snapshot = state
        .served
        .snapshot(snapshot_path)
        .ok_or_else(|| CachedKeyError::NotLoaded(snapshot_path.to_owned()))?;
    let stale = state.served.is_stale();
    if let CachedQuery::Page(page) = query
        && let Some(representation) = snapshot.page(page)
    {
        let len = snapshot.element_count().unwrap_or_default();
        let base = public_base(&req, state.public_url.as_ref());
        let link = page
            .link_header(&base, link_path, len)
            .and_then(|l| HeaderValue::from_str(&l).ok());
        return Ok(representation.respond(&req, |b| {
            super::mark_hit(b, stale);
            if let Some(link) = link {
                b.insert_header((header::LINK, link));
            }
        }));
    }
    Ok(snapshot.full.respond(&req, |b| super::mark_hit(b, stale)))
}
