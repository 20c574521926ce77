//! Given/when/then tests of the Approval aggregate, and of what an approval records on its ticket.

use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::DomainEvent;
use uuid::Uuid;

use super::*;
use crate::types::ApprovalStatus;

type ApprovalTest = TestFramework<Approval>;

const REQUESTER: i64 = 1;
const TICKET_REQUESTER: i64 = 2;
const STRANGER: i64 = 99;

fn at(minute: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, minute, 0)
        .single()
        .unwrap_or_default()
}

fn approval_id() -> Uuid {
    Uuid::from_u128(0x00c0_ffee)
}

fn spec(name: &str, approver_ids: &[i64], rule: Rule, min_approvals: Option<u32>) -> StepSpec {
    StepSpec {
        name: name.into(),
        approver_ids: approver_ids.to_vec(),
        rule,
        min_approvals,
    }
}

/// The request for the test approval with `steps`.
fn asked(steps: Vec<StepSpec>) -> ApprovalRequest {
    ApprovalRequest {
        id: approval_id(),
        ticket_id: 7,
        ticket_requester_id: TICKET_REQUESTER,
        requested_by: REQUESTER,
        steps,
        reason: Some("New laptop".into()),
        at: at(0),
    }
}

fn request(steps: Vec<StepSpec>) -> ApprovalCommand {
    ApprovalCommand::RequestApproval(asked(steps))
}

fn requested(steps: Vec<StepSpec>) -> ApprovalEvent {
    ApprovalEvent::ApprovalRequested(asked(steps))
}

/// Step 1: managers 10 and 11, any. Step 2: finance 20, 21, 22, quorum of 2.
fn two_steps() -> Vec<StepSpec> {
    vec![
        spec("Manager", &[10, 11], Rule::Any, None),
        spec("Finance", &[20, 21, 22], Rule::Quorum, Some(2)),
    ]
}

fn decide(approver_id: i64, decision: Decision, minute: u32) -> ApprovalCommand {
    ApprovalCommand::Decide {
        approver_id,
        decision,
        comment: None,
        at: at(minute),
    }
}

fn decided(step: usize, approver_id: i64, decision: Decision, minute: u32) -> ApprovalEvent {
    ApprovalEvent::DecisionRecorded {
        step,
        approver_id,
        decision,
        comment: None,
        at: at(minute),
    }
}

fn delegate(from_user_id: i64, to_user_id: i64, minute: u32) -> ApprovalCommand {
    ApprovalCommand::Delegate {
        from_user_id,
        to_user_id,
        comment: Some("On leave".into()),
        at: at(minute),
    }
}

fn delegated(step: usize, from_user_id: i64, to_user_id: i64, minute: u32) -> ApprovalEvent {
    ApprovalEvent::DecisionDelegated {
        step,
        from_user_id,
        to_user_id,
        comment: Some("On leave".into()),
        at: at(minute),
    }
}

fn cancel(by: i64, by_staff: bool) -> ApprovalCommand {
    ApprovalCommand::Cancel {
        by,
        by_staff,
        at: at(9),
    }
}

/// `approver_id` approves step `step` at `minute`, completing it.
fn completes(step: usize, approver_id: i64, minute: u32) -> Vec<ApprovalEvent> {
    vec![
        decided(step, approver_id, Decision::Approve, minute),
        ApprovalEvent::StepCompleted {
            step,
            at: at(minute),
        },
    ]
}

/// `approver_id` approves the last step `step` at `minute`, granting the approval.
fn grants(step: usize, approver_id: i64, minute: u32) -> Vec<ApprovalEvent> {
    let mut events = completes(step, approver_id, minute);
    events.push(ApprovalEvent::ApprovalGranted { at: at(minute) });
    events
}

/// Given `history`, `command` is refused with `error`.
fn refused(history: Vec<ApprovalEvent>, command: ApprovalCommand, error: ApprovalError) {
    ApprovalTest::with(())
        .given(history)
        .when(command)
        .then_expect_error(error);
}

