//! Why a ticket command was refused.

use crate::types::TicketStatus;

/// Why a ticket command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TicketError {
    #[error("ticket not found")]
    NotFound,
    #[error("ticket already exists")]
    AlreadyExists,
    #[error("cannot move a ticket from {from} to {to}")]
    IllegalTransition {
        from: TicketStatus,
        to: TicketStatus,
        allowed: Vec<TicketStatus>,
    },
    #[error("the ticket is {0} and can no longer be changed")]
    Finished(TicketStatus),
    #[error("the ticket waits for an approval and cannot move to {0}")]
    ApprovalRequired(TicketStatus),
    #[error("comment not found")]
    CommentNotFound,
    #[error("the parent comment is not on this ticket")]
    ParentNotFound,
    #[error("attachment not found")]
    AttachmentNotFound,
}
