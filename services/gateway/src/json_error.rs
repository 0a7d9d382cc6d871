//! The one shape of every error the gateway itself produces: `{"message": "..."}` with a
//! status code, like GitHub's own errors, so clients need a single error parser.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};

use crate::representation::JSON_UTF8;

/// A JSON error response: `{"message": message}` with `status`.
pub(crate) fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    let body = serde_json::json!({ "message": message }).to_string();
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8)))
        .body(body)
}
