//! The approval use cases: requesting an approval on a ticket, deciding, delegating and
//! cancelling it through the Approval aggregate, who may see which approval, the policy's
//! approval for a new change request, and the approval as responses show it.

use std::collections::{BTreeSet, HashMap};

use aggregates::approval::{
    Approval, ApprovalCommand, ApprovalError, ApprovalRequest, Decision, Step, StepSpec,
};
use aggregates::ticket::Ticket;
use aggregates::{ApprovalStatus, Priority, TicketType};
use chrono::{DateTime, Utc};
use projections::approvals::queries::{self, ApprovalFilter};
use projections::approvals::ApprovalRow;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::service::approval_policy::{self, MAX_APPROVERS};
use crate::service::approval_process;
use crate::service::auth::AuthUser;
use crate::service::error::{capitalise, Error, FieldError, Validator};
use crate::service::executor::{CommandError, Committed};
use crate::service::names::{NameMap, Named};
use crate::service::paging::{paging, Page};
use crate::service::tickets::list::parse_list;
use crate::service::Services;

/// An approval as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalView {
    pub id: Uuid,
    pub ticket_id: i64,
    pub status: ApprovalStatus,
    /// The 0-based index of the step being decided (where it ended, once finished).
    pub current_step: usize,
    /// The steps in order, with their effective approvers, decisions and delegations.
    #[schema(value_type = Vec<Step>)]
    pub steps: serde_json::Value,
    /// Who asked for the approval.
    pub requested_by: i64,
    pub requested_by_name: Option<String>,
    /// The ticket's requester.
    pub ticket_requester_id: i64,
    pub ticket_requester_name: Option<String>,
    /// The ticket's title and priority now (`null` if the ticket is gone from the list).
    pub ticket_title: Option<String>,
    pub ticket_priority: Option<Priority>,
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
            steps: serde_json::to_value(&a.steps).unwrap_or_default(),
            requested_by: a.requested_by,
            requested_by_name: None,
            ticket_requester_id: a.ticket_requester_id,
            ticket_requester_name: None,
            ticket_title: None,
            ticket_priority: None,
            reason: a.reason.clone(),
            waiting_on: a.waiting_on(),
            version,
            created_at,
            updated_at: a.updated_at.unwrap_or(created_at),
            finished_at: a.finished_at,
        }
    }

    /// Renders a row of the approvals read model.
    pub fn from_row(row: ApprovalRow) -> Self {
        ApprovalView {
            id: row.id,
            ticket_id: row.ticket_id,
            status: ApprovalStatus::parse(&row.status).unwrap_or(ApprovalStatus::None),
            current_step: row.current_step.max(0) as usize,
            steps: row.steps,
            requested_by: row.requested_by,
            requested_by_name: None,
            ticket_requester_id: row.ticket_requester_id,
            ticket_requester_name: None,
            ticket_title: None,
            ticket_priority: None,
            reason: row.reason,
            waiting_on: row.waiting_on,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            finished_at: row.finished_at,
        }
    }
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
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<i64>,
}

/// Checks the query of `GET /approvals` and turns it into the read model's filter with the
/// page number: requesters see only the approvals they take part in.
pub fn approval_filter(
    user: &AuthUser,
    query: &ApprovalListQueryParams,
) -> Result<(ApprovalFilter, i64), Error> {
    let mut v = Validator::default();
    let (page, size, offset) = paging(&mut v, query.page, query.size);
    let not_none = |s: &str| ApprovalStatus::parse(s).filter(|s| *s != ApprovalStatus::None);
    let statuses = parse_list(&mut v, "status", query.status.as_deref(), not_none);
    v.finish()?;
    let mine = query.mine.unwrap_or(false);
    let filter = ApprovalFilter {
        waiting_on: mine.then_some(user.id),
        participant: (!mine && !user.is_staff()).then_some(user.id),
        statuses: statuses.iter().map(|s| s.as_str().to_string()).collect(),
        ticket_id: query.ticket_id,
        offset,
        size,
    };
    Ok((filter, page))
}

/// A page of approvals of the read model, with names and their tickets' context.
pub async fn list_approvals(
    services: &Services,
    filter: &ApprovalFilter,
    page: i64,
) -> Result<Page<ApprovalView>, Error> {
    let (rows, total) = queries::list_approvals(&services.pool, filter).await?;
    let mut items: Vec<ApprovalView> = rows.into_iter().map(ApprovalView::from_row).collect();
    present(services, &mut items).await?;
    Ok(Page::new(items, total, page, filter.size))
}

