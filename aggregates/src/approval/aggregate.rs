//! The Approval aggregate's state and how events fold into it; commands are decided in `decide`.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::{ApprovalCommand, Decision, Rule, StepSpec};
use super::error::ApprovalError;
use super::event::{ApprovalEvent, ApprovalRequest};
use crate::types::ApprovalStatus;

/// Where a step is. Serialized as `waiting`, `pending`, `approved`, `rejected`, `skipped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// A later step, not reached yet.
    Waiting,
    /// The current step of a pending approval: its approvers may decide.
    Pending,
    /// Enough approvals were recorded; the step is done.
    Approved,
    /// An approver of this step rejected it, which rejected the approval.
    Rejected,
    /// Never completed because the approval was rejected (later steps) or cancelled (the
    /// current step and later ones).
    Skipped,
}

impl StepStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Waiting => "waiting",
            StepStatus::Pending => "pending",
            StepStatus::Approved => "approved",
            StepStatus::Rejected => "rejected",
            StepStatus::Skipped => "skipped",
        }
    }
}

/// A decision recorded on a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepDecision {
    /// Who decided (the delegate, when the place was delegated).
    pub approver_id: i64,
    /// Approve or reject.
    pub decision: Decision,
    /// The approver's comment, if any.
    pub comment: Option<String>,
    /// When the decision was made.
    pub decided_at: DateTime<Utc>,
}

/// A delegation recorded on a step: `to_user_id` took `from_user_id`'s place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepDelegation {
    /// The approver who handed their decision on.
    pub from_user_id: i64,
    /// The user who decides in their place.
    pub to_user_id: i64,
    /// Why, if said.
    pub comment: Option<String>,
    /// When the decision was delegated.
    pub at: DateTime<Utc>,
}

/// One step of an approval as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    /// The step's label.
    pub name: String,
    /// How its approvals combine.
    pub rule: Rule,
    /// For a quorum, how many approvals complete the step (`None` for `any` and `all`).
    pub min_approvals: Option<u32>,
    /// The effective approvers, in the requested order: each delegator is replaced in place
    /// by their delegate, so the count never changes.
    pub approver_ids: Vec<i64>,
    /// Where the step is.
    pub status: StepStatus,
    /// The decisions recorded, in order.
    pub decisions: Vec<StepDecision>,
    /// The delegations recorded, in order.
    pub delegations: Vec<StepDelegation>,
}

impl Step {
    fn from_spec(spec: StepSpec, status: StepStatus) -> Self {
        Step {
            name: spec.name,
            rule: spec.rule,
            min_approvals: match spec.rule {
                Rule::Quorum => spec.min_approvals,
                Rule::Any | Rule::All => None,
            },
            approver_ids: spec.approver_ids,
            status,
            decisions: Vec::new(),
            delegations: Vec::new(),
        }
    }

    /// How many approvals complete this step: 1 for `any`, every approver for `all`,
    /// `min_approvals` for a quorum.
    pub fn required_approvals(&self) -> usize {
        match self.rule {
            Rule::Any => 1,
            Rule::All => self.approver_ids.len(),
            Rule::Quorum => self
                .min_approvals
                .map_or(self.approver_ids.len(), |n| n as usize),
        }
    }

    /// How many approvals were recorded.
    pub fn approvals(&self) -> usize {
        self.decisions
            .iter()
            .filter(|d| d.decision == Decision::Approve)
            .count()
    }

    /// True once enough approvals were recorded.
    pub fn is_satisfied(&self) -> bool {
        self.approvals() >= self.required_approvals()
    }

    /// True when `user_id` is an effective approver of this step.
    pub fn is_approver(&self, user_id: i64) -> bool {
        self.approver_ids.contains(&user_id)
    }

    /// True when `user_id` has decided this step.
    pub fn has_decided(&self, user_id: i64) -> bool {
        self.decisions.iter().any(|d| d.approver_id == user_id)
    }

    /// True when `user_id` handed their place on this step on to someone else.
    pub fn has_delegated(&self, user_id: i64) -> bool {
        self.delegations.iter().any(|d| d.from_user_id == user_id)
    }

