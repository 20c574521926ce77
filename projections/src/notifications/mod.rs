//! The notifications read model (`rm_notifications`): who should hear about an event.
//!
//! - assigned to you (`assigned`);
//! - a public reply on a ticket you requested or follow (`comment`), or a mention (`mention`);
//! - a status change on a ticket you requested or follow (`status_changed`);
//! - an approval step waiting on you (`approval_requested`: requested, the previous step
//!   completed, or a decision delegated to you).
//!
//! The assignee and every commenter follow a ticket automatically. The actor is never told
//! about their own action. Internal notes only ever reach staff: the recipients' current roles
//! are read from `users` when the batch is applied, and the API filters `internal` rows for
//! requesters once more when it reads. Everybody else must be able to see the ticket: staff, or
//! its requester.
//!
//! The projection keeps its own memory of tickets (requester, assignee, followers, title) and
//! approvals (steps) in two small tables, rebuilt and swapped with the notifications.

use std::collections::{BTreeMap, HashMap, HashSet};

use aggregates::approval::ApprovalEvent;
use aggregates::ticket::TicketEvent;
use aggregates::{Role, TicketStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::runtime::{ApplyError, Tables};

pub mod queries;

/// The `notifications` projection.
pub struct NotificationsProjection;

impl NotificationsProjection {
    /// The checkpoint name.
    pub const NAME: &'static str = "notifications";
}

/// What a ticket's notifications need to know about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, FromRow)]
pub struct TicketMemo {
    pub ticket_id: i64,
    pub requester_id: i64,
    pub assignee_id: Option<i64>,
    pub followers: Vec<i64>,
    pub title: String,
}

impl TicketMemo {
    fn follow(&mut self, user: i64) {
        if user != self.requester_id && !self.followers.contains(&user) {
            self.followers.push(user);
        }
    }
}

/// One step of an approval: its name and approvers as requested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMemo {
    pub name: String,
    pub approver_ids: Vec<i64>,
}

/// What an approval's notifications need to know about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalMemo {
    pub approval_id: Uuid,
    pub ticket_id: i64,
    pub requested_by: i64,
    pub steps: Vec<StepMemo>,
}

/// Who may receive a notification.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Audience {
    /// Anyone named (approvers are named on purpose).
    Named,
    /// Staff, or the ticket's requester.
    TicketReaders { requester_id: i64 },
    /// Staff only (internal notes).
    Staff,
}

/// A notification before the recipients' roles are checked.
#[derive(Debug, Clone, Serialize)]
struct Draft {
    seq: usize,
    user_id: i64,
    kind: &'static str,
    ticket_id: Option<i64>,
    approval_id: Option<Uuid>,
    comment_id: Option<Uuid>,
    actor_id: Option<i64>,
    message: String,
    excerpt: Option<String>,
    internal: bool,
    source_position: i64,
    created_at: DateTime<Utc>,
    #[serde(skip)]
    audience: Option<Audience>,
}

/// The display number of a ticket.
pub fn ticket_ref(id: i64) -> String {
    format!("TKT-{id}")
}

fn excerpt(text: &str) -> String {
    const MAX: usize = 160;
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAX {
        flat
    } else {
        let mut s: String = flat.chars().take(MAX - 1).collect();
        s.push('…');
        s
    }
}

/// Collects drafts for one batch, one per (recipient, event) at most.
struct Drafts {
    out: Vec<Draft>,
    seen: HashSet<(i64, i64)>,
}

