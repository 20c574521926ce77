//! The `reports` read model: one facts row per ticket (`rm_report_tickets`), small aggregate
//! tables kept up to date incrementally for the dashboard (`rm_report_counts`,
//! `rm_report_daily`, `rm_report_backlog`), the approvals (`rm_report_approvals`) and which
//! SLA policy versions computed it (`rm_report_meta`).
//!
//! **Times** are the events' own `at` (what the command said), never `recorded_at`, truncated to
//! microseconds.
//!
//! **The SLA policy** is read from `sla_policies` (the newest row, else
//! [`SlaPolicy::default`]) at the start of every batch and applied to the events of that batch.
//! Changing the policy therefore affects events applied from then on; to recompute the whole
//! past under the new policy, rebuild the projection (`ticketd projections rebuild reports`),
//! which replays every event with the policy in force at the time of the rebuild.
//!
//! **The SLA clock** of each ticket is [`crate::sla::clock`], the same clock the ticket list
//! runs: a running target has a `*_due_at`, a missed one a `*_breached_at`; `sla_due_at` is the
//! earliest running due time unless a target is already missed.

pub mod queries;

use std::collections::{BTreeMap, HashMap};

use aggregates::approval::{ApprovalEvent, ApprovalRequest};
use aggregates::ticket::TicketEvent;
use aggregates::TicketStatus;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::batch::{approval_event, ticket_event};
use crate::log::StoredEvent;
use crate::runtime::{ApplyError, Tables};
pub use crate::sla::clock::{current_policy, PolicyContext, OPEN_STATUSES};
use crate::sla::clock::{Phase, SlaClock};
use crate::sla::policy::US;

/// The facts of one ticket (a row of `rm_report_tickets`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, FromRow)]
pub struct ReportRow {
    pub id: i64,
    pub title: String,
    pub status: String,
    pub priority: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub ticket_type: String,
    pub requester_id: i64,
    pub assignee_id: Option<i64>,
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// When the ticket was closed or cancelled.
    pub closed_at: Option<DateTime<Utc>>,
    /// Wall-clock seconds from creation to the first response.
    pub first_response_seconds: Option<i64>,
    /// Wall-clock seconds from creation to the (current) resolution.
    pub resolution_seconds: Option<i64>,
    /// Time spent `pending` (completed periods), microseconds and whole seconds.
    pub paused_us: i64,
    pub paused_seconds: i64,
    pub pending_since: Option<DateTime<Utc>>,
    pub first_response_business_seconds: Option<i64>,
    pub resolution_business_seconds: Option<i64>,
    /// The earliest due time of a running target, unless a target is already missed.
    pub sla_due_at: Option<DateTime<Utc>>,
    pub reopened: i32,
    /// The SLA clock (running state, due and missed times, policy version).
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub clock: SlaClock,
}

/// Columns of `rm_report_tickets` in the order of [`ReportRow`].
pub const REPORT_COLUMNS: &str = "id, title, status, priority, type, requester_id, assignee_id, \
    deleted, created_at, updated_at, first_response_at, resolved_at, closed_at, \
    first_response_seconds, resolution_seconds, paused_us, paused_seconds, pending_since, \
    sla_running_since, sla_elapsed_us, first_response_business_seconds, \
    resolution_business_seconds, first_response_due_at, resolution_due_at, sla_due_at, \
    first_response_breached_at, resolution_breached_at, reopened, policy_version";

const RECORD_TYPES: &str = "id bigint, title text, status text, priority text, type text, \
    requester_id bigint, assignee_id bigint, deleted boolean, created_at timestamptz, \
    updated_at timestamptz, first_response_at timestamptz, resolved_at timestamptz, \
    closed_at timestamptz, first_response_seconds bigint, resolution_seconds bigint, \
    paused_us bigint, paused_seconds bigint, pending_since timestamptz, \
    sla_running_since timestamptz, sla_elapsed_us bigint, first_response_business_seconds bigint, \
    resolution_business_seconds bigint, first_response_due_at timestamptz, \
    resolution_due_at timestamptz, sla_due_at timestamptz, first_response_breached_at timestamptz, \
    resolution_breached_at timestamptz, reopened integer, policy_version bigint";

