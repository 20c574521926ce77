//! Actions on many tickets or several changes at once (agents and up): `POST /tickets/bulk`,
//! and `POST /tickets/{id}/macros/{macro_id}` (a macro's reply and changes in one command).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{status_and_code, ApiError, AppJson, AppPath};
use crate::http::idempotency::IdempotencyHeader;
use crate::http::responses::{ConditionalCommandErrors, WriteErrors};
use crate::http::state::AppState;
use crate::http::tickets::{if_match, ticket_response};
use crate::service::auth::AuthUser;
use crate::service::bulk::{self, BulkRequest};
use crate::service::macros;

/// The routes of this area (nested under `/api/v1/tickets`).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(bulk_action))
        .routes(routes!(apply_macro))
}

/// What one ticket of a bulk request got.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    pub ticket_id: i64,
    /// The HTTP status this ticket alone would have got (200, 403, 404, 409, 412, 422).
    pub status: u16,
    /// The ticket's version after the change (200 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The error code (`CONFLICT`, `PRECONDITION_FAILED`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The answer of `POST /tickets/bulk`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResponse {
    pub results: Vec<BulkResult>,
}

/// Change up to 100 tickets at once: the same changes, comment or macro on each, each ticket
/// its own command with the rules of a single request. 200 with every ticket's own result
/// (legal moves are made, the others say why not); 422 when the request itself is wrong.
#[utoipa::path(post, path = "/bulk", tag = "tickets", security(("bearer" = [])), request_body = BulkRequest,
    params(IdempotencyHeader),
    responses((status = 200, body = BulkResponse), WriteErrors))]
async fn bulk_action(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<BulkRequest>,
) -> Result<axum::Json<BulkResponse>, ApiError> {
    let outcomes = bulk::run(&state, &user, body).await?;
    let results = outcomes
        .into_iter()
        .map(|(ticket_id, outcome)| match outcome {
            Ok(committed) => BulkResult {
                ticket_id,
                status: 200,
                version: Some(committed.version as i64),
                detail: None,
                code: None,
            },
            Err(e) => {
                let (status, code) = status_and_code(&e);
                let detail = match &e {
                    ApiError::Validation(errors) => errors
                        .iter()
                        .map(|f| f.msg.clone())
                        .collect::<Vec<_>>()
                        .join("; "),
                    ApiError::Internal(_) => "The change could not be made".into(),
                    other => other.to_string(),
                };
                BulkResult {
                    ticket_id,
                    status: status.as_u16(),
                    version: None,
                    detail: Some(detail),
                    code: Some(code.into()),
                }
            }
        })
        .collect();
    Ok(axum::Json(BulkResponse { results }))
}

/// Apply a macro to a ticket: its reply (placeholders filled) and its changes, one request by
/// one person, committed together or not at all. `If-Match` is honoured.
#[utoipa::path(post, path = "/{id}/macros/{macro_id}", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Ticket number"), ("macro_id" = i64, Path, description = "Macro id"),
        ("If-Match" = Option<String>, Header, description = "The ETag you hold"), IdempotencyHeader),
    responses((status = 200, body = crate::service::tickets::TicketDetail, headers(("ETag" = String), ("X-Consistency-Token" = String))), ConditionalCommandErrors))]
async fn apply_macro(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppPath((id, macro_id)): AppPath<(i64, i64)>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let committed = macros::apply(&state, &user, id, macro_id, expected).await?;
    ticket_response(&state, StatusCode::OK, &committed).await
}
