//! Macros (agents and up): a canned reply with placeholders and changes to the ticket, applied
//! in one command (`TicketCommand::Batch`): the reply and the changes are one request by one
//! person at one time in the history, committed together or not at all.
//!
//! Personal or shared, with the same rules as saved views: everyone on staff sees their own
//! macros and the shared ones (another person's personal macro is 404); owners change and
//! delete their own; shared macros are created, changed and deleted by managers and admins.
//! Placeholders (`{{ticket.id}}`, `{{ticket.title}}`, `{{requester.name}}`, `{{agent.name}}`)
//! are rendered by minijinja, strict about names: a macro with an unknown placeholder or bad
//! syntax is refused when it is saved.

use aggregates::ticket::{Ticket, TicketChanges, TicketCommand};
use aggregates::{Priority, Role, TicketStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use sqlx::{FromRow, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::service::auth::AuthUser;
use crate::service::error::{Error, Validator};
use crate::service::executor::Committed;
use crate::service::names::{NameMap, Named};
use crate::service::paging::Page;
use crate::service::tickets::{check_assignee, clean_tags, execute_visible, load_visible};
use crate::service::Services;

/// How many macros one person may keep, and how many shared macros a desk may have.
pub const MAX_MACROS: i64 = 200;
/// The longest reply a macro may hold.
pub const MAX_CONTENT: usize = 20_000;

/// What a macro (or a bulk action) changes on a ticket; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketActions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TicketStatus>,
    /// Why the status changes (bulk actions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// `"me"` (whoever applies it), an agent's id, or `null` to unassign; absent leaves the
    /// assignee as it is.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>, nullable)]
    pub assignee_id: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 20)]
    pub add_tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 20)]
    pub remove_tags: Vec<String>,
}

/// A field that is there, even as `null` (absent stays `None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl TicketActions {
    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.priority.is_none()
            && self.assignee_id.is_none()
            && self.add_tags.is_empty()
            && self.remove_tags.is_empty()
    }

    /// Adds a problem to `v` for each value out of range (`field` prefixes the names).
    pub fn check(&self, v: &mut Validator, field: &str) {
        if let Some(a) = &self.assignee_id {
            v.check(
                a.is_null() || a.as_str() == Some("me") || a.as_i64().is_some_and(|id| id > 0),
                &format!("{field}.assignee_id"),
                "The assignee is \"me\", an agent's id or null",
            );
        }
        for (name, tags) in [
            ("add_tags", &self.add_tags),
            ("remove_tags", &self.remove_tags),
        ] {
            v.check(
                tags.len() <= 20
                    && tags
                        .iter()
                        .all(|t| !t.trim().is_empty() && t.chars().count() <= 50),
                &format!("{field}.{name}"),
                "At most 20 tags of 1 to 50 characters",
            );
        }
        v.check(
            self.reason
                .as_deref()
                .is_none_or(|r| r.chars().count() <= 2000),
            &format!("{field}.reason"),
            "Reason must be at most 2000 characters",
        );
    }

    /// These actions followed by `later`: its status, priority and assignee win, tags add up.
    pub fn then(&self, later: &TicketActions) -> TicketActions {
        let both = |a: &[String], b: &[String]| clean_tags(a.iter().chain(b).cloned().collect());
        TicketActions {
            status: later.status.or(self.status),
            reason: later.reason.clone().or_else(|| self.reason.clone()),
            priority: later.priority.or(self.priority),
            assignee_id: later
                .assignee_id
                .clone()
                .or_else(|| self.assignee_id.clone()),
            add_tags: both(&self.add_tags, &later.add_tags),
            remove_tags: both(&self.remove_tags, &later.remove_tags),
        }
    }

    /// The assignee these actions set for `user` (`None`: unchanged; `Some(None)`: nobody).
    fn assignee(&self, user: &AuthUser) -> Option<Option<i64>> {
        self.assignee_id.as_ref().map(|a| match a.as_str() {
            Some(_) => Some(user.id),
            None => a.as_i64(),
        })
    }

    /// 422 unless the assignee these actions set is an active agent.
    pub async fn check_assignee(&self, pool: &PgPool, user: &AuthUser) -> Result<(), Error> {
        match self.assignee(user) {
            Some(assignee) => check_assignee(pool, assignee).await,
            None => Ok(()),
        }
    }

    /// The commands that make these changes on `ticket` (fields first, then the assignee,
    /// then the status), at `at`.
    pub fn commands(
        &self,
        ticket: &Ticket,
        user: &AuthUser,
        at: DateTime<Utc>,
    ) -> Vec<TicketCommand> {
        let mut out = Vec::new();
        let tags = (!self.add_tags.is_empty() || !self.remove_tags.is_empty()).then(|| {
            let removed = clean_tags(self.remove_tags.clone());
            let mut tags: Vec<String> = ticket
                .tags
                .iter()
                .filter(|t| !removed.contains(t))
                .cloned()
                .collect();
            tags.extend(clean_tags(self.add_tags.clone()));
            clean_tags(tags)
        });
        if self.priority.is_some() || tags.is_some() {
            out.push(TicketCommand::UpdateTicket {
                asked: TicketChanges {
                    priority: self.priority,
                    tags,
                    ..TicketChanges::default()
                },
                at,
            });
        }
        if let Some(assignee_id) = self.assignee(user) {
            out.push(TicketCommand::AssignTicket { assignee_id, at });
        }
        if let Some(status) = self.status {
            out.push(TicketCommand::ChangeStatus {
                status,
                reason: self.reason.clone(),
                at,
            });
        }
        out
    }
}