/// Fills what approval responses show beside the ids: the people's names (in the steps too:
/// `approver_names` beside `approver_ids`, `approver_name` beside each decision's
/// `approver_id`, `from_user_name`/`to_user_name` in delegations) and each ticket's title and
/// priority from the ticket list, all in two queries.
pub async fn present(services: &Services, views: &mut [ApprovalView]) -> Result<(), Error> {
    services.names.fill(&services.pool, views).await?;
    let ids: Vec<i64> = views.iter().map(|v| v.ticket_id).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("select id, title, priority from rm_tickets where id = any($1)")
            .bind(&ids)
            .fetch_all(&services.pool)
            .await?;
    let context: HashMap<i64, (String, String)> =
        rows.into_iter().map(|(id, t, p)| (id, (t, p))).collect();
    for v in views {
        if let Some((title, priority)) = context.get(&v.ticket_id) {
            v.ticket_title = Some(title.clone());
            v.ticket_priority = Priority::parse(priority);
        }
    }
    Ok(())
}

/// The user ids in an approval's steps, under these keys (a list, or one id).
const STEP_PEOPLE: [&str; 4] = ["approver_ids", "approver_id", "from_user_id", "to_user_id"];

/// Calls `f` on every object in `value`, depth first.
fn each_object(
    value: &mut serde_json::Value,
    f: &mut dyn FnMut(&mut serde_json::Map<String, serde_json::Value>),
) {
    match value {
        serde_json::Value::Object(map) => {
            f(map);
            map.values_mut().for_each(|v| each_object(v, f));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| each_object(v, f)),
        _ => {}
    }
}

