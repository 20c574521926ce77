//! `/api/v1/attachments`: files on tickets. Metadata are Ticket events (`AttachmentAdded`,
//! `AttachmentRemoved`) read back from the `attachments` read model; the bytes live in the
//! blob store (`service::storage`), addressed by sha256. This module reads multipart bodies
//! and writes downloads; `service::attachments` holds the rules and the records.
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

use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::FromRequestParts;
use axum::extract::{Multipart, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    ETAG, LOCATION, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::consistency::{wait_for_token, ConsistencyHeader};
use crate::http::error::{ApiError, AppPath, AppQuery, FieldError, Validator};
use crate::http::idempotency::IdempotencyHeader;
use crate::http::responses::{CommandErrors, ReadErrors, WriteErrors};
use crate::http::state::AppState;
use crate::http::with_token;
use crate::service::attachments::{self, content_type_for, Attachment, Upload};
use crate::service::auth::AuthUser;
use crate::service::paging::{paging, Page};
use crate::service::storage::{Staged, Storage, StorageError};
use crate::service::tickets::load_visible;

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_attachments, upload_attachment))
        .routes(routes!(find_attachment, delete_attachment))
        .routes(routes!(download_attachment))
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
    /// The ticket whose files to list.
    pub ticket_id: i64,
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<i64>,
}

page_schema! {
    /// A page of attachments.
    AttachmentListResponse, Attachment
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

/// Reads the multipart body: `ticket_id` (checked before any byte of the file is stored)
/// and one `file`, streamed to a temporary object.
async fn read_upload(
    state: &AppState,
    user: &AuthUser,
    multipart: &mut Multipart,
) -> Result<Upload, ApiError> {
    let limit = state.settings.max_upload_bytes;
    let mut ticket_id: Option<i64> = None;
    let mut file: Option<(Staged, String, Option<String>)> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("ticket_id") => {
                let text = small_text(&mut field, "ticket_id", 32).await?;
                let id: i64 = text.trim().parse().map_err(|_| {
                    ApiError::field("ticket_id", "ticket_id must be a ticket number")
                })?;
                // Refuse before any byte of the file is stored.
                load_visible(state, user, id).await?;
                ticket_id = Some(id);
            }
            Some("file") => {
                if file.is_some() {
                    return Err(ApiError::field("file", "Send one file per request"));
                }
                let name = declared_filename(&field);
                let declared = field.content_type().map(str::to_string);
                let staged = receive_file(&state.storage, &mut field, limit).await;
                drop(field);
                match staged {
                    Ok(staged) => file = Some((staged, name.unwrap_or_default(), declared)),
                    Err(e) => return Err(drain_after(multipart, e).await),
                }
            }
            _ => while let Ok(Some(_)) = field.chunk().await {},
        }
    }
    let ticket_id = ticket_id.ok_or_else(|| missing("ticket_id"))?;
    let (staged, declared_name, declared_type) = file.ok_or_else(|| missing("file"))?;
    Ok(Upload {
        ticket_id,
        staged,
        declared_name,
        declared_type,
    })
}

/// After a refused file: a too-large one lets the client finish sending first.
async fn drain_after(multipart: &mut Multipart, e: ApiError) -> ApiError {
    if matches!(e, ApiError::PayloadTooLarge(_)) {
        drain(multipart).await;
    }
    e
}

fn missing(field: &str) -> ApiError {
    ApiError::Validation(vec![FieldError::body(
        field,
        format!("Field '{field}' is required"),
        "missing",
    )])
}

/// Attach a file to a ticket (multipart `ticket_id`, `file`). Over the size limit: 413,
/// nothing kept.
#[utoipa::path(post, path = "/", tag = "attachments", security(("bearer" = [])),
    request_body(content = AttachmentUpload, content_type = "multipart/form-data"),
    params(IdempotencyHeader), responses((status = 201, body = Attachment, headers(("Location" = String), ("X-Consistency-Token" = String))), WriteErrors))]
async fn upload_attachment(
    State(state): State<AppState>,
    user: AuthUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut multipart = multipart.map_err(|_| {
        ApiError::UnsupportedMediaType("Expected a multipart/form-data request".into())
    })?;
    let upload = read_upload(&state, &user, &mut multipart).await?;
    let (attachment, committed) = attachments::attach(&state, &user, upload).await?;
    let mut response = with_token(
        (StatusCode::CREATED, axum::Json(&attachment)).into_response(),
        committed.token,
    );
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/attachments/{}", attachment.id)) {
        response.headers_mut().insert(LOCATION, v);
    }
    Ok(response)
}

/// Honours `X-Consistency-Token` on the attachments read model before a handler runs.
struct Fresh;

impl FromRequestParts<AppState> for Fresh {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let names = [projections::attachments::AttachmentsProjection::NAME];
        wait_for_token(state, &parts.headers, &names).await?;
        Ok(Fresh)
    }
}

/// A page of a ticket's files, oldest first.
#[utoipa::path(get, path = "/", tag = "attachments", security(("bearer" = [])),
    params(AttachmentListQueryParams, ConsistencyHeader),
    responses((status = 200, body = AttachmentListResponse), ReadErrors))]
async fn list_attachments(
    State(state): State<AppState>,
    user: AuthUser,
    _fresh: Fresh,
    AppQuery(query): AppQuery<AttachmentListQueryParams>,
) -> Result<axum::Json<Page<Attachment>>, ApiError> {
    let mut v = Validator::default();
    let paging = paging(&mut v, query.page, query.size);
    let ticket_id = query.ticket_id;
    v.finish()?;
    let page = attachments::list(&state, &user, ticket_id, paging).await?;
    Ok(axum::Json(page))
}

/// One attachment's metadata.
#[utoipa::path(get, path = "/{id}", tag = "attachments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Attachment id"), ConsistencyHeader),
    responses((status = 200, body = Attachment), ReadErrors))]
async fn find_attachment(
    State(state): State<AppState>,
    user: AuthUser,
    _fresh: Fresh,
    AppPath(id): AppPath<Uuid>,
) -> Result<axum::Json<Attachment>, ApiError> {
    Ok(axum::Json(attachments::load(&state, &user, id).await?))
}

/// The file's bytes, streamed, always as a download.
#[utoipa::path(get, path = "/{id}/download", tag = "attachments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Attachment id"), ConsistencyHeader),
    responses((status = 200, description = "The bytes", content_type = "application/octet-stream",
               headers(("Content-Disposition" = String), ("X-Content-Type-Options" = String))), ReadErrors))]
async fn download_attachment(
    State(state): State<AppState>,
    user: AuthUser,
    _fresh: Fresh,
    AppPath(id): AppPath<Uuid>,
) -> Result<Response, ApiError> {
    let attachment = attachments::load(&state, &user, id).await?;
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
    responses((status = 204, headers(("X-Consistency-Token" = String))), CommandErrors))]
async fn delete_attachment(
    State(state): State<AppState>,
    user: AuthUser,
    _fresh: Fresh,
    AppPath(id): AppPath<Uuid>,
) -> Result<Response, ApiError> {
    let committed = attachments::remove(&state, &user, id).await?;
    Ok(with_token(
        StatusCode::NO_CONTENT.into_response(),
        committed.token,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::attachments::sanitize_filename;

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
