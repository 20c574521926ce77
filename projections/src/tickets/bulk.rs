//! The tickets read model's rebuild pass ([`crate::Projection::bulk_load`]). The ticket
//! streams are read in key order, so each ticket's whole history comes in one run (from the
//! events' primary key). Each ticket is folded in memory and its finished row written once:
//! the rows with `COPY` on one connection, their search documents on another, both while the
//! next tickets are folded. The counts and the title vocabulary are summed in memory and
//! written at the end. Every write is a short transaction of its own: a long one would hold
//! every projection's gap-free read back.
//!
//! The result equals the batch replay's: [`super::fold`] is per ticket, so the order of the
//! tickets does not matter, and the batch path writes what this writes, row by row. Erasures
//! redact a ticket's row at their own place in the log, between the ticket's events, as
//! [`super::erase_person`] does in the batches (what was written after an erasure stays).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::TryStreamExt;
use sqlx::{Connection, PgPool};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{
    counted, fold, title_words, write_deltas, write_search_documents, write_words, CountDeltas,
    TicketRow, TICKET_COLUMNS,
};
use crate::batch::{copy_rows, ticket_event, CopyRows};
use crate::log::{open_events, Checkpoint, StoredEvent, EVENT_COLUMNS};
use crate::runtime::{erased_person, ApplyError, Tables};
use crate::sla::clock::{current_policy, PolicyContext};

/// Events opened and folded together.
const EVENTS_PER_CHUNK: usize = 1000;
/// Finished rows per write.
const ROWS_PER_WRITE: usize = 1000;
/// Title words per vocabulary insert.
const WORDS_PER_WRITE: usize = 10_000;

/// The ticket events up to a visible head, each ticket's history in one run; the payload as
/// its JSON text ([`RawEvent`]).
const READ: &str = "select transaction_id::text, global_position, aggregate_id, sequence,
        event_type, payload::text, recorded_at
   from events
  where aggregate_type = 'ticket'
    and (transaction_id, global_position) <= ($1::text::xid8, $2::bigint)
  order by aggregate_id, sequence";

/// A ticket event as the first pass reads it. Most events (a status change, an assignment) hold
/// nothing sealed, and their text is decoded straight into the event; the others go through a
/// [`StoredEvent`] and the keyring ([`privacy::Keyring::must_open`]). Half the decoding work of
/// the `Value` in between is saved (`benches/event_decode.rs`).
struct RawEvent {
    at: Checkpoint,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    payload: String,
    recorded_at: chrono::DateTime<chrono::Utc>,
}

type RawRow = (
    String,
    i64,
    String,
    i64,
    String,
    String,
    chrono::DateTime<chrono::Utc>,
);

impl RawEvent {
    fn new(row: RawRow) -> Self {
        let (txid, position, aggregate_id, sequence, event_type, payload, recorded_at) = row;
        RawEvent {
            at: Checkpoint {
                txid: txid.parse().unwrap_or(0),
                position,
            },
            aggregate_id,
            sequence,
            event_type,
            payload,
            recorded_at,
        }
    }

    fn poison(&self, reason: impl std::fmt::Display) -> ApplyError {
        ApplyError::Poison {
            position: self.at.position,
            reason: reason.to_string(),
        }
    }

    fn id(&self) -> Result<i64, ApplyError> {
        self.aggregate_id
            .parse()
            .map_err(|_| self.poison("ticket id is not a number"))
    }

    fn must_open(&self, anyone_erased: bool) -> bool {
        privacy::Keyring::must_open("ticket", &self.event_type, &self.payload, anyone_erased)
    }

    /// The payload decoded from its text: the event (nothing in it to open) or a `Value`.
    fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApplyError> {
        serde_json::from_str(&self.payload)
            .map_err(|e| self.poison(format!("undecodable {}: {e}", self.event_type)))
    }

    /// The event as every other reader holds it, to be opened.
    fn stored(&self) -> Result<StoredEvent, ApplyError> {
        Ok(StoredEvent {
            txid: self.at.txid.to_string(),
            global_position: self.at.position,
            aggregate_type: "ticket".into(),
            aggregate_id: self.aggregate_id.clone(),
            sequence: self.sequence,
            event_type: self.event_type.clone(),
            event_version: String::new(),
            payload: self.parse()?,
            metadata: serde_json::Value::Null,
            recorded_at: self.recorded_at,
        })
    }
}

/// Finished rows, shared by the two writers.
type Rows = Arc<Vec<TicketRow>>;

