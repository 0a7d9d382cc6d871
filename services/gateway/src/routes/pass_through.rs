//! Glue between the router and the pass-through: everything that is not a cached key, a view
//! or a health route goes here.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::app_state::AppState;

/// Answers a request the in-process copies cannot.
pub(crate) async fn pass_through(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    state.pass_through.handle(req, body).await
}
