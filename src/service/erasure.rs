//! Erasure and export of a person's data (GDPR Art. 15/17/20; DESIGN.md "Personal data and
//! erasure"). Erasure destroys the person's data key (crypto-shredding: everything sealed under
//! it reads `"[erased]"`), appends `PersonErased` to their stream (the projections then rewrite
//! what they hold of them), blanks their account so it cannot sign in, revokes their sessions,
//! deletes their notifications, idempotency records and files. The log is never rewritten.

use chrono::{DateTime, Utc};
use privacy::rules::{Owner, RULES};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::service::auth;
use crate::service::bus::{self, Message};
use crate::service::error::Error;
use crate::service::Services;

/// A log entry that keeps a person's data in plaintext (written before encryption existed).
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct PlaintextEntry {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
}

/// What an erasure did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErasureReport {
    pub user_id: i64,
    /// Whether the person had a data key (now destroyed).
    pub key_destroyed: bool,
    /// Attachment files deleted from the store.
    pub files_deleted: u64,
    /// Log entries that still hold the person's data in plaintext (written before personal
    /// fields were encrypted): every read model and response redacts them, the log keeps them.
    pub plaintext_entries: Vec<PlaintextEntry>,
}

/// Erases person `user_id` (acting: `actor`). The last active admin cannot be erased (409).
/// Also returns the log position the erasure's `PersonErased` reached (the consistency token).
pub async fn erase(
    services: &Services,
    actor: Option<i64>,
    user_id: i64,
) -> Result<(ErasureReport, Option<projections::Checkpoint>), Error> {
    let pool = &services.pool;
    let mut tx = pool.begin().await?;
    // The same lock order as an admin's user change: the admins, then the target.
    let admins: Vec<i64> = sqlx::query_scalar(
        "select id from users where role = 'admin' and is_active order by id for update",
    )
    .fetch_all(&mut *tx)
    .await?;
    let exists: Option<i64> = sqlx::query_scalar("select id from users where id = $1 for update")
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(Error::not_found("User"));
    }
    if admins.contains(&user_id) && admins.len() <= 1 {
        return Err(Error::conflict(
            "This is the last active admin: make another user admin first",
        ));
    }
    let key_destroyed = privacy::keyring().destroy(&mut tx, user_id, actor).await?;
    sqlx::query(
        "update users set email = 'erased-' || id || '@erased.invalid', full_name = $2,
                password_hash = $3, is_active = false, updated_at = now()
          where id = $1",
    )
    .bind(user_id)
    .bind(privacy::ERASED)
    .bind(&services.dummy_hash)
    .execute(&mut *tx)
    .await?;
    for sql in [
        "delete from idempotency_keys where user_id = $1",
        "delete from notification_reads where user_id = $1",
        "delete from saved_views where owner_id = $1 and not shared",
        "delete from ticket_presence where user_id = $1",
    ] {
        sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
    }
    bus::publish(&mut tx, &Message::KeyDestroyed { person_id: user_id }).await?;
    bus::publish(&mut tx, &Message::UserChanged { user_id }).await?;
    bus::publish(&mut tx, &Message::UserRenamed { user_id }).await?;
    tx.commit().await?;
    let token = projections::log::newest_committed(pool).await?;
    if let Some(rt) = &services.runtime {
        rt.wake();
    }
    privacy::keyring().forget(user_id);
    services.user_status.forget(user_id);
    services.names.forget(user_id);
    auth::revoke_user_sessions(pool, &services.revocations, user_id, None).await?;
    let files_deleted = delete_files(services, user_id).await?;
    let report = ErasureReport {
        user_id,
        key_destroyed,
        files_deleted,
        plaintext_entries: plaintext_entries(pool, user_id).await?,
    };
    Ok((report, token))
}

/// Deletes the files only this person uploaded (a file someone else also sent stays).
async fn delete_files(services: &Services, user_id: i64) -> Result<u64, Error> {
    let shas: Vec<String> = sqlx::query_scalar(
        "select sha256 from rm_attachments where uploaded_by = $1
         except select sha256 from rm_attachments where uploaded_by <> $1",
    )
    .bind(user_id)
    .fetch_all(&services.pool)
    .await?;
    services
        .storage
        .delete_now(&services.pool, &shas)
        .await
        .map_err(Error::internal)
}

