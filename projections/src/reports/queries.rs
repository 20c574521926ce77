//! Reads of the `reports` read model: the dashboard's figures, the analytics series and the
//! read model's checkpoint and policy state (every figure comes from the projection's tables,
//! see `docs/reports.md`).

use std::collections::{BTreeMap, HashMap};

use aggregates::{Priority, TicketStatus, TicketType};
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use utoipa::ToSchema;

use crate::Checkpoint;

/// The dashboard's window for daily series, percentiles and missed targets.
pub const DASHBOARD_DAYS: i64 = 30;
/// The most periods an analytics query may span.
pub const MAX_PERIODS: usize = 1000;

/// One bucket of a distribution.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Bucket {
    /// `<1d`, `1-3d`, `3-7d`, `7-30d` or `>30d`.
    pub bucket: String,
    pub count: i64,
}

/// Created and resolved tickets of one UTC day.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct DayPoint {
    pub date: NaiveDate,
    pub created: i64,
    pub resolved: i64,
}

/// A figure per SLA target.
#[derive(Debug, Clone, Default, Serialize, ToSchema, PartialEq)]
pub struct TargetCounts {
    pub first_response: i64,
    pub resolution: i64,
    /// Tickets with either target affected (a ticket counts once).
    pub any: i64,
}

/// The SLA state of the open backlog.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct SlaSummary {
    /// The "at risk" horizon used.
    pub at_risk_minutes: i64,
    /// Open tickets past a target now.
    pub breached: TargetCounts,
    /// Open tickets with a running target due within `at_risk_minutes` (not yet breached).
    pub at_risk: TargetCounts,
    /// Open tickets whose clock is paused (`pending`).
    pub paused: i64,
    /// First responses and resolutions of the last 30 days that missed their target.
    pub missed_last_30_days: TargetCounts,
}

/// Pending approvals and how long they have waited.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ApprovalSummary {
    pub pending: i64,
    pub oldest_age_seconds: Option<f64>,
    pub median_age_seconds: Option<f64>,
    pub by_age: Vec<Bucket>,
}

/// Which SLA policy computed the figures.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct PolicyState {
    /// The version in force (0 = the built-in default).
    pub version: i64,
    /// False when some of the history was computed with an older policy: run
    /// `ticketd projections rebuild reports` to apply the current one to the past.
    pub applied_to_history: bool,
}

/// `GET /reports/dashboard`.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Dashboard {
    pub generated_at: DateTime<Utc>,
    /// The read model's position in the log when computed.
    pub checkpoint: String,
    /// Live (not deleted) tickets by status, every status listed.
    pub by_status: BTreeMap<String, i64>,
    /// The open backlog (open, in_progress, pending) by priority.
    pub by_priority: BTreeMap<String, i64>,
    /// The open backlog by type.
    pub by_type: BTreeMap<String, i64>,
    /// The open backlog by assignee id (`none` for unassigned).
    pub by_assignee: BTreeMap<String, i64>,
    pub open_backlog: i64,
    /// The open backlog by age since creation.
    pub backlog_by_age: Vec<Bucket>,
    /// The last 30 UTC days, oldest first, today last.
    pub created_vs_resolved: Vec<DayPoint>,
    /// Wall-clock seconds from creation to first response, over first responses of the last 30 days.
    pub median_first_response_seconds: Option<f64>,
    pub p90_first_response_seconds: Option<f64>,
    /// Wall-clock seconds from creation to resolution, over resolutions of the last 30 days.
    pub median_resolution_seconds: Option<f64>,
    pub p90_resolution_seconds: Option<f64>,
    /// Open tickets past an SLA target now (= `sla.breached.any`).
    pub sla_breaches: i64,
    pub sla: SlaSummary,
    /// Pending approvals (= `approvals.pending`).
    pub pending_approvals: i64,
    pub approvals: ApprovalSummary,
    pub policy: PolicyState,
}

