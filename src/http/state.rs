//! The state every handler receives: the services, and the settings only HTTP needs.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::service::Services;

/// What the HTTP layer itself is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest attachment, in bytes.
    pub max_upload_bytes: u64,
    /// The built SPA, served with history fallback.
    pub static_dir: PathBuf,
    /// Origins allowed cross-origin.
    pub cors_origins: Vec<String>,
    /// From a request's headers to its answer's (the notification stream excepted).
    pub request_timeout: Duration,
    /// The longest a request body may go without sending anything.
    pub body_timeout: Duration,
    /// Whether to send `Strict-Transport-Security` (deployments behind TLS).
    pub hsts: bool,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Everything a request may need.
pub struct App {
    pub services: Services,
    pub settings: Settings,
    /// Set once this server is shutting down: open notification streams end so that the
    /// graceful shutdown does not wait for them.
    pub shutdown: tokio::sync::watch::Sender<bool>,
}

impl Deref for App {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
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
