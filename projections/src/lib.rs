//! The read side of ticketd: a gap-free tailer of the event log with checkpoints
//! (`runtime`), rebuilds into shadow tables (`rebuild`), and the read models.

pub mod approvals;
pub mod attachments;
pub mod batch;
pub mod catch_up;
pub mod comments;
pub mod delivery;
pub mod log;
pub mod notifications;
pub mod rebuild;
pub mod reports;
pub mod runtime;
pub mod sla;
pub mod tickets;

pub use log::{Checkpoint, StoredEvent};

/// The PostgreSQL `NOTIFY` channel the ticketd processes talk on (the server's `service::bus`):
/// the notifications projection announces its progress there, so that every process's live hub
/// hands out what the log and the notifications gained, once per process.
pub const BUS_CHANNEL: &str = "ticketd_bus";
pub use runtime::{ApplyError, Projection, ProjectionStatus, Runtime, RuntimeHandle, Tables};
