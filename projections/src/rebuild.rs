//! `ticketd projections rebuild NAME`: replay the whole log into shadow tables while the
//! live tables keep serving, then swap them in atomically once caught up.

use std::sync::atomic::AtomicU64;

use sqlx::{Connection, PgConnection, PgPool};

use crate::log::{newest_committed, visible_head, Checkpoint};
use crate::runtime::{apply_batch, load_checkpoint, ApplyError, Projection, Tables};

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    pub events: u64,
    pub checkpoint: Checkpoint,
    pub seconds: f64,
}

/// Rebuilds `projection` unless a rebuild of it runs already (anywhere: a session advisory
/// lock on a connection of its own, released when it closes, so a crashed rebuild frees it);
/// `None` when one runs. While it runs, `runtime::report` shows the shadow checkpoint
/// (`<name>__rebuild`) with this lock's holder as its leader; `folded` counts the events of a
/// first pass ([`Projection::bulk_load`]), which moves that checkpoint only at its end.
pub async fn rebuild_exclusive(
    pool: &PgPool,
    projection: &dyn Projection,
    batch_size: i64,
    folded: &AtomicU64,
) -> Result<Option<RebuildReport>, ApplyError> {
    let lock = format!("{}__rebuild", projection.name());
    let mut guard = PgConnection::connect_with(&pool.connect_options()).await?;
    let (got,): (bool,) = sqlx::query_as("select pg_try_advisory_lock($1)")
        .bind(crate::runtime::lock_key(&lock))
        .fetch_one(&mut guard)
        .await?;
    if !got {
        return Ok(None);
    }
    let result = rebuild_counting(pool, projection, batch_size, folded).await;
    // Released before this returns: closing the connection alone releases it only once the
    // server has ended the session, and until then `pg_locks` (the admin list's "running")
    // would still show a rebuild that has finished.
    crate::runtime::unlock(&mut guard, &lock).await;
    let _ = guard.close().await;
    result.map(Some)
}

/// Rebuilds `projection` from the start of the log and swaps the result in.
pub async fn rebuild(
    pool: &PgPool,
    projection: &dyn Projection,
    batch_size: i64,
) -> Result<RebuildReport, ApplyError> {
    rebuild_counting(pool, projection, batch_size, &AtomicU64::new(0)).await
}

