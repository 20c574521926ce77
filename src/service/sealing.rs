//! The one place events are sealed on their way into the log: our event repository (`event_store`) wrapped
//! so that, before the insert, the personal fields of each serialized event (`privacy::rules`)
//! and the metadata's client address and user agent are replaced by values sealed under their
//! person's key, and after a load they are opened again. The aggregates never see ciphertext.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::service::event_store::EventRepository;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use privacy::rules::{self, Owner, METADATA_FIELDS};
use serde_json::Value;
use sqlx::PgPool;

/// Streams whose facts are remembered at most (then the memory starts over).
const MAX_STREAMS: usize = 50_000;

/// What sealing needs to know of a ticket stream beyond the event at hand.
#[derive(Debug, Default, Clone)]
struct StreamFacts {
    requester: Option<i64>,
    /// Comment id → author.
    authors: HashMap<String, i64>,
}

impl StreamFacts {
    fn learn(&mut self, event: &SerializedEvent) {
        let p = &event.payload;
        match event.event_type.as_str() {
            "TicketOpened" => {
                self.requester = p
                    .pointer("/TicketOpened/requester_id")
                    .and_then(Value::as_i64)
            }
            "CommentAdded" => {
                if let (Some(id), Some(author)) = (
                    p.pointer("/CommentAdded/comment_id")
                        .and_then(Value::as_str),
                    p.pointer("/CommentAdded/author_id").and_then(Value::as_i64),
                ) {
                    self.authors.insert(id.to_string(), author);
                }
            }
            _ => {}
        }
    }
}

/// [`EventRepository`] with sealing on persist and opening on load.
pub struct SealingRepository {
    inner: EventRepository,
    pool: PgPool,
    facts: Mutex<HashMap<String, StreamFacts>>,
}

impl SealingRepository {
    pub fn new(pool: PgPool) -> Self {
        SealingRepository {
            inner: EventRepository::new(pool.clone()),
            pool,
            facts: Mutex::new(HashMap::new()),
        }
    }

    /// Opens loaded events and remembers their stream's facts.
    async fn opened(
        &self,
        mut events: Vec<SerializedEvent>,
        whole_stream: bool,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let mut views: Vec<privacy::EventView<'_>> = events
            .iter_mut()
            .map(|e| privacy::EventView {
                aggregate_type: &e.aggregate_type,
                aggregate_id: &e.aggregate_id,
                event_type: &e.event_type,
                payload: &mut e.payload,
                metadata: &mut e.metadata,
            })
            .collect();
        let unavailable = |e: sqlx::Error| PersistenceError::UnknownError(Box::new(e));
        privacy::keyring()
            .open_events((&self.pool).into(), &mut views)
            .await
            .map_err(unavailable)?;
        drop(views);
        if let Some(first) = events.first() {
            if first.aggregate_type == "ticket" {
                let mut facts = self.facts_lock();
                let entry = facts.entry(first.aggregate_id.clone()).or_default();
                if whole_stream {
                    *entry = StreamFacts::default();
                }
                events.iter().for_each(|e| entry.learn(e));
            }
        }
        Ok(events)
    }

    fn facts_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, StreamFacts>> {
        let mut facts = self.facts.lock().unwrap_or_else(|p| p.into_inner());
        if facts.len() > MAX_STREAMS {
            facts.clear();
        }
        facts
    }

    /// The facts of a ticket stream: remembered, or read from the log (once).
    async fn facts_of<A: Aggregate>(
        &self,
        id: &str,
        fresh: bool,
    ) -> Result<StreamFacts, PersistenceError> {
        if !fresh {
            if let Some(f) = self.facts_lock().get(id) {
                return Ok(f.clone());
            }
        }
        let events = self.inner.get_events::<A>(id).await?;
        let mut facts = StreamFacts::default();
        events.iter().for_each(|e| facts.learn(e));
        self.facts_lock().insert(id.to_string(), facts.clone());
        Ok(facts)
    }

