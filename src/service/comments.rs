//! The comment rules: content limits, `@mentions` and who they may reach, and comments read
//! back from the `comments` read model for callers who may see them.

use aggregates::ticket::{Ticket, TicketCommand};
use aggregates::{Role, TicketStatus};
pub use projections::comments::queries::{self, Comment};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::service::auth::AuthUser;
use crate::service::consistency::fetch_caught_up;
use crate::service::error::{Error, Validator};
use crate::service::executor::Committed;
use crate::service::names::{NameMap, Named};
use crate::service::paging::Page;
use crate::service::tickets::{
    check_reason, check_requester_move, check_status_allowed, execute_checked, load_visible,
};
use crate::service::Services;

/// The most mentions recorded on one comment.
const MAX_MENTIONS: usize = 20;

/// The longest comment, in characters.
pub const MAX_CONTENT: usize = 20_000;

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

/// Body of `POST /comments`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CommentCreate {
    pub ticket_id: i64,
    #[schema(max_length = 20000, pattern = r"\S")]
    pub content: String,
    /// Defaults to `false`; only agents and up may write internal notes.
    #[serde(default)]
    pub is_internal: bool,
    /// Reply to this comment (on the same ticket).
    pub parent_id: Option<Uuid>,
    /// Also move the ticket to this status, in the same command ("reply and resolve"):
    /// both happen or neither. Requesters may only close, reopen or cancel.
    pub set_status: Option<TicketStatus>,
    /// Why the status changes (with `set_status`).
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
}

/// The answer to `POST /comments`: the comment and the ticket's version after it (a reply
/// with `set_status` also moved the ticket).
#[derive(Debug, Serialize, ToSchema)]
pub struct CommentCreated {
    #[serde(flatten)]
    pub comment: Comment,
    pub ticket_version: i64,
}

/// Body of `PATCH /comments/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CommentUpdate {
    #[schema(max_length = 20000, pattern = r"\S")]
    pub content: String,
}

/// 422 unless the text is a valid comment.
pub fn check_content(content: &str) -> Result<(), Error> {
    let mut v = Validator::default();
    validate_content(&mut v, content);
    v.finish()
}

/// Adds a comment or an internal note (agents and up) to a ticket the caller may see,
/// optionally as a reply to a live comment the caller can see.
pub async fn add(
    services: &Services,
    user: &AuthUser,
    body: CommentCreate,
) -> Result<(Comment, Committed<Ticket>), Error> {
    check_content(&body.content)?;
    check_reason(body.reason.as_deref())?;
    let (ticket, _) = load_visible(services, user, body.ticket_id).await?;
    if let Some(status) = body.set_status {
        check_status_allowed(user, status)?;
        if !user.is_staff() {
            check_requester_move(services, &ticket, status).await?;
        }
    }
    if body.is_internal && !user.is_staff() {
        return Err(Error::Forbidden(
            "Only agents can write internal notes".into(),
        ));
    }
    if let Some(parent) = body.parent_id {
        let visible = ticket
            .comments
            .get(&parent)
            .is_some_and(|c| !c.deleted && (user.is_staff() || !c.is_internal));
        if !visible {
            return Err(Error::field(
                "parent_id",
                "The parent comment is not on this ticket",
            ));
        }
    }
    let mentions =
        resolve_mentions(&services.pool, &body.content, body.is_internal, &ticket).await?;
    let at = crate::service::now();
    let comment = Comment {
        id: Uuid::new_v4(),
        ticket_id: body.ticket_id,
        author_id: user.id,
        author_name: None,
        content_html: String::new(),
        content: body.content,
        is_internal: body.is_internal,
        parent_id: body.parent_id,
        mentions,
        edited: false,
        created_at: at,
        updated_at: at,
    };
    let committed = execute_checked(services, user, comment.ticket_id, None, |_| {
        TicketCommand::AddComment {
            comment_id: comment.id,
            author_id: user.id,
            by_staff: user.is_staff(),
            content: comment.content.clone(),
            is_internal: comment.is_internal,
            parent_id: comment.parent_id,
            mentions: comment.mentions.clone(),
            then_status: body.set_status.map(|s| (s, body.reason.clone())),
            at: comment.created_at,
        }
    })
    .await?;
    let mut comment = [comment];
    present(services, &mut comment).await?;
    let [comment] = comment;
    Ok((comment, committed))
}

