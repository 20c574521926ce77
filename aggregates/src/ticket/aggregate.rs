use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::{TicketCommand, TicketFields};
use super::error::TicketError;
use super::event::{TicketChanges, TicketEvent};
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

    fn require_live(&self) -> Result<(), TicketError> {
        if !self.exists() {
            return Err(TicketError::NotFound);
        }
        let status = self.current_status();
        if status.is_terminal() {
            return Err(TicketError::Finished(status));
        }
        Ok(())
    }

    fn require_exists(&self) -> Result<(), TicketError> {
        if self.exists() {
            Ok(())
        } else {
            Err(TicketError::NotFound)
        }
    }

    fn live_comment(&self, id: &Uuid) -> Result<&CommentState, TicketError> {
        self.comments
            .get(id)
            .filter(|c| !c.deleted)
            .ok_or(TicketError::CommentNotFound)
    }
}

fn changed<T: PartialEq>(new: Option<T>, old: &T) -> Option<T> {
    new.filter(|v| v != old)
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
        match command {
            TicketCommand::OpenTicket {
                id,
                requester_id,
                fields,
                at,
            } => {
                if self.exists() {
                    return Err(TicketError::AlreadyExists);
                }
                sink.write(
                    TicketEvent::TicketOpened {
                        id,
                        requester_id,
                        fields,
                        at,
                    },
                    self,
                )
                .await;
            }
            TicketCommand::UpdateTicket {
                title,
                description,
                priority,
                ticket_type,
                tags,
                item_ids,
                at,
            } => {
                self.require_live()?;
                let changes = TicketChanges {
                    title: changed(title, &self.title),
                    description: changed(description, &self.description),
                    priority: priority.filter(|p| Some(*p) != self.priority),
                    ticket_type: ticket_type.filter(|t| Some(*t) != self.ticket_type),
                    tags: changed(tags, &self.tags),
                    item_ids: changed(item_ids, &self.item_ids),
                };
                if !changes.is_empty() {
                    sink.write(TicketEvent::TicketUpdated { changes, at }, self)
                        .await;
                }
            }
            TicketCommand::ChangeStatus { status, reason, at } => {
                self.require_exists()?;
                let from = self.current_status();
                if from == status {
                    return Ok(());
                }
                if !from.next_states().contains(&status) {
                    return Err(TicketError::IllegalTransition {
                        from,
                        to: status,
                        allowed: self.allowed_next_states(),
                    });
                }
                if !self.allowed_next_states().contains(&status) {
                    return Err(TicketError::ApprovalRequired(status));
                }
                sink.write(
                    TicketEvent::TicketStatusChanged {
                        from,
                        to: status,
                        reason,
                        at,
                    },
                    self,
                )
                .await;
            }
            TicketCommand::AssignTicket { assignee_id, at } => {
                self.require_live()?;
                if assignee_id != self.assignee_id {
                    sink.write(
                        TicketEvent::TicketAssigned {
                            assignee_id,
                            previous_assignee_id: self.assignee_id,
                            at,
                        },
                        self,
                    )
                    .await;
                }
            }
            TicketCommand::DeleteTicket { reason, at } => {
                self.require_exists()?;
                if self.deleted {
                    return Err(TicketError::NotFound);
                }
                let from = self.current_status();
                if from == TicketStatus::Closed {
                    return Err(TicketError::Finished(from));
                }
                sink.write(TicketEvent::TicketDeleted { from, reason, at }, self)
                    .await;
            }
            TicketCommand::AddComment {
                comment_id,
                author_id,
                by_staff,
                content,
                is_internal,
                parent_id,
                mentions,
                at,
            } => {
                self.require_exists()?;
                if self.deleted {
                    return Err(TicketError::NotFound);
                }
                if let Some(parent) = parent_id {
                    if !self.comments.contains_key(&parent) {
                        return Err(TicketError::ParentNotFound);
                    }
                }
                let first_response = by_staff
                    && !is_internal
                    && author_id != self.requester_id
                    && self.first_response_at.is_none();
                sink.write(
                    TicketEvent::CommentAdded {
                        comment_id,
                        author_id,
                        content,
                        is_internal,
                        parent_id,
                        mentions,
                        at,
                    },
                    self,
                )
                .await;
                if first_response {
                    sink.write(
                        TicketEvent::FirstResponseRecorded {
                            comment_id,
                            responder_id: author_id,
                            at,
                        },
                        self,
                    )
                    .await;
                }
            }
            TicketCommand::EditComment {
                comment_id,
                editor_id,
                content,
                mentions,
                at,
            } => {
                self.require_exists()?;
                let comment = self.live_comment(&comment_id)?;
                if comment.content == content {
                    return Ok(());
                }
                let event = TicketEvent::CommentEdited {
                    comment_id,
                    editor_id,
                    previous_content: comment.content.clone(),
                    is_internal: comment.is_internal,
                    content,
                    mentions,
                    at,
                };
                sink.write(event, self).await;
            }
            TicketCommand::DeleteComment {
                comment_id,
                deleted_by,
                at,
            } => {
                self.require_exists()?;
                let is_internal = self.live_comment(&comment_id)?.is_internal;
                sink.write(
                    TicketEvent::CommentDeleted {
                        comment_id,
                        deleted_by,
                        is_internal,
                        at,
                    },
                    self,
                )
                .await;
            }
            TicketCommand::AddAttachment {
                attachment_id,
                filename,
                content_type,
                size,
                sha256,
                uploaded_by,
                at,
            } => {
                self.require_exists()?;
                if self.deleted {
                    return Err(TicketError::NotFound);
                }
                sink.write(
                    TicketEvent::AttachmentAdded {
                        attachment_id,
                        filename,
                        content_type,
                        size,
                        sha256,
                        uploaded_by,
                        at,
                    },
                    self,
                )
                .await;
            }
            TicketCommand::RemoveAttachment {
                attachment_id,
                removed_by,
                at,
            } => {
                self.require_exists()?;
                let sha256 = self
                    .attachments
                    .get(&attachment_id)
                    .cloned()
                    .ok_or(TicketError::AttachmentNotFound)?;
                sink.write(
                    TicketEvent::AttachmentRemoved {
                        attachment_id,
                        sha256,
                        removed_by,
                        at,
                    },
                    self,
                )
                .await;
            }
            TicketCommand::RecordApproval {
                approval_id,
                status,
                at,
            } => {
                self.require_exists()?;
                if self.approval_id == Some(approval_id) && self.approval_status == Some(status) {
                    return Ok(());
                }
                // A late message about an approval that has been superseded changes nothing.
                if self.approval_id.is_some()
                    && self.approval_id != Some(approval_id)
                    && status != ApprovalStatus::Pending
                {
                    return Ok(());
                }
                sink.write(
                    TicketEvent::ApprovalRecorded {
                        approval_id,
                        status,
                        at,
                    },
                    self,
                )
                .await;
            }
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
            } => {
                let TicketFields {
                    title,
                    description,
                    priority,
                    ticket_type,
                    tags,
                    item_ids,
                } = fields;
                self.id = id;
                self.requester_id = requester_id;
                self.title = title;
                self.description = description;
                self.priority = Some(priority);
                self.ticket_type = Some(ticket_type);
                self.tags = tags;
                self.item_ids = item_ids;
                self.status = Some(TicketStatus::Open);
                self.approval_status = Some(ApprovalStatus::None);
                self.created_at = Some(at);
            }
            TicketEvent::TicketUpdated { changes, .. } => {
                let TicketChanges {
                    title,
                    description,
                    priority,
                    ticket_type,
                    tags,
                    item_ids,
                } = changes;
                if let Some(v) = title {
                    self.title = v;
                }
                if let Some(v) = description {
                    self.description = v;
                }
                if let Some(v) = priority {
                    self.priority = Some(v);
                }
                if let Some(v) = ticket_type {
                    self.ticket_type = Some(v);
                }
                if let Some(v) = tags {
                    self.tags = v;
                }
                if let Some(v) = item_ids {
                    self.item_ids = v;
                }
            }
            TicketEvent::TicketStatusChanged { to, at, .. } => {
                self.status = Some(to);
                match to {
                    TicketStatus::Resolved => self.resolved_at = Some(at),
                    TicketStatus::Open | TicketStatus::InProgress | TicketStatus::Pending => {
                        self.resolved_at = None
                    }
                    _ => {}
                }
            }
            TicketEvent::TicketAssigned { assignee_id, .. } => self.assignee_id = assignee_id,
            TicketEvent::TicketDeleted { .. } => {
                self.status = Some(TicketStatus::Cancelled);
                self.deleted = true;
            }
            TicketEvent::CommentAdded {
                comment_id,
                author_id,
                content,
                is_internal,
                ..
            } => {
                self.comments.insert(
                    comment_id,
                    CommentState {
                        author_id,
                        content,
                        is_internal,
                        deleted: false,
                    },
                );
            }
            TicketEvent::CommentEdited {
                comment_id,
                content,
                ..
            } => {
                if let Some(c) = self.comments.get_mut(&comment_id) {
                    c.content = content;
                }
            }
            TicketEvent::CommentDeleted { comment_id, .. } => {
                if let Some(c) = self.comments.get_mut(&comment_id) {
                    c.deleted = true;
                }
            }
            TicketEvent::FirstResponseRecorded { at, .. } => self.first_response_at = Some(at),
            TicketEvent::AttachmentAdded {
                attachment_id,
                sha256,
                ..
            } => {
                self.attachments.insert(attachment_id, sha256);
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

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
