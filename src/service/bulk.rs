//! Bulk actions on the queue (agents and up): the same changes, comment or macro on up to 100
//! tickets. Each ticket is its own command (a `TicketCommand::Batch` when it makes several
//! changes), through the same rules as a single request, so each answers for itself: the
//! tickets whose move is legal change, the others say why not. No transaction spans tickets.

use std::collections::HashMap;

use aggregates::ticket::{Ticket, TicketCommand};
use aggregates::Role;
use futures::StreamExt;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::service::auth::AuthUser;
use crate::service::error::{Error, Validator};
use crate::service::executor::Committed;
use crate::service::macros::{self, Macro, TicketActions};
use crate::service::tickets::{execute_visible, load_visible};
use crate::service::Services;

/// Most tickets in one bulk request.
pub const MAX_TICKETS: usize = 100;
/// Tickets of one bulk request worked on at once.
const CONCURRENCY: usize = 4;

/// A comment added to every ticket of a bulk request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkComment {
    #[schema(min_length = 1, max_length = 20000)]
    pub content: String,
    #[serde(default)]
    pub is_internal: bool,
}

/// Body of `POST /tickets/bulk`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// The tickets, 1 to 100, each once.
    #[schema(min_items = 1, max_items = 100)]
    pub ticket_ids: Vec<i64>,
    /// The version of each ticket the agent saw (`{"<ticket_id>": <version>}`): a ticket
    /// changed since gets 412 and is left as it is.
    #[serde(default)]
    pub versions: HashMap<String, i64>,
    /// The changes (`{}` for none: a comment or macro only).
    #[serde(deserialize_with = "crate::service::objects::object")]
    pub changes: TicketActions,
    pub comment: Option<BulkComment>,
    /// A macro applied to every ticket (its reply and changes, before `changes`).
    pub macro_id: Option<i64>,
}

/// What a bulk request will do to each ticket, checked once.
struct Plan {
    changes: TicketActions,
    comment: Option<BulkComment>,
    macro_: Option<Macro>,
    versions: HashMap<i64, usize>,
}

async fn plan(services: &Services, user: &AuthUser, body: BulkRequest) -> Result<Plan, Error> {
    let mut v = Validator::default();
    let mut seen = std::collections::HashSet::new();
    v.check(
        (1..=MAX_TICKETS).contains(&body.ticket_ids.len())
            && body.ticket_ids.iter().all(|id| *id > 0 && seen.insert(*id)),
        "ticket_ids",
        "Give 1 to 100 ticket numbers, each once",
    );
    let mut versions = HashMap::new();
    for (key, version) in &body.versions {
        match key.parse::<i64>() {
            Ok(id) if seen.contains(&id) && *version >= 0 => {
                versions.insert(id, *version as usize);
            }
            _ => v.check(
                false,
                "versions",
                "Versions are given for tickets of the request, as {\"<ticket_id>\": <version>}",
            ),
        }
    }
    body.changes.check(&mut v, "changes");
    if let Some(c) = &body.comment {
        let n = c.content.trim().chars().count();
        v.check(
            n >= 1 && c.content.chars().count() <= 20_000,
            "comment",
            "The comment must be 1 to 20000 characters",
        );
    }
    v.check(
        !body.changes.is_empty() || body.comment.is_some() || body.macro_id.is_some(),
        "changes",
        "Nothing to do: give changes, a comment or a macro",
    );
    v.finish()?;
    body.changes.check_assignee(&services.pool, user).await?;
    let macro_ = match body.macro_id {
        Some(id) => Some(
            macros::find(services, user, id)
                .await
                .map_err(|_| Error::field("macro_id", "No such macro"))?,
        ),
        None => None,
    };
    if let Some(m) = &macro_ {
        m.changes.check_assignee(&services.pool, user).await?;
    }
    Ok(Plan {
        changes: body.changes,
        comment: body.comment,
        macro_,
        versions,
    })
}

/// Runs a bulk request: each ticket in the order given, with what it alone would have got.
pub async fn run(
    services: &Services,
    user: &AuthUser,
    body: BulkRequest,
) -> Result<Vec<(i64, Result<Committed<Ticket>, Error>)>, Error> {
    user.require(Role::Agent)?;
    let ids = body.ticket_ids.clone();
    let plan = plan(services, user, body).await?;
    // A few tickets at a time (each its own command and transaction), answered in the
    // order given.
    let plan = &plan;
    Ok(futures::stream::iter(ids)
        .map(|id| async move { (id, one(services, user, plan, id).await) })
        .buffered(CONCURRENCY)
        .collect()
        .await)
}

async fn one(
    services: &Services,
    user: &AuthUser,
    plan: &Plan,
    id: i64,
) -> Result<Committed<Ticket>, Error> {
    let (ticket, _) = load_visible(services, user, id).await?;
    let at = crate::service::now();
    let macro_reply = match &plan.macro_ {
        Some(m) => macros::reply(services, user, m, &ticket, at).await?,
        None => None,
    };
    let comment = match &plan.comment {
        Some(c) => Some(TicketCommand::AddComment {
            comment_id: Uuid::new_v4(),
            author_id: user.id,
            by_staff: true,
            mentions: crate::service::comments::resolve_mentions(
                &services.pool,
                &c.content,
                c.is_internal,
                &ticket,
            )
            .await?,
            content: c.content.clone(),
            is_internal: c.is_internal,
            parent_id: None,
            then_status: None,
            at,
        }),
        None => None,
    };
    let expected = plan.versions.get(&id).copied();
    let changes = match &plan.macro_ {
        Some(m) => m.changes.then(&plan.changes),
        None => plan.changes.clone(),
    };
    let replies: Vec<&TicketCommand> = macro_reply.iter().chain(comment.iter()).collect();
    execute_visible(services, user, id, expected, |t| {
        TicketCommand::Batch(macros::batch(&changes, &replies, t, user, at))
    })
    .await
}
