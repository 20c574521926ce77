//! The event repository under cqrs-es: the same `events` table and rows as postgres-es's, with
//! an append that costs one round trip. postgres-es appends in BEGIN, one INSERT per event,
//! COMMIT, and the executor then asked for the new events' log position in a fourth query;
//! here all of a command's events go in one `INSERT … SELECT FROM unnest(…)` (one statement is
//! one transaction: all or nothing) that returns the log position of the last one.
//!
//! The position travels back to the executor in a task-local slot ([`capture_position`]), since
//! cqrs-es's `PersistedEventRepository::persist` answers `()`. The same slot carries a
//! [`Numbering`] the other way: a new stream numbered from a sequence by the append itself
//! ([`capture_numbered`]), so creating a ticket costs one round trip, not a `nextval` first.
//! Snapshots are not used (ENGINE.md).

use std::cell::RefCell;
use std::future::Future;

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use futures::TryStreamExt;
use projections::Checkpoint;
use serde_json::Value;
use sqlx::PgPool;

use crate::service::append_connections::AppendConnections;

/// A new stream whose id the append takes from a sequence: the stream's id is the number, and
/// the number is written into each event's payload at `payload_path` where that path exists.
#[derive(Debug, Clone, Copy)]
pub struct Numbering {
    /// The sequence, e.g. `ticket_id_seq`.
    pub sequence: &'static str,
    /// The payload field that holds the number, e.g. `["TicketOpened", "id"]`.
    pub payload_path: &'static [&'static str],
}

/// What the executor and the append of one command tell each other.
#[derive(Debug, Default)]
struct AppendSlot {
    numbering: Option<Numbering>,
    at: Option<Checkpoint>,
    number: Option<i64>,
}

tokio::task_local! {
    /// The slot of the command running in this task.
    static APPEND: RefCell<AppendSlot>;
}

/// Runs `commit` and returns its result with the log position of the last event it appended
/// (None when it appended nothing, or when the append did not go through this repository).
pub async fn capture_position<T>(commit: impl Future<Output = T>) -> (T, Option<Checkpoint>) {
    let (out, at, _) = with_slot(AppendSlot::default(), commit).await;
    (out, at)
}

/// Runs `commit`, whose events start a new stream numbered by `numbering`; returns its result,
/// the log position of its last event and the number the stream got.
pub async fn capture_numbered<T>(
    numbering: Numbering,
    commit: impl Future<Output = T>,
) -> (T, Option<Checkpoint>, Option<i64>) {
    let slot = AppendSlot {
        numbering: Some(numbering),
        ..AppendSlot::default()
    };
    with_slot(slot, commit).await
}

async fn with_slot<T>(
    slot: AppendSlot,
    commit: impl Future<Output = T>,
) -> (T, Option<Checkpoint>, Option<i64>) {
    APPEND
        .scope(RefCell::new(slot), async move {
            let out = commit.await;
            let (at, number) = APPEND.with(|s| {
                let s = s.borrow();
                (s.at, s.number)
            });
            (out, at, number)
        })
        .await
}

/// The numbering asked for by the command running in this task, if any.
pub(crate) fn numbering() -> Option<Numbering> {
    APPEND.try_with(|s| s.borrow().numbering).ok().flatten()
}

const SELECT_EVENTS: &str =
    "select aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata
       from events where aggregate_type = $1 and aggregate_id = $2";

/// A command's events into an existing (or known) stream `$2`.
const APPEND_TO_STREAM: &str = "insert into events
        (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
 select $1, $2, s, t, v, p, m
   from unnest($3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
        with ordinality as u(s, t, v, p, m, o)
  order by o
 returning transaction_id::text, global_position, aggregate_id";

/// A command's events into a new stream numbered from the sequence `$2`, the number written
/// into each payload at the path `$8` where it exists.
const APPEND_NUMBERED: &str = "with n as (select nextval($2::regclass) as id)
 insert into events
        (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
 select $1, n.id::text, s, t, v, jsonb_set(p, $8::text[], to_jsonb(n.id), false), m
   from n, unnest($3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
        with ordinality as u(s, t, v, p, m, o)
  order by o
 returning transaction_id::text, global_position, aggregate_id";

/// The rows of one event as the repository selects them.
type EventRow = (String, String, i64, String, String, Value, Value);

/// [`PersistedEventRepository`] over the `events` table.
#[derive(Clone)]
pub struct EventRepository {
    pool: PgPool,
    /// Where the appends run: one statement each, without sqlx's ping after every use.
    appends: AppendConnections,
}

impl EventRepository {
    pub fn new(pool: PgPool) -> Self {
        EventRepository {
            appends: AppendConnections::like(&pool),
            pool,
        }
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

    /// Appends a command's events in one statement; the log position of the last one, and
    /// with a `numbering`, the number the new stream got.
    pub async fn append(
        &self,
        aggregate_type: &str,
        events: &[SerializedEvent],
        numbering: Option<Numbering>,
    ) -> Result<(Option<Checkpoint>, Option<i64>), PersistenceError> {
        let Some(first) = events.first() else {
            return Ok((None, None));
        };
        let sequences: Vec<i64> = events.iter().map(|e| e.sequence as i64).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let versions: Vec<&str> = events.iter().map(|e| e.event_version.as_str()).collect();
        let payloads: Vec<&Value> = events.iter().map(|e| &e.payload).collect();
        let metadata: Vec<&Value> = events.iter().map(|e| &e.metadata).collect();
        // Rows are inserted in the order given, so each event's chain trigger finds the one
        // before it (rows earlier in the same statement are visible to a BEFORE trigger).
        // Numbered, the id is `nextval` of the sequence, taken once (a volatile CTE is not
        // inlined) and written into the payloads before the trigger hashes them. Both
        // statements take the same parameters: $2 is the stream id or the sequence, and $8
        // (the payload path) is used by the numbered one only.
        let (sql, id_or_sequence, path) = match numbering {
            None => (APPEND_TO_STREAM, first.aggregate_id.as_str(), &[][..]),
            Some(n) => (APPEND_NUMBERED, n.sequence, n.payload_path),
        };
        let rows: Vec<(String, i64, String)> = self
            .appends
            .run(async |conn| {
                sqlx::query_as(sql)
                    .bind(aggregate_type)
                    .bind(id_or_sequence)
                    .bind(&sequences)
                    .bind(&types)
                    .bind(&versions)
                    .bind(&payloads)
                    .bind(&metadata)
                    .bind(path)
                    .fetch_all(conn)
                    .await
            })
            .await
            .map_err(persistence_error)?;
        let number = numbering
            .and(rows.first())
            .and_then(|(_, _, id)| id.parse().ok());
        let at = rows
            .into_iter()
            .map(|(txid, position, _)| Checkpoint {
                txid: txid.parse().unwrap_or(0),
                position,
            })
            .max();
        Ok((at, number))
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
        let (at, number) = self.append(A::TYPE, events, numbering()).await?;
        let _ = APPEND.try_with(|slot| {
            let mut slot = slot.borrow_mut();
            slot.at = at;
            slot.number = number;
        });
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
