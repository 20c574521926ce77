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

use aggregates::approval::{ApprovalEvent, ApprovalRequest};
use aggregates::ticket::{PostedComment, TicketEvent};
use aggregates::{Role, TicketStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::batch::{approval_event, ticket_event, write_json_rows};
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
    let notice = TicketNotice {
        event,
        ticket_id,
        readers: Audience::TicketReaders {
            requester_id: t.requester_id,
        },
    };
    match decoded {
        TicketEvent::TicketUpdated { changes, .. } => {
            if let Some(title) = &changes.title {
                t.title = title.clone();
            }
        }
        TicketEvent::TicketAssigned { assignee_id, .. } => {
            notice.assigned(drafts, t, *assignee_id);
        }
        TicketEvent::TicketStatusChanged { from, to, .. } => {
            notice.status_changed(drafts, t, *from, *to);
        }
        TicketEvent::TicketDeleted { from, .. } => {
            notice.status_changed(drafts, t, *from, TicketStatus::Cancelled);
        }
        TicketEvent::CommentAdded(PostedComment {
            comment_id,
            author_id,
            content,
            is_internal,
            mentions,
            ..
        }) => {
            let comment = NewComment {
                id: *comment_id,
                content,
                internal: *is_internal,
                mentions,
            };
            notice.comment_added(drafts, t, &comment);
            t.follow(*author_id);
        }
        TicketEvent::TicketOpened { .. }
        | TicketEvent::CommentEdited { .. }
        | TicketEvent::CommentDeleted { .. }
        | TicketEvent::FirstResponseRecorded { .. }
        | TicketEvent::AttachmentAdded(_)
        | TicketEvent::AttachmentRemoved { .. }
        | TicketEvent::ApprovalRecorded { .. } => {}
    }
}

/// A comment just added, as its notifications need it.
struct NewComment<'c> {
    id: Uuid,
    content: &'c str,
    internal: bool,
    mentions: &'c [i64],
}

/// What the notifications of one ticket event share: the event, the ticket, who may read it.
struct TicketNotice<'e> {
    event: &'e StoredEvent,
    ticket_id: i64,
    readers: Audience,
}

