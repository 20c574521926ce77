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
            // `like` leaves storage parameters (fillfactor) behind: carry them over.
            let (options,): (Option<Vec<String>>,) =
                sqlx::query_as("select reloptions from pg_class where oid = $1::regclass")
                    .bind(*table)
                    .fetch_one(&mut *tx)
                    .await?;
            if let Some(options) = options.filter(|o| !o.is_empty()) {
                sqlx::query(&format!("alter table {s} set ({})", options.join(", ")))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query("delete from projection_checkpoints where projection = $1")
            .bind(&shadow_name)
            .execute(&mut *tx)
            .await?;
        // Secondary indexes (GIN full text and trigram above all) are far cheaper to build
        // once over the finished table than to maintain row by row: drop them from the
        // shadows now (unique ones stay: upserts need them) and recreate them before the swap.
        for table in projection.tables() {
            let s = shadow.name(table);
            let names: Vec<(String,)> = sqlx::query_as(
                "select c.relname::text from pg_index i join pg_class c on c.oid = i.indexrelid
                  where i.indrelid = $1::regclass and not i.indisunique",
            )
            .bind(&s)
            .fetch_all(&mut *tx)
            .await?;
            for (index,) in names {
                sqlx::query(&format!("drop index {index}"))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query("insert into projection_checkpoints (projection) values ($1)")
            .bind(&shadow_name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }

    // The newest event committed when the rebuild began: the shadow must reach it before
    // the swap, even if an unrelated open transaction anywhere in the cluster holds the
    // visibility horizon (xids are cluster-wide) back for a while.
    let target: Option<(String, i64)> = sqlx::query_as(
        "select transaction_id::text, global_position from events
          order by transaction_id desc, global_position desc limit 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let target = target.map(|(t, p)| Checkpoint {
        txid: t.parse().unwrap_or(0),
        position: p,
    });

    // Catch up outside any long transaction: each batch commits on its own.
    let mut events = 0u64;
    let mut reached = Checkpoint::default();
    let patience = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (n, at) = apply_batch(&mut conn, projection, &shadow_name, &shadow, batch_size).await?;
        events += n as u64;
        if n > 0 {
            reached = at;
        }
        if (n as i64) < batch_size {
            if target.is_none_or(|t| reached >= t) {
                break;
            }
            if std::time::Instant::now() > patience {
                tracing::warn!(
                    projection = name,
                    "an open transaction holds the log back; swapping at {reached}"
                );
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    // Recreate the live tables' secondary indexes on the shadows.
    for table in projection.tables() {
        let definitions: Vec<(String, String)> = sqlx::query_as(
            "select c.relname::text, pg_get_indexdef(i.indexrelid) from pg_index i
               join pg_class c on c.oid = i.indexrelid
              where i.indrelid = $1::regclass and not i.indisunique",
        )
        .bind(*table)
        .fetch_all(&mut *conn)
        .await?;
        for (name, definition) in definitions {
            let shadow_table = shadow.name(table);
            let on = format!(" ON public.{table} ");
            let on_bare = format!(" ON {table} ");
            let definition = definition
                .replacen(
                    &format!("INDEX {name} "),
                    &format!("INDEX {name}{} ", shadow.suffix()),
                    1,
                )
                .replacen(&on, &format!(" ON public.{shadow_table} "), 1)
                .replacen(&on_bare, &format!(" ON {shadow_table} "), 1);
            sqlx::query(&definition).execute(&mut *conn).await?;
        }
        sqlx::query(&format!("analyze {}", shadow.name(table)))
            .execute(&mut *conn)
            .await?;
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
        // Give the recreated indexes their live names back, so rebuilds stay repeatable.
        let renamed: Vec<(String,)> = sqlx::query_as(
            "select c.relname::text from pg_index i join pg_class c on c.oid = i.indexrelid
              where i.indrelid = $1::regclass and strpos(c.relname, $2) > 0",
        )
        .bind(*table)
        .bind(shadow.suffix())
        .fetch_all(&mut *tx)
        .await?;
        for (index,) in renamed {
            let live = index.replacen(shadow.suffix(), "", 1);
            sqlx::query(&format!("alter index {index} rename to {live}"))
                .execute(&mut *tx)
                .await?;
        }
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
