//! The message bus between ticketd processes on one database: typed messages published with
//! `pg_notify` inside the committing transaction (so they are delivered only on commit), one
//! `LISTEN` connection per process, and an in-memory `broadcast` fan-out to every subscriber.
//!
//! Notifications sent while the listener is disconnected are lost, so after every (re)connect
//! the bus delivers [`Delivery::Resync`]: subscribers reload what they keep from the database.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{PgConnection, PgPool};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::service::error::Error;

/// The one PostgreSQL channel every ticketd process listens on.
pub const CHANNEL: &str = projections::BUS_CHANNEL;

/// `pg_notify` payloads must stay under 8000 bytes: lists are sent in chunks of this many.
pub const MAX_IDS_PER_MESSAGE: usize = 100;

/// What travels on the channel (JSON, tagged by `type`). Add variants for new uses; a process
/// ignores a message it does not know (an older build during a rolling deploy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Sign-in sessions (refresh-token families) were revoked: their access tokens are refused
    /// from now on. At most [`MAX_IDS_PER_MESSAGE`] ids per message.
    SessionsRevoked { sessions: Vec<Uuid> },
    /// A user's role or active flag changed: forget what is cached about them.
    UserChanged { user_id: i64 },
    /// A user's display name changed: forget the cached name.
    UserRenamed { user_id: i64 },
    /// The notifications projection committed a batch up to `checkpoint` (`<txid>.<position>`):
    /// the live hubs hand out the events and notifications up to there. Sent by the projections
    /// crate.
    LogAdvanced { checkpoint: String },
    /// Who is on a ticket changed (`ticket_presence`).
    PresenceChanged { ticket_id: i64 },
    /// The requester policy or an approval policy changed: forget the cached copies
    /// (`policies::PolicyCache`).
    PoliciesChanged,
    /// A person was erased: every process drops their data key from its cache.
    KeyDestroyed { person_id: i64 },
}

/// What subscribers receive.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// A message from some process (this one included).
    Message(Message),
    /// The listener (re)connected, or this subscriber lagged: messages may have been missed, so
    /// reload from the database.
    Resync,
}

/// Timing of the listener.
#[derive(Debug, Clone, Copy)]
pub struct BusSettings {
    /// How long to wait before reconnecting a lost listener connection.
    pub reconnect_delay: Duration,
}

/// The process-wide bus: subscribe for deliveries, publish inside a transaction.
pub struct Bus {
    sender: broadcast::Sender<Delivery>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus {
            sender: broadcast::channel(1024).0,
            tasks: Mutex::new(Vec::new()),
        }
    }
}

impl Bus {
    /// A receiver of every delivery from now on. A receiver that falls behind gets
    /// `RecvError::Lagged`, which it must treat as [`Delivery::Resync`].
    pub fn subscribe(&self) -> broadcast::Receiver<Delivery> {
        self.sender.subscribe()
    }

    /// Hands a message to this process's subscribers only (tests, and what was just committed
    /// here, before the NOTIFY comes back).
    pub fn deliver_locally(&self, message: Message) {
        let _ = self.sender.send(Delivery::Message(message));
    }

    /// Starts the listener: a connection of its own (`application_name` `ticketd bus`) that
    /// listens on [`CHANNEL`] and reconnects after `reconnect_delay` when lost.
    pub fn start(&self, pool: &PgPool, settings: BusSettings) {
        let options = (*pool.connect_options())
            .clone()
            .application_name("ticketd bus");
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .connect_lazy_with(options);
        let sender = self.sender.clone();
        self.attach(tokio::spawn(listen(listen_pool, sender, settings)));
    }

    /// Keeps a task that lives as long as the bus (stopped by [`Bus::stop`]).
    pub fn attach(&self, task: JoinHandle<()>) {
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }

    /// Stops the listener and the attached tasks.
    pub fn stop(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

/// Publishes `message` on `conn`: inside a transaction it is delivered when (and only if) the
/// transaction commits.
pub async fn publish(conn: &mut PgConnection, message: &Message) -> Result<(), Error> {
    let payload = serde_json::to_string(message).map_err(Error::internal)?;
    sqlx::query("select pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// The listener loop: connect and `LISTEN`, announce a resync, forward notifications until the
/// connection is lost, wait, repeat.
async fn listen(pool: PgPool, sender: broadcast::Sender<Delivery>, settings: BusSettings) {
    loop {
        match connect(&pool).await {
            Ok(mut listener) => {
                // Listening from here on: whatever was missed before is in the database.
                let _ = sender.send(Delivery::Resync);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(n)) => match serde_json::from_str::<Message>(n.payload()) {
                            Ok(message) => {
                                let _ = sender.send(Delivery::Message(message));
                            }
                            Err(e) => tracing::debug!(error = %e, "unknown bus message ignored"),
                        },
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "bus listener lost its connection");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "bus listener cannot connect"),
        }
        tokio::time::sleep(settings.reconnect_delay).await;
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Reconnecting is done here, so that a resync always follows a new LISTEN.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