    /// True when `user_id` holds their place on this step by delegation.
    pub fn is_delegate(&self, user_id: i64) -> bool {
        self.delegations.iter().any(|d| d.to_user_id == user_id)
    }

    /// The approvers as requested, before any delegation.
    pub fn original_approver_ids(&self) -> Vec<i64> {
        self.approver_ids
            .iter()
            .map(|id| {
                self.delegations
                    .iter()
                    .find(|d| d.to_user_id == *id)
                    .map_or(*id, |d| d.from_user_id)
            })
            .collect()
    }

    /// Effective approvers who have not decided yet (whatever the step's status).
    pub fn undecided(&self) -> Vec<i64> {
        self.approver_ids
            .iter()
            .copied()
            .filter(|id| !self.has_decided(*id))
            .collect()
    }
}

/// An approval's current state, folded from its events.
///
/// `current_step` is the 0-based index of the step being decided. It stays on the step where
/// the approval ended: the last index once approved, the rejected step once rejected, the step
/// that was current once cancelled; so `steps[current_step]` always exists once requested.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The approval's id (also the aggregate id).
    pub id: Uuid,
    /// The ticket the approval is for.
    pub ticket_id: i64,
    /// The ticket's requester, who may cancel the approval.
    pub ticket_requester_id: i64,
    /// The user who asked for the approval.
    pub requested_by: i64,
    /// Why the approval was requested.
    pub reason: Option<String>,
    status: Option<ApprovalStatus>,
    /// The index of the current step (see the type's documentation).
    pub current_step: usize,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// When the approval was requested.
    pub created_at: Option<DateTime<Utc>>,
    /// When the last event happened.
    pub updated_at: Option<DateTime<Utc>>,
    /// When the approval was granted, rejected or cancelled.
    pub finished_at: Option<DateTime<Utc>>,
}

impl Approval {
    /// True once `ApprovalRequested` has been applied.
    pub fn exists(&self) -> bool {
        self.status.is_some()
    }

    /// The status: `none` before the approval is requested, then `pending`, `approved`,
    /// `rejected` or `cancelled`.
    pub fn status(&self) -> ApprovalStatus {
        self.status.unwrap_or(ApprovalStatus::None)
    }

    /// True while decisions may be made.
    pub fn is_pending(&self) -> bool {
        self.status() == ApprovalStatus::Pending
    }

    /// The current step, if the approval exists.
    pub fn current(&self) -> Option<&Step> {
        self.steps.get(self.current_step)
    }

    /// Effective approvers of the current step who have not decided yet; empty unless pending.
    pub fn waiting_on(&self) -> Vec<i64> {
        match self.current() {
            Some(step) if self.is_pending() => step.undecided(),
            _ => Vec::new(),
        }
    }

    /// True when `user_id` takes part: requested the approval or the ticket, or is (or was,
    /// before delegating) an approver of any step.
    pub fn involves(&self, user_id: i64) -> bool {
        self.requested_by == user_id
            || self.ticket_requester_id == user_id
            || self
                .steps
                .iter()
                .any(|s| s.is_approver(user_id) || s.has_delegated(user_id))
    }

    /// True when `user_id` may cancel: the approval's requester, the ticket's requester or staff.
    pub fn may_cancel(&self, user_id: i64, by_staff: bool) -> bool {
        by_staff || user_id == self.requested_by || user_id == self.ticket_requester_id
    }

    pub(super) fn require_pending(&self) -> Result<(), ApprovalError> {
        if !self.exists() {
            return Err(ApprovalError::NotFound);
        }
        if !self.is_pending() {
            return Err(ApprovalError::NotPending);
        }
        Ok(())
    }

    /// The current step, for a pending approval.
    pub(super) fn pending_step(&self) -> Result<(usize, &Step), ApprovalError> {
        self.require_pending()?;
        let step = self.current().ok_or(ApprovalError::NotPending)?;
        Ok((self.current_step, step))
    }

