//! `/api/v1/items`: configuration items and assets. Every signed-in user reads; admins write.
//! `PATCH` and `DELETE` need `If-Match: <version>`: a missing one is 428, a stale one 412; either changes
//! nothing. `GET /{id}/tickets` lists the tickets that refer to an item.

use aggregates::Role;
use axum::extract::State;
use axum::http::header::{ETAG, IF_MATCH, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::consistency::{wait_for_token, ConsistencyHeader};
use crate::http::error::{ApiError, AppJson, AppPath, AppQuery, Validator};
use crate::http::idempotency::IdempotencyHeader;
use crate::http::responses::{
    ListErrors, ReadErrors, VersionedCommandErrors, VersionedWriteErrors, WriteErrors,
};
use crate::http::state::AppState;
use crate::http::with_token;
use crate::service::auth::AuthUser;
use crate::service::items::{self, Item, ItemChange, ItemListQueryParams, ItemStatus, NewItem};
use crate::service::paging::{paging, Page};
use crate::service::tickets::list::{self, TicketListResponse, TicketSummary};

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_items, create_item))
        .routes(routes!(find_item, update_item, delete_item))
        .routes(routes!(list_item_tickets))
}

page_schema! {
    /// A page of items (OpenAPI name).
    ItemListResponse, Item
}

/// Body of `POST /items`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemCreate {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    #[schema(min_length = 1, max_length = 50, pattern = r"\S")]
    pub kind: String,
    pub description: Option<String>,
    /// A JSON object; defaults to `{}`.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Value>,
    pub owner_id: Option<i64>,
    /// Defaults to `active`.
    pub status: Option<ItemStatus>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// Body of `PATCH /items/{id}`. Absent fields stay as they are; `owner_id: null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemUpdate {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    #[schema(min_length = 1, max_length = 50, pattern = r"\S")]
    pub kind: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub owner_id: Option<Option<i64>>,
    pub status: Option<ItemStatus>,
}

/// Paging of `GET /items/{id}/tickets`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemTicketsQuery {
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<i64>,
}

/// The version `If-Match` names. Required: missing (or empty, or `*`: no version) is 428
/// Precondition Required (RFC 6585); one that is not a version of this item is 412.
fn required_version(headers: &HeaderMap) -> Result<i64, ApiError> {
    let text = headers
        .get(IF_MATCH)
        .map(|v| v.to_str().unwrap_or_default().trim())
        .filter(|text| !text.is_empty() && *text != "*")
        .ok_or_else(|| {
            ApiError::PreconditionRequired(
                "This change needs an If-Match header with the item's version (its ETag)".into(),
            )
        })?;
    text.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map_err(|_| {
            ApiError::PreconditionFailed("If-Match must carry the ETag you received".into())
        })
}

async fn item_response(
    state: &AppState,
    status: StatusCode,
    mut item: Item,
) -> Result<Response, ApiError> {
    state.names.fill(&state.pool, &mut item).await?;
    let mut response = (status, axum::Json(&item)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", item.version)) {
        response.headers_mut().insert(ETAG, v);
    }
    Ok(response)
}

/// List items, filtered by `kind`, `status`, `q` (name and description) and `owner_id`.
#[utoipa::path(get, path = "/", tag = "items", security(("bearer" = [])), params(ItemListQueryParams),
    responses((status = 200, body = ItemListResponse), ListErrors))]
async fn list_items(
    State(state): State<AppState>,
    _user: AuthUser,
    AppQuery(query): AppQuery<ItemListQueryParams>,
) -> Result<axum::Json<Page<Item>>, ApiError> {
    let mut page = items::list(&state.pool, &query).await?;
    state.names.fill(&state.pool, &mut page.items).await?;
    Ok(axum::Json(page))
}

/// Create an item (admins).
#[utoipa::path(post, path = "/", tag = "items", security(("bearer" = [])), request_body = ItemCreate,
    params(IdempotencyHeader), responses((status = 201, body = Item, headers(("Location" = String), ("ETag" = String))), WriteErrors))]
