//! `Idempotency-Key`: a POST repeated with the same key by the same user within 24 hours gets
//! the first request's answer again and changes nothing.
//!
//! A key is claimed in `idempotency_keys` before the request runs (no transaction stays open
//! while it runs) and completed with a reference to what the request produced, never with a
//! copy of the answer: the HTTP layer rebuilds the answer from the reference. When a request's
//! answer is lost after its write committed (a 5xx, a crashed process), the events it wrote are
//! found by the request id every event carries in its metadata, so a retry never writes twice.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::{FromRow, PgPool};

use crate::service::error::Error;

/// A claim whose request has not finished after this long is abandoned: its process died.
const ABANDONED_AFTER_SECS: f64 = 120.0;

/// One request under a key.
#[derive(Debug, Clone)]
pub struct KeyedRequest {
    pub user_id: i64,
    pub key: String,
    /// [`request_hash`] of the request.
    pub hash: Vec<u8>,
    /// The request id its events will carry.
    pub request_id: String,
}

/// What the first request under a key answered, as a reference.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Outcome {
    pub status: i16,
    pub location: Option<String>,
    /// The path whose GET rebuilds the answer's body; none for an answer without a body.
    pub resource: Option<String>,
    /// The `X-Consistency-Token` of the first answer (the rebuilding GET waits for it).
    pub consistency: Option<String>,
    /// The ticket's version the first answer named beside the resource (a new comment's
    /// `ticket_version`): the resource's GET does not carry it.
    pub ticket_version: Option<i64>,
}

/// What to do with a request that carries a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Run it, then [`complete`] or [`release`] the key.
    Run,
    /// Answer what the first request answered.
    Replay(Outcome),
    /// The key was used for a different request (422).
    Mismatch,
    /// The first request under the key is still running (409).
    InFlight,
}

/// What a request's committed events created or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Produced {
    Ticket { id: String, created: bool },
    Comment { id: String, ticket_version: i64 },
    Attachment(String),
    Approval { id: String, created: bool },
}

