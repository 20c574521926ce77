//! The read side of ticketd: a gap-free tailer of the event log with checkpoints
//! (`runtime`), rebuilds into shadow tables (`rebuild`), and the read models.

pub mod approvals;
pub mod attachments;
pub mod batch;
pub mod comments;
pub mod log;
pub mod notifications;
pub mod rebuild;
pub mod reports;
pub mod runtime;
pub mod tickets;

pub use log::{Checkpoint, StoredEvent};
pub use runtime::{ApplyError, Projection, ProjectionStatus, Runtime, RuntimeHandle, Tables};
