//! `GET /status` (the operator's page, HTML) and `GET /status.json` (its data, documented in
//! README). Both answer 404 with `STATUS_PAGE=off`; both are `no-store` (live figures). The
//! page carries a strict Content-Security-Policy: its own inline style and script by hash,
//! `fetch` to itself, nothing else.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::json_error::json_error;
use crate::status::StatusBoard;
use crate::status::page::{CONTENT_SECURITY_POLICY, render};

/// The routes' state: the board, or `None` with `STATUS_PAGE=off`.
pub(crate) struct StatusRoutes {
    /// The board read by both routes.
    pub(crate) board: Option<std::sync::Arc<StatusBoard>>,
}

/// The page.
pub(crate) async fn page(routes: web::Data<StatusRoutes>) -> HttpResponse {
    let Some(board) = &routes.board else {
        return off();
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY.as_str(),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .body(render(&board.report()))
}

/// The data behind the page.
pub(crate) async fn json(routes: web::Data<StatusRoutes>) -> HttpResponse {
    let Some(board) = &routes.board else {
        return off();
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .json(board.report())
}

/// `STATUS_PAGE=off`: 404 JSON, never passed through.
fn off() -> HttpResponse {
    json_error(
        actix_web::http::StatusCode::NOT_FOUND,
        "the status page is off (STATUS_PAGE=off)",
    )
}
