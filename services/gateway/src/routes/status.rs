//! `GET /status` (the operator's page, HTML) and `GET /status.json` (its data, documented in
//! README). Both answer 404 with `STATUS_PAGE=off`, and 403 to a client whose TCP peer address
//! is outside `STATUS_PAGE_ALLOW` (when set); both are `no-store` (live figures). The page
//! carries a strict Content-Security-Policy: its own inline style and script by hash, `fetch`
//! to itself, nothing else.

use std::net::IpAddr;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::json_error::json_error;
use crate::settings::StatusAllowList;
use crate::status::StatusBoard;
use crate::status::page::{CONTENT_SECURITY_POLICY, render};

/// The routes' state: the board, or `None` with `STATUS_PAGE=off`, and who may see it.
pub(crate) struct StatusRoutes {
    /// The board read by both routes.
    pub(crate) board: Option<std::sync::Arc<StatusBoard>>,
    /// `STATUS_PAGE_ALLOW`: the networks whose clients may see it (empty: everyone).
    pub(crate) allow: StatusAllowList,
}

impl StatusRoutes {
    /// The board if this client may see it, else why not: off (for everyone, whatever the
    /// allow list), or the client's TCP peer address is outside the allow list. The peer
    /// address, not `X-Forwarded-For`: a client writes that header itself and could claim any
    /// address.
    fn board_for(&self, req: &HttpRequest) -> Result<&StatusBoard, Refused> {
        let board = self.board.as_deref().ok_or(Refused::Off)?;
        let peer = req.peer_addr().map(|addr| addr.ip());
        if self.allow.allows(peer) {
            Ok(board)
        } else {
            Err(Refused::Outside(peer))
        }
    }
}

/// Why a client does not see the status page.
enum Refused {
    /// `STATUS_PAGE=off`.
    Off,
    /// A peer address (`None`: unknown) outside `STATUS_PAGE_ALLOW`.
    Outside(Option<IpAddr>),
}

impl Refused {
    /// 404 when off, 403 outside the allow list: JSON errors, never passed through.
    fn response(self) -> HttpResponse {
        match self {
            Self::Off => json_error(
                StatusCode::NOT_FOUND,
                "the status page is off (STATUS_PAGE=off)",
            ),
            Self::Outside(peer) => {
                let from =
                    peer.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
                json_error(
                    StatusCode::FORBIDDEN,
                    &format!(
                        "the status page is not served to {from} (outside {})",
                        StatusAllowList::VARIABLE
                    ),
                )
            }
        }
    }
}

/// The page.
pub(crate) async fn page(req: HttpRequest, routes: web::Data<StatusRoutes>) -> HttpResponse {
    let board = match routes.board_for(&req) {
        Ok(board) => board,
        Err(refused) => return refused.response(),
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
pub(crate) async fn json(req: HttpRequest, routes: web::Data<StatusRoutes>) -> HttpResponse {
    let board = match routes.board_for(&req) {
        Ok(board) => board,
        Err(refused) => return refused.response(),
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .json(board.report())
}
