//! Delivering events outside ticketd (DESIGN.md, "Delivering events outside"): the senders
//! that drain the `deliveries` outbox the channel projections fill (`projections::delivery`).
//!
//! One sender per channel runs in the whole installation: in the process that leads the
//! channel's projection (the same leadership as projections). It claims due rows in one short statement (a lease), talks to the network
//! with no transaction open, and records each outcome in another statement. A new leader first
//! frees the leases of the one before (which is gone: its lock went with its connection), so a
//! `kill -9` mid-delivery only means those messages go out again, with the same id: delivery is
//! at least once, and receivers deduplicate by the id derived from the log position.

pub mod config;
pub mod email;
pub mod nats;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use projections::RuntimeHandle;
use sqlx::PgPool;
use tokio::sync::watch;

use projections::log::{StoredEvent, EVENT_COLUMNS};

/// One delivery a sender claimed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub event_position: i64,
    pub recipient: Option<i64>,
    pub kind: String,
    pub order_key: Option<String>,
    /// Attempts so far, this one included.
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Sent (with the receiver's HTTP status, for webhooks).
    Delivered(Option<i32>),
    /// Not sent this time: try again later.
    Retry { status: Option<i32>, error: String },
    /// Nothing to send any more (the recipient turned it off, left, or was erased).
    Skipped(String),
    /// Refused for good (a permanent error): no retry, but an admin may retry it by hand.
    Failed { status: Option<i32>, error: String },
}

/// A channel's sending side.
pub trait Channel: Send + Sync + 'static {
    /// `email`, `webhook` or `nats`.
    fn name(&self) -> &'static str;
    /// Rows claimed at once.
    fn batch(&self) -> i64 {
        50
    }
    /// When the next attempt is due after `attempts` failed ones (`None`: give up).
    fn backoff(&self, attempts: i32, created_at: DateTime<Utc>) -> Option<Duration> {
        standard_backoff(attempts, created_at)
    }
    /// Sends `rows` (in id order); one outcome per row, in the same order.
    fn send<'a>(&'a self, rows: &'a [Claimed]) -> BoxFuture<'a, Vec<Outcome>>;
}

/// Retries for 24 hours: after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (the Standard
/// Webhooks schedule), then the delivery fails (an admin may retry it by hand).
pub fn standard_backoff(attempts: i32, created_at: DateTime<Utc>) -> Option<Duration> {
    const SCHEDULE: [u64; 7] = [5, 300, 1800, 7200, 18000, 36000, 36000];
    let delay = Duration::from_secs(*SCHEDULE.get(usize::try_from(attempts - 1).ok()?)?);
    let due = Utc::now() + chrono::Duration::from_std(delay).ok()?;
    (due - created_at <= chrono::Duration::hours(24) + chrono::Duration::minutes(5))
        .then_some(delay)
}

/// How long a claim lasts before another leader may send the row again.
const LEASE: &str = "2 minutes";

/// Claims up to `limit` due rows of `channel`: one statement, committed at once. A webhook
/// delivery waits while an earlier one with the same hook and order key is pending (log order
/// per ticket, as API.md promises); e-mails are threaded by their headers instead, and the NATS
/// relay keeps log order itself.
pub async fn claim(pool: &PgPool, channel: &str, limit: i64) -> Result<Vec<Claimed>, sqlx::Error> {
    let mut rows: Vec<Claimed> = sqlx::query_as(&format!(
        "with due as (
            select id from deliveries o
             where channel = $1 and status = 'pending' and next_attempt_at <= now()
               and (lease_until is null or lease_until < now())
               and (o.channel <> 'webhook' or o.order_key is null or not exists (
                    select 1 from deliveries p
                     where p.channel = o.channel and p.recipient = o.recipient
                       and p.order_key = o.order_key and p.status = 'pending' and p.id < o.id))
             order by id limit $2
             for update skip locked)
         update deliveries d set lease_until = now() + interval '{LEASE}', attempts = d.attempts + 1
           from due where d.id = due.id
         returning d.id, d.event_position, d.recipient, d.kind, d.order_key, d.attempts, d.created_at"
    ))
    .bind(channel)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

