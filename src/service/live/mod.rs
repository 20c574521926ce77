//! The live hub of a process: every open `/live` (and `/notifications/stream`) connection is
//! registered here by user, watched ticket and queue; one task per process reads what the log
//! and the notifications gained — once, however many people are connected — and hands each
//! connection its share through a small bounded channel. Processes learn of new work over the
//! bus (`LogAdvanced` from the notifications projection, `PresenceChanged`), so an idle
//! connection costs a registry entry and a channel, and database work per command does not grow
//! with the number of people connected.
//!
//! Order: the hub follows the notifications projection's checkpoint, so for every transaction
//! a connection gets its `ticket` changes, then the notifications it caused: the log order.
//! That makes a resume with `Last-Event-ID` exact (see [`resume`]).

pub mod feed;
pub mod presence;
pub mod resume;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use projections::notifications::queries::{self, Notification};
use projections::Checkpoint;
use sqlx::PgPool;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::service::bus::{Bus, Delivery, Message};
use crate::service::error::Error;
use crate::service::names::{NameMap, Names};
use feed::{Group, QueueChange, TicketChange};
use presence::Presence;

/// Items a connection may hold before it counts as stuck (it is then closed: the client
/// reconnects with `Last-Event-ID` and catches up from the database).
const BUFFER: usize = 64;
/// At most this many log events per read of the hub.
const BATCH: i64 = 500;
/// Queue changes of a connection are sent at most this often (coalesced per ticket).
const QUEUE_EVERY: Duration = Duration::from_millis(250);
/// How often expired presences are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// What a connection sends next.
#[derive(Debug, Clone)]
pub enum Item {
    Ticket(Checkpoint, TicketChange),
    Queue(Checkpoint, QueueChange),
    Notification(Notification),
    Presence(Presence),
    /// What the client holds may be stale: reload.
    Reset,
}

/// What a connection asks for.
#[derive(Debug, Clone)]
pub struct Interest {
    pub user_id: i64,
    pub session: Option<Uuid>,
    pub staff: bool,
    pub tickets: Vec<i64>,
    pub queue: bool,
    /// `ticket` and `presence` items (false: notifications only, `/notifications/stream`).
    pub live: bool,
}

struct Conn {
    interest: Interest,
    tx: mpsc::Sender<Item>,
    /// Coalesced queue changes not sent yet: ticket → (checkpoint, version).
    pending: BTreeMap<i64, (Checkpoint, i64)>,
    last_flush: Instant,
}

impl Conn {
    /// Sends the pending queue changes now (before anything later in the log).
    fn flush(&mut self) -> bool {
        self.last_flush = Instant::now();
        let mut pending: Vec<(i64, (Checkpoint, i64))> =
            std::mem::take(&mut self.pending).into_iter().collect();
        pending.sort_by_key(|(_, (at, _))| *at);
        pending.into_iter().all(|(ticket_id, (at, version))| {
            self.tx
                .try_send(Item::Queue(at, QueueChange { ticket_id, version }))
                .is_ok()
        })
    }

    fn send(&mut self, item: Item) -> bool {
        (self.pending.is_empty() || self.flush()) && self.tx.try_send(item).is_ok()
    }
}

#[derive(Default)]
struct Registry {
    /// Everything up to here has been handed out.
    head: Checkpoint,
    next: u64,
    conns: HashMap<u64, Conn>,
    by_ticket: HashMap<i64, HashSet<u64>>,
    by_user: HashMap<i64, HashSet<u64>>,
    queue: HashSet<u64>,
}

impl Registry {
    fn remove(&mut self, id: u64) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        for t in &conn.interest.tickets {
            if let Some(set) = self.by_ticket.get_mut(t) {
                set.remove(&id);
                if set.is_empty() {
                    self.by_ticket.remove(t);
                }
            }
        }
        if let Some(set) = self.by_user.get_mut(&conn.interest.user_id) {
            set.remove(&id);
            if set.is_empty() {
                self.by_user.remove(&conn.interest.user_id);
            }
        }
        self.queue.remove(&id);
    }

    /// Sends `item` to connection `id`; a stuck one is closed.
    fn send(&mut self, id: u64, item: Item) {
        if let Some(conn) = self.conns.get_mut(&id) {
            if !conn.send(item) {
                self.remove(id);
            }
        }
    }
}

/// A registered connection: its items arrive on `items`; dropping it unregisters.
pub struct Subscription {
    pub items: mpsc::Receiver<Item>,
    /// The hub's head when it registered: the catch-up reads up to here, live items follow.
    pub head: Checkpoint,
    id: u64,
    hub: Arc<Inner>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.lock().remove(self.id);
    }
}

struct Inner {
    registry: Mutex<Registry>,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The process-wide hub.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
    /// How far back a `Last-Event-ID` may resume (older: `reset`).
    pub retention: Duration,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(Duration::from_secs(3600))
    }
}

