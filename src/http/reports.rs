//! `/api/v1/reports`: the dashboard, analytics, the ticket export and the SLA policy, for
//! managers and admins (requesters and agents get 403). Everything is read from the `reports`
//! read model through `crate::reports`, the code the CLI uses too.

use aggregates::Role;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use projections::sla::policy::SlaPolicy;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::consistency::wait_for_token;
use crate::http::error::{parse_json, ApiError, AppQuery, Validator};
use crate::http::responses::{ListErrors, WriteErrors};
use crate::http::state::AppState;
use crate::service::auth::AuthUser;
use crate::service::reports::export::{self, Format};
use crate::service::reports::{self, Analytics, Dashboard, GroupBy};
use crate::service::sla_policy::{self, PolicyDocument};
use crate::service::tickets::list::TicketListQueryParams;

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dashboard))
        .routes(routes!(analytics))
        .routes(routes!(export_tickets))
        .routes(routes!(get_sla_policy, put_sla_policy))
}

/// Query of `GET /reports/dashboard`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DashboardQuery {
    /// A running SLA target due within this many minutes counts as at risk (default 60).
    #[param(minimum = 1, maximum = 10080)]
    pub at_risk_minutes: Option<i64>,
}

/// The manager dashboard: counts, backlog, daily flow, response and resolution times, SLA
/// breaches and risks, pending approvals. Served from a short cache: at most 5 s old while the
/// read model is still, at most 1 s old while it moves, never older than the
/// `X-Consistency-Token` sent.
#[utoipa::path(get, path = "/dashboard", tag = "reports", security(("bearer" = [])), params(DashboardQuery),
    responses((status = 200, body = Dashboard), ListErrors))]
async fn dashboard(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppQuery(query): AppQuery<DashboardQuery>,
) -> Result<Response, ApiError> {
    user.require(Role::Manager)?;
    let at_risk = query
        .at_risk_minutes
        .unwrap_or(reports::DEFAULT_AT_RISK_MINUTES);
    let mut v = Validator::default();
    v.check_query(
        (1..=10_080).contains(&at_risk),
        "at_risk_minutes",
        "at_risk_minutes must be between 1 and 10080",
    );
    v.finish()?;
    wait_for_token(&state, &headers, &[reports::PROJECTION]).await?;
    let token = headers
        .get("x-consistency-token")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok());
    let d = state
        .dashboards
        .dashboard(&state.pool, at_risk, token)
        .await?;
    Ok(axum::Json(d.as_ref()).into_response())
}

/// Query of `GET /reports/analytics`: a range, a grouping, and the ticket filters of
/// `GET /tickets` (documented there).
#[derive(Debug, Deserialize)]
pub struct AnalyticsQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub group_by: Option<String>,
    pub status: Option<String>,
    pub priority: Option<String>,
    #[serde(rename = "type")]
    pub ticket_type: Option<String>,
    pub assignee_id: Option<String>,
}

/// The range and grouping of `GET /reports/analytics` (for the OpenAPI document).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "documents the query; `AnalyticsQuery` reads it")]
struct AnalyticsRange {
    /// Start: a date (YYYY-MM-DD, UTC) or an RFC 3339 time (default: 30 days before `to`).
    from: Option<String>,
    /// End: a date (included whole) or an RFC 3339 time (exclusive; default: now).
    to: Option<String>,
    /// `day` (default), `week` (from Monday) or `month`.
    group_by: Option<String>,
}

impl IntoParams for AnalyticsQuery {
    fn into_params(
        parameter_in: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        const FILTERS: [&str; 4] = ["status", "priority", "type", "assignee_id"];
        let mut params = AnalyticsRange::into_params(&parameter_in);
        params.extend(
            TicketListQueryParams::into_params(&parameter_in)
                .into_iter()
                .filter(|p| FILTERS.contains(&p.name.as_str())),
        );
        params
    }
}

/// A time series per day, week or month: created and resolved tickets, median and p90 time to
/// first response and to resolution, missed targets and SLA breaches, for the filtered tickets.
#[utoipa::path(get, path = "/analytics", tag = "reports", security(("bearer" = [])), params(AnalyticsQuery),
    responses((status = 200, body = Analytics), ListErrors))]
