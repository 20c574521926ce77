//! `ticketd report dashboard|analytics|tickets`: the reports of the API, from the same read
//! model and the same query code, as a table, CSV, JSON or Markdown, to stdout or a file.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{Duration, Utc};
use clap::{Args, Subcommand, ValueEnum};
use futures::StreamExt;

use projections::catch_up::{catch_up, Driver};
use sqlx::PgPool;

use crate::cli::progress::Progress;
use crate::service::error::any::Result;
use crate::service::error::{Error, Validator};
use crate::service::reports::export::{self, Format};
use crate::service::reports::{self, Analytics, Dashboard, GroupBy, SlaSummary};

/// Output formats of `ticketd report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    Md,
}

impl From<OutputFormat> for Format {
    fn from(f: OutputFormat) -> Self {
        match f {
            OutputFormat::Table => Format::Table,
            OutputFormat::Csv => Format::Csv,
            OutputFormat::Json => Format::Json,
            OutputFormat::Md => Format::Markdown,
        }
    }
}

/// Options every report takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Start (a date YYYY-MM-DD or an RFC 3339 time, UTC).
    #[arg(long)]
    pub from: Option<String>,
    /// End (a date is included whole; a time is exclusive).
    #[arg(long)]
    pub to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

/// `ticketd report ...`
#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// The manager dashboard (as `GET /api/v1/reports/dashboard`).
    Dashboard {
        #[command(flatten)]
        common: Common,
        /// A running SLA target due within this many minutes is "at risk".
        #[arg(long, default_value_t = reports::DEFAULT_AT_RISK_MINUTES)]
        at_risk_minutes: i64,
    },
    /// A time series (as `GET /api/v1/reports/analytics`); default: the last 30 days.
    Analytics {
        #[command(flatten)]
        common: Common,
        /// day, week or month.
        #[arg(long, default_value = "day")]
        group_by: String,
        /// Comma-separated statuses.
        #[arg(long)]
        status: Option<String>,
        /// Comma-separated priorities.
        #[arg(long)]
        priority: Option<String>,
        /// Comma-separated types.
        #[arg(long = "type")]
        ticket_type: Option<String>,
        /// A user id, or `none` for unassigned tickets.
        #[arg(long)]
        assignee_id: Option<String>,
    },
    /// Every ticket created in the range (as `GET /api/v1/reports/export`), streamed.
    Tickets {
        #[command(flatten)]
        common: Common,
    },
}

fn sink(out: &Option<std::path::PathBuf>) -> Result<Box<dyn Write>> {
    Ok(match out {
        Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    })
}

fn invalid(e: Error) -> crate::service::error::any::Error {
    match e {
        Error::Validation(errors) => errors
            .iter()
            .map(|e| {
                let field = e.loc.last().map(|l| l.to_string()).unwrap_or_default();
                format!("--{}: {}", field.trim_matches('"').replace('_', "-"), e.msg)
            })
            .collect::<Vec<_>>()
            .join("; ")
            .into(),
        other => other.to_string().into(),
    }
}

/// Brings the reports read model up to the head of the log before reading it (it advances only
/// while a process runs its projection: without this, a report after `seed` with no server
/// running would show zeros and say nothing), and says on stderr how current the figures are.
async fn bring_up_to_date(pool: &PgPool) -> Result<()> {
    let projection = projections::reports::ReportsProjection;
    let mut shown: Option<Progress> = None;
    let mut progress = |done: u64, total: u64| {
        shown
            .get_or_insert_with(|| Progress::new("reports", "events", Some(total)))
            .set(done);
    };
    let caught = catch_up(pool, &projection, 5000, &mut progress)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(p) = &shown {
        p.finish(caught.behind);
    }
    let newest: Option<chrono::DateTime<Utc>> =
        sqlx::query_scalar("select recorded_at from events where global_position = $1")
            .bind(caught.checkpoint.position)
            .fetch_optional(pool)
            .await?;
    let as_of = newest.map_or_else(|| "an empty log".to_string(), |t| t.to_rfc3339());
    let how = match (caught.driver, caught.reached) {
        (_, false) => "NOT current: a transaction left open somewhere holds the log back; \
                       these figures miss the newest events"
            .to_string(),
        (Driver::Current, true) => "current with the log".to_string(),
        (Driver::Here, true) => {
            format!(
                "current with the log ({} events applied now)",
                caught.behind
            )
        }
        (Driver::Leader, true) => {
            "current with the log (brought up to date by the running server)".to_string()
        }
    };
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "figures as of {as_of}: {how}");
    Ok(())
}