impl TicketNotice<'_> {
    /// One notification of `kind` to `user`.
    fn send(
        &self,
        drafts: &mut Drafts,
        user: i64,
        kind: &'static str,
        comment: Option<&NewComment<'_>>,
        message: &str,
        audience: Audience,
    ) {
        drafts.push(self.event, user, || {
            draft(
                self.event,
                kind,
                Some(self.ticket_id),
                None,
                comment.map(|c| c.id),
                message.to_string(),
                comment.map(|c| excerpt(c.content)),
                comment.is_some_and(|c| c.internal),
                audience,
            )
        });
    }

    /// The requester and every follower.
    fn everyone(t: &TicketMemo) -> impl Iterator<Item = i64> + '_ {
        std::iter::once(t.requester_id).chain(t.followers.iter().copied())
    }

    fn assigned(&self, drafts: &mut Drafts, t: &mut TicketMemo, assignee_id: Option<i64>) {
        t.assignee_id = assignee_id;
        if let Some(assignee) = assignee_id {
            t.follow(assignee);
            let message = format!(
                "{} was assigned to you: {}",
                ticket_ref(self.ticket_id),
                t.title
            );
            self.send(drafts, assignee, "assigned", None, &message, self.readers);
        }
    }

    fn status_changed(
        &self,
        drafts: &mut Drafts,
        t: &TicketMemo,
        from: TicketStatus,
        to: TicketStatus,
    ) {
        let reference = ticket_ref(self.ticket_id);
        let message = format!("{reference} moved from {from} to {to}: {}", t.title);
        for user in Self::everyone(t) {
            self.send(drafts, user, "status_changed", None, &message, self.readers);
        }
    }

    fn comment_added(&self, drafts: &mut Drafts, t: &TicketMemo, comment: &NewComment<'_>) {
        let reference = ticket_ref(self.ticket_id);
        let (audience, mention_msg, reply_msg) = if comment.internal {
            (
                Audience::Staff,
                format!(
                    "You were mentioned in an internal note on {reference}: {}",
                    t.title
                ),
                format!("New internal note on {reference}: {}", t.title),
            )
        } else {
            (
                self.readers,
                format!("You were mentioned on {reference}: {}", t.title),
                format!("New reply on {reference}: {}", t.title),
            )
        };
        for user in comment.mentions {
            self.send(
                drafts,
                *user,
                "mention",
                Some(comment),
                &mention_msg,
                audience,
            );
        }
        for user in Self::everyone(t) {
            self.send(drafts, user, "comment", Some(comment), &reply_msg, audience);
        }
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
    if let ApprovalEvent::ApprovalRequested(ApprovalRequest {
        ticket_id,
        requested_by,
        steps,
        ..
    }) = decoded
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
        ApprovalEvent::ApprovalRequested(_) => match a.steps.first() {
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

/// The ticket and approval events of a batch, decoded (other aggregates are not ours).
fn decode_batch(events: &[StoredEvent]) -> Result<Vec<(&StoredEvent, Decoded)>, ApplyError> {
    let mut decoded = Vec::with_capacity(events.len());
    for e in events {
        match e.aggregate_type.as_str() {
            "ticket" => {
                let (id, ev) = ticket_event(e)?;
                decoded.push((e, Decoded::Ticket(id, ev)));
            }
            "approval" => {
                let (id, ev) = approval_event(e)?;
                decoded.push((e, Decoded::Approval(id, ev)));
            }
            _ => {}
        }
    }
    Ok(decoded)
}

/// What the projection remembers of the tickets and approvals a batch touches.
struct Memory {
    tickets: BTreeMap<i64, Option<TicketMemo>>,
    approvals: BTreeMap<Uuid, Option<ApprovalMemo>>,
}

/// Loads the memory of every ticket and approval in the batch (and of each approval's ticket),
/// `None` where there is none yet; the tickets that start in the batch (`events`, as read)
/// are not looked up.
async fn load_memory(
    conn: &mut PgConnection,
    events: &[StoredEvent],
    decoded: &[(&StoredEvent, Decoded)],
    tables: &Tables,
) -> Result<Memory, ApplyError> {
    let mut ticket_ids: Vec<i64> = Vec::new();
    let mut approval_ids: Vec<Uuid> = Vec::new();
    for (_, d) in decoded {
        match d {
            Decoded::Ticket(id, _) => ticket_ids.push(*id),
            Decoded::Approval(id, ev) => {
                approval_ids.push(*id);
                if let ApprovalEvent::ApprovalRequested(ApprovalRequest { ticket_id, .. }) = ev {
                    ticket_ids.push(*ticket_id);
                }
            }
        }
    }
    approval_ids.sort_unstable();
    approval_ids.dedup();
    let approvals = load_approval_memos(conn, &approval_ids, tables, &mut ticket_ids).await?;
    ticket_ids.sort_unstable();
    ticket_ids.dedup();
    let mut tickets: BTreeMap<i64, Option<TicketMemo>> =
        ticket_ids.iter().map(|id| (*id, None)).collect();
    let sql = format!(
        "select ticket_id, requester_id, assignee_id, followers, title from {} where ticket_id = any($1)",
        tables.name("rm_notification_tickets")
    );
    let stored: Vec<TicketMemo> =
        crate::batch::rows_before(conn, &sql, &ticket_ids, events).await?;
    for memo in stored {
        tickets.insert(memo.ticket_id, Some(memo));
    }
    Ok(Memory { tickets, approvals })
}

/// The stored memory of `approval_ids` (None for approvals not seen before); each one's
/// ticket joins `ticket_ids`.
async fn load_approval_memos(
    conn: &mut PgConnection,
    approval_ids: &[Uuid],
    tables: &Tables,
    ticket_ids: &mut Vec<i64>,
) -> Result<BTreeMap<Uuid, Option<ApprovalMemo>>, ApplyError> {
    let mut approvals: BTreeMap<Uuid, Option<ApprovalMemo>> =
        approval_ids.iter().map(|id| (*id, None)).collect();
    if approval_ids.is_empty() {
        return Ok(approvals);
    }
    let stored: Vec<(Uuid, i64, i64, serde_json::Value)> = sqlx::query_as(&format!(
        "select approval_id, ticket_id, requested_by, steps from {} where approval_id = any($1)",
        tables.name("rm_notification_approvals")
    ))
    .bind(approval_ids)
    .fetch_all(&mut *conn)
    .await?;
    for (approval_id, ticket_id, requested_by, steps) in stored {
        let steps: Vec<StepMemo> =
            serde_json::from_value(steps).map_err(|e| ApplyError::Poison {
                position: -1,
                reason: format!("stored approval steps: {e}"),
            })?;
        ticket_ids.push(ticket_id);
        let memo = ApprovalMemo {
            approval_id,
            ticket_id,
            requested_by,
            steps,
        };
        approvals.insert(approval_id, Some(memo));
    }
    Ok(approvals)
}

/// Keeps only recipients who may see what they are told about, by their current role.
async fn visible<'d>(
    conn: &mut PgConnection,
    drafts: &'d [Draft],
) -> Result<Vec<&'d Draft>, ApplyError> {
    let mut recipients: Vec<i64> = drafts.iter().map(|d| d.user_id).collect();
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
    Ok(drafts
        .iter()
        .filter(|d| match d.audience {
            Some(Audience::Named) => true,
            Some(Audience::TicketReaders { requester_id }) => {
                d.user_id == requester_id || is_staff(d.user_id)
            }
            Some(Audience::Staff) | None => is_staff(d.user_id),
        })
        .collect())
}

