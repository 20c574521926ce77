//! Reports on the `reports` read model, shared by the HTTP API (`http::reports`) and the CLI
//! (`ticketd report`): checks their parameters, caches the dashboard and runs the read
//! model's queries (`projections::reports::queries`); the ticket export.

pub mod export;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use aggregates::{Priority, TicketStatus, TicketType};
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use projections::reports::queries;
use projections::Checkpoint;
use sqlx::PgPool;

pub use projections::reports::queries::{
    checkpoint, policy_state, Analytics, ApprovalSummary, Bucket, Dashboard, DayPoint, GroupBy,
    Period, PolicyState, SlaSummary, TargetCounts, TicketFilters, DASHBOARD_DAYS, MAX_PERIODS,
};

use crate::service::error::{Error, FieldError, Validator};
use crate::service::tickets::list::{parse_assignee, parse_list};

/// The checkpoint name of the read model every report reads.
pub const PROJECTION: &str = projections::reports::ReportsProjection::NAME;
/// How long a computed dashboard is reused while the read model has not moved.
pub const DASHBOARD_TTL: StdDuration = StdDuration::from_secs(5);
/// How long a computed dashboard is reused even though the read model has moved.
pub const DASHBOARD_MIN_REFRESH: StdDuration = StdDuration::from_secs(1);
/// Default of `at_risk_minutes`: a running target due within this many minutes is at risk.
pub const DEFAULT_AT_RISK_MINUTES: i64 = 60;

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

/// Parses the query parameters `status`, `priority`, `type` (comma-separated lists) and
/// `assignee_id` (a user id or `none`) into the filters of analytics.
pub fn parse_filters(
    v: &mut Validator,
    status: Option<&str>,
    priority: Option<&str>,
    ticket_type: Option<&str>,
    assignee_id: Option<&str>,
) -> TicketFilters {
    let assignee_id = parse_assignee(v, assignee_id, None);
    TicketFilters {
        status: parse_list(v, "status", status, TicketStatus::parse),
        priority: parse_list(v, "priority", priority, Priority::parse),
        ticket_type: parse_list(v, "type", ticket_type, TicketType::parse),
        assignee_id,
    }
}

/// The analytics series of `[from, to)` (periods in UTC) for the filtered tickets; at most
/// [`MAX_PERIODS`] periods.
pub async fn analytics(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    group_by: GroupBy,
    filters: TicketFilters,
    now: DateTime<Utc>,
) -> Result<Analytics, Error> {
    if queries::periods(from, to, group_by).len() > MAX_PERIODS {
        return Err(Error::Validation(vec![FieldError::query(
            "group_by",
            format!("At most {MAX_PERIODS} periods: choose a shorter range or a longer period"),
        )]));
    }
    Ok(queries::analytics(pool, (from, to), group_by, filters, now).await?)
}

/// Computes the dashboard as of `now` (uncached).
pub async fn dashboard(
    pool: &PgPool,
    at_risk_minutes: i64,
    now: DateTime<Utc>,
    checkpoint: Checkpoint,
) -> Result<Dashboard, Error> {
    Ok(queries::dashboard(pool, at_risk_minutes, now, checkpoint).await?)
}

/// The default analytics range ending at `to`.
pub fn default_from(to: DateTime<Utc>) -> DateTime<Utc> {
    to - chrono::Duration::days(DASHBOARD_DAYS)
}
