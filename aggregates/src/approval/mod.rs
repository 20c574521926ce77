//! The `Approval` aggregate: an ordered list of approval steps for one ticket, each with its
//! approvers and rule (`any`, `all` or a quorum), their decisions and delegations, all as
//! events of one stream (aggregate type `approval`, id a UUID).

mod aggregate;
mod command;
mod decide;
mod error;
mod event;

pub use aggregate::{Approval, Step, StepDecision, StepDelegation, StepStatus};
pub use command::{ApprovalCommand, Decision, Rule, StepSpec};
pub use error::ApprovalError;
pub use event::{ApprovalEvent, ApprovalRequest};
