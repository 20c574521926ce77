//! The projection runtime: one leader per projection (a session advisory lock on a dedicated
//! connection), batches applied together with the checkpoint in one short transaction,
//! in-process wake-ups plus a short poll, transient errors retried with backoff, and a
//! poison event stopping its projection (reported by `/readyz`) instead of being skipped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::log::{read_locked, Checkpoint, Locked, StoredEvent};

/// Why a batch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The database hiccuped: retry the batch.
    #[error("transient: {0}")]
    Transient(#[from] sqlx::Error),
    /// This event cannot be applied: stop the projection.
    #[error("event at {position} cannot be applied: {reason}")]
    Poison { position: i64, reason: String },
}

impl ApplyError {
    /// A poison error for `event`.
    pub fn poison(event: &StoredEvent, reason: impl std::fmt::Display) -> Self {
        ApplyError::Poison {
            position: event.global_position,
            reason: reason.to_string(),
        }
    }

    fn from_db(e: sqlx::Error) -> Self {
        match &e {
            // Constraint and data errors repeat on every retry: stop rather than loop.
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("22") || c.starts_with("23")) =>
            {
                ApplyError::Poison {
                    position: -1,
                    reason: db.message().to_string(),
                }
            }
            _ => ApplyError::Transient(e),
        }
    }
}

/// The physical table names a projection writes to: the live ones, or a rebuild's shadows.
#[derive(Debug, Clone)]
pub struct Tables {
    suffix: String,
}

impl Tables {
    /// The live tables.
    pub fn live() -> Self {
        Tables {
            suffix: String::new(),
        }
    }

    /// The shadow tables of a rebuild.
    pub fn shadow() -> Self {
        Tables {
            suffix: "__rebuild".into(),
        }
    }

    /// The physical name of `base`.
    pub fn name(&self, base: &str) -> String {
        format!("{base}{}", self.suffix)
    }

    /// The suffix (empty for live tables).
    pub fn suffix(&self) -> &str {
        &self.suffix
    }
}

/// A read model fed by the event log.
pub trait Projection: Send + Sync + 'static {
    /// The checkpoint name. Never renamed.
    fn name(&self) -> &'static str;
    /// The tables this projection owns (rebuilt and swapped together).
    fn tables(&self) -> &'static [&'static str];
    /// Whether a rebuild may replay it from the start (a delivery channel's outbox may not:
    /// what it recorded has gone out already).
    fn rebuildable(&self) -> bool {
        true
    }
    /// The events it reads: aggregate types (`"ticket"`) or single event types of them
    /// (`"ticket.CommentAdded"`); `None` for every event. The others are passed over in
    /// PostgreSQL, never fetched, opened or decoded (erasures always come), and a command
    /// of this process wakes it only when it committed one it reads
    /// ([`RuntimeHandle::wake_for`]).
    fn reads(&self) -> Option<&'static [&'static str]> {
        None
    }
    /// The shortest time between two of its batches, where it is longer than the runtime's
    /// [`RuntimeConfig::min_batch_interval`]: a read model that nobody needs within
    /// milliseconds of a command (the reports) gathers more events into fewer transactions
    /// under load. `None`: the runtime's.
    fn min_batch_interval(&self) -> Option<Duration> {
        None
    }
    /// Applies a batch of events, in log order, inside the caller's transaction.
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [StoredEvent],
        tables: &'a Tables,
    ) -> BoxFuture<'a, Result<(), ApplyError>>;
    /// Rewrites what this read model holds of an erased person (`PersonErased`), inside the
    /// caller's transaction, after every earlier event was applied. Most hold nothing personal.
    fn erase<'a>(
        &'a self,
        _conn: &'a mut PgConnection,
        _person: i64,
        _tables: &'a Tables,
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(async { Ok(()) })
    }
    /// A rebuild's faster first pass, for read models that have one: fills the (empty)
    /// shadow `tables` from every event up to `upto` (a visible head: nothing at or below it
    /// can still commit), each erasure at its place in the log, in short transactions of its
    /// own, to what batches would have made of them; `folded` counts the events done. `None`:
    /// batches only.
    fn bulk_load<'a>(
        &'a self,
        _pool: &'a PgPool,
        _tables: &'a Tables,
        _upto: Checkpoint,
        _folded: &'a AtomicU64,
    ) -> Option<BoxFuture<'a, Result<(), ApplyError>>> {
        None
    }
}

