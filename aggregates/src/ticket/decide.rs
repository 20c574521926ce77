//! The Ticket aggregate's command handling: one function per command, each checking the rules
//! against the current state and returning the events to record (none when nothing changes).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::aggregate::Ticket;
use super::command::{TicketCommand, TicketFields};
use super::error::TicketError;
use super::event::{AttachedFile, PostedComment, TicketChanges, TicketEvent};
use crate::types::{ApprovalStatus, TicketStatus};

type Decided = Result<Vec<TicketEvent>, TicketError>;

fn changed<T: PartialEq>(new: Option<T>, old: &T) -> Option<T> {
    new.filter(|v| v != old)
}

impl Ticket {
    /// The events `command` records on this ticket, or why it is refused.
    pub(super) fn decide(&self, command: TicketCommand) -> Decided {
        match command {
            TicketCommand::OpenTicket {
                id,
                requester_id,
                fields,
                at,
            } => self.open(id, requester_id, fields, at),
            TicketCommand::UpdateTicket { asked, at } => self.update(asked, at),
            TicketCommand::ChangeStatus { status, reason, at } => {
                self.change_status(status, reason, at)
            }
            TicketCommand::AssignTicket { assignee_id, at } => self.assign(assignee_id, at),
            TicketCommand::DeleteTicket { reason, at } => self.delete(reason, at),
            command @ (TicketCommand::AddComment { .. }
            | TicketCommand::EditComment { .. }
            | TicketCommand::DeleteComment { .. }) => self.decide_on_comment(command),
            TicketCommand::AddAttachment(file) => self.add_attachment(file),
            TicketCommand::RemoveAttachment {
                attachment_id,
                removed_by,
                at,
            } => self.remove_attachment(attachment_id, removed_by, at),
            TicketCommand::RecordApproval {
                approval_id,
                status,
                at,
            } => self.record_approval(approval_id, status, at),
            TicketCommand::Batch(commands) => self.batch(commands),
        }
    }

    fn batch(&self, commands: Vec<TicketCommand>) -> Decided {
        let mut state = self.clone();
        let mut out = Vec::new();
        for command in commands {
            let events = state.decide(command)?;
            for event in &events {
                cqrs_es::Aggregate::apply(&mut state, event.clone());
            }
            out.extend(events);
        }
        Ok(out)
    }

    fn open(&self, id: i64, requester_id: i64, fields: TicketFields, at: DateTime<Utc>) -> Decided {
        if self.exists() {
            return Err(TicketError::AlreadyExists);
        }
        Ok(vec![TicketEvent::TicketOpened {
            id,
            requester_id,
            fields,
            at,
        }])
    }

