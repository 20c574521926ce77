//! Connecting to PostgreSQL: the configured server (creating the database if missing), or
//! the embedded default, a private cluster under `$TICKETD_DATA_DIR/pg` started from the
//! machine's PostgreSQL binaries. Run as root, the cluster runs as `postgres` (initdb refuses
//! root); when that account cannot reach the data directory (a checkout in root's home, a
//! `mktemp -d`), the cluster lives under `/var/lib/ticketd` instead, rather than opening the
//! user's directories to others.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::service::append_connections::PING_WHEN_IDLE_FOR;
use crate::service::error::any;

/// The port of the embedded cluster.
const EMBEDDED_PORT: u16 = 54329;

/// Where root's embedded clusters go when `postgres` cannot reach the data directory.
const RELOCATED_CLUSTERS: &str = "/var/lib/ticketd";

/// Opens a pool on `url`, creating the database first if it does not exist.
pub async fn connect(url: &str, max: u32) -> any::Result<PgPool> {
    let options = PgConnectOptions::from_str(url)?.options([
        // A worker or request transaction left idle must not pause every tailer.
        ("idle_in_transaction_session_timeout", "30s"),
        ("application_name", "ticketd"),
        // The read models are small enough to stay in memory (or on SSD): a random page
        // costs about as much as the next one. At the default of 4 the planner walks the
        // whole newest-first index and filters rather than read a filter's own index in
        // order, and a page of `priority=high` costs 60 ms instead of 0.1 ms.
        ("random_page_cost", "1.1"),
    ]);
    create_database_if_missing(&options).await?;
    let pool = PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings every connection it hands out by default: one more round trip per
        // acquire (under ticket creation, 1.6 of the 6.1 sends to PostgreSQL per created
        // ticket, counted with strace). A connection in steady use is known to be alive; one
        // that has idled may have been dropped (a restart, a proxy's timeout), so only that
        // one is pinged, and replaced when it does not answer.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for < PING_WHEN_IDLE_FOR {
                    return Ok(true);
                }
                Ok(conn.ping().await.is_ok())
            })
        })
        .connect_with(options)
        .await?;
    Ok(pool)
}

async fn create_database_if_missing(options: &PgConnectOptions) -> any::Result<()> {
    let Some(name) = options.get_database().map(str::to_string) else {
        return Ok(());
    };
    let admin = options.clone().database("postgres");
    let mut conn = match PgConnection::connect_with(&admin).await {
        Ok(c) => c,
        // No rights on `postgres`: assume the database exists and let the pool say otherwise.
        Err(_) => return Ok(()),
    };
    let exists: Option<(i32,)> = sqlx::query_as("select 1 from pg_database where datname = $1")
        .bind(&name)
        .fetch_optional(&mut conn)
        .await?;
    if exists.is_none() {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        if let Err(e) = sqlx::query(&format!("create database {quoted}"))
            .execute(&mut conn)
            .await
        {
            // Another process may have created it meanwhile.
            tracing::debug!(error = %e, "create database");
        }
    }
    conn.close().await?;
    Ok(())
}

/// Runs the migrations.
pub async fn migrate(pool: &PgPool) -> any::Result<()> {
    sqlx::migrate!("./migrations").run(pool).await?;
    Ok(())
}

fn pg_bin(name: &str) -> Option<PathBuf> {
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
        .filter(|p| p.is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// Whether this process runs as root (the embedded cluster then runs as `postgres`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A PostgreSQL tool, run as the `postgres` user when we are root (initdb and pg_ctl refuse
/// root).
fn pg_command(tool: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(tool);
        command
    } else {
        Command::new(tool)
    }
}

/// Runs a PostgreSQL tool (see [`pg_command`]).
fn run_pg(tool: &Path, args: &[&str]) -> any::Result<()> {
    let status = pg_command(tool).args(args).status()?;
    if !status.success() {
        return Err(format!("{} failed ({status})", tool.display()).into());
    }
    Ok(())
}

/// Where the embedded cluster of `data_dir` lives: `data_dir/pg`, unless we are root and the
/// `postgres` account cannot reach `data_dir`; then `/var/lib/ticketd/pg-<digest of the
/// path>`, the same on every start.
pub fn cluster_dir(data_dir: &Path) -> any::Result<PathBuf> {
    let data_dir = std::fs::canonicalize(data_dir).or_else(|_| {
        std::fs::create_dir_all(data_dir)?;
        std::fs::canonicalize(data_dir)
    })?;
    let wanted = data_dir.join("pg");
    if !is_root() || postgres_can_enter(&data_dir) {
        return Ok(wanted);
    }
    let digest = Sha256::digest(data_dir.as_os_str().as_bytes());
    let base = Path::new(RELOCATED_CLUSTERS);
    std::fs::create_dir_all(base)?;
    // Only `postgres`-owned clusters (mode 700) live here: others may pass through.
    std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o755))?;
    let dir = base.join(format!("pg-{}", hex::encode(&digest[..8])));
    tracing::warn!(
        data_dir = %data_dir.display(),
        cluster = %dir.display(),
        "the postgres account cannot enter the data directory: the embedded cluster lives elsewhere"
    );
    Ok(dir)
}

/// Whether the `postgres` account can traverse every directory down to `dir`.
fn postgres_can_enter(dir: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

/// The embedded cluster this process started; stopped again when the server stops.
pub struct EmbeddedPostgres {
    pub url: String,
    dir: PathBuf,
    pg_ctl: PathBuf,
}

impl EmbeddedPostgres {
    /// Stops the cluster (fast shutdown: open sessions are ended, data is safe).
    pub fn stop(&self) {
        let dir = self.dir.to_string_lossy().to_string();
        if let Err(e) = run_pg(&self.pg_ctl, &["stop", "-D", &dir, "-m", "fast", "-w"]) {
            tracing::warn!(error = %e, "could not stop the embedded PostgreSQL");
        } else {
            tracing::info!("embedded PostgreSQL stopped");
        }
    }
}

fn embedded_port() -> u16 {
    std::env::var("TICKETD_EMBEDDED_PG_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(EMBEDDED_PORT)
}

/// Starts (initialising on first use) the embedded cluster.
pub fn start_embedded(data_dir: &Path) -> any::Result<EmbeddedPostgres> {
    const MISSING: &str =
        "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or under \
         /usr/lib/postgresql/*/bin: install the `postgresql` package (Debian/Ubuntu: \
         `apt-get install postgresql`), or set DATABASE_URL to an existing server";
    let initdb = pg_bin("initdb").ok_or(MISSING)?;
    let pg_ctl = pg_bin("pg_ctl").ok_or(MISSING)?;
    let dir = cluster_dir(data_dir)?;
    let dir_s = dir.to_string_lossy().to_string();
    if !dir.join("PG_VERSION").exists() {
        std::fs::create_dir_all(&dir)?;
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres:postgres", &dir_s])
                .status()?;
        }
        tracing::info!(dir = %dir_s, "initialising the embedded PostgreSQL cluster");
        run_pg(
            &initdb,
            &[
                "-D",
                &dir_s,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
    }
    let running = pg_command(&pg_ctl)
        .args(["status", "-D", &dir_s])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !running {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {dir_s}",
            embedded_port()
        );
        let log = format!("{dir_s}/server.log");
        run_pg(
            &pg_ctl,
            &["start", "-D", &dir_s, "-w", "-l", &log, "-o", &opts],
        )?;
    }
    Ok(EmbeddedPostgres {
        url: format!("postgres://postgres@127.0.0.1:{}/ticketd", embedded_port()),
        dir,
        pg_ctl,
    })
}
