//! `/api/v1/approvals`: requesting approvals on tickets, deciding, delegating and cancelling
//! them (commands through the Approval aggregate), the list and the approver's inbox (the
//! `approvals` read model), and the approval policy for new change requests.

use aggregates::approval::{Approval, ApprovalCommand, Decision, StepSpec};
use aggregates::ticket::Ticket;
use aggregates::{Role, TicketType};
use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use projections::Checkpoint;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::consistency::{wait_for_token, ConsistencyHeader};
use crate::http::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::http::idempotency::IdempotencyHeader;
use crate::http::responses::{CommandErrors, ListErrors, ReadErrors, WriteErrors};
use crate::http::state::AppState;
use crate::http::with_token;
use crate::service::approval_policy::{self, ApprovalPolicy, ApprovalPolicyUpdate};
use crate::service::approval_process;
use crate::service::approvals::{
    self, approval_error, decision_comment, load_visible, nudge_ticket, run, validate_request,
    ApprovalCreate, ApprovalDecisionCreate, ApprovalDelegate, ApprovalListQueryParams,
    ApprovalView,
};
use crate::service::auth::AuthUser;
use crate::service::executor::Committed;
use crate::service::paging::Page;

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_approvals, create_approval))
        .routes(routes!(find_approval_policy, update_approval_policy))
        .routes(routes!(find_approval))
        .routes(routes!(decide_approval))
        .routes(routes!(delegate_approval))
        .routes(routes!(cancel_approval))
}

/// The page answered by `GET /approvals` (OpenAPI name).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalListResponse {
    pub items: Vec<ApprovalView>,
    pub total: i64,
    pub page: i64,
    pub size: i64,
    pub pages: i64,
}

/// An approval response with the later of the approval's and the ticket's tokens.
async fn approval_response(
    state: &AppState,
    status: StatusCode,
    committed: &Committed<Approval>,
    ticket: Option<Committed<Ticket>>,
) -> Result<Response, ApiError> {
    let mut view = [ApprovalView::from_aggregate(
        &committed.aggregate,
        committed.version as i64,
    )];
    approvals::present(state, &mut view).await?;
    let [view] = view;
    let token: Option<Checkpoint> = committed.token.max(ticket.and_then(|t| t.token));
    Ok(with_token(
        (status, axum::Json(view)).into_response(),
        token,
    ))
}

/// Request an approval on a ticket (agents and up, on any ticket). The ticket cannot move to
/// `in_progress` or `resolved` until it is approved (or the approval is cancelled).
#[utoipa::path(post, path = "/", tag = "approvals", security(("bearer" = [])), request_body = ApprovalCreate,
    params(IdempotencyHeader), responses((status = 201, body = ApprovalView, headers(("Location" = String), ("X-Consistency-Token" = String))), WriteErrors))]
async fn create_approval(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<ApprovalCreate>,
) -> Result<Response, ApiError> {
    user.require(Role::Agent)?;
    validate_request(&state, &body).await?;
    let (ticket, _) = state
        .tickets
        .load(&body.ticket_id.to_string())
        .await
        .map_err(crate::service::tickets::command_error)?;
    if !ticket.exists() {
        return Err(ApiError::not_found("Ticket"));
    }
    if ticket.current_status().is_terminal() {
        return Err(ApiError::conflict(format!(
            "The ticket is {} and needs no approval",
            ticket.current_status()
        )));
    }
    if let Some(previous) = approval_process::latest_approval(&state.pool, ticket.id).await? {
        let (approval, _) = state
            .approvals
            .load(&previous.to_string())
            .await
            .map_err(approval_error)?;
        if approval.is_pending() {
            return Err(ApiError::Conflict {
                detail: "The ticket already has a pending approval; cancel it first".into(),
                extra: Some(json!({ "approval_id": previous })),
            });
        }
    }
    let id = Uuid::new_v4();
    let steps: Vec<StepSpec> = body
        .steps
        .into_iter()
        .map(|s| StepSpec {
            name: s.name.trim().to_string(),
            ..s
        })
        .collect();
    let reason = body
        .reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    let meta = user.actor.metadata();
    let request = approvals::Request {
        id,
        ticket: &ticket,
        requested_by: user.id,
        steps,
        reason,
    };
    let committed = approvals::request_approval(&state, request, Some(0), &meta)
        .await
        .map_err(approval_error)?;
    let ticket_commit = nudge_ticket(&state, &meta, ticket.id).await;
    let mut response =
        approval_response(&state, StatusCode::CREATED, &committed, ticket_commit).await?;
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/approvals/{id}")) {
        response.headers_mut().insert(LOCATION, v);
    }
    Ok(response)
}

/// One approval, loaded from its events.
#[utoipa::path(get, path = "/{id}", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Approval id")),
    responses((status = 200, body = ApprovalView), ReadErrors))]
async fn find_approval(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<axum::Json<ApprovalView>, ApiError> {
    let (approval, version) = load_visible(&state, &user, id).await?;
    let mut view = [ApprovalView::from_aggregate(&approval, version as i64)];
    approvals::present(&state, &mut view).await?;
    let [view] = view;
    Ok(axum::Json(view))
}

/// Approve or reject the current step. 403 for someone who is not an approver of the current
/// step; 409 when already decided, delegated, not yet this step's turn, or no longer pending.
/// One rejection rejects the approval.
#[utoipa::path(post, path = "/{id}/decisions", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Approval id"), IdempotencyHeader), request_body = ApprovalDecisionCreate,
    responses((status = 200, body = ApprovalView, headers(("X-Consistency-Token" = String))), WriteErrors))]
