//! What happened to an approval: the stored events (names and fields are stored; never rename).

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::{Decision, StepSpec};

/// A request for an approval: the payload of `ApprovalRequested` and of the command that asks
/// for it (whose steps are checked and normalised before they are recorded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub id: Uuid,
    pub ticket_id: i64,
    pub ticket_requester_id: i64,
    pub requested_by: i64,
    pub steps: Vec<StepSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// What happened to an approval. The variant names are the stored `event_type`: never rename.
/// `step` is always a 0-based index into the requested steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ApprovalEvent {
    /// An approval was requested; its first step is now pending. `min_approvals` is kept only on quorum steps.
    ApprovalRequested(ApprovalRequest),
    /// An (effective) approver of step `step` approved or rejected it.
    DecisionRecorded {
        step: usize,
        approver_id: i64,
        decision: Decision,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        at: DateTime<Utc>,
    },
    /// Step `step` has enough approvals; the next step, if any, is now current.
    StepCompleted { step: usize, at: DateTime<Utc> },
    /// `from_user_id` handed their place on step `step` on to `to_user_id`.
    DecisionDelegated {
        step: usize,
        from_user_id: i64,
        to_user_id: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        at: DateTime<Utc>,
    },
    /// The last step completed: the approval is approved.
    ApprovalGranted { at: DateTime<Utc> },
    /// `by` rejected step `step`, which rejected the approval.
    ApprovalRejected {
        step: usize,
        by: i64,
        at: DateTime<Utc>,
    },
    /// `by` withdrew the approval.
    ApprovalCancelled { by: i64, at: DateTime<Utc> },
}

impl ApprovalEvent {
    /// When the event happened, as the command said.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            ApprovalEvent::ApprovalRequested(ApprovalRequest { at, .. })
            | ApprovalEvent::DecisionRecorded { at, .. }
            | ApprovalEvent::StepCompleted { at, .. }
            | ApprovalEvent::DecisionDelegated { at, .. }
            | ApprovalEvent::ApprovalGranted { at }
            | ApprovalEvent::ApprovalRejected { at, .. }
            | ApprovalEvent::ApprovalCancelled { at, .. } => *at,
        }
    }

    /// True for the events that end the approval (granted, rejected, cancelled).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            ApprovalEvent::ApprovalGranted { .. }
                | ApprovalEvent::ApprovalRejected { .. }
                | ApprovalEvent::ApprovalCancelled { .. }
        )
    }
}

impl DomainEvent for ApprovalEvent {
    fn event_type(&self) -> String {
        match self {
            ApprovalEvent::ApprovalRequested(_) => "ApprovalRequested",
            ApprovalEvent::DecisionRecorded { .. } => "DecisionRecorded",
            ApprovalEvent::StepCompleted { .. } => "StepCompleted",
            ApprovalEvent::DecisionDelegated { .. } => "DecisionDelegated",
            ApprovalEvent::ApprovalGranted { .. } => "ApprovalGranted",
            ApprovalEvent::ApprovalRejected { .. } => "ApprovalRejected",
            ApprovalEvent::ApprovalCancelled { .. } => "ApprovalCancelled",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
