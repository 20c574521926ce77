//! The approvals read model (`rm_approvals`) and the approvers' inbox (`rm_approval_inbox`).
//!
//! A batch is folded in memory per approval with the aggregate's own `apply` over the
//! approval's events in the log (so the read model can never disagree with the write side),
//! then written as the read model's own row type with one upsert; the inbox rows of every
//! touched approval are replaced by the steps now waiting on each user.

pub mod queries;

use std::collections::BTreeMap;

use aggregates::approval::{Approval, ApprovalEvent};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Serialize;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::batch::write_json_rows;
use crate::log::StoredEvent;
use crate::runtime::{ApplyError, Tables};

/// The `approvals` projection.
pub struct ApprovalsProjection;

impl ApprovalsProjection {
    /// The checkpoint name.
    pub const NAME: &'static str = "approvals";
}

/// One row of `rm_approvals`: an approval as the API shows it, plus who may see it.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct ApprovalRow {
    pub id: Uuid,
    pub ticket_id: i64,
    pub ticket_requester_id: i64,
    pub requested_by: i64,
    /// `pending`, `approved`, `rejected` or `cancelled`.
    pub status: String,
    pub current_step: i32,
    /// Everyone besides staff who may see the approval (see [`participants`]).
    pub participant_ids: Vec<i64>,
    pub reason: Option<String>,
    /// The steps as responses show them: name, rule, approvers, decisions, delegations.
    pub steps: serde_json::Value,
    /// Who the current step still waits on (empty once finished).
    pub waiting_on: Vec<i64>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Columns of `rm_approvals` in the order of [`ApprovalRow`].
pub const APPROVAL_COLUMNS: &str = "id, ticket_id, ticket_requester_id, requested_by, status, \
    current_step, participant_ids, reason, steps, waiting_on, version, created_at, updated_at, \
    finished_at";

/// One row of `rm_approval_inbox`, as written.
#[derive(Debug, Serialize)]
struct InboxRow {
    user_id: i64,
    approval_id: Uuid,
    ticket_id: i64,
    step: i32,
    step_name: String,
    delegated_from: Option<i64>,
    since: DateTime<Utc>,
}