fn fold(events: Vec<ApprovalEvent>) -> Approval {
    let mut approval = Approval::default();
    for event in events {
        approval.apply(event);
    }
    approval
}

// --- requesting ---

#[test]
fn requesting_an_approval_records_its_steps() {
    ApprovalTest::with(())
        .given_no_previous_events()
        .when(request(two_steps()))
        .then_expect_events(vec![requested(two_steps())]);
}

#[test]
fn min_approvals_is_dropped_where_the_rule_ignores_it() {
    ApprovalTest::with(())
        .given_no_previous_events()
        .when(request(vec![
            spec("Manager", &[10], Rule::Any, Some(5)),
            spec("Board", &[30, 31], Rule::All, Some(1)),
        ]))
        .then_expect_events(vec![requested(vec![
            spec("Manager", &[10], Rule::Any, None),
            spec("Board", &[30, 31], Rule::All, None),
        ])]);
}

#[test]
fn an_approval_cannot_be_requested_twice() {
    refused(
        vec![requested(two_steps())],
        request(two_steps()),
        ApprovalError::AlreadyExists,
    );
}

#[test]
fn commands_on_a_missing_approval_are_not_found() {
    refused(
        vec![],
        decide(10, Decision::Approve, 1),
        ApprovalError::NotFound,
    );
    refused(vec![], delegate(10, 12, 1), ApprovalError::NotFound);
    refused(vec![], cancel(REQUESTER, false), ApprovalError::NotFound);
}

fn invalid(steps: Vec<StepSpec>) -> String {
    let result = ApprovalTest::with(())
        .given_no_previous_events()
        .when(request(steps))
        .inspect_result();
    match result {
        Err(ApprovalError::InvalidSteps(message)) => message,
        other => panic!("expected InvalidSteps, got {other:?}"),
    }
}

#[test]
fn invalid_step_specs_are_refused_with_a_reason() {
    assert!(invalid(vec![]).contains("at least one step"));
    assert!(invalid(vec![spec("Manager", &[], Rule::Any, None)]).contains("at least one approver"));
    let dup = invalid(vec![
        spec("Manager", &[10], Rule::Any, None),
        spec("Finance", &[20, 21, 20], Rule::All, None),
    ]);
    assert!(
        dup.contains("step 2") && dup.contains("approver 20"),
        "{dup}"
    );
    assert!(
        invalid(vec![spec("Finance", &[20, 21], Rule::Quorum, None)]).contains("min_approvals")
    );
    assert!(
        invalid(vec![spec("Finance", &[20, 21], Rule::Quorum, Some(0))])
            .contains("between 1 and 2")
    );
    assert!(invalid(vec![spec("Finance", &[20, 21], Rule::Quorum, Some(3))]).contains("got 3"));
}

// --- rules ---

#[test]
fn any_the_first_approval_completes_the_step_and_the_last_grants() {
    ApprovalTest::with(())
        .given(vec![requested(vec![spec(
            "Manager",
            &[10, 11],
            Rule::Any,
            None,
        )])])
        .when(decide(11, Decision::Approve, 1))
        .then_expect_events(grants(0, 11, 1));
}

/// `steps` requested, then the first step approved by `approvers` in turn (minutes 1, 2, ...).
fn approved_by(steps: Vec<StepSpec>, approvers: &[i64]) -> Vec<ApprovalEvent> {
    let decisions = approvers
        .iter()
        .zip(1..)
        .map(|(&approver, minute)| decided(0, approver, Decision::Approve, minute));
    std::iter::once(requested(steps)).chain(decisions).collect()
}

#[test]
fn all_waits_for_every_approver() {
    let board = vec![spec("Board", &[30, 31, 32], Rule::All, None)];
    ApprovalTest::with(())
        .given(approved_by(board.clone(), &[30]))
        .when(decide(31, Decision::Approve, 2))
        .then_expect_events(vec![decided(0, 31, Decision::Approve, 2)]);
    ApprovalTest::with(())
        .given(approved_by(board, &[30, 31]))
        .when(decide(32, Decision::Approve, 3))
        .then_expect_events(grants(0, 32, 3));
}

