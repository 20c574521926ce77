use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::{ApprovalCommand, Decision, Rule, StepSpec};
use super::error::ApprovalError;
use super::event::ApprovalEvent;
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

    fn require_pending(&self) -> Result<(), ApprovalError> {
        if !self.exists() {
            return Err(ApprovalError::NotFound);
        }
        if !self.is_pending() {
            return Err(ApprovalError::NotPending);
        }
        Ok(())
    }

    /// The current step, for a pending approval.
    fn pending_step(&self) -> Result<(usize, &Step), ApprovalError> {
        self.require_pending()?;
        let step = self.current().ok_or(ApprovalError::NotPending)?;
        Ok((self.current_step, step))
    }

    /// Why `user_id`, who holds no place on the current step, may not act on it.
    fn not_an_approver_now(&self, user_id: i64) -> ApprovalError {
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

/// Checks the requested steps and drops `min_approvals` where the rule ignores it.
fn validate_steps(steps: Vec<StepSpec>) -> Result<Vec<StepSpec>, ApprovalError> {
    if steps.is_empty() {
        return Err(ApprovalError::InvalidSteps(
            "at least one step is required".into(),
        ));
    }
    steps
        .into_iter()
        .enumerate()
        .map(|(index, mut spec)| {
            let label = format!("step {} ({:?})", index + 1, spec.name);
            if spec.approver_ids.is_empty() {
                return Err(ApprovalError::InvalidSteps(format!(
                    "{label} needs at least one approver"
                )));
            }
            let mut seen = BTreeSet::new();
            if let Some(dup) = spec.approver_ids.iter().find(|id| !seen.insert(**id)) {
                return Err(ApprovalError::InvalidSteps(format!(
                    "{label} lists approver {dup} more than once"
                )));
            }
            match spec.rule {
                Rule::Any | Rule::All => spec.min_approvals = None,
                Rule::Quorum => {
                    let count = spec.approver_ids.len();
                    match spec.min_approvals {
                        None => {
                            return Err(ApprovalError::InvalidSteps(format!(
                                "{label} uses the quorum rule and needs min_approvals"
                            )))
                        }
                        Some(n) if n == 0 || n as usize > count => {
                            return Err(ApprovalError::InvalidSteps(format!(
                                "{label}: min_approvals must be between 1 and {count}, got {n}"
                            )))
                        }
                        Some(_) => {}
                    }
                }
            }
            Ok(spec)
        })
        .collect()
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
        match command {
            ApprovalCommand::RequestApproval {
                id,
                ticket_id,
                ticket_requester_id,
                requested_by,
                steps,
                reason,
                at,
            } => {
                if self.exists() {
                    return Err(ApprovalError::AlreadyExists);
                }
                let steps = validate_steps(steps)?;
                sink.write(
                    ApprovalEvent::ApprovalRequested {
                        id,
                        ticket_id,
                        ticket_requester_id,
                        requested_by,
                        steps,
                        reason,
                        at,
                    },
                    self,
                )
                .await;
            }
            ApprovalCommand::Decide {
                approver_id,
                decision,
                comment,
                at,
            } => {
                let (index, step) = self.pending_step()?;
                if step.has_decided(approver_id) {
                    return Err(ApprovalError::AlreadyDecided);
                }
                if step.has_delegated(approver_id) {
                    return Err(ApprovalError::Delegated);
                }
                if !step.is_approver(approver_id) {
                    return Err(self.not_an_approver_now(approver_id));
                }
                sink.write(
                    ApprovalEvent::DecisionRecorded {
                        step: index,
                        approver_id,
                        decision,
                        comment,
                        at,
                    },
                    self,
                )
                .await;
                match decision {
                    Decision::Reject => {
                        sink.write(
                            ApprovalEvent::ApprovalRejected {
                                step: index,
                                by: approver_id,
                                at,
                            },
                            self,
                        )
                        .await;
                    }
                    Decision::Approve => {
                        let satisfied = self.steps.get(index).is_some_and(Step::is_satisfied);
                        if satisfied {
                            sink.write(ApprovalEvent::StepCompleted { step: index, at }, self)
                                .await;
                            if index + 1 >= self.steps.len() {
                                sink.write(ApprovalEvent::ApprovalGranted { at }, self)
                                    .await;
                            }
                        }
                    }
                }
            }
            ApprovalCommand::Delegate {
                from_user_id,
                to_user_id,
                comment,
                at,
            } => {
                let (index, step) = self.pending_step()?;
                if step.has_decided(from_user_id) {
                    return Err(ApprovalError::AlreadyDecided);
                }
                if step.has_delegated(from_user_id) || step.is_delegate(from_user_id) {
                    return Err(ApprovalError::AlreadyDelegated);
                }
                if !step.is_approver(from_user_id) {
                    return Err(self.not_an_approver_now(from_user_id));
                }
                if to_user_id == from_user_id
                    || step.is_approver(to_user_id)
                    || step.has_delegated(to_user_id)
                {
                    return Err(ApprovalError::InvalidDelegate);
                }
                sink.write(
                    ApprovalEvent::DecisionDelegated {
                        step: index,
                        from_user_id,
                        to_user_id,
                        comment,
                        at,
                    },
                    self,
                )
                .await;
            }
            ApprovalCommand::Cancel { by, by_staff, at } => {
                self.require_pending()?;
                if !self.may_cancel(by, by_staff) {
                    return Err(ApprovalError::NotAllowed);
                }
                sink.write(ApprovalEvent::ApprovalCancelled { by, at }, self)
                    .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: ApprovalEvent) {
        self.updated_at = Some(event.at());
        match event {
            ApprovalEvent::ApprovalRequested {
                id,
                ticket_id,
                ticket_requester_id,
                requested_by,
                steps,
                reason,
                at,
            } => {
                self.id = id;
                self.ticket_id = ticket_id;
                self.ticket_requester_id = ticket_requester_id;
                self.requested_by = requested_by;
                self.reason = reason;
                self.current_step = 0;
                self.steps = steps
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
                self.created_at = Some(at);
            }
            ApprovalEvent::DecisionRecorded {
                step,
                approver_id,
                decision,
                comment,
                at,
            } => {
                if let Some(s) = self.steps.get_mut(step) {
                    s.decisions.push(StepDecision {
                        approver_id,
                        decision,
                        comment,
                        decided_at: at,
                    });
                }
            }
            ApprovalEvent::StepCompleted { step, .. } => {
                if let Some(s) = self.steps.get_mut(step) {
                    s.status = StepStatus::Approved;
                }
                if let Some(next) = self.steps.get_mut(step + 1) {
                    next.status = StepStatus::Pending;
                    self.current_step = step + 1;
                } else {
                    self.current_step = step;
                }
            }
            ApprovalEvent::DecisionDelegated {
                step,
                from_user_id,
                to_user_id,
                comment,
                at,
            } => {
                if let Some(s) = self.steps.get_mut(step) {
                    for id in s.approver_ids.iter_mut().filter(|id| **id == from_user_id) {
                        *id = to_user_id;
                    }
                    s.delegations.push(StepDelegation {
                        from_user_id,
                        to_user_id,
                        comment,
                        at,
                    });
                }
            }
            ApprovalEvent::ApprovalGranted { at } => {
                self.status = Some(ApprovalStatus::Approved);
                self.finished_at = Some(at);
            }
            ApprovalEvent::ApprovalRejected { step, at, .. } => {
                self.status = Some(ApprovalStatus::Rejected);
                self.finished_at = Some(at);
                self.current_step = step;
                for (i, s) in self.steps.iter_mut().enumerate() {
                    if i == step {
                        s.status = StepStatus::Rejected;
                    } else if matches!(s.status, StepStatus::Pending | StepStatus::Waiting) {
                        s.status = StepStatus::Skipped;
                    }
                }
            }
            ApprovalEvent::ApprovalCancelled { at, .. } => {
                self.status = Some(ApprovalStatus::Cancelled);
                self.finished_at = Some(at);
                for s in &mut self.steps {
                    if matches!(s.status, StepStatus::Pending | StepStatus::Waiting) {
                        s.status = StepStatus::Skipped;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
