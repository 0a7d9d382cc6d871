//! Org webhooks like GitHub's: hooks registered per org through the control API, a signed
//! delivery for every data mutation (and a `ping` when a hook is created), a log of deliveries
//! with their outcome, and redelivery of a logged delivery under its original GUID.
//!
//! - `payloads`: the events a mutation maps to and their payloads.
//! - `sender`: the task that POSTs deliveries, one after another, and records the outcome.

mod payloads;
mod sender;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use url::Url;

use crate::catalog::EventContext;
pub(crate) use payloads::{
    WebhookEvent, repository_changed, repository_created, repository_deleted,
};

/// Deliveries kept in the log (oldest dropped first), across all hooks.
const DELIVERY_LOG_CAPACITY: usize = 10_000;
/// The first hook id (GitHub's are large numbers).
const FIRST_HOOK_ID: u64 = 480_000_001;
/// The first numeric delivery id.
const FIRST_DELIVERY_ID: u64 = 12_000_000_001;

/// A hook as posted to `POST /_sim/orgs/{org}/hooks`, in the shape of GitHub's
/// `POST /orgs/{org}/hooks`: `{"config": {"url", "secret", "content_type"}, "events", "active"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HookSpec {
    /// Always `web` on GitHub; accepted and ignored.
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "accepted for GitHub's request shape; there is one kind of hook"
    )]
    name: Option<String>,
    config: HookConfig,
    /// Event names, or `*` for all (the default).
    #[serde(default = "all_events")]
    events: Vec<String>,
    #[serde(default = "active_by_default")]
    active: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HookConfig {
    url: String,
    #[serde(default)]
    secret: Option<String>,
    /// Only `json` is supported.
    #[serde(default)]
    content_type: Option<String>,
    /// Accepted for GitHub's shape; deliveries go over plain HTTP or verified TLS anyway.
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "accepted for GitHub's request shape; TLS is always verified"
    )]
    insecure_ssl: Option<Value>,
}

impl HookSpec {
    /// A hook for every event, delivered to `url`, signed with `secret` when given.
    pub(crate) fn for_url(url: Url, secret: Option<String>) -> Self {
        Self {
            name: None,
            config: HookConfig {
                url: url.to_string(),
                secret,
                content_type: None,
                insecure_ssl: None,
            },
            events: all_events(),
            active: true,
        }
    }
}

fn all_events() -> Vec<String> {
    vec!["*".to_owned()]
}

fn active_by_default() -> bool {
    true
}

/// Why a hook control request was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HookError {
    #[error("config.url must be an http or https URL, got {0:?}")]
    BadUrl(String),
    #[error("config.content_type must be \"json\" (form deliveries are not simulated)")]
    ContentType,
    #[error("events must not be empty")]
    NoEvents,
    #[error("hook {0} not found")]
    HookNotFound(u64),
    #[error("delivery {0} not found")]
    DeliveryNotFound(u64),
}

/// A registered hook.
#[derive(Debug, Clone)]
struct Hook {
    id: u64,
    /// The org login, lowercased.
    org: String,
    url: Url,
    secret: Option<Arc<str>>,
    events: Vec<String>,
    active: bool,
    created_at: String,
}

impl Hook {
    fn wants(&self, event: &str) -> bool {
        self.active
            && self
                .events
                .iter()
                .any(|wanted| wanted == "*" || wanted == event)
    }

    /// The hook as GitHub's API shows it (the secret masked).
    fn view(&self, api_base: &str) -> Value {
        let hook_url = format!("{api_base}/orgs/{}/hooks/{}", self.org, self.id);
        let mut config = json!({
            "url": self.url.as_str(),
            "content_type": "json",
            "insecure_ssl": "0",
        });
        if self.secret.is_some() {
            config["secret"] = json!("********");
        }
        json!({
            "type": "Organization",
            "id": self.id,
            "name": "web",
            "active": self.active,
            "events": self.events,
            "config": config,
            "updated_at": self.created_at,
            "created_at": self.created_at,
            "url": hook_url,
            "ping_url": format!("{hook_url}/pings"),
            "deliveries_url": format!("{hook_url}/deliveries"),
        })
    }
}