#[test]
fn quorum_records_decisions_until_reached_then_completes_the_step() {
    let finance = vec![spec("Finance", &[20, 21, 22], Rule::Quorum, Some(2))];
    ApprovalTest::with(())
        .given(approved_by(finance.clone(), &[]))
        .when(decide(22, Decision::Approve, 1))
        .then_expect_events(vec![decided(0, 22, Decision::Approve, 1)]);
    ApprovalTest::with(())
        .given(approved_by(finance, &[22]))
        .when(decide(20, Decision::Approve, 2))
        .then_expect_events(grants(0, 20, 2));
}

#[test]
fn completing_a_middle_step_moves_on_without_granting() {
    ApprovalTest::with(())
        .given(vec![requested(two_steps())])
        .when(decide(10, Decision::Approve, 1))
        .then_expect_events(completes(0, 10, 1));
}

#[test]
fn a_two_step_flow_runs_in_order() {
    // A step-2 approver may not decide during step 1.
    refused(
        vec![requested(two_steps())],
        decide(21, Decision::Approve, 1),
        ApprovalError::NotYourTurn,
    );
    // Once step 1 is done, they may; the quorum of step 2 grants the approval.
    let history = vec![
        requested(two_steps()),
        decided(0, 10, Decision::Approve, 1),
        ApprovalEvent::StepCompleted { step: 0, at: at(1) },
        decided(1, 21, Decision::Approve, 2),
    ];
    ApprovalTest::with(())
        .given(history.clone())
        .when(decide(20, Decision::Approve, 3))
        .then_expect_events(grants(1, 20, 3));
    // A step-1 approver who is not on step 2 is no approver of the current step.
    refused(
        history,
        decide(11, Decision::Approve, 3),
        ApprovalError::NotAnApprover,
    );
}

#[test]
fn the_folded_state_follows_the_flow() {
    let mut events = vec![requested(two_steps())];
    let approval = fold(events.clone());
    assert!(approval.exists());
    assert_eq!(approval.status(), ApprovalStatus::Pending);
    assert_eq!(approval.current_step, 0);
    assert_eq!(approval.steps[0].status, StepStatus::Pending);
    assert_eq!(approval.steps[1].status, StepStatus::Waiting);
    assert_eq!(approval.created_at, Some(at(0)));

    events.extend([
        decided(0, 10, Decision::Approve, 1),
        ApprovalEvent::StepCompleted { step: 0, at: at(1) },
        decided(1, 21, Decision::Approve, 2),
        decided(1, 20, Decision::Approve, 3),
        ApprovalEvent::StepCompleted { step: 1, at: at(3) },
        ApprovalEvent::ApprovalGranted { at: at(3) },
    ]);
    let approval = fold(events);
    assert_eq!(approval.status(), ApprovalStatus::Approved);
    assert_eq!(approval.current_step, 1);
    assert!(approval
        .steps
        .iter()
        .all(|s| s.status == StepStatus::Approved));
    assert_eq!(
        approval.steps[1].decisions[0],
        StepDecision {
            approver_id: 21,
            decision: Decision::Approve,
            comment: None,
            decided_at: at(2),
        }
    );
    assert_eq!(approval.updated_at, Some(at(3)));
    assert_eq!(approval.finished_at, Some(at(3)));
    assert!(approval.waiting_on().is_empty());
}

// --- rejection ---

#[test]
fn one_rejection_rejects_the_approval() {
    ApprovalTest::with(())
        .given(vec![
            requested(vec![spec("Board", &[30, 31, 32], Rule::All, None)]),
            decided(0, 30, Decision::Approve, 1),
        ])
        .when(ApprovalCommand::Decide {
            approver_id: 31,
            decision: Decision::Reject,
            comment: Some("Too expensive".into()),
            at: at(2),
        })
        .then_expect_events(vec![
            ApprovalEvent::DecisionRecorded {
                step: 0,
                approver_id: 31,
                decision: Decision::Reject,
                comment: Some("Too expensive".into()),
                at: at(2),
            },
            ApprovalEvent::ApprovalRejected {
                step: 0,
                by: 31,
                at: at(2),
            },
        ]);
}

