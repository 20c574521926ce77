//! What can be asked of an approval, and how steps, rules and decisions are described.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::ApprovalRequest;

/// How the approvals of one step combine. Stored in events: never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The first approval completes the step.
    Any,
    /// Every (effective) approver of the step must approve.
    All,
    /// `min_approvals` approvals complete the step.
    Quorum,
}

impl Rule {
    /// The stored and wire name (`any`, `all`, `quorum`).
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Any => "any",
            Rule::All => "all",
            Rule::Quorum => "quorum",
        }
    }
}

/// What an approver decides. Stored in events: never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Counts towards completing the step.
    Approve,
    /// Rejects the whole approval at once.
    Reject,
}

impl Decision {
    /// The stored and wire name (`approve`, `reject`).
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }
}

/// One step as requested: its name, approvers and rule.
///
/// `min_approvals` is only meaningful for [`Rule::Quorum`] (where it is required and must lie in
/// `1..=approver_ids.len()`); for `any` and `all` it is ignored and dropped from the
/// `ApprovalRequested` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepSpec {
    /// A label for people ("Manager", "Security", ...).
    pub name: String,
    /// The users who decide this step, at least one, no duplicates.
    pub approver_ids: Vec<i64>,
    /// How the approvals of this step combine.
    pub rule: Rule,
    /// For a quorum, how many approvals complete the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_approvals: Option<u32>,
}

/// What can be asked of an approval. Times come from the caller so the aggregate stays pure.
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalCommand {
    /// Start an approval for a ticket. `ticket_requester_id` is the ticket's requester (who may
    /// cancel); `requested_by` is the user asking for the approval.
    ///
    /// Refused with `InvalidSteps` when there is no step, a step has no approver or the same
    /// approver twice, or a quorum lacks a `min_approvals` in `1..=approvers`.
    RequestApproval(ApprovalRequest),
    /// An (effective) approver of the current step approves or rejects it.
    Decide {
        approver_id: i64,
        decision: Decision,
        comment: Option<String>,
        at: DateTime<Utc>,
    },
    /// An approver of the current step who has not decided hands their decision on, once.
    Delegate {
        from_user_id: i64,
        to_user_id: i64,
        comment: Option<String>,
        at: DateTime<Utc>,
    },
    /// Withdraw the approval. Allowed for `requested_by`, the ticket's requester, or staff.
    Cancel {
        by: i64,
        by_staff: bool,
        at: DateTime<Utc>,
    },
}
