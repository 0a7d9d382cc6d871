//! The delivery task: POSTs each queued delivery with GitHub's headers and signature, one after
//! another (in mutation order), and writes the outcome into the delivery log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;
use tokio::sync::mpsc;

use super::{Outgoing, Registry};

/// GitHub gives a receiver 10 s to answer; a slower answer is a failed delivery.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// `User-Agent: GitHub-Hookshot/{id}`, as GitHub sends it.
const USER_AGENT: &str = "GitHub-Hookshot/5e1a3c9";

/// Spawns the task; deliveries are sent in the order they are queued.
pub(super) fn spawn(
    registry: Arc<Mutex<Registry>>,
) -> anyhow::Result<mpsc::UnboundedSender<Outgoing>> {
    let client = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(DELIVERY_TIMEOUT)
        .timeout(DELIVERY_TIMEOUT)
        .build()?;
    let (queue, mut deliveries) = mpsc::unbounded_channel::<Outgoing>();
    tokio::spawn(async move {
        while let Some(outgoing) = deliveries.recv().await {
            let started = Instant::now();
            let outcome = send(&client, &outgoing).await;
            let elapsed = started.elapsed().as_secs_f64();
            let mut registry = registry.lock();
            if let Some(record) = registry
                .log
                .iter_mut()
                .find(|record| record.id == outgoing.record_id)
            {
                record.duration = Some(elapsed);
                match outcome {
                    Ok(status) => {
                        record.status_code = Some(status.as_u16());
                        record.status = if status.is_success() {
                            "OK".to_owned()
                        } else {
                            format!("HTTP {}", status.as_u16())
                        };
                    }
                    Err(error) => record.status = error,
                }
            }
        }
    });
    Ok(queue)
}

async fn send(
    client: &reqwest::Client,
    outgoing: &Outgoing,
) -> Result<reqwest::StatusCode, String> {
    let mut request = client
        .post(outgoing.url.clone())
        .header("content-type", "application/json")
        .header("x-github-event", outgoing.event)
        .header("x-github-delivery", outgoing.guid.as_str())
        .header("x-github-hook-id", outgoing.hook_id)
        .header("x-github-hook-installation-target-type", "organization")
        .header("x-github-hook-installation-target-id", outgoing.org_id);
    if let Some(secret) = &outgoing.secret {
        request = request.header("x-hub-signature-256", signature(secret, &outgoing.body));
    }
    match request.body(outgoing.body.clone()).send().await {
        Ok(response) => Ok(response.status()),
        Err(error) if error.is_timeout() => Err("timed out".to_owned()),
        Err(error) => Err(format!("failed to connect: {error}")),
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` keyed with `secret`.
pub(crate) fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_githubs_documented_example() {
        // From GitHub's "Validating webhook deliveries" documentation.
        assert_eq!(
            signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
