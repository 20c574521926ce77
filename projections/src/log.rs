//! Reading the event log in its one true order: `(transaction_id, global_position)`,
//! bounded by the oldest transaction still running so that a late commit is never skipped.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{Column, FromRow, PgConnection, Row};

/// A reader's position in the log. Ordered by transaction id first, then position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Checkpoint {
    pub txid: u64,
    pub position: i64,
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.txid, self.position)
    }
}

impl FromStr for Checkpoint {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (txid, position) = s.split_once('.').ok_or(())?;
        Ok(Checkpoint {
            txid: txid.parse().map_err(|_| ())?,
            position: position.parse().map_err(|_| ())?,
        })
    }
}

/// One row of `events`, as every reader sees it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// `transaction_id` as text (sqlx has no xid8 type).
    pub txid: String,
    pub global_position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    /// This event's position as a checkpoint.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            txid: self.txid.parse().unwrap_or(0),
            position: self.global_position,
        }
    }

    /// The acting user recorded in the metadata, if any.
    pub fn actor_id(&self) -> Option<i64> {
        match self.metadata.get("user_id") {
            Some(Value::String(s)) => s.parse().ok(),
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        }
    }
}

/// Every read of events selects [`EVENT_COLUMNS`] in their order (`txid` first, possibly after
/// columns of its own): the row is read by position from `txid` on, one lookup by name instead
/// of ten per event, which the millions of events of a rebuild feel. Debug builds (the tests)
/// check each name.
impl<'r> FromRow<'r, PgRow> for StoredEvent {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let at = row.try_column("txid")?.ordinal();
        debug_assert!(column_names().enumerate().all(|(i, name)| row
            .columns()
            .get(at + i)
            .map(|c| c.name())
            == Some(name)));
        Ok(StoredEvent {
            txid: row.try_get(at)?,
            global_position: row.try_get(at + 1)?,
            aggregate_type: row.try_get(at + 2)?,
            aggregate_id: row.try_get(at + 3)?,
            sequence: row.try_get(at + 4)?,
            event_type: row.try_get(at + 5)?,
            event_version: row.try_get(at + 6)?,
            payload: row.try_get(at + 7)?,
            metadata: row.try_get(at + 8)?,
            recorded_at: row.try_get(at + 9)?,
        })
    }
}

/// The names of [`EVENT_COLUMNS`], in their order (`… as txid` names the first).
fn column_names() -> impl Iterator<Item = &'static str> {
    EVENT_COLUMNS
        .split(',')
        .filter_map(|c| c.split_whitespace().last())
}

/// The columns every reader selects.
pub const EVENT_COLUMNS: &str = "transaction_id::text as txid, global_position, aggregate_type, \
     aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at";

/// Reads up to `limit` events after `after`, stopping before any transaction that may
/// still commit (the gap-free predicate of DESIGN.md), opened.
pub async fn read_after(
    conn: &mut PgConnection,
    after: Checkpoint,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let events = sqlx::query_as::<_, StoredEvent>(&READ_AFTER)
        .bind(after.txid.to_string())
        .bind(after.position)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    Ok(selected(conn, events, None).await?.0)
}

/// The log's safe horizon in the statement's snapshot, an SQL expression (an uncommitted
/// transaction's events are read only once it has ended: DESIGN.md's gap-free read). Every
/// transaction with an id below it has ended, and its events are visible in the snapshot.
///
/// It is the snapshot's `xmin` (the oldest transaction still running anywhere on the server),
/// except that running transactions of *other databases* of the same server are passed over:
/// they cannot append to this log, and one that runs long (a report, a migration, a bulk
/// update of another application) would otherwise hold back every projection here for as long
/// as it runs. A running transaction counts as another database's only when
/// `pg_stat_get_activity` shows it as the transaction of a backend there, which stays true for
/// as long as it runs; one it does not show so (a subtransaction, a prepared transaction, a
/// backend whose activity is hidden from this role) holds the horizon back, as `xmin` does.
/// With nobody running, it is the snapshot's `xmax`, which `xmin` then equals.
///
/// An uncorrelated scalar subquery: PostgreSQL computes it once per statement (an init plan),
/// and an index scan can take it as a bound. `pg_current_snapshot()` is the statement's
/// snapshot, the one the events are read in.
pub const HORIZON: &str = "(select coalesce(
        (select min(x) from pg_snapshot_xip(s) x
          where x::xid not in (
                select a.backend_xid from pg_stat_get_activity(null) a
                 where a.backend_xid is not null
                   and a.datid is distinct from (select d.oid from pg_database d
                                                  where d.datname = current_database()))),
        pg_snapshot_xmax(s))
     from pg_current_snapshot() s)";

