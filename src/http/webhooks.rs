//! `/api/v1/webhooks` (admins): subscriptions to the event log, signed per the Standard Webhooks
//! specification, their delivery log and manual retries (`service::delivery::webhooks`).

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiError, AppJson, AppPath, AppQuery, Validator};
use crate::http::idempotency::IdempotencyHeader;
use crate::http::responses::{CommandErrors, ListErrors, ReadErrors, WriteErrors};
use crate::http::state::AppState;
use crate::service::auth::AuthUser;
use crate::service::delivery::webhooks::{
    self, CreatedWebhook, Delivery, Webhook, WebhookCreate, WebhookUpdate,
};
use crate::service::paging::{paging, Page};

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(event_types))
        .routes(routes!(find_webhook, update_webhook, delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
}

page_schema! {
    /// A page of webhooks (OpenAPI name).
    WebhookListResponse, Webhook
}

page_schema! {
    /// A page of a webhook's deliveries (OpenAPI name).
    DeliveryListResponse, Delivery
}

/// Paging of `GET /webhooks`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookPageQuery {
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<i64>,
}

/// Paging and filter of `GET /webhooks/{id}/deliveries`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<i64>,
    /// `pending`, `delivered` or `failed`.
    #[param(pattern = "^(pending|delivered|failed)$")]
    pub status: Option<String>,
}

/// The webhooks, newest first.
#[utoipa::path(get, path = "/", tag = "webhooks", security(("bearer" = [])), params(WebhookPageQuery),
    responses((status = 200, body = WebhookListResponse), ListErrors))]
async fn list_webhooks(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(query): AppQuery<WebhookPageQuery>,
) -> Result<axum::Json<Page<Webhook>>, ApiError> {
    user.require(aggregates::Role::Admin)?;
    let mut v = Validator::default();
    let paged = paging(&mut v, query.page, query.size);
    v.finish()?;
    Ok(axum::Json(webhooks::list(&state.pool, paged).await?))
}

/// Subscribe a URL to events. The answer carries the signing `secret`, shown this once. A URL
/// in a private or reserved range is 422 (unless the server allows loopback).
#[utoipa::path(post, path = "/", tag = "webhooks", security(("bearer" = [])), request_body = WebhookCreate,
    params(IdempotencyHeader),
    responses((status = 201, body = CreatedWebhook, headers(("Location" = String))), WriteErrors))]
async fn create_webhook(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<WebhookCreate>,
) -> Result<Response, ApiError> {
    user.require(aggregates::Role::Admin)?;
    let created = webhooks::create(&state.pool, &state.webhook_guard, user.id, body).await?;
    let mut response = (StatusCode::CREATED, axum::Json(&created)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/webhooks/{}", created.webhook.id)) {
        response.headers_mut().insert(LOCATION, v);
    }
    Ok(response)
}

/// The event types a webhook may subscribe to.
#[utoipa::path(get, path = "/event-types", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = Vec<String>), ReadErrors))]
async fn event_types(user: AuthUser) -> Result<axum::Json<Vec<&'static str>>, ApiError> {
    user.require(aggregates::Role::Admin)?;
    Ok(axum::Json(
        projections::delivery::WEBHOOK_EVENT_TYPES.to_vec(),
    ))
}

/// One webhook.
#[utoipa::path(get, path = "/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Webhook id")),
    responses((status = 200, body = Webhook), ReadErrors))]
async fn find_webhook(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<axum::Json<Webhook>, ApiError> {
    user.require(aggregates::Role::Admin)?;
    Ok(axum::Json(webhooks::find(&state.pool, id).await?))
}

/// Change a webhook's URL, event filter, description, or pause and resume it (while paused,
/// new events are not queued for it).
#[utoipa::path(patch, path = "/{id}", tag = "webhooks", security(("bearer" = [])), request_body = WebhookUpdate,
    params(("id" = i64, Path, description = "Webhook id")),
    responses((status = 200, body = Webhook), WriteErrors))]
async fn update_webhook(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    AppJson(body): AppJson<WebhookUpdate>,
) -> Result<axum::Json<Webhook>, ApiError> {
    user.require(aggregates::Role::Admin)?;
    Ok(axum::Json(
        webhooks::update(&state.pool, &state.webhook_guard, id, body).await?,
    ))
}

/// Delete a webhook and its delivery log.
#[utoipa::path(delete, path = "/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Webhook id")),
    responses((status = 204), CommandErrors))]
async fn delete_webhook(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<StatusCode, ApiError> {
    user.require(aggregates::Role::Admin)?;
    webhooks::delete(&state.pool, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's deliveries, newest first.
#[utoipa::path(get, path = "/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Webhook id"), DeliveryQuery),
    responses((status = 200, body = DeliveryListResponse), ReadErrors))]
async fn list_deliveries(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    AppQuery(query): AppQuery<DeliveryQuery>,
) -> Result<axum::Json<Page<Delivery>>, ApiError> {
    user.require(aggregates::Role::Admin)?;
    let mut v = Validator::default();
    let paged = paging(&mut v, query.page, query.size);
    let status = query.status.as_deref();
    v.check_query(
        status.is_none_or(|s| matches!(s, "pending" | "delivered" | "failed")),
        "status",
        "status must be pending, delivered or failed",
    );
    v.finish()?;
    Ok(axum::Json(
        webhooks::deliveries(&state.pool, id, status, paged).await?,
    ))
}

/// Send a delivery again now (a failed one gets another 24 hours of retries).
#[utoipa::path(post, path = "/{id}/deliveries/{delivery_id}/retry", tag = "webhooks", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Webhook id"), ("delivery_id" = i64, Path, description = "Delivery id")),
    responses((status = 200, body = Delivery), CommandErrors))]
async fn retry_delivery(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath((id, delivery_id)): AppPath<(i64, i64)>,
) -> Result<axum::Json<Delivery>, ApiError> {
    user.require(aggregates::Role::Admin)?;
    Ok(axum::Json(
        webhooks::retry(&state.pool, id, delivery_id).await?,
    ))
}