fn is_open(status: &str) -> bool {
    OPEN_STATUSES.contains(&status)
}

fn micros_between(a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    (b - a).num_microseconds().unwrap_or(0).max(0)
}

fn seconds_between(a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    (b - a).num_seconds().max(0)
}

impl ReportRow {
    /// Settles the clock after an event at `t` changed the row (see [`SlaClock::settle`]).
    fn settle(&mut self, t: DateTime<Utc>, ctx: &PolicyContext, reevaluate: bool) {
        let (status, priority) = (&self.status, &self.priority);
        let phase = Phase::of(status, self.deleted, priority, self.first_response_at);
        self.clock.settle(&phase, t, ctx, reevaluate);
        self.sla_due_at = self.clock.next_due();
    }

    fn leave_pending(&mut self, t: DateTime<Utc>) {
        if let Some(since) = self.pending_since.take() {
            self.paused_us += micros_between(since, t);
            self.paused_seconds = self.paused_us / US;
        }
    }
}

/// Folds one ticket event into its facts row (creating it on `TicketOpened`). Events that do
/// not change a report (comments, attachments, approvals) leave the row as it is.
pub fn fold(row: Option<ReportRow>, event: &TicketEvent, ctx: &PolicyContext) -> Option<ReportRow> {
    let at = event.at().trunc_subsecs(6);
    if let TicketEvent::TicketOpened {
        id,
        requester_id,
        fields,
        ..
    } = event
    {
        return Some(ReportRow::opened(*id, *requester_id, fields, at, ctx));
    }
    let mut row = row?;
    let relevant = event.moves_the_sla_clock();
    if !relevant {
        return Some(row);
    }
    // Never let the clock run backwards, whatever times the commands carried.
    let t = at.max(row.updated_at);
    row.clock.advance(t, &ctx.calendar);
    row.updated_at = t;
    let mut reevaluate = false;
    match event {
        TicketEvent::TicketUpdated { changes, .. } => {
            if let Some(title) = &changes.title {
                row.title = title.clone();
            }
            if let Some(kind) = changes.ticket_type {
                row.ticket_type = kind.as_str().into();
            }
            if let Some(p) = changes.priority {
                reevaluate = p.as_str() != row.priority;
                row.priority = p.as_str().into();
            }
        }
        TicketEvent::TicketStatusChanged { to, .. } => row.move_to(*to, t),
        TicketEvent::TicketAssigned { assignee_id, .. } => row.assignee_id = *assignee_id,
        TicketEvent::TicketDeleted { .. } => {
            if row.status == TicketStatus::Pending.as_str() {
                row.leave_pending(t);
            }
            row.status = TicketStatus::Cancelled.as_str().into();
            row.deleted = true;
            row.closed_at.get_or_insert(t);
        }
        TicketEvent::FirstResponseRecorded { .. } if row.first_response_at.is_none() => {
            row.first_response_at = Some(t);
            row.first_response_seconds = Some(seconds_between(row.created_at, t));
            row.first_response_business_seconds = Some(row.clock.sla_elapsed_us / US);
        }
        _ => {}
    }
    row.settle(t, ctx, reevaluate);
    Some(row)
}

impl ReportRow {
    /// The facts of a ticket just opened, its SLA clock running.
    fn opened(
        id: i64,
        requester_id: i64,
        fields: &aggregates::ticket::TicketFields,
        at: DateTime<Utc>,
        ctx: &PolicyContext,
    ) -> Self {
        let mut row = ReportRow {
            id,
            title: fields.title.clone(),
            status: TicketStatus::Open.as_str().into(),
            priority: fields.priority.as_str().into(),
            ticket_type: fields.ticket_type.as_str().into(),
            requester_id,
            assignee_id: None,
            deleted: false,
            created_at: at,
            updated_at: at,
            first_response_at: None,
            resolved_at: None,
            closed_at: None,
            first_response_seconds: None,
            resolution_seconds: None,
            paused_us: 0,
            paused_seconds: 0,
            pending_since: None,
            first_response_business_seconds: None,
            resolution_business_seconds: None,
            sla_due_at: None,
            reopened: 0,
            clock: SlaClock {
                sla_running_since: Some(at),
                ..SlaClock::default()
            },
        };
        row.settle(at, ctx, false);
        row
    }

