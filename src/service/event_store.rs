//! The event repository under cqrs-es: the same `events` table and rows as postgres-es's, with
//! an append that costs one round trip. postgres-es appends in BEGIN, one INSERT per event,
//! COMMIT, and the executor then asked for the new events' log position in a fourth query;
//! here all of a command's events go in one `INSERT … SELECT FROM unnest(…)` (one statement is
//! one transaction: all or nothing) that returns the log position of the last one.
//!
//! The position travels back to the executor in a task-local slot ([`capture_position`]), since
//! cqrs-es's `PersistedEventRepository::persist` answers `()`. Snapshots are not used (ENGINE.md).

use std::cell::Cell;
use std::future::Future;

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use futures::TryStreamExt;
use projections::Checkpoint;
use serde_json::Value;
use sqlx::PgPool;

tokio::task_local! {
    /// Where the append of the command running in this task leaves its log position.
    static LAST_APPEND: Cell<Option<Checkpoint>>;
}

/// Runs `commit` and returns its result with the log position of the last event it appended
/// (None when it appended nothing, or when the append did not go through this repository).
pub async fn capture_position<T>(commit: impl Future<Output = T>) -> (T, Option<Checkpoint>) {
    LAST_APPEND
        .scope(Cell::new(None), async move {
            let out = commit.await;
            (out, LAST_APPEND.with(Cell::get))
        })
        .await
}

const SELECT_EVENTS: &str =
    "select aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata
       from events where aggregate_type = $1 and aggregate_id = $2";

/// The rows of one event as the repository selects them.
type EventRow = (String, String, i64, String, String, Value, Value);

/// [`PersistedEventRepository`] over the `events` table.
#[derive(Clone)]
pub struct EventRepository {
    pool: PgPool,
}

impl EventRepository {
    pub fn new(pool: PgPool) -> Self {
        EventRepository { pool }
    }

    async fn select(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "{SELECT_EVENTS} and sequence > $3 order by sequence"
        ))
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(after as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(persistence_error)?;
        Ok(rows.into_iter().map(serialized).collect())
    }

    /// Appends a command's events in one statement; the log position of the last one.
    pub async fn append(
        &self,
        aggregate_type: &str,
        events: &[SerializedEvent],
    ) -> Result<Option<Checkpoint>, PersistenceError> {
        let Some(first) = events.first() else {
            return Ok(None);
        };
        let sequences: Vec<i64> = events.iter().map(|e| e.sequence as i64).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let versions: Vec<&str> = events.iter().map(|e| e.event_version.as_str()).collect();
        let payloads: Vec<&Value> = events.iter().map(|e| &e.payload).collect();
        let metadata: Vec<&Value> = events.iter().map(|e| &e.metadata).collect();
        // Rows are inserted in the order given, so each event's chain trigger finds the one
        // before it (rows earlier in the same statement are visible to a BEFORE trigger).
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "insert into events
                    (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             select $1, $2, s, t, v, p, m
               from unnest($3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
                    with ordinality as u(s, t, v, p, m, o)
              order by o
             returning transaction_id::text, global_position",
        )
        .bind(aggregate_type)
        .bind(&first.aggregate_id)
        .bind(&sequences)
        .bind(&types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metadata)
        .fetch_all(&self.pool)
        .await
        .map_err(persistence_error)?;
        Ok(rows
            .into_iter()
            .map(|(txid, position)| Checkpoint {
                txid: txid.parse().unwrap_or(0),
                position,
            })
            .max())
    }
}

fn serialized(row: EventRow) -> SerializedEvent {
    let (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) =
        row;
    SerializedEvent::new(
        aggregate_id,
        sequence.max(0) as usize,
        aggregate_type,
        event_type,
        event_version,
        payload,
        metadata,
    )
}

/// A unique violation on the stream's key means another writer appended first.
fn persistence_error(e: sqlx::Error) -> PersistenceError {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            PersistenceError::OptimisticLockError
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
            PersistenceError::ConnectionError(Box::new(e))
        }
        _ => PersistenceError::UnknownError(Box::new(e)),
    }
}

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.select(A::TYPE, aggregate_id, 0).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.select(A::TYPE, aggregate_id, last_sequence).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if snapshot_update.is_some() {
            return Err(PersistenceError::UnknownError(
                "snapshots are not enabled in ticketd".into(),
            ));
        }
        let at = self.append(A::TYPE, events).await?;
        let _ = LAST_APPEND.try_with(|slot| slot.set(at));
        Ok(())
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        let events = self.select(A::TYPE, aggregate_id, 0).await?;
        Ok(replay(events))
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "select aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata
               from events where aggregate_type = $1 order by global_position",
        )
        .bind(A::TYPE)
        .fetch(&self.pool)
        .try_collect()
        .await
        .map_err(persistence_error)?;
        Ok(replay(rows.into_iter().map(serialized).collect()))
    }
}

/// A replay stream over events already read.
fn replay(events: Vec<SerializedEvent>) -> ReplayStream {
    let (mut feed, stream) = ReplayStream::new(events.len().max(1));
    tokio::spawn(async move {
        for event in events {
            if feed.push(Ok(event)).await.is_err() {
                return;
            }
        }
    });
    stream
}