async fn create_item(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<ItemCreate>,
) -> Result<Response, ApiError> {
    user.require(Role::Admin)?;
    let mut v = Validator::default();
    items::validate(
        &mut v,
        Some(&body.name),
        Some(&body.kind),
        body.description.as_deref(),
        body.attributes.as_ref(),
    );
    v.finish()?;
    items::check_owner(&state.pool, body.owner_id).await?;
    let item = items::insert(
        &state.pool,
        &NewItem {
            name: body.name.trim().to_string(),
            kind: body.kind.trim().to_lowercase(),
            description: body.description.unwrap_or_default(),
            attributes: body.attributes.unwrap_or_else(|| serde_json::json!({})),
            owner_id: body.owner_id,
            status: body.status.unwrap_or(ItemStatus::Active),
        },
    )
    .await?;
    let id = item.id;
    let mut response = item_response(&state, StatusCode::CREATED, item).await?;
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/items/{id}")) {
        response.headers_mut().insert(LOCATION, v);
    }
    Ok(with_token(
        response,
        Some(projections::Checkpoint::default()),
    ))
}

/// One item, with its version as `ETag`.
#[utoipa::path(get, path = "/{id}", tag = "items", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Item id")),
    responses((status = 200, body = Item, headers(("ETag" = String))), ReadErrors))]
async fn find_item(
    State(state): State<AppState>,
    _user: AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<Response, ApiError> {
    let item = items::find(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Item"))?;
    item_response(&state, StatusCode::OK, item).await
}

/// Change an item (admins). Needs `If-Match: <version>`; a stale or missing one is 412 and
/// changes nothing.
#[utoipa::path(patch, path = "/{id}", tag = "items", security(("bearer" = [])), request_body = ItemUpdate,
    params(("id" = i64, Path, description = "Item id"), ("If-Match" = String, Header, description = "The item's version (its ETag)")),
    responses((status = 200, body = Item, headers(("ETag" = String))), VersionedWriteErrors))]
async fn update_item(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    headers: HeaderMap,
    AppJson(body): AppJson<ItemUpdate>,
) -> Result<Response, ApiError> {
    user.require(Role::Admin)?;
    let expected = required_version(&headers)?;
    let mut v = Validator::default();
    items::validate(
        &mut v,
        body.name.as_deref(),
        body.kind.as_deref(),
        body.description.as_deref(),
        body.attributes.as_ref(),
    );
    v.finish()?;
    if let Some(owner) = body.owner_id {
        items::check_owner(&state.pool, owner).await?;
    }
    let change = ItemChange {
        name: body.name.map(|n| n.trim().to_string()),
        kind: body.kind.map(|k| k.trim().to_lowercase()),
        description: body.description,
        attributes: body.attributes,
        owner_id: body.owner_id,
        status: body.status,
    };
    let item = items::update(&state.pool, id, expected, &change).await?;
    Ok(with_token(
        item_response(&state, StatusCode::OK, item).await?,
        Some(projections::Checkpoint::default()),
    ))
}

/// Delete an item (admins). Needs `If-Match: <version>` (412 when stale or missing); 409 while
/// live tickets refer to it.
#[utoipa::path(delete, path = "/{id}", tag = "items", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Item id"), ("If-Match" = String, Header, description = "The item's version (its ETag)")),
    responses((status = 204), VersionedCommandErrors))]
async fn delete_item(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    user.require(Role::Admin)?;
    let expected = required_version(&headers)?;
    items::delete(&state.pool, id, expected).await?;
    Ok(with_token(
        StatusCode::NO_CONTENT.into_response(),
        Some(projections::Checkpoint::default()),
    ))
}

/// The live tickets that refer to an item, newest first. Requesters see only their own.
#[utoipa::path(get, path = "/{id}/tickets", tag = "items", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Item id"), ItemTicketsQuery,
           ConsistencyHeader),
    responses((status = 200, body = TicketListResponse), ReadErrors))]
async fn list_item_tickets(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    AppQuery(query): AppQuery<ItemTicketsQuery>,
) -> Result<axum::Json<Page<TicketSummary>>, ApiError> {
    let mut v = Validator::default();
    let (page, size, offset) = paging(&mut v, query.page, query.size);
    v.finish()?;
    if items::find(&state.pool, id).await?.is_none() {
        return Err(ApiError::not_found("Item"));
    }
    wait_for_token(
        &state,
        &headers,
        &[projections::tickets::TicketsProjection::NAME],
    )
    .await?;
    let cx = list::ListContext::of(&state, &user);
    Ok(axum::Json(
        list::tickets_of_item(&state, id, cx, (page, size, offset)).await?,
    ))
}
