//! Reports on the `reports` read model, shared by the HTTP API (`http::reports`) and the CLI
//! (`ticketd report`): the dashboard, analytics time series, the ticket export and the SLA
//! policy. Every figure comes from the projection's tables (see `docs/reports.md`).

pub mod export;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use aggregates::{Priority, TicketStatus, TicketType};
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveTime, Utc};
use projections::Checkpoint;
use serde::Serialize;
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, PgPool};
use utoipa::ToSchema;

use crate::service::error::{Error, Validator};
use crate::service::tickets::list::{parse_assignee, parse_list};

/// The checkpoint name of the read model every report reads.
pub const PROJECTION: &str = projections::reports::ReportsProjection::NAME;
/// How long a computed dashboard is reused while the read model has not moved.
pub const DASHBOARD_TTL: StdDuration = StdDuration::from_secs(5);
/// How long a computed dashboard is reused even though the read model has moved.
pub const DASHBOARD_MIN_REFRESH: StdDuration = StdDuration::from_secs(1);
/// Default of `at_risk_minutes`: a running target due within this many minutes is at risk.
pub const DEFAULT_AT_RISK_MINUTES: i64 = 60;
/// The dashboard's window for daily series, percentiles and missed targets.
pub const DASHBOARD_DAYS: i64 = 30;
/// The most periods an analytics query may span.
pub const MAX_PERIODS: usize = 1000;

/// Parses a time bound: RFC 3339, or a date `YYYY-MM-DD` (a UTC day). A date as an end
/// bound includes that whole day.
pub fn parse_bound(text: &str, end: bool) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let day = if end { day.succ_opt()? } else { day };
    Some(day.and_time(NaiveTime::MIN).and_utc())
}

/// Checks optional `from`/`to` query parameters; `to` must be after `from`.
pub fn parse_range(
    v: &mut Validator,
    from: Option<&str>,
    to: Option<&str>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let mut parse = |name: &str, raw: Option<&str>, end: bool| match raw.map(str::trim) {
        None | Some("") => None,
        Some(s) => {
            let t = parse_bound(s, end).filter(|t| (1970..=9999).contains(&t.year()));
            v.check_query(
                t.is_some(),
                name,
                &format!("{name} must be a date (YYYY-MM-DD) or an RFC 3339 time"),
            );
            t
        }
    };
    let from = parse("from", from, false);
    let to = parse("to", to, true);
    if let (Some(f), Some(t)) = (from, to) {
        v.check_query(f < t, "to", "to must be after from");
    }
    (from, to)
}

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
    let row: Option<(String, i64)> = sqlx::query_as(
        "select last_txid::text, last_position from projection_checkpoints where projection = $1",
    )
    .bind(PROJECTION)
    .fetch_optional(pool)
    .await?;
    Ok(row
        .map(|(t, p)| Checkpoint {
            txid: t.parse().unwrap_or(0),
            position: p,
        })
        .unwrap_or_default())
}

/// Dashboards computed recently, by `at_risk_minutes`: one cache per server instance (each
/// instance reads one database).
#[derive(Default)]
pub struct DashboardCache {
    entries: Mutex<HashMap<i64, CacheEntry>>,
    /// One lock per key, so that concurrent misses compute a dashboard once.
    locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

struct CacheEntry {
    checkpoint: Checkpoint,
    computed: Instant,
    value: Arc<Dashboard>,
}

impl DashboardCache {
    fn key_lock(&self, key: i64) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(key).or_default().clone()
    }

