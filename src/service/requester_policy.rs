//! The requester policy: which priorities and types requesters may give their own tickets,
//! and how long after resolution they may reopen one (API.md additions, "Tickets"). An
//! ordinary one-row table (`requester_policy`); without a row the defaults apply.

use aggregates::{Priority, TicketStatus, TicketType};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::service::error::{Error, Validator};

/// Longest reopen window an admin may set.
pub const MAX_REOPEN_DAYS: u32 = 365;

/// What requesters may choose.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RequesterPolicy {
    /// The priorities a requester may give a ticket.
    pub priorities: Vec<Priority>,
    /// The types a requester may give a ticket.
    pub types: Vec<TicketType>,
    /// How many days after its resolution a requester may reopen a ticket (0: never).
    pub reopen_days: u32,
    /// The admin who last changed it (`null`: the defaults).
    pub updated_by: Option<i64>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Default for RequesterPolicy {
    fn default() -> Self {
        RequesterPolicy {
            priorities: vec![Priority::Low, Priority::Medium, Priority::High],
            types: vec![
                TicketType::Issue,
                TicketType::Incident,
                TicketType::ServiceRequest,
                TicketType::Question,
            ],
            reopen_days: 14,
            updated_by: None,
            updated_at: None,
        }
    }
}

/// Body of `PUT /admin/requester-policy`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequesterPolicyUpdate {
    #[schema(min_items = 1)]
    pub priorities: Vec<Priority>,
    #[schema(min_items = 1)]
    pub types: Vec<TicketType>,
    #[schema(minimum = 0, maximum = 365)]
    pub reopen_days: u32,
}

/// A stored policy: priorities, types, reopen days, who changed it and when.
type PolicyRow = (Vec<String>, Vec<String>, i32, Option<i64>, DateTime<Utc>);

/// The policy in force.
pub async fn get(pool: &PgPool) -> Result<RequesterPolicy, Error> {
    let row: Option<PolicyRow> = sqlx::query_as(
        "select priorities, types, reopen_days, updated_by, updated_at from requester_policy",
    )
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        None => RequesterPolicy::default(),
        Some((priorities, types, days, by, at)) => RequesterPolicy {
            priorities: priorities
                .iter()
                .filter_map(|p| Priority::parse(p))
                .collect(),
            types: types.iter().filter_map(|t| TicketType::parse(t)).collect(),
            reopen_days: days.max(0) as u32,
            updated_by: by,
            updated_at: Some(at),
        },
    })
}

/// Replaces the policy (admins; the route checks the role).
pub async fn put(
    pool: &PgPool,
    admin_id: i64,
    body: RequesterPolicyUpdate,
) -> Result<RequesterPolicy, Error> {
    let mut v = Validator::default();
    v.check(
        !body.priorities.is_empty(),
        "priorities",
        "At least one priority is required",
    );
    v.check(
        !body.types.is_empty(),
        "types",
        "At least one type is required",
    );
    v.check(
        body.reopen_days <= MAX_REOPEN_DAYS,
        "reopen_days",
        "Reopen days must be between 0 and 365",
    );
    v.finish()?;
    let mut priorities: Vec<&str> = body.priorities.iter().map(|p| p.as_str()).collect();
    priorities.sort_unstable();
    priorities.dedup();
    let mut types: Vec<&str> = body.types.iter().map(|t| t.as_str()).collect();
    types.sort_unstable();
    types.dedup();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "insert into requester_policy (priorities, types, reopen_days, updated_by)
         values ($1, $2, $3, $4)
         on conflict (singleton) do update set priorities = excluded.priorities,
             types = excluded.types, reopen_days = excluded.reopen_days,
             updated_by = excluded.updated_by, updated_at = now()",
    )
    .bind(&priorities)
    .bind(&types)
    .bind(body.reopen_days as i32)
    .bind(admin_id)
    .execute(&mut *tx)
    .await?;
    crate::service::bus::publish(&mut tx, &crate::service::bus::Message::PoliciesChanged).await?;
    tx.commit().await?;
    get(pool).await
}

impl RequesterPolicy {
    /// 403 naming the field unless a requester may choose these values (`None`: unchanged).
    pub fn check_fields(
        &self,
        priority: Option<Priority>,
        ticket_type: Option<TicketType>,
    ) -> Result<(), Error> {
        if let Some(p) = priority.filter(|p| !self.priorities.contains(p)) {
            return Err(Error::Forbidden(format!(
                "priority: requesters may not choose the priority {}",
                p.as_str()
            )));
        }
        if let Some(t) = ticket_type.filter(|t| !self.types.contains(t)) {
            return Err(Error::Forbidden(format!(
                "type: requesters may not choose the type {}",
                t.as_str()
            )));
        }
        Ok(())
    }

    /// 403 unless a requester may move their ticket from `from` (resolved at `resolved_at`)
    /// to `to` at `now`: reopening only within the window, and `closed` is final.
    pub fn check_move(
        &self,
        from: TicketStatus,
        resolved_at: Option<DateTime<Utc>>,
        to: TicketStatus,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if from == TicketStatus::Closed {
            return Err(Error::Forbidden(
                "A closed ticket is final: open a new ticket instead".into(),
            ));
        }
        if from == TicketStatus::Resolved && to == TicketStatus::Open {
            let window = Duration::days(i64::from(self.reopen_days));
            if resolved_at.is_none_or(|at| now - at > window) {
                return Err(Error::Forbidden(format!(
                    "A resolved ticket can be reopened within {} days of its resolution: open a new ticket instead",
                    self.reopen_days
                )));
            }
        }
        Ok(())
    }
}
