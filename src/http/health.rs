//! `/healthz` (the process answers), `/readyz` (database reachable, projections running and
//! caught up within a bound) and `/metrics` (Prometheus).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::http::state::AppState;

/// Projections further behind than this are not ready.
const READY_LAG_SECONDS: f64 = 30.0;

/// The probe routes (outside `/api/v1`, not in the OpenAPI document).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let reports = match projections::runtime::report(&state.pool).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"status": "unavailable", "database": "unreachable"})),
            );
        }
    };
    let mut ready = true;
    let projections: Vec<_> = reports
        .iter()
        .filter(|r| !r.name.ends_with("__rebuild"))
        .map(|r| {
            let ok = r.status == "running" && r.lag_seconds <= READY_LAG_SECONDS;
            ready &= ok;
            json!({
                "name": r.name, "status": r.status, "ready": ok,
                "lag_events": r.lag_events, "lag_seconds": r.lag_seconds,
                // The error text stays in the CLI and the logs.
                "stopped": r.error.is_some(),
            })
        })
        .collect();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        axum::Json(json!({
            "status": if ready { "ready" } else { "not_ready" },
            "database": "ok",
            "projections": projections,
        })),
    )
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok(reports) = projections::runtime::report(&state.pool).await {
        let transient: std::collections::HashMap<&str, u64> = state
            .runtime
            .as_ref()
            .map(|rt| {
                rt.statuses()
                    .into_iter()
                    .map(|(n, s)| (n, s.transient_errors))
                    .collect()
            })
            .unwrap_or_default();
        for r in &reports {
            crate::service::metrics::set_projection(
                &r.name,
                r.position,
                r.lag_events,
                transient.get(r.name.as_str()).copied().unwrap_or(0),
            );
        }
    }
    if let Ok(outboxes) = crate::service::delivery::outbox_state(&state.pool).await {
        for (channel, pending, failed, oldest) in outboxes {
            crate::service::metrics::set_outbox(&channel, pending, failed, oldest);
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::service::metrics::render(),
    )
}