    /// Whose key seals `event`'s personal fields (resolving the requester or comment author
    /// from the stream, earlier events of this batch included); the actor when none is known.
    async fn owner<A: Aggregate>(
        &self,
        event: &SerializedEvent,
        owner: Owner,
        batch: &StreamFacts,
    ) -> Result<Option<i64>, PersistenceError> {
        Ok(match owner {
            Owner::Field(ptr) => event.payload.pointer(ptr).and_then(Value::as_i64),
            Owner::Actor => actor(event),
            Owner::Requester => match batch.requester {
                Some(r) => Some(r),
                None => {
                    self.facts_of::<A>(&event.aggregate_id, false)
                        .await?
                        .requester
                }
            },
            Owner::CommentAuthor(ptr) => {
                let Some(comment) = event.payload.pointer(ptr).and_then(Value::as_str) else {
                    return Ok(None);
                };
                if let Some(a) = batch.authors.get(comment) {
                    return Ok(Some(*a));
                }
                let known = self.facts_of::<A>(&event.aggregate_id, false).await?;
                match known.authors.get(comment) {
                    Some(a) => Some(*a),
                    // Posted through another process since: read the stream again.
                    None => self
                        .facts_of::<A>(&event.aggregate_id, true)
                        .await?
                        .authors
                        .get(comment)
                        .copied(),
                }
            }
        }
        .or_else(|| actor(event)))
    }

    /// The events of one new stream (written outside the executor, by the seed) with their
    /// personal fields sealed, as `persist` would store them.
    pub async fn seal_new_stream<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.sealed::<A>(events).await
    }

    /// `events` with their personal fields sealed.
    async fn sealed<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let mut out = Vec::with_capacity(events.len());
        let mut batch = StreamFacts::default();
        for event in events {
            let mut e = event.clone();
            if let Some(rule) = rules::rule(&e.aggregate_type, &e.event_type) {
                if let Some(person) = self.owner::<A>(&e, rule.owner, &batch).await? {
                    seal_fields(&self.pool, person, &mut e.payload, rule.fields).await?;
                }
            }
            if let Some(person) = actor(&e) {
                let fields: Vec<String> = METADATA_FIELDS.iter().map(|f| format!("/{f}")).collect();
                let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
                seal_fields(&self.pool, person, &mut e.metadata, &fields).await?;
            }
            batch.learn(event);
            out.push(e);
        }
        // A stream numbered by the append has no id yet: its facts are learned when it is
        // next loaded.
        let numbered = crate::service::event_store::numbering().is_some();
        if let Some(first) = events
            .first()
            .filter(|e| e.aggregate_type == "ticket" && !numbered)
        {
            let mut facts = self.facts_lock();
            let entry = facts.entry(first.aggregate_id.clone()).or_default();
            events.iter().for_each(|e| entry.learn(e));
        }
        Ok(out)
    }
}

/// The acting user of an event (metadata `user_id`).
fn actor(event: &SerializedEvent) -> Option<i64> {
    privacy::actor_of(&event.metadata)
}

/// Seals the non-empty strings at `pointers` of `value` under `person`'s key; an erased
/// person's new text is stored as `"[erased]"`.
async fn seal_fields(
    pool: &PgPool,
    person: i64,
    value: &mut Value,
    pointers: &[&str],
) -> Result<(), PersistenceError> {
    let present = pointers.iter().any(|p| {
        value
            .pointer(p)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    });
    if !present {
        return Ok(());
    }
    let key = privacy::keyring()
        .key_for_sealing(pool, person)
        .await
        .map_err(|e| PersistenceError::UnknownError(Box::new(e)))?;
    for p in pointers {
        if let Some(slot) = value.pointer_mut(p) {
            let Some(text) = slot.as_str().filter(|s| !s.is_empty()) else {
                continue;
            };
            *slot = match &key {
                Some(key) => privacy::sealed(key, person, text),
                None => Value::String(privacy::ERASED.into()),
            };
        }
    }
    Ok(())
}

impl PersistedEventRepository for SealingRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self.inner.get_events::<A>(aggregate_id).await?;
        self.opened(events, true).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self
            .inner
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await?;
        self.opened(events, false).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        // Snapshots are not enabled (ENGINE.md); they would hold opened text.
        self.inner.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let sealed = self.sealed::<A>(events).await?;
        self.inner.persist::<A>(&sealed, snapshot_update).await
    }

    async fn stream_events<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        Err(unstreamed())
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        Err(unstreamed())
    }
}

/// Replays go through the projections' log reader (which opens events), not through cqrs-es.
fn unstreamed() -> PersistenceError {
    PersistenceError::UnknownError("event streams are read through projections::log".into())
}
