//! The `Ticket` aggregate: a ticket's fields, status, assignment, comments,
//! attachment metadata and approval state, all as events of one stream.

mod aggregate;
mod command;
mod decide;
mod error;
mod event;

pub use aggregate::{CommentState, Ticket};
pub use command::{TicketCommand, TicketFields};
pub use error::TicketError;
pub use event::{AttachedFile, PostedComment, TicketChanges, TicketEvent};
