//! The HTTP face of `service::Error`: status codes, API.md bodies, and extractors whose every
//! rejection is such an error. Server errors are logged once (by the middleware in `http`) and
//! answered without internals.

use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

pub use crate::service::error::{capitalise, Error as ApiError, FieldError, Validator};

/// The body of every non-422 error (documented in OpenAPI).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub detail: String,
    pub code: String,
}

/// The body of a 422 answer (documented in OpenAPI).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ValidationErrorBody {
    pub detail: Vec<FieldError>,
}

pub fn status_and_code(e: &ApiError) -> (StatusCode, &'static str) {
    match e {
        ApiError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
        ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "AUTH_ERROR"),
        ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "PERMISSION_ERROR"),
        ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        ApiError::Conflict { .. } => (StatusCode::CONFLICT, "CONFLICT"),
        ApiError::PreconditionFailed(_) => (StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED"),
        ApiError::PreconditionRequired(_) => {
            (StatusCode::PRECONDITION_REQUIRED, "PRECONDITION_REQUIRED")
        }
        ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
        ApiError::UnsupportedMediaType(_) => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE")
        }
        ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"),
        ApiError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "SERVER_ERROR"),
        ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "SERVER_ERROR"),
    }
}

/// Kept in the response extensions so the logging middleware can log 5xx causes once.
#[derive(Debug, Clone)]
pub struct LoggedCause(pub Arc<String>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = status_and_code(&self);
        let body = match &self {
            ApiError::Validation(errors) => json!({ "detail": errors }),
            ApiError::Internal(_) => {
                json!({ "detail": "An internal server error occurred", "code": code })
            }
            ApiError::Conflict {
                detail,
                extra: Some(extra),
            } => {
                let mut body = json!({ "detail": detail, "code": code });
                if let (Some(map), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
                    map.extend(extra.clone());
                }
                body
            }
            other => json!({ "detail": other.to_string(), "code": code }),
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized(_) => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited { retry_after, .. }
            | ApiError::Unavailable { retry_after, .. } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    headers.insert(RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        if let ApiError::Internal(cause) = self {
            response
                .extensions_mut()
                .insert(LoggedCause(Arc::new(cause)));
        }
        response
    }
}

/// Turns a serde path and message into the loc/msg/type of a 422 entry.
fn serde_field_error(root: &str, path: &serde_path_to_error::Path, msg: String) -> FieldError {
    let mut loc: Vec<Value> = vec![json!(root)];
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => loc.push(json!(index)),
            serde_path_to_error::Segment::Map { key } => loc.push(json!(key)),
            serde_path_to_error::Segment::Enum { variant } => loc.push(json!(variant)),
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    // serde reports a missing field at its parent: move it onto the field itself.
    let (kind, msg) = if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default().to_string();
        loc.push(json!(name));
        ("missing", format!("Field '{name}' is required"))
    } else if msg.starts_with("unknown variant") || msg.starts_with("invalid value") {
        ("enum", clean_serde_message(&msg))
    } else if msg.starts_with("invalid type") {
        ("type_error", clean_serde_message(&msg))
    } else {
        ("value_error", clean_serde_message(&msg))
    };
    if loc.len() == 1 {
        loc.push(json!("__root__"));
    }
    FieldError {
        loc,
        msg,
        kind: kind.into(),
    }
}

fn clean_serde_message(msg: &str) -> String {
    // Drop serde_json's " at line 1 column 7" suffix.
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// A JSON body extractor whose every failure is an API.md error:
/// wrong content type 415, oversized 413, malformed JSON or wrong shape 422 with `loc`.
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "Expected a request with Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge("The request body is too large".into())
                } else {
                    ApiError::Validation(vec![FieldError::body(
                        "__root__",
                        "The request body could not be read",
                        "value_error",
                    )])
                }
            })?;
        parse_json(&bytes).map(AppJson)
    }
}

