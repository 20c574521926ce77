//! `/api/v1/approvals`: requesting approvals on tickets, deciding, delegating and cancelling
//! them (commands through the Approval aggregate), the list and the approver's inbox (the
//! `approvals` read model), and the approval policy for new change requests.

use std::collections::{BTreeSet, HashMap};

use aggregates::approval::{Approval, ApprovalCommand, ApprovalError, Decision, Step, StepSpec};
use aggregates::ticket::Ticket;
use aggregates::{ApprovalStatus, Role, TicketType};
use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use projections::Checkpoint;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::postgres::PgArguments;
use sqlx::Arguments;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::approval_policy::{self, ApprovalPolicy, ApprovalPolicyUpdate, MAX_APPROVERS};
use crate::auth::AuthUser;
use crate::commands::{metadata, CommandError, Committed};
use crate::error::{capitalise, ApiError, AppJson, AppPath, AppQuery, FieldError, Validator};
use crate::http::tickets::command_error;
use crate::http::with_token;
use crate::read::{self, Page};
use crate::saga;
use crate::state::AppState;

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

/// An approval as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalView {
    pub id: Uuid,
    pub ticket_id: i64,
    pub status: ApprovalStatus,
    /// The 0-based index of the step being decided (where it ended, once finished).
    pub current_step: usize,
    /// The steps in order, with their effective approvers, decisions and delegations.
    pub steps: Vec<Step>,
    /// Who asked for the approval.
    pub requested_by: i64,
    /// The ticket's requester.
    pub ticket_requester_id: i64,
    pub reason: Option<String>,
    /// Who the current step still waits on (empty once finished).
    pub waiting_on: Vec<i64>,
    /// The approval's version (its last event's sequence).
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl ApprovalView {
    /// Renders an aggregate at a version.
    pub fn from_aggregate(a: &Approval, version: i64) -> Self {
        let created_at = a.created_at.unwrap_or_default();
        ApprovalView {
            id: a.id,
            ticket_id: a.ticket_id,
            status: a.status(),
            current_step: a.current_step,
            steps: a.steps.clone(),
            requested_by: a.requested_by,
            ticket_requester_id: a.ticket_requester_id,
            reason: a.reason.clone(),
            waiting_on: a.waiting_on(),
            version,
            created_at,
            updated_at: a.updated_at.unwrap_or(created_at),
            finished_at: a.finished_at,
        }
    }
}

/// Body of `POST /approvals`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ApprovalCreate {
    pub ticket_id: i64,
    /// The steps in order: each names its approvers (user ids) and rule.
    pub steps: Vec<StepSpec>,
    pub reason: Option<String>,
}

/// Body of `POST /approvals/{id}/decisions`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ApprovalDecisionCreate {
    pub decision: Decision,
    pub comment: Option<String>,
}

/// Body of `POST /approvals/{id}/delegate`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ApprovalDelegate {
    /// The user who decides in the caller's place.
    pub to_user_id: i64,
    pub comment: Option<String>,
}

/// Filters and paging of `GET /approvals`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalListQueryParams {
    /// One status or several, comma-separated (`pending`, `approved`, `rejected`, `cancelled`).
    pub status: Option<String>,
    /// Only the approvals of this ticket.
    pub ticket_id: Option<i64>,
    /// Only the approvals whose current step waits on the caller (delegated ones included),
    /// the longest-waiting last.
    pub mine: Option<bool>,
    pub page: Option<i64>,
    pub size: Option<i64>,
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

/// Maps a refused approval command to its API error (statuses as `ApprovalError` documents).
pub fn approval_error(e: CommandError<ApprovalError>) -> ApiError {
    ApiError::from_command(e, "approval", |e| match e {
        ApprovalError::NotFound => ApiError::not_found("Approval"),
        ApprovalError::InvalidSteps(msg) => ApiError::Validation(vec![FieldError {
            loc: vec![json!("body"), json!("steps")],
            msg: capitalise(&msg),
            kind: "value_error".into(),
        }]),
        ApprovalError::NotAnApprover | ApprovalError::NotAllowed => {
            ApiError::Forbidden(capitalise(&e.to_string()))
        }
        ApprovalError::AlreadyExists
        | ApprovalError::NotPending
        | ApprovalError::NotYourTurn
        | ApprovalError::AlreadyDecided
        | ApprovalError::AlreadyDelegated
        | ApprovalError::InvalidDelegate
        | ApprovalError::Delegated => ApiError::conflict(capitalise(&e.to_string())),
    })
}