    /// A status change at `t`: pauses, resolutions, closes and reopenings.
    fn move_to(&mut self, to: TicketStatus, t: DateTime<Utc>) {
        if self.status == TicketStatus::Pending.as_str() {
            self.leave_pending(t);
        }
        match to {
            TicketStatus::Pending => self.pending_since = Some(t),
            TicketStatus::Resolved => {
                self.resolved_at = Some(t);
                self.resolution_seconds = Some(seconds_between(self.created_at, t));
                self.resolution_business_seconds = Some(self.clock.sla_elapsed_us / US);
            }
            TicketStatus::Closed | TicketStatus::Cancelled => self.closed_at = Some(t),
            TicketStatus::Open | TicketStatus::InProgress => {}
        }
        if matches!(
            to,
            TicketStatus::Open | TicketStatus::InProgress | TicketStatus::Pending
        ) && self.resolved_at.is_some()
        {
            self.reopened += 1;
            self.resolved_at = None;
            self.resolution_seconds = None;
            self.resolution_business_seconds = None;
        }
        self.status = to.as_str().into();
    }
}

/// The key of `rm_report_counts`.
type CountKey = (String, String, String, i64);

/// The counters of one `rm_report_counts` row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct CountValues([i64; 7]);

/// The counters of one `rm_report_daily` row: created, resolved, first responses, missed
/// first responses, missed resolutions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct DailyValues([i64; 5]);

/// What one facts row adds to the aggregate tables.
#[derive(Debug, Default)]
struct Contribution {
    count: Option<(CountKey, CountValues)>,
    backlog: Option<NaiveDate>,
    daily: Vec<(NaiveDate, DailyValues)>,
}

fn contribution(row: &ReportRow) -> Contribution {
    if row.deleted {
        return Contribution::default();
    }
    let open = is_open(&row.status);
    let flag = |b: bool| i64::from(open && b);
    let count = CountValues([
        1,
        flag(row.clock.first_response_due_at.is_some()),
        flag(row.clock.first_response_breached_at.is_some()),
        flag(row.clock.resolution_due_at.is_some()),
        flag(row.clock.resolution_breached_at.is_some()),
        flag(row.sla_due_at.is_some()),
        flag(
            row.clock.first_response_breached_at.is_some()
                || row.clock.resolution_breached_at.is_some(),
        ),
    ]);
    let mut daily = vec![(row.created_at.date_naive(), DailyValues([1, 0, 0, 0, 0]))];
    if let Some(r) = row.resolved_at {
        let missed = i64::from(row.clock.resolution_breached_at.is_some());
        daily.push((r.date_naive(), DailyValues([0, 1, 0, 0, missed])));
    }
    if let Some(f) = row.first_response_at {
        let missed = i64::from(row.clock.first_response_breached_at.is_some());
        daily.push((f.date_naive(), DailyValues([0, 0, 1, missed, 0])));
    }
    Contribution {
        count: Some((
            (
                row.status.clone(),
                row.priority.clone(),
                row.ticket_type.clone(),
                row.assignee_id.unwrap_or(0),
            ),
            count,
        )),
        backlog: open.then(|| row.created_at.date_naive()),
        daily,
    }
}

/// Signed changes to the aggregate tables of one batch.
#[derive(Debug, Default)]
struct Deltas {
    counts: HashMap<CountKey, CountValues>,
    backlog: BTreeMap<NaiveDate, i64>,
    daily: BTreeMap<NaiveDate, DailyValues>,
}

