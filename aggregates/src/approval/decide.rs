//! The Approval aggregate's command handling: one function per command, each checking the rules
//! against the current state and returning the events to record.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::aggregate::Approval;
use super::command::{ApprovalCommand, Decision, Rule, StepSpec};
use super::error::ApprovalError;
use super::event::ApprovalEvent;

type Decided = Result<Vec<ApprovalEvent>, ApprovalError>;

impl Approval {
    /// The events `command` records on this approval, or why it is refused.
    pub(super) fn decide(&self, command: ApprovalCommand) -> Decided {
        match command {
            ApprovalCommand::RequestApproval(mut request) => {
                request.steps = self.new_steps(request.steps)?;
                Ok(vec![ApprovalEvent::ApprovalRequested(request)])
            }
            ApprovalCommand::Decide {
                approver_id,
                decision,
                comment,
                at,
            } => self.record_decision(approver_id, decision, comment, at),
            ApprovalCommand::Delegate {
                from_user_id,
                to_user_id,
                comment,
                at,
            } => self.delegate(from_user_id, to_user_id, comment, at),
            ApprovalCommand::Cancel { by, by_staff, at } => self.cancel(by, by_staff, at),
        }
    }

    /// The steps of a new approval, checked.
    fn new_steps(&self, steps: Vec<StepSpec>) -> Result<Vec<StepSpec>, ApprovalError> {
        if self.exists() {
            return Err(ApprovalError::AlreadyExists);
        }
        validate_steps(steps)
    }

    fn record_decision(
        &self,
        approver_id: i64,
        decision: Decision,
        comment: Option<String>,
        at: DateTime<Utc>,
    ) -> Decided {
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
        let mut events = vec![ApprovalEvent::DecisionRecorded {
            step: index,
            approver_id,
            decision,
            comment,
            at,
        }];
        match decision {
            Decision::Reject => events.push(ApprovalEvent::ApprovalRejected {
                step: index,
                by: approver_id,
                at,
            }),
            // This approval is not counted on `step` yet, hence the `+ 1`.
            Decision::Approve if step.approvals() + 1 >= step.required_approvals() => {
                events.push(ApprovalEvent::StepCompleted { step: index, at });
                if index + 1 >= self.steps.len() {
                    events.push(ApprovalEvent::ApprovalGranted { at });
                }
            }
            Decision::Approve => {}
        }
        Ok(events)
    }

    fn delegate(
        &self,
        from_user_id: i64,
        to_user_id: i64,
        comment: Option<String>,
        at: DateTime<Utc>,
    ) -> Decided {
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
        Ok(vec![ApprovalEvent::DecisionDelegated {
            step: index,
            from_user_id,
            to_user_id,
            comment,
            at,
        }])
    }

    fn cancel(&self, by: i64, by_staff: bool, at: DateTime<Utc>) -> Decided {
        self.require_pending()?;
        if !self.may_cancel(by, by_staff) {
            return Err(ApprovalError::NotAllowed);
        }
        Ok(vec![ApprovalEvent::ApprovalCancelled { by, at }])
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
