//! Facts about users kept in memory for a while (their role and active flag, their name):
//! fresh entries are served, stale ones read again; the bus tells every process to forget one
//! user (`forget`) or everything (`clear`, after the bus may have missed messages).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A value per user id, each with the time it was read.
pub struct UserMemo<V> {
    ttl: Duration,
    cap: usize,
    entries: Mutex<HashMap<i64, (V, Instant)>>,
}

impl<V: Clone> UserMemo<V> {
    /// Entries younger than `ttl` are fresh; beyond `cap` entries stale ones are dropped (and
    /// everything, if none is stale).
    pub fn new(ttl: Duration, cap: usize) -> Self {
        UserMemo {
            ttl,
            cap,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i64, (V, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fresh value of `id`, if there is one.
    pub fn fresh(&self, id: i64) -> Option<V> {
        let now = Instant::now();
        self.lock()
            .get(&id)
            .filter(|(_, at)| now.duration_since(*at) < self.ttl)
            .map(|(v, _)| v.clone())
    }

    /// Keeps the values just read.
    pub fn keep(&self, values: impl IntoIterator<Item = (i64, V)>) {
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() >= self.cap {
            entries.retain(|_, (_, at)| now.duration_since(*at) < self.ttl);
            if entries.len() >= self.cap {
                entries.clear();
            }
        }
        entries.extend(values.into_iter().map(|(id, v)| (id, (v, now))));
    }

    /// Drops what is kept of one user (after a change, announced on the bus).
    pub fn forget(&self, id: i64) {
        self.lock().remove(&id);
    }

    /// Drops everything (after the bus may have missed changes).
    pub fn clear(&self) {
        self.lock().clear();
    }
}
