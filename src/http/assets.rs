//! The built SPA: hashed files under `/assets/` (served precompressed, cached for a year as
//! immutable), the API reference page, and `index.html` for every navigation path (revalidated
//! on each load, so that a new release reaches the browser at once).

use std::path::Path;

use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, VARY};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;
use tower::Layer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::http::error::ApiError;
use crate::http::state::AppState;

/// For hashed file names: a new build gives a file a new name, so a copy never goes stale.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For `index.html` and the other unhashed pages: cached, but revalidated on every use.
pub const REVALIDATE: &str = "no-cache";

/// A response header set only on successful answers (a 404 must not be cached for a year).
fn on_success(value: &'static str) -> impl FnMut(&Response) -> Option<HeaderValue> + Clone {
    move |response: &Response| {
        response
            .status()
            .is_success()
            .then(|| HeaderValue::from_static(value))
    }
}

/// A file service that answers with the `.br` or `.gz` sibling the build wrote when the client
/// accepts it, with `Cache-Control: <cache>` and `Vary: Accept-Encoding`.
fn cached<T, S>(service: S, cache: &'static str) -> MethodRouter<T>
where
    T: Clone + Send + Sync + 'static,
    S: tower::Service<Request, Error = std::convert::Infallible> + Clone + Send + Sync + 'static,
    S::Response: IntoResponse + 'static,
    S::Future: Send + 'static,
{
    let service = SetResponseHeaderLayer::overriding(CACHE_CONTROL, on_success(cache)).layer(
        SetResponseHeaderLayer::appending(VARY, on_success("accept-encoding")).layer(
            tower::ServiceExt::map_response(service, IntoResponse::into_response),
        ),
    );
    axum::routing::any_service(service)
}

fn dir(path: &Path) -> ServeDir {
    ServeDir::new(path).precompressed_br().precompressed_gzip()
}

fn file(path: &Path) -> ServeFile {
    ServeFile::new(path).precompressed_br().precompressed_gzip()
}

/// `/docs` (the API reference page of the build).
pub fn docs_page(static_dir: &Path) -> MethodRouter<AppState> {
    cached(file(&static_dir.join("docs.html")), REVALIDATE)
}

/// Mounts `/assets` (a missing hashed file is a 404, not the SPA's `index.html`) and the
/// history fallback for every other path the router does not know.
pub fn mount(router: Router<AppState>, static_dir: &Path) -> Router<AppState> {
    let assets = dir(&static_dir.join("assets")).fallback(axum::routing::any(not_found));
    let spa = dir(static_dir).fallback(file(&static_dir.join("index.html")));
    router
        .nest_service("/assets", cached(assets, IMMUTABLE))
        .fallback_service(cached(spa, REVALIDATE))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("No such file".into())
}
