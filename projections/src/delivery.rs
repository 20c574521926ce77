//! The outboxes of the channels that deliver events outside ticketd (DESIGN.md, "Delivering
//! events outside"). Each channel is a projection on the same runtime: it reads the log gap-free
//! and records, in the same transaction as its checkpoint, what must be sent in `deliveries` — a
//! reference to the event (its log position), the recipient and the kind, never a rendered
//! copy. The server's senders (`service::delivery`) drain that table.
//!
//! - [`WebhooksProjection`]: one row per (event, active webhook whose filter takes it), for
//!   events recorded after the hook was created.
//! - [`NatsProjection`]: one row per event of the log, from position 0 (the feed is the log).
//! - E-mail rides on the notifications projection, which decides who hears about what: it
//!   records an e-mail row beside each in-app notification whose recipient wants that kind by
//!   e-mail, while e-mail is configured ([`record_emails`]).
//!
//! These projections are never rebuilt: what they recorded has gone out already.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::PgConnection;

use crate::log::StoredEvent;
use crate::runtime::{ApplyError, Projection, Tables};

/// The channels.
pub const EMAIL: &str = "email";
/// See [`EMAIL`].
pub const WEBHOOK: &str = "webhook";
/// See [`EMAIL`].
pub const NATS: &str = "nats";

/// Every webhook event type, in the order the API lists them.
pub const WEBHOOK_EVENT_TYPES: &[&str] = &[
    "ticket.created",
    "ticket.updated",
    "ticket.status_changed",
    "ticket.assigned",
    "ticket.deleted",
    "comment.created",
    "comment.updated",
    "comment.deleted",
    "attachment.added",
    "attachment.removed",
    "approval.requested",
    "approval.decided",
];

/// The webhook event type of a log event (`None`: not delivered to webhooks, such as the
/// SLA's first-response mark or the person stream's key events).
pub fn webhook_event_type(aggregate_type: &str, event_type: &str) -> Option<&'static str> {
    Some(match (aggregate_type, event_type) {
        ("ticket", "TicketOpened") => "ticket.created",
        ("ticket", "TicketUpdated") => "ticket.updated",
        ("ticket", "TicketStatusChanged") => "ticket.status_changed",
        ("ticket", "TicketAssigned") => "ticket.assigned",
        ("ticket", "TicketDeleted") => "ticket.deleted",
        ("ticket", "CommentAdded") => "comment.created",
        ("ticket", "CommentEdited") => "comment.updated",
        ("ticket", "CommentDeleted") => "comment.deleted",
        ("ticket", "AttachmentAdded") => "attachment.added",
        ("ticket", "AttachmentRemoved") => "attachment.removed",
        ("approval", "ApprovalRequested") => "approval.requested",
        ("approval", "ApprovalGranted" | "ApprovalRejected") => "approval.decided",
        _ => return None,
    })
}

/// Whether some process of this installation sends on `channel` (set at start by its config).
pub async fn set_channel_enabled(
    db: impl sqlx::PgExecutor<'_>,
    channel: &str,
    enabled: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into delivery_channels (channel, enabled) values ($1, $2)
         on conflict (channel) do update set enabled = excluded.enabled, updated_at = now()",
    )
    .bind(channel)
    .bind(enabled)
    .execute(db)
    .await?;
    Ok(())
}

/// Records the e-mails of a batch of notifications (`rows`: the JSON array the notifications
/// projection inserted, with `user_id`, `kind`, `ticket_id` and `source_position`): one per
/// notification whose recipient wants its kind by e-mail and is active, while e-mail is
/// enabled. Called by the notifications projection on its live tables only.
pub async fn record_emails(
    conn: &mut PgConnection,
    rows: &serde_json::Value,
) -> Result<(), ApplyError> {
    sqlx::query(
        "insert into deliveries (channel, event_position, recipient, kind, order_key)
         select 'email', r.source_position, r.user_id, r.kind, r.ticket_id::text
           from jsonb_to_recordset($1) as r(seq bigint, user_id bigint, kind text,
                ticket_id bigint, source_position bigint)
           join users u on u.id = r.user_id and u.is_active
          where exists (select 1 from delivery_channels c where c.channel = 'email' and c.enabled)
            and coalesce(u.notify -> 'email', '[]'::jsonb) ? r.kind
          order by r.seq
         on conflict do nothing",
    )
    .bind(rows)
    .execute(conn)
    .await?;
    Ok(())
}

