//! The data keys of people: kept wrapped in `person_keys` (outside the log), unwrapped once and
//! cached in memory. A person's first sealed value issues their key (one insert, which also
//! appends `DataKeyIssued` to their `person` stream); erasure destroys it (`PersonErased`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use serde_json::{json, Value};
use sqlx::{PgConnection, PgExecutor, PgPool};

use crate::cipher::{DataKey, MasterKey};
use crate::rules::{self, Owner, METADATA_FIELDS};
use crate::{ERASED, PERSON, SEALED_TAG};

/// What the cache knows of a person.
#[derive(Clone)]
enum Slot {
    Key(Arc<DataKey>),
    Erased,
    /// No key when last looked (nothing sealed for them yet).
    Absent,
}

/// The master key and the cache of unwrapped data keys.
pub struct Keyring {
    master: MasterKey,
    cache: RwLock<HashMap<i64, Slot>>,
    /// Everyone erased (few people: read once, again after an erasure anywhere).
    erased: RwLock<Option<Arc<HashSet<i64>>>>,
}

static CURRENT: RwLock<Option<Arc<Keyring>>> = RwLock::new(None);

/// Makes `keyring` the one every reader and writer of this process uses.
pub fn install(keyring: Arc<Keyring>) {
    if let Ok(mut current) = CURRENT.write() {
        *current = Some(keyring);
    }
}

/// The installed keyring (the development one if none was installed: tools and tests).
pub fn keyring() -> Arc<Keyring> {
    if let Some(k) = CURRENT.read().ok().and_then(|c| c.clone()) {
        return k;
    }
    let k = Arc::new(Keyring::new(MasterKey::development()));
    install(k.clone());
    k
}

/// A sealed value's parts: `v1:<person>:<base64>`.
fn parse_sealed(v: &Value) -> Option<(i64, &str)> {
    let text = v.as_object()?.get(SEALED_TAG)?.as_str()?;
    let rest = text.strip_prefix("v1:")?;
    let (person, sealed) = rest.split_once(':')?;
    Some((person.parse().ok()?, sealed))
}

