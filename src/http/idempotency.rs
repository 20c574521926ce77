//! `Idempotency-Key` on POSTs: claims the key (`service::idempotency`), runs the request,
//! records what it produced, and answers a repeat by rebuilding the first answer — its status
//! and `Location`, and the body and `ETag` of a GET of what it produced.
//!
//! Keys are per user: an anonymous request (registration) and the sign-in routes, whose
//! answers carry tokens that must never be handed out twice, ignore the header.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::service::auth::AuthUser;
use crate::service::error::FieldError;
use crate::service::idempotency::{self, Claim, KeyedRequest, Outcome};

/// The request header.
pub const HEADER: &str = "idempotency-key";
const CONSISTENCY: &str = "x-consistency-token";
const EXEMPT: &[&str] = &[
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
    "/api/v1/auth/register",
];

/// The request header of every POST that creates or changes something (for the OpenAPI
/// document): the same key from the same user with the same body answers the first answer
/// again; with another body 422; while the first still runs 409.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyHeader {
    /// 1 to 255 visible ASCII characters, chosen by the client per intended change.
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = r"^[!-~]+$"
    )]
    pub key: Option<String>,
}

/// Set by a handler on its answer when the answer names a ticket version beside the resource
/// (a new comment's `ticket_version`), which a GET of the resource would not show.
#[derive(Debug, Clone, Copy)]
pub struct AnsweredTicketVersion(pub i64);

/// The middleware: POSTs with the header go through the key; everything else passes.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let keyed = req.method() == Method::POST
        && req.headers().contains_key(HEADER)
        && !EXEMPT.contains(&req.uri().path().trim_end_matches('/'));
    if !keyed {
        return next.run(req).await;
    }
    match under_key(&state, req, next).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn under_key(state: &AppState, req: Request, next: Next) -> Result<Response, ApiError> {
    let key = key_of(req.headers())?;
    let (mut parts, body) = req.into_parts();
    // The request id its events will carry (the request-id layer inside keeps one it finds).
    if !parts.headers.contains_key("x-request-id") {
        let id = uuid::Uuid::new_v4().to_string();
        if let Ok(v) = HeaderValue::from_str(&id) {
            parts
                .headers
                .insert(HeaderName::from_static("x-request-id"), v);
        }
    }
    let Ok(user) = AuthUser::from_request_parts(&mut parts, state).await else {
        // Not signed in: the route answers 401 itself.
        return Ok(next.run(Request::from_parts(parts, body)).await);
    };
    let limit = state.settings.max_upload_bytes as usize + 64 * 1024;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge("The request body is too large".into()))?;
    let path_and_query = parts.uri.path_and_query().map_or("", |p| p.as_str());
    let keyed = KeyedRequest {
        user_id: user.id,
        key,
        hash: idempotency::request_hash(
            parts.method.as_str(),
            path_and_query,
            header(&parts.headers, CONTENT_TYPE.as_str())
                .unwrap_or_default()
                .as_str(),
            &bytes,
        ),
        request_id: user.actor.request_id.clone(),
    };
    match claim_waiting(state, &keyed).await? {
        Claim::Run => {
            run(
                state,
                &keyed,
                Request::from_parts(parts, Body::from(bytes)),
                next,
            )
            .await
        }
        Claim::Replay(outcome) => Ok(replay(&parts, next, &outcome).await),
        Claim::Mismatch => Err(ApiError::Validation(vec![FieldError {
            loc: vec![json!("header"), json!("Idempotency-Key")],
            msg: "This Idempotency-Key was already used for a different request".into(),
            kind: "value_error".into(),
        }])),
        Claim::InFlight => Err(ApiError::Conflict {
            detail: "A request with this Idempotency-Key is still running".into(),
            extra: None,
        }),
    }
}

/// How long a repeat waits for the first request under its key before answering 409.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(5);

