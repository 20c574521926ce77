//! `ticketd seed --tickets N`: realistic tickets and histories, written through the event
//! log (same events, metadata and hash chain as the API writes) in large batches.

use aggregates::ticket::{PostedComment, TicketEvent, TicketFields};
use aggregates::{Priority, Role, TicketStatus, TicketType};
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::cli::progress::Progress;
use crate::service::error::any::Result;

const SUBJECTS: &[&str] = &[
    "Printer",
    "VPN",
    "Laptop",
    "Email",
    "Wi-Fi",
    "Monitor",
    "Password",
    "Database",
    "Payroll system",
    "CRM",
    "Badge reader",
    "Phone",
    "Shared drive",
    "Calendar",
    "SSO login",
    "Docking station",
    "Backup job",
    "Firewall rule",
    "Certificate",
    "License server",
];
const PROBLEMS: &[&str] = &[
    "is not working",
    "keeps disconnecting",
    "is very slow",
    "shows an error",
    "needs to be replaced",
    "cannot be reached",
    "rejects my credentials",
    "crashes on start",
    "needs access for a new hire",
    "requires an upgrade",
    "lost its configuration",
    "prints blank pages",
];
const PLACES: &[&str] = &[
    "on the third floor",
    "in meeting room B",
    "for the finance team",
    "at the Berlin office",
    "since this morning",
    "after the last update",
    "for remote staff",
    "in the warehouse",
];
const DETAILS: &[&str] = &[
    "Restarting did not help.",
    "It worked fine yesterday.",
    "Several colleagues report the same thing.",
    "The error code is 0x80070005.",
    "This blocks the month-end close.",
    "I attached a screenshot of the message.",
    "Please treat this as urgent before the audit.",
    "It happens intermittently, roughly every hour.",
];
const REPLIES: &[&str] = &[
    "Thanks for reporting, we are looking into it.",
    "Could you tell us the exact time it happened?",
    "We pushed a fix; please try again.",
    "This is a known issue with the vendor; a patch is scheduled.",
    "I reset the configuration; does it work now?",
];

async fn ensure_seed_users(pool: &PgPool, role: Role, n: usize, prefix: &str) -> Result<Vec<i64>> {
    let hash = crate::service::auth::hash_password(Uuid::new_v4().to_string())
        .await
        .map_err(|e| e.to_string())?;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let email = format!("{prefix}{i}@seed.ticketd.local");
        let row: (i64,) = sqlx::query_as(
            "insert into users (email, full_name, password_hash, role) values ($1, $2, $3, $4)
             on conflict (lower(email)) do update set full_name = excluded.full_name
             returning id",
        )
        .bind(&email)
        .bind(format!("Seed {prefix} {i}"))
        .bind(&hash)
        .bind(role.as_str())
        .fetch_one(pool)
        .await?;
        ids.push(row.0);
    }
    Ok(ids)
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// One ticket's generated history.
/// The ticket opens at `opened`; later steps that would fall after `now` are left out
/// (a young ticket has not got far yet).
fn history(
    rng: &mut StdRng,
    id: i64,
    opened: DateTime<Utc>,
    now: DateTime<Utc>,
    requesters: &[i64],
    agents: &[i64],
) -> Vec<(TicketEvent, i64)> {
    use TicketStatus::*;
    let requester = *pick(rng, requesters);
    let agent = *pick(rng, agents);
    let mut at = opened;
    let fields = ticket_fields(rng);
    let mut events = vec![(
        TicketEvent::TicketOpened {
            id,
            requester_id: requester,
            fields,
            at,
        },
        requester,
    )];
    let mut step = |rng: &mut StdRng| {
        at += Duration::minutes(rng.gen_range(5..600));
        at
    };
    let depth = depth(rng, opened, now);
    if depth >= 1 {
        let assigned = TicketEvent::TicketAssigned {
            assignee_id: Some(agent),
            previous_assignee_id: None,
            at: step(rng),
        };
        events.push((assigned, agent));
    }
    if depth >= 2 {
        let comment_id = Uuid::from_u128(rng.gen());
        let t = step(rng);
        events.push((first_reply(rng, comment_id, agent, t), agent));
        let first_response = TicketEvent::FirstResponseRecorded {
            comment_id,
            responder_id: agent,
            at: t,
        };
        events.push((first_response, agent));
        events.push((moved(Open, InProgress, None, step(rng)), agent));
    }
    if depth >= 3 && rng.gen_bool(0.3) {
        let waiting = Some("Waiting for the requester".into());
        events.push((moved(InProgress, Pending, waiting, step(rng)), agent));
        events.push((moved(Pending, InProgress, None, step(rng)), agent));
    }
    if depth >= 4 {
        events.push((moved(InProgress, Resolved, None, step(rng)), agent));
    }
    if depth >= 5 {
        events.push((moved(Resolved, Closed, None, step(rng)), requester));
    }
    events
}

/// A ticket's title, description, priority, type and tag.
fn ticket_fields(rng: &mut StdRng) -> TicketFields {
    let priority = *pick(
        rng,
        &[
            Priority::Low,
            Priority::Medium,
            Priority::Medium,
            Priority::High,
            Priority::Critical,
        ],
    );
    let ticket_type = *pick(rng, TicketType::ALL);
    let title = format!(
        "{} {} {}",
        pick(rng, SUBJECTS),
        pick(rng, PROBLEMS),
        pick(rng, PLACES)
    );
    let description = format!("{} {}", pick(rng, DETAILS), pick(rng, DETAILS));
    let tags = vec![pick(rng, SUBJECTS).to_lowercase().replace(' ', "-")];
    TicketFields {
        title,
        description,
        priority,
        ticket_type,
        tags,
        item_ids: vec![],
    }
}

