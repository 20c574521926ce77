//! The approval process manager: keeps each ticket's `approval_status` in line with its
//! approvals, running on the projection runtime (checkpoint `approval_saga`).
//!
//! It is level-triggered rather than edge-triggered: an approval event does not translate
//! into "send command X" but into "make the ticket agree with the current state of its
//! latest approval" ([`reconcile_ticket`]). The ticket aggregate's `RecordApproval` is a
//! no-op when the ticket already records that state, so:
//!
//! - a crash after the ticket command committed but before the saga's checkpoint did
//!   re-runs the batch, which finds the ticket up to date and appends nothing;
//! - a replay from the start of the log (checkpoint reset, or a rebuild) reconciles every
//!   ticket against today's approvals, which it already matches: no command is issued twice,
//!   and an old `ApprovalRequested` never drags a decided ticket back to `pending`;
//! - a ticket with several approvals follows the one requested last in the log.
//!
//! It also ends what a finished ticket leaves waiting: when a ticket is closed, cancelled or
//! deleted, or an approval event reaches a ticket that already is, the ticket's latest
//! approval is cancelled if still pending (`cancel_pending_approval`). Both triggers run
//! the same check on the current state, so the outcome does not depend on how events fall
//! into batches.
//!
//! The ticket command commits in its own transaction (cqrs-es owns it), before the saga's
//! batch and checkpoint commit. Handlers call [`reconcile_ticket`] too, right after an
//! approval command, so the ticket is usually updated before the response; the saga is what
//! guarantees it.

use std::collections::{BTreeMap, HashMap};

use aggregates::approval::Approval;
use aggregates::ticket::{Ticket, TicketCommand};
use aggregates::ApprovalStatus;
use futures::future::BoxFuture;
use projections::{ApplyError, Projection, StoredEvent, Tables};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::service::executor::{CommandError, Committed, Executor};

/// The approval process manager as a projection (it writes no table of its own).
pub struct ApprovalSaga {
    pool: PgPool,
    tickets: Executor<Ticket>,
    approvals: Executor<Approval>,
}

impl ApprovalSaga {
    /// The checkpoint name. Never renamed.
    pub const NAME: &'static str = "approval_saga";

    /// A saga issuing its ticket commands on `pool`.
    pub fn new(pool: PgPool) -> Self {
        ApprovalSaga {
            tickets: Executor::new(pool.clone()),
            approvals: Executor::new(pool.clone()),
            pool,
        }
    }
}

/// Why a ticket could not be reconciled.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The ticket or approval is missing or refuses the state: retrying will not help.
    #[error("{0}")]
    Skipped(String),
    /// The database or a lost race: try again later.
    #[error("{0}")]
    Transient(String),
}

