//! The Ticket aggregate's state and how events fold into it; commands are decided in `decide`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::{TicketCommand, TicketFields};
use super::error::TicketError;
use super::event::{PostedComment, TicketChanges, TicketEvent};
use crate::types::{ApprovalStatus, Priority, TicketStatus, TicketType};

/// What the aggregate remembers of a comment to enforce its rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommentState {
    pub author_id: i64,
    pub content: String,
    pub is_internal: bool,
    pub deleted: bool,
}

/// A ticket's current state, folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub status: Option<TicketStatus>,
    pub priority: Option<Priority>,
    pub ticket_type: Option<TicketType>,
    pub requester_id: i64,
    pub assignee_id: Option<i64>,
    pub tags: Vec<String>,
    pub item_ids: Vec<i64>,
    pub approval_status: Option<ApprovalStatus>,
    pub approval_id: Option<Uuid>,
    pub deleted: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub comments: BTreeMap<Uuid, CommentState>,
    /// Live attachments: id → sha256.
    pub attachments: BTreeMap<Uuid, String>,
}

impl Ticket {
    /// True once `TicketOpened` has been applied.
    pub fn exists(&self) -> bool {
        self.status.is_some()
    }

    /// The current status (`open` for a ticket not yet opened, which no caller sees).
    pub fn current_status(&self) -> TicketStatus {
        self.status.unwrap_or(TicketStatus::Open)
    }

    /// The approval state (`none` until an approval is requested).
    pub fn current_approval_status(&self) -> ApprovalStatus {
        self.approval_status.unwrap_or(ApprovalStatus::None)
    }

    /// The statuses this ticket may move to now, approvals included.
    pub fn allowed_next_states(&self) -> Vec<TicketStatus> {
        let blocked = matches!(
            self.current_approval_status(),
            ApprovalStatus::Pending | ApprovalStatus::Rejected
        );
        self.current_status()
            .next_states()
            .iter()
            .copied()
            .filter(|s| {
                !(blocked && matches!(s, TicketStatus::InProgress | TicketStatus::Resolved))
            })
            .collect()
    }

    pub(super) fn require_live(&self) -> Result<(), TicketError> {
        if !self.exists() {
            return Err(TicketError::NotFound);
        }
        let status = self.current_status();
        if status.is_terminal() {
            return Err(TicketError::Finished(status));
        }
        Ok(())
    }

    pub(super) fn require_exists(&self) -> Result<(), TicketError> {
        if self.exists() {
            Ok(())
        } else {
            Err(TicketError::NotFound)
        }
    }

    /// The ticket exists and has not been deleted.
    pub(super) fn require_present(&self) -> Result<(), TicketError> {
        self.require_exists()?;
        if self.deleted {
            return Err(TicketError::NotFound);
        }
        Ok(())
    }

    pub(super) fn live_comment(&self, id: &Uuid) -> Result<&CommentState, TicketError> {
        self.comments
            .get(id)
            .filter(|c| !c.deleted)
            .ok_or(TicketError::CommentNotFound)
    }
}

impl Aggregate for Ticket {
    const TYPE: &'static str = "ticket";
    type Command = TicketCommand;
    type Event = TicketEvent;
    type Error = TicketError;
    type Services = ();

    async fn handle(
        &mut self,
        command: TicketCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), TicketError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: TicketEvent) {
        self.updated_at = Some(event.at());
        match event {
            TicketEvent::TicketOpened {
                id,
                requester_id,
                fields,
                at,
            } => self.opened(id, requester_id, fields, at),
            TicketEvent::TicketUpdated { changes, .. } => self.updated(changes),
            TicketEvent::TicketStatusChanged { to, at, .. } => self.status_changed(to, at),
            TicketEvent::TicketAssigned { assignee_id, .. } => self.assignee_id = assignee_id,
            TicketEvent::TicketDeleted { .. } => {
                self.status = Some(TicketStatus::Cancelled);
                self.deleted = true;
            }
            TicketEvent::CommentAdded(PostedComment {
                comment_id,
                author_id,
                content,
                is_internal,
                ..
            }) => self.comment_added(comment_id, author_id, content, is_internal),
            TicketEvent::CommentEdited {
                comment_id,
                content,
                ..
            } => self.comment_changed(comment_id, |c| c.content = content),
            TicketEvent::CommentDeleted { comment_id, .. } => {
                self.comment_changed(comment_id, |c| c.deleted = true)
            }
            TicketEvent::FirstResponseRecorded { at, .. } => self.first_response_at = Some(at),
            TicketEvent::AttachmentAdded(file) => {
                self.attachments.insert(file.attachment_id, file.sha256);
            }
            TicketEvent::AttachmentRemoved { attachment_id, .. } => {
                self.attachments.remove(&attachment_id);
            }
            TicketEvent::ApprovalRecorded {
                approval_id,
                status,
                ..
            } => {
                self.approval_id = Some(approval_id);
                self.approval_status = Some(status);
            }
        }
    }
}

impl Ticket {
    fn opened(&mut self, id: i64, requester_id: i64, fields: TicketFields, at: DateTime<Utc>) {
        self.id = id;
        self.requester_id = requester_id;
        self.title = fields.title;
        self.description = fields.description;
        self.priority = Some(fields.priority);
        self.ticket_type = Some(fields.ticket_type);
        self.tags = fields.tags;
        self.item_ids = fields.item_ids;
        self.status = Some(TicketStatus::Open);
        self.approval_status = Some(ApprovalStatus::None);
        self.created_at = Some(at);
    }

    fn updated(&mut self, changes: TicketChanges) {
        fn set<T>(field: &mut T, change: Option<T>) {
            if let Some(value) = change {
                *field = value;
            }
        }
        set(&mut self.title, changes.title);
        set(&mut self.description, changes.description);
        set(&mut self.priority, changes.priority.map(Some));
        set(&mut self.ticket_type, changes.ticket_type.map(Some));
        set(&mut self.tags, changes.tags);
        set(&mut self.item_ids, changes.item_ids);
    }

    fn status_changed(&mut self, to: TicketStatus, at: DateTime<Utc>) {
        self.status = Some(to);
        match to {
            TicketStatus::Resolved => self.resolved_at = Some(at),
            TicketStatus::Open | TicketStatus::InProgress | TicketStatus::Pending => {
                self.resolved_at = None
            }
            _ => {}
        }
    }

    fn comment_added(&mut self, id: Uuid, author_id: i64, content: String, is_internal: bool) {
        let comment = CommentState {
            author_id,
            content,
            is_internal,
            deleted: false,
        };
        self.comments.insert(id, comment);
    }

    fn comment_changed(&mut self, id: Uuid, change: impl FnOnce(&mut CommentState)) {
        if let Some(comment) = self.comments.get_mut(&id) {
            change(comment);
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