/// The gap-free read after the position (`txid`, `position`), of at most `limit` events (all
/// SQL expressions). `selectors`, a `text[]` expression or `null` for every event, name an
/// aggregate type (`"ticket"`) or one event type of it (`"ticket.CommentAdded"`); erasures
/// (`person.PersonErased`) always come. The others come back with a `null` payload and
/// metadata: passed over without their payload ever leaving PostgreSQL.
fn events_after(txid: &str, position: &str, limit: &str, selectors: &str) -> String {
    format!(
        "select transaction_id::text as txid, global_position, aggregate_type, aggregate_id,
                sequence, event_type, event_version,
                case when w.wanted then payload else 'null'::jsonb end as payload,
                case when w.wanted then metadata else 'null'::jsonb end as metadata,
                recorded_at
           from events
          cross join lateral (select {selectors}::text[] is null
                                  or aggregate_type = any({selectors})
                                  or aggregate_type || '.' || event_type = any({selectors})
                                  or (aggregate_type = 'person' and event_type = 'PersonErased')
                                  as wanted) w
          where (transaction_id, global_position) > ({txid}, {position})
            and transaction_id < {HORIZON}
          order by transaction_id, global_position
          limit {limit}"
    )
}

/// Whether `selectors` (as in [`events_after`]) select an event of `aggregate_type` and
/// `event_type`: the same rule as the read's, for deciding whom a commit concerns.
pub fn selects(selectors: Option<&[&str]>, aggregate_type: &str, event_type: &str) -> bool {
    let Some(selectors) = selectors else {
        return true;
    };
    is_erasure(aggregate_type, event_type)
        || selectors.iter().any(|s| match s.split_once('.') {
            None => *s == aggregate_type,
            Some((aggregate, event)) => aggregate == aggregate_type && event == event_type,
        })
}

/// Whether an event of `aggregate_type` and `event_type` erases a person (every projection
/// reads those).
pub fn is_erasure(aggregate_type: &str, event_type: &str) -> bool {
    aggregate_type == privacy::PERSON && event_type == "PersonErased"
}

static READ_AFTER: LazyLock<String> =
    LazyLock::new(|| events_after("$1::text::xid8", "$2::bigint", "$3", "null"));

/// [`read_after`] the checkpoint row of projection `$1` (`limit` `$2`, `selectors` `$3`),
/// locked first (`for update`), in one statement: a projection batch's first round trip. The
/// row also sets the transaction's statement timeout and asynchronous commit (for the
/// statements after this one).
///
/// Still gap-free: the statement's snapshot is taken before it waits for the lock, so the
/// checkpoint that `for update` re-reads after a competitor's commit may be ahead of that
/// snapshot. The read then returns fewer events, never a gap: every transaction of this
/// database below the [`HORIZON`] had ended when the snapshot was taken, so each of their
/// events is visible in it.
static READ_LOCKED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "with c as (select set_config('statement_timeout', '20s', true) as timeout,
                           set_config('synchronous_commit', 'off', true) as sync,
                           last_txid, last_position, status
                      from projection_checkpoints where projection = $1 for update)
         select c.last_txid::text as from_txid, c.last_position as from_position,
                c.status as from_status, e.*
           from c left join lateral ({}) e on true",
        events_after("c.last_txid", "c.last_position", "$2", "$3")
    )
});

/// What [`read_locked`] found: the checkpoint as locked, its status, the selected events after
/// it (opened), how many events were read, selected or not, and the position of the last:
/// where the checkpoint may move.
pub struct Locked {
    pub from: Checkpoint,
    pub status: String,
    pub events: Vec<StoredEvent>,
    pub covered: usize,
    pub last: Option<Checkpoint>,
}

/// One row of [`READ_LOCKED`]: the checkpoint, and an event unless there is none after it.
struct LockedRow {
    from: Checkpoint,
    status: String,
    event: Option<StoredEvent>,
}

impl<'r> FromRow<'r, PgRow> for LockedRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let txid: String = row.try_get("from_txid")?;
        let event: Option<String> = row.try_get("txid")?;
        Ok(LockedRow {
            from: Checkpoint {
                txid: txid.parse().unwrap_or(0),
                position: row.try_get("from_position")?,
            },
            status: row.try_get("from_status")?,
            event: event.map(|_| StoredEvent::from_row(row)).transpose()?,
        })
    }
}

/// Locks the checkpoint row of projection `name` and reads up to `limit` events after it,
/// selected by `selectors` (see [`events_after`]), in one round trip. `None` if there is no such
/// row. Run it in a transaction: the lock lasts until its end.
pub async fn read_locked(
    conn: &mut PgConnection,
    name: &str,
    limit: i64,
    selectors: Option<&[&str]>,
) -> Result<Option<Locked>, sqlx::Error> {
    let rows = sqlx::query_as::<_, LockedRow>(&READ_LOCKED)
        .bind(name)
        .bind(limit)
        .bind(selectors)
        .fetch_all(&mut *conn)
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let (from, status) = (first.from, first.status.clone());
    let mut events: Vec<StoredEvent> = rows.into_iter().filter_map(|r| r.event).collect();
    // The lateral read is ordered; the join's output order is not promised (already sorted:
    // linear).
    events.sort_by_key(StoredEvent::checkpoint);
    let (events, covered, last) = selected(conn, events, selectors).await?;
    Ok(Some(Locked {
        from,
        status,
        events,
        covered,
        last,
    }))
}

