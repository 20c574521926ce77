//! The use cases, free of HTTP: commands through the aggregates (`executor`), tickets and
//! approvals, the approval process and policy, accounts and sign-in, items, attachment blobs,
//! history, reports and the SLA policy, and the bus between processes. Every one answers with
//! `service::Error`.

pub mod append_connections;
pub mod approval_policy;
pub mod approval_process;
pub mod approvals;
pub mod attachments;
pub mod auth;
pub mod bulk;
pub mod bus;
pub mod clock;
pub mod comments;
pub mod consistency;
pub mod delivery;
pub mod erasure;
pub mod error;
pub mod event_store;
pub mod executor;
pub mod history;
pub mod idempotency;
pub mod items;
pub mod live;
pub mod macros;
pub mod markdown;
pub mod memo;
pub mod metrics;
pub mod names;
pub mod objects;
pub mod operations;
pub mod paging;
pub mod policies;
pub mod reports;
pub mod requester_policy;
pub mod sealing;
pub mod sessions;
pub mod sla_policy;
pub mod storage;
pub mod tickets;
pub mod users;
pub mod views;

use std::sync::Arc;

use aggregates::approval::Approval;
use aggregates::ticket::Ticket;
use projections::RuntimeHandle;
use sqlx::PgPool;

pub use error::Error;

/// The current time at PostgreSQL's precision (microseconds). Commands are dated with it, so a
/// command's answer and the read models its events feed show the same instant.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::DurationRound;
    let now = chrono::Utc::now();
    now.duration_trunc(chrono::Duration::microseconds(1))
        .unwrap_or(now)
}

/// What the use cases work with: the database, the aggregates' executors, the projection
/// runtime of this process (if it runs one), the blob store and the sign-in keys.
pub struct Services {
    pub pool: PgPool,
    pub jwt: auth::JwtKeys,
    pub tickets: executor::Executor<Ticket>,
    pub approvals: executor::Executor<Approval>,
    pub runtime: Option<RuntimeHandle>,
    /// Attachment blobs (local directory or S3-compatible bucket).
    pub storage: Arc<storage::Storage>,
    /// An argon2 hash of a random password, verified for unknown emails (equal timing).
    pub dummy_hash: String,
    /// Users' current role and active flag, checked on every authenticated request.
    pub user_status: Arc<users::StatusCache>,
    /// Revoked sign-in sessions, checked on every authenticated request.
    pub revocations: Arc<auth::Revocations>,
    /// Messages between the ticketd processes on this database (`bus::Message`).
    pub bus: bus::Bus,
    /// The open live connections of this process and what they get (`live::Hub`).
    pub live: live::Hub,
    /// Dashboards computed recently (`reports::DashboardCache::dashboard`).
    pub dashboards: reports::DashboardCache,
    /// Sign-in and registration limits per client address.
    pub throttle: auth::ThrottleLimits,
    /// The time SLA states are judged at.
    pub clock: Arc<dyn clock::Clock>,
    /// People's display names beside their ids in responses.
    pub names: Arc<names::Names>,
    /// The projection rebuilds this process started (`operations`).
    pub rebuilds: Arc<operations::Rebuilds>,
    /// The requester and approval policies, kept in memory (`policies`).
    pub policies: Arc<policies::PolicyCache>,
    /// Which addresses webhooks may not reach (checked when a URL is saved).
    pub webhook_guard: Arc<delivery::webhooks::AddressGuard>,
}

/// Every projection a process with this delivery configuration runs: [`all_projections`] and,
/// when a NATS feed is configured, its relay's outbox.
pub fn projections_for(
    pool: &PgPool,
    delivery: &delivery::config::DeliveryConfig,
) -> Vec<Arc<dyn projections::Projection>> {
    let mut all = all_projections(pool);
    if delivery::config::DeliveryConfig::set(&delivery.nats_url).is_some() {
        all.push(Arc::new(projections::delivery::NatsProjection));
    }
    all
}

/// Every projection this build runs: the read models, and the webhooks' outbox, a delivery
/// channel that is never rebuilt (`Projection::rebuildable`) (the approval process issues commands on `pool`).
pub fn all_projections(pool: &PgPool) -> Vec<Arc<dyn projections::Projection>> {
    vec![
        Arc::new(projections::tickets::TicketsProjection),
        Arc::new(projections::comments::CommentsProjection),
        Arc::new(projections::attachments::AttachmentsProjection),
        Arc::new(projections::approvals::ApprovalsProjection),
        Arc::new(approval_process::ApprovalSaga::new(pool.clone())),
        Arc::new(projections::notifications::NotificationsProjection),
        Arc::new(projections::reports::ReportsProjection),
        Arc::new(projections::delivery::WebhooksProjection),
    ]
}