#[test]
fn after_a_rejection_nothing_is_pending() {
    let history = vec![
        requested(two_steps()),
        decided(0, 10, Decision::Reject, 1),
        ApprovalEvent::ApprovalRejected {
            step: 0,
            by: 10,
            at: at(1),
        },
    ];
    refused(
        history.clone(),
        decide(11, Decision::Approve, 2),
        ApprovalError::NotPending,
    );
    refused(
        history.clone(),
        delegate(11, 12, 2),
        ApprovalError::NotPending,
    );
    refused(
        history.clone(),
        cancel(REQUESTER, false),
        ApprovalError::NotPending,
    );

    let approval = fold(history);
    assert_eq!(approval.status(), ApprovalStatus::Rejected);
    assert_eq!(approval.current_step, 0);
    assert_eq!(approval.steps[0].status, StepStatus::Rejected);
    assert_eq!(approval.steps[1].status, StepStatus::Skipped);
}

// --- cancelling ---

fn cancelled(by: i64) -> ApprovalEvent {
    ApprovalEvent::ApprovalCancelled { by, at: at(9) }
}

#[test]
fn the_requester_the_ticket_requester_and_staff_may_cancel() {
    for (by, by_staff) in [(REQUESTER, false), (TICKET_REQUESTER, false), (50, true)] {
        ApprovalTest::with(())
            .given(vec![requested(two_steps())])
            .when(cancel(by, by_staff))
            .then_expect_events(vec![cancelled(by)]);
    }
}

#[test]
fn a_stranger_may_not_cancel() {
    refused(
        vec![requested(two_steps())],
        cancel(STRANGER, false),
        ApprovalError::NotAllowed,
    );
    // Not even an approver.
    refused(
        vec![requested(two_steps())],
        cancel(10, false),
        ApprovalError::NotAllowed,
    );
}

#[test]
fn a_cancelled_approval_takes_no_decision() {
    let history = vec![requested(two_steps()), cancelled(REQUESTER)];
    refused(
        history.clone(),
        decide(10, Decision::Approve, 10),
        ApprovalError::NotPending,
    );
    let approval = fold(history);
    assert_eq!(approval.status(), ApprovalStatus::Cancelled);
    assert!(approval
        .steps
        .iter()
        .all(|s| s.status == StepStatus::Skipped));
    assert!(approval.waiting_on().is_empty());
}

// --- delegation ---

#[test]
fn an_approver_may_delegate_and_the_delegate_decides() {
    let steps = vec![spec("Board", &[30, 31], Rule::All, None)];
    ApprovalTest::with(())
        .given(vec![requested(steps.clone())])
        .when(delegate(30, 40, 1))
        .then_expect_events(vec![delegated(0, 30, 40, 1)]);
    // The count of approvers stays two: both the delegate and 31 must approve.
    let history = vec![requested(steps), delegated(0, 30, 40, 1)];
    ApprovalTest::with(())
        .given(history.clone())
        .when(decide(40, Decision::Approve, 2))
        .then_expect_events(vec![decided(0, 40, Decision::Approve, 2)]);
    ApprovalTest::with(())
        .given(
            history
                .iter()
                .cloned()
                .chain([decided(0, 40, Decision::Approve, 2)])
                .collect(),
        )
        .when(decide(31, Decision::Approve, 3))
        .then_expect_events(grants(0, 31, 3));

    let approval = fold(history);
    let step = &approval.steps[0];
    assert_eq!(step.approver_ids, vec![40, 31]);
    assert_eq!(step.original_approver_ids(), vec![30, 31]);
    assert_eq!(
        step.delegations,
        vec![StepDelegation {
            from_user_id: 30,
            to_user_id: 40,
            comment: Some("On leave".into()),
            at: at(1),
        }]
    );
    assert!(approval.involves(30) && approval.involves(40));
}

