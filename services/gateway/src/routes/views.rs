//! `/view/top/{N}/{view}` and `/view/bottom/{N}/{view}`: slices of the pre-rendered views.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use hubcache_shared::ViewName;
use hubcache_shared::views::UnknownView;

use crate::app_state::AppState;
use crate::json_error::json_error;
use crate::served_views::{Direction, InvalidTopN, TopN};

/// Why a view request cannot be answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ViewError {
    /// `N` is not a positive integer.
    #[error(transparent)]
    InvalidTopN(#[from] InvalidTopN),
    /// No such view.
    #[error(transparent)]
    UnknownView(#[from] UnknownView),
    /// The views have not been loaded from Redis yet.
    #[error("views are not loaded yet; try again shortly")]
    NotLoaded,
}

impl ResponseError for ViewError {
    fn status_code(&self) -> StatusCode {
        match self {
            ViewError::InvalidTopN(_) => StatusCode::BAD_REQUEST,
            ViewError::UnknownView(_) => StatusCode::NOT_FOUND,
            ViewError::NotLoaded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        json_error(self.status_code(), &self.to_string())
    }
}

/// The first or last N entries of a view, in the seed's text format.
pub(crate) async fn view(
    req: HttpRequest,
    state: web::Data<AppState>,
    direction: Direction,
) -> Result<HttpResponse, ViewError> {
    let n: TopN = req.match_info().get("n").unwrap_or_default().parse()?;
    let view: ViewName = req.match_info().get("view").unwrap_or_default().parse()?;
    let views = state.served.views().ok_or(ViewError::NotLoaded)?;
    let slice = views
        .slice(view, direction, n)
        .ok_or(ViewError::NotLoaded)?;
    let stale = state.served.is_stale();
    Ok(slice.respond(&req, |b| super::mark_hit(b, stale)))
}
