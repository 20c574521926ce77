//! The write side of ticketd: the `Ticket` and `Approval` aggregates, their commands,
//! events and invariants. No I/O lives here; everything is tested with cqrs-es's
//! given/when/then `TestFramework`.

pub mod approval;
pub mod ticket;
pub mod types;

pub use types::{ApprovalStatus, Priority, Role, TicketStatus, TicketType};