    /// Why `user_id`, who holds no place on the current step, may not act on it.
    pub(super) fn not_an_approver_now(&self, user_id: i64) -> ApprovalError {
        let later = self
            .steps
            .iter()
            .skip(self.current_step + 1)
            .any(|s| s.is_approver(user_id));
        if later {
            ApprovalError::NotYourTurn
        } else {
            ApprovalError::NotAnApprover
        }
    }
}

impl Aggregate for Approval {
    const TYPE: &'static str = "approval";
    type Command = ApprovalCommand;
    type Event = ApprovalEvent;
    type Error = ApprovalError;
    type Services = ();

    async fn handle(
        &mut self,
        command: ApprovalCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), ApprovalError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: ApprovalEvent) {
        self.updated_at = Some(event.at());
        match event {
            ApprovalEvent::ApprovalRequested(request) => self.requested(request),
            ApprovalEvent::DecisionRecorded {
                step,
                approver_id,
                decision,
                comment,
                at,
            } => self.on_step(step, |s| {
                s.decisions.push(StepDecision {
                    approver_id,
                    decision,
                    comment,
                    decided_at: at,
                })
            }),
            ApprovalEvent::StepCompleted { step, .. } => self.step_completed(step),
            ApprovalEvent::DecisionDelegated {
                step,
                from_user_id,
                to_user_id,
                comment,
                at,
            } => self.on_step(step, |s| {
                s.delegated(StepDelegation {
                    from_user_id,
                    to_user_id,
                    comment,
                    at,
                })
            }),
            ApprovalEvent::ApprovalGranted { at } => self.finished(ApprovalStatus::Approved, at),
            ApprovalEvent::ApprovalRejected { step, at, .. } => self.rejected(step, at),
            ApprovalEvent::ApprovalCancelled { at, .. } => {
                self.finished(ApprovalStatus::Cancelled, at);
                self.skip_open_steps();
            }
        }
    }
}

impl Step {
    /// Replaces the delegator by the delegate in place and records the delegation.
    fn delegated(&mut self, delegation: StepDelegation) {
        for id in self.approver_ids.iter_mut() {
            if *id == delegation.from_user_id {
                *id = delegation.to_user_id;
            }
        }
        self.delegations.push(delegation);
    }
}

impl Approval {
    fn requested(&mut self, request: ApprovalRequest) {
        self.id = request.id;
        self.ticket_id = request.ticket_id;
        self.ticket_requester_id = request.ticket_requester_id;
        self.requested_by = request.requested_by;
        self.reason = request.reason;
        self.current_step = 0;
        self.steps = request
            .steps
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                let status = if i == 0 {
                    StepStatus::Pending
                } else {
                    StepStatus::Waiting
                };
                Step::from_spec(spec, status)
            })
            .collect();
        self.status = Some(ApprovalStatus::Pending);
        self.created_at = Some(request.at);
    }

    fn on_step(&mut self, step: usize, change: impl FnOnce(&mut Step)) {
        if let Some(s) = self.steps.get_mut(step) {
            change(s);
        }
    }

    fn step_completed(&mut self, step: usize) {
        self.on_step(step, |s| s.status = StepStatus::Approved);
        if let Some(next) = self.steps.get_mut(step + 1) {
            next.status = StepStatus::Pending;
            self.current_step = step + 1;
        } else {
            self.current_step = step;
        }
    }

    fn finished(&mut self, status: ApprovalStatus, at: DateTime<Utc>) {
        self.status = Some(status);
        self.finished_at = Some(at);
    }

    fn rejected(&mut self, step: usize, at: DateTime<Utc>) {
        self.finished(ApprovalStatus::Rejected, at);
        self.current_step = step;
        self.on_step(step, |s| s.status = StepStatus::Rejected);
        self.skip_open_steps();
    }

    /// Steps still pending or waiting will never complete.
    fn skip_open_steps(&mut self) {
        for s in &mut self.steps {
            if matches!(s.status, StepStatus::Pending | StepStatus::Waiting) {
                s.status = StepStatus::Skipped;
            }
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