/// Claims the key; a repeat that arrives while the first request runs waits a little for its
/// answer (a client retrying a slow request gets the answer, not a 409).
async fn claim_waiting(state: &AppState, keyed: &KeyedRequest) -> Result<Claim, ApiError> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    loop {
        let claim = idempotency::claim(&state.pool, keyed).await?;
        if claim != Claim::InFlight || tokio::time::Instant::now() >= deadline {
            return Ok(claim);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The key, 1 to 255 visible ASCII characters.
fn key_of(headers: &HeaderMap) -> Result<String, ApiError> {
    header(headers, HEADER)
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::Validation(vec![FieldError {
                loc: vec![json!("header"), json!("Idempotency-Key")],
                msg: "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
                kind: "value_error".into(),
            }])
        })
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Runs the first request under the key and records its outcome: what a success produced, what
/// a failed answer committed anyway, or nothing (the key is given back).
async fn run(
    state: &AppState,
    keyed: &KeyedRequest,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let response = next.run(req).await;
    let status = response.status();
    let recorded = if status.is_success() {
        let location = header(response.headers(), LOCATION.as_str());
        let outcome = Outcome {
            status: status.as_u16() as i16,
            resource: resource_of(&path, status, location.as_deref()),
            location,
            consistency: header(response.headers(), CONSISTENCY),
            ticket_version: response
                .extensions()
                .get::<AnsweredTicketVersion>()
                .map(|v| v.0),
        };
        idempotency::complete(&state.pool, keyed, &outcome).await
    } else {
        settle_failure(state, keyed, status).await
    };
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "recording an idempotency key failed");
    }
    Ok(response)
}

/// A refusal changed nothing: the key is given back. A server error may have come after the
/// write committed: then the key answers from what was written.
async fn settle_failure(
    state: &AppState,
    keyed: &KeyedRequest,
    status: StatusCode,
) -> Result<(), crate::service::Error> {
    if status.is_server_error() {
        if let Some(produced) = idempotency::committed_by(&state.pool, keyed).await? {
            let outcome = Outcome::from_produced(&produced);
            return idempotency::complete(&state.pool, keyed, &outcome).await;
        }
    }
    idempotency::release(&state.pool, keyed).await
}

/// What a GET rebuilds a success from: the created resource, or for a change answered with a
/// body the resource the action was on (`/approvals/{id}/decisions` → `/approvals/{id}`).
fn resource_of(path: &str, status: StatusCode, location: Option<&str>) -> Option<String> {
    if status == StatusCode::NO_CONTENT {
        return None;
    }
    location
        .map(str::to_string)
        .or_else(|| path.rsplit_once('/').map(|(parent, _)| parent.to_string()))
}

/// The first answer again: its status and `Location`, with the body and `ETag` of a GET of
/// what it produced (as the caller sees it now).
async fn replay(parts: &Parts, next: Next, outcome: &Outcome) -> Response {
    let status = StatusCode::from_u16(outcome.status as u16).unwrap_or(StatusCode::OK);
    let mut response = match &outcome.resource {
        None => crate::http::empty(status),
        Some(resource) => {
            let fetched = next.run(get_request(parts, resource, outcome)).await;
            if !fetched.status().is_success() {
                return fetched;
            }
            let (mut head, body) = fetched.into_parts();
            head.status = status;
            match outcome.ticket_version {
                Some(version) => with_ticket_version(head, body, version).await,
                None => Response::from_parts(head, body),
            }
        }
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (LOCATION.as_str(), &outcome.location),
        (CONSISTENCY, &outcome.consistency),
    ] {
        if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    headers.insert(
        HeaderName::from_static("idempotent-replayed"),
        HeaderValue::from_static("true"),
    );
    response
}

/// The GET's JSON object with the `ticket_version` the first answer named.
async fn with_ticket_version(
    mut head: axum::http::response::Parts,
    body: Body,
    version: i64,
) -> Response {
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let mut value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("ticket_version".into(), json!(version));
    }
    head.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(head, Body::from(value.to_string()))
}

fn get_request(parts: &Parts, resource: &str, outcome: &Outcome) -> Request {
    let mut get = Request::new(Body::empty());
    *get.method_mut() = Method::GET;
    *get.uri_mut() = resource.parse().unwrap_or_default();
    *get.extensions_mut() = parts.extensions.clone();
    for name in [AUTHORIZATION.as_str(), "x-request-id", "user-agent"] {
        if let Some(v) = parts.headers.get(name) {
            get.headers_mut()
                .insert(HeaderName::from_static(name), v.clone());
        }
    }
    if let Some(token) = outcome
        .consistency
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        get.headers_mut()
            .insert(HeaderName::from_static(CONSISTENCY), token);
    }
    get
}
