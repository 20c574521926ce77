//! What every read model does with a batch: decode its events (poison when one cannot be
//! decoded), and write its rows in one statement as a JSON array that the statement unpacks
//! with `jsonb_to_recordset($1)`.

use serde::Serialize;
use sqlx::PgConnection;

use crate::runtime::ApplyError;

/// Runs `sql` (which reads `jsonb_to_recordset($1)`) with `rows` as its JSON array; nothing
/// when there are no rows.
pub async fn write_json_rows<T: Serialize>(
    conn: &mut PgConnection,
    rows: &[T],
    sql: &str,
) -> Result<(), ApplyError> {
    if rows.is_empty() {
        return Ok(());
    }
    let payload = serde_json::to_value(rows).map_err(|e| ApplyError::Poison {
        position: -1,
        reason: e.to_string(),
    })?;
    sqlx::query(sql).bind(payload).execute(&mut *conn).await?;
    Ok(())
}

/// The rows that `sql` selects for the tickets `ids` (its `$1`, a `bigint[]`), but for those
/// whose first event (sequence 1) is in `events`: no read model holds a row of theirs from
/// before this batch. A batch of new tickets, the usual one under creation load, then needs no
/// lookup at all.
pub async fn rows_before<T>(
    conn: &mut PgConnection,
    sql: &str,
    ids: &[i64],
    events: &[crate::log::StoredEvent],
) -> Result<Vec<T>, ApplyError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let started: std::collections::HashSet<i64> = events
        .iter()
        .filter(|e| e.aggregate_type == "ticket" && e.sequence == 1)
        .filter_map(|e| e.aggregate_id.parse().ok())
        .collect();
    let lookup: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| !started.contains(id))
        .collect();
    if lookup.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as(sql)
        .bind(&lookup)
        .fetch_all(&mut *conn)
        .await?)
}

/// A ticket event of the log, decoded with its ticket id; poison if it cannot be.
pub fn ticket_event(
    e: &crate::log::StoredEvent,
) -> Result<(i64, aggregates::ticket::TicketEvent), ApplyError> {
    let id: i64 = e
        .aggregate_id
        .parse()
        .map_err(|_| ApplyError::poison(e, "ticket id is not a number"))?;
    Ok((id, payload(e)?))
}

/// An approval event of the log, decoded with its approval id; poison if it cannot be.
pub fn approval_event(
    e: &crate::log::StoredEvent,
) -> Result<(uuid::Uuid, aggregates::approval::ApprovalEvent), ApplyError> {
    let id: uuid::Uuid = e
        .aggregate_id
        .parse()
        .map_err(|_| ApplyError::poison(e, "approval id is not a UUID"))?;
    Ok((id, payload(e)?))
}

fn payload<T: serde::de::DeserializeOwned>(e: &crate::log::StoredEvent) -> Result<T, ApplyError> {
    T::deserialize(&e.payload)
        .map_err(|err| ApplyError::poison(e, format!("undecodable {}: {err}", e.event_type)))
}