/// Every sealed value inside `v`, depth first.
fn visit_sealed(v: &mut Value, f: &mut impl FnMut(&mut Value)) {
    match v {
        Value::Object(map) => {
            if map.len() == 1 && map.contains_key(SEALED_TAG) {
                f(v);
            } else {
                map.values_mut().for_each(|x| visit_sealed(x, f));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|x| visit_sealed(x, f)),
        _ => {}
    }
}

impl Keyring {
    pub fn new(master: MasterKey) -> Self {
        Keyring {
            master,
            cache: RwLock::new(HashMap::new()),
            erased: RwLock::new(None),
        }
    }

    /// Whether the master key is the derived development key.
    pub fn is_development(&self) -> bool {
        self.master.is_development()
    }

    /// Refuses a master key that cannot unwrap the keys already stored (a wrong key would
    /// otherwise read every person as erased).
    pub async fn check(&self, pool: &PgPool) -> Result<(), String> {
        let row: Option<(i64, Vec<u8>)> = sqlx::query_as(
            "select person_id, wrapped_key from person_keys
              where wrapped_key is not null order by person_id limit 1",
        )
        .fetch_optional(pool)
        .await
        .map_err(|e| format!("cannot read person_keys: {e}"))?;
        match row {
            Some((person, wrapped)) if self.master.unwrap(person, &wrapped).is_err() => Err(
                "TICKETD_MASTER_KEY cannot unwrap the stored data keys: it is not the key they were made with".into(),
            ),
            _ => Ok(()),
        }
    }

    /// Forgets `person`'s cached key (their key was destroyed, maybe by another process).
    pub fn forget(&self, person: i64) {
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(&person);
        }
        self.forget_erased();
    }

    fn forget_erased(&self) {
        if let Ok(mut erased) = self.erased.write() {
            *erased = None;
        }
    }

    /// The people erased so far (read once, and again after [`Keyring::forget`]).
    async fn erased_people(&self, db: &mut Db<'_>) -> Result<Arc<HashSet<i64>>, sqlx::Error> {
        if let Some(set) = self.erased.read().ok().and_then(|e| e.clone()) {
            return Ok(set);
        }
        let ids: Vec<i64> =
            sqlx::query_scalar("select person_id from person_keys where wrapped_key is null")
                .fetch_all(db.conn().await?)
                .await?;
        let set = Arc::new(ids.into_iter().collect::<HashSet<i64>>());
        if let Ok(mut erased) = self.erased.write() {
            *erased = Some(set.clone());
        }
        Ok(set)
    }

    /// Forgets every cached key (after missed bus messages).
    pub fn forget_all(&self) {
        if let Ok(mut cache) = self.cache.write() {
            cache.clear();
        }
        self.forget_erased();
    }

    fn cached(&self, person: i64) -> Option<Slot> {
        self.cache.read().ok()?.get(&person).cloned()
    }

    fn remember(&self, person: i64, slot: Slot) {
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(person, slot);
        }
    }

    /// Loads the keys of `persons` into the cache (one query).
    async fn load<'c>(&self, db: impl PgExecutor<'c>, persons: &[i64]) -> Result<(), sqlx::Error> {
        let rows: Vec<(i64, Option<Vec<u8>>)> = sqlx::query_as(
            "select person_id, wrapped_key from person_keys where person_id = any($1)",
        )
        .bind(persons)
        .fetch_all(db)
        .await?;
        for person in persons {
            if !rows.iter().any(|(p, _)| p == person) {
                self.remember(*person, Slot::Absent);
            }
        }
        for (person, wrapped) in rows {
            match wrapped {
                None => self.remember(person, Slot::Erased),
                Some(w) => match self.master.unwrap(person, &w) {
                    Ok(key) => self.remember(person, Slot::Key(Arc::new(key))),
                    Err(_) => {
                        tracing::error!(person, "a data key does not unwrap with the master key")
                    }
                },
            }
        }
        Ok(())
    }

    /// Opens every sealed value inside `values` in place: the text, or `"[erased]"` when the
    /// person's key is destroyed. Plaintext (events older than encryption) is left as it is.
    /// Keys not cached yet are read in one query.
    pub async fn open<'c>(
        &self,
        db: impl PgExecutor<'c>,
        values: &mut [&mut Value],
    ) -> Result<(), sqlx::Error> {
        let missing = self.missing(values);
        if !missing.is_empty() {
            self.load(db, &missing).await?;
        }
        self.open_cached(values);
        Ok(())
    }

    /// The people of the sealed values in `values` whose keys are not cached.
    fn missing(&self, values: &mut [&mut Value]) -> Vec<i64> {
        let mut missing = HashSet::new();
        let Ok(cache) = self.cache.read() else {
            return Vec::new();
        };
        for v in values.iter_mut() {
            visit_sealed(v, &mut |s| {
                if let Some((person, _)) = parse_sealed(s) {
                    if !cache.contains_key(&person) {
                        missing.insert(person);
                    }
                }
            });
        }
        missing.into_iter().collect()
    }

    /// Replaces every sealed value inside `values` by its text (one look at the cache).
    fn open_cached(&self, values: &mut [&mut Value]) {
        let Ok(cache) = self.cache.read() else {
            return;
        };
        for v in values.iter_mut() {
            visit_sealed(v, &mut |s| *s = Value::String(open_one(&cache, s)));
        }
    }

    /// `person`'s key for sealing new values: cached, read, or issued now (one statement that
    /// stores the wrapped key and appends `DataKeyIssued`). `None` once the person is erased.
    pub async fn key_for_sealing(
        &self,
        pool: &PgPool,
        person: i64,
    ) -> Result<Option<Arc<DataKey>>, sqlx::Error> {
        for _ in 0..2 {
            match self.cached(person) {
                Some(Slot::Key(k)) => return Ok(Some(k)),
                Some(Slot::Erased) => return Ok(None),
                Some(Slot::Absent) | None => {}
            }
            let (key, wrapped) = self.master.issue(person);
            let issued: Option<i64> = sqlx::query_scalar(&format!(
                "with k as (
                   insert into person_keys (person_id, wrapped_key) values ($1, $2)
                   on conflict (person_id) do nothing returning person_id)
                 insert into events (aggregate_type, aggregate_id, sequence, event_type,
                                     event_version, payload, metadata)
                 select '{PERSON}', k.person_id::text, 1, 'DataKeyIssued', '1.0',
                        jsonb_build_object('DataKeyIssued', jsonb_build_object('person_id', k.person_id)),
                        '{{}}'::jsonb
                   from k
                 returning sequence"
            ))
            .bind(person)
            .bind(&wrapped)
            .fetch_optional(pool)
            .await?;
            if issued.is_some() {
                let key = Arc::new(key);
                self.remember(person, Slot::Key(key.clone()));
                return Ok(Some(key));
            }
            // Someone else issued it first (or the person is erased): read theirs.
            self.load(pool, &[person]).await?;
        }
        Ok(match self.cached(person) {
            Some(Slot::Key(k)) => Some(k),
            _ => None,
        })
    }

    /// Destroys `person`'s key inside the caller's transaction and appends `PersonErased` to
    /// their stream. Returns whether they had a key (data sealed under it is now unreadable).
    /// After the commit the caller [`Keyring::forget`]s the key here and tells the other
    /// processes to.
    pub async fn destroy(
        &self,
        conn: &mut PgConnection,
        person: i64,
        actor: Option<i64>,
    ) -> Result<bool, sqlx::Error> {
        let had_key: Option<bool> = sqlx::query_scalar(
            "select wrapped_key is not null from person_keys where person_id = $1 for update",
        )
        .bind(person)
        .fetch_optional(&mut *conn)
        .await?;
        sqlx::query(
            "insert into person_keys (person_id, wrapped_key, erased_at) values ($1, null, now())
             on conflict (person_id) do update set wrapped_key = null, erased_at = now()",
        )
        .bind(person)
        .execute(&mut *conn)
        .await?;
        let metadata = match actor {
            Some(a) => json!({"user_id": a.to_string()}),
            None => json!({}),
        };
        sqlx::query(&format!(
            "insert into events (aggregate_type, aggregate_id, sequence, event_type,
                                 event_version, payload, metadata)
             select '{PERSON}', $1::text,
                    coalesce((select max(sequence) from events
                               where aggregate_type = '{PERSON}' and aggregate_id = $1::text), 0) + 1,
                    'PersonErased', '1.0',
                    jsonb_build_object('PersonErased', jsonb_build_object('person_id', $1::bigint)),
                    $2"
        ))
        .bind(person)
        .bind(metadata)
        .execute(&mut *conn)
        .await?;
        Ok(had_key.unwrap_or(false))
    }
}

