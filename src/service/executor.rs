//! Running commands against aggregates: load, handle, commit through our event repository (`event_store`, under `sealing`), with
//! `If-Match` checks, a bounded retry of lost optimistic-concurrency races, audit metadata
//! on every event, and the consistency token that lets a client read its own writes.

use std::collections::HashMap;
use std::time::Duration;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventStore};
use projections::{Checkpoint, RuntimeHandle};
use rand::Rng;
use sqlx::PgPool;

use crate::service::error::Error;
use crate::service::event_store::{capture_numbered, capture_position, Numbering};
use crate::service::sealing::SealingRepository;

/// How many times a lost race is retried before answering 409.
const MAX_ATTEMPTS: usize = 4;

/// An aggregate after a command, with its version (the last event's sequence).
#[derive(Debug, Clone)]
pub struct Committed<A: Aggregate> {
    pub aggregate: A,
    pub version: usize,
    /// Where the last new event sits in the log (None if the command changed nothing).
    pub token: Option<Checkpoint>,
    /// How many events the command appended.
    pub appended: usize,
    /// The events of a command that created the aggregate ([`Executor::create_numbered`]); empty
    /// otherwise (no copy of every command's events is kept on the hot path).
    pub events: Vec<A::Event>,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    #[error(transparent)]
    Domain(E),
    #[error("the resource changed since version {expected}")]
    Stale { expected: usize, actual: usize },
    #[error("too many concurrent changes")]
    Conflict,
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// Who caused a command and from where: the audit "who" stored with every event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    /// The signed-in user, if any.
    pub user_id: Option<i64>,
    pub request_id: String,
    pub client_ip: String,
    pub user_agent: String,
}

impl Actor {
    /// A user acting without request facts (seeding, tests, processes acting for a user).
    pub fn user(user_id: i64) -> Self {
        Actor {
            user_id: Some(user_id),
            ..Actor::default()
        }
    }

    /// The event metadata: `user_id` (when known), `request_id`, `client_ip`, `user_agent`.
    pub fn metadata(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        if let Some(id) = self.user_id {
            m.insert("user_id".into(), id.to_string());
        }
        m.insert("request_id".into(), self.request_id.clone());
        m.insert("client_ip".into(), self.client_ip.clone());
        m.insert("user_agent".into(), self.user_agent.clone());
        m
    }
}

/// Runs commands for one aggregate type.
pub struct Executor<A: Aggregate> {
    store: PersistedEventStore<SealingRepository, A>,
    pool: PgPool,
    runtime: std::sync::OnceLock<RuntimeHandle>,
}