/// The hash that tells two requests under one key apart: method, path with query, content
/// type and body.
pub fn request_hash(
    method: &str,
    path_and_query: &str,
    content_type: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for part in [
        method.as_bytes(),
        path_and_query.as_bytes(),
        content_type.as_bytes(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.update(body);
    hasher.finalize().to_vec()
}

#[derive(FromRow)]
struct Held {
    request_hash: Vec<u8>,
    request_id: String,
    since_txid: String,
    age_secs: f64,
    status: Option<i16>,
    location: Option<String>,
    resource: Option<String>,
    consistency: Option<String>,
    ticket_version: Option<i64>,
}

/// Claims `request`'s key, or says why it may not run.
pub async fn claim(pool: &PgPool, request: &KeyedRequest) -> Result<Claim, Error> {
    // A released key can vanish between the two statements: look again, a few times.
    for _ in 0..3 {
        if take(pool, request, None).await? {
            return Ok(Claim::Run);
        }
        let Some(held) = held(pool, request).await? else {
            continue;
        };
        return decide(pool, request, held).await;
    }
    Ok(Claim::InFlight)
}

async fn decide(pool: &PgPool, request: &KeyedRequest, held: Held) -> Result<Claim, Error> {
    if held.request_hash != request.hash {
        return Ok(Claim::Mismatch);
    }
    if let Some(status) = held.status {
        return Ok(Claim::Replay(Outcome {
            status,
            location: held.location,
            resource: held.resource,
            consistency: held.consistency,
            ticket_version: held.ticket_version,
        }));
    }
    if held.age_secs < ABANDONED_AFTER_SECS {
        return Ok(Claim::InFlight);
    }
    // Abandoned: either its write committed (answer from it) or nothing happened (run again).
    if let Some(produced) = committed(pool, &held.request_id, &held.since_txid).await? {
        let outcome = Outcome::from_produced(&produced);
        let first = KeyedRequest {
            request_id: held.request_id,
            ..request.clone()
        };
        complete(pool, &first, &outcome).await?;
        return Ok(Claim::Replay(outcome));
    }
    if take(pool, request, Some(&held.request_id)).await? {
        Ok(Claim::Run)
    } else {
        Ok(Claim::InFlight)
    }
}

/// Inserts the claim; over an expired row, or over the abandoned claim of `abandoned`.
async fn take(pool: &PgPool, r: &KeyedRequest, abandoned: Option<&str>) -> Result<bool, Error> {
    let taken = sqlx::query(
        "insert into idempotency_keys (user_id, key, request_hash, request_id, since_txid)
         values ($1, $2, $3, $4, pg_snapshot_xmin(pg_current_snapshot()))
         on conflict (user_id, key) do update set
            request_hash = excluded.request_hash, request_id = excluded.request_id,
            since_txid = excluded.since_txid, status = null, location = null,
            resource = null, consistency = null, ticket_version = null, created_at = now()
          where idempotency_keys.created_at < now() - interval '24 hours'
             or (idempotency_keys.status is null and idempotency_keys.request_id = $5)",
    )
    .bind(r.user_id)
    .bind(&r.key)
    .bind(&r.hash)
    .bind(&r.request_id)
    .bind(abandoned)
    .execute(pool)
    .await
    .map_err(Error::internal)?;
    Ok(taken.rows_affected() == 1)
}

async fn held(pool: &PgPool, r: &KeyedRequest) -> Result<Option<Held>, Error> {
    sqlx::query_as(
        "select request_hash, request_id, since_txid::text as since_txid,
                extract(epoch from now() - created_at)::float8 as age_secs,
                status, location, resource, consistency, ticket_version
           from idempotency_keys where user_id = $1 and key = $2",
    )
    .bind(r.user_id)
    .bind(&r.key)
    .fetch_optional(pool)
    .await
    .map_err(Error::internal)
}

/// Records what the request that holds the key answered.
pub async fn complete(pool: &PgPool, r: &KeyedRequest, outcome: &Outcome) -> Result<(), Error> {
    sqlx::query(
        "update idempotency_keys
            set status = $4, location = $5, resource = $6, consistency = $7,
                ticket_version = $8
          where user_id = $1 and key = $2 and request_id = $3 and status is null",
    )
    .bind(r.user_id)
    .bind(&r.key)
    .bind(&r.request_id)
    .bind(outcome.status)
    .bind(&outcome.location)
    .bind(&outcome.resource)
    .bind(&outcome.consistency)
    .bind(outcome.ticket_version)
    .execute(pool)
    .await
    .map_err(Error::internal)?;
    Ok(())
}

/// Gives the key back: the request changed nothing, so a retry may run it again.
pub async fn release(pool: &PgPool, r: &KeyedRequest) -> Result<(), Error> {
    sqlx::query(
        "delete from idempotency_keys
          where user_id = $1 and key = $2 and request_id = $3 and status is null",
    )
    .bind(r.user_id)
    .bind(&r.key)
    .bind(&r.request_id)
    .execute(pool)
    .await
    .map_err(Error::internal)?;
    Ok(())
}

/// After a failed answer: what the request that holds the key committed, if anything.
pub async fn committed_by(pool: &PgPool, r: &KeyedRequest) -> Result<Option<Produced>, Error> {
    let since: Option<(String,)> = sqlx::query_as(
        "select since_txid::text from idempotency_keys
          where user_id = $1 and key = $2 and request_id = $3",
    )
    .bind(r.user_id)
    .bind(&r.key)
    .bind(&r.request_id)
    .fetch_optional(pool)
    .await
    .map_err(Error::internal)?;
    match since {
        Some((since,)) => committed(pool, &r.request_id, &since).await,
        None => Ok(None),
    }
}

/// The first event request `request_id` committed (at or after transaction `since`), as what
/// it produced.
async fn committed(
    pool: &PgPool,
    request_id: &str,
    since: &str,
) -> Result<Option<Produced>, Error> {
    let first: Option<(String, String, String, serde_json::Value, i64)> = sqlx::query_as(
        "select e.aggregate_type, e.aggregate_id, e.event_type, e.payload,
                (select max(later.sequence) from events later
                  where later.transaction_id = e.transaction_id
                    and later.aggregate_type = e.aggregate_type
                    and later.aggregate_id = e.aggregate_id) as version
           from events e
          where e.transaction_id >= $2::text::xid8 and e.metadata ->> 'request_id' = $1
          order by e.transaction_id, e.global_position limit 1",
    )
    .bind(request_id)
    .bind(since)
    .fetch_optional(pool)
    .await
    .map_err(Error::internal)?;
    Ok(first.and_then(|(aggregate, id, event, payload, version)| {
        let inner = |field: &str| payload[&event][field].as_str().map(str::to_string);
        match (aggregate.as_str(), event.as_str()) {
            ("ticket", "CommentAdded") => inner("comment_id").map(|id| Produced::Comment {
                id,
                ticket_version: version,
            }),
            ("ticket", "AttachmentAdded") => inner("attachment_id").map(Produced::Attachment),
            ("ticket", opened) => Some(Produced::Ticket {
                id,
                created: opened == "TicketOpened",
            }),
            ("approval", requested) => Some(Produced::Approval {
                id,
                created: requested == "ApprovalRequested",
            }),
            _ => None,
        }
    }))
}

impl Outcome {
    /// The answer a create or change gives, rebuilt from what it produced.
    pub fn from_produced(produced: &Produced) -> Self {
        let ticket_version = match produced {
            Produced::Comment { ticket_version, .. } => Some(*ticket_version),
            _ => None,
        };
        let (status, path) = match produced {
            Produced::Ticket { id, created } => {
                (if *created { 201 } else { 200 }, format!("tickets/{id}"))
            }
            Produced::Comment { id, .. } => (201, format!("comments/{id}")),
            Produced::Attachment(id) => (201, format!("attachments/{id}")),
            Produced::Approval { id, created } => {
                (if *created { 201 } else { 200 }, format!("approvals/{id}"))
            }
        };
        let resource = format!("/api/v1/{path}");
        Outcome {
            status,
            location: (status == 201).then(|| resource.clone()),
            resource: Some(resource),
            consistency: None,
            ticket_version,
        }
    }
}

/// Forgets keys older than 24 hours, every `every`.
pub async fn run_purger(pool: PgPool, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let purged = sqlx::query(
            "delete from idempotency_keys where created_at < now() - interval '24 hours'",
        )
        .execute(&pool)
        .await;
        if let Err(e) = purged {
            tracing::warn!(error = %e, "purging idempotency keys failed");
        }
    }
}
