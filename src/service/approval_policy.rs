//! The approval policy: which approval a new ticket of type `change_request` gets
//! automatically. Configuration in the `approval_policies` table (not event-sourced, like
//! users); steps name users by id or roles, resolved to active users when a ticket opens.

use std::collections::BTreeSet;

use aggregates::approval::{Rule, StepSpec};
use aggregates::{Role, TicketType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::service::error::{Error, FieldError};

/// Most steps a policy or an approval may have.
pub const MAX_STEPS: usize = 10;
/// Most approvers (or approver entries) per step.
pub const MAX_APPROVERS: usize = 50;

/// Who approves a policy step: one user, or every active user of a role (exactly one of
/// the two fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyApprover {
    /// A user, by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    /// Every active user of this role (`agent`, `manager` or `admin`) when the ticket opens,
    /// except the ticket's requester.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// One step of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyStep {
    /// A label for people ("Change board").
    pub name: String,
    /// How the approvals of this step combine.
    pub rule: Rule,
    /// For a quorum, how many approvals complete the step (capped at the number of
    /// approvers a step resolves to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_approvals: Option<u32>,
    /// Users and roles that approve this step.
    pub approvers: Vec<PolicyApprover>,
}

/// The approval policy of a ticket type.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApprovalPolicy {
    /// The ticket type the policy applies to (`change_request`).
    #[serde(rename = "type")]
    pub ticket_type: TicketType,
    /// The steps a new ticket's approval gets; empty when no approval is requested.
    pub steps: Vec<PolicyStep>,
    /// The admin who last changed it.
    pub updated_by: Option<i64>,
    /// When it was last changed.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Body of `PUT /approvals/policy`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ApprovalPolicyUpdate {
    /// The steps; an empty list removes the policy.
    pub steps: Vec<PolicyStep>,
}

