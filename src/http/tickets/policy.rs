//! `/api/v1/tickets/requester-policy`: what requesters may choose on their own tickets
//! (priorities, types, the reopen window). Everyone signed in reads it (the SPA offers only
//! what is allowed); admins change it.

use aggregates::Role;
use axum::body::Bytes;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{parse_json, ApiError};
use crate::http::responses::{ReadErrors, WriteErrors};
use crate::http::state::AppState;
use crate::service::auth::AuthUser;
use crate::service::requester_policy::{self, RequesterPolicy, RequesterPolicyUpdate};

/// The routes of this area (nested under `/api/v1/tickets`).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_requester_policy, put_requester_policy))
}

/// The requester policy in force (everyone signed in).
#[utoipa::path(get, path = "/requester-policy", tag = "tickets", security(("bearer" = [])),
    responses((status = 200, body = RequesterPolicy), ReadErrors))]
async fn get_requester_policy(
    State(state): State<AppState>,
    _user: AuthUser,
) -> Result<axum::Json<RequesterPolicy>, ApiError> {
    Ok(axum::Json(requester_policy::get(&state.pool).await?))
}

/// Replace the requester policy (admins): the priorities and types requesters may choose, and
/// how many days after resolution they may reopen a ticket.
#[utoipa::path(put, path = "/requester-policy", tag = "tickets", security(("bearer" = [])),
    request_body = RequesterPolicyUpdate,
    responses((status = 200, body = RequesterPolicy), WriteErrors))]
async fn put_requester_policy(
    State(state): State<AppState>,
    user: AuthUser,
    body: Bytes,
) -> Result<axum::Json<RequesterPolicy>, ApiError> {
    user.require(Role::Admin)?;
    let body: RequesterPolicyUpdate = parse_json(&body)?;
    let policy = requester_policy::put(&state.pool, user.id, body).await?;
    // This process's next command sees it at once; the others when the bus says so.
    state.policies.forget();
    Ok(axum::Json(policy))
}
