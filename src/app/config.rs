//! Configuration from the environment (12-factor), with `.env` support (loaded in `main`).
//! An empty variable counts as unset (`X=` in a `.env` file or `${X:-}` in a compose file).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Args;

pub use crate::service::delivery::config::{DeliveryConfig, DEFAULT_WEBHOOK_DENY};
use crate::service::storage::{BlobStore, S3Settings};

/// `development` or `production`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

/// Everything `ticketd serve` (and the CLI) reads from the environment.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// PostgreSQL URL. Without it, a private cluster is started under `$TICKETD_DATA_DIR/pg`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// HS256 key for access tokens (≥ 32 bytes; required in production).
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// The master key that wraps every person's data key: 32 random bytes, base64 (required in
    /// production; development derives one). Keep it apart from the database backups.
    #[arg(long, env = "TICKETD_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// `development` (default) or `production`.
    #[arg(long, env = "ENVIRONMENT", value_enum, default_value = "development")]
    pub environment: Environment,
    /// Where the HTTP server listens.
    #[arg(long, env = "TICKETD_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Comma-separated origins allowed by CORS (none by default: the SPA is same-origin).
    #[arg(long, env = "CORS_ORIGINS", default_value = "")]
    pub cors_origins: String,
    /// Attachments and the embedded database live here.
    #[arg(long, env = "TICKETD_DATA_DIR", default_value = ".data")]
    pub data_dir: PathBuf,
    /// The built SPA (served with history fallback).
    #[arg(long, env = "TICKETD_STATIC_DIR", default_value = "frontend/dist")]
    pub static_dir: PathBuf,
    /// The largest attachment accepted, in bytes.
    #[arg(long, env = "TICKETD_MAX_UPLOAD_BYTES", default_value_t = 25 * 1024 * 1024)]
    pub max_upload_bytes: u64,
    /// Ensure this admin account exists at start.
    #[arg(long, env = "TICKETD_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// Password of the bootstrap admin.
    #[arg(long, env = "TICKETD_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Database pool size.
    #[arg(long, env = "TICKETD_DB_POOL", default_value_t = 16)]
    pub db_pool: u32,
    /// Comma-separated addresses or CIDR ranges of reverse proxies whose `X-Forwarded-For`
    /// names the client (none by default: the peer address is the client).
    #[arg(long, env = "TICKETD_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// Failed sign-ins from one client address within 15 minutes before it gets 429.
    #[arg(long, env = "TICKETD_LOGIN_ADDRESS_LIMIT", default_value_t = 100)]
    pub login_address_limit: u32,
    /// Registrations from one client address within an hour before it gets 429.
    #[arg(long, env = "TICKETD_REGISTER_ADDRESS_LIMIT", default_value_t = 20)]
    pub register_address_limit: u32,
    /// An S3-compatible bucket for attachment blobs instead of the data directory.
    #[command(flatten)]
    pub s3: S3Config,
    /// How long clients may take, and how many may be connected.
    #[command(flatten)]
    pub limits: Limits,
    /// Send `Strict-Transport-Security` (`true`/`1`): only behind TLS (see README).
    #[arg(long, env = "TICKETD_HSTS", action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    pub hsts: bool,
    /// The bus between processes (revoked sessions, changed users).
    #[command(flatten)]
    pub bus: BusConfig,
    /// Delivering events outside: e-mail, webhooks, the NATS feed.
    #[command(flatten)]
    pub delivery: DeliveryConfig,
}

/// Deadlines for slow clients and a cap on connections (README, "Timeouts").
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Seconds a connection may take to send a request's headers, counted from when it opened
    /// or was answered last (so also how long an idle keep-alive connection stays open).
    #[arg(long, env = "TICKETD_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds a request body may go without sending anything.
    #[arg(long, env = "TICKETD_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,
    /// Seconds from a request's headers to its answer's (uploads included; not the
    /// notification stream, which has its own keep-alives and ends with its token).
    #[arg(long, env = "TICKETD_REQUEST_TIMEOUT_SECS", default_value_t = 120)]
    pub request_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, env = "TICKETD_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            request_timeout_secs: 120,
            max_connections: 1024,
        }
    }
}

