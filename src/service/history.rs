//! A ticket's history and its state at a past time, read straight from the event log.
//!
//! "As of T" means: the events of every command whose transaction had recorded all of its
//! events by T, in sequence order, stopping at the first command that had not. A command that
//! appends several events (a comment and the first response it records) is all or nothing,
//! and a clock that stepped back never yields a state with a hole in it.

use aggregates::ticket::TicketEvent;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer};
use sqlx::PgPool;

use crate::service::error::Error;

/// One stored event of a stream, decoded.
#[derive(sqlx::FromRow)]
pub struct HistoryEntry {
    pub sequence: i64,
    pub event_type: String,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
    /// Where the event sits in the log.
    pub global_position: i64,
    /// The transaction that appended it (xid8, as text): one per command.
    pub transaction_id: String,
}

impl HistoryEntry {
    /// The user who caused the event (metadata `user_id`), if any.
    pub fn actor_id(&self) -> Option<i64> {
        match self.metadata.get("user_id")? {
            serde_json::Value::String(s) => s.parse().ok(),
            serde_json::Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The payload's inner object (`{"TicketUpdated": {...}}` gives `{...}`).
    pub fn data(&self) -> serde_json::Value {
        match &self.payload {
            serde_json::Value::Object(map) if map.len() == 1 => {
                map.values().next().cloned().unwrap_or_default()
            }
            other => other.clone(),
        }
    }
}

/// Which part of a stream to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Every event.
    All,
    /// The events as they stood at a time (see the module documentation).
    AsOf(DateTime<Utc>),
    /// The events up to and including a sequence number.
    UntilSequence(i64),
}

/// The events of one aggregate within `bound`, in sequence order.
pub async fn load(
    pool: &PgPool,
    aggregate_type: &str,
    id: &str,
    bound: Bound,
) -> Result<Vec<HistoryEntry>, sqlx::Error> {
    let until_seq = match bound {
        Bound::UntilSequence(n) => Some(n),
        _ => None,
    };
    let mut entries: Vec<HistoryEntry> = sqlx::query_as(
        "select sequence, event_type, payload, metadata, recorded_at, global_position,
                transaction_id::text
           from events
          where aggregate_type = $1 and aggregate_id = $2
            and ($3::bigint is null or sequence <= $3)
          order by sequence",
    )
    .bind(aggregate_type)
    .bind(id)
    .bind(until_seq)
    .fetch_all(pool)
    .await?;
    // Sealed personal fields open here, or read "[erased]" (privacy); so does the plaintext of
    // an erased person in events older than encryption.
    let mut views: Vec<privacy::EventView<'_>> = entries
        .iter_mut()
        .map(|e| privacy::EventView {
            aggregate_type,
            aggregate_id: id,
            event_type: &e.event_type,
            payload: &mut e.payload,
            metadata: &mut e.metadata,
        })
        .collect();
    privacy::keyring()
        .open_events(pool.into(), &mut views)
        .await?;
    Ok(within(entries, bound))
}

/// The leading events of a whole stream (in sequence order) that lie within `bound`.
pub fn within(mut entries: Vec<HistoryEntry>, bound: Bound) -> Vec<HistoryEntry> {
    let keep = match bound {
        Bound::All => entries.len(),
        Bound::AsOf(t) => prefix_as_of(&entries, |e| (&e.transaction_id, e.recorded_at), t),
        Bound::UntilSequence(n) => entries.iter().take_while(|e| e.sequence <= n).count(),
    };
    entries.truncate(keep);
    entries
}

/// How many leading events (in sequence order) belong to transactions that had recorded all
/// of their events by `t`.
fn prefix_as_of<R>(
    rows: &[R],
    key: impl Fn(&R) -> (&String, DateTime<Utc>),
    t: DateTime<Utc>,
) -> usize {
    let mut keep = 0;
    let mut i = 0;
    while i < rows.len() {
        let (tx, _) = key(&rows[i]);
        let mut end = i;
        let mut last = key(&rows[i]).1;
        while end < rows.len() && key(&rows[end]).0 == tx {
            last = last.max(key(&rows[end]).1);
            end += 1;
        }
        if last > t {
            break;
        }
        keep = end;
        i = end;
    }
    keep
}

/// The events of one aggregate, optionally only those recorded up to `until`.
pub async fn stream(
    pool: &PgPool,
    aggregate_type: &str,
    id: &str,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<HistoryEntry>, Error> {
    let bound = until.map_or(Bound::All, Bound::AsOf);
    Ok(load(pool, aggregate_type, id, bound).await?)
}

/// The events (sequence, event) of a ticket as they stood at `as_of`.
pub async fn ticket_events_as_of(
    pool: &PgPool,
    id: i64,
    as_of: DateTime<Utc>,
) -> Result<Vec<(i64, TicketEvent)>, Error> {
    stream(pool, "ticket", &id.to_string(), Some(as_of))
        .await?
        .into_iter()
        .map(|e| {
            let event: TicketEvent = serde_json::from_value(e.payload).map_err(Error::internal)?;
            Ok((e.sequence, event))
        })
        .collect()
}

/// Parses a point in time: RFC 3339 (`2026-11-26T10:00:00.123456Z`, any offset; a `+` that a
/// query string turned into a space is put back), a naive date-time taken as UTC, or a date
/// (its midnight, UTC).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let rfc = |s: &str| DateTime::parse_from_rfc3339(s).ok().map(|t| t.to_utc());
    if let Some(t) = rfc(text) {
        return Some(t);
    }
    if let Some(i) = text.rfind(' ') {
        if i > 10 {
            let repaired = format!("{}+{}", &text[..i], &text[i + 1..]);
            if let Some(t) = rfc(&repaired) {
                return Some(t);
            }
        }
    }
    let spaced = text.replacen(' ', "T", 1);
    if let Some(t) = rfc(&spaced) {
        return Some(t);
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&spaced, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// `clap` parser for a point in time (see [`parse_time`]).
pub fn parse_time_arg(text: &str) -> Result<DateTime<Utc>, String> {
    parse_time(text)
        .ok_or_else(|| format!("{text:?} is not a time; use RFC 3339, e.g. 2026-11-26T10:00:00Z"))
}

/// Deserializes an optional `as_of` query parameter with [`parse_time`].
pub fn de_as_of<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => parse_time(&s).map(Some).ok_or_else(|| {
            serde::de::Error::custom("as_of must be a time in RFC 3339, e.g. 2026-11-26T10:00:00Z")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_in_the_forms_people_and_query_strings_produce() {
        let t = DateTime::parse_from_rfc3339("2026-11-26T10:00:00.123456Z")
            .map(|t| t.to_utc())
            .ok();
        assert_eq!(parse_time("2026-11-26T10:00:00.123456Z"), t);
        assert_eq!(parse_time("2026-11-26T11:00:00.123456+01:00"), t);
        assert_eq!(parse_time("2026-11-26T11:00:00.123456 01:00"), t);
        assert_eq!(parse_time("2026-11-26 10:00:00.123456"), t);
        assert_eq!(
            parse_time("2026-11-26"),
            DateTime::parse_from_rfc3339("2026-11-26T00:00:00Z")
                .map(|t| t.to_utc())
                .ok()
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn as_of_keeps_whole_transactions_and_stops_at_the_first_one_not_yet_recorded() {
        let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or_default();
        let rows = vec![
            ("1".to_string(), at(10)),
            ("2".to_string(), at(20)),
            ("2".to_string(), at(22)),
            ("3".to_string(), at(15)), // a clock that stepped back
        ];
        fn key(r: &(String, DateTime<Utc>)) -> (&String, DateTime<Utc>) {
            (&r.0, r.1)
        }
        assert_eq!(prefix_as_of(&rows, key, at(9)), 0);
        assert_eq!(prefix_as_of(&rows, key, at(21)), 1);
        assert_eq!(prefix_as_of(&rows, key, at(22)), 4);
        assert_eq!(prefix_as_of(&rows, key, at(16)), 1);
    }
}

/// One field an event changed, as history shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldChange {
    /// `title`, `description`, `status`, `priority`, `type`, `assignee_id`, `tags`,
    /// `item_ids`, `approval_status`, `deleted` or `comment` (a comment's text).
    pub field: String,
    #[schema(value_type = Object, nullable)]
    pub from: serde_json::Value,
    #[schema(value_type = Object, nullable)]
    pub to: serde_json::Value,
    /// For a user id field: the person's name before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_name: Option<String>,
}

/// The fields of a ticket that history compares before and after each event.
fn ticket_fields(t: &aggregates::ticket::Ticket) -> [(&'static str, serde_json::Value); 10] {
    use serde_json::json;
    [
        ("title", json!(t.title)),
        ("description", json!(t.description)),
        ("status", json!(t.status)),
        ("priority", json!(t.priority)),
        ("type", json!(t.ticket_type)),
        ("assignee_id", json!(t.assignee_id)),
        ("tags", json!(t.tags)),
        ("item_ids", json!(t.item_ids)),
        ("approval_status", json!(t.approval_status)),
        ("deleted", json!(t.deleted)),
    ]
}

/// What each of a ticket's events changed, in the order of `events` (a whole stream from its
/// first event, or a leading part of it). An event that does not decode changes nothing.
pub fn ticket_changes(events: &[HistoryEntry]) -> Vec<Vec<FieldChange>> {
    use cqrs_es::Aggregate;
    let mut ticket = aggregates::ticket::Ticket::default();
    let mut out = Vec::with_capacity(events.len());
    for entry in events {
        let Ok(event) = TicketEvent::deserialize(&entry.payload) else {
            out.push(Vec::new());
            continue;
        };
        let before = ticket_fields(&ticket);
        let comment_before = comment_of(&ticket, &event);
        let opened = !ticket.exists();
        ticket.apply(event.clone());
        let mut changes = Vec::new();
        if !opened {
            for ((field, from), (_, to)) in before.into_iter().zip(ticket_fields(&ticket)) {
                if from != to {
                    changes.push(FieldChange {
                        field: field.into(),
                        from,
                        to,
                        from_name: None,
                        to_name: None,
                    });
                }
            }
        }
        let comment_after = comment_of(&ticket, &event);
        if comment_before.is_some() && comment_before != comment_after {
            changes.push(FieldChange {
                field: "comment".into(),
                from: serde_json::json!(comment_before),
                to: serde_json::json!(comment_after),
                from_name: None,
                to_name: None,
            });
        }
        out.push(changes);
    }
    out
}

/// The live text of the comment an event is about (edits and deletions), if any.
fn comment_of(ticket: &aggregates::ticket::Ticket, event: &TicketEvent) -> Option<String> {
    let id = match event {
        TicketEvent::CommentEdited { comment_id, .. }
        | TicketEvent::CommentDeleted { comment_id, .. } => comment_id,
        _ => return None,
    };
    ticket
        .comments
        .get(id)
        .filter(|c| !c.deleted)
        .map(|c| c.content.clone())
}