/// Runs a report command.
pub async fn run(pool: &PgPool, command: ReportCmd) -> Result<()> {
    bring_up_to_date(pool).await?;
    match command {
        ReportCmd::Dashboard {
            common,
            at_risk_minutes,
        } => {
            if !(1..=10_080).contains(&at_risk_minutes) {
                return Err("--at-risk-minutes must be between 1 and 10080".into());
            }
            let at = reports::checkpoint(pool).await?;
            let d = reports::dashboard(pool, at_risk_minutes, Utc::now(), at)
                .await
                .map_err(invalid)?;
            let mut w = sink(&common.out)?;
            write_dashboard(&mut w, &d, common.format.into())?;
            w.flush()?;
        }
        ReportCmd::Analytics {
            common,
            group_by,
            status,
            priority,
            ticket_type,
            assignee_id,
        } => {
            let mut v = Validator::default();
            let (from, to) =
                reports::parse_range(&mut v, common.from.as_deref(), common.to.as_deref());
            let group = GroupBy::parse(&group_by);
            v.check_query(group.is_some(), "group_by", "must be day, week or month");
            let filters = reports::parse_filters(
                &mut v,
                status.as_deref(),
                priority.as_deref(),
                ticket_type.as_deref(),
                assignee_id.as_deref(),
            );
            v.finish().map_err(invalid)?;
            let now = Utc::now();
            let to = to.unwrap_or(now);
            let from = from.unwrap_or(to - Duration::days(reports::DASHBOARD_DAYS));
            if from >= to {
                return Err("--from must be before --to".into());
            }
            let a = reports::analytics(pool, from, to, group.unwrap_or(GroupBy::Day), filters, now)
                .await
                .map_err(invalid)?;
            let mut w = sink(&common.out)?;
            write_analytics(&mut w, &a, common.format.into())?;
            w.flush()?;
        }
        ReportCmd::Tickets { common } => {
            let mut v = Validator::default();
            let (from, to) =
                reports::parse_range(&mut v, common.from.as_deref(), common.to.as_deref());
            v.finish().map_err(invalid)?;
            let (from, to) = export::bounds(from, to);
            let mut w = sink(&common.out)?;
            let mut chunks = Box::pin(export::stream(pool.clone(), from, to, common.format.into()));
            let progress = Progress::new("report tickets", "bytes", None);
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                w.write_all(&chunk)?;
                progress.add(chunk.len() as u64);
            }
            w.flush()?;
            progress.finish(progress.done());
        }
    }
    Ok(())
}

/// Renders rows of cells in a format (the first row is the header).
fn write_rows(w: &mut dyn Write, rows: &[Vec<String>], format: Format) -> std::io::Result<()> {
    match format {
        Format::Csv => {
            for row in rows {
                let mut line = String::new();
                for (i, cell) in row.iter().enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    export::csv_cell(&mut line, cell);
                }
                write!(w, "{line}\r\n")?;
            }
        }
        Format::Markdown => {
            for (i, row) in rows.iter().enumerate() {
                writeln!(w, "| {} |", row.join(" | "))?;
                if i == 0 {
                    writeln!(w, "|{}", "---|".repeat(row.len()))?;
                }
            }
        }
        Format::Table | Format::Json => {
            let columns = rows.first().map(Vec::len).unwrap_or(0);
            let widths: Vec<usize> = (0..columns)
                .map(|c| {
                    rows.iter()
                        .map(|r| r.get(c).map(|s| s.chars().count()).unwrap_or(0))
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            for row in rows {
                let line: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(cell, w)| format!("{cell:<w$}"))
                    .collect();
                writeln!(w, "{}", line.join("  ").trim_end())?;
            }
        }
    }
    Ok(())
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.0}")).unwrap_or_default()
}

/// Rows of `section, key, value` cells.
struct Sections(Vec<Vec<String>>);

impl Sections {
    fn add(&mut self, section: &str, key: &str, value: String) {
        self.0
            .push(vec![section.to_string(), key.to_string(), value]);
    }