/// Timing of the bus between ticketd processes and of what is kept in sync over it.
#[derive(Debug, Clone, Args)]
pub struct BusConfig {
    /// Seconds between reloads of the revoked sessions (the safety net behind the bus).
    #[arg(
        long = "session-reload-secs",
        env = "TICKETD_SESSION_RELOAD_SECS",
        default_value_t = 30
    )]
    pub session_reload_secs: u64,
    /// Milliseconds to wait before reconnecting the bus listener after its connection is lost.
    #[arg(
        long = "bus-reconnect-ms",
        env = "TICKETD_BUS_RECONNECT_MS",
        default_value_t = 1000
    )]
    pub bus_reconnect_ms: u64,
    /// How far back (seconds of log time) a live client may resume with `Last-Event-ID`;
    /// an older id gets a `reset` event and the client reloads.
    #[arg(
        long = "live-retention-secs",
        env = "TICKETD_LIVE_RETENTION_SECS",
        default_value_t = 3600
    )]
    pub live_retention_secs: u64,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            session_reload_secs: 30,
            bus_reconnect_ms: 1000,
            live_retention_secs: 3600,
        }
    }
}

/// An S3-compatible bucket for attachment blobs (needs a build with `--features s3`).
#[derive(Debug, Clone, Default, Args)]
pub struct S3Config {
    /// The bucket; unset keeps blobs under `$TICKETD_DATA_DIR/attachments`.
    #[arg(long = "s3-bucket", env = "TICKETD_S3_BUCKET")]
    pub bucket: Option<String>,
    /// The endpoint of an S3-compatible store (MinIO, Ceph, R2...).
    #[arg(long = "s3-endpoint", env = "TICKETD_S3_ENDPOINT")]
    pub endpoint: Option<String>,
    /// The bucket's region.
    #[arg(long = "s3-region", env = "TICKETD_S3_REGION")]
    pub region: Option<String>,
    /// Allow a plain-HTTP endpoint (`true`/`1`).
    #[arg(long = "s3-allow-http", env = "TICKETD_S3_ALLOW_HTTP", action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    pub allow_http: bool,
    /// Access key id.
    #[arg(
        long = "s3-access-key-id",
        env = "AWS_ACCESS_KEY_ID",
        hide_env_values = true
    )]
    pub access_key_id: Option<String>,
    /// Secret access key.
    #[arg(
        long = "s3-secret-access-key",
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub secret_access_key: Option<String>,
}

impl S3Config {
    /// Where attachment blobs go: the bucket if one is named, else `data_dir/attachments`.
    pub fn blob_store(&self, data_dir: &std::path::Path) -> BlobStore {
        let set = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        match set(&self.bucket) {
            Some(bucket) => BlobStore::S3(S3Settings {
                bucket,
                endpoint: set(&self.endpoint),
                region: set(&self.region),
                allow_http: self.allow_http,
                access_key_id: set(&self.access_key_id),
                secret_access_key: set(&self.secret_access_key),
            }),
            None => BlobStore::Local(data_dir.join("attachments")),
        }
    }
}

/// Keys that appear in examples and tutorials; refused in production.
const WELL_KNOWN_KEYS: &[&str] = &[
    "secret",
    "changeme",
    "change-me",
    "your-secret-key",
    "your-secret-key-here",
    "supersecret",
    "development-secret-key",
    "ticketd-development-key-not-for-production-use!!",
];

/// The key used in development when `SECRET_KEY` is unset (never accepted in production).
pub const DEVELOPMENT_KEY: &str = "ticketd-development-key-not-for-production-use!!";

impl Config {
    /// A configuration with defaults, for tests and tools.
    pub fn for_database(url: &str) -> Self {
        Config {
            database_url: Some(url.to_string()),
            secret_key: Some("test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz".into()),
            master_key: None,
            environment: Environment::Development,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            cors_origins: String::new(),
            data_dir: std::env::temp_dir().join("ticketd-test"),
            static_dir: PathBuf::from("frontend/dist"),
            max_upload_bytes: 25 * 1024 * 1024,
            admin_email: None,
            admin_password: None,
            db_pool: 8,
            trusted_proxies: String::new(),
            login_address_limit: 100,
            register_address_limit: 20,
            s3: S3Config::default(),
            limits: Limits::default(),
            hsts: false,
            bus: BusConfig::default(),
            delivery: DeliveryConfig::default(),
        }
    }

