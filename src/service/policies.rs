//! The policies commands consult (the requester policy on every requester's command, the change
//! request approval policy on every change request, the SLA policy in every new ticket's
//! answer), kept in memory instead of read per command. A change is saved with
//! `bus::Message::PoliciesChanged` in the same transaction, and every process forgets its copy
//! when that message (or a resync of the bus) arrives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aggregates::TicketType;
use projections::sla::PolicyContext;
use sqlx::PgPool;

use crate::service::approval_policy::{self, ApprovalPolicy};
use crate::service::error::Error;
use crate::service::requester_policy::{self, RequesterPolicy};

/// What this process knows of the policies.
#[derive(Default)]
pub struct PolicyCache {
    requester: Mutex<Option<RequesterPolicy>>,
    change_approval: Mutex<Option<ApprovalPolicy>>,
    sla: Mutex<Option<Arc<PolicyContext>>>,
    /// Bumped by every [`PolicyCache::forget`]: a load that began before it is not kept.
    generation: AtomicU64,
}

impl PolicyCache {
    /// The requester policy in force.
    pub async fn requester(&self, pool: &PgPool) -> Result<RequesterPolicy, Error> {
        if let Some(p) = lock(&self.requester).clone() {
            return Ok(p);
        }
        let began = self.generation.load(Ordering::Acquire);
        let policy = requester_policy::get(pool).await?;
        self.keep(&self.requester, began, &policy);
        Ok(policy)
    }

    /// The approval policy of change requests.
    pub async fn change_approval(&self, pool: &PgPool) -> Result<ApprovalPolicy, Error> {
        if let Some(p) = lock(&self.change_approval).clone() {
            return Ok(p);
        }
        let began = self.generation.load(Ordering::Acquire);
        let policy = approval_policy::load(pool, TicketType::ChangeRequest).await?;
        self.keep(&self.change_approval, began, &policy);
        Ok(policy)
    }

    /// The SLA policy in force (its version and calendar).
    pub async fn sla(&self, pool: &PgPool) -> Result<Arc<PolicyContext>, Error> {
        if let Some(p) = lock(&self.sla).clone() {
            return Ok(p);
        }
        let began = self.generation.load(Ordering::Acquire);
        let mut conn = pool.acquire().await?;
        let policy = Arc::new(
            projections::sla::policy_in_force(&mut conn)
                .await
                .map_err(Error::internal)?,
        );
        self.keep(&self.sla, began, &policy);
        Ok(policy)
    }

    /// Forgets every policy (one changed somewhere, or the bus lost messages).
    pub fn forget(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        *lock(&self.requester) = None;
        *lock(&self.change_approval) = None;
        *lock(&self.sla) = None;
    }

    /// Keeps a freshly loaded policy unless a change was announced while it loaded.
    fn keep<T: Clone>(&self, slot: &Mutex<Option<T>>, began: u64, value: &T) {
        let mut slot = lock(slot);
        if self.generation.load(Ordering::Acquire) == began {
            *slot = Some(value.clone());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