/// What the outbox of an erased person holds goes: their pending e-mails (the rows are
/// references, but the recipient is the person).
pub async fn erase_recipient(conn: &mut PgConnection, person: i64) -> Result<(), ApplyError> {
    sqlx::query("delete from deliveries where channel = 'email' and recipient = $1")
        .bind(person)
        .execute(conn)
        .await?;
    Ok(())
}

/// The webhooks channel's projection.
pub struct WebhooksProjection;

impl WebhooksProjection {
    /// The checkpoint name.
    pub const NAME: &'static str = "webhooks";
}

async fn apply_webhooks(conn: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
    let hooks: Vec<(i64, Vec<String>, DateTime<Utc>)> =
        sqlx::query_as("select id, events, created_at from webhooks where active")
            .fetch_all(&mut *conn)
            .await?;
    if hooks.is_empty() {
        return Ok(());
    }
    let mut positions = Vec::new();
    let mut recipients = Vec::new();
    let mut kinds = Vec::new();
    let mut keys = Vec::new();
    for e in events {
        let Some(kind) = webhook_event_type(&e.aggregate_type, &e.event_type) else {
            continue;
        };
        for (id, filter, created_at) in &hooks {
            if e.recorded_at < *created_at
                || !(filter.is_empty() || filter.iter().any(|f| f == kind))
            {
                continue;
            }
            positions.push(e.global_position);
            recipients.push(*id);
            kinds.push(kind);
            keys.push(format!("{}:{}", e.aggregate_type, e.aggregate_id));
        }
    }
    insert_rows(conn, WEBHOOK, &positions, &recipients, &kinds, &keys).await
}

/// The NATS feed's projection.
pub struct NatsProjection;

impl NatsProjection {
    /// The checkpoint name.
    pub const NAME: &'static str = "nats";
}

async fn apply_nats(conn: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
    let positions: Vec<i64> = events.iter().map(|e| e.global_position).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let recipients: Vec<i64> = Vec::new();
    let keys: Vec<String> = Vec::new();
    insert_rows(conn, NATS, &positions, &recipients, &kinds, &keys).await
}

/// One multi-row insert (`recipients` and `keys` empty: none).
async fn insert_rows(
    conn: &mut PgConnection,
    channel: &str,
    positions: &[i64],
    recipients: &[i64],
    kinds: &[&str],
    keys: &[String],
) -> Result<(), ApplyError> {
    if positions.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "insert into deliveries (channel, event_position, recipient, kind, order_key)
         select $1, p, r, k, o
           from unnest($2::bigint[], $4::text[]) with ordinality as e(p, k, n)
           left join unnest($3::bigint[]) with ordinality as rr(r, n) using (n)
           left join unnest($5::text[]) with ordinality as ok(o, n) using (n)
          order by n
         on conflict do nothing",
    )
    .bind(channel)
    .bind(positions)
    .bind(recipients)
    .bind(kinds)
    .bind(keys)
    .execute(conn)
    .await?;
    Ok(())
}

macro_rules! delivery_projection {
    ($ty:ty, $apply:path) => {
        impl Projection for $ty {
            fn name(&self) -> &'static str {
                Self::NAME
            }

            fn tables(&self) -> &'static [&'static str] {
                &[]
            }

            fn rebuildable(&self) -> bool {
                false
            }

            fn apply<'a>(
                &'a self,
                conn: &'a mut PgConnection,
                events: &'a [StoredEvent],
                _tables: &'a Tables,
            ) -> BoxFuture<'a, Result<(), ApplyError>> {
                Box::pin($apply(conn, events))
            }
        }
    };
}

delivery_projection!(WebhooksProjection, apply_webhooks);
delivery_projection!(NatsProjection, apply_nats);
