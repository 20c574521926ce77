//! Waiting for read models: whether a projection has applied a given event, waiting until it
//! has, and catching up once when a row the caller may have just written is missing.

use std::future::Future;
use std::time::Duration;

use projections::Checkpoint;
use sqlx::PgPool;

use crate::service::error::Error;

/// How long a read waits for a projection to catch up before answering without the row.
pub const CATCH_UP: Duration = Duration::from_secs(2);

/// Whether projection `name` has applied the event at `token` (its checkpoint row says so;
/// another process may lead the projection).
pub async fn reached(pool: &PgPool, name: &str, token: Checkpoint) -> Result<bool, sqlx::Error> {
    let row: Option<(bool,)> = sqlx::query_as(
        "select (last_txid, last_position) >= ($2::text::xid8, $3::bigint)
           from projection_checkpoints where projection = $1",
    )
    .bind(name)
    .bind(token.txid.to_string())
    .bind(token.position)
    .fetch_optional(pool)
    .await?;
    Ok(row.is_some_and(|(r,)| r))
}

/// Waits (at most `timeout`) until projection `name` has applied the event at `token`.
pub async fn wait_for_projection(
    pool: &PgPool,
    name: &str,
    token: Checkpoint,
    timeout: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if matches!(reached(pool, name, token).await, Ok(true)) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (at most `timeout`) until projection `name` has applied every event committed
/// before this call. Used when a read model misses a row the caller may have just written
/// without sending its consistency token.
pub async fn catch_up(pool: &PgPool, name: &str, timeout: Duration) -> bool {
    let head: Result<Option<(String, i64)>, _> = sqlx::query_as(
        "select transaction_id::text, global_position from events
          order by transaction_id desc, global_position desc limit 1",
    )
    .fetch_optional(pool)
    .await;
    match head {
        Ok(Some((txid, position))) => {
            let token = Checkpoint {
                txid: txid.parse().unwrap_or(0),
                position,
            };
            wait_for_projection(pool, name, token, timeout).await
        }
        Ok(None) => true,
        Err(_) => false,
    }
}

/// Fetches a read-model row; when it is missing (perhaps just written by a caller who sent
/// no consistency token), lets projection `name` catch up once and fetches again.
pub async fn fetch_caught_up<T, F, Fut>(
    pool: &PgPool,
    name: &str,
    fetch: F,
) -> Result<Option<T>, Error>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Option<T>, sqlx::Error>>,
{
    if let Some(row) = fetch().await? {
        return Ok(Some(row));
    }
    if catch_up(pool, name, CATCH_UP).await {
        return Ok(fetch().await?);
    }
    Ok(None)
}
