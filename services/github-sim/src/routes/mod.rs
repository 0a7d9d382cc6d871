//! The route table: the control API under `/_sim`, and every other path as a GitHub route.

mod app;
mod control;
mod github;
mod hooks;

use actix_web::web;

/// Registers all routes on an app.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::scope("/_sim").configure(control::configure))
        .default_service(web::to(github::github_api));
}