    fn cached(&self, key: i64, usable: impl Fn(&CacheEntry) -> bool) -> Option<Arc<Dashboard>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&key)
            .filter(|e| usable(e))
            .map(|e| e.value.clone())
    }

    fn store(&self, key: i64, checkpoint: Checkpoint, value: Arc<Dashboard>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, e| e.computed.elapsed() < DASHBOARD_TTL);
        entries.insert(
            key,
            CacheEntry {
                checkpoint,
                computed: Instant::now(),
                value,
            },
        );
    }

    /// The dashboard, served from this short cache. A computed dashboard is reused
    /// - for up to [`DASHBOARD_TTL`] while the read model's checkpoint has not moved (the
    ///   time-dependent figures, "at risk" and ages, are at most that old), and
    /// - for up to [`DASHBOARD_MIN_REFRESH`] even if it has (under a stream of writes the
    ///   dashboard is computed at most once a second per process),
    ///
    /// but never when the caller names a position (`X-Consistency-Token`) the cached value
    /// was computed before: read-your-writes holds. Concurrent misses compute it once.
    pub async fn dashboard(
        &self,
        pool: &PgPool,
        at_risk_minutes: i64,
        at_least: Option<Checkpoint>,
    ) -> Result<Arc<Dashboard>, Error> {
        let key = at_risk_minutes;
        let current = checkpoint(pool).await?;
        let usable = |e: &CacheEntry| {
            let age = e.computed.elapsed();
            at_least.is_none_or(|t| e.checkpoint >= t)
                && (age < DASHBOARD_MIN_REFRESH || (e.checkpoint == current && age < DASHBOARD_TTL))
        };
        if let Some(v) = self.cached(key, usable) {
            return Ok(v);
        }
        let lock = self.key_lock(key);
        let _computing = lock.lock().await;
        if let Some(v) = self.cached(key, usable) {
            return Ok(v);
        }
        // Read before computing: the figures include at least everything up to here.
        let at = checkpoint(pool).await?;
        let value = Arc::new(dashboard(pool, at_risk_minutes, Utc::now(), at).await?);
        self.store(key, at, value.clone());
        Ok(value)
    }
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

async fn counts(
    pool: &PgPool,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
) -> Result<Counts, Error> {
    let mut conn = pool.acquire().await?;
    let mut c = Counts {
        by_status: TicketStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect(),
        by_priority: Priority::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect(),
        by_type: TicketType::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect(),
        by_assignee: BTreeMap::new(),
        open_backlog: 0,
        paused: 0,
        breached: TargetCounts::default(),
        at_risk: TargetCounts::default(),
    };
    // [fr_due, fr_breached, res_due, res_breached, sla_due, sla_breached] of the open backlog.
    let mut sla = [0i64; 6];
    type CountRow = (
        String,
        String,
        String,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
    );
    let rows: Vec<CountRow> = sqlx::query_as(
        "select status, priority, type, assignee_key, n, fr_due, fr_breached, res_due, res_breached,
                sla_due, sla_breached
           from rm_report_counts where n <> 0",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (status, priority, kind, assignee, n, a, b, d, e, f, g) in rows {
        *c.by_status.entry(status.clone()).or_default() += n;
        if projections::reports::OPEN_STATUSES.contains(&status.as_str()) {
            c.open_backlog += n;
            if status == "pending" {
                c.paused += n;
            }
            *c.by_priority.entry(priority).or_default() += n;
            *c.by_type.entry(kind).or_default() += n;
            let who = if assignee == 0 {
                "none".to_string()
            } else {
                assignee.to_string()
            };
            *c.by_assignee.entry(who).or_default() += n;
            for (total, x) in sla.iter_mut().zip([a, b, d, e, f, g]) {
                *total += x;
            }
        }
    }
    c.by_assignee.retain(|_, n| *n != 0);
    // Running targets not yet due (a small index range), and those due within the horizon.
    let due: (i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from rm_report_tickets where first_response_due_at >= $1),
                (select count(*) from rm_report_tickets where first_response_due_at >= $1 and first_response_due_at < $2),
                (select count(*) from rm_report_tickets where resolution_due_at >= $1),
                (select count(*) from rm_report_tickets where resolution_due_at >= $1 and resolution_due_at < $2),
                (select count(*) from rm_report_tickets where sla_due_at >= $1),
                (select count(*) from rm_report_tickets where sla_due_at >= $1 and sla_due_at < $2)",
    )
    .bind(now)
    .bind(horizon)
    .fetch_one(&mut *conn)
    .await?;
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