/// The reports projection's checkpoint.
pub async fn checkpoint(pool: &PgPool) -> Result<Checkpoint, sqlx::Error> {
    crate::runtime::checkpoint_of(pool, super::ReportsProjection::NAME).await
}

const AGE_BUCKETS: [(&str, i64); 4] = [("<1d", 1), ("1-3d", 3), ("3-7d", 7), ("7-30d", 30)];

/// Splits `total` into the age buckets given the counts younger than 1, 3, 7 and 30 days.
fn age_buckets(total: i64, younger: [i64; 4]) -> Vec<Bucket> {
    let mut out = Vec::with_capacity(5);
    let mut previous = 0;
    for ((name, _), n) in AGE_BUCKETS.iter().zip(younger) {
        out.push(Bucket {
            bucket: (*name).into(),
            count: n - previous,
        });
        previous = n;
    }
    out.push(Bucket {
        bucket: ">30d".into(),
        count: total - previous,
    });
    out
}

/// What the counts table and the due-time indexes say.
struct Counts {
    by_status: BTreeMap<String, i64>,
    by_priority: BTreeMap<String, i64>,
    by_type: BTreeMap<String, i64>,
    by_assignee: BTreeMap<String, i64>,
    open_backlog: i64,
    paused: i64,
    breached: TargetCounts,
    at_risk: TargetCounts,
}

/// A row of `rm_report_counts`: status, priority, type, assignee (0: none), tickets, and
/// the open backlog's [fr_due, fr_breached, res_due, res_breached, sla_due, sla_breached].
#[derive(sqlx::FromRow)]
struct CountRow {
    status: String,
    priority: String,
    #[sqlx(rename = "type")]
    kind: String,
    assignee_key: i64,
    n: i64,
    fr_due: i64,
    fr_breached: i64,
    res_due: i64,
    res_breached: i64,
    sla_due: i64,
    sla_breached: i64,
}

/// Every value of a status, priority or type at zero.
fn zeros(names: impl Iterator<Item = &'static str>) -> BTreeMap<String, i64> {
    names.map(|s| (s.to_string(), 0)).collect()
}

impl Counts {
    fn new() -> Self {
        Counts {
            by_status: zeros(TicketStatus::ALL.iter().map(|s| s.as_str())),
            by_priority: zeros(Priority::ALL.iter().map(|s| s.as_str())),
            by_type: zeros(TicketType::ALL.iter().map(|s| s.as_str())),
            by_assignee: BTreeMap::new(),
            open_backlog: 0,
            paused: 0,
            breached: TargetCounts::default(),
            at_risk: TargetCounts::default(),
        }
    }

    /// Adds one row of the counts table; returns its SLA figures if it is open backlog.
    fn add(&mut self, row: CountRow) -> Option<[i64; 6]> {
        *self.by_status.entry(row.status.clone()).or_default() += row.n;
        if !super::OPEN_STATUSES.contains(&row.status.as_str()) {
            return None;
        }
        self.open_backlog += row.n;
        if row.status == "pending" {
            self.paused += row.n;
        }
        *self.by_priority.entry(row.priority).or_default() += row.n;
        *self.by_type.entry(row.kind).or_default() += row.n;
        let who = if row.assignee_key == 0 {
            "none".to_string()
        } else {
            row.assignee_key.to_string()
        };
        *self.by_assignee.entry(who).or_default() += row.n;
        Some([
            row.fr_due,
            row.fr_breached,
            row.res_due,
            row.res_breached,
            row.sla_due,
            row.sla_breached,
        ])
    }
}

