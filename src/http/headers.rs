//! Response headers every answer carries (the Content-Security-Policy of the SPA, `/docs` and
//! the API, framing, sniffing, referrer, HSTS when enabled, no caching of API answers) and
//! the deadlines for slow requests (whole request, body inactivity).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;
use crate::http::state::AppState;

/// The Content-Security-Policy with the given `style-src` sources. Scripts only ever come
/// from this origin and never inline (the SPA build emits none, `/docs` included: its
/// renderer is a bundle in `/assets/`). Images may be `data:`/`blob:` (icons, previews of attachments).
macro_rules! policy {
    ($style_src:literal) => {
        concat!(
            "default-src 'self'; script-src 'self'; style-src ",
            $style_src,
            "; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; \
             object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
        )
    };
}

/// The policy of the SPA and the API. The SPA's component library (Element Plus) sets its
/// styles through the CSSOM, which a policy does not restrict: the end-to-end journey runs
/// without a single violation, so no `'unsafe-inline'` here.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = policy!("'self'");

/// The policy of `/docs`: an API reference renderer writes `<style>` elements at run time,
/// so styles (never scripts) may be inline there.
pub const DOCS_CONTENT_SECURITY_POLICY_VALUE: &str = policy!("'self' 'unsafe-inline'");

/// Two years, subdomains included: what hstspreload.org asks for.
const HSTS_VALUE: &str = "max-age=63072000; includeSubDomains";

/// Adds the security headers (keeping any a handler chose itself, such as the stricter
/// policy of attachment downloads). API answers may hold tokens or personal data: no cache
/// keeps them. The built scripts and styles under `/assets/` are never documents: the policy,
/// framing and referrer headers mean nothing there and would cost every page load about 5 KB,
/// so they get `nosniff` only.
pub async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let api = path.starts_with("/api/");
    let asset = path.starts_with("/assets/");
    let policy = if path == "/docs" || path.starts_with("/docs/") {
        DOCS_CONTENT_SECURITY_POLICY_VALUE
    } else {
        CONTENT_SECURITY_POLICY_VALUE
    };
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    let defaults = [
        (CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy)),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (REFERRER_POLICY, HeaderValue::from_static("same-origin")),
    ];
    for (name, value) in defaults {
        if asset && name != X_CONTENT_TYPE_OPTIONS {
            continue;
        }
        headers.entry(name).or_insert(value);
    }
    if api {
        headers
            .entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    if state.settings.hsts {
        headers.insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS_VALUE),
        );
    }
    response
}

/// Answers 503 (with `Retry-After`) when a request has not been answered within the
/// configured time. The deadline ends with the answer's headers: reading the request body
/// counts, streaming the answer does not, so the notification stream (which ends with its
/// token and sends keep-alives of its own) needs no exemption.
pub async fn request_deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit: Duration = state.settings.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable {
            detail: "The request took too long".into(),
            retry_after: 1,
        }
        .into_response(),
    }
}
