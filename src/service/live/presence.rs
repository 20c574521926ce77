//! Who is on a ticket: `PUT /tickets/{id}/presence` renews a row of `ticket_presence` (30 s),
//! every change is announced on the bus in the same transaction, and a sweeper ends the rows
//! nobody renewed. Presence is not history: it never enters the event log.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::service::auth::AuthUser;
use crate::service::bus::{self, Message};
use crate::service::error::Error;
use crate::service::tickets::load_visible;
use crate::service::Services;

/// How long a presence lasts without a renewal.
pub const TTL: Duration = Duration::from_secs(30);

/// What the caller is doing on the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    Viewing,
    Typing,
    /// Gone: the presence ends now.
    Left,
}

/// Body of `PUT /tickets/{id}/presence`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceUpdate {
    pub state: PresenceState,
    /// Typing an internal note (staff only): requesters see such a person as viewing.
    #[serde(default)]
    pub internal: bool,
}

/// One person on a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PresentUser {
    pub id: i64,
    pub full_name: String,
    /// `viewing` or `typing`.
    pub state: String,
}

/// `event: presence` — who is on a watched ticket now.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Presence {
    pub ticket_id: i64,
    pub users: Vec<PresentUser>,
}

/// A row of `ticket_presence` with the person's name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub ticket_id: i64,
    pub user_id: i64,
    pub full_name: String,
    pub state: String,
    pub internal: bool,
}

/// The presence on `ticket_id` as a reader sees it: requesters see internal typing as viewing.
pub fn as_seen(ticket_id: i64, rows: &[Row], staff: bool) -> Presence {
    let users = rows
        .iter()
        .filter(|r| r.ticket_id == ticket_id)
        .map(|r| PresentUser {
            id: r.user_id,
            full_name: r.full_name.clone(),
            state: if r.internal && !staff {
                "viewing".into()
            } else {
                r.state.clone()
            },
        })
        .collect();
    Presence { ticket_id, users }
}

/// Records what `user` does on ticket `id` (404 when they may not see it; 403 for a requester
/// typing an internal note).
pub async fn set(
    services: &Services,
    user: &AuthUser,
    id: i64,
    update: &PresenceUpdate,
) -> Result<(), Error> {
    load_visible(services, user, id).await?;
    if update.internal && !user.is_staff() {
        return Err(Error::Forbidden("Only staff write internal notes".into()));
    }
    let mut tx = services.pool.begin().await?;
    let changed = match update.state {
        PresenceState::Left => {
            sqlx::query("delete from ticket_presence where ticket_id = $1 and user_id = $2")
                .bind(id)
                .bind(user.id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0
        }
        state => {
            let state = if state == PresenceState::Typing {
                "typing"
            } else {
                "viewing"
            };
            renew(&mut tx, id, user.id, state, update.internal).await?
        }
    };
    if changed {
        bus::publish(&mut tx, &Message::PresenceChanged { ticket_id: id }).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Upserts a presence row; true when who is there or what they do changed (a plain renewal
/// announces nothing).
async fn renew(
    conn: &mut sqlx::PgConnection,
    ticket_id: i64,
    user_id: i64,
    state: &str,
    internal: bool,
) -> Result<bool, Error> {
    let changed: bool = sqlx::query_scalar(
        "with old as (
             select state, internal from ticket_presence
              where ticket_id = $1 and user_id = $2 and expires_at > now()
         ), up as (
             insert into ticket_presence (ticket_id, user_id, state, internal, expires_at)
             values ($1, $2, $3, $4, now() + make_interval(secs => $5))
             on conflict (ticket_id, user_id) do update
                set state = excluded.state, internal = excluded.internal,
                    expires_at = excluded.expires_at
             returning 1
         )
         select not exists (select 1 from old where state = $3 and internal = $4)
           from up",
    )
    .bind(ticket_id)
    .bind(user_id)
    .bind(state)
    .bind(internal)
    .bind(TTL.as_secs_f64())
    .fetch_one(conn)
    .await?;
    Ok(changed)
}

/// Who is on any of `tickets` now.
pub async fn read(pool: &PgPool, tickets: &[i64]) -> Result<Vec<Row>, Error> {
    Ok(sqlx::query_as(
        "select p.ticket_id, p.user_id, u.full_name, p.state, p.internal
           from ticket_presence p join users u on u.id = p.user_id
          where p.ticket_id = any($1) and p.expires_at > now()
          order by p.ticket_id, u.full_name, p.user_id",
    )
    .bind(tickets)
    .fetch_all(pool)
    .await?)
}

/// Ends the presences nobody renewed, announcing each ticket that changed. Any process may run
/// it: a row is deleted (and announced) once.
pub async fn sweep(pool: &PgPool) -> Result<usize, Error> {
    let mut tx = pool.begin().await?;
    let tickets: Vec<i64> = sqlx::query_scalar(
        "with gone as (
             delete from ticket_presence where expires_at <= now() returning ticket_id
         )
         select distinct ticket_id from gone",
    )
    .fetch_all(&mut *tx)
    .await?;
    for ticket_id in &tickets {
        bus::publish(
            &mut tx,
            &Message::PresenceChanged {
                ticket_id: *ticket_id,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(tickets.len())
}
