//! Given/when/then tests of the Ticket aggregate: its commands, its state machine and its events' wire form.

use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::types::{ApprovalStatus, Priority, TicketStatus, TicketType};

type TicketTest = TestFramework<Ticket>;

fn at(minute: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, minute, 0)
        .single()
        .unwrap_or_default()
}

fn fields() -> TicketFields {
    TicketFields {
        title: "Printer on fire".into(),
        description: "Third floor".into(),
        priority: Priority::High,
        ticket_type: TicketType::Incident,
        tags: vec!["printer".into()],
        item_ids: vec![],
    }
}

fn opened() -> TicketEvent {
    TicketEvent::TicketOpened {
        id: 7,
        requester_id: 1,
        fields: fields(),
        at: at(0),
    }
}

fn moved(from: TicketStatus, to: TicketStatus) -> TicketEvent {
    TicketEvent::TicketStatusChanged {
        from,
        to,
        reason: None,
        at: at(1),
    }
}

/// What moving an open ticket straight to closed is refused with.
fn open_to_closed_refused() -> TicketError {
    TicketError::IllegalTransition {
        from: TicketStatus::Open,
        to: TicketStatus::Closed,
        allowed: vec![TicketStatus::InProgress, TicketStatus::Cancelled],
    }
}

fn status(to: TicketStatus) -> TicketCommand {
    TicketCommand::ChangeStatus {
        status: to,
        reason: None,
        at: at(1),
    }
}

#[test]
fn opening_a_ticket_records_its_fields() {
    TicketTest::with(())
        .given_no_previous_events()
        .when(TicketCommand::OpenTicket {
            id: 7,
            requester_id: 1,
            fields: fields(),
            at: at(0),
        })
        .then_expect_events(vec![opened()]);
}

#[test]
fn a_ticket_cannot_be_opened_twice() {
    TicketTest::with(())
        .given(vec![opened()])
        .when(TicketCommand::OpenTicket {
            id: 7,
            requester_id: 1,
            fields: fields(),
            at: at(0),
        })
        .then_expect_error(TicketError::AlreadyExists);
}

#[test]
fn commands_on_a_missing_ticket_are_not_found() {
    TicketTest::with(())
        .given_no_previous_events()
        .when(status(TicketStatus::InProgress))
        .then_expect_error(TicketError::NotFound);
}

#[test]
fn update_records_only_the_fields_that_changed() {
    TicketTest::with(())
        .given(vec![opened()])
        .when(TicketCommand::UpdateTicket {
            asked: TicketChanges {
                title: Some("Printer on fire".into()),
                priority: Some(Priority::Critical),
                ticket_type: Some(TicketType::Incident),
                item_ids: Some(vec![3]),
                ..Default::default()
            },
            at: at(2),
        })
        .then_expect_events(vec![TicketEvent::TicketUpdated {
            changes: TicketChanges {
                priority: Some(Priority::Critical),
                item_ids: Some(vec![3]),
                ..Default::default()
            },
            at: at(2),
        }]);
}

#[test]
fn an_update_that_changes_nothing_records_nothing() {
    TicketTest::with(())
        .given(vec![opened()])
        .when(TicketCommand::UpdateTicket {
            asked: TicketChanges {
                title: Some("Printer on fire".into()),
                ..Default::default()
            },
            at: at(2),
        })
        .then_expect_events(vec![]);
}

/// The state machine written out by hand (DESIGN: `open → in_progress ⇄ pending → resolved →
/// closed`, `resolved → open`, any status but closed and cancelled → `cancelled`): each status
/// and the statuses it may move to, in the order a refusal names them.
const MOVES: &[(TicketStatus, &[TicketStatus])] = {
    use TicketStatus::*;
    &[
        (Open, &[InProgress, Cancelled]),
        (InProgress, &[Pending, Resolved, Cancelled]),
        (Pending, &[InProgress, Resolved, Cancelled]),
        (Resolved, &[Closed, Open, Cancelled]),
        (Closed, &[]),
        (Cancelled, &[]),
    ]
};

