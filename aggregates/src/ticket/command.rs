//! What can be asked of a ticket, and the fields a ticket opens with.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::event::{AttachedFile, TicketChanges};
use crate::types::{ApprovalStatus, Priority, TicketStatus, TicketType};

/// The editable fields of a ticket, all present (used to open one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketFields {
    pub title: String,
    pub description: String,
    pub priority: Priority,
    #[serde(rename = "type")]
    pub ticket_type: TicketType,
    pub tags: Vec<String>,
    pub item_ids: Vec<i64>,
}

/// What can be asked of a ticket. Times come from the caller so the aggregate stays pure.
#[derive(Debug, Clone, PartialEq)]
pub enum TicketCommand {
    /// Open a new ticket with a number the caller took from the ticket sequence.
    OpenTicket {
        id: i64,
        requester_id: i64,
        fields: TicketFields,
        at: DateTime<Utc>,
    },
    /// Change some fields; fields equal to the current value are ignored.
    UpdateTicket {
        /// The fields asked for (absent = leave as is).
        asked: TicketChanges,
        at: DateTime<Utc>,
    },
    /// Move the ticket through its state machine.
    ChangeStatus {
        status: TicketStatus,
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    /// Assign to a user, or unassign with `None`.
    AssignTicket {
        assignee_id: Option<i64>,
        at: DateTime<Utc>,
    },
    /// Cancel the ticket and hide it from lists (`DELETE`); its history stays.
    DeleteTicket {
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    /// Add a comment; `by_staff` says whether the author is an agent or above. With
    /// `then_status`, the ticket also moves to that status (with `reason`) in the same command:
    /// "reply and resolve" records both or neither.
    AddComment {
        comment_id: Uuid,
        author_id: i64,
        by_staff: bool,
        content: String,
        is_internal: bool,
        parent_id: Option<Uuid>,
        mentions: Vec<i64>,
        then_status: Option<(TicketStatus, Option<String>)>,
        at: DateTime<Utc>,
    },
    /// Replace a comment's text; the previous text stays in the event log.
    EditComment {
        comment_id: Uuid,
        editor_id: i64,
        content: String,
        mentions: Vec<i64>,
        at: DateTime<Utc>,
    },
    /// Delete a comment, leaving a tombstone in the history.
    DeleteComment {
        comment_id: Uuid,
        deleted_by: i64,
        at: DateTime<Utc>,
    },
    /// Record an uploaded file's metadata.
    AddAttachment(AttachedFile),
    /// Remove an attachment.
    RemoveAttachment {
        attachment_id: Uuid,
        removed_by: i64,
        at: DateTime<Utc>,
    },
    /// Record the state of an approval on this ticket (sent by the approval process manager).
    /// Idempotent: repeating the last recorded state for the same approval emits nothing.
    RecordApproval {
        approval_id: Uuid,
        status: ApprovalStatus,
        at: DateTime<Utc>,
    },
    /// Several commands as one (a macro: a reply and changes; one ticket of a bulk action):
    /// each is decided on the state the ones before it leave, and their events are recorded
    /// together or not at all. The first refusal refuses the whole batch.
    Batch(Vec<TicketCommand>),
}
