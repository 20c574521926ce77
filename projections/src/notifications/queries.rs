//! Reads of the notifications read model (`rm_notifications` with the users' read marks in
//! `notification_reads`): a user's page, the rows after an id for the stream, and the marks.
//! Requesters (`staff` false) never see a notification about an internal note.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

/// Something the caller should know about.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct Notification {
    /// Increases with every notification: the SSE event id.
    pub id: i64,
    /// `assigned`, `comment`, `mention`, `status_changed` or `approval_requested`.
    pub kind: String,
    pub ticket_id: Option<i64>,
    pub approval_id: Option<Uuid>,
    pub comment_id: Option<Uuid>,
    /// Who caused it.
    pub actor_id: Option<i64>,
    /// Their display name.
    pub actor_name: Option<String>,
    /// One line for people.
    pub message: String,
    /// The start of the comment, for replies and mentions.
    pub excerpt: Option<String>,
    /// About an internal note (only staff ever receive these).
    pub internal: bool,
    pub read: bool,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const SELECT: &str = "select n.id, n.kind, n.ticket_id, n.approval_id, n.comment_id, n.actor_id,
        a.full_name as actor_name, n.message, n.excerpt, n.internal,
        r.read_at is not null as read, r.read_at, n.created_at
   from rm_notifications n
   left join users a on a.id = n.actor_id
   left join notification_reads r on r.user_id = n.user_id and r.source_position = n.source_position";

/// Whose notifications a query reads.
#[derive(Debug, Clone, Copy)]
pub struct Reader {
    pub user_id: i64,
    /// Staff also see notifications about internal notes.
    pub staff: bool,
}

/// A page of a user's notifications, newest first (`unread`: only unread or only read
/// ones), the total of that filter and the user's unread count.
pub async fn page(
    pool: &PgPool,
    reader: Reader,
    unread: Option<bool>,
    (offset, size): (i64, i64),
) -> Result<(Vec<Notification>, i64, i64), sqlx::Error> {
    let filter = "n.user_id = $1 and ($2 or not n.internal)
          and ($3::bool is null or (r.read_at is null) = $3)";
    let items: Vec<Notification> = sqlx::query_as(&format!(
        "{SELECT} where {filter} order by n.id desc limit $4 offset $5"
    ))
    .bind(reader.user_id)
    .bind(reader.staff)
    .bind(unread)
    .bind(size)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let (total, unread_count): (i64, i64) = sqlx::query_as(&format!(
        "select count(*) filter (where {filter}), count(*) filter (where n.user_id = $1 and ($2 or not n.internal) and r.read_at is null)
           from rm_notifications n
           left join notification_reads r on r.user_id = n.user_id and r.source_position = n.source_position
          where n.user_id = $1"
    ))
    .bind(reader.user_id)
    .bind(reader.staff)
    .bind(unread)
    .fetch_one(pool)
    .await?;
    Ok((items, total, unread_count))
}

/// At most `limit` of a user's notifications after id `after`, oldest first.
pub async fn rows_after(
    pool: &PgPool,
    reader: Reader,
    after: i64,
    limit: i64,
) -> Result<Vec<Notification>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} where n.user_id = $1 and ($2 or not n.internal) and n.id > $3
          order by n.id limit $4"
    ))
    .bind(reader.user_id)
    .bind(reader.staff)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The id of a user's newest notification (0 when none).
pub async fn newest_id(pool: &PgPool, user_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select coalesce(max(id), 0) from rm_notifications where user_id = $1")
        .bind(user_id)
        .fetch_one(pool)
        .await
}

/// Marks one of a user's notifications read; false when it is not theirs (or not visible
/// to them).
pub async fn mark_read(pool: &PgPool, reader: Reader, id: i64) -> Result<bool, sqlx::Error> {
    let marked = sqlx::query(
        "insert into notification_reads (user_id, source_position)
         select user_id, source_position from rm_notifications
          where id = $1 and user_id = $2 and ($3 or not internal)
         on conflict do nothing",
    )
    .bind(id)
    .bind(reader.user_id)
    .bind(reader.staff)
    .execute(pool)
    .await?;
    if marked.rows_affected() > 0 {
        return Ok(true);
    }
    // Already read, or not the caller's: tell them apart without revealing anything.
    let mine: Option<i64> = sqlx::query_scalar(
        "select id from rm_notifications where id = $1 and user_id = $2 and ($3 or not internal)",
    )
    .bind(id)
    .bind(reader.user_id)
    .bind(reader.staff)
    .fetch_optional(pool)
    .await?;
    Ok(mine.is_some())
}

/// Marks all of a user's notifications read.
pub async fn mark_all_read(pool: &PgPool, user_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into notification_reads (user_id, source_position)
         select user_id, source_position from rm_notifications where user_id = $1
         on conflict do nothing",
    )
    .bind(user_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// A notification with the user it is for (what a live hub routes).
#[derive(Debug, Clone, FromRow)]
pub struct Routed {
    pub user_id: i64,
    /// The `global_position` of the event that caused it.
    pub source_position: i64,
    #[sqlx(flatten)]
    pub notification: Notification,
}

/// The notifications caused by the events at `positions` for any of `users`, in id order.
pub async fn caused_by(
    pool: &PgPool,
    positions: &[i64],
    users: &[i64],
) -> Result<Vec<Routed>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select n.user_id, n.source_position, {} where n.source_position = any($1) and n.user_id = any($2)
          order by n.id",
        SELECT.trim_start_matches("select ")
    ))
    .bind(positions)
    .bind(users)
    .fetch_all(pool)
    .await
}

/// A notification a reconnecting reader missed, with the transaction that caused it.
#[derive(Debug, Clone, FromRow)]
pub struct Missed {
    /// `transaction_id` of the causing event, as text.
    pub txid: String,
    #[sqlx(flatten)]
    pub notification: Notification,
}

/// What a reader missed: at most `limit` of their notifications with an id above `after_id`,
/// caused in a transaction from `from_txid` on and at or before `head`, oldest first.
pub async fn missed(
    pool: &PgPool,
    reader: Reader,
    (after_id, from_txid): (i64, u64),
    head: crate::Checkpoint,
    limit: i64,
) -> Result<Vec<Missed>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select e.transaction_id::text as txid, {}
           join events e on e.global_position = n.source_position
          where n.user_id = $1 and ($2 or not n.internal) and n.id > $3
            and e.transaction_id >= $4::text::xid8
            and (e.transaction_id, e.global_position) <= ($5::text::xid8, $6::bigint)
          order by n.id limit $7",
        SELECT.trim_start_matches("select ")
    ))
    .bind(reader.user_id)
    .bind(reader.staff)
    .bind(after_id)
    .bind(from_txid.to_string())
    .bind(head.txid.to_string())
    .bind(head.position)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Where the event that caused a user's notification `id` stands in the log, and when it was
/// recorded (None when there is no such notification of theirs).
pub async fn source_of(
    pool: &PgPool,
    user_id: i64,
    id: i64,
) -> Result<Option<(crate::Checkpoint, DateTime<Utc>)>, sqlx::Error> {
    let row: Option<(String, i64, DateTime<Utc>)> = sqlx::query_as(
        "select e.transaction_id::text, e.global_position, e.recorded_at
           from rm_notifications n join events e on e.global_position = n.source_position
          where n.user_id = $1 and n.id = $2",
    )
    .bind(user_id)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(t, p, at)| {
        (
            crate::Checkpoint {
                txid: t.parse().unwrap_or(0),
                position: p,
            },
            at,
        )
    }))
}