    /// The signing key, enforcing the production policy: present, ≥ 32 bytes, not well known.
    pub fn signing_key(&self) -> Result<String, String> {
        match (&self.secret_key, self.environment) {
            (None, Environment::Production) => {
                Err("SECRET_KEY must be set when ENVIRONMENT=production".into())
            }
            (None, Environment::Development) => Ok(DEVELOPMENT_KEY.to_string()),
            (Some(key), env) => {
                let weak = key.len() < 32
                    || WELL_KNOWN_KEYS
                        .iter()
                        .any(|k| k.eq_ignore_ascii_case(key.trim()));
                if weak && env == Environment::Production {
                    Err("SECRET_KEY is too short (< 32 bytes) or a well-known value".into())
                } else {
                    Ok(key.clone())
                }
            }
        }
    }

    /// The keyring for personal data, enforcing the production policy like [`Config::signing_key`]:
    /// a master key is required there; a malformed one is refused everywhere; development
    /// without one derives the development key and says so.
    pub fn keyring(&self) -> Result<privacy::Keyring, String> {
        match (&self.master_key, self.environment) {
            (None, Environment::Production) => {
                Err("TICKETD_MASTER_KEY must be set when ENVIRONMENT=production".into())
            }
            (None, Environment::Development) => {
                tracing::warn!(
                    "TICKETD_MASTER_KEY is not set: personal data is encrypted with the development master key"
                );
                Ok(privacy::Keyring::new(privacy::MasterKey::development()))
            }
            (Some(key), _) => privacy::MasterKey::from_base64(key)
                .map(privacy::Keyring::new)
                .map_err(|e| e.to_string()),
        }
    }

    /// The trusted proxies as networks (a bare address is a network of one).
    pub fn trusted_proxy_list(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        format!("TICKETD_TRUSTED_PROXIES: '{s}' is not an address or CIDR range")
                    })
            })
            .collect()
    }

    /// The CORS origins as a list.
    pub fn cors_origin_list(&self) -> Vec<String> {
        self.cors_origins
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }
}

/// `command` (and its subcommands) with every argument whose environment variable is set but
/// empty detached from that variable, so that the default (or nothing) applies instead of "".
pub fn ignore_empty_env(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let empty = arg
                .get_env()
                .and_then(std::env::var_os)
                .is_some_and(|v| v.is_empty());
            if empty {
                arg.env(None::<&str>)
            } else {
                arg
            }
        })
        .mut_subcommands(ignore_empty_env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_keys_are_required_in_production_and_checked_everywhere() {
        let mut c = Config::for_database("postgres://x");
        assert!(c.keyring().is_ok_and(|k| k.is_development()));
        c.master_key = Some("not base64!".into());
        assert!(c.keyring().is_err());
        c.master_key = Some("c2hvcnQ=".into());
        assert!(c.keyring().is_err());
        c.environment = Environment::Production;
        c.master_key = None;
        assert!(c.keyring().is_err());
        c.master_key = Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into());
        assert!(c.keyring().is_ok_and(|k| !k.is_development()));
    }

    #[test]
    fn production_refuses_missing_short_and_well_known_keys() {
        let mut c = Config::for_database("postgres://x");
        c.environment = Environment::Production;
        c.secret_key = None;
        assert!(c.signing_key().is_err());
        c.secret_key = Some("short".into());
        assert!(c.signing_key().is_err());
        c.secret_key = Some(DEVELOPMENT_KEY.into());
        assert!(c.signing_key().is_err());
        c.secret_key = Some("k".repeat(40));
        assert!(c.signing_key().is_ok());
        c.environment = Environment::Development;
        c.secret_key = None;
        assert_eq!(c.signing_key().ok().as_deref(), Some(DEVELOPMENT_KEY));
    }
}