impl Deltas {
    fn add(&mut self, c: Contribution, sign: i64) {
        if let Some((key, values)) = c.count {
            let e = self.counts.entry(key).or_default();
            for (a, b) in e.0.iter_mut().zip(values.0) {
                *a += sign * b;
            }
        }
        if let Some(day) = c.backlog {
            *self.backlog.entry(day).or_default() += sign;
        }
        for (day, values) in c.daily {
            let e = self.daily.entry(day).or_default();
            for (a, b) in e.0.iter_mut().zip(values.0) {
                *a += sign * b;
            }
        }
    }
}

/// One row of `rm_report_approvals`.
#[derive(Debug, Clone, PartialEq, FromRow)]
struct ApprovalRow {
    id: Uuid,
    ticket_id: i64,
    status: String,
    requested_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
}

fn fold_approval(row: Option<ApprovalRow>, id: Uuid, event: &ApprovalEvent) -> Option<ApprovalRow> {
    let at = event.at().trunc_subsecs(6);
    match event {
        ApprovalEvent::ApprovalRequested(ApprovalRequest { ticket_id, .. }) => Some(ApprovalRow {
            id,
            ticket_id: *ticket_id,
            status: "pending".into(),
            requested_at: at,
            decided_at: None,
        }),
        ApprovalEvent::ApprovalGranted { .. }
        | ApprovalEvent::ApprovalRejected { .. }
        | ApprovalEvent::ApprovalCancelled { .. } => row.map(|mut r| {
            r.status = match event {
                ApprovalEvent::ApprovalGranted { .. } => "approved",
                ApprovalEvent::ApprovalRejected { .. } => "rejected",
                _ => "cancelled",
            }
            .into();
            r.decided_at = Some(at);
            r
        }),
        _ => row,
    }
}

