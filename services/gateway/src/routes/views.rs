//! `/view/top/{N}/{view}` and `/view/bottom/{N}/{view}` (the seed's routes: the first org), and
//! `/orgs/{org}/view/{top|bottom}/{N}/{view}` (any configured org, login in any case): slices of
//! the pre-rendered views.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use hubcache_shared::ViewName;
use hubcache_shared::views::UnknownView;

use crate::app_state::AppState;
use crate::json_error::json_error;
use crate::served_state::OrgServed;
use crate::served_views::{Direction, InvalidTopN, TopN};

/// The most characters of a requested org login echoed in an error (logins are at most 39).
const MAX_ECHOED_LOGIN: usize = 40;

/// Why a view request cannot be answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ViewError {
    /// `N` is not a positive integer.
    #[error(transparent)]
    InvalidTopN(#[from] InvalidTopN),
    /// No such view.
    #[error(transparent)]
    UnknownView(#[from] UnknownView),
    /// The org of an org-qualified route is not one this gateway serves.
    #[error("organization {0:?} is not served by this gateway")]
    OrgNotServed(String),
    /// The org is configured but GitHub answered 404 for it: it has no views to wait for.
    #[error("GitHub does not know organization {0:?}: {1}")]
    OrgUnknown(String, String),
    /// The views have not been loaded from Redis yet.
    #[error("views are not loaded yet; try again shortly")]
    NotLoaded,
}

impl ResponseError for ViewError {
    fn status_code(&self) -> StatusCode {
        match self {
            ViewError::InvalidTopN(_) => StatusCode::BAD_REQUEST,
            ViewError::UnknownView(_) | ViewError::OrgNotServed(_) | ViewError::OrgUnknown(..) => {
                StatusCode::NOT_FOUND
            }
            ViewError::NotLoaded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        json_error(self.status_code(), &self.to_string())
    }
}

/// The seed's route: the first or last N entries of a view of the first org, in the seed's
/// text format.
pub(crate) async fn view(
    req: HttpRequest,
    state: web::Data<AppState>,
    direction: Direction,
) -> Result<HttpResponse, ViewError> {
    serve(&req, state.served.first(), direction)
}

/// The org-qualified route: the same for the org the path names; 404 for an org not
/// configured (never passed through: GitHub has no such route).
pub(crate) async fn org_view(
    req: HttpRequest,
    state: web::Data<AppState>,
    direction: Direction,
) -> Result<HttpResponse, ViewError> {
    let login = req.match_info().get("org").unwrap_or_default();
    let org = state
        .served
        .org(login)
        .ok_or_else(|| ViewError::OrgNotServed(login.chars().take(MAX_ECHOED_LOGIN).collect()))?;
    serve(&req, org, direction)
}

fn serve(
    req: &HttpRequest,
    org: &OrgServed,
    direction: Direction,
) -> Result<HttpResponse, ViewError> {
    let n: TopN = req.match_info().get("n").unwrap_or_default().parse()?;
    let view: ViewName = req.match_info().get("view").unwrap_or_default().parse()?;
    let Some(views) = org.views() else {
        org.count_answer(false);
        return Err(match org.unknown() {
            Some(error) => ViewError::OrgUnknown(org.login().to_owned(), error),
            None => ViewError::NotLoaded,
        });
    };
    let slice = views
        .slice(view, direction, n)
        .ok_or(ViewError::NotLoaded)?;
    let stale = org.is_stale();
    org.count_answer(true);
    Ok(slice.respond(req, |b| super::mark_hit(b, stale)))
}