async fn counts(
    pool: &PgPool,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
) -> Result<Counts, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let mut c = Counts::new();
    // [fr_due, fr_breached, res_due, res_breached, sla_due, sla_breached] of the open backlog.
    let mut sla = [0i64; 6];
    let rows: Vec<CountRow> = sqlx::query_as(
        "select status, priority, type, assignee_key, n, fr_due, fr_breached, res_due, res_breached,
                sla_due, sla_breached
           from rm_report_counts where n <> 0",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        for (total, x) in sla.iter_mut().zip(c.add(row).unwrap_or_default()) {
            *total += x;
        }
    }
    c.by_assignee.retain(|_, n| *n != 0);
    let due = due_counts(&mut conn, now, horizon).await?;
    c.breached = TargetCounts {
        first_response: sla[1] + sla[0] - due.0,
        resolution: sla[3] + sla[2] - due.2,
        any: sla[5] + sla[4] - due.4,
    };
    c.at_risk = TargetCounts {
        first_response: due.1,
        resolution: due.3,
        any: due.5,
    };
    Ok(c)
}

/// Running targets not yet due (a small index range), and those due within the horizon:
/// first response, resolution and either.
async fn due_counts(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
) -> Result<(i64, i64, i64, i64, i64, i64), sqlx::Error> {
    sqlx::query_as(
        "select (select count(*) from rm_report_tickets where first_response_due_at >= $1),
                (select count(*) from rm_report_tickets where first_response_due_at >= $1 and first_response_due_at < $2),
                (select count(*) from rm_report_tickets where resolution_due_at >= $1),
                (select count(*) from rm_report_tickets where resolution_due_at >= $1 and resolution_due_at < $2),
                (select count(*) from rm_report_tickets where sla_due_at >= $1),
                (select count(*) from rm_report_tickets where sla_due_at >= $1 and sla_due_at < $2)",
    )
    .bind(now)
    .bind(horizon)
    .fetch_one(conn)
    .await
}

/// Open tickets younger than 1, 3, 7 and 30 days: whole days from the per-day table, the
/// boundary days counted exactly from the facts.
async fn backlog_younger(pool: &PgPool, now: DateTime<Utc>) -> Result<[i64; 4], sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let days: Vec<(NaiveDate, i64)> =
        sqlx::query_as("select day, n from rm_report_backlog where n <> 0")
            .fetch_all(&mut *conn)
            .await?;
    let cutoffs: Vec<DateTime<Utc>> = AGE_BUCKETS
        .iter()
        .map(|(_, d)| now - Duration::days(*d))
        .collect();
    let next_midnight = |t: DateTime<Utc>| {
        (t.date_naive() + Duration::days(1))
            .and_time(NaiveTime::MIN)
            .and_utc()
    };
    let partial: (i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from rm_report_tickets where not deleted and status in ('open', 'in_progress', 'pending') and created_at >= $1 and created_at < $2),
                (select count(*) from rm_report_tickets where not deleted and status in ('open', 'in_progress', 'pending') and created_at >= $3 and created_at < $4),
                (select count(*) from rm_report_tickets where not deleted and status in ('open', 'in_progress', 'pending') and created_at >= $5 and created_at < $6),
                (select count(*) from rm_report_tickets where not deleted and status in ('open', 'in_progress', 'pending') and created_at >= $7 and created_at < $8)",
    )
    .bind(cutoffs[0])
    .bind(next_midnight(cutoffs[0]))
    .bind(cutoffs[1])
    .bind(next_midnight(cutoffs[1]))
    .bind(cutoffs[2])
    .bind(next_midnight(cutoffs[2]))
    .bind(cutoffs[3])
    .bind(next_midnight(cutoffs[3]))
    .fetch_one(&mut *conn)
    .await?;
    let partial = [partial.0, partial.1, partial.2, partial.3];
    let mut younger = [0i64; 4];
    for (i, cutoff) in cutoffs.iter().enumerate() {
        let day = cutoff.date_naive();
        younger[i] = days
            .iter()
            .filter(|(d, _)| *d > day)
            .map(|(_, n)| n)
            .sum::<i64>()
            + partial[i];
    }
    Ok(younger)
}

