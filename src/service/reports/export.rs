//! The ticket export: every live ticket created in a range, as CSV or a JSON array, streamed
//! in constant memory. One task reads the rows with a sqlx `fetch` stream and hands chunks of
//! about 64 KiB to the response through a channel of a few chunks, so a slow client slows the
//! query down instead of filling memory.

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use futures::{Stream, TryStreamExt};
use serde::Serialize;
use sqlx::{FromRow, PgPool};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    /// A Markdown table (CLI).
    Markdown,
    /// Aligned text columns (CLI).
    Table,
}

impl Format {
    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Markdown => "md",
            Format::Table => "txt",
        }
    }

    /// The media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Markdown => "text/markdown; charset=utf-8",
            Format::Table => "text/plain; charset=utf-8",
        }
    }
}

/// One exported ticket.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct ExportRow {
    pub id: i64,
    pub title: String,
    pub status: String,
    pub priority: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub ticket_type: String,
    pub requester_id: i64,
    pub assignee_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub first_response_seconds: Option<i64>,
    pub resolution_seconds: Option<i64>,
    pub paused_seconds: i64,
    pub first_response_business_seconds: Option<i64>,
    pub resolution_business_seconds: Option<i64>,
    pub first_response_due_at: Option<DateTime<Utc>>,
    pub resolution_due_at: Option<DateTime<Utc>>,
    pub first_response_breached: bool,
    pub resolution_breached: bool,
    pub reopened: i32,
}

/// The CSV header (the `ExportRow` field names).
pub const HEADER: [&str; 21] = [
    "id",
    "title",
    "status",
    "priority",
    "type",
    "requester_id",
    "assignee_id",
    "created_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "first_response_seconds",
    "resolution_seconds",
    "paused_seconds",
    "first_response_business_seconds",
    "resolution_business_seconds",
    "first_response_due_at",
    "resolution_due_at",
    "first_response_breached",
    "resolution_breached",
    "reopened",
];

const SELECT: &str = "select id, title, status, priority, type, requester_id, assignee_id, created_at,
        first_response_at, resolved_at, closed_at, first_response_seconds, resolution_seconds,
        paused_seconds, first_response_business_seconds, resolution_business_seconds,
        first_response_due_at, resolution_due_at,
        (first_response_breached_at is not null or coalesce(first_response_due_at < $3, false)) as first_response_breached,
        (resolution_breached_at is not null or coalesce(resolution_due_at < $3, false)) as resolution_breached,
        reopened
   from rm_report_tickets
  where not deleted and created_at >= $1 and created_at < $2
  order by created_at, id";

/// Appends one CSV cell: a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return
/// is prefixed with `'` so spreadsheets show it as text instead of running it as a formula
/// (OWASP "CSV injection"); a cell with a comma, quote or line break is quoted, quotes doubled.
pub fn csv_cell(out: &mut String, cell: &str) {
    let neutralise = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = cell.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if neutralise {
        out.push('\'');
    }
    if quote {
        for c in cell.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(cell);
    }
}

