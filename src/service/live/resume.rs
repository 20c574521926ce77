//! A reconnecting client's catch-up: what it missed after its `Last-Event-ID`, read from the
//! database up to the hub's head at registration (live items follow from there, so nothing is
//! lost or repeated).
//!
//! Ids: `<txid>.<position>` for `ticket` and `queue` (the log position of the change's last
//! event), the notification id for `notification`. The hub sends, per transaction, the ticket
//! and queue changes before the notifications, so:
//! - after a log id `(t, p)`: the changes after `(t, p)`, and the notifications caused in
//!   transaction `t` or later;
//! - after notification `n` (caused in transaction `t`): the changes of later transactions,
//!   and the notifications after `n`.
//!
//! An id older than the retention window, or one the log does not hold, answers `reset`.

use std::collections::BTreeMap;
use std::time::Duration;

use projections::notifications::queries::{self, Reader};
use projections::Checkpoint;
use sqlx::PgPool;

use super::feed::{self, QueueChange};
use super::{Interest, Item};
use crate::service::error::Error;
use crate::service::names::Names;

/// At most this much is caught up; more answers `reset` (the client reloads).
const LIMIT: i64 = 1000;

/// Where a client resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeFrom {
    /// After a `ticket` or `queue` event.
    Log(Checkpoint),
    /// After a notification.
    Notification(i64),
}

impl ResumeFrom {
    /// Parses a `Last-Event-ID` (None when it is neither form).
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if raw.contains('.') {
            raw.parse().ok().map(ResumeFrom::Log)
        } else {
            raw.parse::<i64>()
                .ok()
                .filter(|id| *id >= 0)
                .map(ResumeFrom::Notification)
        }
    }
}

/// What `interest` missed after `from`, up to `head`, in the order the hub would have sent it.
pub async fn catch_up(
    (pool, names): (&PgPool, &Names),
    interest: &Interest,
    from: ResumeFrom,
    head: Checkpoint,
    retention: Duration,
) -> Result<Vec<Item>, Error> {
    let (after, notes_from) = match from {
        ResumeFrom::Log(at) => match feed::recorded_at(pool, at).await? {
            Some(when) if fresh(when, retention) => (at, (0, at.txid)),
            _ => return Ok(vec![Item::Reset]),
        },
        ResumeFrom::Notification(id) => {
            match queries::source_of(pool, interest.user_id, id).await? {
                Some((at, when)) if fresh(when, retention) => (
                    Checkpoint {
                        txid: at.txid,
                        position: i64::MAX,
                    },
                    (id, at.txid),
                ),
                _ => return Ok(vec![Item::Reset]),
            }
        }
    };
    let mut keyed: Vec<((u64, i64, u8, i64), Item)> = Vec::new();
    if interest.live && !interest.tickets.is_empty() {
        let events = feed::read_range(pool, (after, head), Some(&interest.tickets), LIMIT).await?;
        if events.len() as i64 >= LIMIT {
            return Ok(vec![Item::Reset]);
        }
        let groups = feed::groups(&events);
        let mut actors: Vec<i64> = groups.iter().filter_map(|g| g.actor_id).collect();
        actors.dedup();
        let names = names.of(pool, &actors).await?;
        for g in &groups {
            if let Some(change) = g.change_for(interest.staff, &names) {
                keyed.push((
                    (g.last.txid, g.last.position, 0, 0),
                    Item::Ticket(g.last, change),
                ));
            }
        }
    }
    if interest.queue {
        let events = feed::read_range(pool, (after, head), None, LIMIT).await?;
        if events.len() as i64 >= LIMIT {
            return Ok(vec![Item::Reset]);
        }
        let mut latest: BTreeMap<i64, (Checkpoint, i64)> = BTreeMap::new();
        for g in feed::groups(&events) {
            latest.insert(g.ticket_id, (g.last, g.version));
        }
        for (ticket_id, (at, version)) in latest {
            keyed.push((
                (at.txid, at.position, 1, 0),
                Item::Queue(at, QueueChange { ticket_id, version }),
            ));
        }
    }
    let reader = Reader {
        user_id: interest.user_id,
        staff: interest.staff,
    };
    let missed = queries::missed(pool, reader, notes_from, head, LIMIT).await?;
    if missed.len() as i64 >= LIMIT {
        return Ok(vec![Item::Reset]);
    }
    for m in missed {
        let txid = m.txid.parse().unwrap_or(0);
        keyed.push((
            (txid, i64::MAX, 2, m.notification.id),
            Item::Notification(m.notification),
        ));
    }
    keyed.sort_by_key(|(k, _)| *k);
    Ok(keyed.into_iter().map(|(_, item)| item).collect())
}

/// Notifications after `after_id` up to `head` (`/notifications/stream`, which has no reset).
pub async fn notifications_after(
    pool: &PgPool,
    reader: Reader,
    after_id: i64,
    head: Checkpoint,
) -> Result<Vec<Item>, Error> {
    let missed = queries::missed(pool, reader, (after_id, 0), head, LIMIT).await?;
    Ok(missed
        .into_iter()
        .map(|m| Item::Notification(m.notification))
        .collect())
}

fn fresh(when: chrono::DateTime<chrono::Utc>, retention: Duration) -> bool {
    chrono::Utc::now() - when
        <= chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX)
}
