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
    serde_json::from_value(e.payload.clone())
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
