//! The appends' own connections, apart from sqlx's pool. That pool pings every connection it
//! takes back (a lone Sync and its ReadyForQuery, in `Floating::return_to_pool` of sqlx 0.8;
//! no option turns it off): one more round trip on both sides for every command, a third of
//! the server's sends to PostgreSQL under ticket creation. Here (bb8) a connection goes back
//! as it is when its statement completed, and is dropped when it did not (an I/O error, or a
//! request cancelled mid-statement), so none is handed out mid-protocol. One that idled for
//! [`PING_WHEN_IDLE_FOR`] is pinged when next handed out, as the main pool's are.

use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

/// How long a connection (of this pool or the main one) may idle before it is pinged when
/// next handed out: one in steady use is known to be alive; one that idled may have been
/// dropped (a restart, a proxy's timeout).
pub const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// Connections per repository, opened when first needed (a process has a few repositories:
/// the tickets', the approvals' and the approval process's), closed after 10 minutes idle.
const MAX_CONNECTIONS: u32 = 4;

/// A small pool of connections for single-statement appends.
#[derive(Clone)]
pub struct AppendConnections(bb8::Pool<Manager>);

/// One connection, and whether a statement on it is under way.
pub struct AppendConnection {
    conn: PgConnection,
    busy: bool,
    used: Instant,
}

struct Manager {
    options: PgConnectOptions,
}

impl bb8::ManageConnection for Manager {
    type Connection = AppendConnection;
    type Error = sqlx::Error;

    async fn connect(&self) -> Result<AppendConnection, sqlx::Error> {
        Ok(AppendConnection {
            conn: PgConnection::connect_with(&self.options).await?,
            busy: false,
            used: Instant::now(),
        })
    }

    async fn is_valid(&self, c: &mut AppendConnection) -> Result<(), sqlx::Error> {
        if c.used.elapsed() < PING_WHEN_IDLE_FOR {
            return Ok(());
        }
        c.conn.ping().await
    }

    fn has_broken(&self, c: &mut AppendConnection) -> bool {
        c.busy
    }
}

impl AppendConnections {
    /// Connections like `pool`'s (same server, database and session settings).
    pub fn like(pool: &PgPool) -> Self {
        let manager = Manager {
            options: pool.connect_options().as_ref().clone(),
        };
        AppendConnections(
            bb8::Pool::builder()
                .max_size(MAX_CONNECTIONS)
                .connection_timeout(Duration::from_secs(5))
                .idle_timeout(Duration::from_secs(600))
                .build_unchecked(manager),
        )
    }

    /// Runs `statement` on one of the connections: it goes back when `statement` completed
    /// (with rows or a database error: the connection is ready either way) and is dropped
    /// otherwise.
    pub async fn run<T>(
        &self,
        statement: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        let mut c = self.0.get().await.map_err(|e| match e {
            bb8::RunError::User(e) => e,
            bb8::RunError::TimedOut => sqlx::Error::PoolTimedOut,
        })?;
        c.busy = true;
        let result = statement(&mut c.conn).await;
        // Completed, with rows or with PostgreSQL's error (a lost race): ready for the next.
        c.busy = !matches!(result, Ok(_) | Err(sqlx::Error::Database(_)));
        c.used = Instant::now();
        result
    }
}