/// Loads an approval the caller may see, else 404: staff see every approval; others those
/// of their own tickets, the ones they requested, and the ones they approve (or delegated).
async fn load_visible(
    state: &AppState,
    user: &AuthUser,
    id: Uuid,
) -> Result<(Approval, usize), ApiError> {
    let (approval, version) = state
        .approvals
        .load(&id.to_string())
        .await
        .map_err(approval_error)?;
    if !approval.exists() || (!user.is_staff() && !approval.involves(user.id)) {
        return Err(ApiError::not_found("Approval"));
    }
    Ok((approval, version))
}

/// Brings the ticket in line with its latest approval now, so that the response (and the
/// caller's next request) sees it; the process manager guarantees it anyway, so a failure
/// here is only logged. Returns the position of the ticket's new event, if any.
async fn nudge_ticket(
    state: &AppState,
    cause: &HashMap<String, String>,
    ticket_id: i64,
) -> Option<Committed<Ticket>> {
    match saga::reconcile_ticket(
        &state.tickets,
        &state.approvals,
        &state.pool,
        ticket_id,
        cause,
    )
    .await
    {
        Ok(committed) => committed,
        Err(e) => {
            tracing::warn!(ticket_id, error = %e, "ticket not reconciled now; the approval process will");
            None
        }
    }
}

/// An approval response with the later of the approval's and the ticket's tokens.
fn approval_response(
    status: StatusCode,
    committed: &Committed<Approval>,
    ticket: Option<Committed<Ticket>>,
) -> Response {
    let view = ApprovalView::from_aggregate(&committed.aggregate, committed.version as i64);
    let token: Option<Checkpoint> = committed.token.max(ticket.and_then(|t| t.token));
    with_token((status, axum::Json(view)).into_response(), token)
}

/// Checks a decision's or delegation's comment (at most 2,000 characters) and returns it
/// trimmed, None when blank.
fn decision_comment(comment: Option<String>) -> Result<Option<String>, ApiError> {
    let mut v = Validator::default();
    v.check(
        comment.as_deref().is_none_or(|c| c.chars().count() <= 2000),
        "comment",
        "Comment must be at most 2000 characters",
    );
    v.finish()?;
    Ok(comment
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty()))
}

/// Runs `command` on approval `id` for `user`, who may see it.
async fn run(
    state: &AppState,
    user: &AuthUser,
    id: Uuid,
    command: impl Fn(&Approval) -> ApprovalCommand,
) -> Result<Committed<Approval>, ApiError> {
    let committed = state
        .approvals
        .execute(
            &id.to_string(),
            None,
            metadata(Some(user.id), &user.request),
            command,
        )
        .await
        .map_err(approval_error)?;
    crate::metrics::command_committed();
    Ok(committed)
}