/// Records the outcomes of one round: one statement.
pub async fn record(
    pool: &PgPool,
    channel: &dyn Channel,
    rows: &[Claimed],
    outcomes: &[Outcome],
) -> Result<(), sqlx::Error> {
    let mut ids = Vec::new();
    let mut statuses = Vec::new();
    let mut codes: Vec<Option<i32>> = Vec::new();
    let mut errors: Vec<Option<String>> = Vec::new();
    let mut delays: Vec<f64> = Vec::new();
    for (row, outcome) in rows.iter().zip(outcomes) {
        ids.push(row.id);
        match outcome {
            Outcome::Delivered(code) => {
                statuses.push("delivered");
                codes.push(*code);
                errors.push(None);
                delays.push(0.0);
                crate::service::metrics::delivery_sent(channel.name());
            }
            Outcome::Skipped(why) => {
                statuses.push("skipped");
                codes.push(None);
                errors.push(Some(why.clone()));
                delays.push(0.0);
            }
            Outcome::Failed { status, error } => {
                statuses.push("failed");
                codes.push(*status);
                errors.push(Some(truncate(error, 500)));
                delays.push(0.0);
                crate::service::metrics::delivery_failed(channel.name());
            }
            Outcome::Retry { status, error } => {
                match channel.backoff(row.attempts, row.created_at) {
                    Some(delay) => {
                        statuses.push("pending");
                        delays.push(delay.as_secs_f64());
                    }
                    None => {
                        statuses.push("failed");
                        delays.push(0.0);
                        crate::service::metrics::delivery_failed(channel.name());
                    }
                }
                codes.push(*status);
                errors.push(Some(truncate(error, 500)));
            }
        }
    }
    sqlx::query(
        "update deliveries d
            set status = u.status, last_status_code = coalesce(u.code, d.last_status_code),
                last_error = u.error, lease_until = null,
                delivered_at = case when u.status = 'delivered' then now() else d.delivered_at end,
                next_attempt_at = case when u.status = 'pending'
                                       then now() + make_interval(secs => u.delay)
                                       else d.next_attempt_at end
           from unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::float8[])
                as u(id, status, code, error, delay)
          where d.id = u.id",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&codes)
    .bind(&errors)
    .bind(&delays)
    .execute(pool)
    .await?;
    Ok(())
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Whether this process's runtime leads `projection` now.
fn leads(runtime: &RuntimeHandle, projection: &str) -> bool {
    runtime
        .statuses()
        .iter()
        .any(|(name, status)| *name == projection && status.leader && status.stopped.is_none())
}

/// Runs `channel`'s sender until `shutdown`, while this process leads the projection that fills
/// its outbox (`leader_of`): the same leadership as projections, so one sender per channel in
/// the whole installation, and a standby takes over when the leader dies.
pub async fn run(
    pool: PgPool,
    channel: Arc<dyn Channel>,
    runtime: RuntimeHandle,
    leader_of: &'static str,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = channel.name();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if leads(&runtime, leader_of) {
            tracing::info!(channel = name, "delivery sender: leading");
            if let Err(e) = lead(
                &pool,
                channel.as_ref(),
                &runtime,
                leader_of,
                poll,
                &mut shutdown,
            )
            .await
            {
                tracing::warn!(channel = name, error = %e, "delivery sender: retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One term as the channel's sender (returns when no longer leader, on shutdown or an error).
async fn lead(
    pool: &PgPool,
    channel: &dyn Channel,
    runtime: &RuntimeHandle,
    leader_of: &str,
    poll: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), sqlx::Error> {
    // The sender before us is gone (its process lost the projection's lock): its claims are void.
    sqlx::query(
        "update deliveries set lease_until = null
          where channel = $1 and status = 'pending' and lease_until is not null",
    )
    .bind(channel.name())
    .execute(pool)
    .await?;
    loop {
        if *shutdown.borrow() || !leads(runtime, leader_of) {
            return Ok(());
        }
        let rows = claim(pool, channel.name(), channel.batch()).await?;
        if rows.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let outcomes = channel.send(&rows).await;
        record(pool, channel, &rows, &outcomes).await?;
    }
}

/// The events at `positions`, with their personal fields opened (`"[erased]"` for an erased
/// person): messages are rendered from these at send time.
pub async fn load_events(
    pool: &PgPool,
    positions: &[i64],
) -> Result<std::collections::HashMap<i64, StoredEvent>, sqlx::Error> {
    let mut events = read_events(pool, positions).await?;
    projections::log::open_events(pool.into(), &mut events).await?;
    Ok(by_position(events))
}

/// The events at `positions` as stored (personal fields sealed): the NATS feed hands out the
/// log as it is.
pub async fn load_stored_events(
    pool: &PgPool,
    positions: &[i64],
) -> Result<std::collections::HashMap<i64, StoredEvent>, sqlx::Error> {
    Ok(by_position(read_events(pool, positions).await?))
}

async fn read_events(pool: &PgPool, positions: &[i64]) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {EVENT_COLUMNS} from events where global_position = any($1)"
    ))
    .bind(positions)
    .fetch_all(pool)
    .await
}

fn by_position(events: Vec<StoredEvent>) -> std::collections::HashMap<i64, StoredEvent> {
    events.into_iter().map(|e| (e.global_position, e)).collect()
}

/// This installation's id (NATS message ids, e-mail Message-IDs, webhook ids).
pub async fn installation_id(pool: &PgPool) -> Result<uuid::Uuid, sqlx::Error> {
    let (id,): (uuid::Uuid,) = sqlx::query_as("select id from installation")
        .fetch_one(pool)
        .await?;
    Ok(id)
}

/// What the outbox holds now, per channel: `(channel, pending, failed, oldest pending age in
/// seconds)` (the metrics).
pub async fn outbox_state(pool: &PgPool) -> Result<Vec<(String, i64, i64, f64)>, sqlx::Error> {
    sqlx::query_as(
        "select c.channel,
                (select count(*) from deliveries d where d.channel = c.channel and d.status = 'pending'),
                (select count(*) from deliveries d where d.channel = c.channel and d.status = 'failed'),
                coalesce((select extract(epoch from now() - min(d.created_at))::float8
                            from deliveries d where d.channel = c.channel and d.status = 'pending'), 0)
           from unnest(array['email', 'webhook', 'nats']) as c(channel)",
    )
    .fetch_all(pool)
    .await
}

/// Deletes what was sent (or given up on) long ago: webhook deliveries after 7 days (the
/// delivery log), e-mail and NATS rows after a day.
pub async fn purge(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "delete from deliveries
          where status <> 'pending'
            and coalesce(delivered_at, next_attempt_at) < now() - case when channel = 'webhook'
                 then interval '7 days' else interval '1 day' end",
    )
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

/// Starts the senders this configuration asks for (and the purger), and tells the projections
/// which channels are on.
pub async fn start(
    pool: &PgPool,
    config: &config::DeliveryConfig,
    runtime: RuntimeHandle,
    shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let poll = Duration::from_millis(config.poll_ms.max(5));
    let installation = installation_id(pool).await.map_err(|e| e.to_string())?;
    // Each sender, and the projection whose leader runs it.
    let mut channels: Vec<(Arc<dyn Channel>, &'static str)> = vec![(
        Arc::new(webhooks::WebhookSender::new(
            pool.clone(),
            config,
            installation,
        )?),
        projections::delivery::WebhooksProjection::NAME,
    )];
    let email = config::DeliveryConfig::set(&config.smtp_url);
    projections::delivery::set_channel_enabled(pool, projections::delivery::EMAIL, email.is_some())
        .await
        .map_err(|e| e.to_string())?;
    if let Some(url) = email {
        channels.push((
            Arc::new(email::EmailSender::new(
                pool.clone(),
                url,
                config,
                installation,
            )?),
            projections::notifications::NotificationsProjection::NAME,
        ));
    }
    if let Some(url) = config::DeliveryConfig::set(&config.nats_url) {
        channels.push((
            Arc::new(nats::NatsSender::connect(pool.clone(), url, config, installation).await?),
            projections::delivery::NatsProjection::NAME,
        ));
    }
    for (channel, leader_of) in channels {
        tokio::spawn(run(
            pool.clone(),
            channel,
            runtime.clone(),
            leader_of,
            poll,
            shutdown.clone(),
        ));
    }
    let purge_pool = pool.clone();
    let mut purge_shutdown = shutdown;
    tokio::spawn(async move {
        loop {
            if let Err(e) = purge(&purge_pool).await {
                tracing::warn!(error = %e, "purging old deliveries");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                _ = purge_shutdown.changed() => return,
            }
        }
    });
    Ok(())
}