/// The history of a ticket that reached `status` along a legal path.
fn walked_to(status: TicketStatus) -> Vec<TicketEvent> {
    use TicketStatus::*;
    let path: &[TicketStatus] = match status {
        Open => &[],
        InProgress => &[InProgress],
        Pending => &[InProgress, Pending],
        Resolved => &[InProgress, Resolved],
        Closed => &[InProgress, Resolved, Closed],
        Cancelled => &[Cancelled],
    };
    let mut given = vec![opened()];
    let mut cur = Open;
    for step in path {
        given.push(moved(cur, *step));
        cur = *step;
    }
    given
}

#[test]
fn the_table_names_every_status_once() {
    let mut listed: Vec<TicketStatus> = MOVES.iter().map(|(from, _)| *from).collect();
    listed.sort();
    assert_eq!(listed, TicketStatus::ALL.to_vec());
}

#[test]
fn the_whole_state_machine_accepts_its_legal_moves() {
    for (from, allowed) in MOVES {
        for to in allowed.iter().copied() {
            TicketTest::with(())
                .given(walked_to(*from))
                .when(status(to))
                .then_expect_events(vec![moved(*from, to)]);
        }
    }
}

#[test]
fn an_illegal_move_is_refused_with_the_allowed_states() {
    TicketTest::with(())
        .given(vec![opened()])
        .when(status(TicketStatus::Closed))
        .then_expect_error(open_to_closed_refused());
}

#[test]
fn a_closed_ticket_goes_nowhere() {
    use TicketStatus::*;
    TicketTest::with(())
        .given(vec![
            opened(),
            moved(Open, InProgress),
            moved(InProgress, Resolved),
            moved(Resolved, Closed),
        ])
        .when(status(Open))
        .then_expect_error(TicketError::IllegalTransition {
            from: Closed,
            to: Open,
            allowed: vec![],
        });
}

/// The approval `Uuid::nil()` reached `status` at minute 1.
fn approval_recorded(status: ApprovalStatus) -> TicketEvent {
    TicketEvent::ApprovalRecorded {
        approval_id: Uuid::nil(),
        status,
        at: at(1),
    }
}

#[test]
fn a_pending_approval_blocks_in_progress_and_resolved() {
    TicketTest::with(())
        .given(vec![opened(), approval_recorded(ApprovalStatus::Pending)])
        .when(status(TicketStatus::InProgress))
        .then_expect_error(TicketError::ApprovalRequired(TicketStatus::InProgress));
}

#[test]
fn an_approved_ticket_may_start() {
    TicketTest::with(())
        .given(vec![
            opened(),
            approval_recorded(ApprovalStatus::Pending),
            approval_recorded(ApprovalStatus::Approved),
        ])
        .when(status(TicketStatus::InProgress))
        .then_expect_events(vec![moved(TicketStatus::Open, TicketStatus::InProgress)]);
}