fn time(t: &Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

fn num<T: ToString>(n: &Option<T>) -> String {
    n.as_ref().map(|n| n.to_string()).unwrap_or_default()
}

impl ExportRow {
    /// The row's cells as text, in `HEADER` order.
    pub fn cells(&self) -> [String; 21] {
        [
            self.id.to_string(),
            self.title.clone(),
            self.status.clone(),
            self.priority.clone(),
            self.ticket_type.clone(),
            self.requester_id.to_string(),
            num(&self.assignee_id),
            time(&Some(self.created_at)),
            time(&self.first_response_at),
            time(&self.resolved_at),
            time(&self.closed_at),
            num(&self.first_response_seconds),
            num(&self.resolution_seconds),
            self.paused_seconds.to_string(),
            num(&self.first_response_business_seconds),
            num(&self.resolution_business_seconds),
            time(&self.first_response_due_at),
            time(&self.resolution_due_at),
            self.first_response_breached.to_string(),
            self.resolution_breached.to_string(),
            self.reopened.to_string(),
        ]
    }
}

/// Writes rows in a format; `first` tells whether this is the first row (for separators).
struct Writer {
    format: Format,
    rows: u64,
}

/// Column widths of the text table (the title is cut to fit).
const TABLE_WIDTHS: [usize; 21] = [
    8, 40, 11, 8, 15, 12, 11, 27, 27, 27, 27, 9, 9, 9, 9, 9, 27, 27, 5, 5, 3,
];

fn md_cell(cell: &str) -> String {
    cell.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

impl Writer {
    fn start(&self, out: &mut String) {
        match self.format {
            Format::Csv => {
                out.push_str(&HEADER.join(","));
                out.push_str("\r\n");
            }
            Format::Json => out.push('['),
            Format::Markdown => {
                out.push_str(&format!("| {} |\n", HEADER.join(" | ")));
                out.push_str(&format!("|{}\n", "---|".repeat(HEADER.len())));
            }
            Format::Table => {
                let cells: Vec<String> = HEADER
                    .iter()
                    .zip(TABLE_WIDTHS)
                    .map(|(h, w)| format!("{:<w$}", truncate(h, w)))
                    .collect();
                out.push_str(cells.join(" ").trim_end());
                out.push('\n');
            }
        }
    }

    fn row(&mut self, out: &mut String, row: &ExportRow) {
        match self.format {
            Format::Csv => {
                for (i, cell) in row.cells().iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    csv_cell(out, cell);
                }
                out.push_str("\r\n");
            }
            Format::Json => {
                if self.rows > 0 {
                    out.push(',');
                }
                out.push('\n');
                if let Ok(json) = serde_json::to_string(row) {
                    out.push_str(&json);
                }
            }
            Format::Markdown => {
                let cells: Vec<String> = row.cells().iter().map(|c| md_cell(c)).collect();
                out.push_str(&format!("| {} |\n", cells.join(" | ")));
            }
            Format::Table => {
                let cells: Vec<String> = row
                    .cells()
                    .iter()
                    .zip(TABLE_WIDTHS)
                    .map(|(c, w)| {
                        format!("{:<w$}", truncate(&c.replace(['\n', '\r', '\t'], " "), w))
                    })
                    .collect();
                out.push_str(cells.join(" ").trim_end());
                out.push('\n');
            }
        }
        self.rows += 1;
    }

    fn finish(&self, out: &mut String) {
        if self.format == Format::Json {
            out.push_str(if self.rows > 0 { "\n]\n" } else { "]\n" });
        }
    }
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The export's range with defaults (everything).
pub fn bounds(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let min = Utc
        .with_ymd_and_hms(1970, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let max = Utc
        .with_ymd_and_hms(10000, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_else(Utc::now);
    (from.unwrap_or(min), to.unwrap_or(max))
}

const CHUNK: usize = 64 * 1024;

/// Streams the export of tickets created in `[from, to)` as chunks of bytes. The query runs
/// on its own task and connection; dropping the stream stops it.
pub fn stream(
    pool: PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    format: Format,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let now = Utc::now();
        let mut writer = Writer { format, rows: 0 };
        let mut buf = String::with_capacity(CHUNK + 4096);
        writer.start(&mut buf);
        let result: Result<(), sqlx::Error> = async {
            let mut conn = pool.acquire().await?;
            let mut rows = sqlx::query_as::<_, ExportRow>(SELECT)
                .bind(from)
                .bind(to)
                .bind(now)
                .fetch(&mut *conn);
            while let Some(row) = rows.try_next().await? {
                writer.row(&mut buf, &row);
                if buf.len() >= CHUNK {
                    let chunk = Bytes::from(std::mem::replace(
                        &mut buf,
                        String::with_capacity(CHUNK + 4096),
                    ));
                    if tx.send(Ok(chunk)).await.is_err() {
                        // The client went away.
                        return Ok(());
                    }
                }
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                writer.finish(&mut buf);
                let _ = tx.send(Ok(Bytes::from(buf))).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "export failed mid-stream");
                let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
            }
        }
    });
    ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(s: &str) -> String {
        let mut out = String::new();
        csv_cell(&mut out, s);
        out
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell("=1+1"), "'=1+1");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("\tx"), "'\tx");
        assert_eq!(
            cell("=HYPERLINK(\"x\",\"y\")"),
            "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\""
        );
        assert_eq!(cell(""), "");
    }
}