/// The last 30 days: created and resolved per day, and the targets missed.
async fn daily(
    pool: &PgPool,
    now: DateTime<Utc>,
) -> Result<(Vec<DayPoint>, i64, i64), sqlx::Error> {
    let today = now.date_naive();
    let first_day = today - Duration::days(DASHBOARD_DAYS - 1);
    let rows: Vec<(NaiveDate, i64, i64, i64, i64)> = sqlx::query_as(
        "select day, created, resolved, fr_missed, res_missed from rm_report_daily
          where day >= $1 and day <= $2",
    )
    .bind(first_day)
    .bind(today)
    .fetch_all(pool)
    .await?;
    let by_day: HashMap<NaiveDate, (i64, i64)> =
        rows.iter().map(|(d, c, r, _, _)| (*d, (*c, *r))).collect();
    let points = (0..DASHBOARD_DAYS)
        .map(|i| {
            let date = first_day + Duration::days(i);
            let (created, resolved) = by_day.get(&date).copied().unwrap_or((0, 0));
            DayPoint {
                date,
                created,
                resolved,
            }
        })
        .collect();
    Ok((
        points,
        rows.iter().map(|r| r.3).sum(),
        rows.iter().map(|r| r.4).sum(),
    ))
}

/// Median and p90 of a duration column over the rows whose `at` column is in `[since, now]`
/// (an index-only scan).
async fn percentiles(
    pool: &PgPool,
    seconds: &str,
    at: &str,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(Option<f64>, Option<f64>), sqlx::Error> {
    let (v,): (Option<Vec<f64>>,) = sqlx::query_as(&format!(
        "select percentile_cont(array[0.5, 0.9]) within group (order by {seconds})
           from rm_report_tickets
          where not deleted and {at} is not null and {at} >= $1 and {at} <= $2"
    ))
    .bind(since)
    .bind(now)
    .fetch_one(pool)
    .await?;
    let v = v.unwrap_or_default();
    Ok((v.first().copied(), v.get(1).copied()))
}

/// Computes the dashboard as of `now` (uncached). The independent parts run concurrently,
/// each on its own connection.
pub async fn dashboard(
    pool: &PgPool,
    at_risk_minutes: i64,
    now: DateTime<Utc>,
    checkpoint: Checkpoint,
) -> Result<Dashboard, sqlx::Error> {
    let horizon = now + Duration::minutes(at_risk_minutes);
    let since = now - Duration::days(DASHBOARD_DAYS);
    let (
        c,
        younger,
        (created_vs_resolved, missed_first, missed_resolution),
        fr,
        res,
        approvals,
        policy,
    ) = tokio::try_join!(
        counts(pool, now, horizon),
        backlog_younger(pool, now),
        daily(pool, now),
        percentiles(
            pool,
            "first_response_seconds",
            "first_response_at",
            since,
            now
        ),
        percentiles(pool, "resolution_seconds", "resolved_at", since, now),
        approval_summary(pool, now),
        async {
            let mut conn = pool.acquire().await?;
            policy_state(&mut conn).await
        },
    )?;
    Ok(Dashboard {
        generated_at: now,
        checkpoint: checkpoint.to_string(),
        backlog_by_age: age_buckets(c.open_backlog, younger),
        by_status: c.by_status,
        by_priority: c.by_priority,
        by_type: c.by_type,
        by_assignee: c.by_assignee,
        open_backlog: c.open_backlog,
        created_vs_resolved,
        median_first_response_seconds: fr.0,
        p90_first_response_seconds: fr.1,
        median_resolution_seconds: res.0,
        p90_resolution_seconds: res.1,
        sla_breaches: c.breached.any,
        sla: SlaSummary {
            at_risk_minutes,
            breached: c.breached,
            at_risk: c.at_risk,
            paused: c.paused,
            missed_last_30_days: TargetCounts {
                first_response: missed_first,
                resolution: missed_resolution,
                any: missed_first + missed_resolution,
            },
        },
        pending_approvals: approvals.pending,
        approvals,
        policy,
    })
}

async fn approval_summary(
    pool: &PgPool,
    now: DateTime<Utc>,
) -> Result<ApprovalSummary, sqlx::Error> {
    let (pending, oldest, median, d1, d3, d7, d30): (
        i64,
        Option<f64>,
        Option<f64>,
        i64,
        i64,
        i64,
        i64,
    ) = sqlx::query_as(
        "select count(*),
                max(extract(epoch from $1 - requested_at))::float8,
                percentile_cont(0.5) within group (order by extract(epoch from $1 - requested_at)::float8),
                count(*) filter (where requested_at > $1 - interval '1 day'),
                count(*) filter (where requested_at > $1 - interval '3 days'),
                count(*) filter (where requested_at > $1 - interval '7 days'),
                count(*) filter (where requested_at > $1 - interval '30 days')
           from rm_report_approvals where status = 'pending'",
    )
    .bind(now)
    .fetch_one(pool)
    .await?;
    Ok(ApprovalSummary {
        pending,
        oldest_age_seconds: oldest,
        median_age_seconds: median,
        by_age: age_buckets(pending, [d1, d3, d7, d30]),
    })
}

/// The policy version in force and whether the whole history was computed with it.
pub async fn policy_state(conn: &mut sqlx::PgConnection) -> Result<PolicyState, sqlx::Error> {
    let (version, oldest): (Option<i64>, Option<i64>) = sqlx::query_as(
        "select (select id from sla_policies order by id desc limit 1),
                (select oldest_policy_version from rm_report_meta where id = 1)",
    )
    .fetch_one(conn)
    .await?;
    let version = version.unwrap_or(0);
    Ok(PolicyState {
        version,
        applied_to_history: oldest.is_none_or(|o| o >= version),
    })
}

/// How analytics periods are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Day,
    Week,
    Month,
}