impl Drafts {
    fn push(&mut self, event: &StoredEvent, user_id: i64, draft: impl FnOnce() -> Draft) {
        // Never to the actor; at most one notification per recipient and event (the first
        // pushed wins, so push the most specific kind first).
        if event.actor_id() == Some(user_id) || !self.seen.insert((user_id, event.global_position))
        {
            return;
        }
        let mut d = draft();
        d.seq = self.out.len();
        d.user_id = user_id;
        self.out.push(d);
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one flat constructor reads better than a builder here"
)]
fn draft(
    event: &StoredEvent,
    kind: &'static str,
    ticket_id: Option<i64>,
    approval_id: Option<Uuid>,
    comment_id: Option<Uuid>,
    message: String,
    excerpt: Option<String>,
    internal: bool,
    audience: Audience,
) -> Draft {
    Draft {
        seq: 0,
        user_id: 0,
        kind,
        ticket_id,
        approval_id,
        comment_id,
        actor_id: event.actor_id(),
        message,
        excerpt,
        internal,
        source_position: event.global_position,
        created_at: event.recorded_at,
        audience: Some(audience),
    }
}

fn on_ticket_event(
    drafts: &mut Drafts,
    memo: &mut Option<TicketMemo>,
    ticket_id: i64,
    event: &StoredEvent,
    decoded: &TicketEvent,
) {
    if let TicketEvent::TicketOpened {
        requester_id,
        fields,
        ..
    } = decoded
    {
        *memo = Some(TicketMemo {
            ticket_id,
            requester_id: *requester_id,
            assignee_id: None,
            followers: Vec::new(),
            title: fields.title.clone(),
        });
        return;
    }
    let Some(t) = memo.as_mut() else {
        return;
    };
    let reference = ticket_ref(ticket_id);
    let readers = Audience::TicketReaders {
        requester_id: t.requester_id,
    };
    match decoded {
        TicketEvent::TicketOpened { .. } => {}
        TicketEvent::TicketUpdated { changes, .. } => {
            if let Some(title) = &changes.title {
                t.title = title.clone();
            }
        }
        TicketEvent::TicketAssigned { assignee_id, .. } => {
            t.assignee_id = *assignee_id;
            if let Some(assignee) = assignee_id {
                t.follow(*assignee);
                let message = format!("{reference} was assigned to you: {}", t.title);
                drafts.push(event, *assignee, || {
                    draft(
                        event,
                        "assigned",
                        Some(ticket_id),
                        None,
                        None,
                        message,
                        None,
                        false,
                        readers,
                    )
                });
            }
        }
        TicketEvent::TicketStatusChanged { from, to, .. } => {
            let message = format!("{reference} moved from {from} to {to}: {}", t.title);
            for user in std::iter::once(t.requester_id).chain(t.followers.iter().copied()) {
                drafts.push(event, user, || {
                    draft(
                        event,
                        "status_changed",
                        Some(ticket_id),
                        None,
                        None,
                        message.clone(),
                        None,
                        false,
                        readers,
                    )
                });
            }
        }
        TicketEvent::TicketDeleted { from, .. } => {
            let to = TicketStatus::Cancelled;
            let message = format!("{reference} moved from {from} to {to}: {}", t.title);
            for user in std::iter::once(t.requester_id).chain(t.followers.iter().copied()) {
                drafts.push(event, user, || {
                    draft(
                        event,
                        "status_changed",
                        Some(ticket_id),
                        None,
                        None,
                        message.clone(),
                        None,
                        false,
                        readers,
                    )
                });
            }
        }
        TicketEvent::CommentAdded {
            comment_id,
            author_id,
            content,
            is_internal,
            mentions,
            ..
        } => {
            let audience = if *is_internal {
                Audience::Staff
            } else {
                readers
            };
            let text = Some(excerpt(content));
            let (mention_msg, reply_msg) = if *is_internal {
                (
                    format!(
                        "You were mentioned in an internal note on {reference}: {}",
                        t.title
                    ),
                    format!("New internal note on {reference}: {}", t.title),
                )
            } else {
                (
                    format!("You were mentioned on {reference}: {}", t.title),
                    format!("New reply on {reference}: {}", t.title),
                )
            };
            for user in mentions {
                drafts.push(event, *user, || {
                    draft(
                        event,
                        "mention",
                        Some(ticket_id),
                        None,
                        Some(*comment_id),
                        mention_msg.clone(),
                        text.clone(),
                        *is_internal,
                        audience,
                    )
                });
            }
            for user in std::iter::once(t.requester_id).chain(t.followers.iter().copied()) {
                drafts.push(event, user, || {
                    draft(
                        event,
                        "comment",
                        Some(ticket_id),
                        None,
                        Some(*comment_id),
                        reply_msg.clone(),
                        text.clone(),
                        *is_internal,
                        audience,
                    )
                });
            }
            t.follow(*author_id);
        }
        TicketEvent::CommentEdited { .. }
        | TicketEvent::CommentDeleted { .. }
        | TicketEvent::FirstResponseRecorded { .. }
        | TicketEvent::AttachmentAdded { .. }
        | TicketEvent::AttachmentRemoved { .. }
        | TicketEvent::ApprovalRecorded { .. } => {}
    }
}