/// `text` sealed under `person`'s key, as it is stored in an event.
pub fn sealed(key: &DataKey, person: i64, text: &str) -> Value {
    json!({ SEALED_TAG: format!("v1:{person}:{}", key.seal(person, text)) })
}

/// Whether `v` is a sealed value.
pub fn is_sealed(v: &Value) -> bool {
    parse_sealed(v).is_some()
}

/// One stored event, as [`Keyring::open_events`] sees it.
pub struct EventView<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub event_type: &'a str,
    pub payload: &'a mut Value,
    pub metadata: &'a mut Value,
}

/// What the events read so far say about a stream's people.
#[derive(Default)]
struct Owners {
    requester: Option<i64>,
    authors: HashMap<String, i64>,
}

impl Owners {
    fn learn(&mut self, event_type: &str, payload: &Value) {
        match event_type {
            "TicketOpened" => {
                self.requester = payload
                    .pointer("/TicketOpened/requester_id")
                    .and_then(Value::as_i64);
            }
            "CommentAdded" => {
                let id = payload
                    .pointer("/CommentAdded/comment_id")
                    .and_then(Value::as_str);
                let author = payload
                    .pointer("/CommentAdded/author_id")
                    .and_then(Value::as_i64);
                if let (Some(id), Some(author)) = (id, author) {
                    self.authors.insert(id.to_string(), author);
                }
            }
            _ => {}
        }
    }