/// The erasure of a read model that holds nothing personal.
pub async fn nothing_to_erase(
    _conn: &mut PgConnection,
    _person: i64,
    _tables: &Tables,
) -> Result<(), ApplyError> {
    Ok(())
}

/// The person a `PersonErased` event of the `person` stream erases.
pub fn erased_person(event: &StoredEvent) -> Option<i64> {
    crate::log::is_erasure(&event.aggregate_type, &event.event_type)
        .then(|| event.payload.pointer("/PersonErased/person_id")?.as_i64())
        .flatten()
}

/// Applies `events` in order, stopping at each erasure to let the projection rewrite what it
/// holds of that person before the events after it.
pub async fn apply_with_erasures(
    projection: &dyn Projection,
    conn: &mut PgConnection,
    events: &[StoredEvent],
    tables: &Tables,
) -> Result<(), ApplyError> {
    let mut start = 0;
    for (i, e) in events.iter().enumerate() {
        if let Some(person) = erased_person(e) {
            if start < i {
                projection
                    .apply(&mut *conn, &events[start..i], tables)
                    .await?;
            }
            projection.erase(&mut *conn, person, tables).await?;
            start = i + 1;
        }
    }
    if start < events.len() {
        projection
            .apply(&mut *conn, &events[start..], tables)
            .await?;
    }
    Ok(())
}

/// Implements [`Projection`] for a read model: its type (with a `NAME` constant), the tables
/// it owns, the `async fn(conn, events, tables)` that applies a batch, for read models
/// holding personal data `erase = async fn(conn, person, tables)`, and for those that use
/// some events only `reads = ["ticket", "approval.ApprovalRequested", ...]`
/// ([`Projection::reads`]), for those with a rebuild's first pass `bulk = async fn(pool,
/// tables, upto, folded)` ([`Projection::bulk_load`]), and for those whose batches may come
/// further apart `every = <Duration>` ([`Projection::min_batch_interval`]).
#[macro_export]
macro_rules! read_model {
    ($ty:ty, [$($table:expr),+ $(,)?], $apply:path, erase = $erase:path
        $(, reads = [$($read:expr),+ $(,)?])? $(, bulk = $bulk:path)? $(, every = $every:expr)?) => {
        impl $crate::Projection for $ty {
            fn name(&self) -> &'static str {
                Self::NAME
            }

            fn min_batch_interval(&self) -> Option<std::time::Duration> {
                None $(.or(Some($every)))?
            }

            fn reads(&self) -> Option<&'static [&'static str]> {
                None $(.or(Some(&[$($read),+])))?
            }

            fn tables(&self) -> &'static [&'static str] {
                &[$($table),+]
            }

            fn apply<'a>(
                &'a self,
                conn: &'a mut sqlx::PgConnection,
                events: &'a [$crate::StoredEvent],
                tables: &'a $crate::Tables,
            ) -> futures::future::BoxFuture<'a, Result<(), $crate::ApplyError>> {
                Box::pin($apply(conn, events, tables))
            }

            fn erase<'a>(
                &'a self,
                conn: &'a mut sqlx::PgConnection,
                person: i64,
                tables: &'a $crate::Tables,
            ) -> futures::future::BoxFuture<'a, Result<(), $crate::ApplyError>> {
                Box::pin($erase(conn, person, tables))
            }

            $(
            fn bulk_load<'a>(
                &'a self,
                pool: &'a sqlx::PgPool,
                tables: &'a $crate::Tables,
                upto: $crate::Checkpoint,
                folded: &'a std::sync::atomic::AtomicU64,
            ) -> Option<futures::future::BoxFuture<'a, Result<(), $crate::ApplyError>>> {
                Some(Box::pin($bulk(pool, tables, upto, folded)))
            }
            )?
        }
    };
    ($ty:ty, [$($table:expr),+ $(,)?], $apply:path) => {
        $crate::read_model!($ty, [$($table),+], $apply, erase = $crate::runtime::nothing_to_erase);
    };
}