/// One logged delivery: what was sent and how it went.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeliveryRecord {
    /// Numeric id (redelivery addresses it).
    pub(crate) id: u64,
    /// `X-GitHub-Delivery`: the same for a redelivery as for the original.
    pub(crate) guid: String,
    pub(crate) hook_id: u64,
    pub(crate) event: &'static str,
    pub(crate) action: Option<&'static str>,
    pub(crate) delivered_at: String,
    pub(crate) redelivery: bool,
    /// `pending` until sent, then `OK`, `HTTP {status}` or the transport error.
    pub(crate) status: String,
    /// The receiver's status code, when it answered.
    pub(crate) status_code: Option<u16>,
    /// Seconds from sending to the answer.
    pub(crate) duration: Option<f64>,
    /// The exact body sent (kept for redelivery; shown by the single-delivery route).
    #[serde(skip)]
    pub(crate) body: Bytes,
}

/// What the sender task needs for one POST.
#[derive(Debug)]
struct Outgoing {
    record_id: u64,
    guid: String,
    hook_id: u64,
    org_id: u64,
    event: &'static str,
    url: Url,
    secret: Option<Arc<str>>,
    body: Bytes,
}

#[derive(Debug)]
struct Registry {
    hooks: Vec<Hook>,
    next_hook_id: u64,
    log: VecDeque<DeliveryRecord>,
    next_delivery_id: u64,
}

/// The hooks, the delivery log and the queue to the sender task.
#[derive(Debug)]
pub(crate) struct Webhooks {
    registry: Arc<Mutex<Registry>>,
    queue: mpsc::UnboundedSender<Outgoing>,
    api_base: String,
}

impl Webhooks {
    /// Starts the sender task (on the current Tokio runtime); `api_base` is where hook `url`s
    /// in views point.
    pub(crate) fn start(api_base: String) -> anyhow::Result<Self> {
        let registry = Arc::new(Mutex::new(Registry {
            hooks: Vec::new(),
            next_hook_id: FIRST_HOOK_ID,
            log: VecDeque::new(),
            next_delivery_id: FIRST_DELIVERY_ID,
        }));
        let queue = sender::spawn(Arc::clone(&registry))?;
        Ok(Self {
            registry,
            queue,
            api_base,
        })
    }

    /// Registers a hook on an org and sends it a `ping`; returns the hook's view.
    pub(crate) fn create(
        &self,
        context: &EventContext,
        spec: HookSpec,
    ) -> Result<Value, HookError> {
        let url = Url::parse(&spec.config.url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| HookError::BadUrl(spec.config.url.clone()))?;
        if spec
            .config
            .content_type
            .as_deref()
            .is_some_and(|kind| kind != "json")
        {
            return Err(HookError::ContentType);
        }
        if spec.events.is_empty() {
            return Err(HookError::NoEvents);
        }
        let mut registry = self.registry.lock();
        let hook = Hook {
            id: registry.next_hook_id,
            org: context.login.to_ascii_lowercase(),
            url,
            secret: spec.config.secret.filter(|s| !s.is_empty()).map(Arc::from),
            events: spec.events,
            active: spec.active,
            created_at: payloads::now_timestamp(),
        };
        registry.next_hook_id += 1;
        let view = hook.view(&self.api_base);
        let event = payloads::ping(context, view.clone(), hook.id);
        registry.hooks.push(hook.clone());
        if hook.active {
            self.enqueue(&mut registry, &hook, context.id, &event, None);
        }
        Ok(view)
    }

    /// The org's hooks.
    pub(crate) fn list(&self, org: &str) -> Vec<Value> {
        let org = org.to_ascii_lowercase();
        let registry = self.registry.lock();
        registry
            .hooks
            .iter()
            .filter(|hook| hook.org == org)
            .map(|hook| hook.view(&self.api_base))
            .collect()
    }

    /// Removes a hook of the org.
    pub(crate) fn delete(&self, org: &str, hook_id: u64) -> Result<(), HookError> {
        let org = org.to_ascii_lowercase();
        let mut registry = self.registry.lock();
        let before = registry.hooks.len();
        registry
            .hooks
            .retain(|hook| !(hook.id == hook_id && hook.org == org));
        if registry.hooks.len() == before {
            return Err(HookError::HookNotFound(hook_id));
        }
        Ok(())
    }