impl Named for ApprovalView {
    fn people(&self, ids: &mut Vec<i64>) {
        ids.push(self.requested_by);
        ids.push(self.ticket_requester_id);
        let mut steps = self.steps.clone();
        each_object(&mut steps, &mut |map| {
            for key in STEP_PEOPLE {
                match map.get(key) {
                    Some(serde_json::Value::Array(list)) => {
                        ids.extend(list.iter().filter_map(serde_json::Value::as_i64))
                    }
                    Some(v) => ids.extend(v.as_i64()),
                    None => {}
                }
            }
        });
    }
    fn take_names(&mut self, names: &NameMap) {
        self.requested_by_name = names.name(self.requested_by);
        self.ticket_requester_name = names.name(self.ticket_requester_id);
        each_object(&mut self.steps, &mut |map| {
            let mut add = Vec::new();
            for key in STEP_PEOPLE {
                let name_key = if key == "approver_ids" {
                    "approver_names".to_string()
                } else {
                    key.replace("_id", "_name")
                };
                match map.get(key) {
                    Some(serde_json::Value::Array(list)) => {
                        let list: Vec<serde_json::Value> =
                            list.iter().map(|v| json!(names.of(v.as_i64()))).collect();
                        add.push((name_key, serde_json::Value::Array(list)));
                    }
                    Some(v) => add.push((name_key, json!(names.of(v.as_i64())))),
                    None => {}
                }
            }
            map.extend(add);
        });
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

/// Maps a refused approval command to its API error (statuses as `ApprovalError` documents).
pub fn approval_error(e: CommandError<ApprovalError>) -> Error {
    Error::from_command(e, "approval", |e| match e {
        ApprovalError::NotFound => Error::not_found("Approval"),
        ApprovalError::InvalidSteps(msg) => Error::Validation(vec![FieldError {
            loc: vec![json!("body"), json!("steps")],
            msg: capitalise(&msg),
            kind: "value_error".into(),
        }]),
        ApprovalError::NotAnApprover | ApprovalError::NotAllowed => {
            Error::Forbidden(capitalise(&e.to_string()))
        }
        ApprovalError::AlreadyExists
        | ApprovalError::NotPending
        | ApprovalError::NotYourTurn
        | ApprovalError::AlreadyDecided
        | ApprovalError::AlreadyDelegated
        | ApprovalError::InvalidDelegate
        | ApprovalError::Delegated => Error::conflict(capitalise(&e.to_string())),
    })
}

/// Loads an approval the caller may see, else 404: staff see every approval; others those
/// of their own tickets, the ones they requested, and the ones they approve (or delegated).
pub async fn load_visible(
    services: &Services,
    user: &AuthUser,
    id: Uuid,
) -> Result<(Approval, usize), Error> {
    let (approval, version) = services
        .approvals
        .load(&id.to_string())
        .await
        .map_err(approval_error)?;
    if !approval.exists() || (!user.is_staff() && !approval.involves(user.id)) {
        return Err(Error::not_found("Approval"));
    }
    Ok((approval, version))
}

/// Brings the ticket in line with its latest approval now, so that the response (and the
/// caller's next request) sees it; the process manager guarantees it anyway, so a failure
/// here is only logged. Returns the position of the ticket's new event, if any.
pub async fn nudge_ticket(
    services: &Services,
    cause: &HashMap<String, String>,
    ticket_id: i64,
) -> Option<Committed<Ticket>> {
    match approval_process::reconcile_ticket(
        &services.tickets,
        &services.approvals,
        &services.pool,
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

/// Checks a decision's or delegation's comment (at most 2,000 characters) and returns it
/// trimmed, None when blank.
pub fn decision_comment(comment: Option<String>) -> Result<Option<String>, Error> {
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
pub async fn run(
    services: &Services,
    user: &AuthUser,
    id: Uuid,
    command: impl Fn(&Approval) -> ApprovalCommand,
) -> Result<Committed<Approval>, Error> {
    let committed = services
        .approvals
        .execute(&id.to_string(), None, user.actor.metadata(), command)
        .await
        .map_err(approval_error)?;
    crate::service::metrics::command_committed();
    Ok(committed)
}

/// Validates the steps of an approval request: shape, approvers that exist and are active.
pub async fn validate_request(services: &Services, body: &ApprovalCreate) -> Result<(), Error> {
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
    let active = approval_policy::active_users(&services.pool, &ids).await?;
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
        Err(Error::Validation(errors))
    }
}

/// An approval to request on a ticket.
pub struct Request<'a> {
    pub id: Uuid,
    pub ticket: &'a Ticket,
    pub requested_by: i64,
    pub steps: Vec<StepSpec>,
    pub reason: Option<String>,
}

/// Records the request of an approval (`expected`: the approval's version, `Some(0)` for a
/// new one) with `meta`.
pub async fn request_approval(
    services: &Services,
    request: Request<'_>,
    expected: Option<usize>,
    meta: &HashMap<String, String>,
) -> Result<Committed<Approval>, CommandError<ApprovalError>> {
    let at = crate::service::now();
    let id = request.id;
    let committed = services
        .approvals
        .execute(&id.to_string(), expected, meta.clone(), |_| {
            ApprovalCommand::RequestApproval(ApprovalRequest {
                id,
                ticket_id: request.ticket.id,
                ticket_requester_id: request.ticket.requester_id,
                requested_by: request.requested_by,
                steps: request.steps.clone(),
                reason: request.reason.clone(),
                at,
            })
        })
        .await?;
    crate::service::metrics::command_committed();
    Ok(committed)
}

/// Requests the policy's approval for a ticket just opened, when it is a change request and
/// a policy is configured, and marks the ticket pending. The approval's id derives from the
/// ticket's, so a repeat never creates a second one. Returns the ticket as it now stands.
pub async fn on_ticket_created(
    services: &Services,
    user: &AuthUser,
    committed: Committed<Ticket>,
) -> Result<Committed<Ticket>, Error> {
    let ticket = &committed.aggregate;
    if ticket.ticket_type != Some(TicketType::ChangeRequest) {
        return Ok(committed);
    }
    let policy = services.policies.change_approval(&services.pool).await?;
    if policy.steps.is_empty() {
        return Ok(committed);
    }
    let steps =
        approval_policy::resolve(&services.pool, &policy.steps, ticket.requester_id).await?;
    if steps.is_empty() {
        tracing::warn!(
            ticket_id = ticket.id,
            "the approval policy resolves to no approver; no approval requested"
        );
        return Ok(committed);
    }
    let id = approval_policy::policy_approval_id(ticket.id);
    let mut meta = user.actor.metadata();
    meta.insert("process".into(), "approval_policy".into());
    let request = Request {
        id,
        ticket,
        requested_by: user.id,
        steps,
        reason: Some("Required by the change request approval policy".into()),
    };
    let result = request_approval(services, request, None, &meta).await;
    match result {
        Ok(_) | Err(CommandError::Domain(ApprovalError::AlreadyExists)) => {}
        Err(e) => return Err(approval_error(e)),
    }
    if let Some(now) = nudge_ticket(services, &meta, ticket.id).await {
        return Ok(now);
    }
    // The approval process may have marked the ticket first: answer with the ticket as it
    // stands now, not as it was opened.
    let (aggregate, version) = services
        .tickets
        .load(&ticket.id.to_string())
        .await
        .map_err(crate::service::tickets::command_error)?;
    if version == committed.version {
        return Ok(committed);
    }
    Ok(Committed {
        aggregate,
        version,
        token: services
            .tickets
            .position_of(&ticket.id.to_string(), version)
            .await
            .or(committed.token),
        appended: 0,
        events: Vec::new(),
    })
}
