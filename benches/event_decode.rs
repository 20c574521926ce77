//! Criterion micro-benchmarks of reading events, the CPU that every projection batch and the
//! rebuild's first pass spend per event before folding it:
//! - a row of `events` into a `StoredEvent`: by position (what `log` does) against by column
//!   name (sqlx's derived `FromRow`, kept here as the comparison);
//! - a payload's JSON text into its `TicketEvent`: straight (the rebuild's first pass, for an
//!   event with nothing to open) against through a `serde_json::Value` (every other reader,
//!   which opens sealed values in the `Value`).
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench event_decode`:
//! the rows come from PostgreSQL once (`generate_series`, no table), shaped like the seeded log's
//! ticket events; only the decoding is timed.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use projections::StoredEvent;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::FromRow;

/// `StoredEvent` read by column name, as `#[derive(FromRow)]` reads it.
#[derive(FromRow)]
#[allow(dead_code)]
struct ByName {
    txid: String,
    global_position: i64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
    recorded_at: chrono::DateTime<chrono::Utc>,
}

/// Events in the seeded log's mix: a ticket opened, assigned, answered and moved along.
const ROWS: &str = r#"
select (1000 + g)::text as txid, g::bigint as global_position, 'ticket' as aggregate_type,
       (g / 5)::text as aggregate_id, (g % 5 + 1)::bigint as sequence,
       (array['TicketOpened','TicketAssigned','CommentAdded','FirstResponseRecorded',
              'TicketStatusChanged'])[g % 5 + 1] as event_type,
       '1.0' as event_version,
       (array[
         jsonb_build_object('TicketOpened', jsonb_build_object('at', '2025-12-06T13:38:40.084628904Z',
           'id', g / 5, 'tags', jsonb_build_array('shared-drive'), 'type', 'question',
           'title', 'The shared drive is not mounting on the third floor laptops',
           'item_ids', jsonb_build_array(), 'priority', 'critical',
           'description', 'Since this morning nobody on the third floor can open the shared drive; the VPN is up.',
           'requester_id', 88)),
         jsonb_build_object('TicketAssigned', jsonb_build_object('at', '2025-12-06T15:12:40.084628904Z',
           'assignee_id', 218, 'previous_assignee_id', null)),
         jsonb_build_object('CommentAdded', jsonb_build_object('at', '2025-12-06T16:02:40.084628904Z',
           'content', 'Could you try reconnecting once more and tell me what you see?',
           'mentions', jsonb_build_array(), 'author_id', 218, 'parent_id', null,
           'comment_id', '8dec3a26-0d4e-01a6-065a-d2750a979516', 'is_internal', false)),
         jsonb_build_object('FirstResponseRecorded', jsonb_build_object('at', '2025-12-06T16:02:40.084628904Z',
           'comment_id', '8dec3a26-0d4e-01a6-065a-d2750a979516', 'responder_id', 218)),
         jsonb_build_object('TicketStatusChanged', jsonb_build_object('at', '2025-12-07T00:32:40.084628904Z',
           'to', 'in_progress', 'from', 'open'))
       ])[g % 5 + 1] as payload,
       jsonb_build_object('user_id', '218', 'client_ip', '', 'request_id', 'seed') as metadata,
       now() as recorded_at
  from generate_series(0, 4999) g"#;

fn rows() -> Option<Vec<PgRow>> {
    let url = std::env::var("DATABASE_URL").ok()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(&url).await.ok()?;
        sqlx::query(ROWS).fetch_all(&pool).await.ok()
    })
}

fn decode(c: &mut Criterion) {
    let Some(rows) = rows() else {
        eprintln!("event_decode: set DATABASE_URL to a reachable PostgreSQL; skipping");
        return;
    };
    let mut g = c.benchmark_group("event_row_5000");
    g.bench_function("by_position", |b| {
        b.iter(|| {
            for row in &rows {
                black_box(StoredEvent::from_row(row).expect("row"));
            }
        })
    });
    g.bench_function("by_name", |b| {
        b.iter(|| {
            for row in &rows {
                black_box(ByName::from_row(row).expect("row"));
            }
        })
    });
    g.finish();

    let events: Vec<StoredEvent> = rows
        .iter()
        .map(|r| StoredEvent::from_row(r).expect("row"))
        .collect();
    let texts: Vec<String> = events.iter().map(|e| e.payload.to_string()).collect();
    let mut g = c.benchmark_group("ticket_text_5000");
    g.bench_function("typed", |b| {
        b.iter(|| {
            for t in &texts {
                black_box(
                    serde_json::from_str::<aggregates::ticket::TicketEvent>(t).expect("event"),
                );
            }
        })
    });
    g.bench_function("value_then_typed", |b| {
        b.iter(|| {
            for t in &texts {
                let v: Value = serde_json::from_str(t).expect("value");
                black_box(
                    <aggregates::ticket::TicketEvent as serde::Deserialize>::deserialize(&v)
                        .expect("event"),
                );
            }
        })
    });
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