#[test]
fn a_quorum_keeps_its_count_after_delegation() {
    let history = vec![
        requested(vec![spec("Finance", &[20, 21, 22], Rule::Quorum, Some(2))]),
        delegated(0, 20, 40, 1),
        decided(0, 40, Decision::Approve, 2),
    ];
    ApprovalTest::with(())
        .given(history)
        .when(decide(22, Decision::Approve, 3))
        .then_expect_events(grants(0, 22, 3));
}

#[test]
fn the_delegator_can_no_longer_decide() {
    refused(
        vec![requested(two_steps()), delegated(0, 10, 40, 1)],
        decide(10, Decision::Approve, 2),
        ApprovalError::Delegated,
    );
}

#[test]
fn a_decision_is_delegated_only_once() {
    let history = vec![requested(two_steps()), delegated(0, 10, 40, 1)];
    // The delegate may not hand it on.
    refused(
        history.clone(),
        delegate(40, 41, 2),
        ApprovalError::AlreadyDelegated,
    );
    // Nor may the delegator delegate again.
    refused(
        history,
        delegate(10, 41, 2),
        ApprovalError::AlreadyDelegated,
    );
}

#[test]
fn delegating_to_someone_already_on_the_step_is_refused() {
    refused(
        vec![requested(two_steps())],
        delegate(10, 11, 1),
        ApprovalError::InvalidDelegate,
    );
    refused(
        vec![requested(two_steps())],
        delegate(10, 10, 1),
        ApprovalError::InvalidDelegate,
    );
    // 11 took a delegation from nobody, but 10 handed theirs to 40: 40 is effective now.
    refused(
        vec![requested(two_steps()), delegated(0, 10, 40, 1)],
        delegate(11, 40, 2),
        ApprovalError::InvalidDelegate,
    );
    // Nor may a place go back to someone who delegated theirs away.
    refused(
        vec![requested(two_steps()), delegated(0, 10, 40, 1)],
        delegate(11, 10, 2),
        ApprovalError::InvalidDelegate,
    );
}

#[test]
fn only_undecided_approvers_of_the_current_step_may_delegate() {
    let steps = vec![
        spec("Board", &[30, 31], Rule::All, None),
        spec("Finance", &[20], Rule::Any, None),
    ];
    ApprovalTest::with(())
        .given(vec![
            requested(steps.clone()),
            decided(0, 30, Decision::Approve, 1),
        ])
        .when(delegate(30, 40, 2))
        .then_expect_error(ApprovalError::AlreadyDecided);
    refused(
        vec![requested(steps.clone())],
        delegate(20, 40, 1),
        ApprovalError::NotYourTurn,
    );
    refused(
        vec![requested(steps)],
        delegate(STRANGER, 40, 1),
        ApprovalError::NotAnApprover,
    );
}

// --- who may decide ---

#[test]
fn the_same_person_cannot_decide_twice() {
    ApprovalTest::with(())
        .given(vec![
            requested(vec![spec("Board", &[30, 31], Rule::All, None)]),
            decided(0, 30, Decision::Approve, 1),
        ])
        .when(decide(30, Decision::Reject, 2))
        .then_expect_error(ApprovalError::AlreadyDecided);
}

#[test]
fn a_non_approver_cannot_decide() {
    refused(
        vec![requested(two_steps())],
        decide(STRANGER, Decision::Approve, 1),
        ApprovalError::NotAnApprover,
    );
    // Neither the requester nor the ticket's requester is an approver by right.
    refused(
        vec![requested(two_steps())],
        decide(REQUESTER, Decision::Reject, 1),
        ApprovalError::NotAnApprover,
    );
}

// --- helpers and serialization ---