/// Fills the shadow tables from the ticket events and erasures up to `upto`; `folded` counts
/// the events.
pub async fn load(
    pool: &PgPool,
    tables: &Tables,
    upto: Checkpoint,
    folded: &AtomicU64,
) -> Result<(), ApplyError> {
    let (ctx, erasures) = {
        let mut conn = pool.acquire().await?;
        (
            current_policy(&mut conn).await?,
            erasures_upto(&mut conn, upto).await?,
        )
    };
    let (rows_tx, rows_rx) = mpsc::channel::<Rows>(1);
    let (docs_tx, docs_rx) = mpsc::channel::<Rows>(1);
    let rows_writer = tokio::spawn(write_rows(pool.clone(), tables.name("rm_tickets"), rows_rx));
    let docs_writer = tokio::spawn(write_documents(pool.clone(), tables.clone(), docs_rx));
    let mut folder = Folder {
        ctx,
        erasures,
        current: None,
        done: Vec::new(),
        counts: CountDeltas::default(),
        words: HashSet::new(),
        outputs: vec![rows_tx, docs_tx],
    };
    let read = folder.read_all(pool, upto, folded).await;
    let Folder {
        counts,
        words,
        outputs,
        ..
    } = folder;
    drop(outputs);
    // A writer's own error first: the reader then only saw its channel close.
    joined(rows_writer).await?;
    joined(docs_writer).await?;
    read?;
    let mut conn = pool.acquire().await?;
    write_deltas(&mut conn, tables, counts).await?;
    let mut words: Vec<String> = words.into_iter().collect();
    words.sort_unstable();
    for part in words.chunks(WORDS_PER_WRITE) {
        write_words(&mut conn, tables, part).await?;
    }
    Ok(())
}

async fn joined(task: JoinHandle<Result<(), ApplyError>>) -> Result<(), ApplyError> {
    task.await.map_err(|e| ApplyError::Poison {
        position: -1,
        reason: format!("a rebuild writer stopped: {e}"),
    })?
}

/// The people erased up to `upto`, in log order, with where each erasure stands.
async fn erasures_upto(
    conn: &mut sqlx::PgConnection,
    upto: Checkpoint,
) -> Result<Vec<(Checkpoint, i64)>, ApplyError> {
    let events: Vec<StoredEvent> = sqlx::query_as(&format!(
        "select {EVENT_COLUMNS} from events
          where aggregate_type = $3 and event_type = 'PersonErased'
            and (transaction_id, global_position) <= ($1::text::xid8, $2::bigint)
          order by transaction_id, global_position"
    ))
    .bind(upto.txid.to_string())
    .bind(upto.position)
    .bind(privacy::PERSON)
    .fetch_all(&mut *conn)
    .await?;
    Ok(events
        .iter()
        .filter_map(|e| Some((e.checkpoint(), erased_person(e)?)))
        .collect())
}

/// A ticket being folded: its id, its row so far, and how many of the erasures it has met.
struct Current {
    id: i64,
    row: Option<TicketRow>,
    erasures_met: usize,
}

impl Current {
    /// Redacts the row for the erasures before `until` (all of them for None) that it has not
    /// met yet.
    fn meet_erasures(&mut self, erasures: &[(Checkpoint, i64)], until: Option<Checkpoint>) {
        while let Some((at, person)) = erasures.get(self.erasures_met) {
            if until.is_some_and(|u| *at > u) {
                return;
            }
            if let Some(row) = &mut self.row {
                row.redact(*person);
            }
            self.erasures_met += 1;
        }
    }
}

/// The fold of the ticket streams, one ticket at a time.
struct Folder {
    ctx: PolicyContext,
    erasures: Vec<(Checkpoint, i64)>,
    current: Option<Current>,
    /// Finished rows not yet handed to the writers.
    done: Vec<TicketRow>,
    counts: CountDeltas,
    words: HashSet<String>,
    outputs: Vec<mpsc::Sender<Rows>>,
}

impl Folder {
    async fn read_all(
        &mut self,
        pool: &PgPool,
        upto: Checkpoint,
        folded: &AtomicU64,
    ) -> Result<(), ApplyError> {
        let mut conn = pool.acquire().await?;
        // A read-only transaction (no xid: it holds no projection back) whose plan walks the
        // primary key: with the statistics of a freshly seeded log, the planner would rather
        // sort every event on disk.
        let mut tx = conn.begin().await?;
        sqlx::query(
            "select set_config('enable_sort', 'off', true),
                    set_config('enable_bitmapscan', 'off', true)",
        )
        .execute(&mut *tx)
        .await?;
        let mut stream = sqlx::query_as::<_, RawRow>(READ)
            .bind(upto.txid.to_string())
            .bind(upto.position)
            .fetch(&mut *tx);
        let mut chunk = Vec::with_capacity(EVENTS_PER_CHUNK);
        loop {
            let next = stream.try_next().await?;
            let end = next.is_none();
            chunk.extend(next.map(RawEvent::new));
            if chunk.len() == EVENTS_PER_CHUNK || end {
                self.fold_chunk(pool, &chunk).await?;
                folded.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                chunk.clear();
            }
            if end {
                self.finish_current();
                return self.hand_over(true).await;
            }
        }
    }