async fn decide_approval(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<ApprovalDecisionCreate>,
) -> Result<Response, ApiError> {
    let comment = decision_comment(body.comment)?;
    if body.decision == Decision::Reject && comment.is_none() {
        return Err(ApiError::field(
            "comment",
            "A rejection needs a comment saying why",
        ));
    }
    load_visible(&state, &user, id).await?;
    let at = crate::service::now();
    let committed = run(&state, &user, id, |_| ApprovalCommand::Decide {
        approver_id: user.id,
        decision: body.decision,
        comment: comment.clone(),
        at,
    })
    .await?;
    let meta = user.actor.metadata();
    let ticket_commit = if committed.aggregate.is_pending() {
        None
    } else {
        nudge_ticket(&state, &meta, committed.aggregate.ticket_id).await
    };
    approval_response(&state, StatusCode::OK, &committed, ticket_commit).await
}

/// Hand your decision on the current step to another user, once. The delegate may not
/// delegate it further.
#[utoipa::path(post, path = "/{id}/delegate", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Approval id"), IdempotencyHeader), request_body = ApprovalDelegate,
    responses((status = 200, body = ApprovalView, headers(("X-Consistency-Token" = String))), WriteErrors))]
async fn delegate_approval(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<ApprovalDelegate>,
) -> Result<Response, ApiError> {
    let comment = decision_comment(body.comment)?;
    load_visible(&state, &user, id).await?;
    let active = approval_policy::active_users(&state.pool, &[body.to_user_id]).await?;
    if !active.contains(&body.to_user_id) {
        return Err(ApiError::field(
            "to_user_id",
            format!("User {} does not exist or is not active", body.to_user_id),
        ));
    }
    let at = crate::service::now();
    let committed = run(&state, &user, id, |_| ApprovalCommand::Delegate {
        from_user_id: user.id,
        to_user_id: body.to_user_id,
        comment: comment.clone(),
        at,
    })
    .await?;
    approval_response(&state, StatusCode::OK, &committed, None).await
}

/// Withdraw a pending approval: the ticket's requester, whoever requested the approval, or
/// staff. The ticket is no longer blocked by it.
#[utoipa::path(post, path = "/{id}/cancel", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Approval id"), IdempotencyHeader),
    responses((status = 200, body = ApprovalView, headers(("X-Consistency-Token" = String))), CommandErrors))]
async fn cancel_approval(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Response, ApiError> {
    load_visible(&state, &user, id).await?;
    let at = crate::service::now();
    let committed = run(&state, &user, id, |_| ApprovalCommand::Cancel {
        by: user.id,
        by_staff: user.is_staff(),
        at,
    })
    .await?;
    let meta = user.actor.metadata();
    let ticket_commit = nudge_ticket(&state, &meta, committed.aggregate.ticket_id).await;
    approval_response(&state, StatusCode::OK, &committed, ticket_commit).await
}

/// List approvals, newest first; `mine=true` gives the caller's inbox: the approvals whose
/// current step waits on the caller's decision. Requesters only see approvals of their own
/// tickets and those they take part in.
#[utoipa::path(get, path = "/", tag = "approvals", security(("bearer" = [])),
    params(ApprovalListQueryParams, ConsistencyHeader),
    responses((status = 200, body = ApprovalListResponse), ListErrors))]
async fn list_approvals(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppQuery(query): AppQuery<ApprovalListQueryParams>,
) -> Result<axum::Json<Page<ApprovalView>>, ApiError> {
    let (filter, page) = approvals::approval_filter(&user, &query)?;
    wait_for_token(
        &state,
        &headers,
        &[projections::approvals::ApprovalsProjection::NAME],
    )
    .await?;
    Ok(axum::Json(
        approvals::list_approvals(&state, &filter, page).await?,
    ))
}

/// The approval policy of change requests: the approval every new `change_request` ticket
/// gets (admins only).
#[utoipa::path(get, path = "/policy", tag = "approvals", security(("bearer" = [])),
    responses((status = 200, body = ApprovalPolicy), ListErrors))]
async fn find_approval_policy(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<axum::Json<ApprovalPolicy>, ApiError> {
    user.require(Role::Admin)?;
    Ok(axum::Json(
        approval_policy::load(&state.pool, TicketType::ChangeRequest).await?,
    ))
}

/// Replace the approval policy of change requests (admins only). Steps name approvers as
/// `{"user_id": 7}` or `{"role": "manager"}` (every active user of the role when a ticket
/// opens, except its requester). An empty `steps` list removes the policy.
#[utoipa::path(put, path = "/policy", tag = "approvals", security(("bearer" = [])), request_body = ApprovalPolicyUpdate,
    responses((status = 200, body = ApprovalPolicy), WriteErrors))]
async fn update_approval_policy(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<ApprovalPolicyUpdate>,
) -> Result<axum::Json<ApprovalPolicy>, ApiError> {
    user.require(Role::Admin)?;
    approval_policy::validate(&state.pool, &body.steps).await?;
    let steps: Vec<_> = body
        .steps
        .into_iter()
        .map(|s| approval_policy::PolicyStep {
            name: s.name.trim().to_string(),
            min_approvals: match s.rule {
                aggregates::approval::Rule::Quorum => s.min_approvals,
                _ => None,
            },
            ..s
        })
        .collect();
    let saved =
        approval_policy::save(&state.pool, TicketType::ChangeRequest, &steps, user.id).await?;
    state.policies.forget();
    Ok(axum::Json(saved))
}
