//! The attachment use cases: cleaning a file's name and type, attaching stored bytes to a
//! ticket (pinned so the blob cannot go while the event is written), and reading attachments
//! back from the `attachments` read model for callers who may see their ticket.

use aggregates::ticket::{AttachedFile, Ticket, TicketCommand};
pub use projections::attachments::queries::{self, Attachment};
use uuid::Uuid;

use crate::service::auth::AuthUser;
use crate::service::consistency::fetch_caught_up;
use crate::service::error::Error;
use crate::service::executor::Committed;
use crate::service::names::{NameMap, Named};
use crate::service::paging::Page;
use crate::service::storage::Staged;
use crate::service::tickets::{command_error, execute_checked, load_visible};
use crate::service::Services;

/// The longest stored file name, in characters.
const MAX_FILENAME: usize = 200;

/// Extensions and the content types served for them. Anything else is
/// `application/octet-stream`. No HTML, SVG, XML or script types: with `nosniff` and
/// `attachment` they could not run anyway, but they gain nothing either.
const ALLOWED_TYPES: &[(&str, &str)] = &[
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("bmp", "image/bmp"),
    ("tif", "image/tiff"),
    ("tiff", "image/tiff"),
    ("heic", "image/heic"),
    ("pdf", "application/pdf"),
    ("txt", "text/plain"),
    ("log", "text/plain"),
    ("md", "text/markdown"),
    ("csv", "text/csv"),
    ("json", "application/json"),
    ("rtf", "application/rtf"),
    ("doc", "application/msword"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("xls", "application/vnd.ms-excel"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("ppt", "application/vnd.ms-powerpoint"),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("odt", "application/vnd.oasis.opendocument.text"),
    ("ods", "application/vnd.oasis.opendocument.spreadsheet"),
    ("odp", "application/vnd.oasis.opendocument.presentation"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
    ("tgz", "application/gzip"),
    ("7z", "application/x-7z-compressed"),
    ("tar", "application/x-tar"),
    ("eml", "message/rfc822"),
    ("mp3", "audio/mpeg"),
    ("wav", "audio/wav"),
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
];

/// The content type to store and serve for a cleaned file name and a declared type.
pub fn content_type_for(filename: &str, declared: Option<&str>) -> &'static str {
    let by_extension = filename
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .and_then(|ext| {
            ALLOWED_TYPES
                .iter()
                .find(|(e, _)| *e == ext)
                .map(|(_, t)| *t)
        });
    let by_declaration = || {
        let declared = declared?.split(';').next()?.trim().to_ascii_lowercase();
        ALLOWED_TYPES
            .iter()
            .find(|(_, t)| *t == declared)
            .map(|(_, t)| *t)
    };
    by_extension
        .or_else(by_declaration)
        .unwrap_or("application/octet-stream")
}

/// Characters never kept in a file name: controls, bidirectional and invisible formatting.
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '"' | '\u{00AD}' | '\u{061C}' | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}')
}

/// A safe file name from what the client sent (see the module docs).
pub fn sanitize_filename(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !is_unsafe_char(*c))
        .map(|c| match c {
            '<' | '>' | ':' | '|' | '?' | '*' => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| c.is_whitespace() || c == '.');
    let name = if trimmed.is_empty() { "file" } else { trimmed };
    if name.chars().count() <= MAX_FILENAME {
        return name.to_string();
    }
    // Too long: shorten the stem, keep a reasonable extension.
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.chars().count() <= 16 => (stem, Some(ext)),
        _ => (name, None),
    };
    let room = MAX_FILENAME - ext.map_or(0, |e| e.chars().count() + 1);
    let stem: String = stem.chars().take(room).collect();
    let stem = stem.trim_end_matches(|c: char| c.is_whitespace() || c == '.');
    match ext {
        Some(ext) => format!("{stem}.{ext}"),
        None => stem.to_string(),
    }
}

/// The bytes of an upload, staged in the blob store, with what the client said about them.
pub struct Upload {
    pub ticket_id: i64,
    pub staged: Staged,
    pub declared_name: String,
    pub declared_type: Option<String>,
}

/// Attaches an upload to its ticket as `user` (who may see the ticket). On any failure the
/// blob is unpinned and collected if nothing else uses it: no event, nothing kept.
pub async fn attach(
    services: &Services,
    user: &AuthUser,
    upload: Upload,
) -> Result<(Attachment, Committed<Ticket>), Error> {
    let filename = sanitize_filename(&upload.declared_name);
    let attachment = Attachment {
        id: Uuid::new_v4(),
        ticket_id: upload.ticket_id,
        content_type: content_type_for(&filename, upload.declared_type.as_deref()).to_string(),
        filename,
        size: upload.staged.size as i64,
        sha256: upload.staged.sha256.clone(),
        uploaded_by: user.id,
        uploaded_by_name: None,
        created_at: crate::service::now(),
    };
    // Pin first: from here until the projection counts this upload, the blob cannot go.
    sqlx::query("insert into attachment_pins (attachment_id, sha256) values ($1, $2)")
        .bind(attachment.id)
        .bind(&attachment.sha256)
        .execute(&services.pool)
        .await?;
    match place_and_record(services, user, &attachment, upload.staged).await {
        Ok(committed) => {
            crate::service::metrics::command_committed();
            let mut attachment = attachment;
            services.names.fill(&services.pool, &mut attachment).await?;
            Ok((attachment, committed))
        }
        Err(e) => {
            unpin(services, &attachment).await;
            Err(e)
        }
    }
}