/// How far a ticket opened at `opened` got by `now`: a realistic mix of open, working and
/// finished tickets, cut short where its next step would lie in the future.
fn depth(rng: &mut StdRng, opened: DateTime<Utc>, now: DateTime<Utc>) -> usize {
    let mut depth = rng.gen_range(0..6);
    let steps_needed = [0, 1, 3, 5, 6, 7];
    let room = (now - opened).num_minutes();
    while depth > 0 && room < steps_needed[depth] * 600 {
        depth -= 1;
    }
    depth
}

/// The agent's first public reply.
fn first_reply(rng: &mut StdRng, comment_id: Uuid, agent: i64, at: DateTime<Utc>) -> TicketEvent {
    TicketEvent::CommentAdded(PostedComment {
        comment_id,
        author_id: agent,
        content: pick(rng, REPLIES).to_string(),
        is_internal: false,
        parent_id: None,
        mentions: vec![],
        at,
    })
}

fn moved(
    from: TicketStatus,
    to: TicketStatus,
    reason: Option<String>,
    at: DateTime<Utc>,
) -> TicketEvent {
    TicketEvent::TicketStatusChanged {
        from,
        to,
        reason,
        at,
    }
}

/// Writes `n` tickets with their histories, their personal fields sealed unless `seal` is false.
/// One ticket's history as the rows the event store writes (before sealing).
fn serialized_stream(
    id: i64,
    history: Vec<(TicketEvent, i64)>,
) -> Result<Vec<cqrs_es::persist::SerializedEvent>> {
    let mut stream = Vec::with_capacity(history.len());
    for (i, (event, actor)) in history.into_iter().enumerate() {
        stream.push(cqrs_es::persist::SerializedEvent::new(
            id.to_string(),
            i + 1,
            "ticket".into(),
            cqrs_es::DomainEvent::event_type(&event),
            "1.0".into(),
            serde_json::to_value(&event)?,
            json!({"user_id": actor.to_string(), "request_id": "seed", "client_ip": "", "user_agent": "ticketd seed"}),
        ));
    }
    Ok(stream)
}

pub async fn seed(pool: &PgPool, n: u64, seal: bool) -> Result<()> {
    let sealing = crate::service::sealing::SealingRepository::new(pool.clone());
    let started = std::time::Instant::now();
    let requesters = ensure_seed_users(pool, Role::Requester, 200, "requester").await?;
    let agents = ensure_seed_users(pool, Role::Agent, 20, "agent").await?;
    let mut rng = StdRng::from_entropy();
    // Tickets arrive in id order, as they do on a real desk, spread evenly over the last
    // year: a higher id always opened later.
    let now = Utc::now();
    let span_minutes: i64 = 60 * 24 * 365;
    let spacing_ms = span_minutes * 60_000 / n.max(1) as i64;
    let first_open = now - Duration::minutes(span_minutes) - Duration::minutes(10);
    let batch_tickets: u64 = 1000;
    let progress = Progress::new("seed", "tickets", Some(n));
    let mut done = 0u64;
    let mut total_events = 0usize;
    while done < n {
        let count = batch_tickets.min(n - done);
        let ids: Vec<(i64,)> =
            sqlx::query_as("select nextval('ticket_id_seq') from generate_series(1, $1)")
                .bind(count as i64)
                .fetch_all(pool)
                .await?;
        let mut agg_ids = Vec::new();
        let mut seqs = Vec::new();
        let mut types = Vec::new();
        let mut payloads = Vec::new();
        let mut metas = Vec::new();
        for (k, (id,)) in ids.into_iter().enumerate() {
            let index = (done + k as u64) as i64;
            let opened = first_open
                + Duration::milliseconds(index * spacing_ms + rng.gen_range(0..spacing_ms.max(1)));
            let mut stream =
                serialized_stream(id, history(&mut rng, id, opened, now, &requesters, &agents))?;
            if seal {
                stream = sealing
                    .seal_new_stream::<aggregates::ticket::Ticket>(&stream)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            for e in stream {
                agg_ids.push(e.aggregate_id);
                seqs.push(e.sequence as i64);
                types.push(e.event_type);
                payloads.push(e.payload);
                metas.push(e.metadata);
            }
        }
        total_events += agg_ids.len();
        sqlx::query(
            "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             select 'ticket', a, s, t, '1.0', p, m
               from unnest($1::text[], $2::bigint[], $3::text[], $4::jsonb[], $5::jsonb[]) as u(a, s, t, p, m)",
        )
        .bind(&agg_ids)
        .bind(&seqs)
        .bind(&types)
        .bind(&payloads)
        .bind(&metas)
        .execute(pool)
        .await?;
        done += count;
        progress.set(done);
    }
    progress.finish(done);
    let secs = started.elapsed().as_secs_f64();
    crate::cli::out(&format!(
        "seeded {n} tickets ({total_events} events) in {secs:.1}s: {:.0} events/s",
        total_events as f64 / secs.max(1e-9)
    ));
    Ok(())
}
