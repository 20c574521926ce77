//! The SLA policy document: read (managers and admins), replaced (admins), validated with
//! a 422 per bad field. Every saved version is kept in `sla_policies`; the newest is in force.

use chrono::{DateTime, Utc};
use projections::sla::policy::{BusinessHours, SlaPolicy, Targets};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::service::error::{Error, FieldError};

/// The command that applies the policy in force to the whole history.
pub const REBUILD_COMMAND: &str = "ticketd projections rebuild reports";

/// `GET/PUT /reports/sla-policy`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PolicyDocument {
    /// The version (0 = the built-in default, never saved).
    pub version: i64,
    /// The policy's fields, spelled out (not flattened) so that the document's schema is
    /// the policy's plus these, not a policy that allows no other field.
    pub targets: Targets,
    pub business_hours: Option<BusinessHours>,
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: Option<i64>,
    /// False until the report history has been recomputed with this version.
    pub applied_to_history: bool,
    /// What an operator runs to apply this policy to the past.
    pub rebuild_command: String,
}

/// Checks a policy: one 422 entry per problem, located under `body`.
pub fn validate(policy: &SlaPolicy) -> Result<(), Error> {
    let problems = policy.validate();
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::Validation(
        problems
            .into_iter()
            .map(|p| {
                let mut loc: Vec<Value> = vec![json!("body")];
                loc.extend(p.path.iter().map(|s| match s.parse::<u64>() {
                    Ok(i) => json!(i),
                    Err(_) => json!(s),
                }));
                FieldError {
                    loc,
                    msg: p.msg,
                    kind: "value_error".into(),
                }
            })
            .collect(),
    ))
}

/// The policy in force.
pub async fn load(pool: &PgPool) -> Result<PolicyDocument, Error> {
    let row: Option<(i64, Value, Option<i64>, DateTime<Utc>)> = sqlx::query_as(
        "select id, policy, created_by, created_at from sla_policies order by id desc limit 1",
    )
    .fetch_optional(pool)
    .await?;
    let mut conn = pool.acquire().await?;
    let state = crate::service::reports::policy_state(&mut conn).await?;
    let (version, policy, updated_by, updated_at) = match row {
        None => (0, SlaPolicy::default(), None, None),
        Some((version, json, by, at)) => (
            version,
            serde_json::from_value(json).map_err(Error::internal)?,
            by,
            Some(at),
        ),
    };
    let SlaPolicy {
        targets,
        business_hours,
    } = policy;
    Ok(PolicyDocument {
        version,
        targets,
        business_hours,
        updated_at,
        updated_by,
        applied_to_history: state.applied_to_history,
        rebuild_command: REBUILD_COMMAND.into(),
    })
}

/// Saves a (validated) policy as the new version in force.
pub async fn save(
    pool: &PgPool,
    policy: &SlaPolicy,
    by: Option<i64>,
) -> Result<PolicyDocument, Error> {
    validate(policy)?;
    let json = serde_json::to_value(policy).map_err(Error::internal)?;
    // Every process forgets its copy of the policies (`PolicyCache`) when the change commits.
    let mut tx = pool.begin().await?;
    sqlx::query("insert into sla_policies (policy, created_by) values ($1, $2)")
        .bind(json)
        .bind(by)
        .execute(&mut *tx)
        .await?;
    crate::service::bus::publish(&mut tx, &crate::service::bus::Message::PoliciesChanged).await?;
    tx.commit().await?;
    load(pool).await
}
