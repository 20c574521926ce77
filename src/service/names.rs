//! People's display names beside their ids (API.md "Names beside ids"): every response that
//! carries a user id also carries the person's name, resolved here for a whole response at once
//! (one query for the names not in memory, none per row).
//!
//! Names are kept in memory per process. A rename is announced on the bus
//! (`bus::Message::UserRenamed`, or `UserChanged` from the admin's user change) and every process
//! forgets that name; after a bus resync every name is forgotten; [`NAME_TTL`] is the safety net
//! for a message missed in between.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use crate::service::error::Error;
use crate::service::memo::UserMemo;

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

/// `Named` for a ticket type with `requester_id`/`_name` and `assignee_id`/`_name` fields.
macro_rules! named_ticket {
    ($t:ty) => {
        impl $crate::service::names::Named for $t {
            fn people(&self, ids: &mut Vec<i64>) {
                ids.push(self.requester_id);
                ids.extend(self.assignee_id);
            }
            fn take_names(&mut self, names: &$crate::service::names::NameMap) {
                self.requester_name = names.name(self.requester_id);
                self.assignee_name = names.of(self.assignee_id);
            }
        }
    };
}
pub(crate) use named_ticket;

/// The process's cache of display names.
pub struct Names(UserMemo<Arc<str>>);

impl Default for Names {
    fn default() -> Self {
        Names(UserMemo::new(NAME_TTL, MAX_CACHED))
    }
}

impl std::ops::Deref for Names {
    type Target = UserMemo<Arc<str>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Names {
    /// The names of `ids`: from memory where fresh, the rest in one query.
    pub async fn of(&self, pool: &PgPool, ids: &[i64]) -> Result<NameMap, Error> {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for &id in ids {
            match self.fresh(id) {
                Some(name) => {
                    found.insert(id, name);
                }
                None => missing.push(id),
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
            let rows: Vec<(i64, Arc<str>)> =
                rows.into_iter().map(|(id, n)| (id, n.into())).collect();
            found.extend(rows.iter().cloned());
            self.keep(rows);
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
}
