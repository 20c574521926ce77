//! `/api/v1/users`: the user directory (agents and up; requesters see only themselves) and
//! user management (admins: create, change role or name, deactivate; agents and managers may
//! create requesters). The last active admin can be neither demoted nor deactivated.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiError, AppJson, AppPath, AppQuery, Validator};
use crate::http::idempotency::IdempotencyHeader;
use crate::http::responses::{CommandErrors, ListErrors, ReadErrors, WriteErrors};
use crate::http::state::AppState;
use crate::http::with_token;
use crate::service::auth::{self, AuthUser};
use crate::service::erasure::{self, ErasureReport, PersonalData};
use crate::service::paging::Page;
use crate::service::users::{self, RegisterRequest, User, UserChange, UserListQueryParams};
use aggregates::Role;

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(find_user, update_user, deactivate_user))
        .routes(routes!(erase_user))
        .routes(routes!(export_user))
}

page_schema! {
    /// A page of users (OpenAPI name).
    UserListResponse, User
}

/// Body of `PATCH /users/{id}` (admins). Absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false)]
    pub role: Option<Role>,
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false)]
    pub is_active: Option<bool>,
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false, min_length = 1, max_length = 100, pattern = r"\S")]
    pub full_name: Option<String>,
}

/// A field that may be absent but, when present, must not be `null`.
fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// List users, filtered by `role` (comma-separated), `q` (name or email) and `is_active`
/// (agents and up: the assignee picker).
#[utoipa::path(get, path = "/", tag = "users", security(("bearer" = [])), params(UserListQueryParams),
    responses((status = 200, body = UserListResponse), ListErrors))]
async fn list_users(
    State(state): State<AppState>,
    caller: AuthUser,
    AppQuery(query): AppQuery<UserListQueryParams>,
) -> Result<axum::Json<Page<User>>, ApiError> {
    caller.require(Role::Agent)?;
    Ok(axum::Json(users::list(&state.pool, &query).await?))
}

/// One user. Agents and up see anyone; requesters only themselves (others are 404).
#[utoipa::path(get, path = "/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = User), ReadErrors))]
async fn find_user(
    caller: AuthUser,
    State(state): State<AppState>,
    AppPath(id): AppPath<i64>,
) -> Result<axum::Json<User>, ApiError> {
    if !caller.is_staff() && caller.id != id {
        return Err(ApiError::not_found("User"));
    }
    let user = users::find_by_id(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    Ok(axum::Json(user.public()))
}

/// Change a user's role, name or active flag (admins). Deactivating ends the user's sessions
/// at once. The last active admin cannot be demoted or deactivated (409).
#[utoipa::path(patch, path = "/{id}", tag = "users", security(("bearer" = [])), request_body = UserUpdate,
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = User), WriteErrors))]
async fn update_user(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<i64>,
    AppJson(body): AppJson<UserUpdate>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let mut v = Validator::default();
    if let Some(name) = &body.full_name {
        users::validate_name(&mut v, name);
    }
    v.finish()?;
    let change = UserChange {
        role: body.role,
        is_active: body.is_active,
        full_name: body.full_name,
    };
    let user = apply_change(&state, id, &change).await?;
    Ok(with_token(
        axum::Json(user).into_response(),
        Some(projections::Checkpoint::default()),
    ))
}

/// Deactivate a user (admins): they can no longer sign in, their refresh tokens are revoked
/// and their access tokens stop working. The account and its history stay.
#[utoipa::path(delete, path = "/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses((status = 204), CommandErrors))]
async fn deactivate_user(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let change = UserChange {
        is_active: Some(false),
        ..UserChange::default()
    };
    apply_change(&state, id, &change).await?;
    Ok(with_token(
        StatusCode::NO_CONTENT.into_response(),
        Some(projections::Checkpoint::default()),
    ))
}

/// Erase a person's personal data (admins; GDPR Art. 17): their data key is destroyed, so
/// their name, email, the text of their tickets and comments and their file names read
/// `"[erased]"` everywhere (responses, search, history, exports); their account can no longer
/// sign in and their files are deleted. The event log and its hash chain stay intact. The last
/// active admin cannot be erased (409).
#[utoipa::path(post, path = "/{id}/erase", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = ErasureReport), CommandErrors))]
async fn erase_user(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let (report, token) = erasure::erase(&state, Some(caller.id), id).await?;
    Ok(with_token(axum::Json(report).into_response(), token))
}

/// Everything ticketd holds about a person, as JSON (admins, or the person themselves; GDPR
/// Art. 15/20): profile, the tickets they requested, their comments, file names, approvals and
/// notifications. Nothing anyone else wrote.
#[utoipa::path(get, path = "/{id}/export", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = PersonalData), ReadErrors))]
async fn export_user(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<axum::Json<PersonalData>, ApiError> {
    // Someone else's data is not there for anyone but admins (404: ids cannot be probed).
    if caller.id != id && caller.role != Role::Admin {
        return Err(ApiError::not_found("User"));
    }
    Ok(axum::Json(erasure::export(&state.pool, id).await?))
}

async fn apply_change(state: &AppState, id: i64, change: &UserChange) -> Result<User, ApiError> {
    let user = users::change(&state.pool, id, change).await?;
    // This process stops honouring the user's access tokens at once; the others when the
    // change's `UserChanged` reaches them over the bus.
    state.user_status.forget(id);
    if change.is_active == Some(false) {
        // Refresh tokens already fail for inactive users; revoked ones stay dead even if the
        // account is reactivated later.
        auth::revoke_user_sessions(&state.pool, &state.revocations, id, None).await?;
    }
    Ok(user.public())
}

/// Body of `POST /users`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserCreate {
    /// Email, password and name, as a registration has them.
    #[serde(flatten)]
    pub account: RegisterRequest,
    pub role: Role,
}

/// Create a user: admins with any role; agents and managers create requesters only (a customer
/// who phoned in, for a ticket on their behalf), any other role is 403 naming the field.
#[utoipa::path(post, path = "/", tag = "users", security(("bearer" = [])), request_body = UserCreate,
    params(IdempotencyHeader), responses((status = 201, body = User), WriteErrors))]
async fn create_user(
    State(state): State<AppState>,
    caller: AuthUser,
    AppJson(UserCreate { account, role }): AppJson<UserCreate>,
) -> Result<Response, ApiError> {
    caller.require(Role::Agent)?;
    if role != Role::Requester {
        caller.require(Role::Admin).map_err(|_| {
            ApiError::Forbidden(format!(
                "role: only admins may create a user with the role {}",
                role.as_str()
            ))
        })?;
    }
    let mut v = Validator::default();
    users::validate_new_user(
        &mut v,
        &account.email,
        &account.password,
        &account.full_name,
    );
    v.finish()?;
    let hash = auth::hash_password(account.password).await?;
    let user = users::insert(&state.pool, &account.email, &account.full_name, &hash, role).await?;
    let location = format!("/api/v1/users/{}", user.id);
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
        axum::Json(user.public()),
    )
        .into_response())
}