    async fn fold_chunk(&mut self, pool: &PgPool, chunk: &[RawEvent]) -> Result<(), ApplyError> {
        let keyring = privacy::keyring();
        let erased = keyring.anyone_erased(privacy::Db::Pool(pool, None)).await?;
        // Decided once per event: the opened ones come back in the order they went in.
        let must_open: Vec<bool> = chunk.iter().map(|e| e.must_open(erased)).collect();
        let mut sealed = chunk
            .iter()
            .zip(&must_open)
            .filter(|(_, must)| **must)
            .map(|(e, _)| e.stored())
            .collect::<Result<Vec<_>, _>>()?;
        open_events(privacy::Db::Pool(pool, None), &mut sealed).await?;
        let mut sealed = sealed.iter();
        for (e, must) in chunk.iter().zip(must_open) {
            let (id, event) = match must {
                false => (e.id()?, e.parse()?),
                true => match sealed.next() {
                    Some(opened) => ticket_event(opened)?,
                    None => return Err(e.poison("an opened event went missing")),
                },
            };
            if self.current.as_ref().map(|c| c.id) != Some(id) {
                self.finish_current();
                self.current = Some(Current {
                    id,
                    row: None,
                    erasures_met: 0,
                });
            }
            if let Some(current) = &mut self.current {
                current.meet_erasures(&self.erasures, Some(e.at));
                current.row = fold(current.row.take(), &event, e.sequence, &self.ctx);
            }
        }
        self.hand_over(false).await
    }

    fn finish_current(&mut self) {
        let Some(mut current) = self.current.take() else {
            return;
        };
        current.meet_erasures(&self.erasures, None);
        if let Some(row) = current.row {
            if let Some(c) = counted(&row) {
                self.counts.add(&c, 1);
            }
            self.words.extend(title_words(&row.title));
            self.done.push(row);
        }
    }

    /// Hands the finished rows to the writers once there are enough (or `all` of them).
    async fn hand_over(&mut self, all: bool) -> Result<(), ApplyError> {
        let enough = self.done.len() >= ROWS_PER_WRITE || (all && !self.done.is_empty());
        if !enough {
            return Ok(());
        }
        let rows: Rows = Arc::new(std::mem::take(&mut self.done));
        for output in &self.outputs {
            output
                .send(rows.clone())
                .await
                .map_err(|_| ApplyError::Poison {
                    position: -1,
                    reason: "a rebuild writer stopped".into(),
                })?;
        }
        Ok(())
    }
}

/// Writes the rows with one `COPY` per hand-over.
async fn write_rows(
    pool: PgPool,
    table: String,
    mut rows: mpsc::Receiver<Rows>,
) -> Result<(), ApplyError> {
    let mut conn = pool.acquire().await?;
    let mut copy = CopyRows::default();
    while let Some(part) = rows.recv().await {
        for row in part.iter() {
            encode(&mut copy, row)?;
        }
        copy_rows(&mut conn, &table, TICKET_COLUMNS, copy.take()).await?;
    }
    Ok(())
}

/// Writes the live tickets' search documents, one statement per hand-over.
async fn write_documents(
    pool: PgPool,
    tables: Tables,
    mut rows: mpsc::Receiver<Rows>,
) -> Result<(), ApplyError> {
    let mut conn = pool.acquire().await?;
    let none = HashMap::new();
    while let Some(part) = rows.recv().await {
        let refs: Vec<&TicketRow> = part.iter().collect();
        write_search_documents(&mut conn, &tables, &refs, &none).await?;
    }
    Ok(())
}

/// One row in the column order of [`TICKET_COLUMNS`].
fn encode(copy: &mut CopyRows, row: &TicketRow) -> Result<(), ApplyError> {
    copy.int8(row.id)
        .text(&row.title)
        .text(&row.description)
        .text(&row.status)
        .text(&row.priority)
        .int2(row.priority_rank)
        .text(&row.ticket_type)
        .int8(row.requester_id)
        .maybe_int8(row.assignee_id)
        .text_array(&row.tags)
        .int_array(&row.item_ids)
        .text(&row.approval_status)
        .int8(row.version)
        .boolean(row.deleted)
        .int4(row.comment_count)
        .int4(row.attachment_count)
        .text(&row.public_comments)
        .json(&row.public_comment_texts)?
        .time(row.created_at)
        .time(row.updated_at)
        .maybe_time(row.resolved_at)
        .maybe_time(row.first_response_at);
    let (clock, marks) = (&row.clock, &row.marks);
    copy.maybe_time(clock.sla_running_since)
        .int8(clock.sla_elapsed_us)
        .maybe_time(clock.first_response_due_at)
        .maybe_time(clock.resolution_due_at)
        .maybe_time(clock.first_response_breached_at)
        .maybe_time(clock.resolution_breached_at)
        .int8(clock.policy_version)
        .maybe_time(marks.first_response_warn_at)
        .maybe_time(marks.resolution_warn_at)
        .maybe_time(marks.sla_due_at)
        .maybe_time(marks.sla_warn_at)
        .maybe_time(marks.sla_breach_at)
        .end_row();
    Ok(())
}
