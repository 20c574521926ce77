//! The comments read model (`rm_comments`): one row per comment, with its current text,
//! edit count and tombstone. Earlier texts stay in the event log (`CommentEdited` carries
//! `previous_content`), which the history API reads.

pub mod queries;

use queries::Comment;

use std::collections::HashMap;

use aggregates::ticket::{PostedComment, TicketEvent};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::batch::write_json_rows;
use crate::log::StoredEvent;
use crate::runtime::{ApplyError, Tables};

/// One row of `rm_comments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, FromRow)]
pub struct CommentRow {
    /// What the API shows of the comment (`edited` is not stored: it is `edit_count > 0`).
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub comment: Comment,
    pub edit_count: i32,
    pub deleted: bool,
    pub deleted_by: Option<i64>,
    pub version: i64,
}

impl CommentRow {
    /// The row a `CommentAdded` event (at `sequence` on `ticket_id`) creates.
    fn posted(ticket_id: i64, sequence: i64, posted: &PostedComment) -> Self {
        CommentRow {
            comment: Comment {
                id: posted.comment_id,
                ticket_id,
                author_id: posted.author_id,
                author_name: None,
                content_html: String::new(),
                content: posted.content.clone(),
                is_internal: posted.is_internal,
                parent_id: posted.parent_id,
                mentions: posted.mentions.clone(),
                edited: false,
                created_at: posted.at,
                updated_at: posted.at,
            },
            edit_count: 0,
            deleted: false,
            deleted_by: None,
            version: sequence,
        }
    }
}

/// Columns of `rm_comments` in the order of `CommentRow`.
pub const COMMENT_COLUMNS: &str = "id, ticket_id, author_id, content, is_internal, parent_id, \
    mentions, edit_count, deleted, deleted_by, created_at, updated_at, version";

/// The `comments` projection.
pub struct CommentsProjection;

impl CommentsProjection {
    /// The checkpoint name.
    pub const NAME: &'static str = "comments";
}

/// Decodes the ticket events of a batch whose `event_type` is in `types`, as
/// `(ticket id, sequence, event)` in log order.
pub fn decode_ticket_events(
    events: &[StoredEvent],
    types: &[&str],
) -> Result<Vec<(i64, i64, TicketEvent)>, ApplyError> {
    let mut out = Vec::new();
    for e in events
        .iter()
        .filter(|e| e.aggregate_type == "ticket" && types.contains(&e.event_type.as_str()))
    {
        let (id, event) = crate::batch::ticket_event(e)?;
        out.push((id, e.sequence, event));
    }
    Ok(out)
}

/// Folds one comment event into the rows of the batch. Returns false for an event about a
/// comment the model does not know (a poison event).
fn fold(
    rows: &mut HashMap<Uuid, CommentRow>,
    ticket_id: i64,
    sequence: i64,
    event: &TicketEvent,
) -> bool {
    match event {
        TicketEvent::CommentAdded(posted) => {
            let row = CommentRow::posted(ticket_id, sequence, posted);
            rows.insert(posted.comment_id, row);
            true
        }
        TicketEvent::CommentEdited {
            comment_id,
            content,
            mentions,
            at,
            ..
        } => match rows.get_mut(comment_id) {
            Some(row) => {
                row.comment.content = content.clone();
                row.comment.mentions = mentions.clone();
                row.comment.edited = true;
                row.comment.updated_at = *at;
                row.edit_count += 1;
                row.version = sequence;
                true
            }
            None => false,
        },
        TicketEvent::CommentDeleted {
            comment_id,
            deleted_by,
            at,
            ..
        } => match rows.get_mut(comment_id) {
            Some(row) => {
                row.deleted = true;
                row.deleted_by = Some(*deleted_by);
                row.comment.updated_at = *at;
                row.version = sequence;
                true
            }
            None => false,
        },
        _ => true,
    }
}

