//! `audit seal`: verify the log, then record a seal over every stream's head.

use std::time::Instant;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::hash::{seal_root, LogPosition};
use super::read::scan;
use super::report::Report;
use super::scan::{NewHead, Role, Target};
use super::seals::{stored_seals, target, SealRecord};
use super::{ReadArgs, ALGORITHM, SEAL_LOCK};
use crate::service::error::any::Result;

/// Verifies the log and records a seal over every stream's head up to the newest position
/// no running transaction can still write below. A broken log is not sealed: its report is
/// returned instead.
pub async fn seal(
    pool: &PgPool,
    read: ReadArgs,
) -> Result<std::result::Result<SealRecord, Report>> {
    let started = Instant::now();
    // A session lock on its own connection: seals are recorded one at a time, and no xid is
    // held while the log is read.
    let mut lock = pool.acquire().await?;
    sqlx::query("select pg_advisory_lock($1)")
        .bind(SEAL_LOCK)
        .execute(&mut *lock)
        .await?;
    let outcome = seal_locked(pool, &mut lock, started, read).await;
    let _ = sqlx::query("select pg_advisory_unlock($1)")
        .bind(SEAL_LOCK)
        .execute(&mut *lock)
        .await;
    outcome
}

async fn seal_locked(
    pool: &PgPool,
    conn: &mut PgConnection,
    started: Instant,
    read: ReadArgs,
) -> Result<std::result::Result<SealRecord, Report>> {
    let seals = stored_seals(pool).await?;
    let mut targets = Vec::new();
    for record in &seals {
        targets.push(target(record, Role::Stored)?);
    }
    let head = log_head(pool).await?;
    if let Some(last) = targets.iter().map(|t| t.upto).max() {
        if last > head.upto {
            return Err(format!(
                "the last seal's position ({}, {}) is ahead of the log's ({}, {})",
                last.txid, last.position, head.upto.txid, head.upto.position
            )
            .into());
        }
    }
    targets.push(Target::new(
        i64::MAX,
        head.upto,
        head.excluded.clone(),
        Role::New,
    ));
    let mut state = scan(pool, targets, Vec::new(), read).await?;
    let seconds = started.elapsed().as_secs_f64();
    if state.problem_count > 0 {
        return Ok(Err(Report::from_scan(state, seals.len(), None, seconds)));
    }
    let Some(new) = state.targets.iter_mut().find(|t| t.role == Role::New) else {
        return Err("internal: the new seal went missing".into());
    };
    let root = seal_root(
        new.upto,
        &head.excluded,
        new.streams,
        new.events,
        &mut new.leaves,
    );
    let (streams, events) = (new.streams as i64, new.events as i64);
    let (id, sealed_at) = record(conn, &head, (streams, events), &root, &state.new_heads).await?;
    tracing::info!(
        seal = id,
        streams,
        events,
        changed_heads = state.new_heads.len(),
        seconds = started.elapsed().as_secs_f64(),
        "seal recorded"
    );
    Ok(Ok(SealRecord {
        id,
        algorithm: ALGORITHM.into(),
        upto_txid: head.upto.txid.to_string(),
        upto_position: head.upto.position,
        excluded_txids: head.excluded_txids,
        streams,
        events,
        root: hex::encode(root),
        sealed_at,
    }))
}

/// Where a new seal ends, and the transactions below that end it leaves out.
struct LogHead {
    upto: LogPosition,
    /// As PostgreSQL prints them (stored and printed so).
    excluded_txids: Vec<String>,
    /// The same, parsed and sorted.
    excluded: Vec<u64>,
}

/// The newest committed event, and the transactions below it that are still running: the
/// seal covers every committed event and nothing that can still commit.
async fn log_head(pool: &PgPool) -> Result<LogHead> {
    let head: Option<(String, i64, Vec<String>)> = sqlx::query_as(
        "select e.transaction_id::text, e.global_position,
                array(select x::text from pg_snapshot_xip(q.s) as x
                       where x < e.transaction_id order by x)
           from events e, (select pg_current_snapshot() as s) q
          where pg_visible_in_snapshot(e.transaction_id, q.s)
          order by e.transaction_id desc, e.global_position desc
          limit 1",
    )
    .fetch_optional(pool)
    .await?;
    let (upto, excluded_txids) = match head {
        Some((txid, position, excluded)) => (
            LogPosition {
                txid: txid.parse().map_err(|_| "unreadable transaction id")?,
                position,
            },
            excluded,
        ),
        None => (
            LogPosition {
                txid: 0,
                position: 0,
            },
            Vec::new(),
        ),
    };
    let mut excluded = Vec::with_capacity(excluded_txids.len());
    for x in &excluded_txids {
        excluded.push(x.parse::<u64>().map_err(|_| "unreadable transaction id")?);
    }
    Ok(LogHead {
        upto,
        excluded_txids,
        excluded,
    })
}

/// Records the seal and the heads that changed since the previous one, in one transaction;
/// returns the seal's id and time.
async fn record(
    conn: &mut PgConnection,
    head: &LogHead,
    (streams, events): (i64, i64),
    root: &[u8; 32],
    new_heads: &[NewHead],
) -> Result<(i64, DateTime<Utc>)> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let (id, sealed_at): (i64, DateTime<Utc>) = sqlx::query_as(
        "insert into audit_seals (upto_txid, upto_position, excluded_txids, streams, events, root, algorithm)
         values ($1::text::xid8, $2, $3::text[]::xid8[], $4, $5, $6, $7) returning id, sealed_at",
    )
    .bind(head.upto.txid.to_string())
    .bind(head.upto.position)
    .bind(&head.excluded_txids)
    .bind(streams)
    .bind(events)
    .bind(&root[..])
    .bind(ALGORITHM)
    .fetch_one(&mut *tx)
    .await?;
    for chunk in new_heads.chunks(20_000) {
        let types: Vec<&str> = chunk.iter().map(|h| h.aggregate_type.as_str()).collect();
        let ids: Vec<&str> = chunk.iter().map(|h| h.aggregate_id.as_str()).collect();
        let seqs: Vec<i64> = chunk.iter().map(|h| h.sequence).collect();
        let hashes: Vec<&[u8]> = chunk.iter().map(|h| &h.hash[..]).collect();
        sqlx::query(
            "insert into audit_seal_heads (seal_id, aggregate_type, aggregate_id, head_sequence, head_hash)
             select $1, t, i, s, h from unnest($2::text[], $3::text[], $4::bigint[], $5::bytea[]) as u(t, i, s, h)",
        )
        .bind(id)
        .bind(&types)
        .bind(&ids)
        .bind(&seqs)
        .bind(&hashes)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok((id, sealed_at))
}