#[test]
fn waiting_on_lists_the_undecided_effective_approvers_of_the_current_step() {
    assert!(Approval::default().waiting_on().is_empty());
    assert_eq!(Approval::default().status(), ApprovalStatus::None);
    assert!(!Approval::default().exists());

    let steps = vec![
        spec("Board", &[30, 31, 32], Rule::All, None),
        spec("Finance", &[20, 21], Rule::Any, None),
    ];
    let mut events = vec![requested(steps)];
    assert_eq!(fold(events.clone()).waiting_on(), vec![30, 31, 32]);

    events.push(decided(0, 31, Decision::Approve, 1));
    events.push(delegated(0, 32, 40, 2));
    assert_eq!(fold(events.clone()).waiting_on(), vec![30, 40]);

    events.extend([
        decided(0, 30, Decision::Approve, 3),
        decided(0, 40, Decision::Approve, 4),
        ApprovalEvent::StepCompleted { step: 0, at: at(4) },
    ]);
    let approval = fold(events);
    assert_eq!(approval.current_step, 1);
    assert_eq!(approval.waiting_on(), vec![20, 21]);
    assert_eq!(approval.steps[1].status, StepStatus::Pending);
}

#[test]
fn events_round_trip_through_serde() {
    let events = vec![
        requested(two_steps()),
        decided(0, 10, Decision::Approve, 1),
        ApprovalEvent::StepCompleted { step: 0, at: at(1) },
        delegated(1, 20, 40, 2),
        ApprovalEvent::ApprovalGranted { at: at(3) },
        ApprovalEvent::ApprovalRejected {
            step: 1,
            by: 21,
            at: at(3),
        },
        cancelled(REQUESTER),
    ];
    for event in events {
        let json = serde_json::to_value(&event).unwrap_or_default();
        let back: Option<ApprovalEvent> = serde_json::from_value(json.clone()).ok();
        assert_eq!(back, Some(event.clone()), "{json}");
        assert_eq!(event.event_version(), "1.0");
        assert!(json.get(event.event_type()).is_some(), "{json}");
    }

    let json = serde_json::to_value(requested(two_steps())).unwrap_or_default();
    let step = &json["ApprovalRequested"]["steps"][1];
    assert_eq!(step["rule"], "quorum");
    assert_eq!(step["min_approvals"], 2);
    assert_eq!(
        serde_json::to_value(Decision::Reject).unwrap_or_default(),
        "reject"
    );
    assert_eq!(
        serde_json::to_value(StepStatus::Waiting).unwrap_or_default(),
        "waiting"
    );
}

#[test]
fn the_aggregate_round_trips_through_serde() {
    let approval = fold(vec![requested(two_steps()), delegated(0, 10, 40, 1)]);
    let json = serde_json::to_value(&approval).unwrap_or_default();
    let back: Option<Approval> = serde_json::from_value(json).ok();
    assert_eq!(back, Some(approval));
}

// --- the ticket side: what the approval process records on a ticket ---

mod ticket_side {
    use cqrs_es::test::TestFramework;

    use super::at;
    use crate::ticket::{Ticket, TicketCommand, TicketError, TicketEvent, TicketFields};
    use crate::types::ApprovalStatus::{self, Approved, Cancelled, Pending, Rejected};
    use crate::types::{Priority, TicketStatus, TicketType};
    use uuid::Uuid;

    type TicketTest = TestFramework<Ticket>;

    const FIRST: Uuid = Uuid::from_u128(1);
    const SECOND: Uuid = Uuid::from_u128(2);

    fn opened() -> TicketEvent {
        TicketEvent::TicketOpened {
            id: 7,
            requester_id: 1,
            fields: TicketFields {
                title: "Open port 443".into(),
                description: "For the new portal".into(),
                priority: Priority::Medium,
                ticket_type: TicketType::ChangeRequest,
                tags: vec![],
                item_ids: vec![],
            },
            at: at(0),
        }
    }

    fn recorded(approval_id: Uuid, status: ApprovalStatus, minute: u32) -> TicketEvent {
        TicketEvent::ApprovalRecorded {
            approval_id,
            status,
            at: at(minute),
        }
    }

    fn record(approval_id: Uuid, status: ApprovalStatus, minute: u32) -> TicketCommand {
        TicketCommand::RecordApproval {
            approval_id,
            status,
            at: at(minute),
        }
    }

    fn move_to(status: TicketStatus) -> TicketCommand {
        TicketCommand::ChangeStatus {
            status,
            reason: None,
            at: at(9),
        }
    }