/// Validates the steps of an approval request: shape, approvers that exist and are active.
async fn validate_request(state: &AppState, body: &ApprovalCreate) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    approval_policy::check_step_count(&mut errors, body.steps.len(), false);
    if body
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 2000)
    {
        errors.push(FieldError::body(
            "reason",
            "Reason must be at most 2000 characters",
            "value_error",
        ));
    }
    let mut ids: Vec<i64> = body
        .steps
        .iter()
        .flat_map(|s| s.approver_ids.iter().copied())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let active = approval_policy::active_users(&state.pool, &ids).await?;
    for (i, step) in body.steps.iter().enumerate() {
        approval_policy::check_step_shape(
            &mut errors,
            i,
            &step.name,
            step.rule,
            step.min_approvals,
            Some(step.approver_ids.len()),
        );
        let at = vec![
            json!("body"),
            json!("steps"),
            json!(i),
            json!("approver_ids"),
        ];
        if step.approver_ids.is_empty() {
            errors.push(FieldError {
                loc: at.clone(),
                msg: "At least one approver is required".into(),
                kind: "value_error".into(),
            });
        }
        if step.approver_ids.len() > MAX_APPROVERS {
            errors.push(FieldError {
                loc: at.clone(),
                msg: format!("At most {MAX_APPROVERS} approvers per step"),
                kind: "value_error".into(),
            });
        }
        let mut seen = BTreeSet::new();
        for (j, id) in step.approver_ids.iter().enumerate() {
            let mut here = at.clone();
            here.push(json!(j));
            if !active.contains(id) {
                errors.push(FieldError {
                    loc: here,
                    msg: format!("User {id} does not exist or is not active"),
                    kind: "value_error".into(),
                });
            } else if !seen.insert(*id) {
                errors.push(FieldError {
                    loc: here,
                    msg: format!("User {id} is listed twice in this step"),
                    kind: "value_error".into(),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Request an approval on a ticket (agents and up, on any ticket). The ticket cannot move to
/// `in_progress` or `resolved` until it is approved (or the approval is cancelled).
#[utoipa::path(post, path = "/", tag = "approvals", security(("bearer" = [])), request_body = ApprovalCreate,
    responses((status = 201, body = ApprovalView, headers(("Location" = String), ("X-Consistency-Token" = String))),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ValidationErrorBody)))]
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
        .map_err(command_error)?;
    if !ticket.exists() {
        return Err(ApiError::not_found("Ticket"));
    }
    if ticket.current_status().is_terminal() {
        return Err(ApiError::conflict(format!(
            "The ticket is {} and needs no approval",
            ticket.current_status()
        )));
    }
    if let Some(previous) = saga::latest_approval(&state.pool, ticket.id).await? {
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
    let at = Utc::now();
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
    let meta = metadata(Some(user.id), &user.request);
    let committed = state
        .approvals
        .execute(&id.to_string(), Some(0), meta.clone(), |_| {
            ApprovalCommand::RequestApproval {
                id,
                ticket_id: ticket.id,
                ticket_requester_id: ticket.requester_id,
                requested_by: user.id,
                steps: steps.clone(),
                reason: reason.clone(),
                at,
            }
        })
        .await
        .map_err(approval_error)?;
    crate::metrics::command_committed();
    let ticket_commit = nudge_ticket(&state, &meta, ticket.id).await;
    let mut response = approval_response(StatusCode::CREATED, &committed, ticket_commit);
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/approvals/{id}")) {
        response.headers_mut().insert(LOCATION, v);
    }
    Ok(response)
}

/// Requests the policy's approval for a ticket just opened, when it is a change request and
/// a policy is configured, and marks the ticket pending. The approval's id derives from the
/// ticket's, so a repeat never creates a second one. Returns the ticket as it now stands.
pub async fn on_ticket_created(
    state: &AppState,
    user: &AuthUser,
    committed: Committed<Ticket>,
) -> Result<Committed<Ticket>, ApiError> {
    let ticket = &committed.aggregate;
    if ticket.ticket_type != Some(TicketType::ChangeRequest) {
        return Ok(committed);
    }
    let policy = approval_policy::load(&state.pool, TicketType::ChangeRequest).await?;
    if policy.steps.is_empty() {
        return Ok(committed);
    }
    let steps = approval_policy::resolve(&state.pool, &policy.steps, ticket.requester_id).await?;
    if steps.is_empty() {
        tracing::warn!(
            ticket_id = ticket.id,
            "the approval policy resolves to no approver; no approval requested"
        );
        return Ok(committed);
    }
    let id = approval_policy::policy_approval_id(ticket.id);
    let mut meta = metadata(Some(user.id), &user.request);
    meta.insert("process".into(), "approval_policy".into());
    let at = Utc::now();
    let result = state
        .approvals
        .execute(&id.to_string(), None, meta.clone(), |_| {
            ApprovalCommand::RequestApproval {
                id,
                ticket_id: ticket.id,
                ticket_requester_id: ticket.requester_id,
                requested_by: user.id,
                steps: steps.clone(),
                reason: Some("Required by the change request approval policy".into()),
                at,
            }
        })
        .await;
    match result {
        Ok(_) => crate::metrics::command_committed(),
        Err(CommandError::Domain(ApprovalError::AlreadyExists)) => {}
        Err(e) => return Err(approval_error(e)),
    }
    if let Some(now) = nudge_ticket(state, &meta, ticket.id).await {
        return Ok(now);
    }
    // The approval process may have marked the ticket first: answer with the ticket as it
    // stands now, not as it was opened.
    let (aggregate, version) = state
        .tickets
        .load(&ticket.id.to_string())
        .await
        .map_err(crate::http::tickets::command_error)?;
    if version == committed.version {
        return Ok(committed);
    }
    Ok(Committed {
        aggregate,
        version,
        token: crate::read::ticket_position(&state.pool, ticket.id, version)
            .await
            .or(committed.token),
        appended: 0,
    })
}

/// One approval, loaded from its events.
#[utoipa::path(get, path = "/{id}", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Approval id")),
    responses((status = 200, body = ApprovalView), (status = 404, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ValidationErrorBody)))]