fn on_approval_event(
    drafts: &mut Drafts,
    memo: &mut Option<ApprovalMemo>,
    approval_id: Uuid,
    tickets: &BTreeMap<i64, Option<TicketMemo>>,
    event: &StoredEvent,
    decoded: &ApprovalEvent,
) {
    if let ApprovalEvent::ApprovalRequested {
        ticket_id,
        requested_by,
        steps,
        ..
    } = decoded
    {
        *memo = Some(ApprovalMemo {
            approval_id,
            ticket_id: *ticket_id,
            requested_by: *requested_by,
            steps: steps
                .iter()
                .map(|s| StepMemo {
                    name: s.name.clone(),
                    approver_ids: s.approver_ids.clone(),
                })
                .collect(),
        });
    }
    let Some(a) = memo.as_ref() else {
        return;
    };
    let title = tickets
        .get(&a.ticket_id)
        .and_then(|t| t.as_ref())
        .map(|t| t.title.as_str())
        .unwrap_or_default();
    let reference = ticket_ref(a.ticket_id);
    let waiting = |step: &StepMemo, how: &str| {
        format!(
            "Your approval is needed on {reference} (step \"{}\"{how}): {title}",
            step.name
        )
    };
    let (recipients, message): (Vec<i64>, String) = match decoded {
        ApprovalEvent::ApprovalRequested { .. } => match a.steps.first() {
            Some(step) => (step.approver_ids.clone(), waiting(step, "")),
            None => return,
        },
        ApprovalEvent::StepCompleted { step, .. } => match a.steps.get(step + 1) {
            Some(next) => (next.approver_ids.clone(), waiting(next, "")),
            None => return,
        },
        ApprovalEvent::DecisionDelegated {
            step, to_user_id, ..
        } => match a.steps.get(*step) {
            Some(s) => (vec![*to_user_id], waiting(s, ", delegated to you")),
            None => return,
        },
        _ => return,
    };
    for user in recipients {
        drafts.push(event, user, || {
            draft(
                event,
                "approval_requested",
                Some(a.ticket_id),
                Some(approval_id),
                None,
                message.clone(),
                None,
                false,
                Audience::Named,
            )
        });
    }
}

enum Decoded {
    Ticket(i64, TicketEvent),
    Approval(Uuid, ApprovalEvent),
}

