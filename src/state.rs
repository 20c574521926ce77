//! The application state shared by every handler.

use std::ops::Deref;
use std::sync::Arc;

use aggregates::approval::Approval;
use aggregates::ticket::Ticket;
use projections::RuntimeHandle;
use sqlx::PgPool;

use crate::auth::JwtKeys;
use crate::commands::Executor;
use crate::config::Config;

/// Everything a request may need.
pub struct App {
    pub pool: PgPool,
    pub config: Config,
    pub jwt: JwtKeys,
    pub tickets: Executor<Ticket>,
    pub approvals: Executor<Approval>,
    pub runtime: Option<RuntimeHandle>,
    /// Attachment blobs (local directory or S3-compatible bucket).
    pub storage: Arc<crate::storage::Storage>,
    /// An argon2 hash of a random password, verified for unknown emails (equal timing).
    pub dummy_hash: String,
    /// Users' current role and active flag, checked on every authenticated request.
    pub user_status: crate::users::StatusCache,
}

/// The cloneable handle handlers receive.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
