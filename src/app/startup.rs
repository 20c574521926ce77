//! Building the application from its configuration, and `ticketd serve`.

use std::sync::Arc;
use std::time::Duration;

use projections::runtime::RuntimeConfig;
use projections::{Runtime, RuntimeHandle};
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::app::config::Config;
use crate::app::db;
use crate::http::state::{App, AppState, Settings};
use crate::service::auth::JwtKeys;
use crate::service::bus::BusSettings;
use crate::service::clock::{Clock, SystemClock};
use crate::service::error::any::Result;
use crate::service::executor::Executor;
use crate::service::sessions::{keep_in_sync, SyncSettings};
use crate::service::Services;

/// The database URL: the configured one, or the embedded cluster's (started if needed).
pub fn database_url(config: &Config) -> Result<String> {
    match &config.database_url {
        Some(url) => Ok(url.clone()),
        None => Ok(db::start_embedded(&config.data_dir)?.url),
    }
}

/// Connects (to the embedded cluster when no `DATABASE_URL` is set, starting it if needed)
/// and migrates. Returns the embedded cluster if this call started one.
pub async fn open_database_with(config: &Config) -> Result<(PgPool, Option<db::EmbeddedPostgres>)> {
    let (url, embedded) = match &config.database_url {
        Some(url) => (url.clone(), None),
        None => {
            let e = db::start_embedded(&config.data_dir)?;
            (e.url.clone(), Some(e))
        }
    };
    let pool = db::connect(&url, config.db_pool).await?;
    db::migrate(&pool).await?;
    Ok((pool, embedded))
}

/// Connects without migrating, with one connection (read-only commands such as `replay`).
pub async fn connect_read_only(config: &Config) -> Result<PgPool> {
    let url = database_url(config)?;
    let options: sqlx::postgres::PgConnectOptions = url.parse()?;
    Ok(sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_with(options.application_name("ticketd replay"))
        .await?)
}

/// Connects and migrates (CLI commands; the embedded cluster, if used, keeps running).
pub async fn open_database(config: &Config) -> Result<PgPool> {
    Ok(open_database_with(config).await?.0)
}

/// Builds the state (and, with `run_projections`, starts the projection workers).
pub async fn build_state(config: Config, pool: PgPool, run_projections: bool) -> Result<AppState> {
    build_state_with_clock(config, pool, run_projections, Arc::new(SystemClock)).await
}

/// [`build_state`] with the clock SLA states are judged at (tests fix it).
pub async fn build_state_with_clock(
    config: Config,
    pool: PgPool,
    run_projections: bool,
    clock: Arc<dyn Clock>,
) -> Result<AppState> {
    let secret = config.signing_key()?;
    install_keyring(&config, &pool).await?;
    let runtime: Option<RuntimeHandle> = if run_projections {
        Some(
            Runtime::new(
                pool.clone(),
                crate::service::projections_for(&pool, &config.delivery),
                RuntimeConfig::default(),
            )
            .start()
            .await?,
        )
    } else {
        None
    };
    let tickets = Executor::new(pool.clone());
    let approvals = Executor::new(pool.clone());
    if let Some(rt) = &runtime {
        tickets.set_runtime(rt.clone());
        approvals.set_runtime(rt.clone());
    }
    let blobs = config.s3.blob_store(&config.data_dir);
    let storage = Arc::new(crate::service::storage::Storage::open_store(&blobs)?);
    if run_projections {
        tokio::spawn(
            storage
                .clone()
                .run_collector(pool.clone(), std::time::Duration::from_secs(600)),
        );
        tokio::spawn(crate::service::idempotency::run_purger(
            pool.clone(),
            std::time::Duration::from_secs(3600),
        ));
    }
    let dummy_hash = crate::service::auth::hash_password(uuid::Uuid::new_v4().to_string()).await?;
    let settings = http_settings(&config)?;
    let services = Services {
        pool,
        jwt: JwtKeys::new(&secret),
        tickets,
        approvals,
        runtime,
        storage,
        dummy_hash,
        user_status: Default::default(),
        revocations: Default::default(),
        bus: Default::default(),
        live: crate::service::live::Hub::new(Duration::from_secs(
            config.bus.live_retention_secs.max(1),
        )),
        dashboards: Default::default(),
        throttle: crate::service::auth::ThrottleLimits {
            login_address_limit: config.login_address_limit,
            register_address_limit: config.register_address_limit,
        },
        clock,
        names: Default::default(),
        rebuilds: Default::default(),
        policies: Default::default(),
        webhook_guard: Arc::new(crate::service::delivery::webhooks::AddressGuard::new(
            config.delivery.deny_list()?,
        )),
    };
    start_bus(&services, &config).await?;
    let shutdown = start_delivery(&services, &config).await?;
    Ok(AppState(Arc::new(App {
        services,
        settings,
        shutdown,
    })))
}

