//! The ticket export: every live ticket created in a range, as CSV or a JSON array, streamed
//! in constant memory. One task reads the rows with a sqlx `fetch` stream and hands chunks of
//! about 64 KiB to the response through a channel of a few chunks, so a slow client slows the
//! query down instead of filling memory.

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use futures::{Stream, TryStreamExt};
use projections::reports::queries;
use projections::reports::ReportRow;
use serde_json::{json, Value};
use sqlx::PgPool;
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

/// The CSV header and the JSON keys of an exported ticket.
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

/// Whether a target was missed: recorded as missed, or running past its due time.
fn missed(
    breached_at: Option<DateTime<Utc>>,
    due_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    breached_at.is_some() || due_at.is_some_and(|due| due < now)
}

/// An exported ticket's values in `HEADER` order, as JSON shows them.
fn values(row: &ReportRow, now: DateTime<Utc>) -> [Value; 21] {
    [
        json!(row.id),
        json!(row.title),
        json!(row.status),
        json!(row.priority),
        json!(row.ticket_type),
        json!(row.requester_id),
        json!(row.assignee_id),
        json!(row.created_at),
        json!(row.first_response_at),
        json!(row.resolved_at),
        json!(row.closed_at),
        json!(row.first_response_seconds),
        json!(row.resolution_seconds),
        json!(row.paused_seconds),
        json!(row.first_response_business_seconds),
        json!(row.resolution_business_seconds),
        json!(row.clock.first_response_due_at),
        json!(row.clock.resolution_due_at),
        json!(missed(
            row.clock.first_response_breached_at,
            row.clock.first_response_due_at,
            now
        )),
        json!(missed(
            row.clock.resolution_breached_at,
            row.clock.resolution_due_at,
            now
        )),
        json!(row.reopened),
    ]
}

/// An exported ticket's cells as text, in `HEADER` order (empty for no value).
pub fn cells(row: &ReportRow, now: DateTime<Utc>) -> [String; 21] {
    values(row, now).map(|v| match v {
        Value::Null => String::new(),
        Value::String(s) => s,
        other => other.to_string(),
    })
}

/// An exported ticket as a JSON object, keys in `HEADER` order.
fn json_object(row: &ReportRow, now: DateTime<Utc>) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in HEADER.iter().zip(values(row, now)).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{}:{value}", Value::from(*key)));
    }
    out.push('}');
    out
}

/// Writes rows in a format; `first` tells whether this is the first row (for separators).
struct Writer {
    format: Format,
    rows: u64,
    /// When the export started: running targets past due by then are missed.
    now: DateTime<Utc>,
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

    fn row(&mut self, out: &mut String, row: &ReportRow) {
        match self.format {
            Format::Csv => {
                for (i, cell) in cells(row, self.now).iter().enumerate() {
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
                out.push_str(&json_object(row, self.now));
            }
            Format::Markdown => {
                let cells: Vec<String> = cells(row, self.now).iter().map(|c| md_cell(c)).collect();
                out.push_str(&format!("| {} |\n", cells.join(" | ")));
            }
            Format::Table => {
                let cells: Vec<String> = cells(row, self.now)
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
        let mut writer = Writer {
            format,
            rows: 0,
            now,
        };
        let mut buf = String::with_capacity(CHUNK + 4096);
        writer.start(&mut buf);
        let result: Result<(), sqlx::Error> = async {
            let mut conn = pool.acquire().await?;
            let mut rows = queries::export_rows(&mut conn, from, to);
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
    fn times_in_cells_are_rfc3339_with_the_fraction_only_when_there_is_one() {
        use chrono::SecondsFormat;
        let whole = Utc
            .with_ymd_and_hms(2026, 3, 1, 9, 30, 0)
            .single()
            .expect("a valid time");
        for t in [whole, whole + chrono::Duration::microseconds(1234)] {
            let shown = match json!(t) {
                Value::String(s) => s,
                other => panic!("a time is shown as {other}"),
            };
            assert_eq!(shown, t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        }
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