/// Tunables of the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Events per transaction.
    pub batch_size: i64,
    /// Poll interval for writers outside this process.
    pub poll_interval: Duration,
    /// How often a standby tries to become leader (and the leader checks its lock).
    pub leader_check: Duration,
    /// Upper bound of the backoff after transient errors.
    pub max_backoff: Duration,
    /// The shortest time between two batches: under a steady stream of commands, events
    /// gather into fewer, larger transactions instead of one transaction per command.
    pub min_batch_interval: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            batch_size: 500,
            poll_interval: Duration::from_millis(250),
            leader_check: Duration::from_millis(1000),
            max_backoff: Duration::from_secs(10),
            min_batch_interval: Duration::from_millis(20),
        }
    }
}

/// What `/readyz`, `/metrics` and `projections status` show of one projection.
#[derive(Debug, Clone, Default)]
pub struct ProjectionStatus {
    pub leader: bool,
    pub checkpoint: Checkpoint,
    pub stopped: Option<String>,
    pub transient_errors: u64,
    pub events_applied: u64,
}

struct Worker {
    projection: Arc<dyn Projection>,
    wake: Notify,
    checkpoint: watch::Sender<Checkpoint>,
    status: Mutex<ProjectionStatus>,
    applied: AtomicU64,
    /// Test hook: the next batch fails between its read-model write and its commit.
    fail_after_apply: AtomicBool,
}

/// Runs every projection of this process.
pub struct Runtime {
    pool: PgPool,
    config: RuntimeConfig,
    workers: Vec<Arc<Worker>>,
}

/// A handle to a running runtime: wake it, watch checkpoints, read status, stop it.
#[derive(Clone)]
pub struct RuntimeHandle {
    workers: Arc<HashMap<&'static str, Arc<Worker>>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    shutdown: watch::Sender<bool>,
}

pub(crate) fn lock_key(name: &str) -> i64 {
    // A stable 64-bit key per projection name (FNV-1a; std's hasher is randomised).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"ticketd.projection.".iter().chain(name.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// Makes sure a checkpoint row exists for `name`.
pub async fn ensure_checkpoint(pool: &PgPool, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into projection_checkpoints (projection) values ($1) on conflict do nothing",
    )
    .bind(name)
    .execute(pool)
    .await?;
    Ok(())
}

/// Lets a stopped projection run again (after the cause was fixed, e.g. by an upcaster).
pub async fn resume(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "update projection_checkpoints set status = 'running', error = null, updated_at = now() where projection = $1",
    )
    .bind(name)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Reads a checkpoint row.
pub async fn load_checkpoint(
    conn: &mut PgConnection,
    name: &str,
    for_update: bool,
) -> Result<Option<(Checkpoint, String)>, sqlx::Error> {
    let sql = if for_update {
        "select last_txid::text, last_position, status from projection_checkpoints where projection = $1 for update"
    } else {
        "select last_txid::text, last_position, status from projection_checkpoints where projection = $1"
    };
    let row: Option<(String, i64, String)> =
        sqlx::query_as(sql).bind(name).fetch_optional(conn).await?;
    Ok(row.map(|(t, p, s)| {
        (
            Checkpoint {
                txid: t.parse().unwrap_or(0),
                position: p,
            },
            s,
        )
    }))
}

