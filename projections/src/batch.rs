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

/// Rows in the binary format of PostgreSQL's `COPY … FROM STDIN (FORMAT binary)`: fields are
/// appended in the column order of the `COPY`, each row closed by [`CopyRows::end_row`]. Each
/// field must be of its column's exact type (`int8`, `int4`, `int2`, …): PostgreSQL reads the
/// bytes as that type. Binary, not text: PostgreSQL then parses no timestamp, number or
/// array from text, which was half of what a text `COPY` of the tickets cost it.
#[derive(Debug, Default)]
pub struct CopyRows {
    buf: Vec<u8>,
    /// Where the current row's field count goes, and the count so far.
    row: Option<(usize, i16)>,
}

/// PostgreSQL's epoch (2000-01-01T00:00:00Z) in Unix seconds.
const PG_EPOCH_SECONDS: i64 = 946_684_800;
/// The type oids of array elements.
const TEXT_OID: u32 = 25;
const INT8_OID: u32 = 20;

impl CopyRows {
    /// The rows so far as one `COPY`'s data (header, rows, trailer; empty if no row), and an
    /// empty buffer for the next.
    pub fn take(&mut self) -> Vec<u8> {
        let rows = std::mem::take(&mut self.buf);
        if rows.is_empty() {
            return rows;
        }
        let mut data = Vec::with_capacity(rows.len() + 21);
        data.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        data.extend_from_slice(&0i32.to_be_bytes()); // flags
        data.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        data.extend_from_slice(&rows);
        data.extend_from_slice(&(-1i16).to_be_bytes());
        data
    }

    /// Starts a field of `len` bytes (-1: NULL), opening a row if none is open.
    fn field(&mut self, len: i32) -> &mut Vec<u8> {
        let (_, count) = self.row.get_or_insert_with(|| {
            let at = self.buf.len();
            self.buf.extend_from_slice(&0i16.to_be_bytes());
            (at, 0)
        });
        *count += 1;
        self.buf.extend_from_slice(&len.to_be_bytes());
        &mut self.buf
    }

    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.field(b.len() as i32).extend_from_slice(b);
        self
    }

    /// A `text`.
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// A NULL.
    pub fn null(&mut self) -> &mut Self {
        self.field(-1);
        self
    }

    /// A `bigint`.
    pub fn int8(&mut self, v: i64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// A `bigint`, or NULL.
    pub fn maybe_int8(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            Some(v) => self.int8(v),
            None => self.null(),
        }
    }

    /// An `integer`.
    pub fn int4(&mut self, v: i32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// A `smallint`.
    pub fn int2(&mut self, v: i16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// A `boolean`.
    pub fn boolean(&mut self, v: bool) -> &mut Self {
        self.bytes(&[u8::from(v)])
    }

    /// A `timestamptz`, rounded to the microsecond as PostgreSQL rounds the text form that the
    /// batches send (inside JSON): the fraction read as a double, times a million, to the
    /// nearest (ties to even). Truncating would make a rebuilt row differ from the batches'.
    pub fn time(&mut self, t: chrono::DateTime<chrono::Utc>) -> &mut Self {
        let micros = (t.timestamp() - PG_EPOCH_SECONDS) * 1_000_000 + text_micros(t);
        self.bytes(&micros.to_be_bytes())
    }

    /// A `timestamptz`, or NULL.
    pub fn maybe_time(&mut self, t: Option<chrono::DateTime<chrono::Utc>>) -> &mut Self {
        match t {
            Some(t) => self.time(t),
            None => self.null(),
        }
    }

    /// A one-dimensional array (`elements` each as their bytes); an empty one has no dimension.
    fn array<'a>(
        &mut self,
        oid: u32,
        elements: impl ExactSizeIterator<Item = &'a [u8]>,
    ) -> &mut Self {
        let n = elements.len();
        let mut a = Vec::with_capacity(20 + n * 12);
        a.extend_from_slice(&i32::from(n > 0).to_be_bytes()); // dimensions
        a.extend_from_slice(&0i32.to_be_bytes()); // no NULL element
        a.extend_from_slice(&oid.to_be_bytes());
        if n > 0 {
            a.extend_from_slice(&(n as i32).to_be_bytes());
            a.extend_from_slice(&1i32.to_be_bytes()); // lower bound
        }
        for e in elements {
            a.extend_from_slice(&(e.len() as i32).to_be_bytes());
            a.extend_from_slice(e);
        }
        self.bytes(&a)
    }

    /// A `text[]`.
    pub fn text_array(&mut self, items: &[String]) -> &mut Self {
        self.array(TEXT_OID, items.iter().map(|s| s.as_bytes()))
    }

    /// A `bigint[]`.
    pub fn int_array(&mut self, items: &[i64]) -> &mut Self {
        let bytes: Vec<[u8; 8]> = items.iter().map(|v| v.to_be_bytes()).collect();
        self.array(INT8_OID, bytes.iter().map(|b| &b[..]))
    }

    /// A `jsonb` (version 1: the JSON text).
    pub fn json<T: Serialize>(&mut self, value: &T) -> Result<&mut Self, ApplyError> {
        let mut data = vec![1u8];
        serde_json::to_writer(&mut data, value).map_err(|e| ApplyError::Poison {
            position: -1,
            reason: e.to_string(),
        })?;
        Ok(self.bytes(&data))
    }

    /// Closes the row.
    pub fn end_row(&mut self) {
        if let Some((at, count)) = self.row.take() {
            self.buf[at..at + 2].copy_from_slice(&count.to_be_bytes());
        }
    }
}

/// The microseconds PostgreSQL makes of `t`'s fraction of a second written out in full
/// (`.123456789`): `rint(strtod(fraction) * 1e6)`.
fn text_micros(t: chrono::DateTime<chrono::Utc>) -> i64 {
    let nanos = chrono::Timelike::nanosecond(&t) % 1_000_000_000;
    if nanos.is_multiple_of(1000) {
        return i64::from(nanos / 1000);
    }
    let fraction: f64 = format!("0.{nanos:09}").parse().unwrap_or_default();
    (fraction * 1_000_000.0).round_ties_even() as i64
}

/// Writes `rows` ([`CopyRows::take`]) to `table`'s `columns` with one binary `COPY`.
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
        .copy_in_raw(&format!(
            "copy {table} ({columns}) from stdin (format binary)"
        ))
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

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::text_micros;

    #[test]
    fn a_fraction_of_a_second_rounds_to_the_microsecond_as_postgresql_reads_its_text() {
        let at = |nanos| Utc.timestamp_opt(1_700_000_000, nanos).unwrap();
        assert_eq!(text_micros(at(123_456_000)), 123_456);
        assert_eq!(text_micros(at(123_456_789)), 123_457, "up, not truncated");
        assert_eq!(text_micros(at(123_456_499)), 123_456);
        assert_eq!(
            text_micros(at(999_999_999)),
            1_000_000,
            "into the next second"
        );
        assert_eq!(text_micros(at(0)), 0);
    }
}
