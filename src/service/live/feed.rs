//! What the live hub reads from the log and hands out: a `ticket` change per transaction and
//! ticket (with what a requester may see of it), and the queue's `{ticket_id, version}`.

use aggregates::ticket::TicketEvent;
use projections::{Checkpoint, StoredEvent};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::service::names::NameMap;

/// `event: ticket` — a watched ticket changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketChange {
    pub ticket_id: i64,
    /// The ticket's version after the change (its `ETag`).
    pub version: i64,
    pub actor_id: Option<i64>,
    pub actor_name: Option<String>,
    /// The stored event types of the change, in log order.
    pub event_types: Vec<String>,
    /// One line for people, e.g. "Bea Agent replied and changed the status to resolved".
    pub summary: String,
}

/// `event: queue` — some ticket changed (staff with `queue=true`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct QueueChange {
    pub ticket_id: i64,
    pub version: i64,
}

/// The events of one ticket in one transaction, decoded.
#[derive(Debug, Clone)]
pub struct Group {
    pub ticket_id: i64,
    /// The checkpoint of its last event: the SSE id.
    pub last: Checkpoint,
    pub version: i64,
    pub actor_id: Option<i64>,
    /// (event type, internal, what it did in words).
    pub parts: Vec<(String, bool, String)>,
}

impl Group {
    /// The change as a reader sees it: staff see everything; others nothing internal (None when
    /// nothing is left).
    pub fn change_for(&self, staff: bool, names: &NameMap) -> Option<TicketChange> {
        let parts: Vec<&(String, bool, String)> =
            self.parts.iter().filter(|p| staff || !p.1).collect();
        if parts.is_empty() {
            return None;
        }
        let actor_name = names.of(self.actor_id);
        let doings: Vec<&str> = parts
            .iter()
            .map(|p| p.2.as_str())
            .filter(|d| !d.is_empty())
            .collect();
        let who = actor_name.as_deref().unwrap_or("Someone");
        let summary = match doings.as_slice() {
            [] => format!("{who} updated the ticket"),
            [one] => format!("{who} {one}"),
            [init @ .., last] => format!("{who} {} and {last}", init.join(", ")),
        };
        Some(TicketChange {
            ticket_id: self.ticket_id,
            version: self.version,
            actor_id: self.actor_id,
            actor_name,
            event_types: parts.iter().map(|p| p.0.clone()).collect(),
            summary,
        })
    }
}

/// What an event did, in words (empty: nothing worth saying, e.g. a first-response mark).
fn doing(event: &TicketEvent) -> String {
    match event {
        TicketEvent::TicketOpened { .. } => "opened the ticket".into(),
        TicketEvent::TicketUpdated { .. } => "edited the ticket".into(),
        TicketEvent::TicketStatusChanged { to, .. } => {
            format!("changed the status to {}", to.as_str())
        }
        TicketEvent::TicketAssigned {
            assignee_id: Some(_),
            ..
        } => "assigned the ticket".into(),
        TicketEvent::TicketAssigned { .. } => "unassigned the ticket".into(),
        TicketEvent::TicketDeleted { .. } => "deleted the ticket".into(),
        TicketEvent::CommentAdded(c) if c.is_internal => "added an internal note".into(),
        TicketEvent::CommentAdded(_) => "replied".into(),
        TicketEvent::CommentEdited { .. } => "edited a comment".into(),
        TicketEvent::CommentDeleted { .. } => "deleted a comment".into(),
        TicketEvent::AttachmentAdded(_) => "attached a file".into(),
        TicketEvent::AttachmentRemoved { .. } => "removed a file".into(),
        TicketEvent::ApprovalRecorded { .. } => "recorded an approval decision".into(),
        TicketEvent::FirstResponseRecorded { .. } => String::new(),
    }
}

/// The ticket events of a slice of the log, grouped by transaction and ticket, in log order.
/// Events that cannot be decoded are skipped (the projections report them).
pub fn groups(events: &[StoredEvent]) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for e in events.iter().filter(|e| e.aggregate_type == "ticket") {
        let Ok((ticket_id, event)) = projections::batch::ticket_event(e) else {
            continue;
        };
        let at = e.checkpoint();
        let part = (e.event_type.clone(), event.is_internal(), doing(&event));
        match out.last_mut() {
            Some(g) if g.ticket_id == ticket_id && g.last.txid == at.txid => {
                g.last = at;
                g.version = e.sequence;
                g.parts.push(part);
            }
            _ => out.push(Group {
                ticket_id,
                last: at,
                version: e.sequence,
                actor_id: e.actor_id(),
                parts: vec![part],
            }),
        }
    }
    out
}

/// At most `limit` events in `(after, upto]` — only those of `tickets` when given: a range the
/// notifications projection has passed, so no transaction in it can still commit.
pub async fn read_range(
    pool: &PgPool,
    (after, upto): (Checkpoint, Checkpoint),
    tickets: Option<&[i64]>,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let ids: Option<Vec<String>> = tickets.map(|t| t.iter().map(i64::to_string).collect());
    let mut events = sqlx::query_as::<_, StoredEvent>(&format!(
        "select {} from events
          where (transaction_id, global_position) > ($1::text::xid8, $2::bigint)
            and (transaction_id, global_position) <= ($3::text::xid8, $4::bigint)
            and ($6::text[] is null or (aggregate_type = 'ticket' and aggregate_id = any($6)))
          order by transaction_id, global_position
          limit $5",
        projections::log::EVENT_COLUMNS
    ))
    .bind(after.txid.to_string())
    .bind(after.position)
    .bind(upto.txid.to_string())
    .bind(upto.position)
    .bind(limit)
    .bind(ids)
    .fetch_all(pool)
    .await?;
    projections::log::open_events(pool.into(), &mut events).await?;
    Ok(events)
}

/// When the event at `at` was recorded (None when the log has no such event).
pub async fn recorded_at(
    pool: &PgPool,
    at: Checkpoint,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "select recorded_at from events
          where transaction_id = $1::text::xid8 and global_position = $2",
    )
    .bind(at.txid.to_string())
    .bind(at.position)
    .fetch_optional(pool)
    .await
}

/// How far the notifications projection has gone (the hub's starting point).
pub async fn notifications_checkpoint(pool: &PgPool) -> Result<Checkpoint, sqlx::Error> {
    projections::runtime::checkpoint_of(
        pool,
        projections::notifications::NotificationsProjection::NAME,
    )
    .await
}