/// The events of a read that `selectors` select, opened; how many were read; the last one's
/// position.
async fn selected(
    conn: &mut PgConnection,
    mut events: Vec<StoredEvent>,
    selectors: Option<&[&str]>,
) -> Result<(Vec<StoredEvent>, usize, Option<Checkpoint>), sqlx::Error> {
    let read = events.len();
    let last = events.last().map(StoredEvent::checkpoint);
    if selectors.is_some() {
        // Passed-over rows come back with a JSON null payload (no event has one).
        events.retain(|e| !e.payload.is_null());
    }
    open_events(privacy::Db::Conn(conn), &mut events).await?;
    Ok((events, read, last))
}

/// Opens the sealed personal fields of `events` (payload and metadata) in place: the text, or
/// `"[erased]"` for a destroyed key; plaintext of events older than encryption is redacted
/// when its person is erased (the upcaster). Every reader of the log goes through here or
/// [`open_values`].
pub async fn open_events(
    db: privacy::Db<'_>,
    events: &mut [StoredEvent],
) -> Result<(), sqlx::Error> {
    let mut views: Vec<privacy::EventView<'_>> = events
        .iter_mut()
        .map(|e| privacy::EventView {
            aggregate_type: &e.aggregate_type,
            aggregate_id: &e.aggregate_id,
            event_type: &e.event_type,
            payload: &mut e.payload,
            metadata: &mut e.metadata,
        })
        .collect();
    privacy::keyring().open_events(db, &mut views).await
}

/// Opens the sealed values inside `values` (event payloads or metadata read by hand).
pub async fn open_values(
    conn: impl sqlx::PgExecutor<'_>,
    values: &mut [&mut Value],
) -> Result<(), sqlx::Error> {
    privacy::keyring().open(conn, values).await
}

/// The checkpoint of a `(transaction_id::text, global_position)` row.
fn position_row(row: Option<(String, i64)>) -> Option<Checkpoint> {
    row.map(|(t, p)| Checkpoint {
        txid: t.parse().unwrap_or(0),
        position: p,
    })
}

/// The newest event that every reader could see now (its checkpoint), if any.
pub async fn visible_head(conn: &mut PgConnection) -> Result<Option<Checkpoint>, sqlx::Error> {
    newest(conn, &format!("where events.transaction_id < {HORIZON}")).await
}

/// The newest event committed (its checkpoint), if any, even if an older transaction still
/// running may yet commit before it.
pub async fn newest_committed(
    conn: impl sqlx::PgExecutor<'_>,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    newest(conn, "").await
}

async fn newest(
    conn: impl sqlx::PgExecutor<'_>,
    condition: &str,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    // `events.transaction_id`: the bare name would sort by the output column, the xid as
    // text ("999" after "1000"), and scan the whole log to do it.
    let row: Option<(String, i64)> = sqlx::query_as(&format!(
        "select transaction_id::text, global_position from events {condition}
          order by events.transaction_id desc, global_position desc limit 1"
    ))
    .fetch_optional(conn)
    .await?;
    Ok(position_row(row))
}

/// Where an aggregate's event at `sequence` stands in the log, if it is there.
pub async fn event_position(
    conn: impl sqlx::PgExecutor<'_>,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "select transaction_id::text, global_position from events
          where aggregate_type = $1 and aggregate_id = $2 and sequence = $3",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(sequence)
    .fetch_optional(conn)
    .await?;
    Ok(position_row(row))
}

#[cfg(test)]
mod tests {
    use super::selects;

    #[test]
    fn a_selector_names_an_aggregate_or_one_event_of_it_and_erasures_always_come() {
        assert!(
            selects(None, "ticket", "TicketOpened"),
            "no selectors: every event"
        );
        let comments: Option<&[&str]> = Some(&["ticket.CommentAdded", "ticket.CommentEdited"]);
        assert!(selects(comments, "ticket", "CommentEdited"));
        assert!(!selects(comments, "ticket", "TicketOpened"));
        assert!(!selects(comments, "approval", "CommentAdded"));
        assert!(selects(comments, "person", "PersonErased"));
        assert!(!selects(comments, "person", "DataKeyIssued"));
        let tickets: Option<&[&str]> = Some(&["ticket"]);
        assert!(selects(tickets, "ticket", "TicketOpened"));
        assert!(!selects(tickets, "approval", "ApprovalRequested"));
        assert!(!selects(tickets, "tickets", "TicketOpened"));
    }
}
