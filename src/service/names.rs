//! People's display names beside their ids (API.md "Names beside ids"): every response that
//! carries a user id also carries the person's name, resolved here for a whole response at once
//! (one query for the names not in memory, none per row).
//!
//! Names are kept in memory per process. A rename is announced on the bus
//! (`bus::Message::UserRenamed`, or `UserChanged` from the admin's user change) and every process
//! forgets that name; after a bus resync every name is forgotten; [`NAME_TTL`] is the safety net
//! for a message missed in between.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::service::error::Error;

/// How long a name may be served from memory without being read again.
pub const NAME_TTL: Duration = Duration::from_secs(60);

/// Beyond this many cached names, stale ones are dropped (and all of them if none is stale).
const MAX_CACHED: usize = 50_000;

/// The names of a response's people.
#[derive(Debug, Default, Clone)]
pub struct NameMap(HashMap<i64, Arc<str>>);

impl NameMap {
    /// The display name of `id`, `None` for no person (or an id without a user).
    pub fn of(&self, id: Option<i64>) -> Option<String> {
        id.and_then(|id| self.0.get(&id)).map(|n| n.to_string())
    }

    /// The display name of a person who is always there.
    pub fn name(&self, id: i64) -> Option<String> {
        self.of(Some(id))
    }
}

/// A response that carries people's ids: it names them, then takes their names.
pub trait Named {
    /// Adds the user ids this value carries to `ids`.
    fn people(&self, ids: &mut Vec<i64>);
    /// Fills the `_name` siblings of the ids from `names`.
    fn take_names(&mut self, names: &NameMap);
}

impl<T: Named> Named for [T] {
    fn people(&self, ids: &mut Vec<i64>) {
        self.iter().for_each(|v| v.people(ids));
    }
    fn take_names(&mut self, names: &NameMap) {
        self.iter_mut().for_each(|v| v.take_names(names));
    }
}

impl<T: Named> Named for Vec<T> {
    fn people(&self, ids: &mut Vec<i64>) {
        self.as_slice().people(ids);
    }
    fn take_names(&mut self, names: &NameMap) {
        self.as_mut_slice().take_names(names);
    }
}

impl<T: Named> Named for Option<T> {
    fn people(&self, ids: &mut Vec<i64>) {
        if let Some(v) = self {
            v.people(ids);
        }
    }
    fn take_names(&mut self, names: &NameMap) {
        if let Some(v) = self {
            v.take_names(names);
        }
    }
}

/// The process's cache of display names.
#[derive(Default)]
pub struct Names {
    entries: Mutex<HashMap<i64, (Arc<str>, Instant)>>,
}

impl Names {
    /// The names of `ids`: from memory where fresh, the rest in one query.
    pub async fn of(&self, pool: &PgPool, ids: &[i64]) -> Result<NameMap, Error> {
        let now = Instant::now();
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            for &id in ids {
                match entries.get(&id) {
                    Some((name, at)) if now.duration_since(*at) < NAME_TTL => {
                        found.insert(id, name.clone());
                    }
                    _ => missing.push(id),
                }
            }
        }
        if !missing.is_empty() {
            missing.sort_unstable();
            missing.dedup();
            let rows: Vec<(i64, String)> =
                sqlx::query_as("select id, full_name from users where id = any($1)")
                    .bind(&missing)
                    .fetch_all(pool)
                    .await?;
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if entries.len() + rows.len() > MAX_CACHED {
                entries.retain(|_, (_, at)| now.duration_since(*at) < NAME_TTL);
                if entries.len() + rows.len() > MAX_CACHED {
                    entries.clear();
                }
            }
            for (id, name) in rows {
                let name: Arc<str> = name.into();
                entries.insert(id, (name.clone(), now));
                found.insert(id, name);
            }
        }
        Ok(NameMap(found))
    }

    /// Fills the names of everyone `value` carries.
    pub async fn fill<T: Named + ?Sized>(&self, pool: &PgPool, value: &mut T) -> Result<(), Error> {
        let mut ids = Vec::new();
        value.people(&mut ids);
        if ids.is_empty() {
            return Ok(());
        }
        let names = self.of(pool, &ids).await?;
        value.take_names(&names);
        Ok(())
    }

    /// Forgets one person's name (renamed, announced on the bus).
    pub fn forget(&self, id: i64) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Forgets every name (the bus may have missed a rename).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