async fn find_approval(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<axum::Json<ApprovalView>, ApiError> {
    let (approval, version) = load_visible(&state, &user, id).await?;
    Ok(axum::Json(ApprovalView::from_aggregate(
        &approval,
        version as i64,
    )))
}

/// Approve or reject the current step. 403 for someone who is not an approver of the current
/// step; 409 when already decided, delegated, not yet this step's turn, or no longer pending.
/// One rejection rejects the approval.
#[utoipa::path(post, path = "/{id}/decisions", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Approval id")), request_body = ApprovalDecisionCreate,
    responses((status = 200, body = ApprovalView, headers(("X-Consistency-Token" = String))),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ValidationErrorBody)))]
async fn decide_approval(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<ApprovalDecisionCreate>,
) -> Result<Response, ApiError> {
    let comment = decision_comment(body.comment)?;
    load_visible(&state, &user, id).await?;
    let at = Utc::now();
    let committed = run(&state, &user, id, |_| ApprovalCommand::Decide {
        approver_id: user.id,
        decision: body.decision,
        comment: comment.clone(),
        at,
    })
    .await?;
    let meta = metadata(Some(user.id), &user.request);
    let ticket_commit = if committed.aggregate.is_pending() {
        None
    } else {
        nudge_ticket(&state, &meta, committed.aggregate.ticket_id).await
    };
    Ok(approval_response(StatusCode::OK, &committed, ticket_commit))
}

/// Hand your decision on the current step to another user, once. The delegate may not
/// delegate it further.
#[utoipa::path(post, path = "/{id}/delegate", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Approval id")), request_body = ApprovalDelegate,
    responses((status = 200, body = ApprovalView, headers(("X-Consistency-Token" = String))),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ValidationErrorBody)))]
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
    let at = Utc::now();
    let committed = run(&state, &user, id, |_| ApprovalCommand::Delegate {
        from_user_id: user.id,
        to_user_id: body.to_user_id,
        comment: comment.clone(),
        at,
    })
    .await?;
    Ok(approval_response(StatusCode::OK, &committed, None))
}

/// Withdraw a pending approval: the ticket's requester, whoever requested the approval, or
/// staff. The ticket is no longer blocked by it.
#[utoipa::path(post, path = "/{id}/cancel", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Approval id")),
    responses((status = 200, body = ApprovalView, headers(("X-Consistency-Token" = String))),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)))]