/// Writes the memory of the touched tickets and approvals.
async fn write_memory(
    conn: &mut PgConnection,
    memory: &Memory,
    touched_tickets: &HashSet<i64>,
    touched_approvals: &HashSet<Uuid>,
    tables: &Tables,
) -> Result<(), ApplyError> {
    let ticket_rows: Vec<&TicketMemo> = memory
        .tickets
        .iter()
        .filter(|(id, _)| touched_tickets.contains(id))
        .filter_map(|(_, m)| m.as_ref())
        .collect();
    let sql = format!(
        "insert into {} (ticket_id, requester_id, assignee_id, followers, title)
         select ticket_id, requester_id, assignee_id, followers, title
           from jsonb_to_recordset($1) as r(ticket_id bigint, requester_id bigint,
                assignee_id bigint, followers bigint[], title text)
         on conflict (ticket_id) do update set requester_id = excluded.requester_id,
            assignee_id = excluded.assignee_id, followers = excluded.followers,
            title = excluded.title",
        tables.name("rm_notification_tickets")
    );
    write_json_rows(conn, &ticket_rows, &sql).await?;
    let approval_rows: Vec<&ApprovalMemo> = memory
        .approvals
        .iter()
        .filter(|(id, _)| touched_approvals.contains(id))
        .filter_map(|(_, m)| m.as_ref())
        .collect();
    let sql = format!(
        "insert into {} (approval_id, ticket_id, requested_by, steps)
         select approval_id, ticket_id, requested_by, steps
           from jsonb_to_recordset($1) as r(approval_id uuid, ticket_id bigint,
                requested_by bigint, steps jsonb)
         on conflict (approval_id) do update set steps = excluded.steps",
        tables.name("rm_notification_approvals")
    );
    write_json_rows(conn, &approval_rows, &sql).await
}

