//! Reading `rm_attachments` as the API shows attachments: one by id, a ticket's files.

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
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, ticket_id, filename, content_type, size, sha256, uploaded_by, created_at";

/// A live (not removed) attachment.
pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<Attachment>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from rm_attachments where id = $1 and not removed"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// A ticket's live files, oldest first (at most 1,000).
pub async fn list(pool: &PgPool, ticket_id: i64) -> Result<Vec<Attachment>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from rm_attachments where ticket_id = $1 and not removed
          order by created_at, id limit 1000"
    ))
    .bind(ticket_id)
    .fetch_all(pool)
    .await
}
