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
use crate::served_state::OrgServed;

/// Why a cached key cannot be answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CachedKeyError {
    /// The snapshot has not been loaded from Redis yet (cold start, Redis down).
    #[error("{0} is not loaded yet; try again shortly")]
    NotLoaded(String),
    /// Nothing is loaded and GitHub answered 404 for the org: there is nothing to wait for.
    #[error("{0}: GitHub does not know the organization ({1})")]
    OrgUnknown(String, String),
}

impl ResponseError for CachedKeyError {
    fn status_code(&self) -> StatusCode {
        match self {
            CachedKeyError::NotLoaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            CachedKeyError::OrgUnknown(..) => StatusCode::NOT_FOUND,
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
    let Some(org) = state.served.owner(&path).cloned() else {
        // Routes are registered from the cached paths: every one has an org.
        return Err(CachedKeyError::NotLoaded(path.to_string()));
    };
    serve(req, body, state, &org, &path, &path).await
}

/// `/organizations/{id}/{list}`: GitHub's own Link headers name the org's lists by numeric id.
/// Served from the snapshot when `id` is a cached org's and the list is cached for it;
/// otherwise passed through.
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
    if let Some(id) = id
        && let Some(org) = state.served.org_by_id(id).cloned()
    {
        let snapshot_path = format!("{}/{list}", org.org_path());
        if org.is_cached(&snapshot_path) {
            let link_path = format!("/organizations/{id}/{list}");
            return serve(req, body, state, &org, &snapshot_path, &link_path).await;
        }
    }
    Ok(super::pass_through(req, body, state).await)
}

async fn serve(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    org: &OrgServed,
    snapshot_path: &str,
    link_path: &str,
) -> Result<HttpResponse, CachedKeyError> {
    let query = CachedQuery::parse(req.query_string());
    if query == CachedQuery::Other {
        return Ok(super::pass_through(req, body, state).await);
    }
    let Some(snapshot) = org.snapshot(snapshot_path) else {
        org.count_answer(false);
        return Err(match org.unknown() {
            Some(error) => CachedKeyError::OrgUnknown(snapshot_path.to_owned(), error),
            None => CachedKeyError::NotLoaded(snapshot_path.to_owned()),
        });
    };
    let stale = org.is_stale();
    org.count_answer(true);
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
