//! The GitHub App routes: `GET /orgs/{org}/installation` and
//! `POST /app/installations/{id}/access_tokens` (both with the App's JWT), and the refusal of an
//! installation token that expired or whose installation was revoked.

use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use crate::app_auth::{AppAuth, AppError};

#[derive(Serialize)]
struct ErrorBody {
    message: String,
    documentation_url: &'static str,
}

#[derive(Serialize)]
struct Installation {
    id: u64,
    app_id: String,
    target_type: &'static str,
    account: Account,
}

#[derive(Serialize)]
struct Account {
    login: String,
}

/// Answers `request` when it is one of the App's routes (`None`: not an App route).
pub(crate) fn app_route(app: &AppAuth, request: &HttpRequest, path: &str) -> Option<HttpResponse> {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if *request.method() == Method::GET
        && let Some(org) = path
            .strip_prefix("/orgs/")
            .and_then(|rest| rest.strip_suffix("/installation"))
        && !org.contains('/')
    {
        return Some(
            app.verify_jwt(authorization)
                .and_then(|()| app.installation_of(org))
                .map_or_else(
                    |e| refused(&e),
                    |id| {
                        HttpResponse::Ok().json(Installation {
                            id,
                            app_id: app.app_id().to_owned(),
                            target_type: "Organization",
                            account: Account {
                                login: org.to_owned(),
                            },
                        })
                    },
                ),
        );
    }
    if let Some(id) = path
        .strip_prefix("/app/installations/")
        .and_then(|rest| rest.strip_suffix("/access_tokens"))
    {
        if *request.method() != Method::POST {
            return Some(refused(&AppError::NoInstallation));
        }
        let Ok(id) = id.parse::<u64>() else {
            return Some(refused(&AppError::NoInstallation));
        };
        return Some(
            app.verify_jwt(authorization)
                .and_then(|()| app.issue(id))
                .map_or_else(|e| refused(&e), |token| HttpResponse::Created().json(token)),
        );
    }
    None
}

/// GitHub's answer to a refused App request or installation token.
pub(crate) fn refused(error: &AppError) -> HttpResponse {
    let status = match error {
        AppError::BadJwt | AppError::BadCredentials => StatusCode::UNAUTHORIZED,
        AppError::NoInstallation => StatusCode::NOT_FOUND,
    };
    HttpResponse::build(status).json(ErrorBody {
        message: error.to_string(),
        documentation_url: "https://docs.github.com/rest",
    })
}