/// The id of the approval the policy requests for `ticket_id`: derived from the ticket, so
/// repeating the request can never create a second approval.
pub fn policy_approval_id(ticket_id: i64) -> Uuid {
    let digest = Sha256::digest(format!("ticketd.approval-policy.{ticket_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The policy of `ticket_type` (with no steps when none is configured).
pub async fn load(pool: &PgPool, ticket_type: TicketType) -> Result<ApprovalPolicy, Error> {
    let row: Option<(serde_json::Value, Option<i64>, DateTime<Utc>)> = sqlx::query_as(
        "select steps, updated_by, updated_at from approval_policies where ticket_type = $1",
    )
    .bind(ticket_type.as_str())
    .fetch_optional(pool)
    .await?;
    let Some((steps, updated_by, updated_at)) = row else {
        return Ok(ApprovalPolicy {
            ticket_type,
            steps: Vec::new(),
            updated_by: None,
            updated_at: None,
        });
    };
    let steps = serde_json::from_value(steps).map_err(Error::internal)?;
    Ok(ApprovalPolicy {
        ticket_type,
        steps,
        updated_by,
        updated_at: Some(updated_at),
    })
}

/// Replaces the policy of `ticket_type` (removes it when `steps` is empty).
pub async fn save(
    pool: &PgPool,
    ticket_type: TicketType,
    steps: &[PolicyStep],
    by: i64,
) -> Result<ApprovalPolicy, Error> {
    let mut tx = pool.begin().await?;
    if steps.is_empty() {
        sqlx::query("delete from approval_policies where ticket_type = $1")
            .bind(ticket_type.as_str())
            .execute(&mut *tx)
            .await?;
    } else {
        let json = serde_json::to_value(steps).map_err(Error::internal)?;
        sqlx::query(
            "insert into approval_policies (ticket_type, steps, updated_by, updated_at)
             values ($1, $2, $3, now())
             on conflict (ticket_type) do update
                set steps = excluded.steps, updated_by = excluded.updated_by, updated_at = now()",
        )
        .bind(ticket_type.as_str())
        .bind(json)
        .bind(by)
        .execute(&mut *tx)
        .await?;
    }
    crate::service::bus::publish(&mut tx, &crate::service::bus::Message::PoliciesChanged).await?;
    tx.commit().await?;
    load(pool, ticket_type).await
}

fn loc(path: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let mut l = vec![json!("body")];
    l.extend_from_slice(path);
    l
}

fn field_error(path: &[serde_json::Value], msg: impl Into<String>, kind: &str) -> FieldError {
    FieldError {
        loc: loc(path),
        msg: msg.into(),
        kind: kind.into(),
    }
}

/// Of `ids`, the users that exist and are active.
pub async fn active_users(pool: &PgPool, ids: &[i64]) -> Result<BTreeSet<i64>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(BTreeSet::new());
    }
    let rows: Vec<(i64,)> = sqlx::query_as("select id from users where id = any($1) and is_active")
        .bind(ids)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Checks a step's name and quorum, shared by policies and approval requests.
pub fn check_step_shape(
    errors: &mut Vec<FieldError>,
    index: usize,
    name: &str,
    rule: Rule,
    min_approvals: Option<u32>,
    max_quorum: Option<usize>,
) {
    let n = name.trim().chars().count();
    if n == 0 {
        errors.push(field_error(
            &[json!("steps"), json!(index), json!("name")],
            "Step name is required",
            "missing",
        ));
    } else if n > 100 {
        errors.push(field_error(
            &[json!("steps"), json!(index), json!("name")],
            "Step name must be at most 100 characters",
            "value_error",
        ));
    }
    if rule == Rule::Quorum {
        let at = [json!("steps"), json!(index), json!("min_approvals")];
        match min_approvals {
            None => errors.push(field_error(
                &at,
                "A quorum step needs min_approvals",
                "missing",
            )),
            Some(0) => errors.push(field_error(
                &at,
                "min_approvals must be at least 1",
                "value_error",
            )),
            Some(m) => {
                if let Some(max) = max_quorum.filter(|max| m as usize > *max) {
                    errors.push(field_error(
                        &at,
                        format!(
                            "min_approvals must be between 1 and {max}, the number of approvers"
                        ),
                        "value_error",
                    ));
                }
            }
        }
    }
}

/// Checks the number of steps.
pub fn check_step_count(errors: &mut Vec<FieldError>, count: usize, allow_empty: bool) {
    if count == 0 && !allow_empty {
        errors.push(field_error(
            &[json!("steps")],
            "At least one step is required",
            "value_error",
        ));
    }
    if count > MAX_STEPS {
        errors.push(field_error(
            &[json!("steps")],
            format!("At most {MAX_STEPS} steps"),
            "value_error",
        ));
    }
}

/// Checks policy steps: names, rules, one of `user_id`/`role` per approver, staff roles
/// only, existing active users, no duplicates.
pub async fn validate(pool: &PgPool, steps: &[PolicyStep]) -> Result<(), Error> {
    let mut errors = Vec::new();
    check_step_count(&mut errors, steps.len(), true);
    let mut all_users: Vec<i64> = steps
        .iter()
        .flat_map(|s| s.approvers.iter().filter_map(|a| a.user_id))
        .collect();
    all_users.sort_unstable();
    all_users.dedup();
    let active = active_users(pool, &all_users).await?;
    for (i, step) in steps.iter().enumerate() {
        check_policy_step(&mut errors, i, step, &active);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(errors))
    }
}

/// Checks one policy step: its shape, how many approvers, and each approver.
fn check_policy_step(
    errors: &mut Vec<FieldError>,
    i: usize,
    step: &PolicyStep,
    active: &BTreeSet<i64>,
) {
    let only_users = step.approvers.iter().all(|a| a.role.is_none());
    check_step_shape(
        errors,
        i,
        &step.name,
        step.rule,
        step.min_approvals,
        only_users.then_some(step.approvers.len()),
    );
    let at = [json!("steps"), json!(i), json!("approvers")];
    if step.approvers.is_empty() {
        errors.push(field_error(
            &at,
            "At least one approver (a user_id or a role) is required",
            "value_error",
        ));
    }
    if step.approvers.len() > MAX_APPROVERS {
        errors.push(field_error(
            &at,
            format!("At most {MAX_APPROVERS} approvers per step"),
            "value_error",
        ));
    }
    let mut seen = BTreeSet::new();
    for (j, approver) in step.approvers.iter().enumerate() {
        let here = [json!("steps"), json!(i), json!("approvers"), json!(j)];
        if let Some(error) = check_policy_approver(&here, approver, active, &mut seen) {
            errors.push(error);
        }
    }
}

/// Checks one approver of a policy step: a user who is active, or a staff role, each once.
fn check_policy_approver(
    here: &[Value],
    approver: &PolicyApprover,
    active: &BTreeSet<i64>,
    seen: &mut BTreeSet<String>,
) -> Option<FieldError> {
    let at = |field: &str| {
        let mut l = here.to_vec();
        l.push(json!(field));
        l
    };
    let msg = match (approver.user_id, approver.role) {
        (Some(_), Some(_)) | (None, None) => {
            return Some(field_error(
                here,
                "Give either a user_id or a role",
                "value_error",
            ))
        }
        (Some(id), None) if !active.contains(&id) => (
            at("user_id"),
            format!("User {id} does not exist or is not active"),
        ),
        (Some(id), None) if !seen.insert(format!("user:{id}")) => {
            (at("user_id"), format!("User {id} is listed twice"))
        }
        (None, Some(role)) if !role.is_staff() => (
            at("role"),
            "A policy role must be agent, manager or admin".to_string(),
        ),
        (None, Some(role)) if !seen.insert(format!("role:{role}")) => {
            (at("role"), format!("Role {role} is listed twice"))
        }
        _ => return None,
    };
    Some(field_error(&msg.0, msg.1, "value_error"))
}

/// Turns policy steps into approval steps for a ticket of `requester_id`: users that are
/// still active (in the order given), then the active users of each role (by id) except
/// the requester, without duplicates. A step that resolves to nobody is left out (and
/// logged); a quorum is capped at the number of approvers found.
pub async fn resolve(
    pool: &PgPool,
    steps: &[PolicyStep],
    requester_id: i64,
) -> Result<Vec<StepSpec>, sqlx::Error> {
    let mut out = Vec::new();
    for step in steps {
        let named: Vec<i64> = step.approvers.iter().filter_map(|a| a.user_id).collect();
        let active = active_users(pool, &named).await?;
        let mut ids: Vec<i64> = named.into_iter().filter(|id| active.contains(id)).collect();
        let roles: Vec<&str> = step
            .approvers
            .iter()
            .filter_map(|a| a.role.map(Role::as_str))
            .collect();
        if !roles.is_empty() {
            let rows: Vec<(i64,)> = sqlx::query_as(
                "select id from users where role = any($1) and is_active and id <> $2 order by id",
            )
            .bind(&roles)
            .bind(requester_id)
            .fetch_all(pool)
            .await?;
            ids.extend(rows.into_iter().map(|(id,)| id));
        }
        let mut seen = BTreeSet::new();
        ids.retain(|id| seen.insert(*id));
        ids.truncate(MAX_APPROVERS);
        if ids.is_empty() {
            tracing::warn!(step = %step.name, "approval policy step resolves to no active user; left out");
            continue;
        }
        let min_approvals = match step.rule {
            Rule::Quorum => Some(step.min_approvals.unwrap_or(1).clamp(1, ids.len() as u32)),
            Rule::Any | Rule::All => None,
        };
        out.push(StepSpec {
            name: step.name.trim().to_string(),
            approver_ids: ids,
            rule: step.rule,
            min_approvals,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_approval_id_is_stable_and_per_ticket() {
        assert_eq!(policy_approval_id(1042), policy_approval_id(1042));
        assert_ne!(policy_approval_id(1042), policy_approval_id(1043));
        assert_eq!(policy_approval_id(1042).get_version_num(), 8);
    }

    #[test]
    fn approvers_accept_a_user_or_a_role_and_nothing_else() {
        let a: PolicyApprover =
            serde_json::from_value(json!({"role": "manager"})).unwrap_or(PolicyApprover {
                user_id: None,
                role: None,
            });
        assert_eq!(a.role, Some(Role::Manager));
        assert!(serde_json::from_value::<PolicyApprover>(json!({"group": 1})).is_err());
        assert_eq!(
            serde_json::to_value(PolicyApprover {
                user_id: Some(3),
                role: None
            })
            .unwrap_or_default(),
            json!({"user_id": 3})
        );
    }
}