impl GroupBy {
    /// Parses `day`, `week` or `month`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(GroupBy::Day),
            "week" => Some(GroupBy::Week),
            "month" => Some(GroupBy::Month),
            _ => None,
        }
    }

    /// The `date_trunc` field name.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Week => "week",
            GroupBy::Month => "month",
        }
    }

    /// The start of the period containing `day` (weeks start on Monday).
    pub fn truncate(self, day: NaiveDate) -> NaiveDate {
        match self {
            GroupBy::Day => day,
            GroupBy::Week => day - Duration::days(day.weekday().num_days_from_monday() as i64),
            GroupBy::Month => day.with_day(1).unwrap_or(day),
        }
    }

    /// The start of the next period.
    pub fn next(self, start: NaiveDate) -> NaiveDate {
        match self {
            GroupBy::Day => start + Duration::days(1),
            GroupBy::Week => start + Duration::days(7),
            GroupBy::Month => start
                .checked_add_months(Months::new(1))
                .unwrap_or(start + Duration::days(31)),
        }
    }
}

/// The ticket filters of analytics (the same names as the ticket list).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct TicketFilters {
    pub status: Vec<TicketStatus>,
    pub priority: Vec<Priority>,
    #[serde(rename = "type")]
    pub ticket_type: Vec<TicketType>,
    /// `Some(None)`: unassigned tickets only.
    #[schema(value_type = Option<i64>)]
    pub assignee_id: Option<Option<i64>>,
}

/// One period of an analytics series.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Period {
    /// The first UTC day of the period.
    pub period: NaiveDate,
    /// Tickets created in the period.
    pub created: i64,
    /// Tickets resolved in the period (their current resolution).
    pub resolved: i64,
    /// First responses recorded in the period.
    pub first_responses: i64,
    /// Percentiles of wall-clock seconds to first response, over the period's first responses.
    pub median_first_response_seconds: Option<f64>,
    pub p90_first_response_seconds: Option<f64>,
    /// Percentiles of wall-clock seconds to resolution, over the period's resolutions.
    pub median_resolution_seconds: Option<f64>,
    pub p90_resolution_seconds: Option<f64>,
    /// First responses of the period that missed their target.
    pub first_response_missed: i64,
    /// Resolutions of the period that missed their target.
    pub resolution_missed: i64,
    /// SLA targets that ran past due in the period (dated when they were missed, including
    /// those of tickets still open).
    pub breaches: i64,
}

