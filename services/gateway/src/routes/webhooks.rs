//! `POST /webhooks/github`: GitHub's org webhook deliveries, verified and handed to the fetcher
//! as hints (see `webhook_intake`). Answers at once; the revalidation happens in the fetcher.
//!
//! In order: 404 when `GITHUB_WEBHOOK_SECRET` is unset; 413 for a body over the cap; 401 for a
//! missing or wrong `X-Hub-Signature-256` (checked before the body is parsed); 400 for a signed
//! delivery without `X-GitHub-Event`/`X-GitHub-Delivery` or with a body that is not JSON; 200 for
//! `ping` and for a delivery id already seen; 202 for events hubcache does not use and the
//! deliveries of orgs not configured (ignored) and for accepted ones (any configured org's, the
//! hint naming it); 503 when Redis cannot take the hint.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::BytesMut;
use futures::StreamExt as _;
use hubcache_shared::snapshot::now_ms;
use hubcache_shared::telemetry::current_traceparent;
use hubcache_shared::{HintTarget, WebhookHint};
use serde::Deserialize;

use crate::json_error::json_error;
use crate::webhook_intake::{Outcome, Recorded, WebhookIntake};

/// The longest `X-GitHub-Delivery` accepted (GitHub's are 36-character GUIDs).
const MAX_DELIVERY_ID_LEN: usize = 64;

/// The parts of a payload that say whose delivery it is.
#[derive(Debug, Deserialize)]
struct PayloadOwner {
    organization: Option<Account>,
    repository: Option<Repository>,
}

#[derive(Debug, Deserialize)]
struct Account {
    login: String,
}

#[derive(Debug, Deserialize)]
struct Repository {
    owner: Account,
}

/// Why a body could not be read.
enum BodyError {
    TooLarge,
    Read(String),
}

/// The handler. `intake` is absent when webhooks are not configured.
pub(crate) async fn receive(
    request: HttpRequest,
    payload: web::Payload,
    intake: Option<web::Data<WebhookIntake>>,
) -> HttpResponse {
    let Some(intake) = intake else {
        return json_error(
            StatusCode::NOT_FOUND,
            "webhooks are not enabled on this gateway (GITHUB_WEBHOOK_SECRET is unset)",
        );
    };
    let (response, outcome) = handle(&request, payload, &intake).await;
    intake.stats.count(outcome);
    response
}

async fn handle(
    request: &HttpRequest,
    payload: web::Payload,
    intake: &WebhookIntake,
) -> (HttpResponse, Outcome) {
    let cap = intake.config.max_body_bytes;
    let body = match read_capped(request, payload, cap).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            let message = format!("the delivery is larger than {cap} bytes");
            return (
                json_error(StatusCode::PAYLOAD_TOO_LARGE, &message),
                Outcome::TooLarge,
            );
        }
        Err(BodyError::Read(reason)) => {
            let message = format!("cannot read the delivery: {reason}");
            return (
                json_error(StatusCode::BAD_REQUEST, &message),
                Outcome::BadRequest,
            );
        }
    };
    let headers = request.headers();
    let signature = headers.get("x-hub-signature-256").map(|v| v.as_bytes());
    if let Err(error) = intake.config.secret.verify(&body, signature) {
        tracing::warn!(reason = %error, "webhook delivery refused");
        return (
            json_error(StatusCode::UNAUTHORIZED, &error.to_string()),
            Outcome::Rejected,
        );
    }
    intake.stats.delivered();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(event) = header("x-github-event").filter(|e| !e.is_empty()) else {
        return bad_request("X-GitHub-Event is missing");
    };
    let Some(delivery) = header("x-github-delivery").filter(|d| is_delivery_id(d)) else {
        return bad_request("X-GitHub-Delivery is missing or not a delivery id");
    };
    if event == "ping" {
        return (acknowledged(StatusCode::OK, "pong"), Outcome::Ping);
    }
    let Some(targets) = HintTarget::of_event(event) else {
        let message = format!("event {event:?} is not used by hubcache; ignored");
        return (
            acknowledged(StatusCode::ACCEPTED, &message),
            Outcome::Ignored,
        );
    };
    let owner: PayloadOwner = match serde_json::from_slice(&body) {
        Ok(owner) => owner,
        Err(error) => return bad_request(&format!("the payload is not valid JSON: {error}")),
    };
    let org = owner
        .organization
        .map(|org| org.login)
        .or_else(|| owner.repository.map(|repo| repo.owner.login));
    // The hint names the org as the payload spells it; the fetcher matches it in any case.
    let configured = |org: &String| {
        intake
            .config
            .orgs
            .iter()
            .any(|cached| cached.eq_ignore_ascii_case(org))
    };
    let Some(org) = org.filter(configured) else {
        let message = "the delivery is not for a cached organization; ignored";
        return (
            acknowledged(StatusCode::ACCEPTED, message),
            Outcome::Ignored,
        );
    };
    let hint = WebhookHint {
        org,
        targets: targets.to_vec(),
        event: event.to_owned(),
        delivery: delivery.to_owned(),
        received_at_ms: now_ms(),
        traceparent: current_traceparent(),
    };
    match intake.record(&hint).await {
        Ok(Recorded::New) => {
            tracing::info!(event, delivery, "webhook delivery accepted");
            if hint.targets.contains(&HintTarget::Repos) {
                intake.stats.awaits_views(hint.received_at_ms);
            }
            let response = acknowledged(StatusCode::ACCEPTED, "accepted");
            (response, Outcome::Accepted)
        }
        Ok(Recorded::Duplicate) => {
            let message = "delivery already received; ignored";
            (acknowledged(StatusCode::OK, message), Outcome::Duplicate)
        }
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), delivery, "cannot hand a webhook delivery to the fetcher");
            let message = "cannot record the delivery: Redis is unreachable; the change will be \
                           picked up by the next poll";
            (
                json_error(StatusCode::SERVICE_UNAVAILABLE, message),
                Outcome::Unavailable,
            )
        }
    }
}

fn bad_request(message: &str) -> (HttpResponse, Outcome) {
    (
        json_error(StatusCode::BAD_REQUEST, message),
        Outcome::BadRequest,
    )
}

fn acknowledged(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "message": message }))
}

/// Reads the whole body, refusing it as soon as it exceeds `cap` (or announces that it will).
async fn read_capped(
    request: &HttpRequest,
    mut payload: web::Payload,
    cap: usize,
) -> Result<BytesMut, BodyError> {
    let announced = request
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > cap as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = BytesMut::with_capacity(announced.unwrap_or(0).min(cap as u64) as usize);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A plausible `X-GitHub-Delivery`: a GUID-like token (it becomes part of a Redis key).
fn is_delivery_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_DELIVERY_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_guid_like_tokens() {
        assert!(is_delivery_id("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
        for bad in ["", "a b", "x:y", "{hubcache}", &"a".repeat(65)] {
            assert!(!is_delivery_id(bad), "{bad}");
        }
    }
}
