//! Reading `rm_attachments` as the API shows attachments: one by id, a page of a ticket's files.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

/// A file attached to a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, FromRow)]
pub struct Attachment {
    pub id: Uuid,
    pub ticket_id: i64,
    /// The cleaned file name.
    pub filename: String,
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// Lowercase hex sha256 of the content.
    pub sha256: String,
    pub uploaded_by: i64,
    /// The uploader's display name (filled by the server from its users).
    #[sqlx(skip)]
    #[serde(default)]
    pub uploaded_by_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, ticket_id, filename, content_type, size, sha256, uploaded_by, created_at";

/// A page of a ticket's live files, oldest first (`limit` of them from `offset`), and how
/// many there are in all.
pub async fn list(
    pool: &PgPool,
    ticket_id: i64,
    (limit, offset): (i64, i64),
) -> Result<(Vec<Attachment>, i64), sqlx::Error> {
    let total = sqlx::query_scalar(
        "select count(*) from rm_attachments where ticket_id = $1 and not removed",
    )
    .bind(ticket_id)
    .fetch_one(pool)
    .await?;
    let sql = format!(
        "select {COLUMNS} from rm_attachments where ticket_id = $1 and not removed
          order by created_at, id limit $2 offset $3"
    );
    let items = sqlx::query_as(&sql)
        .bind(ticket_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?;
    Ok((items, total))
}

/// A live (not removed) attachment.
pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<Attachment>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from rm_attachments where id = $1 and not removed"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}
