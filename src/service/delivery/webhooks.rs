//! Webhooks (API.md, "Webhooks"): the admins' subscriptions, their delivery log, and the sender
//! that signs and posts each delivery per the Standard Webhooks specification.
//!
//! Outbound requests go only to the configured URL, with a timeout, following no redirect, and
//! never to an address in the deny-list (private ranges by default): the host is resolved by
//! our own resolver, which drops denied addresses, so a name that points inside the network
//! (or is re-pointed there between check and use) is refused too.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::PgPool;
use utoipa::ToSchema;

use super::{Channel, Claimed, Outcome};
use crate::service::error::{Error, Validator};
use crate::service::paging::Page;
use projections::delivery::WEBHOOK_EVENT_TYPES;

/// Which addresses webhooks may not reach.
#[derive(Debug, Clone, Default)]
pub struct AddressGuard {
    deny: Vec<ipnet::IpNet>,
}

impl AddressGuard {
    /// A guard over `deny` (empty: everything allowed).
    pub fn new(deny: Vec<ipnet::IpNet>) -> Self {
        AddressGuard { deny }
    }

    /// Whether `ip` may be reached (an IPv4-mapped IPv6 address is judged as IPv4).
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        !self.deny.iter().any(|net| net.contains(&ip))
    }
}

/// The DNS resolver of the webhook client: the system's, without denied addresses.
struct GuardedResolver(Arc<AddressGuard>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = format!("{}:0", name.as_str());
            let found: Vec<SocketAddr> = tokio::net::lookup_host(host).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.into_iter().filter(|a| guard.allows(a.ip())).collect();
            if allowed.is_empty() {
                return Err("the host resolves only to addresses webhooks may not reach".into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// A webhook as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    /// Event types delivered; empty: every type.
    pub events: Vec<String>,
    pub active: bool,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Deliveries waiting to be sent.
    pub pending: i64,
    /// Deliveries that failed for good.
    pub failed: i64,
}

/// A webhook just created: with its signing secret, shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_<base64>`: verify signatures with it (Standard Webhooks). Never shown again: a
    /// replay of the create under the same `Idempotency-Key` answers the hook without it (the
    /// replay re-reads the resource, and keeps no secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `POST /webhooks`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookCreate {
    /// `http` or `https` URL the deliveries are posted to.
    #[schema(example = "https://hooks.example.com/ticketd")]
    pub url: String,
    /// Event types (see `GET /webhooks/event-types`); empty or absent: every type.
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default = "yes")]
    pub active: bool,
    pub description: Option<String>,
}

fn yes() -> bool {
    true
}

/// `PATCH /webhooks/{id}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookUpdate {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub active: Option<bool>,
    pub description: Option<String>,
}

/// One delivery of a webhook (the delivery log).
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    /// The event's log position (also in the `webhook-id` header).
    pub event_id: i64,
    pub event_type: String,
    pub attempts: i32,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

const WEBHOOK_COLUMNS: &str = "w.id, w.url, w.events, w.active, w.description, w.created_at, \
     w.updated_at, \
     (select count(*) from deliveries d where d.channel = 'webhook' and d.recipient = w.id \
         and d.status = 'pending') as pending, \
     (select count(*) from deliveries d where d.channel = 'webhook' and d.recipient = w.id \
         and d.status = 'failed') as failed";

const DELIVERY_COLUMNS: &str = "id, event_position as event_id, kind as event_type, attempts, \
     status, last_status_code, last_error, \
     case when status = 'pending' then next_attempt_at end as next_attempt_at, created_at, \
     delivered_at";

fn check_url(v: &mut Validator, guard: &AddressGuard, url: &str) {
    if url.len() > 2000 {
        v.check(false, "url", "URL must be at most 2000 characters");
        return;
    }
    match reqwest::Url::parse(url) {
        Err(_) => v.check(false, "url", "URL is not valid"),
        Ok(u) => {
            v.check(
                matches!(u.scheme(), "http" | "https"),
                "url",
                "URL must use http or https",
            );
            match u.host() {
                None => v.check(false, "url", "URL must name a host"),
                Some(url::Host::Ipv4(ip)) => v.check(
                    guard.allows(IpAddr::V4(ip)),
                    "url",
                    "URL points to a private or reserved address",
                ),
                Some(url::Host::Ipv6(ip)) => v.check(
                    guard.allows(IpAddr::V6(ip)),
                    "url",
                    "URL points to a private or reserved address",
                ),
                Some(url::Host::Domain(d)) => v.check(
                    guard.allows(IpAddr::from([127, 0, 0, 1]))
                        || !(d.eq_ignore_ascii_case("localhost")
                            || d.to_ascii_lowercase().ends_with(".localhost")),
                    "url",
                    "URL points to a private or reserved address",
                ),
            }
        }
    }
}