/// A macro as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema, FromRow)]
pub struct Macro {
    pub id: i64,
    pub name: String,
    /// The reply (Markdown with placeholders); empty for a macro that only changes fields.
    pub content: String,
    /// The reply is an internal note.
    pub is_internal: bool,
    #[sqlx(json)]
    pub changes: TicketActions,
    pub shared: bool,
    /// Whose personal macro it is (`null` for shared ones).
    pub owner_id: Option<i64>,
    #[sqlx(skip)]
    pub owner_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Named for Macro {
    fn people(&self, ids: &mut Vec<i64>) {
        ids.extend(self.owner_id);
    }
    fn take_names(&mut self, names: &NameMap) {
        self.owner_name = names.of(self.owner_id);
    }
}

/// Body of `POST /macros`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MacroCreate {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 20000)]
    pub content: String,
    #[serde(default)]
    pub is_internal: bool,
    #[serde(default, deserialize_with = "crate::service::objects::object")]
    pub changes: TicketActions,
    /// Shared with the whole desk (managers and admins).
    #[serde(default)]
    pub shared: bool,
}

/// Body of `PATCH /macros/{id}`: absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MacroUpdate {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    #[schema(max_length = 20000)]
    pub content: Option<String>,
    pub is_internal: Option<bool>,
    #[serde(default, deserialize_with = "crate::service::objects::object_or_null")]
    pub changes: Option<TicketActions>,
}

const COLUMNS: &str =
    "id, name, content, is_internal, changes, shared, owner_id, created_at, updated_at";

/// The values placeholders take.
pub struct Placeholders<'a> {
    pub ticket_id: i64,
    pub ticket_title: &'a str,
    pub requester_name: &'a str,
    pub agent_name: &'a str,
}

/// `content` with its placeholders filled; an error names what is wrong with it.
pub fn render(content: &str, values: &Placeholders<'_>) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    let ctx = minijinja::context! {
        ticket => minijinja::context! { id => values.ticket_id, title => values.ticket_title },
        requester => minijinja::context! { name => values.requester_name },
        agent => minijinja::context! { name => values.agent_name },
    };
    env.render_str(content, ctx).map_err(|e| {
        let kind = match e.kind() {
            minijinja::ErrorKind::UndefinedError => {
                "an unknown placeholder: use {{ticket.id}}, {{ticket.title}}, {{requester.name}} or {{agent.name}}"
            }
            _ => "a placeholder that is not written right",
        };
        format!("The reply has {kind}")
    })
}