async fn apply_notifications(
    conn: &mut PgConnection,
    events: &[StoredEvent],
    tables: &Tables,
) -> Result<(), ApplyError> {
    let rm = tables.name("rm_notifications");
    let rm_tickets = tables.name("rm_notification_tickets");
    let rm_approvals = tables.name("rm_notification_approvals");

    let mut decoded = Vec::with_capacity(events.len());
    for e in events {
        match e.aggregate_type.as_str() {
            "ticket" => {
                let id: i64 = e
                    .aggregate_id
                    .parse()
                    .map_err(|_| ApplyError::poison(e, "ticket id is not a number"))?;
                let ev: TicketEvent = serde_json::from_value(e.payload.clone()).map_err(|err| {
                    ApplyError::poison(e, format!("undecodable {}: {err}", e.event_type))
                })?;
                decoded.push((e, Decoded::Ticket(id, ev)));
            }
            "approval" => {
                let id: Uuid = e
                    .aggregate_id
                    .parse()
                    .map_err(|_| ApplyError::poison(e, "approval id is not a UUID"))?;
                let ev: ApprovalEvent =
                    serde_json::from_value(e.payload.clone()).map_err(|err| {
                        ApplyError::poison(e, format!("undecodable {}: {err}", e.event_type))
                    })?;
                decoded.push((e, Decoded::Approval(id, ev)));
            }
            _ => {}
        }
    }
    if decoded.is_empty() {
        return Ok(());
    }

    // Load the memory of every ticket and approval in the batch.
    let mut ticket_ids: Vec<i64> = Vec::new();
    let mut approval_ids: Vec<Uuid> = Vec::new();
    for (_, d) in &decoded {
        match d {
            Decoded::Ticket(id, _) => ticket_ids.push(*id),
            Decoded::Approval(id, ev) => {
                approval_ids.push(*id);
                if let ApprovalEvent::ApprovalRequested { ticket_id, .. } = ev {
                    ticket_ids.push(*ticket_id);
                }
            }
        }
    }
    approval_ids.sort_unstable();
    approval_ids.dedup();
    let mut approvals: BTreeMap<Uuid, Option<ApprovalMemo>> =
        approval_ids.iter().map(|id| (*id, None)).collect();
    let stored: Vec<(Uuid, i64, i64, serde_json::Value)> = sqlx::query_as(&format!(
        "select approval_id, ticket_id, requested_by, steps from {rm_approvals} where approval_id = any($1)"
    ))
    .bind(&approval_ids)
    .fetch_all(&mut *conn)
    .await?;
    for (approval_id, ticket_id, requested_by, steps) in stored {
        let steps: Vec<StepMemo> =
            serde_json::from_value(steps).map_err(|e| ApplyError::Poison {
                position: -1,
                reason: format!("stored approval steps: {e}"),
            })?;
        ticket_ids.push(ticket_id);
        approvals.insert(
            approval_id,
            Some(ApprovalMemo {
                approval_id,
                ticket_id,
                requested_by,
                steps,
            }),
        );
    }
    ticket_ids.sort_unstable();
    ticket_ids.dedup();
    let mut tickets: BTreeMap<i64, Option<TicketMemo>> =
        ticket_ids.iter().map(|id| (*id, None)).collect();
    let stored: Vec<TicketMemo> = sqlx::query_as(&format!(
        "select ticket_id, requester_id, assignee_id, followers, title from {rm_tickets} where ticket_id = any($1)"
    ))
    .bind(&ticket_ids)
    .fetch_all(&mut *conn)
    .await?;
    for memo in stored {
        tickets.insert(memo.ticket_id, Some(memo));
    }

    // Fold the batch in log order.
    let mut drafts = Drafts {
        out: Vec::new(),
        seen: HashSet::new(),
    };
    let mut touched_tickets: HashSet<i64> = HashSet::new();
    let mut touched_approvals: HashSet<Uuid> = HashSet::new();
    for (event, d) in &decoded {
        match d {
            Decoded::Ticket(id, ev) => {
                let slot = tickets.entry(*id).or_default();
                on_ticket_event(&mut drafts, slot, *id, event, ev);
                touched_tickets.insert(*id);
            }
            Decoded::Approval(id, ev) => {
                let slot = approvals.entry(*id).or_default();
                on_approval_event(&mut drafts, slot, *id, &tickets, event, ev);
                touched_approvals.insert(*id);
            }
        }
    }

    // Keep only recipients who may see what they are told about, by their current role.
    let mut recipients: Vec<i64> = drafts.out.iter().map(|d| d.user_id).collect();
    recipients.sort_unstable();
    recipients.dedup();
    let roles: HashMap<i64, Role> = if recipients.is_empty() {
        HashMap::new()
    } else {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("select id, role from users where id = any($1)")
                .bind(&recipients)
                .fetch_all(&mut *conn)
                .await?;
        rows.into_iter()
            .filter_map(|(id, role)| Role::parse(&role).map(|r| (id, r)))
            .collect()
    };
    let is_staff = |user: i64| roles.get(&user).is_some_and(|r| r.is_staff());
    let notifications: Vec<&Draft> = drafts
        .out
        .iter()
        .filter(|d| match d.audience {
            Some(Audience::Named) => true,
            Some(Audience::TicketReaders { requester_id }) => {
                d.user_id == requester_id || is_staff(d.user_id)
            }
            Some(Audience::Staff) | None => is_staff(d.user_id),
        })
        .collect();

    // Write the memory and the notifications.
    let ticket_rows: Vec<&TicketMemo> = tickets
        .iter()
        .filter(|(id, _)| touched_tickets.contains(id))
        .filter_map(|(_, m)| m.as_ref())
        .collect();
    if !ticket_rows.is_empty() {
        let payload = serde_json::to_value(&ticket_rows).map_err(|e| ApplyError::Poison {
            position: -1,
            reason: e.to_string(),
        })?;
        sqlx::query(&format!(
            "insert into {rm_tickets} (ticket_id, requester_id, assignee_id, followers, title)
             select ticket_id, requester_id, assignee_id, followers, title
               from jsonb_to_recordset($1) as r(ticket_id bigint, requester_id bigint,
                    assignee_id bigint, followers bigint[], title text)
             on conflict (ticket_id) do update set requester_id = excluded.requester_id,
                assignee_id = excluded.assignee_id, followers = excluded.followers,
                title = excluded.title"
        ))
        .bind(payload)
        .execute(&mut *conn)
        .await?;
    }
    let approval_rows: Vec<&ApprovalMemo> = approvals
        .iter()
        .filter(|(id, _)| touched_approvals.contains(id))
        .filter_map(|(_, m)| m.as_ref())
        .collect();
    if !approval_rows.is_empty() {
        let payload = serde_json::to_value(&approval_rows).map_err(|e| ApplyError::Poison {
            position: -1,
            reason: e.to_string(),
        })?;
        sqlx::query(&format!(
            "insert into {rm_approvals} (approval_id, ticket_id, requested_by, steps)
             select approval_id, ticket_id, requested_by, steps
               from jsonb_to_recordset($1) as r(approval_id uuid, ticket_id bigint,
                    requested_by bigint, steps jsonb)
             on conflict (approval_id) do update set steps = excluded.steps"
        ))
        .bind(payload)
        .execute(&mut *conn)
        .await?;
    }
    if !notifications.is_empty() {
        let payload = serde_json::to_value(&notifications).map_err(|e| ApplyError::Poison {
            position: -1,
            reason: e.to_string(),
        })?;
        // Ids are drawn in batch order (`order by seq`), and batches commit one at a time.
        sqlx::query(&format!(
            "insert into {rm} (user_id, kind, ticket_id, approval_id, comment_id, actor_id,
                               message, excerpt, internal, source_position, created_at)
             select user_id, kind, ticket_id, approval_id, comment_id, actor_id,
                    message, excerpt, internal, source_position, created_at
               from jsonb_to_recordset($1) as r(seq bigint, user_id bigint, kind text,
                    ticket_id bigint, approval_id uuid, comment_id uuid, actor_id bigint,
                    message text, excerpt text, internal boolean, source_position bigint,
                    created_at timestamptz)
              order by seq
             on conflict (user_id, source_position) do nothing"
        ))
        .bind(payload)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

crate::read_model!(
    NotificationsProjection,
    [
        "rm_notifications",
        "rm_notification_tickets",
        "rm_notification_approvals"
    ],
    apply_notifications
);