/// Open tickets younger than 1, 3, 7 and 30 days: whole days from the per-day table, the
/// boundary days counted exactly from the facts.
async fn backlog_younger(pool: &PgPool, now: DateTime<Utc>) -> Result<[i64; 4], Error> {
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
async fn daily(pool: &PgPool, now: DateTime<Utc>) -> Result<(Vec<DayPoint>, i64, i64), Error> {
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
) -> Result<(Option<f64>, Option<f64>), Error> {
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
) -> Result<Dashboard, Error> {
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

async fn approval_summary(pool: &PgPool, now: DateTime<Utc>) -> Result<ApprovalSummary, Error> {
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
pub async fn policy_state(conn: &mut sqlx::PgConnection) -> Result<PolicyState, Error> {
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

impl TicketFilters {
    /// Parses the query parameters `status`, `priority`, `type` (comma-separated lists) and
    /// `assignee_id` (a user id or `none`).
    pub fn parse(
        v: &mut Validator,
        status: Option<&str>,
        priority: Option<&str>,
        ticket_type: Option<&str>,
        assignee_id: Option<&str>,
    ) -> Self {
        let assignee_id = parse_assignee(v, assignee_id);
        TicketFilters {
            status: parse_list(v, "status", status, TicketStatus::parse),
            priority: parse_list(v, "priority", priority, Priority::parse),
            ticket_type: parse_list(v, "type", ticket_type, TicketType::parse),
            assignee_id,
        }
    }

    /// SQL conditions (after `not deleted`) binding into `args` from placeholder `$first`.
    fn sql(&self, args: &mut PgArguments, first: usize) -> Result<String, Error> {
        let mut conds = vec!["not deleted".to_string()];
        let mut n = first;
        let mut list = |col: &str, vals: Vec<&'static str>| -> Result<(), Error> {
            if !vals.is_empty() {
                args.add(vals).map_err(Error::internal)?;
                conds.push(format!("{col} = any(${n})"));
                n += 1;
            }
            Ok(())
        };
        list("status", self.status.iter().map(|s| s.as_str()).collect())?;
        list(
            "priority",
            self.priority.iter().map(|s| s.as_str()).collect(),
        )?;
        list(
            "type",
            self.ticket_type.iter().map(|s| s.as_str()).collect(),
        )?;
        match self.assignee_id {
            Some(Some(id)) => {
                args.add(id).map_err(Error::internal)?;
                conds.push(format!("assignee_id = ${n}"));
            }
            Some(None) => conds.push("assignee_id is null".into()),
            None => {}
        }
        Ok(conds.join(" and "))
    }
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

/// The analytics series of `[from, to)` (periods in UTC) for the filtered tickets.
pub async fn analytics(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    group_by: GroupBy,
    filters: TicketFilters,
    now: DateTime<Utc>,
) -> Result<Analytics, Error> {
    let mut periods = Vec::new();
    let mut start = group_by.truncate(from.date_naive());
    while start.and_time(NaiveTime::MIN).and_utc() < to {
        periods.push(start);
        if periods.len() > MAX_PERIODS {
            return Err(Error::Validation(vec![
                crate::service::error::FieldError::query(
                    "group_by",
                    format!(
                        "At most {MAX_PERIODS} periods: choose a shorter range or a longer period"
                    ),
                ),
            ]));
        }
        start = group_by.next(start);
    }
    let mut series: BTreeMap<NaiveDate, Period> = periods
        .iter()
        .map(|p| {
            (
                *p,
                Period {
                    period: *p,
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
                },
            )
        })
        .collect();
    let g = group_by.as_str();
    let bucket = |col: &str| format!("(date_trunc('{g}', {col}, 'UTC') at time zone 'UTC')::date");
    let mut conn = pool.acquire().await?;

    // Each query: $1 from, $2 to, then the filters.
    let run = |sql: String| {
        let mut args = PgArguments::default();
        let _ = args.add(from);
        let _ = args.add(to);
        let conds = filters.sql(&mut args, 3);
        conds.map(|c| (sql.replace("{filters}", &c), args))
    };

    let (sql, args) = run(format!(
        "select {} as p, count(*) from rm_report_tickets
          where {{filters}} and created_at >= $1 and created_at < $2 group by p",
        bucket("created_at")
    ))?;
    let rows: Vec<(NaiveDate, i64)> = sqlx::query_as_with(&sql, args)
        .fetch_all(&mut *conn)
        .await?;
    for (p, n) in rows {
        if let Some(e) = series.get_mut(&p) {
            e.created = n;
        }
    }

    let (sql, args) = run(format!(
        "select {} as p, count(*),
                percentile_cont(array[0.5, 0.9]) within group (order by resolution_seconds),
                count(*) filter (where resolution_breached_at is not null)
           from rm_report_tickets
          where {{filters}} and resolved_at >= $1 and resolved_at < $2 group by p",
        bucket("resolved_at")
    ))?;
    let rows: Vec<(NaiveDate, i64, Vec<f64>, i64)> = sqlx::query_as_with(&sql, args)
        .fetch_all(&mut *conn)
        .await?;
    for (p, n, pct, missed) in rows {
        if let Some(e) = series.get_mut(&p) {
            e.resolved = n;
            e.median_resolution_seconds = pct.first().copied();
            e.p90_resolution_seconds = pct.get(1).copied();
            e.resolution_missed = missed;
        }
    }

    let (sql, args) = run(format!(
        "select {} as p, count(*),
                percentile_cont(array[0.5, 0.9]) within group (order by first_response_seconds),
                count(*) filter (where first_response_breached_at is not null)
           from rm_report_tickets
          where {{filters}} and first_response_at >= $1 and first_response_at < $2 group by p",
        bucket("first_response_at")
    ))?;
    let rows: Vec<(NaiveDate, i64, Vec<f64>, i64)> = sqlx::query_as_with(&sql, args)
        .fetch_all(&mut *conn)
        .await?;
    for (p, n, pct, missed) in rows {
        if let Some(e) = series.get_mut(&p) {
            e.first_responses = n;
            e.median_first_response_seconds = pct.first().copied();
            e.p90_first_response_seconds = pct.get(1).copied();
            e.first_response_missed = missed;
        }
    }

    // When each target was missed: recorded for stopped or paused clocks, the due time for
    // running ones already past it.
    let (sql, mut args) = run(format!(
        "select p, count(*) from (
            select {} as p from rm_report_tickets
             where {{filters}} and first_response_breached_at >= $1 and first_response_breached_at < $2
            union all
            select {} from rm_report_tickets
             where {{filters}} and resolution_breached_at >= $1 and resolution_breached_at < $2
            union all
            select {} from rm_report_tickets
             where {{filters}} and first_response_due_at >= $1 and first_response_due_at < least($2, $NOW)
            union all
            select {} from rm_report_tickets
             where {{filters}} and resolution_due_at >= $1 and resolution_due_at < least($2, $NOW)
         ) missed group by p",
        bucket("first_response_breached_at"),
        bucket("resolution_breached_at"),
        bucket("first_response_due_at"),
        bucket("resolution_due_at"),
    ))?;
    let now_placeholder = format!("${}", args.len() + 1);
    args.add(now).map_err(Error::internal)?;
    let sql = sql.replace("$NOW", &now_placeholder);
    let rows: Vec<(NaiveDate, i64)> = sqlx::query_as_with(&sql, args)
        .fetch_all(&mut *conn)
        .await?;
    for (p, n) in rows {
        if let Some(e) = series.get_mut(&p) {
            e.breaches = n;
        }
    }

    Ok(Analytics {
        from,
        to,
        group_by,
        filters,
        series: series.into_values().collect(),
    })
}

/// The default analytics range ending at `to`.
pub fn default_from(to: DateTime<Utc>) -> DateTime<Utc> {
    to - chrono::Duration::days(DASHBOARD_DAYS)
}
