//! The comment rules: content limits, `@mentions` and who they may reach, and comments read
//! back from the `comments` read model for callers who may see them.

use aggregates::ticket::Ticket;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::service::auth::AuthUser;
use crate::service::consistency::fetch_caught_up;
use crate::service::error::{Error, Validator};
use crate::service::tickets::load_visible;
use crate::service::Services;

/// The most mentions recorded on one comment.
const MAX_MENTIONS: usize = 20;

/// The longest comment, in characters.
pub const MAX_CONTENT: usize = 20_000;

/// A comment on a ticket.
#[derive(Debug, Clone, Serialize, ToSchema, FromRow)]
pub struct Comment {
    pub id: Uuid,
    pub ticket_id: i64,
    pub author_id: i64,
    pub content: String,
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

pub(crate) const COLUMNS: &str =
    "id, ticket_id, author_id, content, is_internal, parent_id, mentions, \
    edit_count > 0 as edited, created_at, updated_at";

pub fn validate_content(v: &mut Validator, content: &str) {
    v.check(!content.trim().is_empty(), "content", "Content is required");
    v.check(
        content.chars().count() <= MAX_CONTENT,
        "content",
        "Content must be at most 20000 characters",
    );
}

/// The mentions written in `text`: emails (lowercased) and user ids, in order, deduplicated.
pub fn parse_mentions(text: &str) -> (Vec<String>, Vec<i64>) {
    let chars: Vec<char> = text.chars().collect();
    let mut emails: Vec<String> = Vec::new();
    let mut ids: Vec<i64> = Vec::new();
    let token_char = |c: char| c.is_alphanumeric() || "._%+-@".contains(c);
    let mut i = 0;
    while i < chars.len() && emails.len() + ids.len() < MAX_MENTIONS {
        let starts = chars[i] == '@'
            && (i == 0 || {
                let p = chars[i - 1];
                !(p.is_alphanumeric() || p == '.' || p == '_' || p == '@')
            });
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < chars.len() && token_char(chars[j]) {
            j += 1;
        }
        let mut token: String = chars[i + 1..j].iter().collect();
        while token.ends_with(['.', '-', '_', '%', '+', '@']) {
            token.pop();
        }
        if let Some((local, domain)) = token.split_once('@') {
            if !local.is_empty() && domain.contains('.') && !domain.contains('@') {
                let email = token.to_lowercase();
                if !emails.contains(&email) {
                    emails.push(email);
                }
            }
        } else if !token.is_empty() && token.chars().all(|c| c.is_ascii_digit()) {
            if let Ok(id) = token.parse::<i64>() {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        i = j.max(i + 1);
    }
    (emails, ids)
}

/// Resolves the mentions of `text` to active users who can read the comment.
pub async fn resolve_mentions(
    pool: &PgPool,
    text: &str,
    is_internal: bool,
    ticket: &Ticket,
) -> Result<Vec<i64>, Error> {
    let (emails, ids) = parse_mentions(text);
    if emails.is_empty() && ids.is_empty() {
        return Ok(Vec::new());
    }
    let found: Vec<(i64, String)> = sqlx::query_as(
        "select id, lower(email) from users
          where is_active and (lower(email) = any($1) or id = any($2))
            and (role <> 'requester' or (not $3 and id = $4))",
    )
    .bind(&emails)
    .bind(&ids)
    .bind(is_internal)
    .bind(ticket.requester_id)
    .fetch_all(pool)
    .await?;
    // Keep the order in which they were written.
    let mut out: Vec<i64> = Vec::new();
    for email in &emails {
        if let Some((id, _)) = found.iter().find(|(_, e)| e == email) {
            if !out.contains(id) {
                out.push(*id);
            }
        }
    }
    for id in &ids {
        if found.iter().any(|(f, _)| f == id) && !out.contains(id) {
            out.push(*id);
        }
    }
    out.truncate(MAX_MENTIONS);
    Ok(out)
}

/// A comment the caller may see, from the read model; 404 otherwise (internal notes too,
/// for requesters).
pub async fn load(services: &Services, user: &AuthUser, id: Uuid) -> Result<Comment, Error> {
    let query = format!("select {COLUMNS} from rm_comments where id = $1 and not deleted");
    let name = projections::comments::CommentsProjection::NAME;
    let comment = fetch_caught_up(&services.pool, name, || {
        sqlx::query_as::<_, Comment>(&query)
            .bind(id)
            .fetch_optional(&services.pool)
    })
    .await?
    .ok_or_else(|| Error::not_found("Comment"))?;
    // 404 on tickets that are not theirs, and on internal notes.
    load_visible(services, user, comment.ticket_id)
        .await
        .map_err(|_| Error::not_found("Comment"))?;
    if comment.is_internal && !user.is_staff() {
        return Err(Error::not_found("Comment"));
    }
    Ok(comment)
}

#[cfg(test)]
mod tests {
    use super::parse_mentions;

    #[test]
    fn mentions_are_emails_or_ids_after_a_boundary() {
        let (emails, ids) = parse_mentions(
            "Hi @Alice@Example.com, see @42. Mail bob@example.com, (@7) @alice@example.com @x @",
        );
        assert_eq!(emails, vec!["alice@example.com".to_string()]);
        assert_eq!(ids, vec![42, 7]);
    }
}
