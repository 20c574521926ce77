//! The ticket use cases: opening, editing, moving and assigning tickets through the Ticket
//! aggregate, who may see which ticket, and the ticket as responses show it. Lists and search
//! are in `list`.

pub mod list;

use aggregates::ticket::{
    Ticket, TicketChanges, TicketCommand, TicketError, TicketEvent, TicketFields,
};
use aggregates::{ApprovalStatus, Priority, TicketStatus, TicketType};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use projections::sla::Sla;
use projections::tickets::queries::{sla_of_events, standing_after, ticket_sla};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::service::auth::AuthUser;
use crate::service::error::{capitalise, Error, FieldError, Validator};
use crate::service::event_store::Numbering;
use crate::service::executor::{CommandError, Committed};
use crate::service::Services;

/// A ticket in full, as the aggregate holds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketDetail {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub status: TicketStatus,
    pub priority: Priority,
    #[serde(rename = "type")]
    pub ticket_type: TicketType,
    pub requester_id: i64,
    /// The requester's display name.
    pub requester_name: Option<String>,
    pub assignee_id: Option<i64>,
    /// The assignee's display name; `null` when unassigned.
    pub assignee_name: Option<String>,
    pub tags: Vec<String>,
    pub item_ids: Vec<i64>,
    pub approval_status: ApprovalStatus,
    /// The ticket's version (its last event's sequence); also the `ETag`.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub first_response_at: Option<DateTime<Utc>>,
    /// True once deleted (cancelled and hidden from lists).
    pub deleted: bool,
    /// The statuses this ticket may move to now.
    pub allowed_transitions: Vec<TicketStatus>,
    /// The SLA at the time of the request (of `as_of` for a past state).
    pub sla: Sla,
}

impl TicketDetail {
    /// Renders an aggregate at a version, with its SLA standing.
    pub fn from_aggregate(t: &Ticket, version: usize, sla: Sla) -> Self {
        TicketDetail {
            id: t.id,
            title: t.title.clone(),
            description: t.description.clone(),
            status: t.current_status(),
            priority: t.priority.unwrap_or(Priority::Medium),
            ticket_type: t.ticket_type.unwrap_or(TicketType::Issue),
            requester_id: t.requester_id,
            requester_name: None,
            assignee_id: t.assignee_id,
            assignee_name: None,
            tags: t.tags.clone(),
            item_ids: t.item_ids.clone(),
            approval_status: t.current_approval_status(),
            version: version as i64,
            created_at: t.created_at.unwrap_or_default(),
            updated_at: t.updated_at.unwrap_or_default(),
            resolved_at: t.resolved_at,
            first_response_at: t.first_response_at,
            deleted: t.deleted,
            allowed_transitions: t.allowed_next_states(),
            sla,
        }
    }
}

/// A ticket at `version` as responses show it, with its SLA now: the list row's clock,
/// carried through the events the projection has not applied yet.
pub async fn detail(
    services: &Services,
    t: &Ticket,
    version: usize,
) -> Result<TicketDetail, Error> {
    let now = services.clock.now();
    // An existing ticket always has a clock; the default (`none`) is never shown.
    let sla = ticket_sla(&services.pool, t.id, version as i64, now)
        .await?
        .unwrap_or_default();
    named_detail(services, t, version, sla).await
}

/// The detail of `t` at `version` with `sla`, its people's names filled in.
async fn named_detail(
    services: &Services,
    t: &Ticket,
    version: usize,
    sla: Sla,
) -> Result<TicketDetail, Error> {
    let mut detail = TicketDetail::from_aggregate(t, version, sla);
    services.names.fill(&services.pool, &mut detail).await?;
    Ok(detail)
}

