//! `/api/v1/attachments`: files on tickets. Metadata are Ticket events (`AttachmentAdded`,
//! `AttachmentRemoved`) read back from the `attachments` read model; the bytes live in the
//! blob store (`crate::storage`), addressed by sha256.
//!
//! - **Upload** (multipart: `ticket_id`, `file`): the file streams to a temporary object
//!   while it is hashed and counted; one byte over `TICKETD_MAX_UPLOAD_BYTES` answers 413
//!   and keeps nothing (no object, no event). Same bytes, one blob.
//! - **Names** are cleaned before they are stored: the last path component only, without
//!   control characters (NUL included), quotes, bidirectional and invisible formatting
//!   characters, or Windows-reserved characters; at most 200 characters (the extension is
//!   kept); never empty. `filename*` (RFC 5987) in the part's header is honoured.
//! - **Types** come from an allow-list by extension (else the client's declared type if it is
//!   on the list), otherwise `application/octet-stream`.
//! - **Download** streams with `Content-Disposition: attachment; filename="<ASCII>";
//!   filename*=UTF-8''<UTF-8>` (RFC 6266), `X-Content-Type-Options: nosniff` and a sandboxing
//!   CSP, so nothing uploaded is ever rendered as a page of this origin.
//! - **Delete** (uploader or staff) records the event; the blob goes once no live
//!   attachment uses it.
//! - Requesters get 404 for anything on a ticket that is not theirs.

use aggregates::ticket::TicketCommand;
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    ETAG, LOCATION, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::consistency::wait_for_token;
use crate::http::error::{ApiError, AppPath, AppQuery, FieldError};
use crate::http::state::AppState;
use crate::http::with_token;
use crate::service::auth::AuthUser;
use crate::service::storage::{Staged, Storage, StorageError};
use crate::service::tickets::{command_error, execute_checked, load_visible};

/// The longest stored file name, in characters.
const MAX_FILENAME: usize = 200;

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_attachments, upload_attachment))
        .routes(routes!(find_attachment, delete_attachment))
        .routes(routes!(download_attachment))
}

/// A file attached to a ticket.
#[derive(Debug, Clone, Serialize, ToSchema, FromRow)]
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

/// The multipart body of `POST /attachments` (for the OpenAPI document).
#[derive(Debug, ToSchema)]
pub struct AttachmentUpload {
    pub ticket_id: i64,
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// Query of `GET /attachments`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttachmentListQueryParams {
    /// The ticket whose files to list (required).
    pub ticket_id: Option<i64>,
}

