//! What happened to a ticket: the stored events and their payloads (names and fields are stored; never rename).

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::TicketFields;
use crate::types::{ApprovalStatus, Priority, TicketStatus, TicketType};

/// Changed fields of a `TicketUpdated` event (absent = unchanged).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TicketChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub ticket_type: Option<TicketType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_ids: Option<Vec<i64>>,
}

impl TicketChanges {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == TicketChanges::default()
    }
}

/// A new comment: the payload of `CommentAdded`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostedComment {
    pub comment_id: Uuid,
    pub author_id: i64,
    pub content: String,
    pub is_internal: bool,
    pub parent_id: Option<Uuid>,
    #[serde(default)]
    pub mentions: Vec<i64>,
    pub at: DateTime<Utc>,
}

/// An uploaded file's metadata: the payload of `AttachmentAdded` and of the command that asks
/// for it. (A newtype variant of this struct serialises exactly like the struct variant it was.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachedFile {
    pub attachment_id: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub uploaded_by: i64,
    pub at: DateTime<Utc>,
}

/// What happened to a ticket. The variant names are the stored `event_type`: never rename.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TicketEvent {
    TicketOpened {
        id: i64,
        requester_id: i64,
        #[serde(flatten)]
        fields: TicketFields,
        at: DateTime<Utc>,
    },
    TicketUpdated {
        changes: TicketChanges,
        at: DateTime<Utc>,
    },
    TicketStatusChanged {
        from: TicketStatus,
        to: TicketStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    TicketAssigned {
        assignee_id: Option<i64>,
        previous_assignee_id: Option<i64>,
        at: DateTime<Utc>,
    },
    TicketDeleted {
        from: TicketStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    CommentAdded(PostedComment),
    CommentEdited {
        comment_id: Uuid,
        editor_id: i64,
        content: String,
        previous_content: String,
        is_internal: bool,
        #[serde(default)]
        mentions: Vec<i64>,
        at: DateTime<Utc>,
    },
    CommentDeleted {
        comment_id: Uuid,
        deleted_by: i64,
        is_internal: bool,
        at: DateTime<Utc>,
    },
    FirstResponseRecorded {
        comment_id: Uuid,
        responder_id: i64,
        at: DateTime<Utc>,
    },
    AttachmentAdded(AttachedFile),
    AttachmentRemoved {
        attachment_id: Uuid,
        sha256: String,
        removed_by: i64,
        at: DateTime<Utc>,
    },
    ApprovalRecorded {
        approval_id: Uuid,
        status: ApprovalStatus,
        at: DateTime<Utc>,
    },
}

impl TicketEvent {
    /// When the event happened, as the command said.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            TicketEvent::TicketOpened { at, .. }
            | TicketEvent::TicketUpdated { at, .. }
            | TicketEvent::TicketStatusChanged { at, .. }
            | TicketEvent::TicketAssigned { at, .. }
            | TicketEvent::TicketDeleted { at, .. }
            | TicketEvent::CommentAdded(PostedComment { at, .. })
            | TicketEvent::CommentEdited { at, .. }
            | TicketEvent::CommentDeleted { at, .. }
            | TicketEvent::FirstResponseRecorded { at, .. }
            | TicketEvent::AttachmentAdded(AttachedFile { at, .. })
            | TicketEvent::AttachmentRemoved { at, .. }
            | TicketEvent::ApprovalRecorded { at, .. } => *at,
        }
    }

    /// True for events a requester must never see (internal notes and their edits).
    pub fn is_internal(&self) -> bool {
        match self {
            TicketEvent::CommentAdded(PostedComment { is_internal, .. })
            | TicketEvent::CommentEdited { is_internal, .. }
            | TicketEvent::CommentDeleted { is_internal, .. } => *is_internal,
            _ => false,
        }
    }

    /// True for the events an SLA clock follows (the ticket's fields, status, assignee,
    /// deletion and its first response); comments and files leave it as it is.
    pub fn moves_the_sla_clock(&self) -> bool {
        matches!(
            self,
            TicketEvent::TicketUpdated { .. }
                | TicketEvent::TicketStatusChanged { .. }
                | TicketEvent::TicketAssigned { .. }
                | TicketEvent::TicketDeleted { .. }
                | TicketEvent::FirstResponseRecorded { .. }
        )
    }
}

impl DomainEvent for TicketEvent {
    fn event_type(&self) -> String {
        match self {
            TicketEvent::TicketOpened { .. } => "TicketOpened",
            TicketEvent::TicketUpdated { .. } => "TicketUpdated",
            TicketEvent::TicketStatusChanged { .. } => "TicketStatusChanged",
            TicketEvent::TicketAssigned { .. } => "TicketAssigned",
            TicketEvent::TicketDeleted { .. } => "TicketDeleted",
            TicketEvent::CommentAdded(_) => "CommentAdded",
            TicketEvent::CommentEdited { .. } => "CommentEdited",
            TicketEvent::CommentDeleted { .. } => "CommentDeleted",
            TicketEvent::FirstResponseRecorded { .. } => "FirstResponseRecorded",
            TicketEvent::AttachmentAdded(_) => "AttachmentAdded",
            TicketEvent::AttachmentRemoved { .. } => "AttachmentRemoved",
            TicketEvent::ApprovalRecorded { .. } => "ApprovalRecorded",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