impl<E: std::error::Error> From<CommandError<E>> for ReconcileError {
    fn from(e: CommandError<E>) -> Self {
        match e {
            CommandError::Domain(e) => ReconcileError::Skipped(e.to_string()),
            other => ReconcileError::Transient(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for ReconcileError {
    fn from(e: sqlx::Error) -> Self {
        ReconcileError::Transient(e.to_string())
    }
}

/// The approval of `ticket_id` requested last, in log order.
pub async fn latest_approval(pool: &PgPool, ticket_id: i64) -> Result<Option<Uuid>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "select aggregate_id from events
          where aggregate_type = 'approval' and event_type = 'ApprovalRequested'
            and (payload -> 'ApprovalRequested' ->> 'ticket_id')::bigint = $1
          order by transaction_id desc, global_position desc
          limit 1",
    )
    .bind(ticket_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(id,)| id.parse().ok()))
}

/// The metadata of a command the process issues, on top of `cause` (the request or event
/// that led to it).
fn process_metadata(cause: &HashMap<String, String>, approval_id: Uuid) -> HashMap<String, String> {
    let mut m = cause.clone();
    m.insert("process".into(), ApprovalSaga::NAME.into());
    m.insert("approval_id".into(), approval_id.to_string());
    m
}

/// Makes ticket `ticket_id` record the current state of its latest approval, appending
/// nothing when it already does. Returns the last commit that appended events, if any.
pub async fn reconcile_ticket(
    tickets: &Executor<Ticket>,
    approvals: &Executor<Approval>,
    pool: &PgPool,
    ticket_id: i64,
    cause: &HashMap<String, String>,
) -> Result<Option<Committed<Ticket>>, ReconcileError> {
    let Some(approval_id) = latest_approval(pool, ticket_id).await? else {
        return Ok(None);
    };
    let (approval, _) = approvals.load(&approval_id.to_string()).await?;
    let (Some(requested_at), true) = (approval.created_at, approval.exists()) else {
        return Err(ReconcileError::Skipped(format!(
            "approval {approval_id} has no request"
        )));
    };
    let desired = approval.status();
    let id = ticket_id.to_string();
    let (ticket, _) = tickets.load(&id).await?;
    if !ticket.exists() {
        return Err(ReconcileError::Skipped(format!(
            "ticket {ticket_id} of approval {approval_id} does not exist"
        )));
    }
    let meta = process_metadata(cause, approval_id);
    let mut last = None;
    // A ticket records a new approval as pending first; only then does its outcome count.
    if ticket.approval_id != Some(approval_id) && desired != ApprovalStatus::Pending {
        let c = tickets
            .execute(&id, None, meta.clone(), |_| TicketCommand::RecordApproval {
                approval_id,
                status: ApprovalStatus::Pending,
                at: requested_at,
            })
            .await?;
        if c.appended > 0 {
            crate::service::metrics::command_committed();
            last = Some(c);
        }
    }
    let at = approval.finished_at.unwrap_or(requested_at);
    let c = tickets
        .execute(&id, None, meta, |_| TicketCommand::RecordApproval {
            approval_id,
            status: desired,
            at,
        })
        .await?;
    if c.appended > 0 {
        crate::service::metrics::command_committed();
        last = Some(c);
    }
    Ok(last)
}

/// Cancels the pending latest approval of ticket `ticket_id` if the ticket, as it stands
/// now, is closed or cancelled (deleted tickets are cancelled). Level-triggered like
/// [`reconcile_ticket`]: replaying an old closing event finds nothing pending, or a ticket
/// that is no longer finished, and does nothing. `event` is what brought the process here:
/// the closing event (its author is recorded as the canceller) or, for an approval that
/// arrived after the close, that approval's event (its author is recorded).
async fn cancel_pending_approval(
    tickets: &Executor<Ticket>,
    approvals: &Executor<Approval>,
    pool: &PgPool,
    ticket_id: i64,
    event: &StoredEvent,
) -> Result<(), ReconcileError> {
    let Some(approval_id) = latest_approval(pool, ticket_id).await? else {
        return Ok(());
    };
    let (ticket, _) = tickets.load(&ticket_id.to_string()).await?;
    let finished = matches!(
        ticket.current_status(),
        aggregates::TicketStatus::Closed | aggregates::TicketStatus::Cancelled
    );
    if !ticket.exists() || !finished {
        return Ok(());
    }
    let (approval, _) = approvals.load(&approval_id.to_string()).await?;
    if !approval.is_pending() {
        return Ok(());
    }
    // The person who finished the ticket cancels it; the process acts for them.
    let by = event
        .metadata
        .get("user_id")
        .and_then(serde_json::Value::as_str)
        .and_then(|u| u.parse().ok())
        .unwrap_or(ticket.requester_id);
    let mut cause = HashMap::new();
    cause.insert(
        "request_id".to_string(),
        format!("{}@{}", ApprovalSaga::NAME, event.global_position),
    );
    cause.insert("caused_by".to_string(), event.global_position.to_string());
    let result = approvals
        .execute(
            &approval_id.to_string(),
            None,
            process_metadata(&cause, approval_id),
            |_| aggregates::approval::ApprovalCommand::Cancel {
                by,
                by_staff: true,
                at: event.recorded_at,
            },
        )
        .await;
    match result {
        Ok(c) => {
            if c.appended > 0 {
                crate::service::metrics::command_committed();
            }
            Ok(())
        }
        // Decided or cancelled by someone else meanwhile: nothing left to do.
        Err(CommandError::Domain(aggregates::approval::ApprovalError::NotPending)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The approval events that change an approval's status (the others cannot move a ticket).
const STATUS_EVENTS: &[&str] = &[
    "ApprovalRequested",
    "ApprovalGranted",
    "ApprovalRejected",
    "ApprovalCancelled",
];

impl ApprovalSaga {
    async fn apply_batch(&self, events: &[StoredEvent]) -> Result<(), ApplyError> {
        // Reconciling reads the current state, so each ticket needs one pass per batch.
        let last_event = self.last_status_events(events).await?;
        let mut finishing_event = finishing_events(events);
        // An approval that reaches a ticket already finished (a request racing the close)
        // is cancelled the same way, whichever batch saw the close: the check reads the
        // ticket and the approval as they stand now. Only a request can bring a pending
        // approval to a finished ticket; decisions need no second look.
        for (&ticket_id, &event) in &last_event {
            if event.event_type == "ApprovalRequested" {
                finishing_event.entry(ticket_id).or_insert(event);
            }
        }
        for (&ticket_id, &event) in &finishing_event {
            let outcome = cancel_pending_approval(
                &self.tickets,
                &self.approvals,
                &self.pool,
                ticket_id,
                event,
            )
            .await;
            settle(outcome, ticket_id, "cancelling the approval of")?;
        }
        for (&ticket_id, &event) in &last_event {
            let mut cause = HashMap::new();
            cause.insert(
                "request_id".to_string(),
                format!("{}@{}", Self::NAME, event.global_position),
            );
            cause.insert("caused_by".to_string(), event.global_position.to_string());
            let outcome = reconcile_ticket(
                &self.tickets,
                &self.approvals,
                &self.pool,
                ticket_id,
                &cause,
            )
            .await;
            settle(outcome.map(|_| ()), ticket_id, "reconciling")?;
        }
        Ok(())
    }

    /// Each ticket with approval status events in the batch, and the last of them.
    async fn last_status_events<'e>(
        &self,
        events: &'e [StoredEvent],
    ) -> Result<BTreeMap<i64, &'e StoredEvent>, ApplyError> {
        let mut last_event = BTreeMap::new();
        for e in events.iter().filter(|e| {
            e.aggregate_type == "approval" && STATUS_EVENTS.contains(&e.event_type.as_str())
        }) {
            let from_payload = e
                .payload
                .get("ApprovalRequested")
                .and_then(|r| r.get("ticket_id"))
                .and_then(serde_json::Value::as_i64);
            let ticket_id = match from_payload {
                Some(id) => id,
                None => {
                    let (approval, _) = self
                        .approvals
                        .load(&e.aggregate_id)
                        .await
                        .map_err(|err| transient(e, err))?;
                    if !approval.exists() {
                        tracing::warn!(approval_id = %e.aggregate_id, "approval event without a request; skipped");
                        continue;
                    }
                    approval.ticket_id
                }
            };
            last_event.insert(ticket_id, e);
        }
        Ok(last_event)
    }
}

/// Each ticket the batch closes, cancels or deletes, and the event that did it. A finished
/// ticket no longer waits for anyone: its pending approval is cancelled (and that
/// cancellation comes back here as an approval event, which the ticket then records).
fn finishing_events(events: &[StoredEvent]) -> BTreeMap<i64, &StoredEvent> {
    let mut finishing_event = BTreeMap::new();
    for e in events.iter().filter(|e| e.aggregate_type == "ticket") {
        let ends = match e.event_type.as_str() {
            "TicketDeleted" => true,
            "TicketStatusChanged" => e
                .payload
                .get("TicketStatusChanged")
                .and_then(|c| c.get("to"))
                .and_then(serde_json::Value::as_str)
                .is_some_and(|to| to == "closed" || to == "cancelled"),
            _ => false,
        };
        if let (true, Ok(id)) = (ends, e.aggregate_id.parse::<i64>()) {
            finishing_event.insert(id, e);
        }
    }
    finishing_event
}

/// A skipped ticket is logged and passed; a transient failure retries the batch.
fn settle(
    outcome: Result<(), ReconcileError>,
    ticket_id: i64,
    doing: &str,
) -> Result<(), ApplyError> {
    match outcome {
        Ok(()) => Ok(()),
        Err(ReconcileError::Skipped(reason)) => {
            tracing::warn!(ticket_id, %reason, "approval process skipped {doing} a ticket");
            Ok(())
        }
        Err(ReconcileError::Transient(reason)) => Err(ApplyError::Transient(
            sqlx::Error::Protocol(format!("{doing} ticket {ticket_id}: {reason}")),
        )),
    }
}

fn transient(
    event: &StoredEvent,
    e: CommandError<aggregates::approval::ApprovalError>,
) -> ApplyError {
    ApplyError::Transient(sqlx::Error::Protocol(format!(
        "loading approval {}: {e}",
        event.aggregate_id
    )))
}

impl Projection for ApprovalSaga {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// The approvals' status events (`STATUS_EVENTS`) and what can finish a ticket
    /// (`finishing_events`); ticket creations, edits and comments never move an approval.
    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[
            "approval.ApprovalRequested",
            "approval.ApprovalGranted",
            "approval.ApprovalRejected",
            "approval.ApprovalCancelled",
            "ticket.TicketDeleted",
            "ticket.TicketStatusChanged",
        ])
    }

    fn apply<'a>(
        &'a self,
        _conn: &'a mut PgConnection,
        events: &'a [StoredEvent],
        _tables: &'a Tables,
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(self.apply_batch(events))
    }
}
