//! `/api/v1/users`: user management (admin create here; listing and changes for issue 8).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{self, AuthUser};
use crate::error::{ApiError, AppJson, Validator};
use crate::state::AppState;
use crate::users::{self, User};
use aggregates::Role;

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_user))
}

/// Body of `POST /users`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserCreate {
    pub email: String,
    pub password: String,
    pub full_name: String,
    pub role: Role,
}

/// Create a user with any role (admins only).
#[utoipa::path(post, path = "/", tag = "users", security(("bearer" = [])), request_body = UserCreate,
    responses((status = 201, body = User), (status = 403, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ValidationErrorBody)))]
async fn create_user(
    State(state): State<AppState>,
    caller: AuthUser,
    AppJson(body): AppJson<UserCreate>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let mut v = Validator::default();
    users::validate_new_user(&mut v, &body.email, &body.password, &body.full_name);
    v.finish()?;
    let hash = auth::hash_password(body.password).await?;
    let user = users::insert(&state.pool, &body.email, &body.full_name, &hash, body.role).await?;
    let location = format!("/api/v1/users/{}", user.id);
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
        axum::Json(user.public()),
    )
        .into_response())
}