/// Starts the senders of the delivery channels where projections run; the sender stops them.
async fn start_delivery(
    services: &Services,
    config: &Config,
) -> Result<tokio::sync::watch::Sender<bool>> {
    let shutdown = tokio::sync::watch::channel(false).0;
    if let Some(runtime) = &services.runtime {
        crate::service::delivery::start(
            &services.pool,
            &config.delivery,
            runtime.clone(),
            shutdown.subscribe(),
        )
        .await?;
    }
    Ok(shutdown)
}

/// What the HTTP layer itself is configured with.
fn http_settings(config: &Config) -> Result<Settings> {
    Ok(Settings {
        max_upload_bytes: config.max_upload_bytes,
        static_dir: config.static_dir.clone(),
        cors_origins: config.cors_origin_list(),
        request_timeout: std::time::Duration::from_secs(config.limits.request_timeout_secs.max(1)),
        body_timeout: std::time::Duration::from_secs(config.limits.body_timeout_secs.max(1)),
        hsts: config.hsts,
        trusted_proxies: config.trusted_proxy_list()?,
    })
}

/// Makes the configured keyring this process's, after checking that its master key opens the
/// data keys already stored (a wrong key fails here, loudly, not as "[erased]" everywhere).
pub async fn install_keyring(config: &Config, pool: &PgPool) -> Result<()> {
    let keyring = config.keyring()?;
    keyring.check(pool).await?;
    privacy::install(Arc::new(keyring));
    Ok(())
}

/// Loads the revoked sessions and starts the bus listener that keeps them (and the cached user
/// statuses) current.
async fn start_bus(services: &Services, config: &Config) -> Result<()> {
    let sync = SyncSettings {
        reload_every: Duration::from_secs(config.bus.session_reload_secs.max(1)),
    };
    keep_in_sync(services, sync).await?;
    let bus = BusSettings {
        reconnect_delay: Duration::from_millis(config.bus.bus_reconnect_ms),
    };
    services
        .live
        .start(&services.pool, &services.bus, services.names.clone());
    services.bus.start(&services.pool, bus);
    Ok(())
}

/// Ensures an admin exists: the configured one, or on a database without any admin, one
/// with a generated password printed once.
pub async fn bootstrap_admin(state: &AppState, config: &Config) -> Result<()> {
    match (&config.admin_email, &config.admin_password) {
        (Some(email), Some(password)) => {
            crate::service::users::ensure_admin(&state.pool, email, password)
                .await
                .map_err(admin_variables_error)?;
            tracing::info!(%email, "bootstrap admin ensured");
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(
                "set both TICKETD_ADMIN_EMAIL and TICKETD_ADMIN_PASSWORD, or neither".into(),
            );
        }
        (None, None) => {
            if !crate::service::users::admin_exists(&state.pool).await? {
                let password = uuid::Uuid::new_v4().simple().to_string();
                let email = "admin@ticketd.local";
                crate::service::users::ensure_admin(&state.pool, email, &password).await?;
                // Printed once, on purpose, to the operator's terminal (not the log).
                eprintln!("\n  ticketd: created admin {email} with password {password}\n  (set TICKETD_ADMIN_EMAIL / TICKETD_ADMIN_PASSWORD to choose your own)\n");
            }
        }
    }
    Ok(())
}

/// A refused bootstrap admin as a startup error naming the variables and every problem.
fn admin_variables_error(e: crate::service::error::Error) -> crate::service::error::any::Error {
    match e {
        crate::service::error::Error::Validation(problems) => {
            let problems: Vec<String> = problems.into_iter().map(|p| p.msg).collect();
            format!(
                "TICKETD_ADMIN_EMAIL / TICKETD_ADMIN_PASSWORD refused: {}",
                problems.join("; ")
            )
            .into()
        }
        other => other.into(),
    }
}

/// `ticketd serve`: API, SPA and projection workers until Ctrl-C / SIGTERM.
pub async fn serve(config: Config) -> Result<()> {
    // Refuse a weak key in production before touching anything.
    config.signing_key()?;
    config.keyring()?;
    let (pool, embedded) = open_database_with(&config).await?;
    let result = serve_on(config, pool).await;
    if let Some(e) = embedded {
        e.stop();
    }
    result
}

async fn serve_on(config: Config, pool: PgPool) -> Result<()> {
    let state = build_state(config.clone(), pool.clone(), true).await?;
    bootstrap_admin(&state, &config).await?;
    let listener = TcpListener::bind(config.addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "ticketd listening");
    let app = crate::http::app(state.clone());
    crate::app::server::serve(listener, app, &config.limits, {
        let state = state.clone();
        async move {
            shutdown_signal().await;
            crate::http::notifications::close_streams(&state);
        }
    })
    .await;
    let _ = state.shutdown.send(true);
    state.bus.stop();
    if let Some(rt) = &state.runtime {
        rt.shutdown().await;
    }
    pool.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