/// An erasure's rewrite of one read-model column: the rows of `table` whose `owner` column is
/// `person` read `"[erased]"` in `column` (rebuilt, their sealed text opens to the same).
pub async fn redact(
    conn: &mut sqlx::PgConnection,
    table: &str,
    column: &str,
    owner: &str,
    person: i64,
) -> Result<(), crate::ApplyError> {
    sqlx::query(&format!(
        "update {table} set {column} = $2 where {owner} = $1 and {column} <> ''"
    ))
    .bind(person)
    .bind(privacy::ERASED)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Rows in the text format of PostgreSQL's `COPY … FROM STDIN`: fields are appended in the
/// column order of the `COPY`, each row closed by [`CopyText::end_row`].
#[derive(Debug, Default)]
pub struct CopyText {
    buf: Vec<u8>,
    in_row: bool,
}

impl CopyText {
    /// The rows so far, and an empty buffer for the next.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Whether no row was written since the last take.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn field(&mut self) -> &mut Vec<u8> {
        if self.in_row {
            self.buf.push(b'\t');
        }
        self.in_row = true;
        &mut self.buf
    }

    /// Appends `s` escaped for the format (backslash, tab, newline, carriage return).
    fn escaped(buf: &mut Vec<u8>, s: &str) {
        for b in s.bytes() {
            match b {
                b'\\' => buf.extend_from_slice(b"\\\\"),
                b'\t' => buf.extend_from_slice(b"\\t"),
                b'\n' => buf.extend_from_slice(b"\\n"),
                b'\r' => buf.extend_from_slice(b"\\r"),
                _ => buf.push(b),
            }
        }
    }

    /// A text field.
    pub fn text(&mut self, s: &str) -> &mut Self {
        Self::escaped(self.field(), s);
        self
    }

    /// A NULL.
    pub fn null(&mut self) -> &mut Self {
        self.field().extend_from_slice(b"\\N");
        self
    }

    /// A number, or anything else whose `Display` is its input form (no escaping).
    pub fn plain(&mut self, v: impl std::fmt::Display) -> &mut Self {
        use std::io::Write;
        let _ = write!(self.field(), "{v}");
        self
    }

    /// A boolean.
    pub fn boolean(&mut self, v: bool) -> &mut Self {
        self.field().push(if v { b't' } else { b'f' });
        self
    }

    /// A timestamp with time zone.
    pub fn time(&mut self, t: chrono::DateTime<chrono::Utc>) -> &mut Self {
        self.plain(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }

    /// A timestamp with time zone, or NULL.
    pub fn maybe_time(&mut self, t: Option<chrono::DateTime<chrono::Utc>>) -> &mut Self {
        match t {
            Some(t) => self.time(t),
            None => self.null(),
        }
    }

    /// A number, or NULL.
    pub fn maybe_plain(&mut self, v: Option<impl std::fmt::Display>) -> &mut Self {
        match v {
            Some(v) => self.plain(v),
            None => self.null(),
        }
    }

    /// A `text[]`: every element quoted, its quotes and backslashes escaped.
    pub fn text_array(&mut self, items: &[String]) -> &mut Self {
        let mut literal = String::from("{");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                literal.push(',');
            }
            literal.push('"');
            for c in item.chars() {
                if c == '"' || c == '\\' {
                    literal.push('\\');
                }
                literal.push(c);
            }
            literal.push('"');
        }
        literal.push('}');
        self.text(&literal)
    }

    /// A `bigint[]`.
    pub fn int_array(&mut self, items: &[i64]) -> &mut Self {
        let items: Vec<String> = items.iter().map(i64::to_string).collect();
        self.plain(format_args!("{{{}}}", items.join(",")))
    }

    /// A `jsonb` field.
    pub fn json<T: Serialize>(&mut self, value: &T) -> Result<&mut Self, ApplyError> {
        let text = serde_json::to_string(value).map_err(|e| ApplyError::Poison {
            position: -1,
            reason: e.to_string(),
        })?;
        Ok(self.text(&text))
    }

    /// Closes the row.
    pub fn end_row(&mut self) {
        self.buf.push(b'\n');
        self.in_row = false;
    }
}

/// Writes `rows` (in the text format) to `table`'s `columns` with one `COPY`.
pub async fn copy_rows(
    conn: &mut PgConnection,
    table: &str,
    columns: &str,
    rows: Vec<u8>,
) -> Result<(), ApplyError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut copy = conn
        .copy_in_raw(&format!("copy {table} ({columns}) from stdin"))
        .await?;
    match copy.send(rows).await {
        Ok(_) => {
            copy.finish().await?;
            Ok(())
        }
        Err(e) => {
            let _ = copy.abort(e.to_string()).await;
            Err(e.into())
        }
    }
}