fn check_events(v: &mut Validator, events: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in events {
        if !WEBHOOK_EVENT_TYPES.contains(&e.as_str()) {
            v.check(
                false,
                "events",
                &format!(
                    "unknown event type {e:?}; known: {}",
                    WEBHOOK_EVENT_TYPES.join(", ")
                ),
            );
            return out;
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    out
}

fn check_description(v: &mut Validator, d: Option<&str>) {
    v.check(
        d.is_none_or(|d| d.chars().count() <= 500),
        "description",
        "description must be at most 500 characters",
    );
}

/// A new signing secret: `whsec_` and 32 random bytes in base64.
fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// The webhooks, newest first.
pub async fn list(
    pool: &PgPool,
    (page, size, offset): (i64, i64, i64),
) -> Result<Page<Webhook>, Error> {
    let items: Vec<Webhook> = sqlx::query_as(&format!(
        "select {WEBHOOK_COLUMNS} from webhooks w order by w.id desc limit $1 offset $2"
    ))
    .bind(size)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let (total,): (i64,) = sqlx::query_as("select count(*) from webhooks")
        .fetch_one(pool)
        .await?;
    Ok(Page::new(items, total, page, size))
}

/// One webhook (404 if there is none).
pub async fn find(pool: &PgPool, id: i64) -> Result<Webhook, Error> {
    sqlx::query_as(&format!(
        "select {WEBHOOK_COLUMNS} from webhooks w where w.id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| Error::not_found("Webhook"))
}

/// Creates a webhook; its secret is in the answer, and only there.
pub async fn create(
    pool: &PgPool,
    guard: &AddressGuard,
    actor: i64,
    body: WebhookCreate,
) -> Result<CreatedWebhook, Error> {
    let mut v = Validator::default();
    check_url(&mut v, guard, body.url.trim());
    let events = check_events(&mut v, &body.events);
    check_description(&mut v, body.description.as_deref());
    v.finish()?;
    let secret = new_secret();
    let (id,): (i64,) = sqlx::query_as(
        "insert into webhooks (url, events, active, description, secret, created_by)
         values ($1, $2, $3, $4, $5, $6) returning id",
    )
    .bind(body.url.trim())
    .bind(&events)
    .bind(body.active)
    .bind(
        body.description
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty()),
    )
    .bind(&secret)
    .bind(actor)
    .fetch_one(pool)
    .await?;
    Ok(CreatedWebhook {
        webhook: find(pool, id).await?,
        secret: Some(secret),
    })
}

/// Changes a webhook's URL, filter, description or state.
pub async fn update(
    pool: &PgPool,
    guard: &AddressGuard,
    id: i64,
    body: WebhookUpdate,
) -> Result<Webhook, Error> {
    let mut v = Validator::default();
    if let Some(url) = &body.url {
        check_url(&mut v, guard, url.trim());
    }
    let events = body.events.as_ref().map(|e| check_events(&mut v, e));
    check_description(&mut v, body.description.as_deref());
    v.finish()?;
    let r = sqlx::query(
        "update webhooks set url = coalesce($2, url), events = coalesce($3, events),
                active = coalesce($4, active),
                description = case when $5::text is null then description
                                   else nullif(trim($5), '') end,
                updated_at = now()
          where id = $1",
    )
    .bind(id)
    .bind(body.url.as_deref().map(str::trim))
    .bind(events)
    .bind(body.active)
    .bind(body.description)
    .execute(pool)
    .await?;
    if r.rows_affected() == 0 {
        return Err(Error::not_found("Webhook"));
    }
    find(pool, id).await
}

/// Deletes a webhook and its delivery log.
pub async fn delete(pool: &PgPool, id: i64) -> Result<(), Error> {
    let r = sqlx::query("delete from webhooks where id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    if r.rows_affected() == 0 {
        return Err(Error::not_found("Webhook"));
    }
    sqlx::query("delete from deliveries where channel = 'webhook' and recipient = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// A webhook's deliveries, newest first (`status` filters).
pub async fn deliveries(
    pool: &PgPool,
    id: i64,
    status: Option<&str>,
    (page, size, offset): (i64, i64, i64),
) -> Result<Page<Delivery>, Error> {
    find(pool, id).await?;
    let items: Vec<Delivery> = sqlx::query_as(&format!(
        "select {DELIVERY_COLUMNS} from deliveries
          where channel = 'webhook' and recipient = $1 and ($2::text is null or status = $2)
          order by id desc limit $3 offset $4"
    ))
    .bind(id)
    .bind(status)
    .bind(size)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let (total,): (i64,) = sqlx::query_as(
        "select count(*) from deliveries
          where channel = 'webhook' and recipient = $1 and ($2::text is null or status = $2)",
    )
    .bind(id)
    .bind(status)
    .fetch_one(pool)
    .await?;
    Ok(Page::new(items, total, page, size))
}

/// Sends a delivery again as soon as the sender looks (a failed one gets a fresh 24 hours).
pub async fn retry(pool: &PgPool, id: i64, delivery: i64) -> Result<Delivery, Error> {
    find(pool, id).await?;
    let row: Option<Delivery> = sqlx::query_as(&format!(
        "update deliveries set status = 'pending', next_attempt_at = now(), lease_until = null,
                created_at = case when status = 'failed' then now() else created_at end
          where id = $1 and channel = 'webhook' and recipient = $2
         returning {DELIVERY_COLUMNS}"
    ))
    .bind(delivery)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.ok_or_else(|| Error::not_found("Delivery"))
}

/// The Standard Webhooks signature of one attempt: `v1,<base64 HMAC-SHA256 of
/// "id.timestamp.body">`, keyed with the secret's base64 part.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The webhook-id of an event's deliveries: stable across retries, unique per installation.
pub fn message_id(installation: uuid::Uuid, position: i64) -> String {
    format!("msg_{}_{position}", installation.simple())
}

/// The body of an event's delivery (rendered at send time from the opened event).
pub fn body(kind: &str, event: &projections::StoredEvent) -> Value {
    let ticket_id = match event.aggregate_type.as_str() {
        "ticket" => event.aggregate_id.parse::<i64>().ok(),
        _ => event
            .payload
            .pointer(&format!("/{}/ticket_id", event.event_type))
            .and_then(Value::as_i64),
    };
    let data = event
        .payload
        .get(&event.event_type)
        .cloned()
        .unwrap_or(Value::Null);
    json!({
        "type": kind,
        "timestamp": event.recorded_at,
        "data": {
            "event_id": event.global_position,
            "event_type": event.event_type,
            "aggregate_type": event.aggregate_type,
            "aggregate_id": event.aggregate_id,
            "sequence": event.sequence,
            "ticket_id": ticket_id,
            "actor_id": event.actor_id(),
            "event": data,
        }
    })
}

/// The webhook channel's sender.
pub struct WebhookSender {
    pool: PgPool,
    client: reqwest::Client,
    guard: Arc<AddressGuard>,
    installation: uuid::Uuid,
}

impl WebhookSender {
    /// A sender with this configuration's deny-list and timeout.
    pub fn new(
        pool: PgPool,
        config: &super::config::DeliveryConfig,
        installation: uuid::Uuid,
    ) -> Result<Self, String> {
        let guard = Arc::new(AddressGuard::new(config.deny_list()?));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(config.webhook_timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(5))
            .user_agent("ticketd-webhooks/1")
            .dns_resolver(Arc::new(GuardedResolver(guard.clone())))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(WebhookSender {
            pool,
            client,
            guard,
            installation,
        })
    }

    async fn send_one(
        &self,
        row: &Claimed,
        hooks: &std::collections::HashMap<i64, (String, String, bool)>,
        events: &std::collections::HashMap<i64, projections::StoredEvent>,
    ) -> Outcome {
        let Some((url, secret, active)) = row.recipient.and_then(|r| hooks.get(&r)) else {
            return Outcome::Skipped("the webhook was deleted".into());
        };
        if !active {
            return Outcome::Retry {
                status: None,
                error: "the webhook is paused".into(),
            };
        }
        let Some(event) = events.get(&row.event_position) else {
            return Outcome::Skipped("the event is not in the log".into());
        };
        // An address literal never goes through the resolver: judge it here.
        if let Ok(u) = reqwest::Url::parse(url) {
            let literal = match u.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if literal.is_some_and(|ip| !self.guard.allows(ip)) {
                return Outcome::Retry {
                    status: None,
                    error: "the URL points to an address webhooks may not reach".into(),
                };
            }
        }
        let id = message_id(self.installation, row.event_position);
        let body = body(&row.kind, event).to_string();
        let timestamp = Utc::now().timestamp();
        let Some(signature) = sign(secret, &id, timestamp, body.as_bytes()) else {
            return Outcome::Skipped("the webhook's secret is malformed".into());
        };
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                Outcome::Delivered(Some(i32::from(r.status().as_u16())))
            }
            Ok(r) => Outcome::Retry {
                status: Some(i32::from(r.status().as_u16())),
                error: format!("the receiver answered {}", r.status()),
            },
            Err(e) => Outcome::Retry {
                status: None,
                error: describe(&e),
            },
        }
    }
}

/// A client error in words (no internals of ours).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the receiver did not answer in time".into()
    } else if e.is_connect() {
        let mut source: Option<&dyn std::error::Error> = Some(e);
        let mut text = "could not connect".to_string();
        while let Some(s) = source {
            if s.to_string().contains("may not reach") {
                text = "the host resolves only to addresses webhooks may not reach".into();
            }
            source = s.source();
        }
        text
    } else {
        "the request failed".into()
    }
}

impl Channel for WebhookSender {
    fn name(&self) -> &'static str {
        projections::delivery::WEBHOOK
    }

    fn send<'a>(&'a self, rows: &'a [Claimed]) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let mut ids: Vec<i64> = rows.iter().filter_map(|r| r.recipient).collect();
            ids.sort_unstable();
            ids.dedup();
            let positions: Vec<i64> = rows.iter().map(|r| r.event_position).collect();
            let hooks: Result<Vec<(i64, String, String, bool)>, _> =
                sqlx::query_as("select id, url, secret, active from webhooks where id = any($1)")
                    .bind(&ids)
                    .fetch_all(&self.pool)
                    .await;
            let events = super::load_events(&self.pool, &positions).await;
            let (hooks, events) = match (hooks, events) {
                (Ok(h), Ok(e)) => (h, e),
                (Err(e), _) | (_, Err(e)) => {
                    return rows
                        .iter()
                        .map(|_| Outcome::Retry {
                            status: None,
                            error: {
                                tracing::warn!(error = %e, "webhook sender");
                                "ticketd could not read the delivery; it will try again".into()
                            },
                        })
                        .collect()
                }
            };
            let hooks: std::collections::HashMap<i64, (String, String, bool)> = hooks
                .into_iter()
                .map(|(id, url, secret, active)| (id, (url, secret, active)))
                .collect();
            let sends: Vec<_> = rows
                .iter()
                .map(|row| self.send_one(row, &hooks, &events))
                .collect();
            futures::stream::iter(sends).buffered(8).collect().await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the Standard Webhooks reference libraries.
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signature.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn the_guard_denies_private_ranges_also_behind_ipv4_mapped_addresses() {
        let deny = crate::service::delivery::config::DeliveryConfig::default()
            .deny_list()
            .expect("default deny-list");
        let guard = AddressGuard::new(deny);
        for ip in [
            "127.0.0.1",
            "10.0.0.8",
            "192.168.1.1",
            "169.254.169.254",
            "::1",
            "::ffff:127.0.0.1",
            "fd00::1",
        ] {
            assert!(!guard.allows(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(guard.allows(ip.parse().expect("ip")), "{ip}");
        }
        assert!(AddressGuard::default().allows("127.0.0.1".parse().expect("ip")));
    }
}