/// `GET /reports/analytics`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Analytics {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: GroupBy,
    pub filters: TicketFilters,
    pub series: Vec<Period>,
}

impl TicketFilters {
    /// Pushes ` where not deleted and …` with the filters.
    fn push_where(&self, qb: &mut QueryBuilder<'_, Postgres>) {
        qb.push(" where not deleted");
        let lists: [(&str, Vec<String>); 3] = [
            (
                "status",
                self.status.iter().map(|s| s.as_str().into()).collect(),
            ),
            (
                "priority",
                self.priority.iter().map(|s| s.as_str().into()).collect(),
            ),
            (
                "type",
                self.ticket_type.iter().map(|s| s.as_str().into()).collect(),
            ),
        ];
        for (column, values) in lists {
            if !values.is_empty() {
                qb.push(format_args!(" and {column} = any("))
                    .push_bind(values)
                    .push(")");
            }
        }
        match self.assignee_id {
            Some(Some(id)) => {
                qb.push(" and assignee_id = ").push_bind(id);
            }
            Some(None) => {
                qb.push(" and assignee_id is null");
            }
            None => {}
        }
    }
}

/// The periods of `[from, to)`, at most `MAX_PERIODS + 1` (more are not counted).
pub fn periods(from: DateTime<Utc>, to: DateTime<Utc>, group_by: GroupBy) -> Vec<NaiveDate> {
    let mut periods = Vec::new();
    let mut start = group_by.truncate(from.date_naive());
    while start.and_time(NaiveTime::MIN).and_utc() < to && periods.len() <= MAX_PERIODS {
        periods.push(start);
        start = group_by.next(start);
    }
    periods
}

fn empty_period(period: NaiveDate) -> Period {
    Period {
        period,
        created: 0,
        resolved: 0,
        first_responses: 0,
        median_first_response_seconds: None,
        p90_first_response_seconds: None,
        median_resolution_seconds: None,
        p90_resolution_seconds: None,
        first_response_missed: 0,
        resolution_missed: 0,
        breaches: 0,
    }
}

/// One analytics query: the range, the grouping and the filters.
struct Series<'a> {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    group_by: GroupBy,
    filters: &'a TicketFilters,
    periods: BTreeMap<NaiveDate, Period>,
}

impl Series<'_> {
    /// The period of a time column, as a date.
    fn bucket(&self, column: &str) -> String {
        let g = self.group_by.as_str();
        format!("(date_trunc('{g}', {column}, 'UTC') at time zone 'UTC')::date")
    }

    /// `select <period of column> as p<select> from rm_report_tickets where <filters> and
    /// <column> in [from, to)`, before `upto` when given.
    fn push_select(
        &self,
        qb: &mut QueryBuilder<'_, Postgres>,
        column: &str,
        select: &str,
        upto: Option<DateTime<Utc>>,
    ) {
        qb.push(format_args!(
            "select {} as p{select} from rm_report_tickets",
            self.bucket(column)
        ));
        self.filters.push_where(qb);
        qb.push(format_args!(" and {column} >= "))
            .push_bind(self.from);
        match upto {
            Some(now) => {
                qb.push(format_args!(" and {column} < least("))
                    .push_bind(self.to)
                    .push(", ")
                    .push_bind(now)
                    .push(")");
            }
            None => {
                qb.push(format_args!(" and {column} < ")).push_bind(self.to);
            }
        }
    }

    /// Counts per period of the tickets whose `column` falls in it.
    async fn count_by(
        &self,
        conn: &mut PgConnection,
        column: &str,
    ) -> Result<Vec<(NaiveDate, i64)>, sqlx::Error> {
        let mut qb = QueryBuilder::new("");
        self.push_select(&mut qb, column, ", count(*)", None);
        qb.push(" group by p");
        qb.build_query_as().fetch_all(conn).await
    }

    /// Count, median and p90 of `seconds`, and how many `breached` per period of `column`.
    async fn durations_by(
        &self,
        conn: &mut PgConnection,
        column: &str,
        seconds: &str,
        breached: &str,
    ) -> Result<Vec<(NaiveDate, i64, Vec<f64>, i64)>, sqlx::Error> {
        let mut qb = QueryBuilder::new("");
        let select = format!(
            ", count(*), percentile_cont(array[0.5, 0.9]) within group (order by {seconds}),
               count(*) filter (where {breached} is not null)"
        );
        self.push_select(&mut qb, column, &select, None);
        qb.push(" group by p");
        qb.build_query_as().fetch_all(conn).await
    }

    /// When each target was missed: recorded for stopped or paused clocks, the due time for
    /// running ones already past it.
    async fn breaches(
        &self,
        conn: &mut PgConnection,
        now: DateTime<Utc>,
    ) -> Result<Vec<(NaiveDate, i64)>, sqlx::Error> {
        let mut qb = QueryBuilder::new("select p, count(*) from (");
        let columns = [
            ("first_response_breached_at", None),
            ("resolution_breached_at", None),
            ("first_response_due_at", Some(now)),
            ("resolution_due_at", Some(now)),
        ];
        for (i, (column, upto)) in columns.into_iter().enumerate() {
            if i > 0 {
                qb.push(" union all ");
            }
            self.push_select(&mut qb, column, "", upto);
        }
        qb.push(") missed group by p");
        qb.build_query_as().fetch_all(conn).await
    }

    fn period(&mut self, p: NaiveDate) -> Option<&mut Period> {
        self.periods.get_mut(&p)
    }
}