    fn owner(&self, owner: Owner, payload: &Value, metadata: &Value) -> Option<i64> {
        match owner {
            Owner::Field(ptr) => payload.pointer(ptr).and_then(Value::as_i64),
            Owner::Actor => actor_of(metadata),
            Owner::Requester => self.requester,
            Owner::CommentAuthor(ptr) => payload
                .pointer(ptr)
                .and_then(Value::as_str)
                .and_then(|c| self.authors.get(c).copied()),
        }
    }
}

/// The acting user of an event (metadata `user_id`).
pub fn actor_of(metadata: &Value) -> Option<i64> {
    match metadata.get("user_id") {
        Some(Value::String(s)) => s.parse().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    }
}

/// Whether `v` is personal text stored in plaintext (an event older than encryption).
fn plaintext(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty() && s != ERASED)
}

impl Keyring {
    /// Opens the sealed values of `events` (see [`Keyring::open`]) and then redacts, as the
    /// upcaster of events older than encryption, their plaintext personal fields whose person is
    /// erased. A ticket's requester and a comment's author are learnt from the events given
    /// (whole streams resolve them all; a field whose person cannot be told stays, and the read
    /// models are redacted by the projections' erasure instead).
    /// `db` (a pool or a connection) is only acquired when a key is not cached.
    pub async fn open_events(
        &self,
        mut db: Db<'_>,
        events: &mut [EventView<'_>],
    ) -> Result<(), sqlx::Error> {
        {
            let mut values: Vec<&mut Value> = Vec::with_capacity(events.len() * 2);
            for e in events.iter_mut() {
                values.push(&mut *e.payload);
                values.push(&mut *e.metadata);
            }
            let missing = self.missing(&mut values);
            if !missing.is_empty() {
                self.load(db.conn().await?, &missing).await?;
            }
            self.open_cached(&mut values);
        }
        // Events older than encryption: only when someone is erased at all.
        let erased = self.erased_people(&mut db).await?;
        if !erased.is_empty() {
            redact_plaintext(events, &erased);
        }
        Ok(())
    }

    /// Whether [`Keyring::open_events`] could change the payload of an event, given its JSON
    /// text (as PostgreSQL prints `jsonb`) and whether anyone is erased
    /// ([`Keyring::anyone_erased`]): it holds a sealed value, or it has personal fields that the
    /// upcaster may redact. When it could not, the text can be decoded as it is, without a
    /// `Value` in between. A sealed value always prints its tag ([`SEALED_TAG`]) as it is; the
    /// tag typed as text in a field only sends the event the longer way.
    pub fn must_open(
        aggregate_type: &str,
        event_type: &str,
        payload: &str,
        anyone_erased: bool,
    ) -> bool {
        payload.contains(SEALED_TAG)
            || (anyone_erased && rules::rule(aggregate_type, event_type).is_some())
    }

    /// Whether anyone is erased at all (the set is cached as [`Keyring::open_events`] caches it).
    pub async fn anyone_erased(&self, mut db: Db<'_>) -> Result<bool, sqlx::Error> {
        Ok(!self.erased_people(&mut db).await?.is_empty())
    }
}

/// Where keys are read from: a connection, or a pool acquired from on first use only.
pub enum Db<'a> {
    Conn(&'a mut PgConnection),
    Pool(
        &'a PgPool,
        Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
    ),
}

impl Db<'_> {
    async fn conn(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        match self {
            Db::Conn(c) => Ok(&mut **c),
            Db::Pool(pool, slot) => {
                if slot.is_none() {
                    *slot = Some(pool.acquire().await?);
                }
                match slot {
                    Some(c) => Ok(&mut **c),
                    None => Err(sqlx::Error::PoolClosed),
                }
            }
        }
    }
}