/// [`rebuild`], counting a first pass's events in `folded`. A read model with a first pass
/// ([`Projection::bulk_load`]) is filled by it up to the visible head, then batches take it
/// from there to the swap like any other.
pub async fn rebuild_counting(
    pool: &PgPool,
    projection: &dyn Projection,
    batch_size: i64,
    folded: &AtomicU64,
) -> Result<RebuildReport, ApplyError> {
    if !projection.rebuildable() {
        return Err(ApplyError::Poison {
            position: -1,
            reason: format!(
                "{} is a delivery channel: it is not rebuilt (its messages went out already)",
                projection.name()
            ),
        });
    }
    let started = std::time::Instant::now();
    let shadow = Shadow {
        projection,
        name: format!("{}__rebuild", projection.name()),
        tables: Tables::shadow(),
        batch_size,
    };
    let mut conn = pool.acquire().await?;
    shadow.prepare(&mut conn).await?;
    // The newest event committed when the rebuild began: the shadow must reach it before
    // the swap, even if an older transaction of this database, still open, holds the log's
    // horizon back for a while.
    let target = newest_committed(&mut *conn).await?;
    let (loaded, reached) = shadow.bulk_load(&mut conn, pool, folded).await?;
    let caught_up = loaded + shadow.catch_up(&mut conn, target, reached).await?;
    finish_two_at_a_time(pool, shadow.finishes(pool).await?).await?;
    let (swapped, checkpoint) = shadow.swap(&mut conn).await?;
    Ok(RebuildReport {
        events: caught_up + swapped,
        checkpoint,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A projection being rebuilt into shadow tables under its own checkpoint name.
struct Shadow<'p> {
    projection: &'p dyn Projection,
    name: String,
    tables: Tables,
    batch_size: i64,
}

/// The secondary (not unique) indexes of a table: name and definition.
async fn secondary_indexes(
    conn: &mut PgConnection,
    table: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "select c.relname::text, pg_get_indexdef(i.indexrelid) from pg_index i
           join pg_class c on c.oid = i.indexrelid
          where i.indrelid = $1::regclass and not i.indisunique",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
}

impl Shadow<'_> {
    /// One batch into the shadow tables, committed on its own.
    async fn apply(&self, conn: &mut PgConnection) -> Result<(usize, Checkpoint), ApplyError> {
        let projection = self.projection;
        apply_batch(conn, projection, &self.name, &self.tables, self.batch_size).await
    }

    /// The projection's first pass up to the visible head, if it has one, then the shadow
    /// checkpoint at that head. Returns the events it covered and where the shadow stands.
    async fn bulk_load(
        &self,
        conn: &mut PgConnection,
        pool: &PgPool,
        folded: &AtomicU64,
    ) -> Result<(u64, Checkpoint), ApplyError> {
        let nothing = (0, Checkpoint::default());
        let Some(head) = visible_head(conn).await? else {
            return Ok(nothing);
        };
        let Some(load) = self.projection.bulk_load(pool, &self.tables, head, folded) else {
            return Ok(nothing);
        };
        let count = sqlx::query_as::<_, (i64,)>(
            "select count(*) from events
              where (transaction_id, global_position) <= ($1::text::xid8, $2::bigint)",
        )
        .bind(head.txid.to_string())
        .bind(head.position)
        .fetch_one(pool);
        let (loaded, count) = tokio::join!(load, count);
        loaded?;
        sqlx::query(
            "update projection_checkpoints set last_txid = $2::text::xid8, last_position = $3
              where projection = $1",
        )
        .bind(&self.name)
        .bind(head.txid.to_string())
        .bind(head.position)
        .execute(&mut *conn)
        .await?;
        Ok((count?.0 as u64, head))
    }

    /// Fresh shadow tables shaped like the live ones (indexes, defaults, generated columns,
    /// storage parameters), without their secondary indexes, and a fresh checkpoint.
    async fn prepare(&self, conn: &mut PgConnection) -> Result<(), ApplyError> {
        let mut tx = conn.begin().await?;
        for table in self.projection.tables() {
            self.create_like(&mut tx, table).await?;
        }
        sqlx::query("delete from projection_checkpoints where projection = $1")
            .bind(&self.name)
            .execute(&mut *tx)
            .await?;
        // Secondary indexes (GIN full text and trigram above all) are far cheaper to build
        // once over the finished table than to maintain row by row: drop them from the
        // shadows now (unique ones stay: upserts need them) and recreate them before the swap.
        for table in self.projection.tables() {
            for (index, _) in secondary_indexes(&mut tx, &self.tables.name(table)).await? {
                sqlx::query(&format!("drop index {index}"))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query("insert into projection_checkpoints (projection) values ($1)")
            .bind(&self.name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The shadow of `table`, created like it.
    async fn create_like(&self, tx: &mut PgConnection, table: &str) -> Result<(), ApplyError> {
        let s = self.tables.name(table);
        sqlx::query(&format!("drop table if exists {s}"))
            .execute(&mut *tx)
            .await?;
        // Unlogged while the log is replayed into it: no WAL for the millions of row writes
        // of a rebuild (a crash mid-rebuild leaves an empty shadow, which the next rebuild
        // drops anyway); `make_logged` turns it into an ordinary table before the swap.
        sqlx::query(&format!(
            "create unlogged table {s} (like {table} including all)"
        ))
        .execute(&mut *tx)
        .await?;
        // `like` leaves storage parameters (fillfactor) behind: carry them over.
        let (options,): (Option<Vec<String>>,) =
            sqlx::query_as("select reloptions from pg_class where oid = $1::regclass")
                .bind(table)
                .fetch_one(&mut *tx)
                .await?;
        if let Some(options) = options.filter(|o| !o.is_empty()) {
            sqlx::query(&format!("alter table {s} set ({})", options.join(", ")))
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// Applies batches, each committed on its own, from where the shadow stands (`reached`)
    /// until it reaches `target` (or an open transaction has held the log back for two
    /// minutes). Returns the events applied.
    async fn catch_up(
        &self,
        conn: &mut PgConnection,
        target: Option<Checkpoint>,
        mut reached: Checkpoint,
    ) -> Result<u64, ApplyError> {
        let mut events = 0u64;
        let patience = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let (n, at) = self.apply(conn).await?;
            events += n as u64;
            if n > 0 {
                reached = at;
            }
            if (n as i64) < self.batch_size {
                if target.is_none_or(|t| reached >= t) {
                    return Ok(events);
                }
                if std::time::Instant::now() > patience {
                    tracing::warn!(
                        projection = self.projection.name(),
                        "an open transaction holds the log back; swapping at {reached}"
                    );
                    return Ok(events);
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }

    /// What each shadow needs before the swap: made logged when its live table is (one
    /// sequential rewrite into the WAL, before the indexes so those are written once),
    /// analyzed, and given the live table's secondary indexes.
    async fn finishes(&self, pool: &PgPool) -> Result<Vec<Finish>, ApplyError> {
        let mut conn = pool.acquire().await?;
        let mut finishes = Vec::new();
        for table in self.projection.tables() {
            let shadow_table = self.tables.name(table);
            let (persistence, size): (String, i64) = sqlx::query_as(
                "select (select relpersistence::text from pg_class where oid = $1::regclass),
                        pg_relation_size($2::regclass)",
            )
            .bind(table)
            .bind(&shadow_table)
            .fetch_one(&mut *conn)
            .await?;
            let mut first = Vec::new();
            if persistence == "p" {
                first.push(format!("alter table {shadow_table} set logged"));
            }
            // Before the indexes: the column statistics do not depend on them (no shadow has
            // an expression index), and an `analyze` after them would wait for their locks.
            first.push(format!("analyze {shadow_table}"));
            let mut indexes = Vec::new();
            for (name, definition) in secondary_indexes(&mut conn, table).await? {
                let on = format!(" ON public.{table} ");
                let on_bare = format!(" ON {table} ");
                let definition = definition
                    .replacen(
                        &format!("INDEX {name} "),
                        &format!("INDEX {name}{} ", self.tables.suffix()),
                        1,
                    )
                    .replacen(&on, &format!(" ON public.{shadow_table} "), 1)
                    .replacen(&on_bare, &format!(" ON {shadow_table} "), 1);
                indexes.push(definition);
            }
            finishes.push(Finish {
                size,
                first,
                indexes,
            });
        }
        // The largest table's rewrite takes longest: it starts first.
        finishes.sort_by_key(|f| std::cmp::Reverse(f.size));
        Ok(finishes)
    }

    /// Holds the live checkpoint row (the live worker waits on it), applies the last few
    /// events, replaces the tables and hands the shadow's checkpoint to the live name.
    async fn swap(&self, conn: &mut PgConnection) -> Result<(u64, Checkpoint), ApplyError> {
        let name = self.projection.name();
        let mut tx = conn.begin().await?;
        sqlx::query("set local lock_timeout = '30s'")
            .execute(&mut *tx)
            .await?;
        load_checkpoint(&mut tx, name, true).await?;
        let mut events = 0u64;
        loop {
            let (n, _) = self.apply(&mut tx).await?;
            events += n as u64;
            if n == 0 {
                break;
            }
        }
        let (checkpoint, _) = load_checkpoint(&mut tx, &self.name, false)
            .await?
            .unwrap_or_default();
        for table in self.projection.tables() {
            self.replace(&mut tx, table).await?;
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
            .bind(&self.name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((events, checkpoint))
    }

    /// Replaces live `table` by its shadow, whose indexes get their live names back (so
    /// rebuilds stay repeatable).
    async fn replace(&self, tx: &mut PgConnection, table: &str) -> Result<(), ApplyError> {
        let suffix = self.tables.suffix();
        sqlx::query(&format!("drop table {table}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "alter table {} rename to {table}",
            self.tables.name(table)
        ))
        .execute(&mut *tx)
        .await?;
        let renamed: Vec<(String,)> = sqlx::query_as(
            "select c.relname::text from pg_index i join pg_class c on c.oid = i.indexrelid
              where i.indrelid = $1::regclass and strpos(c.relname, $2) > 0",
        )
        .bind(table)
        .bind(suffix)
        .fetch_all(&mut *tx)
        .await?;
        for (index,) in renamed {
            let live = index.replacen(suffix, "", 1);
            sqlx::query(&format!("alter index {index} rename to {live}"))
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}

/// One shadow table's work before the swap.
struct Finish {
    /// Its size on disk, in bytes.
    size: i64,
    /// Statements run one after the other on one connection before any index: `set logged`
    /// takes the table whole, and nothing else could run on it meanwhile.
    first: Vec<String>,
    /// Its index builds, each free to run beside any other.
    indexes: Vec<String>,
}

/// Runs the shadows' finishing statements (each its own transaction) on two connections at
/// once: an index build or a table rewrite keeps one core busy, and the machine has two. A
/// table's indexes start as soon as its own first statements are done, so a core that has
/// finished a small table's rewrite builds that table's indexes while the largest table is
/// still being rewritten; the inverted (GIN) indexes, the longest builds, go first.
async fn finish_two_at_a_time(pool: &PgPool, finishes: Vec<Finish>) -> Result<(), ApplyError> {
    use futures::stream::{FuturesUnordered, StreamExt};
    use std::collections::VecDeque;

    let mut indexes: Vec<Vec<String>> = Vec::new();
    let mut ready: VecDeque<(Vec<String>, Option<usize>)> = VecDeque::new();
    for (i, finish) in finishes.into_iter().enumerate() {
        ready.push_back((finish.first, Some(i)));
        indexes.push(finish.indexes);
    }
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < 2 {
            let Some((statements, unlocks)) = ready.pop_front() else {
                break;
            };
            running.push(async move {
                let mut conn = pool.acquire().await?;
                for statement in &statements {
                    sqlx::query(statement).execute(&mut *conn).await?;
                }
                Ok::<_, sqlx::Error>(unlocks)
            });
        }
        let Some(done) = running.next().await else {
            return Ok(());
        };
        if let Some(table) = done? {
            for index in std::mem::take(&mut indexes[table]) {
                if index.contains(" USING gin ") {
                    ready.push_front((vec![index], None));
                } else {
                    ready.push_back((vec![index], None));
                }
            }
        }
    }
}