/// The analytics series of `[from, to)` over `periods` (from [`periods`]) for the filtered
/// tickets.
pub async fn analytics(
    pool: &PgPool,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    group_by: GroupBy,
    filters: TicketFilters,
    now: DateTime<Utc>,
) -> Result<Analytics, sqlx::Error> {
    let mut s = Series {
        from,
        to,
        group_by,
        filters: &filters,
        periods: periods(from, to, group_by)
            .into_iter()
            .map(|p| (p, empty_period(p)))
            .collect(),
    };
    let mut conn = pool.acquire().await?;
    for (p, n) in s.count_by(&mut conn, "created_at").await? {
        if let Some(e) = s.period(p) {
            e.created = n;
        }
    }
    let resolved = s
        .durations_by(
            &mut conn,
            "resolved_at",
            "resolution_seconds",
            "resolution_breached_at",
        )
        .await?;
    for (p, n, pct, missed) in resolved {
        if let Some(e) = s.period(p) {
            e.resolved = n;
            e.median_resolution_seconds = pct.first().copied();
            e.p90_resolution_seconds = pct.get(1).copied();
            e.resolution_missed = missed;
        }
    }
    let responded = s
        .durations_by(
            &mut conn,
            "first_response_at",
            "first_response_seconds",
            "first_response_breached_at",
        )
        .await?;
    for (p, n, pct, missed) in responded {
        if let Some(e) = s.period(p) {
            e.first_responses = n;
            e.median_first_response_seconds = pct.first().copied();
            e.p90_first_response_seconds = pct.get(1).copied();
            e.first_response_missed = missed;
        }
    }
    for (p, n) in s.breaches(&mut conn, now).await? {
        if let Some(e) = s.period(p) {
            e.breaches = n;
        }
    }
    let series = s.periods.into_values().collect();
    Ok(Analytics {
        from,
        to,
        group_by,
        filters,
        series,
    })
}

/// The export's rows: every live ticket created in `[from, to)`, oldest first, as a stream
/// read on `conn`.
pub fn export_rows(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> futures::stream::BoxStream<'_, Result<super::ReportRow, sqlx::Error>> {
    sqlx::query_as(
        "select * from rm_report_tickets
          where not deleted and created_at >= $1 and created_at < $2
          order by created_at, id",
    )
    .bind(from)
    .bind(to)
    .fetch(conn)
}