impl<'a> From<&'a PgPool> for Db<'a> {
    fn from(pool: &'a PgPool) -> Self {
        Db::Pool(pool, None)
    }
}

impl<'a> From<&'a mut PgConnection> for Db<'a> {
    fn from(conn: &'a mut PgConnection) -> Self {
        Db::Conn(conn)
    }
}

/// Redacts the plaintext personal fields of `events` (older than encryption) whose person is in
/// `erased`. A ticket's requester and a comment's author are learnt from the events given.
fn redact_plaintext(events: &mut [EventView<'_>], erased: &HashSet<i64>) {
    // (event index, in the metadata?, pointer)
    let mut todo: Vec<(usize, bool, String)> = Vec::new();
    let mut streams: HashMap<(&str, &str), Owners> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let owners = streams
            .entry((e.aggregate_type, e.aggregate_id))
            .or_default();
        owners.learn(e.event_type, e.payload);
        if let Some(rule) = rules::rule(e.aggregate_type, e.event_type) {
            let person = owners.owner(rule.owner, e.payload, e.metadata);
            if person.is_some_and(|p| erased.contains(&p)) {
                let fields = rule
                    .fields
                    .iter()
                    .filter(|f| plaintext(e.payload.pointer(f)));
                todo.extend(fields.map(|f| (i, false, f.to_string())));
            }
        }
        if actor_of(e.metadata).is_some_and(|p| erased.contains(&p)) {
            for f in METADATA_FIELDS {
                if plaintext(e.metadata.get(*f)) {
                    todo.push((i, true, format!("/{f}")));
                }
            }
        }
    }
    for (i, in_metadata, ptr) in todo {
        let e = &mut events[i];
        let target = if in_metadata {
            &mut *e.metadata
        } else {
            &mut *e.payload
        };
        if let Some(slot) = target.pointer_mut(&ptr) {
            *slot = Value::String(ERASED.into());
        }
    }
}

/// The text of one sealed value, with the cache in hand.
fn open_one(cache: &HashMap<i64, Slot>, sealed: &Value) -> String {
    let Some((person, body)) = parse_sealed(sealed) else {
        return ERASED.into();
    };
    match cache.get(&person) {
        Some(Slot::Key(key)) => key.open(person, body).unwrap_or_else(|_| {
            tracing::warn!(person, "a sealed value does not open with its person's key");
            ERASED.into()
        }),
        Some(Slot::Erased | Slot::Absent) | None => ERASED.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_decoded_without_the_keyring_only_when_nothing_in_it_could_change() {
        let (key, _) = MasterKey::development().issue(88);
        let opened = json!({"TicketOpened": {"id": 1, "requester_id": 88,
            "title": sealed(&key, 88, "Printer on fire"), "description": "plain"}});
        // As PostgreSQL prints `jsonb` (a space after each colon) and as serde_json prints it.
        let spaced = opened.to_string().replace("\":", "\": ");
        for text in [opened.to_string(), spaced] {
            assert!(Keyring::must_open("ticket", "TicketOpened", &text, false));
        }
        // Plaintext personal fields (an event older than encryption): only once someone is
        // erased, when the upcaster may redact them.
        let plain = json!({"TicketOpened": {"id": 1, "requester_id": 88, "title": "t"}});
        assert!(!Keyring::must_open(
            "ticket",
            "TicketOpened",
            &plain.to_string(),
            false
        ));
        assert!(Keyring::must_open(
            "ticket",
            "TicketOpened",
            &plain.to_string(),
            true
        ));
        // No personal field at all: never.
        let assigned = json!({"TicketAssigned": {"assignee_id": 7}}).to_string();
        assert!(!Keyring::must_open(
            "ticket",
            "TicketAssigned",
            &assigned,
            true
        ));
    }
}
