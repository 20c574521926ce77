//! Bringing one projection up to the head of the log on demand, for commands that read a read
//! model outside `serve` (`ticketd report …`): a read model advances only while some process
//! runs its projection, so without this a report after `seed` would show nothing and say nothing.
//!
//! Under the projection's own leadership lock: when a running `ticketd serve` leads it, we wait
//! for that leader to pass the head; when nobody does, we take the lock and apply the batches
//! here (each its own short transaction, as the runtime does), then let the lock go.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection, PgPool};

use crate::log::{newest_committed, Checkpoint};
use crate::runtime::{apply_batch, checkpoint_of, ensure_checkpoint, lock_key, Projection, Tables};
use crate::ApplyError;

/// How long to wait for a leader in another process, or for a transaction that holds the log
/// back, before answering with what there is.
const PATIENCE: Duration = Duration::from_secs(120);

/// Who brought the projection up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// It was current already.
    Current,
    /// This process applied the missing events itself (nobody else led it).
    Here,
    /// A running process leads it; we waited for it.
    Leader,
}

/// The outcome of [`catch_up`].
#[derive(Debug, Clone, Copy)]
pub struct CaughtUp {
    pub driver: Driver,
    /// The newest event in the log when we started (None: an empty log).
    pub head: Option<Checkpoint>,
    /// Where the projection stands now.
    pub checkpoint: Checkpoint,
    /// Events between the projection and the head when we started.
    pub behind: u64,
    /// Whether the projection reached the head (false: we gave up waiting after two minutes).
    pub reached: bool,
}

/// Why catching up failed.
#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("projection {0} is stopped: {1} (see `ticketd projections status`)")]
    Stopped(String, String),
}

/// Brings `projection` up to the newest committed event. `progress(done, total)` is called as
/// events are applied (or as the leader advances).
pub async fn catch_up(
    pool: &PgPool,
    projection: &dyn Projection,
    batch_size: i64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<CaughtUp, CatchUpError> {
    let name = projection.name();
    ensure_checkpoint(pool, name).await?;
    let head = newest_committed(pool).await?;
    let from = checkpoint_of(pool, name).await?;
    let behind = events_between(pool, from, head).await?;
    let mut outcome = CaughtUp {
        driver: Driver::Current,
        head,
        checkpoint: from,
        behind,
        reached: true,
    };
    let Some(target) = head.filter(|h| *h > from) else {
        return Ok(outcome);
    };
    check_running(pool, name).await?;
    let mut lock = PgConnection::connect_with(&pool.connect_options()).await?;
    let (got,): (bool,) = sqlx::query_as("select pg_try_advisory_lock($1)")
        .bind(lock_key(name))
        .fetch_one(&mut lock)
        .await?;
    let result = if got {
        outcome.driver = Driver::Here;
        apply_until(pool, projection, batch_size, target, behind, progress).await
    } else {
        outcome.driver = Driver::Leader;
        wait_for_leader(pool, name, target, behind, progress).await
    };
    // Closing the connection releases the lock.
    let _ = lock.close().await;
    let (checkpoint, reached) = result?;
    outcome.checkpoint = checkpoint;
    outcome.reached = reached;
    Ok(outcome)
}

/// Events after `from` up to and including `head`.
async fn events_between(
    pool: &PgPool,
    from: Checkpoint,
    head: Option<Checkpoint>,
) -> Result<u64, sqlx::Error> {
    let Some(head) = head else { return Ok(0) };
    let (n,): (i64,) = sqlx::query_as(
        "select count(*) from events
          where (transaction_id, global_position) > ($1::text::xid8, $2)
            and (transaction_id, global_position) <= ($3::text::xid8, $4)",
    )
    .bind(from.txid.to_string())
    .bind(from.position)
    .bind(head.txid.to_string())
    .bind(head.position)
    .fetch_one(pool)
    .await?;
    Ok(n.max(0) as u64)
}

async fn check_running(pool: &PgPool, name: &str) -> Result<(), CatchUpError> {
    let (status, error): (String, Option<String>) =
        sqlx::query_as("select status, error from projection_checkpoints where projection = $1")
            .bind(name)
            .fetch_one(pool)
            .await?;
    if status == "stopped" {
        return Err(CatchUpError::Stopped(
            name.into(),
            error.unwrap_or_default(),
        ));
    }
    Ok(())
}

/// Applies batches here until the checkpoint passes `target`.
async fn apply_until(
    pool: &PgPool,
    projection: &dyn Projection,
    batch_size: i64,
    target: Checkpoint,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Checkpoint, bool), CatchUpError> {
    let name = projection.name();
    let mut conn = pool.acquire().await?;
    let mut done = 0u64;
    let mut at = checkpoint_of(pool, name).await?;
    let patience = Instant::now() + PATIENCE;
    loop {
        let (n, reached) =
            apply_batch(&mut conn, projection, name, &Tables::live(), batch_size).await?;
        if n > 0 {
            at = reached;
            done += n as u64;
            progress(done.min(total), total);
        }
        if at >= target {
            return Ok((at, true));
        }
        if (n as i64) < batch_size {
            // The rest sits behind a transaction still open somewhere in the cluster.
            if Instant::now() > patience {
                return Ok((at, false));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits for the leader in another process to pass `target`.
async fn wait_for_leader(
    pool: &PgPool,
    name: &str,
    target: Checkpoint,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Checkpoint, bool), CatchUpError> {
    let start = checkpoint_of(pool, name).await?;
    let patience = Instant::now() + PATIENCE;
    loop {
        let at = checkpoint_of(pool, name).await?;
        if at >= target {
            progress(total, total);
            return Ok((at, true));
        }
        let done = events_between(pool, start, Some(at)).await?;
        progress(done.min(total), total);
        check_running(pool, name).await?;
        if Instant::now() > patience {
            return Ok((at, false));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