/// Moves the staged bytes to their blob and records `AttachmentAdded`.
async fn place_and_record(
    services: &Services,
    user: &AuthUser,
    attachment: &Attachment,
    staged: Staged,
) -> Result<Committed<Ticket>, Error> {
    services
        .storage
        .place(&services.pool, staged)
        .await
        .map_err(Error::internal)?;
    services
        .tickets
        .execute(
            &attachment.ticket_id.to_string(),
            None,
            user.actor.metadata(),
            |_| {
                TicketCommand::AddAttachment(AttachedFile {
                    attachment_id: attachment.id,
                    filename: attachment.filename.clone(),
                    content_type: attachment.content_type.clone(),
                    size: attachment.size,
                    sha256: attachment.sha256.clone(),
                    uploaded_by: user.id,
                    at: attachment.created_at,
                })
            },
        )
        .await
        .map_err(command_error)
}

/// No event was recorded: unpin, and collect the blob if nothing else uses it.
async fn unpin(services: &Services, attachment: &Attachment) {
    let _ = sqlx::query("delete from attachment_pins where attachment_id = $1")
        .bind(attachment.id)
        .execute(&services.pool)
        .await;
    if let Err(gc) = services
        .storage
        .collect(&services.pool, Some(&attachment.sha256))
        .await
    {
        tracing::warn!(error = %gc, "collecting an unused blob");
    }
}

/// A live attachment the caller may see; 404 otherwise.
pub async fn load(services: &Services, user: &AuthUser, id: Uuid) -> Result<Attachment, Error> {
    let name = projections::attachments::AttachmentsProjection::NAME;
    let row = fetch_caught_up(&services.pool, name, || queries::find(&services.pool, id))
        .await?
        .ok_or_else(|| Error::not_found("Attachment"))?;
    load_visible(services, user, row.ticket_id)
        .await
        .map_err(|_| Error::not_found("Attachment"))?;
    let mut row = row;
    services.names.fill(&services.pool, &mut row).await?;
    Ok(row)
}

impl Named for Attachment {
    fn people(&self, ids: &mut Vec<i64>) {
        ids.push(self.uploaded_by);
    }
    fn take_names(&mut self, names: &NameMap) {
        self.uploaded_by_name = names.name(self.uploaded_by);
    }
}

/// A page of a ticket's files, oldest first, if the caller may see the ticket.
pub async fn list(
    services: &Services,
    user: &AuthUser,
    ticket_id: i64,
    (page, size, offset): (i64, i64, i64),
) -> Result<Page<Attachment>, Error> {
    load_visible(services, user, ticket_id).await?;
    let (mut items, total) = queries::list(&services.pool, ticket_id, (size, offset)).await?;
    services.names.fill(&services.pool, &mut items).await?;
    Ok(Page::new(items, total, page, size))
}

/// Removes an attachment as its uploader or staff; the blob is collected once the projection
/// has counted the removal (the periodic collector catches anything this misses).
pub async fn remove(
    services: &Services,
    user: &AuthUser,
    id: Uuid,
) -> Result<Committed<Ticket>, Error> {
    let attachment = load(services, user, id).await?;
    if attachment.uploaded_by != user.id && !user.is_staff() {
        return Err(Error::Forbidden(
            "Only the uploader or an agent can remove this file".into(),
        ));
    }
    let committed = execute_checked(services, user, attachment.ticket_id, None, |_| {
        TicketCommand::RemoveAttachment {
            attachment_id: id,
            removed_by: user.id,
            at: crate::service::now(),
        }
    })
    .await?;
    if let Some(token) = committed.token {
        let pool = services.pool.clone();
        let storage = services.storage.clone();
        let sha = attachment.sha256;
        tokio::spawn(async move {
            let name = projections::attachments::AttachmentsProjection::NAME;
            let timeout = std::time::Duration::from_secs(30);
            if crate::service::consistency::wait_for_projection(&pool, name, token, timeout).await {
                if let Err(e) = storage.collect(&pool, Some(&sha)).await {
                    tracing::warn!(error = %e, "collecting a blob");
                }
            }
        });
    }
    Ok(committed)
}