/// Parses a JSON object into `T`, reporting the failing field. Every body of this API is an
/// object: serde would also read a struct from an array (`[]` for one whose fields all have
/// defaults), so anything else is refused. Whatever passes can be stored and read back: strings
/// and keys holding NUL are refused ([`refuse_nul`]), and so are numbers beyond what an `f64`
/// holds. (Every finite `f64` survives PostgreSQL's `jsonb` round trip, which prints
/// `1.7976931348623157e308` as 309 plain digits, because serde_json is built with
/// `float_roundtrip`: its default fast parser overflows on those digits.)
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    refuse_non_object(bytes)?;
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let parsed = serde_path_to_error::deserialize(de).map_err(body_error)?;
    let value: Value = serde_json::from_slice(bytes).map_err(ApiError::internal)?;
    let mut errors = Vec::new();
    refuse_nul(&value, &mut vec![json!("body")], &mut errors);
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// 422 for well-formed JSON that is not an object (malformed JSON is the parser's to name).
fn refuse_non_object(bytes: &[u8]) -> Result<(), ApiError> {
    /// `{`, the first character of a JSON object.
    const OBJECT_START: u8 = 0x7b;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != OBJECT_START) && serde_json::from_slice::<Value>(bytes).is_ok() {
        return Err(ApiError::Validation(vec![FieldError::body(
            "__root__",
            "The request body must be a JSON object",
            "type_error",
        )]));
    }
    Ok(())
}

/// A body that does not deserialize, as the 422 naming where: a number out of range, malformed
/// JSON (by column), or the field that has the wrong value.
fn body_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().clone();
    let inner = err.into_inner();
    let error = if inner.to_string().starts_with("number out of range") {
        let mut error = serde_field_error("body", &path, String::new());
        error.msg = "The number is out of range".into();
        error
    } else if inner.is_syntax() || inner.is_eof() {
        FieldError {
            loc: vec![json!("body"), json!(inner.column())],
            msg: format!(
                "Malformed JSON: {}",
                clean_serde_message(&inner.to_string())
            ),
            kind: "json_invalid".into(),
        }
    } else {
        serde_field_error("body", &path, inner.to_string())
    };
    ApiError::Validation(vec![error])
}

const NUL_MESSAGE: &str = "Text may not contain the NUL character";

/// Calls `visit` with the location and value of `value` and of everything under it, depth
/// first; a value inside an object is located by its key, one in an array by its index.
pub fn visit_json(value: &Value, loc: &mut Vec<Value>, visit: &mut impl FnMut(&[Value], &Value)) {
    visit(loc, value);
    let children: Box<dyn Iterator<Item = (Value, &Value)>> = match value {
        Value::Array(items) => Box::new(items.iter().enumerate().map(|(i, v)| (json!(i), v))),
        Value::Object(map) => Box::new(map.iter().map(|(k, v)| (json!(k), v))),
        _ => return,
    };
    for (segment, child) in children {
        loc.push(segment);
        visit_json(child, loc, visit);
        loc.pop();
    }
}

/// Records every string or object key under `value` that holds NUL, the one character a
/// UTF-8 PostgreSQL cannot store (`text` refuses the byte, `jsonb` the `\u0000` escape). Lone
/// surrogates, the other unstorable escapes, never get this far: serde_json refuses them.
pub fn refuse_nul(value: &Value, loc: &mut Vec<Value>, errors: &mut Vec<FieldError>) {
    let has_nul = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| s.contains('\0'));
    visit_json(value, loc, &mut |loc, value| {
        // A key with NUL is named by its location's last segment.
        if has_nul(Some(value)) || (loc.len() > 1 && has_nul(loc.last())) {
            errors.push(FieldError {
                loc: loc.to_vec(),
                msg: NUL_MESSAGE.into(),
                kind: "value_error".into(),
            });
        }
    });
}

/// A query-string extractor answering 422 with `["query", name]`.
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let nul: Vec<FieldError> = form_urlencoded_parse(query)
            .filter(|(k, v)| k.contains('\0') || v.contains('\0'))
            .map(|(k, _)| FieldError::query(&k, NUL_MESSAGE))
            .collect();
        if !nul.is_empty() {
            return Err(ApiError::Validation(nul));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(query));
        serde_path_to_error::deserialize(de)
            .map(AppQuery)
            .map_err(|err| {
                let path = err.path().clone();
                let msg = err.into_inner().to_string();
                ApiError::Validation(vec![serde_field_error("query", &path, msg)])
            })
    }
}

fn form_urlencoded_parse(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

/// A path extractor answering 422 with `["path", name]`.
pub struct AppPath<T>(pub T);

impl<S, T> FromRequestParts<S> for AppPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(AppPath(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let name = match e.kind() {
                    axum::extract::path::ErrorKind::ParseErrorAtKey { key, .. }
                    | axum::extract::path::ErrorKind::InvalidUtf8InPathParam { key } => key.clone(),
                    _ => "id".to_string(),
                };
                Err(ApiError::Validation(vec![FieldError {
                    loc: vec![json!("path"), json!(name)],
                    msg: "Invalid path parameter".into(),
                    kind: "type_error".into(),
                }]))
            }
            Err(e) => Err(ApiError::internal(e)),
        }
    }
}