    /// A hook's logged deliveries, newest first (like GitHub's list).
    pub(crate) fn deliveries(
        &self,
        org: &str,
        hook_id: u64,
    ) -> Result<Vec<DeliveryRecord>, HookError> {
        let registry = self.registry.lock();
        find_hook(&registry, org, hook_id)?;
        Ok(registry
            .log
            .iter()
            .rev()
            .filter(|record| record.hook_id == hook_id)
            .cloned()
            .collect())
    }

    /// One logged delivery with its payload.
    pub(crate) fn delivery(&self, org: &str, hook_id: u64, id: u64) -> Result<Value, HookError> {
        let registry = self.registry.lock();
        find_hook(&registry, org, hook_id)?;
        let record = find_delivery(&registry, hook_id, id)?;
        let mut view = serde_json::to_value(record).unwrap_or(Value::Null);
        let payload: Value = serde_json::from_slice(&record.body).unwrap_or(Value::Null);
        view["request"] = json!({ "payload": payload });
        Ok(view)
    }

    /// Sends a logged delivery again: the same body and GUID, logged as a new delivery with
    /// `redelivery: true`.
    pub(crate) fn redeliver(
        &self,
        org: &str,
        hook_id: u64,
        id: u64,
        org_id: u64,
    ) -> Result<(), HookError> {
        let mut registry = self.registry.lock();
        let hook = find_hook(&registry, org, hook_id)?.clone();
        let original = find_delivery(&registry, hook_id, id)?.clone();
        let event = WebhookEvent {
            name: original.event,
            action: original.action,
            payload: Value::Null,
        };
        let redelivered = Redelivery {
            guid: original.guid,
            body: original.body,
        };
        self.enqueue(&mut registry, &hook, org_id, &event, Some(redelivered));
        Ok(())
    }

    /// Sends `event` to every active hook of the org that wants it.
    pub(crate) fn emit(&self, context: &EventContext, event: &WebhookEvent) {
        let org = context.login.to_ascii_lowercase();
        let mut registry = self.registry.lock();
        let hooks: Vec<Hook> = registry
            .hooks
            .iter()
            .filter(|hook| hook.org == org && hook.wants(event.name))
            .cloned()
            .collect();
        for hook in &hooks {
            self.enqueue(&mut registry, hook, context.id, event, None);
        }
    }

    fn enqueue(
        &self,
        registry: &mut Registry,
        hook: &Hook,
        org_id: u64,
        event: &WebhookEvent,
        redelivery: Option<Redelivery>,
    ) {
        let is_redelivery = redelivery.is_some();
        let (guid, body) = match redelivery {
            Some(Redelivery { guid, body }) => (guid, body),
            None => (
                uuid::Uuid::new_v4().to_string(),
                Bytes::from(serde_json::to_vec(&event.payload).unwrap_or_default()),
            ),
        };
        let id = registry.next_delivery_id;
        registry.next_delivery_id += 1;
        if registry.log.len() == DELIVERY_LOG_CAPACITY {
            registry.log.pop_front();
        }
        registry.log.push_back(DeliveryRecord {
            id,
            guid: guid.clone(),
            hook_id: hook.id,
            event: event.name,
            action: event.action,
            delivered_at: payloads::now_timestamp(),
            redelivery: is_redelivery,
            status: "pending".to_owned(),
            status_code: None,
            duration: None,
            body: body.clone(),
        });
        let outgoing = Outgoing {
            record_id: id,
            guid,
            hook_id: hook.id,
            org_id,
            event: event.name,
            url: hook.url.clone(),
            secret: hook.secret.clone(),
            body,
        };
        if self.queue.send(outgoing).is_err() {
            tracing::error!("the webhook sender task has stopped; delivery not sent");
        }
    }
}

struct Redelivery {
    guid: String,
    body: Bytes,
}

fn find_hook<'a>(registry: &'a Registry, org: &str, hook_id: u64) -> Result<&'a Hook, HookError> {
    registry
        .hooks
        .iter()
        .find(|hook| hook.id == hook_id && hook.org.eq_ignore_ascii_case(org))
        .ok_or(HookError::HookNotFound(hook_id))
}

fn find_delivery(registry: &Registry, hook_id: u64, id: u64) -> Result<&DeliveryRecord, HookError> {
    registry
        .log
        .iter()
        .find(|record| record.id == id && record.hook_id == hook_id)
        .ok_or(HookError::DeliveryNotFound(id))
}