async fn apply_reports(
    conn: &mut PgConnection,
    events: &[StoredEvent],
    tables: &Tables,
) -> Result<(), ApplyError> {
    let mut tickets = Vec::new();
    let mut approvals = Vec::new();
    for e in events {
        match e.aggregate_type.as_str() {
            "ticket" => tickets.push(ticket_event(e)?),
            "approval" => approvals.push(approval_event(e)?),
            _ => {}
        }
    }
    if tickets.is_empty() && approvals.is_empty() {
        return Ok(());
    }
    let ctx = current_policy(&mut *conn).await?;
    if !tickets.is_empty() {
        apply_tickets(&mut *conn, &tickets, events, tables, &ctx).await?;
    }
    if !approvals.is_empty() {
        apply_approvals(&mut *conn, &approvals, tables).await?;
    }
    let meta = tables.name("rm_report_meta");
    sqlx::query(&format!(
        "insert into {meta} as m (id, oldest_policy_version, newest_policy_version) values (1, $1, $1)
         on conflict (id) do update set
            oldest_policy_version = least(m.oldest_policy_version, excluded.oldest_policy_version),
            newest_policy_version = greatest(m.newest_policy_version, excluded.newest_policy_version)"
    ))
    .bind(ctx.version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Folds the ticket events into their rows; the rows of tickets that start in the batch
/// (`stored`, the batch as read) are not looked up (they have none yet).
async fn apply_tickets(
    conn: &mut PgConnection,
    events: &[(i64, TicketEvent)],
    stored: &[StoredEvent],
    tables: &Tables,
    ctx: &PolicyContext,
) -> Result<(), ApplyError> {
    let rm = tables.name("rm_report_tickets");
    let mut ids: Vec<i64> = events.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let sql = format!("select {REPORT_COLUMNS} from {rm} where id = any($1)");
    let existing: Vec<ReportRow> = crate::batch::rows_before(conn, &sql, &ids, stored).await?;
    let mut rows: BTreeMap<i64, Option<ReportRow>> = ids.iter().map(|id| (*id, None)).collect();
    let mut deltas = Deltas::default();
    for row in existing {
        deltas.add(contribution(&row), -1);
        rows.insert(row.id, Some(row));
    }
    let before = rows.clone();
    for (id, event) in events {
        let slot = rows.entry(*id).or_default();
        *slot = fold(slot.take(), event, ctx);
    }
    let changed: Vec<&ReportRow> = rows
        .iter()
        .filter(|(id, row)| before.get(id).is_none_or(|b| b.as_ref() != row.as_ref()))
        .filter_map(|(_, row)| row.as_ref())
        .collect();
    // Every final row contributes again (an unchanged row nets to zero).
    for row in rows.values().flatten() {
        deltas.add(contribution(row), 1);
    }
    if changed.is_empty() {
        return Ok(());
    }
    let payload = serde_json::to_value(&changed).map_err(|e| ApplyError::Poison {
        position: -1,
        reason: e.to_string(),
    })?;
    let updates: Vec<String> = REPORT_COLUMNS
        .split(',')
        .map(str::trim)
        .filter(|c| *c != "id")
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    sqlx::query(&format!(
        "insert into {rm} ({REPORT_COLUMNS})
         select {REPORT_COLUMNS} from jsonb_to_recordset($1) as r({RECORD_TYPES})
         on conflict (id) do update set {}",
        updates.join(", ")
    ))
    .bind(payload)
    .execute(&mut *conn)
    .await?;
    write_deltas(conn, deltas, tables).await
}

async fn write_deltas(
    conn: &mut PgConnection,
    deltas: Deltas,
    tables: &Tables,
) -> Result<(), ApplyError> {
    let counts: Vec<(CountKey, CountValues)> = deltas
        .counts
        .into_iter()
        .filter(|(_, v)| *v != CountValues::default())
        .collect();
    write_count_deltas(conn, &tables.name("rm_report_counts"), &counts).await?;
    let backlog: Vec<(NaiveDate, i64)> = deltas
        .backlog
        .into_iter()
        .filter(|(_, n)| *n != 0)
        .collect();
    write_backlog_deltas(conn, &tables.name("rm_report_backlog"), &backlog).await?;
    let daily: Vec<(NaiveDate, DailyValues)> = deltas
        .daily
        .into_iter()
        .filter(|(_, v)| *v != DailyValues::default())
        .collect();
    write_daily_deltas(conn, &tables.name("rm_report_daily"), &daily).await
}

/// Adds count deltas; rows that drop to zero go, so that the table only depends on the
/// state, not on the batches that led to it (a rebuilt read model equals an incremental one).
async fn write_count_deltas(
    conn: &mut PgConnection,
    table: &str,
    counts: &[(CountKey, CountValues)],
) -> Result<(), ApplyError> {
    if counts.is_empty() {
        return Ok(());
    }
    let column = |i: usize| -> Vec<i64> { counts.iter().map(|(_, v)| v.0[i]).collect() };
    let statuses = || counts.iter().map(|(k, _)| k.0.as_str()).collect::<Vec<_>>();
    let priorities = || counts.iter().map(|(k, _)| k.1.as_str()).collect::<Vec<_>>();
    let types = || counts.iter().map(|(k, _)| k.2.as_str()).collect::<Vec<_>>();
    let assignees = || counts.iter().map(|(k, _)| k.3).collect::<Vec<_>>();
    let sql = format!(
        "insert into {table} as c (status, priority, type, assignee_key, n, fr_due, fr_breached,
                                   res_due, res_breached, sla_due, sla_breached)
         select * from unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
                              $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[],
                              $10::bigint[], $11::bigint[])
         on conflict (status, priority, type, assignee_key) do update set
            n = c.n + excluded.n, fr_due = c.fr_due + excluded.fr_due,
            fr_breached = c.fr_breached + excluded.fr_breached,
            res_due = c.res_due + excluded.res_due,
            res_breached = c.res_breached + excluded.res_breached,
            sla_due = c.sla_due + excluded.sla_due,
            sla_breached = c.sla_breached + excluded.sla_breached"
    );
    let mut insert = sqlx::query(&sql)
        .bind(statuses())
        .bind(priorities())
        .bind(types())
        .bind(assignees());
    for i in 0..7 {
        insert = insert.bind(column(i));
    }
    insert.execute(&mut *conn).await?;
    // Stored rows count at least one ticket (the zero ones went): only a delta of `n` that
    // is not positive can leave a zero row behind.
    if counts.iter().all(|(_, v)| v.0[0] > 0) {
        return Ok(());
    }
    sqlx::query(&format!(
        "delete from {table} c
          using unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) as k(s, p, t, a)
          where c.status = k.s and c.priority = k.p and c.type = k.t and c.assignee_key = k.a
            and c.n = 0"
    ))
    .bind(statuses())
    .bind(priorities())
    .bind(types())
    .bind(assignees())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Adds open-backlog deltas per day; days that drop to zero go.
