//! Reading `rm_comments` as the API shows comments: one by id, a ticket's conversation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

/// A comment on a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, FromRow)]
pub struct Comment {
    pub id: Uuid,
    pub ticket_id: i64,
    pub author_id: i64,
    /// The author's display name (filled by the server from its users).
    #[sqlx(skip)]
    #[serde(default)]
    pub author_name: Option<String>,
    /// Markdown, as written.
    pub content: String,
    /// `content` rendered and sanitised (filled by the server).
    #[sqlx(skip)]
    #[serde(default)]
    pub content_html: String,
    /// An internal note, visible to agents and up only.
    pub is_internal: bool,
    /// The comment this one replies to.
    pub parent_id: Option<Uuid>,
    /// Users mentioned in the current text.
    pub mentions: Vec<i64>,
    /// True once the text has been edited (earlier texts are in the ticket's history).
    pub edited: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, ticket_id, author_id, content, is_internal, parent_id, mentions, \
    edit_count > 0 as edited, created_at, updated_at";

/// A live (not deleted) comment.
pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<Comment>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from rm_comments where id = $1 and not deleted"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// A page of a ticket's live comments, oldest first (internal notes only `with_internal`),
/// and how many there are in all.
pub async fn list(
    pool: &PgPool,
    ticket_id: i64,
    with_internal: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Comment>, i64), sqlx::Error> {
    let items: Vec<Comment> = sqlx::query_as(&format!(
        "select {COLUMNS} from rm_comments
          where ticket_id = $1 and not deleted and ($2 or not is_internal)
          order by created_at, id limit $3 offset $4"
    ))
    .bind(ticket_id)
    .bind(with_internal)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let (total,): (i64,) = sqlx::query_as(
        "select count(*) from rm_comments
          where ticket_id = $1 and not deleted and ($2 or not is_internal)",
    )
    .bind(ticket_id)
    .bind(with_internal)
    .fetch_one(pool)
    .await?;
    Ok((items, total))
}
