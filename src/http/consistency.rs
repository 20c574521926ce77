//! Read-your-writes: a read carrying `X-Consistency-Token` waits until the projections it
//! reads have applied the write the token names.

use std::time::Duration;

use axum::http::HeaderMap;
use projections::Checkpoint;

use crate::http::error::{ApiError, FieldError};
use crate::http::state::AppState;
use crate::service::consistency;

/// The `X-Consistency-Token` header a read may send (for the OpenAPI document).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ConsistencyHeader {
    /// The token a write answered with: wait (up to 2 s, else 503) until it is visible.
    #[param(
        rename = "X-Consistency-Token",
        nullable = false,
        pattern = r"^[0-9]{1,18}\.[0-9]{1,18}$"
    )]
    pub token: Option<String>,
}

/// How long a read waits for its consistency token.
const CONSISTENCY_WAIT: Duration = Duration::from_secs(2);

/// Honours `X-Consistency-Token`: waits (≤ 2 s) until every named projection has applied
/// the write the token names, else 503 with `Retry-After`.
pub async fn wait_for_token(
    state: &AppState,
    headers: &HeaderMap,
    projections: &[&str],
) -> Result<(), ApiError> {
    let Some(raw) = headers.get("x-consistency-token") else {
        return Ok(());
    };
    let token: Checkpoint = raw
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            ApiError::Validation(vec![FieldError {
                loc: vec![
                    serde_json::json!("header"),
                    serde_json::json!("X-Consistency-Token"),
                ],
                msg: "Malformed consistency token".into(),
                kind: "value_error".into(),
            }])
        })?;
    let deadline = tokio::time::Instant::now() + CONSISTENCY_WAIT;
    for name in projections {
        let mut watch = state.runtime.as_ref().and_then(|rt| rt.watch(name));
        loop {
            if watch.as_ref().is_some_and(|w| *w.borrow() >= token) {
                break;
            }
            // A command wakes only the projections that read its events: this one may be
            // waiting for its next poll to pass over them.
            if let Some(rt) = state.runtime.as_ref() {
                rt.nudge(name);
            }
            // Another process may lead this projection: the checkpoint row is the truth.
            if consistency::reached(&state.pool, name, token).await? {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::Unavailable {
                    detail: "Your change is not visible yet; retry shortly".into(),
                    retry_after: 1,
                });
            }
            let pause = tokio::time::sleep(Duration::from_millis(25));
            match watch.as_mut() {
                Some(w) => {
                    tokio::select! { _ = w.changed() => {}, _ = pause => {} }
                }
                None => pause.await,
            }
        }
    }
    Ok(())
}
