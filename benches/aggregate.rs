//! Criterion micro-benchmarks of the Ticket aggregate: `handle` (decide) and `apply` (fold).

use aggregates::ticket::{Ticket, TicketChanges, TicketCommand, TicketEvent, TicketFields};
use aggregates::{Priority, TicketStatus, TicketType};
use chrono::Utc;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn opened() -> TicketEvent {
    TicketEvent::TicketOpened {
        id: 1,
        requester_id: 1,
        fields: TicketFields {
            title: "Printer on fire".into(),
            description: "Third floor, near the kitchen".into(),
            priority: Priority::High,
            ticket_type: TicketType::Incident,
            tags: vec!["printer".into()],
            item_ids: vec![],
        },
        at: Utc::now(),
    }
}

fn history(n: usize) -> Vec<TicketEvent> {
    let mut events = vec![opened()];
    let mut status = TicketStatus::Open;
    for i in 0..n {
        let to = if i % 2 == 0 {
            TicketStatus::InProgress
        } else {
            TicketStatus::Pending
        };
        let to = if status == TicketStatus::Open || status == TicketStatus::Pending {
            TicketStatus::InProgress
        } else {
            to
        };
        events.push(TicketEvent::TicketStatusChanged {
            from: status,
            to,
            reason: None,
            at: Utc::now(),
        });
        status = to;
    }
    events
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    c.bench_function("ticket_handle_change_status", |b| {
        let mut base = Ticket::default();
        base.apply(opened());
        b.iter(|| {
            let mut t = base.clone();
            let sink = EventSink::default();
            rt.block_on(t.handle(
                TicketCommand::ChangeStatus {
                    status: TicketStatus::InProgress,
                    reason: None,
                    at: Utc::now(),
                },
                &(),
                &sink,
            ))
            .ok();
            black_box(rt.block_on(sink.collect()))
        })
    });
    c.bench_function("ticket_handle_update", |b| {
        let mut base = Ticket::default();
        base.apply(opened());
        b.iter(|| {
            let mut t = base.clone();
            let sink = EventSink::default();
            rt.block_on(t.handle(
                TicketCommand::UpdateTicket {
                    asked: TicketChanges {
                        title: Some("Printer still on fire".into()),
                        priority: Some(Priority::Critical),
                        tags: Some(vec!["printer".into(), "fire".into()]),
                        ..Default::default()
                    },
                    at: Utc::now(),
                },
                &(),
                &sink,
            ))
            .ok();
            black_box(rt.block_on(sink.collect()))
        })
    });
    let events = history(1000);
    c.bench_function("ticket_apply_1000_events", |b| {
        b.iter(|| {
            let mut t = Ticket::default();
            for e in events.iter().cloned() {
                t.apply(e);
            }
            black_box(t)
        })
    });
    let json: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap_or_default())
        .collect();
    c.bench_function("ticket_decode_and_apply_1000_events", |b| {
        b.iter(|| {
            let mut t = Ticket::default();
            for v in &json {
                if let Ok(e) = serde_json::from_value::<TicketEvent>(v.clone()) {
                    t.apply(e);
                }
            }
            black_box(t)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