/// Everyone besides staff who may see `approval`: its requester, the ticket's requester,
/// and every approver of every step, delegators included. Sorted, without duplicates.
pub fn participants(approval: &Approval) -> Vec<i64> {
    let mut ids = vec![approval.requested_by, approval.ticket_requester_id];
    for step in &approval.steps {
        ids.extend(step.approver_ids.iter().copied());
        ids.extend(step.delegations.iter().map(|d| d.from_user_id));
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// When the current step of `approval` started: its request for the first step, else the
/// last decision of the step before (the one that completed it).
fn step_started(approval: &Approval) -> Option<DateTime<Utc>> {
    match approval.current_step.checked_sub(1) {
        None => approval.created_at,
        Some(previous) => approval
            .steps
            .get(previous)
            .and_then(|s| s.decisions.iter().map(|d| d.decided_at).max())
            .or(approval.created_at),
    }
}

/// The inbox rows of `approval`: one per user its current step waits on.
fn inbox_rows(id: Uuid, approval: &Approval) -> Vec<InboxRow> {
    let Some(step) = approval.current() else {
        return Vec::new();
    };
    let started = step_started(approval).unwrap_or_default();
    approval
        .waiting_on()
        .into_iter()
        .map(|user_id| {
            let delegation = step.delegations.iter().find(|d| d.to_user_id == user_id);
            InboxRow {
                user_id,
                approval_id: id,
                ticket_id: approval.ticket_id,
                step: approval.current_step as i32,
                step_name: step.name.clone(),
                delegated_from: delegation.map(|d| d.from_user_id),
                since: delegation.map_or(started, |d| d.at.max(started)),
            }
        })
        .collect()
}

fn unwritable(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Poison {
        position: -1,
        reason: e.to_string(),
    }
}

fn row_of(id: Uuid, approval: &Approval, version: i64) -> Result<ApprovalRow, ApplyError> {
    let created_at = approval.created_at.ok_or_else(|| ApplyError::Poison {
        position: -1,
        reason: format!("approval {id} has events but was never requested"),
    })?;
    Ok(ApprovalRow {
        id,
        ticket_id: approval.ticket_id,
        ticket_requester_id: approval.ticket_requester_id,
        requested_by: approval.requested_by,
        status: approval.status().as_str().into(),
        current_step: approval.current_step as i32,
        participant_ids: participants(approval),
        reason: approval.reason.clone(),
        steps: serde_json::to_value(&approval.steps).map_err(unwritable)?,
        waiting_on: approval.waiting_on(),
        version,
        created_at,
        updated_at: approval.updated_at.unwrap_or(created_at),
        finished_at: approval.finished_at,
    })
}

/// The approvals a batch touches, each with the newest sequence of the batch (an event
/// that cannot be decoded stops the projection at its position).
fn touched(events: &[StoredEvent]) -> Result<BTreeMap<String, i64>, ApplyError> {
    let mut upto = BTreeMap::new();
    for e in events.iter().filter(|e| e.aggregate_type == "approval") {
        crate::batch::approval_event(e)?;
        let newest = upto.entry(e.aggregate_id.clone()).or_insert(e.sequence);
        *newest = (*newest).max(e.sequence);
    }
    Ok(upto)
}

/// Folds each touched approval from its events in the log, up to the batch's newest one.
async fn fold_from_log(
    conn: &mut PgConnection,
    upto: &BTreeMap<String, i64>,
) -> Result<BTreeMap<Uuid, (Approval, i64)>, ApplyError> {
    let ids: Vec<&String> = upto.keys().collect();
    let sequences: Vec<i64> = upto.values().copied().collect();
    let mut events: Vec<(String, i64, String, serde_json::Value)> = sqlx::query_as(
        "select e.aggregate_id, e.sequence, e.event_type, e.payload
           from events e join unnest($1::text[], $2::bigint[]) as t(id, upto)
             on e.aggregate_id = t.id and e.sequence <= t.upto
          where e.aggregate_type = 'approval'
          order by e.aggregate_id, e.sequence",
    )
    .bind(&ids)
    .bind(&sequences)
    .fetch_all(&mut *conn)
    .await?;
    let mut payloads: Vec<&mut serde_json::Value> = events.iter_mut().map(|e| &mut e.3).collect();
    crate::log::open_values(&mut *conn, &mut payloads).await?;
    let mut folded: BTreeMap<Uuid, (Approval, i64)> = BTreeMap::new();
    for (aggregate_id, sequence, event_type, payload) in events {
        let id: Uuid = aggregate_id.parse().map_err(unwritable)?;
        let event: ApprovalEvent = serde_json::from_value(payload)
            .map_err(|err| unwritable(format!("approval {id}: undecodable {event_type}: {err}")))?;
        let entry = folded.entry(id).or_insert_with(|| (Approval::default(), 0));
        entry.0.apply(event);
        entry.1 = sequence;
    }
    Ok(folded)
}

async fn write_approvals(
    conn: &mut PgConnection,
    rm: &str,
    rows: &[ApprovalRow],
) -> Result<(), ApplyError> {
    let sql = format!(
        "insert into {rm} ({APPROVAL_COLUMNS})
         select {APPROVAL_COLUMNS}
           from jsonb_to_recordset($1) as r(
                id uuid, ticket_id bigint, ticket_requester_id bigint, requested_by bigint,
                status text, current_step integer, participant_ids bigint[], reason text,
                steps jsonb, waiting_on bigint[], version bigint, created_at timestamptz,
                updated_at timestamptz, finished_at timestamptz)
         on conflict (id) do update set
            ticket_id = excluded.ticket_id, ticket_requester_id = excluded.ticket_requester_id,
            requested_by = excluded.requested_by, status = excluded.status,
            current_step = excluded.current_step, participant_ids = excluded.participant_ids,
            reason = excluded.reason, steps = excluded.steps, waiting_on = excluded.waiting_on,
            version = excluded.version, created_at = excluded.created_at,
            updated_at = excluded.updated_at, finished_at = excluded.finished_at"
    );
    write_json_rows(conn, rows, &sql).await
}

/// Replaces the inbox rows of the approvals `ids` by `rows`.
async fn write_inbox(
    conn: &mut PgConnection,
    inbox: &str,
    ids: &[Uuid],
    rows: &[InboxRow],
) -> Result<(), ApplyError> {
    sqlx::query(&format!("delete from {inbox} where approval_id = any($1)"))
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    let sql = format!(
        "insert into {inbox} (user_id, approval_id, ticket_id, step, step_name, delegated_from, since)
         select user_id, approval_id, ticket_id, step, step_name, delegated_from, since
           from jsonb_to_recordset($1) as r(
                user_id bigint, approval_id uuid, ticket_id bigint, step integer,
                step_name text, delegated_from bigint, since timestamptz)"
    );
    write_json_rows(conn, rows, &sql).await
}

async fn apply_approvals(
    conn: &mut PgConnection,
    events: &[StoredEvent],
    tables: &Tables,
) -> Result<(), ApplyError> {
    let upto = touched(events)?;
    if upto.is_empty() {
        return Ok(());
    }
    let folded = fold_from_log(conn, &upto).await?;
    let mut rows = Vec::with_capacity(folded.len());
    let mut inbox = Vec::new();
    for (id, (approval, version)) in &folded {
        rows.push(row_of(*id, approval, *version)?);
        inbox.extend(inbox_rows(*id, approval));
    }
    let ids: Vec<Uuid> = folded.keys().copied().collect();
    write_approvals(conn, &tables.name("rm_approvals"), &rows).await?;
    write_inbox(conn, &tables.name("rm_approval_inbox"), &ids, &inbox).await
}

/// What an erased person wrote on approvals (the reason they gave, their decisions' and
/// delegations' comments) reads `"[erased]"`.
async fn erase_person(
    conn: &mut PgConnection,
    person: i64,
    tables: &Tables,
) -> Result<(), ApplyError> {
    let rm = tables.name("rm_approvals");
    sqlx::query(&format!(
        "update {rm} set reason = $2 where requested_by = $1 and reason <> ''"
    ))
    .bind(person)
    .bind(privacy::ERASED)
    .execute(&mut *conn)
    .await?;
    let rows: Vec<(Uuid, serde_json::Value)> = sqlx::query_as(&format!(
        "select id, steps from {rm} where $1 = any(participant_ids)"
    ))
    .bind(person)
    .fetch_all(&mut *conn)
    .await?;
    let mut ids = Vec::new();
    let mut all_steps = Vec::new();
    for (id, mut steps) in rows {
        if redact_steps(&mut steps, person) {
            ids.push(id);
            all_steps.push(steps);
        }
    }
    if !ids.is_empty() {
        sqlx::query(&format!(
            "update {rm} r set steps = u.steps
               from unnest($1::uuid[], $2::jsonb[]) as u(id, steps) where r.id = u.id"
        ))
        .bind(&ids)
        .bind(&all_steps)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Redacts `person`'s comments in an approval's steps; whether anything changed.
fn redact_steps(steps: &mut serde_json::Value, person: i64) -> bool {
    use serde_json::Value;
    let mut changed = false;
    for step in steps.as_array_mut().into_iter().flatten() {
        for (list, who) in [
            ("decisions", "approver_id"),
            ("delegations", "from_user_id"),
        ] {
            let entries = step.get_mut(list).and_then(Value::as_array_mut);
            for entry in entries.into_iter().flatten() {
                if entry.get(who).and_then(Value::as_i64) != Some(person) {
                    continue;
                }
                if let Some(c) = entry
                    .get_mut("comment")
                    .filter(|c| c.as_str().is_some_and(|s| !s.is_empty()))
                {
                    *c = Value::String(privacy::ERASED.into());
                    changed = true;
                }
            }
        }
    }
    changed
}

crate::read_model!(
    ApprovalsProjection,
    ["rm_approvals", "rm_approval_inbox"],
    apply_approvals,
    erase = erase_person,
    reads = ["approval"]
);

#[cfg(test)]
mod tests {
    use aggregates::approval::{ApprovalRequest, Decision, Rule, StepSpec};
    use chrono::TimeZone;

    use super::*;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 2, 1, 10, minute, 0)
            .single()
            .unwrap_or_default()
    }

    fn fold(events: Vec<ApprovalEvent>) -> Approval {
        let mut approval = Approval::default();
        for e in events {
            approval.apply(e);
        }
        approval
    }

    fn requested() -> ApprovalEvent {
        ApprovalEvent::ApprovalRequested(ApprovalRequest {
            id: Uuid::nil(),
            ticket_id: 1001,
            ticket_requester_id: 5,
            requested_by: 6,
            steps: vec![
                StepSpec {
                    name: "Manager".into(),
                    approver_ids: vec![10, 11],
                    rule: Rule::All,
                    min_approvals: None,
                },
                StepSpec {
                    name: "Finance".into(),
                    approver_ids: vec![20],
                    rule: Rule::Any,
                    min_approvals: None,
                },
            ],
            reason: None,
            at: at(0),
        })
    }

    #[test]
    fn the_inbox_follows_the_current_step_and_delegations() {
        let mut events = vec![requested()];
        let rows = inbox_rows(Uuid::nil(), &fold(events.clone()));
        assert_eq!(
            rows.iter().map(|r| r.user_id).collect::<Vec<_>>(),
            vec![10, 11]
        );
        assert!(rows.iter().all(|r| r.step == 0 && r.since == at(0)));

        events.push(ApprovalEvent::DecisionDelegated {
            step: 0,
            from_user_id: 11,
            to_user_id: 40,
            comment: None,
            at: at(1),
        });
        events.push(ApprovalEvent::DecisionRecorded {
            step: 0,
            approver_id: 10,
            decision: Decision::Approve,
            comment: None,
            at: at(2),
        });
        let rows = inbox_rows(Uuid::nil(), &fold(events.clone()));
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].user_id, rows[0].delegated_from, rows[0].since),
            (40, Some(11), at(1))
        );

        events.push(ApprovalEvent::DecisionRecorded {
            step: 0,
            approver_id: 40,
            decision: Decision::Approve,
            comment: None,
            at: at(3),
        });
        events.push(ApprovalEvent::StepCompleted { step: 0, at: at(3) });
        let approval = fold(events.clone());
        let rows = inbox_rows(Uuid::nil(), &approval);
        assert_eq!(
            rows.iter()
                .map(|r| (r.user_id, r.step, r.since))
                .collect::<Vec<_>>(),
            vec![(20, 1, at(3))]
        );
        assert_eq!(participants(&approval), vec![5, 6, 10, 11, 20, 40]);

        events.push(ApprovalEvent::ApprovalCancelled { by: 6, at: at(4) });
        assert!(inbox_rows(Uuid::nil(), &fold(events)).is_empty());
    }
}