/// The SQL test that an event's owner (by `owner`) is `$1`.
fn owner_test(owner: Owner) -> String {
    let path = |ptr: &str| format!("'{{{}}}'", ptr.trim_start_matches('/').replace('/', ","));
    match owner {
        Owner::Field(ptr) => format!("(e.payload #>> {}) = $1::text", path(ptr)),
        Owner::Actor => "(e.metadata ->> 'user_id') = $1::text".into(),
        Owner::Requester => "e.aggregate_id in (select o.aggregate_id from events o
              where o.aggregate_type = 'ticket' and o.event_type = 'TicketOpened'
                and (o.payload #>> '{TicketOpened,requester_id}') = $1::text)"
            .into(),
        Owner::CommentAuthor(ptr) => format!(
            "(e.payload #>> {}) in (select c.payload #>> '{{CommentAdded,comment_id}}' from events c
              where c.aggregate_type = 'ticket' and c.event_type = 'CommentAdded'
                and (c.payload #>> '{{CommentAdded,author_id}}') = $1::text)",
            path(ptr)
        ),
    }
}

/// The log entries that keep `user_id`'s data in plaintext: personal fields or the client
/// address and user agent of their requests, stored as text rather than sealed.
pub async fn plaintext_entries(pool: &PgPool, user_id: i64) -> Result<Vec<PlaintextEntry>, Error> {
    let plain = |expr: String| {
        format!(
            "(jsonb_typeof({expr}) = 'string' and ({expr} #>> '{{}}') not in ('', '{}'))",
            privacy::ERASED
        )
    };
    let mut tests: Vec<String> = RULES
        .iter()
        .map(|r| {
            let fields: Vec<String> = r
                .fields
                .iter()
                .map(|f| {
                    plain(format!(
                        "(e.payload #> '{{{}}}')",
                        f.trim_start_matches('/').replace('/', ",")
                    ))
                })
                .collect();
            format!(
                "(e.aggregate_type = '{}' and e.event_type = '{}' and {} and ({}))",
                r.aggregate_type,
                r.event_type,
                owner_test(r.owner),
                fields.join(" or ")
            )
        })
        .collect();
    tests.push(format!(
        "((e.metadata ->> 'user_id') = $1::text and ({} or {}))",
        plain("(e.metadata -> 'client_ip')".into()),
        plain("(e.metadata -> 'user_agent')".into())
    ));
    let sql = format!(
        "select e.aggregate_type, e.aggregate_id, e.sequence, e.event_type from events e
          where {} order by e.global_position",
        tests.join("\n or ")
    );
    Ok(sqlx::query_as(&sql).bind(user_id).fetch_all(pool).await?)
}

/// Everything ticketd holds about a person (GET `/users/{id}/export`): nothing written by
/// anyone else.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PersonalData {
    pub profile: ExportProfile,
    /// The tickets they requested, with the title and description.
    pub tickets: Vec<ExportTicket>,
    /// The comments they wrote.
    pub comments: Vec<ExportComment>,
    /// The files they sent (names and sizes).
    pub attachments: Vec<ExportAttachment>,
    /// The approvals they asked for, with their reason.
    pub approvals_requested: Vec<ExportApprovalRequest>,
    /// Their decisions on approvals, with their comments.
    pub approval_decisions: Vec<ExportDecision>,
    /// The notifications addressed to them (what about, not the text of others).
    pub notifications: Vec<ExportNotification>,
    /// The client addresses and user agents their requests came from.
    pub request_origins: Vec<ExportOrigin>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct ExportProfile {
    pub id: i64,
    pub email: String,
    pub full_name: String,
    pub role: String,
    pub is_active: bool,
    pub locale: String,
    pub theme: String,
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct ExportTicket {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct ExportComment {
    pub id: Uuid,
    pub ticket_id: i64,
    pub content: String,
    pub is_internal: bool,
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct ExportAttachment {
    pub id: Uuid,
    pub ticket_id: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExportApprovalRequest {
    pub id: Uuid,
    pub ticket_id: i64,
    pub reason: Option<String>,
    pub status: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExportDecision {
    pub approval_id: Uuid,
    pub step: usize,
    pub decision: Value,
    pub comment: Option<String>,
    pub decided_at: Value,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct ExportNotification {
    pub id: i64,
    pub kind: String,
    pub ticket_id: Option<i64>,
    pub approval_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
pub struct ExportOrigin {
    pub client_ip: String,
    pub user_agent: String,
}

/// Collects everything about `user_id` (404 if there is no such user).
pub async fn export(pool: &PgPool, user_id: i64) -> Result<PersonalData, Error> {
    let profile: ExportProfile = sqlx::query_as(
        "select id, email, full_name, role, is_active, locale, theme, time_zone, created_at
           from users where id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| Error::not_found("User"))?;
    let tickets = sqlx::query_as(
        "select id, title, description, status, created_at from rm_tickets
          where requester_id = $1 order by id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    let comments = sqlx::query_as(
        "select id, ticket_id, content, is_internal, deleted, created_at from rm_comments
          where author_id = $1 order by created_at, id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    let attachments = sqlx::query_as(
        "select id, ticket_id, filename, content_type, size, created_at from rm_attachments
          where uploaded_by = $1 order by created_at, id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    let notifications = sqlx::query_as(
        "select id, kind, ticket_id, approval_id, created_at from rm_notifications
          where user_id = $1 order by id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    let (approvals_requested, approval_decisions) = approvals_of(pool, user_id).await?;
    Ok(PersonalData {
        profile,
        tickets,
        comments,
        attachments,
        approvals_requested,
        approval_decisions,
        notifications,
        request_origins: origins_of(pool, user_id).await?,
    })
}

/// The approvals a person asked for and the decisions they made, from the approvals' state.
async fn approvals_of(
    pool: &PgPool,
    user_id: i64,
) -> Result<(Vec<ExportApprovalRequest>, Vec<ExportDecision>), Error> {
    let rows: Vec<(Uuid, i64, i64, String, Option<String>, Value)> = sqlx::query_as(
        "select id, ticket_id, requested_by, status, reason, steps from rm_approvals
          where requested_by = $1 or $1 = any(participant_ids) order by created_at, id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    let mut requested = Vec::new();
    let mut decisions = Vec::new();
    for (id, ticket_id, requested_by, status, reason, steps) in rows {
        if requested_by == user_id {
            requested.push(ExportApprovalRequest {
                id,
                ticket_id,
                reason,
                status,
            });
        }
        let steps = steps.as_array().cloned().unwrap_or_default();
        for (step, s) in steps.iter().enumerate() {
            let list = s
                .get("decisions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for d in list
                .into_iter()
                .filter(|d| d.get("approver_id").and_then(Value::as_i64) == Some(user_id))
            {
                decisions.push(ExportDecision {
                    approval_id: id,
                    step,
                    decision: d.get("decision").cloned().unwrap_or_default(),
                    comment: d.get("comment").and_then(Value::as_str).map(String::from),
                    decided_at: d.get("decided_at").cloned().unwrap_or_default(),
                });
            }
        }
    }
    Ok((requested, decisions))
}

/// The distinct client addresses and user agents in the metadata of a person's events.
async fn origins_of(pool: &PgPool, user_id: i64) -> Result<Vec<ExportOrigin>, Error> {
    let mut rows: Vec<(Value,)> = sqlx::query_as(
        "select distinct on (metadata -> 'client_ip', metadata -> 'user_agent') metadata
           from events where (metadata ->> 'user_id') = $1::text",
    )
    .bind(user_id.to_string())
    .fetch_all(pool)
    .await?;
    let mut nothing: Vec<Value> = vec![Value::Null; rows.len()];
    let mut views: Vec<privacy::EventView<'_>> = rows
        .iter_mut()
        .zip(nothing.iter_mut())
        .map(|((metadata,), payload)| privacy::EventView {
            aggregate_type: "",
            aggregate_id: "",
            event_type: "",
            payload,
            metadata,
        })
        .collect();
    // Opened, and redacted when the person is erased (their requests from before encryption).
    privacy::keyring()
        .open_events(pool.into(), &mut views)
        .await?;
    drop(views);
    let text = |m: &Value, k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut origins: Vec<ExportOrigin> = rows
        .iter()
        .map(|(m,)| ExportOrigin {
            client_ip: text(m, "client_ip"),
            user_agent: text(m, "user_agent"),
        })
        .filter(|o| {
            let nothing = |s: &str| s.is_empty() || s == privacy::ERASED;
            !(nothing(&o.client_ip) && nothing(&o.user_agent))
        })
        .collect();
    origins.sort();
    origins.dedup();
    Ok(origins)
}