impl Hub {
    /// A hub whose clients may resume up to `retention` back.
    pub fn new(retention: Duration) -> Self {
        Hub {
            inner: Arc::new(Inner {
                registry: Mutex::new(Registry::default()),
            }),
            retention,
        }
    }

    /// Registers a connection.
    pub fn subscribe(&self, interest: Interest) -> Subscription {
        let (tx, items) = mpsc::channel(BUFFER);
        let mut r = self.inner.lock();
        r.next += 1;
        let id = r.next;
        for t in &interest.tickets {
            r.by_ticket.entry(*t).or_default().insert(id);
        }
        r.by_user.entry(interest.user_id).or_default().insert(id);
        if interest.queue {
            r.queue.insert(id);
        }
        r.conns.insert(
            id,
            Conn {
                interest,
                tx,
                pending: BTreeMap::new(),
                last_flush: Instant::now(),
            },
        );
        Subscription {
            items,
            head: r.head,
            id,
            hub: self.inner.clone(),
        }
    }

    /// How many connections are open (metrics, tests).
    pub fn connections(&self) -> usize {
        self.inner.lock().conns.len()
    }

    /// Starts the hub's task (it lives as long as the bus).
    pub fn start(&self, pool: &PgPool, bus: &Bus, names: Arc<Names>) {
        let task = Task {
            hub: self.inner.clone(),
            pool: pool.clone(),
            names,
            target: Checkpoint::default(),
            dirty_presence: HashSet::new(),
        };
        let deliveries = bus.subscribe();
        bus.attach(tokio::spawn(task.run(deliveries)));
        let pool = pool.clone();
        bus.attach(tokio::spawn(async move {
            let mut every = tokio::time::interval(SWEEP_EVERY);
            loop {
                every.tick().await;
                if let Err(e) = presence::sweep(&pool).await {
                    tracing::debug!(error = %e, "presence sweep failed");
                }
            }
        }));
    }
}

struct Task {
    hub: Arc<Inner>,
    pool: PgPool,
    /// The process's name cache (the actors of the changes handed out).
    names: Arc<Names>,
    /// Where the notifications projection has got to: the hub reads up to here.
    target: Checkpoint,
    dirty_presence: HashSet<i64>,
}

impl Task {
    async fn run(mut self, mut deliveries: tokio::sync::broadcast::Receiver<Delivery>) {
        self.resync().await;
        self.hub.lock().head = self.target;
        let mut tick = tokio::time::interval(QUEUE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                d = deliveries.recv() => match d {
                    Ok(Delivery::Message(m)) => self.on_message(m),
                    Ok(Delivery::Resync) | Err(RecvError::Lagged(_)) => self.resync().await,
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => self.flush_queues(),
            }
            // Take whatever else arrived before working.
            while let Ok(d) = deliveries.try_recv() {
                match d {
                    Delivery::Message(m) => self.on_message(m),
                    Delivery::Resync => self.resync().await,
                }
            }
            self.catch_up_log().await;
            self.send_presence().await;
        }
    }

    fn on_message(&mut self, message: Message) {
        match message {
            Message::LogAdvanced { checkpoint } => {
                if let Ok(cp) = checkpoint.parse::<Checkpoint>() {
                    self.target = self.target.max(cp);
                }
            }
            Message::PresenceChanged { ticket_id } => {
                self.dirty_presence.insert(ticket_id);
            }
            Message::UserRenamed { .. }
            | Message::PoliciesChanged
            | Message::KeyDestroyed { .. } => {}
            Message::SessionsRevoked { sessions } => {
                let mut r = self.hub.lock();
                let ended: Vec<u64> = r
                    .conns
                    .iter()
                    .filter(|(_, c)| c.interest.session.is_some_and(|s| sessions.contains(&s)))
                    .map(|(id, _)| *id)
                    .collect();
                ended.into_iter().for_each(|id| r.remove(id));
            }
            Message::UserChanged { user_id } => {
                // Role or active flag changed: the client reconnects, and is checked afresh.
                let mut r = self.hub.lock();
                let ended: Vec<u64> = r
                    .by_user
                    .get(&user_id)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                ended.into_iter().for_each(|id| r.remove(id));
            }
        }
    }

    /// After a (re)connect of the bus: where the projection is, and every watched presence.
    async fn resync(&mut self) {
        match feed::notifications_checkpoint(&self.pool).await {
            Ok(cp) => self.target = self.target.max(cp),
            Err(e) => tracing::warn!(error = %e, "live hub cannot read the checkpoint"),
        }
        let watched: Vec<i64> = self.hub.lock().by_ticket.keys().copied().collect();
        self.dirty_presence.extend(watched);
    }

    fn flush_queues(&self) {
        let mut r = self.hub.lock();
        let due: Vec<u64> = r
            .queue
            .iter()
            .copied()
            .filter(|id| {
                r.conns
                    .get(id)
                    .is_some_and(|c| !c.pending.is_empty() && c.last_flush.elapsed() >= QUEUE_EVERY)
            })
            .collect();
        for id in due {
            let ok = r.conns.get_mut(&id).is_some_and(Conn::flush);
            if !ok {
                r.remove(id);
            }
        }
    }