async fn apply_notifications(
    conn: &mut PgConnection,
    events: &[StoredEvent],
    tables: &Tables,
) -> Result<(), ApplyError> {
    let decoded = decode_batch(events)?;
    announce_progress(conn, events, tables).await?;
    if decoded.is_empty() {
        return Ok(());
    }
    let mut memory = load_memory(conn, events, &decoded, tables).await?;

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
                let slot = memory.tickets.entry(*id).or_default();
                on_ticket_event(&mut drafts, slot, *id, event, ev);
                touched_tickets.insert(*id);
            }
            Decoded::Approval(id, ev) => {
                let slot = memory.approvals.entry(*id).or_default();
                on_approval_event(&mut drafts, slot, *id, &memory.tickets, event, ev);
                touched_approvals.insert(*id);
            }
        }
    }
    let notifications = visible(conn, &drafts.out).await?;
    write_memory(conn, &memory, &touched_tickets, &touched_approvals, tables).await?;
    // Ids are drawn in batch order (`order by seq`), and batches commit one at a time.
    let sql = format!(
        "insert into {} (user_id, kind, ticket_id, approval_id, comment_id, actor_id,
                           message, excerpt, internal, source_position, created_at)
         select user_id, kind, ticket_id, approval_id, comment_id, actor_id,
                message, excerpt, internal, source_position, created_at
           from jsonb_to_recordset($1) as r(seq bigint, user_id bigint, kind text,
                ticket_id bigint, approval_id uuid, comment_id uuid, actor_id bigint,
                message text, excerpt text, internal boolean, source_position bigint,
                created_at timestamptz)
          order by seq
         on conflict (user_id, source_position) do nothing",
        tables.name("rm_notifications")
    );
    write_json_rows(conn, &notifications, &sql).await?;
    // The e-mail channel's outbox, in the same transaction as the checkpoint (never from a
    // rebuild's shadow run: those e-mails went out when the events were new).
    if tables.suffix().is_empty() && !notifications.is_empty() {
        let rows = serde_json::to_value(&notifications).map_err(|e| ApplyError::Poison {
            position: -1,
            reason: e.to_string(),
        })?;
        crate::delivery::record_emails(conn, &rows).await?;
    }
    Ok(())
}

/// Tells every process's live hub, on commit of this batch, how far the log and the
/// notifications now go: `{"type":"log_advanced","checkpoint":"<txid>.<position>"}` on
/// [`crate::BUS_CHANNEL`]. A rebuild's shadow run says nothing (its rows are not live yet).
async fn announce_progress(
    conn: &mut PgConnection,
    events: &[StoredEvent],
    tables: &Tables,
) -> Result<(), ApplyError> {
    let Some(last) = events.last() else {
        return Ok(());
    };
    if !tables.suffix().is_empty() {
        return Ok(());
    }
    let payload =
        serde_json::json!({"type": "log_advanced", "checkpoint": last.checkpoint().to_string()});
    sqlx::query("select pg_notify($1, $2)")
        .bind(crate::BUS_CHANNEL)
        .bind(payload.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// An erased person's own notifications go; elsewhere the titles of the tickets they requested
/// (which every message ends with, after its first ": ", or the approval's "): ") and the
/// excerpts of what they wrote read `"[erased]"`.
async fn erase_person(
    conn: &mut PgConnection,
    person: i64,
    tables: &Tables,
) -> Result<(), ApplyError> {
    let notifications = tables.name("rm_notifications");
    let tickets = tables.name("rm_notification_tickets");
    sqlx::query(&format!("delete from {notifications} where user_id = $1"))
        .bind(person)
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "update {notifications} n
            set message = case when n.kind = 'approval_requested'
                               then regexp_replace(n.message, '^(.*?\\): ).*$', '\\1' || $2)
                               else regexp_replace(n.message, '^(.*?: ).*$', '\\1' || $2) end
           from {tickets} t
          where t.ticket_id = n.ticket_id and t.requester_id = $1"
    ))
    .bind(person)
    .bind(privacy::ERASED)
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "update {notifications} set excerpt = $2
          where actor_id = $1 and excerpt is not null and excerpt <> ''"
    ))
    .bind(person)
    .bind(privacy::ERASED)
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "update {tickets} set title = $2 where requester_id = $1"
    ))
    .bind(person)
    .bind(privacy::ERASED)
    .execute(&mut *conn)
    .await?;
    if tables.suffix().is_empty() {
        crate::delivery::erase_recipient(conn, person).await?;
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
    apply_notifications,
    erase = erase_person
);