/// The answer to a command on a ticket: [`detail`], but for a ticket whose every event the
/// command itself appended (a new ticket) the SLA is folded from those events in memory with
/// the cached policy, without reading them back from the log.
pub async fn detail_committed(
    services: &Services,
    committed: &Committed<Ticket>,
) -> Result<TicketDetail, Error> {
    let Committed {
        aggregate,
        version,
        events,
        ..
    } = committed;
    if events.is_empty() {
        // Not a new ticket (only a create keeps its events): from the row and the log.
        return detail(services, aggregate, *version).await;
    }
    let ctx = services.policies.sla(&services.pool).await?;
    let numbered: Vec<(i64, TicketEvent)> = (1..).zip(events.iter().cloned()).collect();
    let sla = standing_after(None, &numbered, &ctx, services.clock.now()).unwrap_or_default();
    named_detail(services, aggregate, *version, sla).await
}

crate::service::names::named_ticket!(TicketDetail);

/// A ticket as it was at `as_of`, with its SLA as it stood then (None if it did not exist).
pub async fn detail_as_of(
    services: &Services,
    id: i64,
    as_of: DateTime<Utc>,
) -> Result<Option<TicketDetail>, Error> {
    let events = crate::service::history::ticket_events_as_of(&services.pool, id, as_of).await?;
    let mut ticket = Ticket::default();
    for (_, event) in &events {
        ticket.apply(event.clone());
    }
    let Some(version) = events.last().map(|(sequence, _)| *sequence as usize) else {
        return Ok(None);
    };
    if !ticket.exists() {
        return Ok(None);
    }
    let sla = sla_of_events(&services.pool, &events, as_of)
        .await?
        .unwrap_or_default();
    named_detail(services, &ticket, version, sla)
        .await
        .map(Some)
}

/// A tag: 1 to 50 characters, not only spaces (documentation of `tags` items).
pub struct Tag;

impl utoipa::PartialSchema for Tag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .min_length(Some(1))
            .max_length(Some(50))
            .pattern(Some(r"\S"))
            .into()
    }
}

impl ToSchema for Tag {}

/// Body of `POST /tickets`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TicketCreate {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub title: String,
    #[serde(default)]
    #[schema(max_length = 20000)]
    pub description: String,
    /// Defaults to `medium`.
    pub priority: Option<Priority>,
    /// Defaults to `issue`.
    #[serde(rename = "type")]
    pub ticket_type: Option<TicketType>,
    #[schema(value_type = Option<Vec<Tag>>, max_items = 20)]
    pub tags: Option<Vec<String>>,
    #[schema(max_items = 50)]
    pub item_ids: Option<Vec<i64>>,
    /// Whose ticket it is (agents and up, for a ticket on someone's behalf); the caller when
    /// absent. A requester naming someone else gets 403.
    pub requester_id: Option<i64>,
}

/// Body of `PATCH /tickets/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TicketUpdate {
    /// Replaces the tags.
    #[schema(value_type = Option<Vec<Tag>>, max_items = 20)]
    pub tags: Option<Vec<String>>,
    /// Replaces the linked items.
    #[schema(max_items = 50)]
    pub item_ids: Option<Vec<i64>>,
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub title: Option<String>,
    #[schema(max_length = 20000)]
    pub description: Option<String>,
    pub priority: Option<Priority>,
    #[serde(rename = "type")]
    pub ticket_type: Option<TicketType>,
}

/// Body of `PATCH /tickets/{id}/status`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TicketStatusUpdate {
    pub status: TicketStatus,
    pub reason: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// Body of `PATCH /tickets/{id}/assign`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TicketAssign {
    /// The agent to assign, or `null` to unassign.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, required = true)]
    pub assignee_id: Option<Option<i64>>,
}