    /// Reads the log from the head to the target in batches and hands it out.
    async fn catch_up_log(&mut self) {
        loop {
            let (head, users) = {
                let r = self.hub.lock();
                (r.head, r.by_user.keys().copied().collect::<Vec<i64>>())
            };
            if head >= self.target {
                return;
            }
            if users.is_empty() {
                self.hub.lock().head = self.target;
                return;
            }
            match self.read_batch(head, &users).await {
                Ok(batch) => self.dispatch(batch),
                Err(e) => {
                    tracing::warn!(error = %e, "live hub cannot read the log");
                    return;
                }
            }
        }
    }

    async fn read_batch(&self, head: Checkpoint, users: &[i64]) -> Result<Batch, Error> {
        let events = feed::read_range(&self.pool, (head, self.target), None, BATCH).await?;
        let upto = events.last().map_or(self.target, |e| e.checkpoint());
        let positions: Vec<i64> = events.iter().map(|e| e.global_position).collect();
        let notifications = if positions.is_empty() {
            Vec::new()
        } else {
            queries::caused_by(&self.pool, &positions, users).await?
        };
        let groups = feed::groups(&events);
        let mut actors: Vec<i64> = groups.iter().filter_map(|g| g.actor_id).collect();
        actors.sort_unstable();
        actors.dedup();
        let names = self.names.of(&self.pool, &actors).await?;
        let txids: HashMap<i64, Checkpoint> = events
            .iter()
            .map(|e| (e.global_position, e.checkpoint()))
            .collect();
        Ok(Batch {
            upto,
            groups,
            notifications: notifications
                .into_iter()
                .filter_map(|n| {
                    let at = txids.get(&n.source_position)?;
                    Some((at.txid, n))
                })
                .collect(),
            names,
        })
    }

    /// Hands a batch out in log order: per transaction, the ticket changes, then the
    /// notifications.
    fn dispatch(&self, batch: Batch) {
        let mut r = self.hub.lock();
        let mut notes = batch.notifications.into_iter().peekable();
        let mut groups = batch.groups.iter().peekable();
        while groups.peek().is_some() || notes.peek().is_some() {
            let tx = match (groups.peek(), notes.peek()) {
                (Some(g), Some((t, _))) => g.last.txid.min(*t),
                (Some(g), None) => g.last.txid,
                (None, Some((t, _))) => *t,
                (None, None) => break,
            };
            while let Some(g) = groups.next_if(|g| g.last.txid == tx) {
                hand_out_group(&mut r, g, &batch.names);
            }
            while let Some((_, n)) = notes.next_if(|(t, _)| *t == tx) {
                let ids: Vec<u64> = r
                    .by_user
                    .get(&n.user_id)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                for id in ids {
                    let staff = r.conns.get(&id).is_some_and(|c| c.interest.staff);
                    if staff || !n.notification.internal {
                        r.send(id, Item::Notification(n.notification.clone()));
                    }
                }
            }
        }
        r.head = r.head.max(batch.upto);
    }

    /// Sends the presence of the tickets whose presence changed to their watchers.
    async fn send_presence(&mut self) {
        if self.dirty_presence.is_empty() {
            return;
        }
        let tickets: Vec<i64> = {
            let r = self.hub.lock();
            self.dirty_presence
                .drain()
                .filter(|t| r.by_ticket.contains_key(t))
                .collect()
        };
        if tickets.is_empty() {
            return;
        }
        let rows = match presence::read(&self.pool, &tickets).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "live hub cannot read presence");
                return;
            }
        };
        let mut r = self.hub.lock();
        for t in tickets {
            let ids: Vec<u64> = r
                .by_ticket
                .get(&t)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            for id in ids {
                let Some(conn) = r.conns.get(&id) else {
                    continue;
                };
                if conn.interest.live {
                    let seen = presence::as_seen(t, &rows, conn.interest.staff);
                    r.send(id, Item::Presence(seen));
                }
            }
        }
    }
}

/// One group to its watchers (`ticket`) and to the queue (`queue`, coalesced).
fn hand_out_group(r: &mut Registry, g: &Group, names: &NameMap) {
    let watchers: Vec<u64> = r
        .by_ticket
        .get(&g.ticket_id)
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    for id in watchers {
        let Some(conn) = r.conns.get(&id) else {
            continue;
        };
        if !conn.interest.live {
            continue;
        }
        if let Some(change) = g.change_for(conn.interest.staff, names) {
            r.send(id, Item::Ticket(g.last, change));
        }
    }
    let queue: Vec<u64> = r.queue.iter().copied().collect();
    for id in queue {
        if let Some(conn) = r.conns.get_mut(&id) {
            conn.pending.insert(g.ticket_id, (g.last, g.version));
        }
    }
}

struct Batch {
    upto: Checkpoint,
    groups: Vec<Group>,
    /// (the causing transaction, the notification), in id order.
    notifications: Vec<(u64, queries::Routed)>,
    names: NameMap,
}