const COLUMNS: &str =
    "id, ticket_id, filename, content_type, size, sha256, uploaded_by, created_at";

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

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded UTF-8>`.
pub fn content_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() || c == ' ') && !matches!(c, '"' | '\\' | '%') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(filename.len() * 3);
    for b in filename.bytes() {
        // RFC 5987 attr-char.
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

fn percent_decode(s: &str) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi * 16 + lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The file name a multipart part declares: `filename*` (RFC 5987) if present, else
/// `filename` with the WHATWG escapes (`%22`, `%0D`, `%0A`) undone.
fn declared_filename(field: &Field<'_>) -> Option<String> {
    let header = field
        .headers()
        .get(CONTENT_DISPOSITION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if let Some(header) = header {
        let lower = header.to_ascii_lowercase();
        if let Some(i) = lower.find("filename*=") {
            let value = header[i + "filename*=".len()..]
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches('"');
            // charset'language'value
            let mut parts = value.splitn(3, '\'');
            let (charset, _, encoded) = (parts.next(), parts.next(), parts.next());
            if let (Some(charset), Some(encoded)) = (charset, encoded) {
                let bytes = percent_decode(encoded);
                if charset.eq_ignore_ascii_case("utf-8") {
                    return Some(String::from_utf8_lossy(&bytes).into_owned());
                }
                return Some(bytes.iter().map(|b| *b as char).collect());
            }
        }
    }
    field.file_name().map(|name| {
        name.replace("%22", "\"")
            .replace("%0D", "\r")
            .replace("%0A", "\n")
    })
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("The upload is too large".into())
    } else {
        ApiError::Validation(vec![FieldError::body(
            "file",
            "The multipart body is malformed or was cut off",
            "value_error",
        )])
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!("Files may be at most {limit} bytes"))
}

fn storage_error(e: StorageError) -> ApiError {
    ApiError::internal(e)
}

/// Reads a small text field (at most `max` bytes).
async fn small_text(field: &mut Field<'_>, name: &str, max: usize) -> Result<String, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        buf.extend_from_slice(&chunk);
        if buf.len() > max {
            return Err(ApiError::field(name, format!("{name} is too long")));
        }
    }
    String::from_utf8(buf).map_err(|_| ApiError::field(name, format!("{name} is not text")))
}

/// Reads and discards the rest of the request (bounded by the server's body limit), so that
/// a client still sending sees the error answer instead of a reset connection.
async fn drain(multipart: &mut Multipart) {
    let work = async {
        while let Ok(Some(mut field)) = multipart.next_field().await {
            while let Ok(Some(_)) = field.chunk().await {}
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), work).await;
}

/// Streams one file part to a temporary object. `Err` leaves nothing behind.
async fn receive_file(
    storage: &Storage,
    field: &mut Field<'_>,
    limit: u64,
) -> Result<Staged, ApiError> {
    let mut upload = storage.begin_upload(limit).await.map_err(storage_error)?;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if let Err(e) = upload.write(chunk).await {
                    upload.abort().await;
                    return Err(match e {
                        StorageError::TooLarge(limit) => too_large(limit),
                        other => storage_error(other),
                    });
                }
            }
            Ok(None) => break,
            Err(e) => {
                upload.abort().await;
                return Err(multipart_error(e));
            }
        }
    }
    upload.finish().await.map_err(storage_error)
}

/// Attach a file to a ticket (multipart `ticket_id`, `file`). Over the size limit: 413,
/// nothing kept.
#[utoipa::path(post, path = "/", tag = "attachments", security(("bearer" = [])),
    request_body(content = AttachmentUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = Attachment, headers(("Location" = String), ("X-Consistency-Token" = String))),
              (status = 404, body = crate::http::error::ErrorBody), (status = 413, body = crate::http::error::ErrorBody),
              (status = 415, body = crate::http::error::ErrorBody), (status = 422, body = crate::http::error::ValidationErrorBody)))]
async fn upload_attachment(
    State(state): State<AppState>,
    user: AuthUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut multipart = multipart.map_err(|_| {
        ApiError::UnsupportedMediaType("Expected a multipart/form-data request".into())
    })?;
    let limit = state.settings.max_upload_bytes;
    let mut ticket_id: Option<i64> = None;
    let mut file: Option<(Staged, String, Option<String>)> = None;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e)),
        };
        match field.name() {
            Some("ticket_id") => {
                let text = small_text(&mut field, "ticket_id", 32).await?;
                let id: i64 = text.trim().parse().map_err(|_| {
                    ApiError::field("ticket_id", "ticket_id must be a ticket number")
                })?;
                // Refuse before any byte of the file is stored.
                load_visible(&state, &user, id).await?;
                ticket_id = Some(id);
            }
            Some("file") => {
                if file.is_some() {
                    return Err(ApiError::field("file", "Send one file per request"));
                }
                let name = declared_filename(&field);
                let declared = field.content_type().map(str::to_string);
                match receive_file(&state.storage, &mut field, limit).await {
                    Ok(staged) => file = Some((staged, name.unwrap_or_default(), declared)),
                    Err(e) => {
                        drop(field);
                        if matches!(e, ApiError::PayloadTooLarge(_)) {
                            drain(&mut multipart).await;
                        }
                        return Err(e);
                    }
                }
            }
            _ => while let Ok(Some(_)) = field.chunk().await {},
        }
    }
    let Some(ticket_id) = ticket_id else {
        return Err(ApiError::Validation(vec![FieldError::body(
            "ticket_id",
            "Field 'ticket_id' is required",
            "missing",
        )]));
    };
    let Some((staged, raw_name, declared)) = file else {
        return Err(ApiError::Validation(vec![FieldError::body(
            "file",
            "Field 'file' is required",
            "missing",
        )]));
    };
    let filename = sanitize_filename(&raw_name);
    let attachment = Attachment {
        id: Uuid::new_v4(),
        ticket_id,
        content_type: content_type_for(&filename, declared.as_deref()).to_string(),
        filename,
        size: staged.size as i64,
        sha256: staged.sha256.clone(),
        uploaded_by: user.id,
        created_at: Utc::now(),
    };
    // Pin first: from here until the projection counts this upload, the blob cannot go.
    sqlx::query("insert into attachment_pins (attachment_id, sha256) values ($1, $2)")
        .bind(attachment.id)
        .bind(&attachment.sha256)
        .execute(&state.pool)
        .await?;
    let committed = async {
        state
            .storage
            .place(&state.pool, staged)
            .await
            .map_err(storage_error)?;
        state
            .tickets
            .execute(&ticket_id.to_string(), None, user.actor.metadata(), |_| {
                TicketCommand::AddAttachment {
                    attachment_id: attachment.id,
                    filename: attachment.filename.clone(),
                    content_type: attachment.content_type.clone(),
                    size: attachment.size,
                    sha256: attachment.sha256.clone(),
                    uploaded_by: user.id,
                    at: attachment.created_at,
                }
            })
            .await
            .map_err(command_error)
    }
    .await;
    let committed = match committed {
        Ok(c) => c,
        Err(e) => {
            // No event: unpin, and collect the blob if nothing else uses it.
            let _ = sqlx::query("delete from attachment_pins where attachment_id = $1")
                .bind(attachment.id)
                .execute(&state.pool)
                .await;
            if let Err(gc) = state
                .storage
                .collect(&state.pool, Some(&attachment.sha256))
                .await
            {
                tracing::warn!(error = %gc, "collecting an unused blob");
            }
            return Err(e);
        }
    };
    crate::service::metrics::command_committed();
    let mut response = with_token(
        (StatusCode::CREATED, axum::Json(&attachment)).into_response(),
        committed.token,
    );
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/attachments/{}", attachment.id)) {
        response.headers_mut().insert(LOCATION, v);
    }
    Ok(response)
}

async fn wait_for_attachments(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    wait_for_token(
        state,
        headers,
        &[projections::attachments::AttachmentsProjection::NAME],
    )
    .await
}

/// A live attachment the caller may see; 404 otherwise.
async fn load_attachment(
    state: &AppState,
    user: &AuthUser,
    id: Uuid,
) -> Result<Attachment, ApiError> {
    let query = format!("select {COLUMNS} from rm_attachments where id = $1 and not removed");
    let mut row: Option<Attachment> = sqlx::query_as(&query)
        .bind(id)
        .fetch_optional(&state.pool)
        .await?;
    if row.is_none() {
        // Perhaps just uploaded without its consistency token: catch up once, look again.
        let name = projections::attachments::AttachmentsProjection::NAME;
        if crate::service::storage::catch_up(&state.pool, name, std::time::Duration::from_secs(2))
            .await
        {
            row = sqlx::query_as(&query)
                .bind(id)
                .fetch_optional(&state.pool)
                .await?;
        }
    }
    let row = row.ok_or_else(|| ApiError::not_found("Attachment"))?;
    load_visible(state, user, row.ticket_id)
        .await
        .map_err(|_| ApiError::not_found("Attachment"))?;
    Ok(row)
}

/// A ticket's files, oldest first.
#[utoipa::path(get, path = "/", tag = "attachments", security(("bearer" = [])),
    params(AttachmentListQueryParams, ("X-Consistency-Token" = Option<String>, Header, description = "Wait until this write is visible")),
    responses((status = 200, body = Vec<Attachment>), (status = 404, body = crate::http::error::ErrorBody),
              (status = 422, body = crate::http::error::ValidationErrorBody)))]
async fn list_attachments(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppQuery(query): AppQuery<AttachmentListQueryParams>,
) -> Result<axum::Json<Vec<Attachment>>, ApiError> {
    let Some(ticket_id) = query.ticket_id else {
        return Err(ApiError::Validation(vec![FieldError {
            loc: vec![serde_json::json!("query"), serde_json::json!("ticket_id")],
            msg: "ticket_id is required".into(),
            kind: "missing".into(),
        }]));
    };
    wait_for_attachments(&state, &headers).await?;
    load_visible(&state, &user, ticket_id).await?;
    let items: Vec<Attachment> = sqlx::query_as(&format!(
        "select {COLUMNS} from rm_attachments where ticket_id = $1 and not removed
          order by created_at, id limit 1000"
    ))
    .bind(ticket_id)
    .fetch_all(&state.pool)
    .await?;
    Ok(axum::Json(items))
}

/// One attachment's metadata.
#[utoipa::path(get, path = "/{id}", tag = "attachments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Attachment id"), ("X-Consistency-Token" = Option<String>, Header, description = "Wait until this write is visible")),
    responses((status = 200, body = Attachment), (status = 404, body = crate::http::error::ErrorBody)))]
async fn find_attachment(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
) -> Result<axum::Json<Attachment>, ApiError> {
    wait_for_attachments(&state, &headers).await?;
    Ok(axum::Json(load_attachment(&state, &user, id).await?))
}

/// The file's bytes, streamed, always as a download.
#[utoipa::path(get, path = "/{id}/download", tag = "attachments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Attachment id"), ("X-Consistency-Token" = Option<String>, Header, description = "Wait until this write is visible")),
    responses((status = 200, description = "The bytes", content_type = "application/octet-stream",
               headers(("Content-Disposition" = String), ("X-Content-Type-Options" = String))),
              (status = 404, body = crate::http::error::ErrorBody)))]
async fn download_attachment(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
) -> Result<Response, ApiError> {
    wait_for_attachments(&state, &headers).await?;
    let attachment = load_attachment(&state, &user, id).await?;
    let stream = state
        .storage
        .open(&attachment.sha256)
        .await
        .map_err(storage_error)?;
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    let content_type = content_type_for(&attachment.filename, Some(&attachment.content_type));
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CONTENT_LENGTH, HeaderValue::from(attachment.size));
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&attachment.filename)) {
        h.insert(CONTENT_DISPOSITION, v);
    }
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", attachment.sha256)) {
        h.insert(ETAG, v);
    }
    Ok(response)
}

/// Remove an attachment (its uploader, or staff). The blob goes once no attachment uses it.
#[utoipa::path(delete, path = "/{id}", tag = "attachments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Attachment id")),
    responses((status = 204, headers(("X-Consistency-Token" = String))), (status = 403, body = crate::http::error::ErrorBody),
              (status = 404, body = crate::http::error::ErrorBody)))]
async fn delete_attachment(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
) -> Result<Response, ApiError> {
    wait_for_attachments(&state, &headers).await?;
    let attachment = load_attachment(&state, &user, id).await?;
    if attachment.uploaded_by != user.id && !user.is_staff() {
        return Err(ApiError::Forbidden(
            "Only the uploader or an agent can remove this file".into(),
        ));
    }
    let committed = execute_checked(&state, &user, attachment.ticket_id, None, |_| {
        TicketCommand::RemoveAttachment {
            attachment_id: id,
            removed_by: user.id,
            at: Utc::now(),
        }
    })
    .await?;
    if let Some(token) = committed.token {
        // Collect the blob once the projection has counted the removal (the periodic
        // collector catches anything this misses).
        let state = state.clone();
        let sha = attachment.sha256.clone();
        tokio::spawn(async move {
            let name = projections::attachments::AttachmentsProjection::NAME;
            if crate::service::storage::wait_for_projection(
                &state.pool,
                name,
                token,
                std::time::Duration::from_secs(30),
            )
            .await
            {
                if let Err(e) = state.storage.collect(&state.pool, Some(&sha)).await {
                    tracing::warn!(error = %e, "collecting a blob");
                }
            }
        });
    }
    Ok(with_token(
        StatusCode::NO_CONTENT.into_response(),
        committed.token,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_paths_controls_quotes_and_bidi_marks_but_keep_emoji() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(sanitize_filename("a\0b\r\n.txt"), "ab.txt");
        assert_eq!(sanitize_filename("say \"hi\".txt"), "say hi.txt");
        assert_eq!(
            sanitize_filename("invoice\u{202E}fdp.exe"),
            "invoicefdp.exe"
        );
        assert_eq!(sanitize_filename("🎉 party.png"), "🎉 party.png");
        assert_eq!(sanitize_filename(".."), "file");
        assert_eq!(sanitize_filename(""), "file");
        let long = format!("{}.pdf", "é".repeat(1000));
        let cleaned = sanitize_filename(&long);
        assert_eq!(cleaned.chars().count(), 200);
        assert!(cleaned.ends_with(".pdf"));
    }

    #[test]
    fn content_disposition_has_an_ascii_name_and_an_encoded_utf8_name() {
        assert_eq!(
            content_disposition("🎉 a%b.txt"),
            "attachment; filename=\"_ a_b.txt\"; filename*=UTF-8''%F0%9F%8E%89%20a%25b.txt"
        );
    }

    #[test]
    fn content_types_come_from_the_allow_list() {
        assert_eq!(content_type_for("a.PNG", None), "image/png");
        assert_eq!(
            content_type_for("a.html", Some("text/html")),
            "application/octet-stream"
        );
        assert_eq!(
            content_type_for("scan", Some("application/pdf")),
            "application/pdf"
        );
        assert_eq!(
            content_type_for("x.svg", Some("image/svg+xml")),
            "application/octet-stream"
        );
    }
}