/// Applies one batch of at most `limit` events after the stored checkpoint of `name`,
/// writing the read model and advancing the checkpoint in the same transaction.
/// Returns the number of events applied and the new checkpoint.
pub async fn apply_batch(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    name: &str,
    tables: &Tables,
    limit: i64,
) -> Result<(usize, Checkpoint), ApplyError> {
    let batch = BatchOf {
        projection,
        name,
        tables,
        limit,
    };
    apply_batch_or_fail(conn, &batch, &AtomicBool::new(false)).await
}

/// One batch's source and target: the projection, its checkpoint name, the tables it writes
/// and how many events it takes at most.
struct BatchOf<'a> {
    projection: &'a dyn Projection,
    name: &'a str,
    tables: &'a Tables,
    limit: i64,
}

/// [`apply_batch`], failing between the read-model write and the commit (as a crash there
/// would) when `fail_after_apply` is set and the batch has events; the flag is then cleared.
async fn apply_batch_or_fail(
    conn: &mut PgConnection,
    batch: &BatchOf<'_>,
    fail_after_apply: &AtomicBool,
) -> Result<(usize, Checkpoint), ApplyError> {
    let mut tx = conn.begin().await?;
    let applied = apply_in(&mut tx, batch).await.and_then(|(n, at)| {
        if n > 0 && fail_after_apply.swap(false, Ordering::SeqCst) {
            Err(ApplyError::Transient(sqlx::Error::Protocol(
                "fail point after_apply".into(),
            )))
        } else {
            Ok((n, at))
        }
    });
    match applied {
        Ok((n, at)) if n > 0 => {
            tx.commit().await?;
            Ok((n, at))
        }
        Ok(nothing) => {
            tx.rollback().await?;
            Ok(nothing)
        }
        Err(e) => {
            // Release the checkpoint row now, not whenever the connection is next used.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

async fn apply_in(
    tx: &mut PgConnection,
    batch: &BatchOf<'_>,
) -> Result<(usize, Checkpoint), ApplyError> {
    let BatchOf {
        projection,
        name,
        tables,
        limit,
    } = *batch;
    // One round trip locks the checkpoint row and reads the events after it. The lock
    // serialises competing appliers and a rebuild's swap. It also bounds the transaction's
    // statements (a stuck batch must not hold back every other reader) and drops the flush
    // wait at commit: the read-model rows and the checkpoint commit together, so a batch lost
    // in a crash is lost whole and simply applied again from the older checkpoint.
    // `covered`: the events the batch read, applied or passed over (callers compare it with
    // the batch size to know whether they are caught up).
    let Locked {
        from,
        status,
        events,
        covered,
        last,
    } = read_locked(&mut *tx, name, limit, projection.reads())
        .await?
        .ok_or_else(|| ApplyError::Poison {
            position: -1,
            reason: format!("no checkpoint row for {name}"),
        })?;
    if status == "stopped" {
        return Err(ApplyError::Poison {
            position: from.position,
            reason: "projection is stopped".into(),
        });
    }
    let Some(last) = last else {
        return Ok((0, from));
    };
    if !events.is_empty() {
        apply_with_erasures(projection, &mut *tx, &events, tables)
            .await
            .map_err(|e| match e {
                ApplyError::Transient(db) => ApplyError::from_db(db),
                poison => poison,
            })?;
    }
    let updated = sqlx::query(
        "update projection_checkpoints
            set last_txid = $2::text::xid8, last_position = $3, updated_at = now()
          where projection = $1 and last_txid = $4::text::xid8 and last_position = $5",
    )
    .bind(name)
    .bind(last.txid.to_string())
    .bind(last.position)
    .bind(from.txid.to_string())
    .bind(from.position)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        // Someone else advanced it: drop our work.
        return Ok((0, from));
    }
    Ok((covered, last))
}

/// Marks a projection stopped with its error, visible to `/readyz` and the CLI.
async fn mark_stopped(pool: &PgPool, name: &str, error: &str) {
    let result = sqlx::query(
        "update projection_checkpoints set status = 'stopped', error = $2, updated_at = now() where projection = $1",
    )
    .bind(name)
    .bind(error)
    .execute(pool)
    .await;
    if let Err(e) = result {
        tracing::error!(projection = name, error = %e, "could not record the stop");
    }
}

impl Runtime {
    /// A runtime for `projections` on `pool`.
    pub fn new(pool: PgPool, projections: Vec<Arc<dyn Projection>>, config: RuntimeConfig) -> Self {
        let workers = projections
            .into_iter()
            .map(|projection| {
                Arc::new(Worker {
                    projection,
                    wake: Notify::new(),
                    checkpoint: watch::channel(Checkpoint::default()).0,
                    status: Mutex::new(ProjectionStatus::default()),
                    applied: AtomicU64::new(0),
                    fail_after_apply: AtomicBool::new(false),
                })
            })
            .collect();
        Runtime {
            pool,
            config,
            workers,
        }
    }

    /// Starts one task per projection.
    pub async fn start(self) -> Result<RuntimeHandle, sqlx::Error> {
        let (shutdown, _) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut map = HashMap::new();
        for worker in &self.workers {
            let name = worker.projection.name();
            ensure_checkpoint(&self.pool, name).await?;
            map.insert(name, worker.clone());
            let pool = self.pool.clone();
            let config = self.config.clone();
            let worker = worker.clone();
            let stop = shutdown.subscribe();
            tasks.push(tokio::spawn(async move {
                run_worker(pool, config, worker, stop).await;
            }));
        }
        Ok(RuntimeHandle {
            workers: Arc::new(map),
            tasks: Arc::new(Mutex::new(tasks)),
            shutdown,
        })
    }
}

/// How a worker's attempt at the leader lock ended.
enum Lock {
    Held(PgConnection),
    Retry,
    Stop,
}

/// How a spell as leader ended.
enum Led {
    Stopping,
    LostLock,
    Poisoned,
}

async fn run_worker(
    pool: PgPool,
    config: RuntimeConfig,
    worker: Arc<Worker>,
    mut stop: watch::Receiver<bool>,
) {
    let name = worker.projection.name();
    let mut backoff = Duration::from_millis(100);
    loop {
        if *stop.borrow() {
            return;
        }
        let mut lock_conn = match leader_lock(&pool, &config, name, &mut stop).await {
            Lock::Held(conn) => conn,
            Lock::Retry => continue,
            Lock::Stop => return,
        };
        tracing::info!(projection = name, "became leader");
        set_status(&worker, |s| s.leader = true);
        let led = lead(
            &pool,
            &config,
            &worker,
            &mut stop,
            &mut lock_conn,
            &mut backoff,
        )
        .await;
        match led {
            Led::Stopping => return,
            Led::LostLock => {}
            Led::Poisoned => {
                if !wait_for_resume(&pool, &config, &worker, &mut stop).await {
                    return;
                }
            }
        }
    }
}

/// Takes the projection's session lock on a dedicated connection (if that connection dies,
/// the lock goes with it), waiting while another process leads.
async fn leader_lock(
    pool: &PgPool,
    config: &RuntimeConfig,
    name: &str,
    stop: &mut watch::Receiver<bool>,
) -> Lock {
    let mut lock_conn = match PgConnection::connect_with(&pool.connect_options()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(projection = name, error = %e, "cannot open the leader connection");
            sleep_or_stop(stop, config.leader_check).await;
            return Lock::Retry;
        }
    };
    loop {
        let got: Result<(bool,), _> = sqlx::query_as("select pg_try_advisory_lock($1)")
            .bind(lock_key(name))
            .fetch_one(&mut lock_conn)
            .await;
        match got {
            Ok((true,)) => return Lock::Held(lock_conn),
            Ok((false,)) => {
                if sleep_or_stop(stop, config.leader_check).await {
                    return Lock::Stop;
                }
            }
            Err(e) => {
                tracing::warn!(projection = name, error = %e, "leader connection lost");
                sleep_or_stop(stop, config.leader_check).await;
                return Lock::Retry;
            }
        }
    }
}

/// Applies batches while this process holds the lock.
async fn lead(
    pool: &PgPool,
    config: &RuntimeConfig,
    worker: &Worker,
    stop: &mut watch::Receiver<bool>,
    lock_conn: &mut PgConnection,
    backoff: &mut Duration,
) -> Led {
    let name = worker.projection.name();
    let mut last_lock_check = tokio::time::Instant::now();
    // After a failed batch the lock connection itself may be gone: check it first.
    let mut check_lock_now = false;
    loop {
        if *stop.borrow() {
            unlock(lock_conn, name).await;
            set_status(worker, |s| s.leader = false);
            return Led::Stopping;
        }
        if check_lock_now || last_lock_check.elapsed() >= config.leader_check {
            check_lock_now = false;
            last_lock_check = tokio::time::Instant::now();
            if !lock_connection_alive(lock_conn, name).await {
                set_status(worker, |s| s.leader = false);
                return Led::LostLock;
            }
        }
        let batch_started = tokio::time::Instant::now();
        match leader_batch(config, worker, lock_conn).await {
            Ok((n, at)) => {
                *backoff = Duration::from_millis(100);
                // The batch ran on the lock connection: it is alive, so the lock is held.
                last_lock_check = tokio::time::Instant::now();
                record_batch(worker, n, at);
                if n as i64 >= config.batch_size {
                    continue;
                }
                idle(config, worker, stop, batch_started).await;
            }
            Err(ApplyError::Transient(e)) => {
                tracing::warn!(projection = name, error = %e, retry_in_ms = backoff.as_millis() as u64, "transient projection error; retrying");
                set_status(worker, |s| s.transient_errors += 1);
                check_lock_now = true;
                if sleep_or_stop(stop, *backoff).await {
                    continue;
                }
                *backoff = (*backoff * 2).min(config.max_backoff);
            }
            Err(poison @ ApplyError::Poison { .. }) => {
                stop_poisoned(pool, worker, lock_conn, &poison.to_string()).await;
                return Led::Poisoned;
            }
        }
    }
}

/// Whether the leader's connection still answers: the session lock lives as long as it does.
async fn lock_connection_alive(lock_conn: &mut PgConnection, name: &str) -> bool {
    let alive = sqlx::query("select 1")
        .execute(&mut *lock_conn)
        .await
        .is_ok();
    if !alive {
        tracing::warn!(
            projection = name,
            "lost leadership (lock connection closed)"
        );
    }
    alive
}

/// One batch of the live read model. It runs on the leader's own connection, held for the
/// lock anyway: a pool's connection would cost a round trip more per batch (sqlx pings every
/// connection it takes back). A batch that breaks the connection ends the leadership at the
/// next check, as a lost lock does.
async fn leader_batch(
    config: &RuntimeConfig,
    worker: &Worker,
    lock_conn: &mut PgConnection,
) -> Result<(usize, Checkpoint), ApplyError> {
    let tables = Tables::live();
    let batch = BatchOf {
        projection: worker.projection.as_ref(),
        name: worker.projection.name(),
        tables: &tables,
        limit: config.batch_size,
    };
    apply_batch_or_fail(lock_conn, &batch, &worker.fail_after_apply).await
}

/// Stops a projection on an event it cannot apply: says so where operators look (the
/// checkpoint row, the status) and gives up the lock until it is resumed.
async fn stop_poisoned(pool: &PgPool, worker: &Worker, lock_conn: &mut PgConnection, text: &str) {
    let name = worker.projection.name();
    tracing::error!(projection = name, error = %text, "projection stopped on an event it cannot apply");
    mark_stopped(pool, name, text).await;
    set_status(worker, |s| {
        s.stopped = Some(text.to_string());
        s.leader = false;
    });
    unlock(lock_conn, name).await;
}

/// Releases the session lock of `name` taken on `lock_conn` (a leader's, or a rebuild's).
pub(crate) async fn unlock(lock_conn: &mut PgConnection, name: &str) {
    let _ = sqlx::query("select pg_advisory_unlock($1)")
        .bind(lock_key(name))
        .execute(&mut *lock_conn)
        .await;
}

/// Publishes a batch's new checkpoint and counts its events.
fn record_batch(worker: &Worker, n: usize, at: Checkpoint) {
    worker.checkpoint.send_replace(at);
    if n > 0 {
        let total = worker.applied.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        set_status(worker, |s| {
            s.checkpoint = at;
            s.events_applied = total;
        });
    } else {
        set_status(worker, |s| s.checkpoint = at);
    }
}

/// Waits for a wake-up, the poll interval or the stop, and keeps batches at least
/// `min_batch_interval` apart (or the projection's own, when longer).
async fn idle(
    config: &RuntimeConfig,
    worker: &Worker,
    stop: &mut watch::Receiver<bool>,
    batch_started: tokio::time::Instant,
) {
    tokio::select! {
        _ = worker.wake.notified() => {}
        _ = tokio::time::sleep(config.poll_interval) => {}
        _ = stop.changed() => {}
    }
    let floor = worker
        .projection
        .min_batch_interval()
        .unwrap_or_default()
        .max(config.min_batch_interval);
    let since = batch_started.elapsed();
    if since < floor {
        tokio::time::sleep(floor - since).await;
    }
}

/// Waits for an operator (`ticketd projections resume|rebuild`) to let a stopped projection
/// run again; false if the runtime stops first.
async fn wait_for_resume(
    pool: &PgPool,
    config: &RuntimeConfig,
    worker: &Worker,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let name = worker.projection.name();
    loop {
        if sleep_or_stop(stop, config.leader_check * 2).await {
            return false;
        }
        let resumed = match pool.acquire().await {
            Ok(mut c) => load_checkpoint(&mut c, name, false)
                .await
                .ok()
                .flatten()
                .is_some_and(|(_, status)| status == "running"),
            Err(_) => false,
        };
        if resumed {
            tracing::info!(projection = name, "projection resumed");
            set_status(worker, |s| s.stopped = None);
            return true;
        }
    }
}

fn set_status(worker: &Worker, f: impl FnOnce(&mut ProjectionStatus)) {
    let mut s = worker.status.lock().unwrap_or_else(|e| e.into_inner());
    f(&mut s);
}

/// Sleeps; true if the runtime is stopping.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

impl RuntimeHandle {
    /// Test hook: the next batch of projection `name` that has events fails between its
    /// read-model write and its commit, as a crash there would. False for an unknown name.
    pub fn fail_next_batch_after_apply(&self, name: &str) -> bool {
        match self.workers.get(name) {
            Some(worker) => {
                worker.fail_after_apply.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// Wakes every projection (after a commit that may concern any of them, an erasure).
    pub fn wake(&self) {
        for w in self.workers.values() {
            w.wake.notify_one();
        }
    }

    /// Wakes the projections that read one of the events this process just committed, of
    /// `aggregate_type` and `event_types` (called after each command). The others have
    /// nothing to apply: they move their checkpoint over these events at their next poll,
    /// or at once when a read waits for them ([`RuntimeHandle::nudge`]). Under a load of
    /// ticket creations that spares the comments, attachments, approvals and approval saga
    /// a transaction each every 20 ms.
    pub fn wake_for(&self, aggregate_type: &str, event_types: &[impl AsRef<str>]) {
        for w in self.workers.values() {
            let reads = w.projection.reads();
            if event_types
                .iter()
                .any(|event_type| crate::log::selects(reads, aggregate_type, event_type.as_ref()))
            {
                w.wake.notify_one();
            }
        }
    }

    /// Wakes projection `name` (a read waits for its checkpoint): it runs a batch, which
    /// moves its checkpoint to the head even when none of the new events concern it.
    pub fn nudge(&self, name: &str) {
        if let Some(w) = self.workers.get(name) {
            w.wake.notify_one();
        }
    }

    /// Watches the checkpoint a projection of this process has reached.
    pub fn watch(&self, name: &str) -> Option<watch::Receiver<Checkpoint>> {
        self.workers.get(name).map(|w| w.checkpoint.subscribe())
    }

    /// The in-process status of every projection.
    pub fn statuses(&self) -> Vec<(&'static str, ProjectionStatus)> {
        let mut v: Vec<_> = self
            .workers
            .iter()
            .map(|(n, w)| {
                (
                    *n,
                    w.status.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                )
            })
            .collect();
        v.sort_by_key(|(n, _)| *n);
        v
    }

    /// Stops every projection and waits for the tasks to end.
    pub async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let tasks: Vec<_> = {
            let mut t = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
            t.drain(..).collect()
        };
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Aborts the tasks at once, as a crash would (tests).
    pub fn abort(&self) {
        let t = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        for task in t.iter() {
            task.abort();
        }
    }
}

/// One projection as `ticketd projections status` and `/readyz` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProjectionReport {
    pub name: String,
    pub checkpoint: String,
    pub position: i64,
    pub status: String,
    pub error: Option<String>,
    /// Events in the log after the checkpoint (capped at 1,000,000).
    pub lag_events: i64,
    /// Age of the oldest event not yet applied, in seconds.
    pub lag_seconds: f64,
    /// The backend pid and client address of the leader, if one holds the lock.
    pub leader: Option<String>,
}

/// Reports every projection's checkpoint, lag and leader.
pub async fn report(pool: &PgPool) -> Result<Vec<ProjectionReport>, sqlx::Error> {
    let rows: Vec<(String, String, i64, String, Option<String>)> = sqlx::query_as(
        "select projection, last_txid::text, last_position, status, error
           from projection_checkpoints order by projection",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (name, txid, position, status, error) in rows {
        let (lag_events, lag_seconds): (i64, Option<f64>) = sqlx::query_as(
            "select count(*), extract(epoch from now() - min(recorded_at))::float8 from (
                select recorded_at from events
                 where (transaction_id, global_position) > ($1::text::xid8, $2)
                 order by transaction_id, global_position limit 1000000) lagging",
        )
        .bind(&txid)
        .bind(position)
        .fetch_one(pool)
        .await?;
        let key = lock_key(&name);
        let leader: Option<(i32, Option<String>)> = sqlx::query_as(
            "select l.pid, a.client_addr::text from pg_locks l
               left join pg_stat_activity a on a.pid = l.pid
              where l.locktype = 'advisory' and l.granted
                and l.database = (select oid from pg_database where datname = current_database())
                and ((l.classid::bigint << 32) | l.objid::bigint) = $1
              limit 1",
        )
        .bind(key)
        .fetch_optional(pool)
        .await?;
        out.push(ProjectionReport {
            checkpoint: format!("{txid}.{position}"),
            name,
            position,
            status,
            error,
            lag_events,
            lag_seconds: lag_seconds.unwrap_or(0.0),
            leader: leader.map(|(pid, addr)| {
                format!(
                    "pid {pid} from {}",
                    addr.unwrap_or_else(|| "local socket".into())
                )
            }),
        });
    }
    Ok(out)
}

/// How far projection `name` has got (the start of the log when it never ran).
pub async fn checkpoint_of(pool: &sqlx::PgPool, name: &str) -> Result<Checkpoint, sqlx::Error> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "select last_txid::text, last_position from projection_checkpoints where projection = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await?;
    Ok(row
        .map(|(t, p)| Checkpoint {
            txid: t.parse().unwrap_or(0),
            position: p,
        })
        .unwrap_or_default())
}
