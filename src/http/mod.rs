//! The HTTP surface (axum only): one module or folder per API area, assembled into one router
//! with the cross-cutting layers (request ids, tracing, panics as JSON 500, body limits, CORS,
//! trailing-slash normalisation, the SPA with history fallback, the API reference at `/docs`).

/// Declares the OpenAPI name of a page of `$item` (the body is a `service::paging::Page`):
/// `page_schema! { /// doc\n ItemListResponse, Item }`.
macro_rules! page_schema {
    ($(#[$doc:meta])* $name:ident, $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            pub total: i64,
            pub page: i64,
            pub size: i64,
            pub pages: i64,
            /// False when `total` is an estimate.
            pub total_exact: bool,
        }
    };
}

pub mod admin;
pub mod approvals;
pub mod assets;
pub mod auth;
pub mod consistency;
pub mod error;
pub mod extract;
pub mod headers;
pub mod health;
pub mod idempotency;
pub mod items;
pub mod live;
pub mod macros;
pub mod metrics;
pub mod notifications;
pub mod openapi;
pub mod reports;
pub mod responses;
pub mod state;
pub mod tickets;
pub mod users;
pub mod views;
pub mod webhooks;

use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::Layer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::http::error::{ApiError, LoggedCause};
use crate::http::state::AppState;

/// The API routes with their OpenAPI description.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::http::openapi::ApiDoc::openapi())
        .nest("/api/v1/attachments", tickets::attachments::router())
        .nest("/api/v1/auth", auth::router())
        .nest("/api/v1/comments", tickets::comments::router())
        .nest("/api/v1/tickets", tickets::router())
        .nest("/api/v1/tickets", tickets::history::router())
        .nest("/api/v1/tickets", tickets::policy::router())
        .nest("/api/v1/tickets", tickets::actions::router())
        .nest("/api/v1/macros", macros::router())
        .nest("/api/v1/users", users::router())
        .nest("/api/v1/approvals", approvals::router())
        .nest("/api/v1/items", items::router())
        .nest("/api/v1/notifications", notifications::router())
        .nest("/api/v1", live::router())
        .nest("/api/v1/reports", reports::router())
        .nest("/api/v1/views", views::router())
        .nest("/api/v1/webhooks", webhooks::router())
        .nest("/api/v1/admin", admin::router())
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, doc) = api_router().split_for_parts();
    doc
}

/// The whole application, ready to serve.
pub fn app(state: AppState) -> NormalizePath<Router> {
    let keys = middleware::from_fn_with_state(state.clone(), idempotency::layer);
    let router = with_layers(routes(&state), &state);
    // Around the whole router, so that a repeated request can rebuild its answer with a GET.
    let router = Router::new().fallback_service(keys.layer(router));
    NormalizePathLayer::trim_trailing_slash().layer(router)
}

/// Every route: the API with its document and reference page, the probes, and the SPA.
fn routes(state: &AppState) -> Router<AppState> {
    let (api, doc) = api_router().split_for_parts();
    let doc_json = serde_json::to_string(&doc).unwrap_or_else(|_| "{}".into());
    let static_dir = state.settings.static_dir.clone();
    let api = api
        .merge(health::router())
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let body = doc_json.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                }
            }),
        )
        // The API reference: a page of the SPA build (Swagger UI, bundled from npm).
        .route("/docs", assets::docs_page(&static_dir));
    // Lets the test-suite prove that a panic becomes a JSON 500 (debug builds only).
    #[cfg(debug_assertions)]
    let api = api.route(
        "/api/v1/__panic",
        axum::routing::get(|| async {
            if true {
                panic!("deliberate panic for the test-suite");
            }
            ""
        }),
    );
    assets::mount(
        api.nest_service("/api", axum::routing::any(api_not_found)),
        &static_dir,
    )
}

/// The layers every request passes (innermost first): body limits and deadlines, logging,
/// the client address, panics, CORS, tracing, security headers, request ids, metrics.
fn with_layers(router: Router<AppState>, state: &AppState) -> Router {
    let max_body = state.settings.max_upload_bytes as usize + 64 * 1024;
    let request_id = HeaderName::from_static("x-request-id");
    let router = router
        .layer(DefaultBodyLimit::max(max_body))
        .layer(RequestBodyTimeoutLayer::new(state.settings.body_timeout))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            headers::request_deadline,
        ))
        .layer(middleware::from_fn(log_server_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            extract::resolve_client_address,
        ))
        .layer(CatchPanicLayer::custom(panic_response));
    // No origin allowed (the default): no CORS layer, so no `Vary: origin` and no
    // `Access-Control-Expose-Headers` on every answer (about 3 KB over the login page's requests).
    let router = match cors_layer(&state.settings.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            headers::security_headers,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(middleware::from_fn(metrics::track))
        .with_state(state.clone())
}

async fn api_not_found() -> ApiError {
    ApiError::NotFound("No such API route".into())
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    ApiError::Internal("panic".into()).into_response()
}

/// Logs each server error once, with its cause (never sent to the client).
async fn log_server_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    if response.status().is_server_error() {
        let cause = response
            .extensions()
            .get::<LoggedCause>()
            .map(|c| c.0.as_str().to_string())
            .unwrap_or_default();
        tracing::error!(%method, %path, status = response.status().as_u16(), %cause, "server error");
    }
    response
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
        ])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            axum::http::header::IF_MATCH,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-consistency-token"),
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            axum::http::header::ETAG,
            axum::http::header::LOCATION,
            HeaderName::from_static("x-consistency-token"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(Duration::from_secs(600));
    Some(layer)
}

/// Adds `X-Consistency-Token` (and optionally more headers) to a command's response.
pub fn with_token(mut response: Response, token: Option<projections::Checkpoint>) -> Response {
    if let Some(t) = token {
        if let Ok(v) = HeaderValue::from_str(&t.to_string()) {
            response
                .headers_mut()
                .insert(HeaderName::from_static("x-consistency-token"), v);
        }
    }
    response
}

/// A plain empty response with a status.
pub fn empty(status: StatusCode) -> Response {
    (status, Body::empty()).into_response()
}
