//! Writing a batch's rows in one statement: the rows go to PostgreSQL as one JSON array that
//! the statement unpacks with `jsonb_to_recordset($1)`.

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