pub fn clean_tags(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim().to_lowercase();
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

pub fn validate_fields(
    v: &mut Validator,
    title: Option<&str>,
    description: Option<&str>,
    tags: Option<&[String]>,
    item_ids: Option<&[i64]>,
) {
    if let Some(title) = title {
        let n = title.trim().chars().count();
        v.check(n >= 1, "title", "Title is required");
        v.check(n <= 200, "title", "Title must be at most 200 characters");
    }
    if let Some(d) = description {
        v.check(
            d.chars().count() <= 20_000,
            "description",
            "Description must be at most 20000 characters",
        );
    }
    if let Some(tags) = tags {
        v.check(tags.len() <= 20, "tags", "At most 20 tags");
        v.check(
            tags.iter().all(|t| {
                let n = t.trim().chars().count();
                (1..=50).contains(&n)
            }),
            "tags",
            "Each tag must have 1 to 50 characters",
        );
    }
    if let Some(ids) = item_ids {
        v.check(ids.len() <= 50, "item_ids", "At most 50 items");
        v.check(
            ids.iter().all(|i| *i > 0),
            "item_ids",
            "Item ids are positive integers",
        );
    }
}

/// Maps a command failure to the API's answer.
pub fn command_error(e: CommandError<TicketError>) -> Error {
    Error::from_command(e, "ticket", |e| match e {
        TicketError::NotFound => Error::not_found("Ticket"),
        TicketError::IllegalTransition { from, to, allowed } => Error::Conflict {
            detail: format!("A ticket cannot move from {from} to {to}"),
            extra: Some(serde_json::json!({ "allowed": allowed })),
        },
        TicketError::CommentNotFound => Error::not_found("Comment"),
        TicketError::AttachmentNotFound => Error::not_found("Attachment"),
        TicketError::ParentNotFound => {
            Error::field("parent_id", "The parent comment is not on this ticket")
        }
        other => Error::conflict(capitalise(&other.to_string())),
    })
}

/// Loads a ticket the caller may see, else 404 (requesters only see their own).
pub async fn load_visible(
    services: &Services,
    user: &AuthUser,
    id: i64,
) -> Result<(Ticket, usize), Error> {
    let (ticket, version) = services
        .tickets
        .load(&id.to_string())
        .await
        .map_err(command_error)?;
    if !ticket.exists() || (!user.is_staff() && ticket.requester_id != user.id) {
        return Err(Error::not_found("Ticket"));
    }
    Ok((ticket, version))
}

/// Runs a command on ticket `id` as `user`, recording who did it; the caller has already
/// checked that the user may act on this ticket.
pub async fn execute_checked(
    services: &Services,
    user: &AuthUser,
    id: i64,
    expected: Option<usize>,
    command: impl Fn(&Ticket) -> TicketCommand,
) -> Result<Committed<Ticket>, Error> {
    let committed = services
        .tickets
        .execute(&id.to_string(), expected, user.actor.metadata(), command)
        .await
        .map_err(command_error)?;
    if committed.appended > 0 {
        crate::service::metrics::command_committed();
    }
    Ok(committed)
}

/// Runs a command on a ticket the caller may see.
pub async fn execute_visible<C>(
    services: &Services,
    user: &AuthUser,
    id: i64,
    expected: Option<usize>,
    command: C,
) -> Result<Committed<Ticket>, Error>
where
    C: Fn(&Ticket) -> TicketCommand,
{
    load_visible(services, user, id).await?;
    let mut committed = execute_checked(services, user, id, expected, command).await?;
    if committed.appended == 0 && committed.token.is_none() {
        committed.token = services
            .tickets
            .position_of(&id.to_string(), committed.version)
            .await;
    }
    Ok(committed)
}

/// Where a new ticket's number comes from: `ticket_id_seq`, taken by the append, written into
/// its `TicketOpened` (the search walk relies on numbers following creation order).
const NUMBERING: Numbering = Numbering {
    sequence: "ticket_id_seq",
    payload_path: &["TicketOpened", "id"],
};

/// Opens a ticket with `user` as its requester (the approval policy is applied after, by
/// `approvals::on_ticket_created`).
pub async fn open(
    services: &Services,
    user: &AuthUser,
    body: TicketCreate,
) -> Result<Committed<Ticket>, Error> {
    let mut v = Validator::default();
    validate_fields(
        &mut v,
        Some(&body.title),
        Some(&body.description),
        body.tags.as_deref(),
        body.item_ids.as_deref(),
    );
    v.finish()?;
    let requester_id = requester_of(services, user, &body).await?;
    let item_ids = body.item_ids.unwrap_or_default();
    crate::service::items::check_items_exist(&services.pool, &item_ids).await?;
    let fields = TicketFields {
        title: body.title.trim().to_string(),
        description: body.description,
        priority: body.priority.unwrap_or(Priority::Medium),
        ticket_type: body.ticket_type.unwrap_or(TicketType::Issue),
        tags: clean_tags(body.tags.unwrap_or_default()),
        item_ids,
    };
    // The number comes with the append (`NUMBERING`); the command is decided with 0.
    let command = TicketCommand::OpenTicket {
        id: 0,
        requester_id,
        fields,
        at: crate::service::now(),
    };
    let committed = services
        .tickets
        .create_numbered(
            NUMBERING,
            user.actor.metadata(),
            command,
            |event, number| {
                if let TicketEvent::TicketOpened { id, .. } = event {
                    *id = number;
                }
            },
        )
        .await
        .map_err(command_error)?;
    crate::service::metrics::command_committed();
    Ok(committed)
}

/// Whose a new ticket is: the caller, or for staff the active user they name; a requester
/// also gets only the priority and type the requester policy allows.
async fn requester_of(
    services: &Services,
    user: &AuthUser,
    body: &TicketCreate,
) -> Result<i64, Error> {
    if !user.is_staff() {
        if body.requester_id.is_some_and(|id| id != user.id) {
            return Err(Error::Forbidden(
                "requester_id: only agents can open a ticket for someone else".into(),
            ));
        }
        services
            .policies
            .requester(&services.pool)
            .await?
            .check_fields(body.priority, body.ticket_type)?;
        return Ok(user.id);
    }
    let Some(id) = body.requester_id.filter(|id| *id != user.id) else {
        return Ok(user.id);
    };
    let active: Option<bool> = sqlx::query_scalar("select is_active from users where id = $1")
        .bind(id)
        .fetch_optional(&services.pool)
        .await?;
    if active != Some(true) {
        return Err(Error::field(
            "requester_id",
            "The requester must be an active user",
        ));
    }
    Ok(id)
}

/// Changes a ticket's fields (requesters may edit their own tickets, within the requester
/// policy).
pub async fn update(
    services: &Services,
    user: &AuthUser,
    id: i64,
    expected: Option<usize>,
    body: TicketUpdate,
) -> Result<Committed<Ticket>, Error> {
    let mut v = Validator::default();
    validate_fields(
        &mut v,
        body.title.as_deref(),
        body.description.as_deref(),
        body.tags.as_deref(),
        body.item_ids.as_deref(),
    );
    v.finish()?;
    let item_ids = body.item_ids.as_deref().unwrap_or_default();
    crate::service::items::check_items_exist(&services.pool, item_ids).await?;
    let tags = body.tags.map(clean_tags);
    if !user.is_staff() {
        let (ticket, _) = load_visible(services, user, id).await?;
        services
            .policies
            .requester(&services.pool)
            .await?
            .check_fields(
                body.priority.filter(|p| ticket.priority != Some(*p)),
                body.ticket_type.filter(|t| ticket.ticket_type != Some(*t)),
            )?;
    }
    let at = crate::service::now();
    execute_visible(services, user, id, expected, |_| {
        TicketCommand::UpdateTicket {
            asked: TicketChanges {
                title: body.title.as_ref().map(|t| t.trim().to_string()),
                description: body.description.clone(),
                priority: body.priority,
                ticket_type: body.ticket_type,
                tags: tags.clone(),
                item_ids: body.item_ids.clone(),
            },
            at,
        }
    })
    .await
}

/// Deletes a ticket: it is cancelled and hidden from lists; its history stays.
pub async fn delete(
    services: &Services,
    user: &AuthUser,
    id: i64,
    expected: Option<usize>,
) -> Result<Committed<Ticket>, Error> {
    let at = crate::service::now();
    execute_visible(services, user, id, expected, |_| {
        TicketCommand::DeleteTicket { reason: None, at }
    })
    .await
}

/// 422 unless a status change's reason fits.
pub fn check_reason(reason: Option<&str>) -> Result<(), Error> {
    let mut v = Validator::default();
    v.check(
        reason.is_none_or(|r| r.chars().count() <= 2000),
        "reason",
        "Reason must be at most 2000 characters",
    );
    v.finish()
}

/// 403 unless `user` may move a ticket they can see to `status`: requesters may only close,
/// reopen or cancel.
pub fn check_status_allowed(user: &AuthUser, status: TicketStatus) -> Result<(), Error> {
    if user.is_staff()
        || matches!(
            status,
            TicketStatus::Closed | TicketStatus::Open | TicketStatus::Cancelled
        )
    {
        return Ok(());
    }
    Err(Error::Forbidden(
        "Requesters may only close, reopen or cancel their tickets".into(),
    ))
}

/// 403 unless the requester policy lets a requester move `ticket` to `status` now.
pub async fn check_requester_move(
    services: &Services,
    ticket: &Ticket,
    status: TicketStatus,
) -> Result<(), Error> {
    services
        .policies
        .requester(&services.pool)
        .await?
        .check_move(
            ticket.current_status(),
            ticket.resolved_at,
            status,
            services.clock.now(),
        )
}

/// Moves a ticket through its state machine; requesters may only close, reopen or cancel
/// their own tickets.
pub async fn change_status(
    services: &Services,
    user: &AuthUser,
    id: i64,
    expected: Option<usize>,
    body: TicketStatusUpdate,
) -> Result<Committed<Ticket>, Error> {
    check_reason(body.reason.as_deref())?;
    if !user.is_staff() {
        let (ticket, _) = load_visible(services, user, id).await?;
        check_status_allowed(user, body.status)?;
        check_requester_move(services, &ticket, body.status).await?;
    }
    check_status_allowed(user, body.status)?;
    let at = crate::service::now();
    execute_visible(services, user, id, expected, |_| {
        TicketCommand::ChangeStatus {
            status: body.status,
            reason: body.reason.clone(),
            at,
        }
    })
    .await
}

/// 422 unless `assignee_id` is an active agent (or none: unassigned).
pub async fn check_assignee(pool: &sqlx::PgPool, assignee_id: Option<i64>) -> Result<(), Error> {
    let Some(assignee) = assignee_id else {
        return Ok(());
    };
    let ok = crate::service::users::find_by_id(pool, assignee)
        .await?
        .is_some_and(|u| u.is_active && u.role().is_staff());
    if ok {
        Ok(())
    } else {
        Err(Error::field(
            "assignee_id",
            "The assignee must be an active agent",
        ))
    }
}

/// Assigns a ticket to an active agent, or unassigns it (agents and up). `expected` is the
/// version the caller holds, or why it could not be read (answered after the permission
/// check, so that requesters learn nothing more).
pub async fn assign(
    services: &Services,
    user: &AuthUser,
    id: i64,
    expected: Result<Option<usize>, Error>,
    body: TicketAssign,
) -> Result<Committed<Ticket>, Error> {
    if !user.is_staff() {
        // Hide whether the ticket exists from requesters who do not own it.
        load_visible(services, user, id).await?;
        return Err(Error::Forbidden("Only agents can assign tickets".into()));
    }
    let expected = expected?;
    let Some(assignee_id) = body.assignee_id else {
        return Err(Error::Validation(vec![FieldError::body(
            "assignee_id",
            "Field 'assignee_id' is required (null unassigns)",
            "missing",
        )]));
    };
    check_assignee(&services.pool, assignee_id).await?;
    let at = crate::service::now();
    execute_visible(services, user, id, expected, |_| {
        TicketCommand::AssignTicket { assignee_id, at }
    })
    .await
}
