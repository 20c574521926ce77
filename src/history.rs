//! A ticket's history and its state at a past time, read straight from the event log.

use aggregates::ticket::{Ticket, TicketEvent};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use sqlx::PgPool;

use crate::error::ApiError;

/// One stored event of a stream, decoded.
pub struct HistoryEntry {
    pub sequence: i64,
    pub event_type: String,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
}

/// The events of one aggregate, optionally only those recorded up to `until`.
pub async fn stream(
    pool: &PgPool,
    aggregate_type: &str,
    id: &str,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<HistoryEntry>, ApiError> {
    let rows: Vec<(
        i64,
        String,
        serde_json::Value,
        serde_json::Value,
        DateTime<Utc>,
    )> = sqlx::query_as(
        "select sequence, event_type, payload, metadata, recorded_at from events
          where aggregate_type = $1 and aggregate_id = $2
            and ($3::timestamptz is null or recorded_at <= $3)
          order by sequence",
    )
    .bind(aggregate_type)
    .bind(id)
    .bind(until)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(sequence, event_type, payload, metadata, recorded_at)| HistoryEntry {
                sequence,
                event_type,
                payload,
                metadata,
                recorded_at,
            },
        )
        .collect())
}

/// The ticket as it was at `as_of` (None if it did not exist yet).
pub async fn ticket_as_of(
    pool: &PgPool,
    id: i64,
    as_of: DateTime<Utc>,
) -> Result<Option<(Ticket, usize)>, ApiError> {
    let entries = stream(pool, "ticket", &id.to_string(), Some(as_of)).await?;
    let mut ticket = Ticket::default();
    let mut version = 0;
    for e in entries {
        let event: TicketEvent = serde_json::from_value(e.payload).map_err(ApiError::internal)?;
        ticket.apply(event);
        version = e.sequence as usize;
    }
    Ok(ticket.exists().then_some((ticket, version)))
}