    fn moved(from: TicketStatus, to: TicketStatus, minute: u32) -> TicketEvent {
        TicketEvent::TicketStatusChanged {
            from,
            to,
            reason: None,
            at: at(minute),
        }
    }

    /// Given `history`, the open ticket moves to `to`.
    fn leaves_open_for(history: Vec<TicketEvent>, to: TicketStatus) {
        TicketTest::with(())
            .given(history)
            .when(move_to(to))
            .then_expect_events(vec![moved(TicketStatus::Open, to, 9)]);
    }

    /// Given `history`, `command` records nothing.
    fn changes_nothing(history: Vec<TicketEvent>, command: TicketCommand) {
        TicketTest::with(())
            .given(history)
            .when(command)
            .then_expect_events(vec![]);
    }

    /// The opened ticket, then the approval states recorded on it in turn (minutes 1, 2, ...).
    fn after(outcomes: &[(Uuid, ApprovalStatus)]) -> Vec<TicketEvent> {
        let recorded = outcomes
            .iter()
            .zip(1..)
            .map(|(&(id, status), minute)| recorded(id, status, minute));
        std::iter::once(opened()).chain(recorded).collect()
    }

    #[test]
    fn a_rejected_approval_blocks_work_but_not_cancelling() {
        let history = after(&[(FIRST, Pending), (FIRST, Rejected)]);
        TicketTest::with(())
            .given(history.clone())
            .when(move_to(TicketStatus::InProgress))
            .then_expect_error(TicketError::ApprovalRequired(TicketStatus::InProgress));
        leaves_open_for(history, TicketStatus::Cancelled);
    }

    #[test]
    fn a_pending_approval_blocks_resolving_an_ongoing_ticket() {
        TicketTest::with(())
            .given(vec![
                opened(),
                moved(TicketStatus::Open, TicketStatus::InProgress, 1),
                recorded(FIRST, Pending, 2),
            ])
            .when(move_to(TicketStatus::Resolved))
            .then_expect_error(TicketError::ApprovalRequired(TicketStatus::Resolved));
    }

    #[test]
    fn a_new_approval_after_a_rejection_can_unblock_the_ticket() {
        TicketTest::with(())
            .given(after(&[(FIRST, Pending), (FIRST, Rejected)]))
            .when(record(SECOND, Pending, 3))
            .then_expect_events(vec![recorded(SECOND, Pending, 3)]);
        let granted = after(&[
            (FIRST, Pending),
            (FIRST, Rejected),
            (SECOND, Pending),
            (SECOND, Approved),
        ]);
        leaves_open_for(granted, TicketStatus::InProgress);
    }

    #[test]
    fn a_late_outcome_of_a_superseded_approval_changes_nothing() {
        let history = after(&[(FIRST, Pending), (FIRST, Rejected), (SECOND, Pending)]);
        changes_nothing(history, record(FIRST, Approved, 4));
    }

    #[test]
    fn a_cancelled_approval_no_longer_blocks() {
        let history = after(&[(FIRST, Pending), (FIRST, Cancelled)]);
        leaves_open_for(history, TicketStatus::InProgress);
    }

    #[test]
    fn repeating_a_final_state_is_a_no_op() {
        let history = after(&[(FIRST, Pending), (FIRST, Approved)]);
        changes_nothing(history, record(FIRST, Approved, 5));
    }
}

#[test]
fn a_finished_approval_cannot_be_cancelled_or_delegated() {
    let granted = vec![
        requested(vec![spec("Manager", &[10], Rule::Any, None)]),
        decided(0, 10, Decision::Approve, 1),
        ApprovalEvent::StepCompleted { step: 0, at: at(1) },
        ApprovalEvent::ApprovalGranted { at: at(1) },
    ];
    refused(
        granted.clone(),
        cancel(REQUESTER, true),
        ApprovalError::NotPending,
    );
    refused(
        granted.clone(),
        delegate(10, 40, 2),
        ApprovalError::NotPending,
    );
    refused(
        granted,
        decide(10, Decision::Approve, 2),
        ApprovalError::NotPending,
    );
}