/// What comment responses show beside the stored fields: the author's name and the text
/// rendered (`content_html`).
pub async fn present(services: &Services, comments: &mut [Comment]) -> Result<(), Error> {
    services.names.fill(&services.pool, comments).await?;
    for c in comments {
        c.content_html = crate::service::markdown::render(&c.content);
    }
    Ok(())
}

/// A page of a ticket's conversation, oldest first; requesters never see internal notes.
pub async fn list(
    services: &Services,
    user: &AuthUser,
    ticket_id: i64,
    page: (i64, i64, i64),
) -> Result<Page<Comment>, Error> {
    let (page, size, offset) = page;
    load_visible(services, user, ticket_id).await?;
    let with_internal = user.role != Role::Requester;
    let (mut items, total) =
        queries::list(&services.pool, ticket_id, with_internal, size, offset).await?;
    present(services, &mut items).await?;
    Ok(Page::new(items, total, page, size))
}

/// A comment the caller may change: its author, or staff.
async fn load_own(services: &Services, user: &AuthUser, id: Uuid) -> Result<Comment, Error> {
    let comment = load(services, user, id).await?;
    if comment.author_id != user.id && !user.is_staff() {
        return Err(Error::Forbidden(
            "Only the author or an agent can change this comment".into(),
        ));
    }
    Ok(comment)
}

/// Edits a comment's text (its author, or staff); the previous text stays in the history.
pub async fn edit(
    services: &Services,
    user: &AuthUser,
    id: Uuid,
    content: String,
) -> Result<(Comment, Committed<Ticket>), Error> {
    check_content(&content)?;
    let mut comment = load_own(services, user, id).await?;
    let (ticket, _) = load_visible(services, user, comment.ticket_id).await?;
    let mentions = resolve_mentions(&services.pool, &content, comment.is_internal, &ticket).await?;
    let at = crate::service::now();
    let committed = execute_checked(services, user, comment.ticket_id, None, |_| {
        TicketCommand::EditComment {
            comment_id: id,
            editor_id: user.id,
            content: content.clone(),
            mentions: mentions.clone(),
            at,
        }
    })
    .await?;
    if committed.appended > 0 {
        comment.content_html = crate::service::markdown::render(&content);
        comment.content = content;
        comment.mentions = mentions;
        comment.edited = true;
        comment.updated_at = at;
    }
    Ok((comment, committed))
}

/// Deletes a comment (its author, or staff): a tombstone stays in the history; replies stay.
pub async fn delete(
    services: &Services,
    user: &AuthUser,
    id: Uuid,
) -> Result<Committed<Ticket>, Error> {
    let comment = load_own(services, user, id).await?;
    execute_checked(services, user, comment.ticket_id, None, |_| {
        TicketCommand::DeleteComment {
            comment_id: id,
            deleted_by: user.id,
            at: crate::service::now(),
        }
    })
    .await
}

/// A comment the caller may see, from the read model; 404 otherwise (internal notes too,
/// for requesters).
pub async fn load(services: &Services, user: &AuthUser, id: Uuid) -> Result<Comment, Error> {
    let name = projections::comments::CommentsProjection::NAME;
    let comment = fetch_caught_up(&services.pool, name, || queries::find(&services.pool, id))
        .await?
        .ok_or_else(|| Error::not_found("Comment"))?;
    // 404 on tickets that are not theirs, and on internal notes.
    load_visible(services, user, comment.ticket_id)
        .await
        .map_err(|_| Error::not_found("Comment"))?;
    if comment.is_internal && !user.is_staff() {
        return Err(Error::not_found("Comment"));
    }
    let mut comment = [comment];
    present(services, &mut comment).await?;
    let [comment] = comment;
    Ok(comment)
}

impl Named for Comment {
    fn people(&self, ids: &mut Vec<i64>) {
        ids.push(self.author_id);
    }
    fn take_names(&mut self, names: &NameMap) {
        self.author_name = names.name(self.author_id);
    }
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