    fn counts(&mut self, section: &str, counts: &BTreeMap<String, i64>) {
        for (k, v) in counts {
            self.add(section, k, v.to_string());
        }
    }

    fn seconds(&mut self, section: &str, values: &[(&str, Option<f64>)]) {
        for (k, v) in values {
            self.add(section, k, opt(*v));
        }
    }

    fn numbers(&mut self, section: &str, values: &[(&str, i64)]) {
        for (k, v) in values {
            self.add(section, k, v.to_string());
        }
    }
}

fn write_dashboard(w: &mut dyn Write, d: &Dashboard, format: Format) -> Result<()> {
    if format == Format::Json {
        serde_json::to_writer_pretty(&mut *w, d)?;
        writeln!(w)?;
        return Ok(());
    }
    let mut rows = Sections(vec![vec![
        "section".to_string(),
        "key".into(),
        "value".into(),
    ]]);
    rows.counts("by_status", &d.by_status);
    rows.counts("by_priority", &d.by_priority);
    rows.counts("by_type", &d.by_type);
    rows.counts("by_assignee", &d.by_assignee);
    rows.add("backlog", "open", d.open_backlog.to_string());
    for b in &d.backlog_by_age {
        rows.add("backlog_by_age", &b.bucket, b.count.to_string());
    }
    rows.seconds(
        "time",
        &[
            (
                "median_first_response_seconds",
                d.median_first_response_seconds,
            ),
            ("p90_first_response_seconds", d.p90_first_response_seconds),
            ("median_resolution_seconds", d.median_resolution_seconds),
            ("p90_resolution_seconds", d.p90_resolution_seconds),
        ],
    );
    add_sla(&mut rows, &d.sla);
    rows.add("approvals", "pending", d.approvals.pending.to_string());
    rows.seconds(
        "approvals",
        &[
            ("oldest_age_seconds", d.approvals.oldest_age_seconds),
            ("median_age_seconds", d.approvals.median_age_seconds),
        ],
    );
    for p in &d.created_vs_resolved {
        let value = format!("{} / {}", p.created, p.resolved);
        rows.add("created_vs_resolved", &p.date.to_string(), value);
    }
    rows.add("policy", "version", d.policy.version.to_string());
    let applied = d.policy.applied_to_history.to_string();
    rows.add("policy", "applied_to_history", applied);
    write_rows(w, &rows.0, format)?;
    Ok(())
}

fn add_sla(rows: &mut Sections, sla: &SlaSummary) {
    rows.numbers(
        "sla",
        &[
            ("breached_first_response", sla.breached.first_response),
            ("breached_resolution", sla.breached.resolution),
            ("breached_any", sla.breached.any),
        ],
    );
    let at_risk = format!("at_risk_within_{}_minutes", sla.at_risk_minutes);
    rows.add("sla", &at_risk, sla.at_risk.any.to_string());
    rows.numbers(
        "sla",
        &[
            ("paused", sla.paused),
            (
                "missed_first_response_last_30_days",
                sla.missed_last_30_days.first_response,
            ),
            (
                "missed_resolution_last_30_days",
                sla.missed_last_30_days.resolution,
            ),
        ],
    );
}

fn write_analytics(w: &mut dyn Write, a: &Analytics, format: Format) -> Result<()> {
    if format == Format::Json {
        serde_json::to_writer_pretty(&mut *w, a)?;
        writeln!(w)?;
        return Ok(());
    }
    let mut rows = vec![[
        "period",
        "created",
        "resolved",
        "first_responses",
        "median_first_response_s",
        "p90_first_response_s",
        "median_resolution_s",
        "p90_resolution_s",
        "first_response_missed",
        "resolution_missed",
        "breaches",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for p in &a.series {
        rows.push(vec![
            p.period.to_string(),
            p.created.to_string(),
            p.resolved.to_string(),
            p.first_responses.to_string(),
            opt(p.median_first_response_seconds),
            opt(p.p90_first_response_seconds),
            opt(p.median_resolution_seconds),
            opt(p.p90_resolution_seconds),
            p.first_response_missed.to_string(),
            p.resolution_missed.to_string(),
            p.breaches.to_string(),
        ]);
    }
    write_rows(w, &rows, format)?;
    Ok(())
}