#[test]
fn recording_the_same_approval_state_twice_is_a_no_op() {
    let approval_id = Uuid::nil();
    let pending = approval_recorded(ApprovalStatus::Pending);
    TicketTest::with(())
        .given(vec![opened(), pending])
        .when(TicketCommand::RecordApproval {
            approval_id,
            status: ApprovalStatus::Pending,
            at: at(3),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_late_pending_record_of_a_decided_approval_changes_nothing() {
    // A reconciliation read the approval while pending and wrote after its rejection.
    TicketTest::with(())
        .given(vec![
            opened(),
            approval_recorded(ApprovalStatus::Pending),
            approval_recorded(ApprovalStatus::Rejected),
        ])
        .when(TicketCommand::RecordApproval {
            approval_id: Uuid::nil(),
            status: ApprovalStatus::Pending,
            at: at(4),
        })
        .then_expect_events(vec![]);
}

#[test]
fn assigning_and_unassigning_records_the_previous_assignee() {
    TicketTest::with(())
        .given(vec![
            opened(),
            TicketEvent::TicketAssigned {
                assignee_id: Some(5),
                previous_assignee_id: None,
                at: at(1),
            },
        ])
        .when(TicketCommand::AssignTicket {
            assignee_id: None,
            at: at(2),
        })
        .then_expect_events(vec![TicketEvent::TicketAssigned {
            assignee_id: None,
            previous_assignee_id: Some(5),
            at: at(2),
        }]);
}

#[test]
fn a_cancelled_ticket_cannot_be_updated() {
    TicketTest::with(())
        .given(vec![
            opened(),
            moved(TicketStatus::Open, TicketStatus::Cancelled),
        ])
        .when(TicketCommand::AssignTicket {
            assignee_id: Some(2),
            at: at(2),
        })
        .then_expect_error(TicketError::Finished(TicketStatus::Cancelled));
}

#[test]
fn deleting_cancels_and_hides_the_ticket() {
    TicketTest::with(())
        .given(vec![opened()])
        .when(TicketCommand::DeleteTicket {
            reason: None,
            at: at(2),
        })
        .then_expect_events(vec![TicketEvent::TicketDeleted {
            from: TicketStatus::Open,
            reason: None,
            at: at(2),
        }]);
}

const COMMENT: Uuid = Uuid::from_u128(1);

/// Adding comment `COMMENT` at minute 4, as a top-level comment without mentions.
fn add_comment(author_id: i64, by_staff: bool, content: &str, is_internal: bool) -> TicketCommand {
    comment_then(author_id, by_staff, content, is_internal, None)
}

/// `add_comment`, moving the ticket as `then_status` says in the same command.
fn comment_then(
    author_id: i64,
    by_staff: bool,
    content: &str,
    is_internal: bool,
    then_status: Option<(TicketStatus, Option<String>)>,
) -> TicketCommand {
    TicketCommand::AddComment {
        comment_id: COMMENT,
        author_id,
        by_staff,
        content: content.into(),
        is_internal,
        parent_id: None,
        mentions: vec![],
        then_status,
        at: at(4),
    }
}

/// The `CommentAdded` event `add_comment` records.
fn comment_added(author_id: i64, content: &str, is_internal: bool) -> TicketEvent {
    TicketEvent::CommentAdded(PostedComment {
        comment_id: COMMENT,
        author_id,
        content: content.into(),
        is_internal,
        parent_id: None,
        mentions: vec![],
        at: at(4),
    })
}

#[test]
fn the_first_public_staff_reply_records_the_first_response() {
    TicketTest::with(())
        .given(vec![opened()])
        .when(add_comment(9, true, "On it", false))
        .then_expect_events(vec![
            comment_added(9, "On it", false),
            TicketEvent::FirstResponseRecorded {
                comment_id: COMMENT,
                responder_id: 9,
                at: at(4),
            },
        ]);
}

/// A staff reply that also moves the ticket to `status`.
fn reply_and_move(status: TicketStatus) -> TicketCommand {
    let reason = Some("Replaced the toner".into());
    comment_then(9, true, "Fixed: new toner", false, Some((status, reason)))
}

#[test]
fn a_reply_and_its_status_change_are_recorded_together() {
    TicketTest::with(())
        .given(walked_to(TicketStatus::InProgress))
        .when(reply_and_move(TicketStatus::Resolved))
        .then_expect_events(vec![
            comment_added(9, "Fixed: new toner", false),
            TicketEvent::FirstResponseRecorded {
                comment_id: COMMENT,
                responder_id: 9,
                at: at(4),
            },
            TicketEvent::TicketStatusChanged {
                from: TicketStatus::InProgress,
                to: TicketStatus::Resolved,
                reason: Some("Replaced the toner".into()),
                at: at(4),
            },
        ]);
    // A move the state machine refuses refuses the reply too: nothing is recorded.
    TicketTest::with(())
        .given(walked_to(TicketStatus::Open))
        .when(reply_and_move(TicketStatus::Closed))
        .then_expect_error(open_to_closed_refused());
}

#[test]
fn an_internal_note_is_not_a_first_response() {
    TicketTest::with(())
        .given(vec![opened()])
        .when(add_comment(9, true, "Looks like toner", true))
        .then_expect_events(vec![comment_added(9, "Looks like toner", true)]);
}

#[test]
fn an_edit_keeps_the_previous_text_and_a_reply_needs_a_known_parent() {
    let comment_id = COMMENT;
    let added = comment_added(1, "v1", false);
    TicketTest::with(())
        .given(vec![opened(), added.clone()])
        .when(TicketCommand::EditComment {
            comment_id,
            editor_id: 1,
            content: "v2".into(),
            mentions: vec![],
            at: at(5),
        })
        .then_expect_events(vec![TicketEvent::CommentEdited {
            comment_id,
            editor_id: 1,
            content: "v2".into(),
            previous_content: "v1".into(),
            is_internal: false,
            mentions: vec![],
            at: at(5),
        }]);
    TicketTest::with(())
        .given(vec![opened(), added])
        .when(TicketCommand::AddComment {
            comment_id: Uuid::from_u128(2),
            author_id: 1,
            by_staff: false,
            content: "reply".into(),
            is_internal: false,
            parent_id: Some(Uuid::from_u128(99)),
            mentions: vec![],
            then_status: None,
            at: at(6),
        })
        .then_expect_error(TicketError::ParentNotFound);
}

#[test]
fn a_deleted_comment_cannot_be_edited() {
    let comment_id = COMMENT;
    TicketTest::with(())
        .given(vec![
            opened(),
            comment_added(1, "v1", false),
            TicketEvent::CommentDeleted {
                comment_id,
                deleted_by: 1,
                is_internal: false,
                at: at(5),
            },
        ])
        .when(TicketCommand::EditComment {
            comment_id,
            editor_id: 1,
            content: "v2".into(),
            mentions: vec![],
            at: at(6),
        })
        .then_expect_error(TicketError::CommentNotFound);
}

#[test]
fn events_round_trip_through_json_with_type_as_the_wire_name() {
    let json = serde_json::to_value(opened()).expect("a TicketOpened event encodes");
    assert_eq!(json["TicketOpened"]["type"], "incident");
    let back: TicketEvent = serde_json::from_value(json).expect("a TicketOpened event decodes");
    assert_eq!(back, opened());
}

#[test]
fn an_attachment_added_event_keeps_its_stored_shape() {
    let stored = serde_json::json!({"AttachmentAdded": {
        "attachment_id": "00000000-0000-0000-0000-000000000007",
        "filename": "a.txt", "content_type": "text/plain", "size": 3,
        "sha256": "ab", "uploaded_by": 1, "at": "2026-01-05T09:01:00Z"}});
    let event: TicketEvent =
        serde_json::from_value(stored.clone()).expect("a stored AttachmentAdded decodes");
    assert_eq!(serde_json::to_value(&event).ok(), Some(stored));
}

#[test]
fn every_illegal_move_is_refused_naming_the_allowed_states() {
    for (from, allowed) in MOVES {
        for to in TicketStatus::ALL.iter().copied() {
            if to == *from || allowed.contains(&to) {
                continue;
            }
            TicketTest::with(())
                .given(walked_to(*from))
                .when(status(to))
                .then_expect_error(TicketError::IllegalTransition {
                    from: *from,
                    to,
                    allowed: allowed.to_vec(),
                });
        }
    }
}

/// Assign the ticket to agent 2.
fn assign_to_agent() -> TicketCommand {
    TicketCommand::AssignTicket {
        assignee_id: Some(2),
        at: at(1),
    }
}

#[test]
fn a_batch_records_every_command_in_order_on_the_state_the_earlier_ones_leave() {
    let comment_id = Uuid::nil();
    TicketTest::with(())
        .given(vec![opened()])
        .when(TicketCommand::Batch(vec![
            assign_to_agent(),
            status(TicketStatus::InProgress),
            TicketCommand::AddComment {
                comment_id,
                author_id: 2,
                by_staff: true,
                content: "On it".into(),
                is_internal: false,
                parent_id: None,
                mentions: vec![],
                then_status: None,
                at: at(1),
            },
            // Resolved is only reachable from in_progress: the status change above counts.
            status(TicketStatus::Resolved),
        ]))
        .then_expect_events(vec![
            TicketEvent::TicketAssigned {
                assignee_id: Some(2),
                previous_assignee_id: None,
                at: at(1),
            },
            moved(TicketStatus::Open, TicketStatus::InProgress),
            TicketEvent::CommentAdded(PostedComment {
                comment_id,
                author_id: 2,
                content: "On it".into(),
                is_internal: false,
                parent_id: None,
                mentions: vec![],
                at: at(1),
            }),
            TicketEvent::FirstResponseRecorded {
                comment_id,
                responder_id: 2,
                at: at(1),
            },
            moved(TicketStatus::InProgress, TicketStatus::Resolved),
        ]);
}

#[test]
fn a_batch_with_one_refused_command_records_nothing() {
    TicketTest::with(())
        .given(vec![opened()])
        .when(TicketCommand::Batch(vec![
            assign_to_agent(),
            status(TicketStatus::Closed),
        ]))
        .then_expect_error(open_to_closed_refused());
}