impl<A> Executor<A>
where
    A: Aggregate + Clone,
    A::Services: Default,
{
    /// An executor on `pool` (no queries: projections tail the log instead).
    pub fn new(pool: PgPool) -> Self {
        // Personal fields are sealed on the way in and opened on the way out (`sealing`).
        let repo = SealingRepository::new(pool.clone());
        Executor {
            store: PersistedEventStore::new_event_store(repo),
            pool,
            runtime: std::sync::OnceLock::new(),
        }
    }

    /// Lets committed commands wake this process's projections at once.
    pub fn set_runtime(&self, runtime: RuntimeHandle) {
        let _ = self.runtime.set(runtime);
    }

    /// Wakes this process's projections that read one of `event_types`, just committed.
    fn wake_for(&self, event_types: &[String]) {
        if let Some(rt) = self.runtime.get() {
            rt.wake_for(A::TYPE, event_types);
        }
    }

    /// Loads an aggregate and its version (0 if it has no events).
    pub async fn load(&self, id: &str) -> Result<(A, usize), CommandError<A::Error>> {
        let ctx = self
            .store
            .load_aggregate(id)
            .await
            .map_err(map_store_error)?;
        Ok((ctx.aggregate, ctx.current_sequence))
    }

    /// Runs `command()` against aggregate `id`. With `expected`, a different current
    /// version is `Stale` (412). A lost race reloads and retries a bounded number of times.
    pub async fn execute(
        &self,
        id: &str,
        expected: Option<usize>,
        metadata: HashMap<String, String>,
        command: impl Fn(&A) -> A::Command,
    ) -> Result<Committed<A>, CommandError<A::Error>> {
        let services = A::Services::default();
        for attempt in 1..=MAX_ATTEMPTS {
            let mut ctx = self
                .store
                .load_aggregate(id)
                .await
                .map_err(map_store_error)?;
            let version = ctx.current_sequence;
            if let Some(expected) = expected {
                if expected != version {
                    return Err(CommandError::Stale {
                        expected,
                        actual: version,
                    });
                }
            }
            let cmd = command(&ctx.aggregate);
            let sink = cqrs_es::event_sink::EventSink::default();
            ctx.aggregate
                .handle(cmd, &services, &sink)
                .await
                .map_err(CommandError::Domain)?;
            let events = sink.collect().await;
            if events.is_empty() {
                return Ok(Committed {
                    aggregate: ctx.aggregate,
                    version,
                    token: None,
                    appended: 0,
                    events: Vec::new(),
                });
            }
            let aggregate = ctx.aggregate.clone();
            let appended = events.len();
            let event_types: Vec<String> = events.iter().map(DomainEvent::event_type).collect();
            let (committed, at) =
                capture_position(self.store.commit(events, ctx, metadata.clone())).await;
            match committed {
                Ok(_) => {
                    let new_version = version + appended;
                    let token = match at {
                        Some(at) => Some(at),
                        None => self.position_of(id, new_version).await,
                    };
                    self.wake_for(&event_types);
                    return Ok(Committed {
                        aggregate,
                        version: new_version,
                        token,
                        appended,
                        events: Vec::new(),
                    });
                }
                Err(AggregateError::AggregateConflict) if attempt < MAX_ATTEMPTS => {
                    // Another writer won: jittered pause, reload, try again.
                    let pause = rand::thread_rng().gen_range(1..=10 * attempt as u64);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(e) => return Err(map_store_error(e)),
            }
        }
        Err(CommandError::Conflict)
    }

    /// Runs a command that creates a new aggregate numbered from a sequence by the append
    /// itself (no `nextval` round trip first): the command is decided with the number 0, and
    /// `renumber` writes the number the append took into each of its events, which are then
    /// folded again. Its ids follow the order of creation across processes, as `nextval` does.
    pub async fn create_numbered(
        &self,
        numbering: Numbering,
        metadata: HashMap<String, String>,
        command: A::Command,
        renumber: impl Fn(&mut A::Event, i64),
    ) -> Result<Committed<A>, CommandError<A::Error>> {
        let mut ctx = cqrs_es::persist::EventStoreAggregateContext {
            aggregate_id: "0".to_string(),
            aggregate: A::default(),
            current_sequence: 0,
            current_snapshot: None,
        };
        let sink = cqrs_es::event_sink::EventSink::default();
        ctx.aggregate
            .handle(command, &A::Services::default(), &sink)
            .await
            .map_err(CommandError::Domain)?;
        let mut events = sink.collect().await;
        let appended = events.len();
        let (committed, token, number) =
            capture_numbered(numbering, self.store.commit(events.clone(), ctx, metadata)).await;
        committed.map_err(map_store_error)?;
        let number = number.ok_or_else(|| {
            CommandError::Internal("the append did not return the new number".into())
        })?;
        let mut aggregate = A::default();
        for event in &mut events {
            renumber(event, number);
            aggregate.apply(event.clone());
        }
        let event_types: Vec<String> = events.iter().map(DomainEvent::event_type).collect();
        self.wake_for(&event_types);
        Ok(Committed {
            aggregate,
            version: appended,
            token,
            appended,
            events,
        })
    }

    /// Where this aggregate's event at `sequence` sits in the log (the consistency token of
    /// the write that appended it).
    pub async fn position_of(&self, id: &str, sequence: usize) -> Option<Checkpoint> {
        projections::log::event_position(&self.pool, A::TYPE, id, sequence as i64)
            .await
            .ok()
            .flatten()
    }
}

fn map_store_error<E: std::error::Error>(e: AggregateError<E>) -> CommandError<E> {
    match e {
        AggregateError::UserError(e) => CommandError::Domain(e),
        AggregateError::AggregateConflict => CommandError::Conflict,
        AggregateError::DatabaseConnectionError(e) => CommandError::Unavailable(e.to_string()),
        other => CommandError::Internal(other.to_string()),
    }
}

impl Error {
    /// The answer to a failed command on a `noun` ("ticket", "approval"): the domain's own
    /// refusals through `domain`, the executor's (stale version, lost races, database down)
    /// the same way for every aggregate.
    pub fn from_command<E: std::error::Error>(
        e: CommandError<E>,
        noun: &str,
        domain: impl FnOnce(E) -> Error,
    ) -> Self {
        match e {
            CommandError::Domain(e) => domain(e),
            CommandError::Stale { .. } => Error::PreconditionFailed(format!(
                "The {noun} has changed since you loaded it; reload and try again"
            )),
            CommandError::Conflict => Error::conflict(format!(
                "The {noun} is being changed by someone else; try again"
            )),
            CommandError::Unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                Error::Unavailable {
                    detail: "The service is temporarily unavailable".into(),
                    retry_after: 1,
                }
            }
            CommandError::Internal(e) => Error::internal(e),
        }
    }
}