fn check(
    v: &mut Validator,
    name: Option<&str>,
    content: Option<&str>,
    changes: Option<&TicketActions>,
) {
    if let Some(name) = name {
        let n = name.trim().chars().count();
        v.check(
            (1..=100).contains(&n),
            "name",
            "Name must be 1 to 100 characters",
        );
    }
    if let Some(content) = content {
        v.check(
            content.chars().count() <= MAX_CONTENT,
            "content",
            "The reply must be at most 20000 characters",
        );
        let sample = Placeholders {
            ticket_id: 1,
            ticket_title: "t",
            requester_name: "r",
            agent_name: "a",
        };
        if let Err(msg) = render(content, &sample) {
            v.check(false, "content", &msg);
        }
    }
    if let Some(changes) = changes {
        changes.check(v, "changes");
    }
}

/// 403 unless `user` may create or change a macro that is `shared` (or theirs).
fn may_change(user: &AuthUser, m: Option<&Macro>, shared: bool) -> Result<(), Error> {
    if shared && user.role < Role::Manager {
        return Err(Error::Forbidden(
            "Only managers and admins change shared macros".into(),
        ));
    }
    if m.is_some_and(|m| !m.shared && m.owner_id != Some(user.id)) {
        return Err(Error::not_found("Macro"));
    }
    Ok(())
}

async fn named(services: &Services, mut m: Macro) -> Result<Macro, Error> {
    services.names.fill(&services.pool, &mut m).await?;
    Ok(m)
}

/// A page of my macros and the shared ones, shared first, then by name.
pub async fn list(
    services: &Services,
    user: &AuthUser,
    (page, size, offset): (i64, i64, i64),
) -> Result<Page<Macro>, Error> {
    user.require(Role::Agent)?;
    let mut items: Vec<Macro> = sqlx::query_as(&format!(
        "select {COLUMNS} from macros where shared or owner_id = $1
          order by shared desc, lower(name), id limit $2 offset $3"
    ))
    .bind(user.id)
    .bind(size)
    .bind(offset)
    .fetch_all(&services.pool)
    .await?;
    let total: i64 =
        sqlx::query_scalar("select count(*) from macros where shared or owner_id = $1")
            .bind(user.id)
            .fetch_one(&services.pool)
            .await?;
    services.names.fill(&services.pool, &mut items).await?;
    Ok(Page::new(items, total, page, size))
}

/// A macro the caller may see (theirs or shared); 404 otherwise.
pub async fn find(services: &Services, user: &AuthUser, id: i64) -> Result<Macro, Error> {
    user.require(Role::Agent)?;
    let m: Option<Macro> = sqlx::query_as(&format!("select {COLUMNS} from macros where id = $1"))
        .bind(id)
        .fetch_optional(&services.pool)
        .await?;
    let m = m
        .filter(|m| m.shared || m.owner_id == Some(user.id))
        .ok_or_else(|| Error::not_found("Macro"))?;
    named(services, m).await
}