async fn cancel_approval(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Response, ApiError> {
    load_visible(&state, &user, id).await?;
    let at = Utc::now();
    let committed = run(&state, &user, id, |_| ApprovalCommand::Cancel {
        by: user.id,
        by_staff: user.is_staff(),
        at,
    })
    .await?;
    let meta = metadata(Some(user.id), &user.request);
    let ticket_commit = nudge_ticket(&state, &meta, committed.aggregate.ticket_id).await;
    Ok(approval_response(StatusCode::OK, &committed, ticket_commit))
}

/// List approvals, newest first; `mine=true` gives the caller's inbox: the approvals whose
/// current step waits on the caller's decision. Requesters only see approvals of their own
/// tickets and those they take part in.
#[utoipa::path(get, path = "/", tag = "approvals", security(("bearer" = [])),
    params(ApprovalListQueryParams, ("X-Consistency-Token" = Option<String>, Header, description = "Wait until this write is visible")),
    responses((status = 200, body = ApprovalListResponse), (status = 422, body = crate::error::ValidationErrorBody),
              (status = 503, body = crate::error::ErrorBody)))]
async fn list_approvals(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppQuery(query): AppQuery<ApprovalListQueryParams>,
) -> Result<axum::Json<Page<ApprovalView>>, ApiError> {
    let mut v = Validator::default();
    let (page, size, offset) = read::paging(&mut v, query.page, query.size);
    let mut statuses: Vec<String> = Vec::new();
    for part in query
        .status
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match ApprovalStatus::parse(part).filter(|s| *s != ApprovalStatus::None) {
            Some(s) => statuses.push(s.as_str().into()),
            None => v.check_query(false, "status", &format!("Unknown status '{part}'")),
        }
    }
    v.finish()?;
    read::wait_for_token(
        &state,
        &headers,
        &[projections::approvals::ApprovalsProjection::NAME],
    )
    .await?;

    let mine = query.mine.unwrap_or(false);
    let mut args = PgArguments::default();
    let mut conds: Vec<String> = vec!["true".into()];
    let mut n = 0;
    macro_rules! push {
        ($value:expr) => {{
            n += 1;
            args.add($value).map_err(ApiError::internal)?;
            format!("${n}")
        }};
    }
    let (from, order) = if mine {
        let p = push!(user.id);
        conds.push(format!("i.user_id = {p}"));
        (
            "rm_approval_inbox i join rm_approvals a on a.id = i.approval_id",
            "i.since desc, i.approval_id",
        )
    } else {
        if !user.is_staff() {
            let p = push!(vec![user.id]);
            conds.push(format!("a.participant_ids @> {p}"));
        }
        ("rm_approvals a", "a.created_at desc, a.id desc")
    };
    if !statuses.is_empty() {
        let p = push!(statuses);
        conds.push(format!("a.status = any({p})"));
    }
    if let Some(ticket_id) = query.ticket_id {
        let p = push!(ticket_id);
        conds.push(format!("a.ticket_id = {p}"));
    }
    let where_sql = conds.join(" and ");
    let count_args = args.clone();
    let limit = push!(size);
    let off = push!(offset);
    let rows: Vec<(serde_json::Value, i64)> = sqlx::query_as_with(
        &format!(
            "select a.state, a.version from {from} where {where_sql}
              order by {order} limit {limit} offset {off}"
        ),
        args,
    )
    .fetch_all(&state.pool)
    .await?;
    let total: i64 = if offset == 0 && (rows.len() as i64) < size {
        rows.len() as i64
    } else {
        let (t,): (i64,) = sqlx::query_as_with(
            &format!("select count(*) from {from} where {where_sql}"),
            count_args,
        )
        .fetch_one(&state.pool)
        .await?;
        t
    };
    let mut items = Vec::with_capacity(rows.len());
    for (state_json, version) in rows {
        let approval: Approval = serde_json::from_value(state_json).map_err(ApiError::internal)?;
        items.push(ApprovalView::from_aggregate(&approval, version));
    }
    Ok(axum::Json(Page::new(items, total, page, size)))
}

/// The approval policy of change requests: the approval every new `change_request` ticket
/// gets (admins only).
#[utoipa::path(get, path = "/policy", tag = "approvals", security(("bearer" = [])),
    responses((status = 200, body = ApprovalPolicy), (status = 403, body = crate::error::ErrorBody)))]
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
    responses((status = 200, body = ApprovalPolicy), (status = 403, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ValidationErrorBody)))]
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
    Ok(axum::Json(
        approval_policy::save(&state.pool, TicketType::ChangeRequest, &steps, user.id).await?,
    ))
}