/// The stored rows of the comments a batch changes but did not create.
async fn load_changed(
    conn: &mut PgConnection,
    tables: &Tables,
    decoded: &[(i64, i64, TicketEvent)],
) -> Result<HashMap<Uuid, CommentRow>, ApplyError> {
    let mut created = std::collections::HashSet::new();
    let mut wanted: Vec<Uuid> = Vec::new();
    for (_, _, event) in decoded {
        match event {
            TicketEvent::CommentAdded(PostedComment { comment_id, .. }) => {
                created.insert(*comment_id);
            }
            TicketEvent::CommentEdited { comment_id, .. }
            | TicketEvent::CommentDeleted { comment_id, .. }
                if !created.contains(comment_id) =>
            {
                wanted.push(*comment_id);
            }
            _ => {}
        }
    }
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let existing: Vec<CommentRow> = sqlx::query_as(&format!(
        "select {COMMENT_COLUMNS}, edit_count > 0 as edited from {} where id = any($1)",
        tables.name("rm_comments")
    ))
    .bind(&wanted)
    .fetch_all(&mut *conn)
    .await?;
    Ok(existing.into_iter().map(|r| (r.comment.id, r)).collect())
}

async fn apply_comments(
    conn: &mut PgConnection,
    events: &[StoredEvent],
    tables: &Tables,
) -> Result<(), ApplyError> {
    const TYPES: &[&str] = &["CommentAdded", "CommentEdited", "CommentDeleted"];
    let stored: Vec<&StoredEvent> = events
        .iter()
        .filter(|e| e.aggregate_type == "ticket" && TYPES.contains(&e.event_type.as_str()))
        .collect();
    let decoded = decode_ticket_events(events, TYPES)?;
    if decoded.is_empty() {
        return Ok(());
    }
    let mut rows = load_changed(conn, tables, &decoded).await?;
    let mut touched: Vec<Uuid> = Vec::new();
    for ((ticket_id, sequence, event), stored) in decoded.iter().zip(stored) {
        if !fold(&mut rows, *ticket_id, *sequence, event) {
            return Err(ApplyError::poison(stored, "event about an unknown comment"));
        }
        if let TicketEvent::CommentAdded(PostedComment { comment_id, .. })
        | TicketEvent::CommentEdited { comment_id, .. }
        | TicketEvent::CommentDeleted { comment_id, .. } = event
        {
            if !touched.contains(comment_id) {
                touched.push(*comment_id);
            }
        }
    }
    let changed: Vec<&CommentRow> = touched.iter().filter_map(|id| rows.get(id)).collect();
    let sql = format!(
        "insert into {} ({COMMENT_COLUMNS})
         select {COMMENT_COLUMNS} from jsonb_to_recordset($1) as r(
            id uuid, ticket_id bigint, author_id bigint, content text, is_internal boolean,
            parent_id uuid, mentions bigint[], edit_count integer, deleted boolean,
            deleted_by bigint, created_at timestamptz, updated_at timestamptz, version bigint)
         on conflict (id) do update set
            content = excluded.content, mentions = excluded.mentions,
            edit_count = excluded.edit_count, deleted = excluded.deleted,
            deleted_by = excluded.deleted_by, updated_at = excluded.updated_at,
            version = excluded.version",
        tables.name("rm_comments")
    );
    write_json_rows(conn, &changed, &sql).await
}

/// An erased person's comments read `"[erased]"` (rebuilt, their sealed text opens to the same).
async fn erase_person(
    conn: &mut PgConnection,
    person: i64,
    tables: &Tables,
) -> Result<(), ApplyError> {
    crate::batch::redact(
        conn,
        &tables.name("rm_comments"),
        "content",
        "author_id",
        person,
    )
    .await
}

crate::read_model!(
    CommentsProjection,
    ["rm_comments"],
    apply_comments,
    erase = erase_person,
    reads = [
        "ticket.CommentAdded",
        "ticket.CommentEdited",
        "ticket.CommentDeleted"
    ]
);