async fn write_backlog_deltas(
    conn: &mut PgConnection,
    table: &str,
    backlog: &[(NaiveDate, i64)],
) -> Result<(), ApplyError> {
    if backlog.is_empty() {
        return Ok(());
    }
    let days: Vec<NaiveDate> = backlog.iter().map(|(d, _)| *d).collect();
    sqlx::query(&format!(
        "insert into {table} as b (day, n) select * from unnest($1::date[], $2::bigint[])
         on conflict (day) do update set n = b.n + excluded.n"
    ))
    .bind(&days)
    .bind(backlog.iter().map(|(_, n)| *n).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    // Stored days are positive (the zero ones went): only a delta that is not positive can
    // bring one to zero.
    if backlog.iter().all(|(_, n)| *n > 0) {
        return Ok(());
    }
    sqlx::query(&format!(
        "delete from {table} where day = any($1) and n = 0"
    ))
    .bind(&days)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Adds the daily figures' deltas; days whose figures are all zero go.
async fn write_daily_deltas(
    conn: &mut PgConnection,
    table: &str,
    daily: &[(NaiveDate, DailyValues)],
) -> Result<(), ApplyError> {
    if daily.is_empty() {
        return Ok(());
    }
    let days: Vec<NaiveDate> = daily.iter().map(|(d, _)| *d).collect();
    let column = |i: usize| -> Vec<i64> { daily.iter().map(|(_, v)| v.0[i]).collect() };
    let sql = format!(
        "insert into {table} as d (day, created, resolved, first_responses, fr_missed, res_missed)
         select * from unnest($1::date[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
         on conflict (day) do update set
            created = d.created + excluded.created, resolved = d.resolved + excluded.resolved,
            first_responses = d.first_responses + excluded.first_responses,
            fr_missed = d.fr_missed + excluded.fr_missed,
            res_missed = d.res_missed + excluded.res_missed"
    );
    let mut insert = sqlx::query(&sql).bind(&days);
    for i in 0..5 {
        insert = insert.bind(column(i));
    }
    insert.execute(&mut *conn).await?;
    // Stored figures are never negative and a stored day has one above zero: a day all of
    // whose deltas are at least zero, one of them above, keeps one above zero.
    if daily
        .iter()
        .all(|(_, v)| v.0.iter().all(|x| *x >= 0) && v.0.iter().any(|x| *x > 0))
    {
        return Ok(());
    }
    sqlx::query(&format!(
        "delete from {table} where day = any($1) and created = 0 and resolved = 0
            and first_responses = 0 and fr_missed = 0 and res_missed = 0"
    ))
    .bind(&days)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn apply_approvals(
    conn: &mut PgConnection,
    events: &[(Uuid, ApprovalEvent)],
    tables: &Tables,
) -> Result<(), ApplyError> {
    let table = tables.name("rm_report_approvals");
    let mut ids: Vec<Uuid> = events.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let existing: Vec<ApprovalRow> = sqlx::query_as(&format!(
        "select id, ticket_id, status, requested_at, decided_at from {table} where id = any($1)"
    ))
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut rows: BTreeMap<Uuid, Option<ApprovalRow>> = ids.iter().map(|id| (*id, None)).collect();
    for row in existing {
        rows.insert(row.id, Some(row));
    }
    for (id, event) in events {
        let slot = rows.entry(*id).or_default();
        *slot = fold_approval(slot.take(), *id, event);
    }
    let rows: Vec<ApprovalRow> = rows.into_values().flatten().collect();
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "insert into {table} as a (id, ticket_id, status, requested_at, decided_at)
         select * from unnest($1::uuid[], $2::bigint[], $3::text[], $4::timestamptz[], $5::timestamptz[])
         on conflict (id) do update set ticket_id = excluded.ticket_id, status = excluded.status,
            requested_at = excluded.requested_at, decided_at = excluded.decided_at"
    ))
    .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.ticket_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.status.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.requested_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.decided_at).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The `reports` projection.
pub struct ReportsProjection;

impl ReportsProjection {
    /// The checkpoint name.
    pub const NAME: &'static str = "reports";
}

/// The titles of the tickets an erased person requested read `"[erased]"`.
async fn erase_person(
    conn: &mut PgConnection,
    person: i64,
    tables: &Tables,
) -> Result<(), ApplyError> {
    crate::batch::redact(
        conn,
        &tables.name("rm_report_tickets"),
        "title",
        "requester_id",
        person,
    )
    .await
}

crate::read_model!(
    ReportsProjection,
    [
        "rm_report_tickets",
        "rm_report_counts",
        "rm_report_daily",
        "rm_report_backlog",
        "rm_report_approvals",
        "rm_report_meta"
    ],
    apply_reports,
    erase = erase_person,
    reads = ["ticket", "approval"],
    every = BATCH_EVERY
);

/// The reports' batches come at most every 100 ms instead of every 20: nobody reads a
/// dashboard within milliseconds of a command, and a report batch is the longest (about a
/// dozen statements: the ticket rows, counts, days, backlog, then any zero rows removed). A
/// report read with a consistency token waits up to 80 ms longer than before.
const BATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sla::policy::SlaPolicy;
    use aggregates::ticket::TicketFields;
    use aggregates::{Priority, TicketType};
    use chrono::Duration;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn opened(at: &str, priority: Priority) -> TicketEvent {
        TicketEvent::TicketOpened {
            id: 1,
            requester_id: 7,
            fields: TicketFields {
                title: "t".into(),
                description: String::new(),
                priority,
                ticket_type: TicketType::Incident,
                tags: vec![],
                item_ids: vec![],
            },
            at: utc(at),
        }
    }

    fn status(from: TicketStatus, to: TicketStatus, at: &str) -> TicketEvent {
        TicketEvent::TicketStatusChanged {
            from,
            to,
            reason: None,
            at: utc(at),
        }
    }

    fn run(events: &[TicketEvent], ctx: &PolicyContext) -> ReportRow {
        events
            .iter()
            .fold(None, |row, e| fold(row, e, ctx))
            .unwrap()
    }

    #[test]
    fn the_clock_pauses_while_pending_and_stops_at_resolution() {
        use TicketStatus::*;
        let ctx = PolicyContext::new(0, SlaPolicy::default()); // high: 60 / 480 min, 24x7
        let row = run(
            &[
                opened("2026-03-02T10:00:00Z", Priority::High),
                status(Open, InProgress, "2026-03-02T10:30:00Z"),
                status(InProgress, Pending, "2026-03-02T11:00:00Z"),
                status(Pending, InProgress, "2026-03-02T14:00:00Z"),
                status(InProgress, Resolved, "2026-03-02T16:00:00Z"),
            ],
            &ctx,
        );
        assert_eq!(row.paused_seconds, 3 * 3600);
        assert_eq!(row.resolution_seconds, Some(6 * 3600));
        assert_eq!(row.resolution_business_seconds, Some(3 * 3600));
        assert_eq!(row.clock.resolution_breached_at, None);
        // No first response: the 60 running minutes were used up exactly when the ticket went
        // pending at 11:00, so the target was missed the moment the clock resumed at 14:00.
        assert_eq!(
            row.clock.first_response_breached_at,
            Some(utc("2026-03-02T14:00:00Z"))
        );
        assert_eq!(row.clock.sla_running_since, None);
        assert_eq!(row.clock.resolution_due_at, None);
    }

    #[test]
    fn a_reopened_ticket_resumes_its_clock_and_a_pending_one_has_no_due_time() {
        use TicketStatus::*;
        let ctx = PolicyContext::new(0, SlaPolicy::default()); // critical: 30 / 240 min
        let row = run(
            &[
                opened("2026-03-02T10:00:00Z", Priority::Critical),
                TicketEvent::FirstResponseRecorded {
                    comment_id: Uuid::nil(),
                    responder_id: 2,
                    at: utc("2026-03-02T10:20:00Z"),
                },
                status(Open, InProgress, "2026-03-02T10:30:00Z"),
                status(InProgress, Resolved, "2026-03-02T12:00:00Z"),
                status(Resolved, Open, "2026-03-03T09:00:00Z"),
            ],
            &ctx,
        );
        assert_eq!(row.first_response_business_seconds, Some(20 * 60));
        assert_eq!(row.clock.first_response_breached_at, None);
        assert_eq!(row.reopened, 1);
        assert_eq!(row.resolved_at, None);
        // 2 h used before the resolution, 2 h left from the reopening.
        assert_eq!(
            row.clock.resolution_due_at,
            Some(utc("2026-03-03T11:00:00Z"))
        );
        assert_eq!(row.sla_due_at, row.clock.resolution_due_at);
        let paused = fold(
            Some(row),
            &status(Open, InProgress, "2026-03-03T09:10:00Z"),
            &ctx,
        )
        .and_then(|r| {
            fold(
                Some(r),
                &status(InProgress, Pending, "2026-03-03T09:20:00Z"),
                &ctx,
            )
        })
        .unwrap();
        assert_eq!(paused.clock.resolution_due_at, None);
        assert_eq!(paused.sla_due_at, None);
        assert_eq!(paused.pending_since, Some(utc("2026-03-03T09:20:00Z")));
    }

    #[test]
    fn business_hours_and_a_priority_change_move_the_due_time() {
        let policy = crate::sla::policy::nine_to_five("UTC");
        let ctx = PolicyContext::new(3, policy);
        // Friday 16:00, low: first response due after 480 business minutes = Monday 16:00.
        let row = run(&[opened("2026-03-06T16:00:00Z", Priority::Low)], &ctx);
        assert_eq!(
            row.clock.first_response_due_at,
            Some(utc("2026-03-09T16:00:00Z"))
        );
        assert_eq!(row.clock.policy_version, 3);
        // Raised to critical on Monday 09:45 after 1 h 45 min of business time: 30 min target
        // exceeded, missed from the change.
        let raised = fold(
            Some(row),
            &TicketEvent::TicketUpdated {
                changes: aggregates::ticket::TicketChanges {
                    priority: Some(Priority::Critical),
                    ..Default::default()
                },
                at: utc("2026-03-09T09:45:00Z"),
            },
            &ctx,
        )
        .unwrap();
        assert_eq!(
            raised.clock.first_response_breached_at,
            Some(utc("2026-03-09T09:45:00Z"))
        );
        assert_eq!(raised.clock.first_response_due_at, None);
        assert_eq!(raised.sla_due_at, None);
        // Resolution (240 min) is still running: 135 min left from 09:45 → 12:00.
        assert_eq!(
            raised.clock.resolution_due_at,
            Some(utc("2026-03-09T12:00:00Z"))
        );
        assert_eq!(
            raised.clock.sla_elapsed_us,
            (Duration::minutes(105)).num_microseconds().unwrap()
        );
    }
}