    /// Records the fields in `asked` that differ from the current ones, if any.
    fn update(&self, asked: TicketChanges, at: DateTime<Utc>) -> Decided {
        self.require_live()?;
        let changes = TicketChanges {
            title: changed(asked.title, &self.title),
            description: changed(asked.description, &self.description),
            priority: asked.priority.filter(|p| Some(*p) != self.priority),
            ticket_type: asked.ticket_type.filter(|t| Some(*t) != self.ticket_type),
            tags: changed(asked.tags, &self.tags),
            item_ids: changed(asked.item_ids, &self.item_ids),
        };
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![TicketEvent::TicketUpdated { changes, at }])
    }

    fn change_status(
        &self,
        status: TicketStatus,
        reason: Option<String>,
        at: DateTime<Utc>,
    ) -> Decided {
        self.require_exists()?;
        let from = self.current_status();
        if from == status {
            return Ok(Vec::new());
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
        Ok(vec![TicketEvent::TicketStatusChanged {
            from,
            to: status,
            reason,
            at,
        }])
    }

    fn assign(&self, assignee_id: Option<i64>, at: DateTime<Utc>) -> Decided {
        self.require_live()?;
        if assignee_id == self.assignee_id {
            return Ok(Vec::new());
        }
        Ok(vec![TicketEvent::TicketAssigned {
            assignee_id,
            previous_assignee_id: self.assignee_id,
            at,
        }])
    }

    fn delete(&self, reason: Option<String>, at: DateTime<Utc>) -> Decided {
        self.require_present()?;
        let from = self.current_status();
        if from == TicketStatus::Closed {
            return Err(TicketError::Finished(from));
        }
        Ok(vec![TicketEvent::TicketDeleted { from, reason, at }])
    }

    /// The comment commands, which `decide` hands on.
    fn decide_on_comment(&self, command: TicketCommand) -> Decided {
        match command {
            TicketCommand::AddComment {
                comment_id,
                author_id,
                by_staff,
                content,
                is_internal,
                parent_id,
                mentions,
                then_status,
                at,
            } => {
                self.require_parent(parent_id)?;
                let moved = match then_status {
                    Some((status, reason)) => self.change_status(status, reason, at)?,
                    None => Vec::new(),
                };
                let first_response = self.is_first_response(author_id, by_staff, is_internal);
                let mut events = vec![TicketEvent::CommentAdded(PostedComment {
                    comment_id,
                    author_id,
                    content,
                    is_internal,
                    parent_id,
                    mentions,
                    at,
                })];
                if first_response {
                    events.push(TicketEvent::FirstResponseRecorded {
                        comment_id,
                        responder_id: author_id,
                        at,
                    });
                }
                events.extend(moved);
                Ok(events)
            }
            TicketCommand::EditComment {
                comment_id,
                editor_id,
                content,
                mentions,
                at,
            } => self.edit_comment(comment_id, editor_id, content, mentions, at),
            TicketCommand::DeleteComment {
                comment_id,
                deleted_by,
                at,
            } => self.delete_comment(comment_id, deleted_by, at),
            other => unreachable!("decide hands on only comment commands, not {other:?}"),
        }
    }

    /// A new comment may go on a live or finished ticket that was not deleted, under a
    /// parent comment of the same ticket.
    fn require_parent(&self, parent_id: Option<Uuid>) -> Result<(), TicketError> {
        self.require_present()?;
        if let Some(parent) = parent_id {
            if !self.comments.contains_key(&parent) {
                return Err(TicketError::ParentNotFound);
            }
        }
        Ok(())
    }

    /// A first public answer by staff to someone else's ticket is its first response.
    fn is_first_response(&self, author_id: i64, by_staff: bool, is_internal: bool) -> bool {
        by_staff
            && !is_internal
            && author_id != self.requester_id
            && self.first_response_at.is_none()
    }

    fn edit_comment(
        &self,
        comment_id: Uuid,
        editor_id: i64,
        content: String,
        mentions: Vec<i64>,
        at: DateTime<Utc>,
    ) -> Decided {
        self.require_exists()?;
        let comment = self.live_comment(&comment_id)?;
        if comment.content == content {
            return Ok(Vec::new());
        }
        Ok(vec![TicketEvent::CommentEdited {
            comment_id,
            editor_id,
            previous_content: comment.content.clone(),
            is_internal: comment.is_internal,
            content,
            mentions,
            at,
        }])
    }

    fn delete_comment(&self, comment_id: Uuid, deleted_by: i64, at: DateTime<Utc>) -> Decided {
        self.require_exists()?;
        let is_internal = self.live_comment(&comment_id)?.is_internal;
        Ok(vec![TicketEvent::CommentDeleted {
            comment_id,
            deleted_by,
            is_internal,
            at,
        }])
    }

    fn add_attachment(&self, file: AttachedFile) -> Decided {
        self.require_present()?;
        Ok(vec![TicketEvent::AttachmentAdded(file)])
    }

    fn remove_attachment(
        &self,
        attachment_id: Uuid,
        removed_by: i64,
        at: DateTime<Utc>,
    ) -> Decided {
        self.require_exists()?;
        let sha256 = self
            .attachments
            .get(&attachment_id)
            .cloned()
            .ok_or(TicketError::AttachmentNotFound)?;
        Ok(vec![TicketEvent::AttachmentRemoved {
            attachment_id,
            sha256,
            removed_by,
            at,
        }])
    }

    fn record_approval(
        &self,
        approval_id: Uuid,
        status: ApprovalStatus,
        at: DateTime<Utc>,
    ) -> Decided {
        self.require_exists()?;
        if self.approval_id == Some(approval_id) && self.approval_status == Some(status) {
            return Ok(Vec::new());
        }
        // An approval never returns to pending once decided: a pending record of the
        // current approval after its outcome is a late message (a reconciliation that read
        // the approval before the decision and writes after it), and changes nothing.
        if self.approval_id == Some(approval_id)
            && status == ApprovalStatus::Pending
            && self
                .approval_status
                .is_some_and(|s| s != ApprovalStatus::Pending)
        {
            return Ok(Vec::new());
        }
        // A late message about an approval that has been superseded changes nothing.
        if self.approval_id.is_some()
            && self.approval_id != Some(approval_id)
            && status != ApprovalStatus::Pending
        {
            return Ok(Vec::new());
        }
        Ok(vec![TicketEvent::ApprovalRecorded {
            approval_id,
            status,
            at,
        }])
    }
}
