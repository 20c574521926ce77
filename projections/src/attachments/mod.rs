//! The attachments read model: `rm_attachments` (one row per upload, kept with a
//! `removed` flag after deletion) and `rm_attachment_refs` (live attachments per blob).
//! A blob may be collected only while its count is 0 and no upload pins it
//! (see `ticketd::storage`).

pub mod queries;

use std::collections::HashMap;

use aggregates::ticket::TicketEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::comments::decode_ticket_events;
use crate::log::StoredEvent;
use crate::runtime::{ApplyError, Tables};

/// One row of `rm_attachments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, FromRow)]
pub struct AttachmentRow {
    pub id: Uuid,
    pub ticket_id: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub uploaded_by: i64,
    pub created_at: DateTime<Utc>,
    pub removed: bool,
    pub removed_by: Option<i64>,
    pub removed_at: Option<DateTime<Utc>>,
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

async fn apply_attachments(
    conn: &mut PgConnection,
    events: &[StoredEvent],
    tables: &Tables,
) -> Result<(), ApplyError> {
    let rm = tables.name("rm_attachments");
    let refs_table = tables.name("rm_attachment_refs");
    let decoded = decode_ticket_events(events, TYPES)?;
    if decoded.is_empty() {
        return Ok(());
    }
    let stored: Vec<&StoredEvent> = events
        .iter()
        .filter(|e| e.aggregate_type == "ticket" && TYPES.contains(&e.event_type.as_str()))
        .collect();
    let wanted: Vec<Uuid> = decoded
        .iter()
        .filter_map(|(_, _, e)| match e {
            TicketEvent::AttachmentRemoved { attachment_id, .. } => Some(*attachment_id),
            _ => None,
        })
        .collect();
    let mut rows: HashMap<Uuid, AttachmentRow> = HashMap::new();
    if !wanted.is_empty() {
        let existing: Vec<AttachmentRow> = sqlx::query_as(&format!(
            "select {ATTACHMENT_COLUMNS} from {rm} where id = any($1)"
        ))
        .bind(&wanted)
        .fetch_all(&mut *conn)
        .await?;
        rows.extend(existing.into_iter().map(|r| (r.id, r)));
    }
    let mut touched: Vec<Uuid> = Vec::new();
    let mut deltas: HashMap<String, i64> = HashMap::new();
    for ((ticket_id, _, event), stored) in decoded.iter().zip(stored) {
        match event {
            TicketEvent::AttachmentAdded {
                attachment_id,
                filename,
                content_type,
                size,
                sha256,
                uploaded_by,
                at,
            } => {
                rows.insert(
                    *attachment_id,
                    AttachmentRow {
                        id: *attachment_id,
                        ticket_id: *ticket_id,
                        filename: filename.clone(),
                        content_type: content_type.clone(),
                        size: *size,
                        sha256: sha256.clone(),
                        uploaded_by: *uploaded_by,
                        created_at: *at,
                        removed: false,
                        removed_by: None,
                        removed_at: None,
                    },
                );
                *deltas.entry(sha256.clone()).or_default() += 1;
                touched.push(*attachment_id);
            }
            TicketEvent::AttachmentRemoved {
                attachment_id,
                removed_by,
                at,
                ..
            } => {
                let Some(row) = rows.get_mut(attachment_id).filter(|r| !r.removed) else {
                    return Err(ApplyError::poison(
                        stored,
                        "removal of an unknown attachment",
                    ));
                };
                row.removed = true;
                row.removed_by = Some(*removed_by);
                row.removed_at = Some(*at);
                *deltas.entry(row.sha256.clone()).or_default() -= 1;
                touched.push(*attachment_id);
            }
            _ => {}
        }
    }
    touched.sort_unstable();
    touched.dedup();
    let changed: Vec<&AttachmentRow> = touched.iter().filter_map(|id| rows.get(id)).collect();
    let payload = serde_json::to_value(&changed).map_err(|e| ApplyError::Poison {
        position: -1,
        reason: e.to_string(),
    })?;
    sqlx::query(&format!(
        "insert into {rm} ({ATTACHMENT_COLUMNS})
         select {ATTACHMENT_COLUMNS} from jsonb_to_recordset($1) as r(
            id uuid, ticket_id bigint, filename text, content_type text, size bigint,
            sha256 text, uploaded_by bigint, created_at timestamptz, removed boolean,
            removed_by bigint, removed_at timestamptz)
         on conflict (id) do update set
            removed = excluded.removed, removed_by = excluded.removed_by,
            removed_at = excluded.removed_at"
    ))
    .bind(payload)
    .execute(&mut *conn)
    .await?;
    let deltas: Vec<(String, i64)> = deltas.into_iter().filter(|(_, d)| *d != 0).collect();
    if !deltas.is_empty() {
        let shas: Vec<&str> = deltas.iter().map(|(s, _)| s.as_str()).collect();
        let ns: Vec<i32> = deltas.iter().map(|(_, d)| *d as i32).collect();
        sqlx::query(&format!(
            "insert into {refs_table} as r (sha256, refs)
             select * from unnest($1::text[], $2::int[])
             on conflict (sha256) do update set refs = r.refs + excluded.refs"
        ))
        .bind(shas)
        .bind(ns)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

crate::read_model!(
    AttachmentsProjection,
    ["rm_attachments", "rm_attachment_refs"],
    apply_attachments
);