/// Saves a new macro.
pub async fn create(
    services: &Services,
    user: &AuthUser,
    body: MacroCreate,
) -> Result<Macro, Error> {
    user.require(Role::Agent)?;
    may_change(user, None, body.shared)?;
    let mut v = Validator::default();
    check(
        &mut v,
        Some(&body.name),
        Some(&body.content),
        Some(&body.changes),
    );
    v.finish()?;
    let mut tx = services.pool.begin().await?;
    let count: i64 = sqlx::query_scalar(
        "select count(*) from macros where case when $1 then shared else owner_id = $2 end",
    )
    .bind(body.shared)
    .bind(user.id)
    .fetch_one(&mut *tx)
    .await?;
    if count >= MAX_MACROS {
        return Err(Error::conflict(format!("At most {MAX_MACROS} macros")));
    }
    let m: Macro = sqlx::query_as(&format!(
        "insert into macros (name, content, is_internal, changes, shared, owner_id)
         values ($1, $2, $3, $4, $5, case when $5 then null else $6 end) returning {COLUMNS}"
    ))
    .bind(body.name.trim())
    .bind(&body.content)
    .bind(body.is_internal)
    .bind(sqlx::types::Json(&body.changes))
    .bind(body.shared)
    .bind(user.id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    named(services, m).await
}

/// Changes a macro (its owner; shared ones: managers and admins).
pub async fn update(
    services: &Services,
    user: &AuthUser,
    id: i64,
    body: MacroUpdate,
) -> Result<Macro, Error> {
    let current = find(services, user, id).await?;
    may_change(user, Some(&current), current.shared)?;
    let mut v = Validator::default();
    check(
        &mut v,
        body.name.as_deref(),
        body.content.as_deref(),
        body.changes.as_ref(),
    );
    v.finish()?;
    let m: Macro = sqlx::query_as(&format!(
        "update macros set name = coalesce($2, name), content = coalesce($3, content),
                is_internal = coalesce($4, is_internal), changes = coalesce($5, changes),
                updated_at = now()
          where id = $1 returning {COLUMNS}"
    ))
    .bind(id)
    .bind(body.name.as_deref().map(str::trim))
    .bind(body.content.as_deref())
    .bind(body.is_internal)
    .bind(body.changes.as_ref().map(sqlx::types::Json))
    .fetch_one(&services.pool)
    .await?;
    named(services, m).await
}

/// Deletes a macro (its owner; shared ones: managers and admins).
pub async fn delete(services: &Services, user: &AuthUser, id: i64) -> Result<(), Error> {
    let current = find(services, user, id).await?;
    may_change(user, Some(&current), current.shared)?;
    sqlx::query("delete from macros where id = $1")
        .bind(id)
        .execute(&services.pool)
        .await?;
    Ok(())
}

/// The reply of `m` on `ticket` by `user` at `at`, placeholders filled and mentions found
/// (`None` for a macro without a reply).
pub async fn reply(
    services: &Services,
    user: &AuthUser,
    m: &Macro,
    ticket: &Ticket,
    at: DateTime<Utc>,
) -> Result<Option<TicketCommand>, Error> {
    if m.content.trim().is_empty() {
        return Ok(None);
    }
    let names = services
        .names
        .of(&services.pool, &[ticket.requester_id, user.id])
        .await?;
    let content = render(
        &m.content,
        &Placeholders {
            ticket_id: ticket.id,
            ticket_title: &ticket.title,
            requester_name: &names.name(ticket.requester_id).unwrap_or_default(),
            agent_name: &names.name(user.id).unwrap_or_default(),
        },
    )
    .map_err(|msg| Error::field("content", msg))?;
    let mentions =
        crate::service::comments::resolve_mentions(&services.pool, &content, m.is_internal, ticket)
            .await?;
    Ok(Some(TicketCommand::AddComment {
        comment_id: Uuid::new_v4(),
        author_id: user.id,
        by_staff: user.is_staff(),
        content,
        is_internal: m.is_internal,
        parent_id: None,
        mentions,
        then_status: None,
        at,
    }))
}

/// The batch that makes `changes` on `ticket` with the `replies` before a status change, as
/// "reply and resolve" does.
pub fn batch(
    changes: &TicketActions,
    replies: &[&TicketCommand],
    ticket: &Ticket,
    user: &AuthUser,
    at: DateTime<Utc>,
) -> Vec<TicketCommand> {
    let mut out = changes.commands(ticket, user, at);
    let position = out
        .iter()
        .position(|c| matches!(c, TicketCommand::ChangeStatus { .. }))
        .unwrap_or(out.len());
    out.splice(position..position, replies.iter().map(|r| (*r).clone()));
    out
}

/// Applies macro `macro_id` to ticket `ticket_id` as one command (`expected`: the version
/// from `If-Match`).
pub async fn apply(
    services: &Services,
    user: &AuthUser,
    ticket_id: i64,
    macro_id: i64,
    expected: Option<usize>,
) -> Result<Committed<Ticket>, Error> {
    let m = find(services, user, macro_id).await?;
    m.changes.check_assignee(&services.pool, user).await?;
    let (ticket, _) = load_visible(services, user, ticket_id).await?;
    let at = crate::service::now();
    let reply = reply(services, user, &m, &ticket, at).await?;
    execute_visible(services, user, ticket_id, expected, |t| {
        let replies: Vec<&TicketCommand> = reply.iter().collect();
        TicketCommand::Batch(batch(&m.changes, &replies, t, user, at))
    })
    .await
}
