//! The attachments read model: `rm_attachments` (one row per upload, kept with a
//! `removed` flag after deletion) and `rm_attachment_refs` (live attachments per blob).
//! A blob may be collected only while its count is 0 and no upload pins it
//! (see `ticketd::storage`).

pub mod queries;

use queries::Attachment;

use std::collections::HashMap;

use aggregates::ticket::{AttachedFile, TicketEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::batch::write_json_rows;
use crate::comments::decode_ticket_events;
use crate::log::StoredEvent;
use crate::runtime::{ApplyError, Tables};

/// One row of `rm_attachments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, FromRow)]
pub struct AttachmentRow {
    /// What the API shows of the file.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub file: Attachment,
    pub removed: bool,
    pub removed_by: Option<i64>,
    pub removed_at: Option<DateTime<Utc>>,
}

impl AttachmentRow {
    /// The row an `AttachmentAdded` event on `ticket_id` creates.
    fn added(ticket_id: i64, file: &AttachedFile) -> Self {
        AttachmentRow {
            file: Attachment {
                id: file.attachment_id,
                ticket_id,
                filename: file.filename.clone(),
                content_type: file.content_type.clone(),
                size: file.size,
                sha256: file.sha256.clone(),
                uploaded_by: file.uploaded_by,
                uploaded_by_name: None,
                created_at: file.at,
            },
            removed: false,
            removed_by: None,
            removed_at: None,
        }
    }
}

/// Columns of `rm_attachments` in the order of `AttachmentRow`.
pub const ATTACHMENT_COLUMNS: &str = "id, ticket_id, filename, content_type, size, sha256, \
    uploaded_by, created_at, removed, removed_by, removed_at";

/// The `attachments` projection.
pub struct AttachmentsProjection;

impl AttachmentsProjection {
    /// The checkpoint name.
    pub const NAME: &'static str = "attachments";
}

const TYPES: &[&str] = &["AttachmentAdded", "AttachmentRemoved"];

/// The batch's attachment rows being folded, which ones changed, and how many live
/// attachments each blob gains or loses.
#[derive(Default)]
struct Folding {
    rows: HashMap<Uuid, AttachmentRow>,
    touched: Vec<Uuid>,
    deltas: HashMap<String, i64>,
}

impl Folding {
    fn add(&mut self, row: AttachmentRow) {
        *self.deltas.entry(row.file.sha256.clone()).or_default() += 1;
        self.touched.push(row.file.id);
        self.rows.insert(row.file.id, row);
    }

    /// Marks a live attachment removed; None if there is no such live attachment.
    fn remove(&mut self, id: Uuid, removed_by: i64, at: DateTime<Utc>) -> Option<()> {
        let row = self.rows.get_mut(&id).filter(|r| !r.removed)?;
        row.removed = true;
        row.removed_by = Some(removed_by);
        row.removed_at = Some(at);
        *self.deltas.entry(row.file.sha256.clone()).or_default() -= 1;
        self.touched.push(id);
        Some(())
    }
}

/// The stored rows of the attachments a batch removes.
async fn load_removed(
    conn: &mut PgConnection,
    tables: &Tables,
    decoded: &[(i64, i64, TicketEvent)],
) -> Result<HashMap<Uuid, AttachmentRow>, ApplyError> {
    let wanted: Vec<Uuid> = decoded
        .iter()
        .filter_map(|(_, _, e)| match e {
            TicketEvent::AttachmentRemoved { attachment_id, .. } => Some(*attachment_id),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let existing: Vec<AttachmentRow> = sqlx::query_as(&format!(
        "select {ATTACHMENT_COLUMNS} from {} where id = any($1)",
        tables.name("rm_attachments")
    ))
    .bind(&wanted)
    .fetch_all(&mut *conn)
    .await?;
    Ok(existing.into_iter().map(|r| (r.file.id, r)).collect())
}

async fn apply_attachments(
    conn: &mut PgConnection,
    events: &[StoredEvent],
    tables: &Tables,
) -> Result<(), ApplyError> {
    let decoded = decode_ticket_events(events, TYPES)?;
    if decoded.is_empty() {
        return Ok(());
    }
    let stored: Vec<&StoredEvent> = events
        .iter()
        .filter(|e| e.aggregate_type == "ticket" && TYPES.contains(&e.event_type.as_str()))
        .collect();
    let mut folding = Folding {
        rows: load_removed(conn, tables, &decoded).await?,
        ..Folding::default()
    };
    for ((ticket_id, _, event), stored) in decoded.iter().zip(stored) {
        match event {
            TicketEvent::AttachmentAdded(file) => {
                folding.add(AttachmentRow::added(*ticket_id, file))
            }
            TicketEvent::AttachmentRemoved {
                attachment_id,
                removed_by,
                at,
                ..
            } => folding
                .remove(*attachment_id, *removed_by, *at)
                .ok_or_else(|| ApplyError::poison(stored, "removal of an unknown attachment"))?,
            _ => {}
        }
    }
    write(conn, tables, folding).await
}

/// Writes the changed rows and the blobs' reference counts.
async fn write(
    conn: &mut PgConnection,
    tables: &Tables,
    mut folding: Folding,
) -> Result<(), ApplyError> {
    folding.touched.sort_unstable();
    folding.touched.dedup();
    let changed: Vec<&AttachmentRow> = folding
        .touched
        .iter()
        .filter_map(|id| folding.rows.get(id))
        .collect();
    let sql = format!(
        "insert into {} ({ATTACHMENT_COLUMNS})
         select {ATTACHMENT_COLUMNS} from jsonb_to_recordset($1) as r(
            id uuid, ticket_id bigint, filename text, content_type text, size bigint,
            sha256 text, uploaded_by bigint, created_at timestamptz, removed boolean,
            removed_by bigint, removed_at timestamptz)
         on conflict (id) do update set
            removed = excluded.removed, removed_by = excluded.removed_by,
            removed_at = excluded.removed_at",
        tables.name("rm_attachments")
    );
    write_json_rows(conn, &changed, &sql).await?;
    let deltas: Vec<(&String, &i64)> = folding.deltas.iter().filter(|(_, d)| **d != 0).collect();
    if deltas.is_empty() {
        return Ok(());
    }
    let shas: Vec<&str> = deltas.iter().map(|(s, _)| s.as_str()).collect();
    let ns: Vec<i32> = deltas.iter().map(|(_, d)| **d as i32).collect();
    sqlx::query(&format!(
        "insert into {} as r (sha256, refs)
         select * from unnest($1::text[], $2::int[])
         on conflict (sha256) do update set refs = r.refs + excluded.refs",
        tables.name("rm_attachment_refs")
    ))
    .bind(shas)
    .bind(ns)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The names of an erased person's files read `"[erased]"` (their blobs are deleted by the
/// erasure itself).
async fn erase_person(
    conn: &mut PgConnection,
    person: i64,
    tables: &Tables,
) -> Result<(), ApplyError> {
    crate::batch::redact(
        conn,
        &tables.name("rm_attachments"),
        "filename",
        "uploaded_by",
        person,
    )
    .await
}

crate::read_model!(
    AttachmentsProjection,
    ["rm_attachments", "rm_attachment_refs"],
    apply_attachments,
    erase = erase_person,
    reads = ["ticket.AttachmentAdded", "ticket.AttachmentRemoved"]
);