async fn analytics(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppQuery(query): AppQuery<AnalyticsQuery>,
) -> Result<Response, ApiError> {
    user.require(Role::Manager)?;
    let mut v = Validator::default();
    let (from, to) = reports::parse_range(&mut v, query.from.as_deref(), query.to.as_deref());
    let group_by = match query.group_by.as_deref().map(str::trim) {
        None | Some("") => Some(GroupBy::Day),
        Some(g) => GroupBy::parse(g),
    };
    v.check_query(
        group_by.is_some(),
        "group_by",
        "group_by must be day, week or month",
    );
    let filters = reports::parse_filters(
        &mut v,
        query.status.as_deref(),
        query.priority.as_deref(),
        query.ticket_type.as_deref(),
        query.assignee_id.as_deref(),
    );
    let now = Utc::now();
    let to = to.unwrap_or(now);
    let from = from.unwrap_or_else(|| reports::default_from(to));
    v.check_query(from < to, "from", "from must be before to");
    v.finish()?;
    wait_for_token(&state, &headers, &[reports::PROJECTION]).await?;
    let a = reports::analytics(
        &state.pool,
        from,
        to,
        group_by.unwrap_or(GroupBy::Day),
        filters,
        now,
    )
    .await?;
    Ok(axum::Json(a).into_response())
}

/// Query of `GET /reports/export`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (default) or `json`.
    pub format: Option<String>,
    /// Tickets created from (a date or an RFC 3339 time; default: the beginning).
    pub from: Option<String>,
    /// Tickets created before (a date is included whole; default: no end).
    pub to: Option<String>,
}

/// Every live ticket created in the range with its report facts, oldest first, streamed as
/// CSV (formula-neutralised) or a JSON array, as an attachment.
#[utoipa::path(get, path = "/export", tag = "reports", security(("bearer" = [])), params(ExportQuery),
    responses((status = 200, description = "CSV or a JSON array of ExportRow", content_type = "text/csv",
               headers(("Content-Disposition" = String))), ListErrors))]
async fn export_tickets(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppQuery(query): AppQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    user.require(Role::Manager)?;
    let mut v = Validator::default();
    let format = match query.format.as_deref().map(str::trim) {
        None | Some("") | Some("csv") => Some(Format::Csv),
        Some("json") => Some(Format::Json),
        Some(_) => None,
    };
    v.check_query(format.is_some(), "format", "format must be csv or json");
    let (from, to) = reports::parse_range(&mut v, query.from.as_deref(), query.to.as_deref());
    v.finish()?;
    wait_for_token(&state, &headers, &[reports::PROJECTION]).await?;
    let format = format.unwrap_or(Format::Csv);
    let day = |t: Option<chrono::DateTime<Utc>>| t.map(|t| t.format("%Y%m%d").to_string());
    let name = match (day(from), day(to)) {
        (Some(f), Some(t)) => format!("tickets-{f}-{t}"),
        (Some(f), None) => format!("tickets-from-{f}"),
        (None, Some(t)) => format!("tickets-to-{t}"),
        (None, None) => format!("tickets-{}", Utc::now().format("%Y%m%d")),
    };
    let (from, to) = export::bounds(from, to);
    let body = Body::from_stream(export::stream(state.pool.clone(), from, to, format));
    Ok((
        [
            (CONTENT_TYPE, format.content_type().to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.{}\"", format.extension()),
            ),
        ],
        body,
    )
        .into_response())
}

/// The SLA policy in force (managers and admins), with whether the report history was
/// computed with it.
#[utoipa::path(get, path = "/sla-policy", tag = "reports", security(("bearer" = [])),
    responses((status = 200, body = PolicyDocument), ListErrors))]
async fn get_sla_policy(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Response, ApiError> {
    user.require(Role::Manager)?;
    Ok(axum::Json(sla_policy::load(&state.pool).await?).into_response())
}

/// Replace the SLA policy (admins). It applies to events from now on; run
/// `ticketd projections rebuild reports` to apply it to the whole history.
#[utoipa::path(put, path = "/sla-policy", tag = "reports", security(("bearer" = [])), request_body = SlaPolicy,
    responses((status = 200, body = PolicyDocument), WriteErrors))]
async fn put_sla_policy(
    State(state): State<AppState>,
    user: AuthUser,
    body: Bytes,
) -> Result<Response, ApiError> {
    user.require(Role::Admin)?;
    let body: SlaPolicy = parse_json(&body)?;
    let doc = sla_policy::save(&state.pool, &body, Some(user.id)).await?;
    state.policies.forget();
    Ok(axum::Json(doc).into_response())
}
