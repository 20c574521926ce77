//! `ticketd projections rebuild NAME`: replay the whole log into shadow tables while the
//! live tables keep serving, then swap them in atomically once caught up.

use sqlx::{Connection, PgPool};

use crate::log::Checkpoint;
use crate::runtime::{apply_batch, load_checkpoint, ApplyError, Projection, Tables};

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    pub events: u64,
    pub checkpoint: Checkpoint,
    pub seconds: f64,
}

/// Rebuilds `projection` from the start of the log and swaps the result in.
pub async fn rebuild(
    pool: &PgPool,
    projection: &dyn Projection,
    batch_size: i64,
) -> Result<RebuildReport, ApplyError> {
    let started = std::time::Instant::now();
    let name = projection.name();
    let shadow_name = format!("{name}__rebuild");
    let shadow = Tables::shadow();
    let mut conn = pool.acquire().await?;

    // Fresh shadow tables shaped like the live ones (indexes, defaults, generated columns).
    {
        let mut tx = conn.begin().await?;
        for table in projection.tables() {
            let s = shadow.name(table);
            sqlx::query(&format!("drop table if exists {s}"))
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!("create table {s} (like {table} including all)"))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("delete from projection_checkpoints where projection = $1")
            .bind(&shadow_name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("insert into projection_checkpoints (projection) values ($1)")
            .bind(&shadow_name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }

    // Catch up outside any long transaction: each batch commits on its own.
    let mut events = 0u64;
    loop {
        let (n, _) = apply_batch(&mut conn, projection, &shadow_name, &shadow, batch_size).await?;
        events += n as u64;
        if (n as i64) < batch_size {
            break;
        }
    }

    // Swap: hold the live checkpoint row (the live worker waits on it), apply the last
    // few events, replace the tables and hand the shadow's checkpoint to the live name.
    let mut tx = conn.begin().await?;
    sqlx::query("set local lock_timeout = '30s'")
        .execute(&mut *tx)
        .await?;
    load_checkpoint(&mut tx, name, true).await?;
    loop {
        let (n, _) = apply_batch(&mut tx, projection, &shadow_name, &shadow, batch_size).await?;
        events += n as u64;
        if n == 0 {
            break;
        }
    }
    let (checkpoint, _) = load_checkpoint(&mut tx, &shadow_name, false)
        .await?
        .unwrap_or_default();
    for table in projection.tables() {
        sqlx::query(&format!("drop table {table}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "alter table {} rename to {table}",
            shadow.name(table)
        ))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "update projection_checkpoints
            set last_txid = $2::text::xid8, last_position = $3, status = 'running', error = null, updated_at = now()
          where projection = $1",
    )
    .bind(name)
    .bind(checkpoint.txid.to_string())
    .bind(checkpoint.position)
    .execute(&mut *tx)
    .await?;
    sqlx::query("delete from projection_checkpoints where projection = $1")
        .bind(&shadow_name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(RebuildReport {
        events,
        checkpoint,
        seconds: started.elapsed().as_secs_f64(),
    })
}
