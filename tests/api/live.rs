//! `GET /api/v1/live` and `PUT /tickets/{id}/presence`: what each reader gets, how fast, across
//! processes, resumed without loss or repetition, and who is on a ticket.

use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{json_of, test_config, TestApp, TestUser};
use crate::steps::{ann_bob_and_agent, open_ticket};

/// One event of a live stream.
#[derive(Debug, Clone, PartialEq)]
struct LiveEvent {
    kind: String,
    id: Option<String>,
    data: Value,
}

/// A Server-Sent Events client of `/live` over reqwest.
struct LiveClient {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    buffer: String,
}

fn live_request(
    app: &TestApp,
    who: &TestUser,
    query: &str,
    last: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut r = app
        .request(
            Method::GET,
            &format!("/api/v1/live?{query}"),
            Some(&who.token),
        )
        .header("accept", "text/event-stream");
    if let Some(id) = last {
        r = r.header("last-event-id", id);
    }
    r
}

impl LiveClient {
    async fn connect(app: &TestApp, who: &TestUser, query: &str, last: Option<&str>) -> LiveClient {
        let response = live_request(app, who, query, last)
            .send()
            .await
            .expect("connect");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{:?}",
            response.text().await
        );
        LiveClient {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event with data, or None if none comes within `wait` (or the stream ends).
    async fn next(&mut self, wait: Duration) -> Option<LiveEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut kind, mut id, mut data) = ("message".to_string(), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        kind = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if !data.is_empty() {
                    let data = serde_json::from_str(&data).expect("json data");
                    return Some(LiveEvent { kind, id, data });
                }
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(_) | Err(_) => return None,
            }
        }
    }

    /// The next event of `kind` (others are skipped), within `wait`.
    async fn next_of(&mut self, kind: &str, wait: Duration) -> Option<LiveEvent> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = self.next(left).await?;
            if e.kind == kind {
                return Some(e);
            }
        }
    }

    /// Every event (presence aside) up to and including the first `is_marker` accepts: what
    /// comes before a marker caused later is everything sent before it.
    async fn until(&mut self, is_marker: impl Fn(&LiveEvent) -> bool) -> Vec<LiveEvent> {
        let mut out = Vec::new();
        loop {
            let e = self
                .next(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("no marker after {out:?}"));
            if e.kind == "presence" {
                continue;
            }
            let done = is_marker(&e);
            out.push(e);
            if done {
                return out;
            }
        }
    }
}

async fn reply(app: &TestApp, who: &TestUser, ticket: i64, content: &str, internal: bool) {
    let r = app
        .post(
            "/api/v1/comments/",
            &who.token,
            json!({"ticket_id": ticket, "content": content, "is_internal": internal}),
        )
        .await;
    json_of(r, StatusCode::CREATED).await;
}

async fn retitle(app: &TestApp, who: &TestUser, ticket: i64, title: &str) {
    let r = app
        .patch(
            &format!("/api/v1/tickets/{ticket}"),
            &who.token,
            json!({"title": title}),
        )
        .await;
    json_of(r, StatusCode::OK).await;
}

async fn presence(app: &TestApp, who: &TestUser, ticket: i64, body: Value) -> StatusCode {
    app.request(
        Method::PUT,
        &format!("/api/v1/tickets/{ticket}/presence"),
        Some(&who.token),
    )
    .json(&body)
    .send()
    .await
    .expect("request")
    .status()
}

fn is_reply(content: &str) -> impl Fn(&LiveEvent) -> bool + '_ {
    move |e| e.kind == "notification" && e.data["excerpt"].as_str() == Some(content)
}

#[sqlx::test]
async fn a_requester_gets_a_public_reply_within_a_second_and_no_internal_note_or_other_ticket(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let [ann, bob, agent] = ann_bob_and_agent(&app).await;
    let mine = open_ticket(&app, &ann, "Ann's printer").await;
    let theirs = open_ticket(&app, &bob, "Bob's laptop").await;
    // The openings are not news to a stream that connects after them (see the sign-out test).
    app.settle().await;
    // Someone else's ticket cannot even be watched.
    let r = live_request(&app, &ann, &format!("ticket={theirs}"), None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let mut stream = LiveClient::connect(&app, &ann, &format!("ticket={mine}"), None).await;
    reply(&app, &agent, mine, "internal: check the toner first", true).await;
    retitle(&app, &agent, theirs, "Bob's laptop (screen)").await;
    let sent = Instant::now();
    reply(&app, &agent, mine, "We are on it", false).await;
    // (A stream starts where its process's hub is: on a busy machine that may be just before
    // Ann opened the ticket, so her own opening may come first.)
    let ticket = loop {
        let e = stream
            .next_of("ticket", Duration::from_secs(5))
            .await
            .expect("a ticket event");
        if e.data["actor_id"] != json!(ann.id) {
            break e;
        }
    };
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(1), "the reply took {took:?}");
    assert_eq!(ticket.data["ticket_id"], json!(mine));
    assert_eq!(ticket.data["actor_id"], json!(agent.id));
    assert_eq!(ticket.data["actor_name"], json!("User agent@example.com"));
    assert!(
        ticket.data["summary"].as_str().unwrap().contains("replied"),
        "{ticket:?}"
    );
    let types = ticket.data["event_types"].as_array().unwrap();
    assert!(types.contains(&json!("CommentAdded")), "{types:?}");
    // The version is the ticket's: opened (1), the internal note (2), the reply (3), and the
    // first response it records (4).
    assert_eq!(ticket.data["version"], json!(4));
    let id = ticket.id.clone().expect("an id");
    assert!(id.split_once('.').is_some(), "id {id} is <txid>.<position>");

    // What arrived up to the reply's notification: nothing about the internal note.
    let mut all = vec![ticket];
    all.extend(stream.until(is_reply("We are on it")).await);
    let tickets: Vec<&LiveEvent> = all
        .iter()
        .filter(|e| e.kind == "ticket" && e.data["actor_id"] == json!(agent.id))
        .collect();
    assert_eq!(tickets.len(), 1, "only the public reply: {all:?}");
    assert!(
        all.iter().all(|e| e.data["internal"] != json!(true)),
        "{all:?}"
    );
    assert!(!format!("{all:?}").contains("toner"), "{all:?}");
    assert!(
        all.iter().all(|e| e.data["ticket_id"] != json!(theirs)),
        "{all:?}"
    );
}

#[sqlx::test]
async fn a_client_on_process_b_gets_what_process_a_did_within_a_second(pool: PgPool) {
    let a = TestApp::spawn(pool.clone()).await;
    let b = TestApp::spawn(pool).await;
    let [ann, _bob, agent] = ann_bob_and_agent(&a).await;
    let agent = b.login(&agent.email, crate::helpers::PASSWORD).await;
    let ticket = open_ticket(&a, &ann, "Two processes").await;
    let mut on_b =
        LiveClient::connect(&b, &agent, &format!("ticket={ticket}&queue=true"), None).await;
    let sent = Instant::now();
    reply(&a, &ann, ticket, "Hello from process A", false).await;
    let change = on_b
        .next_of("ticket", Duration::from_secs(5))
        .await
        .expect("a ticket event on B");
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(1), "A to B took {took:?}");
    assert_eq!(change.data["ticket_id"], json!(ticket));
    assert_eq!(change.data["actor_id"], json!(ann.id));
    let queued = on_b
        .next_of("queue", Duration::from_secs(5))
        .await
        .expect("a queue event on B");
    assert_eq!(
        queued.data,
        json!({"ticket_id": ticket, "version": change.data["version"]})
    );
}

#[sqlx::test]
async fn presence_shows_on_the_other_stream_hides_internal_typing_and_ends_30_s_after_the_last_renewal(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let [ann, bob, agent] = ann_bob_and_agent(&app).await;
    let ticket = open_ticket(&app, &ann, "Who is here").await;
    let watch = format!("ticket={ticket}");
    let mut anns = LiveClient::connect(&app, &ann, &watch, None).await;
    let first = anns
        .next_of("presence", Duration::from_secs(2))
        .await
        .expect("the presence on connect");
    assert_eq!(first.data, json!({"ticket_id": ticket, "users": []}));
    let mut agents = LiveClient::connect(&app, &agent, &watch, None).await;
    agents
        .next_of("presence", Duration::from_secs(2))
        .await
        .expect("the presence on connect");

    // Requesters never type internal notes, nor say anything about others' tickets.
    assert_eq!(
        presence(
            &app,
            &ann,
            ticket,
            json!({"state": "typing", "internal": true})
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        presence(&app, &bob, ticket, json!({"state": "viewing"})).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        presence(&app, &ann, ticket, json!({"state": "dancing"})).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    assert_eq!(
        presence(
            &app,
            &agent,
            ticket,
            json!({"state": "typing", "internal": true})
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let renewed = Instant::now();
    let seen_by_ann = anns
        .next_of("presence", Duration::from_secs(2))
        .await
        .expect("ann sees the agent");
    assert_eq!(
        seen_by_ann.data["users"],
        json!([{"id": agent.id, "full_name": "User agent@example.com", "state": "viewing"}])
    );
    let seen_by_agent = agents
        .next_of("presence", Duration::from_secs(2))
        .await
        .expect("the agent sees itself");
    assert_eq!(seen_by_agent.data["users"][0]["state"], json!("typing"));

    assert_eq!(
        presence(&app, &ann, ticket, json!({"state": "typing"})).await,
        StatusCode::NO_CONTENT
    );
    let both = agents
        .next_of("presence", Duration::from_secs(2))
        .await
        .expect("the agent sees ann");
    let states: Vec<(i64, &str)> = both.data["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_i64().unwrap(), u["state"].as_str().unwrap()))
        .collect();
    assert!(
        states.contains(&(ann.id, "typing")) && states.contains(&(agent.id, "typing")),
        "{states:?}"
    );
    anns.next_of("presence", Duration::from_secs(2))
        .await
        .expect("ann's own typing");

    // Ann leaves at once; the agent stops renewing and fades out 30 s after the last renewal.
    assert_eq!(
        presence(&app, &ann, ticket, json!({"state": "left"})).await,
        StatusCode::NO_CONTENT
    );
    let left = agents
        .next_of("presence", Duration::from_secs(2))
        .await
        .expect("ann left");
    assert_eq!(left.data["users"].as_array().unwrap().len(), 1, "{left:?}");
    let gone = agents
        .next_of("presence", Duration::from_secs(40))
        .await
        .expect("the agent's presence ends");
    let after = renewed.elapsed();
    assert_eq!(gone.data["users"], json!([]));
    assert!(
        after >= Duration::from_secs(30) && after < Duration::from_secs(35),
        "ended after {after:?}"
    );
}

/// Everything a reference stream got after `id` (presence aside).
fn after<'a>(all: &'a [LiveEvent], id: &str) -> &'a [LiveEvent] {
    let at = all
        .iter()
        .position(|e| e.id.as_deref() == Some(id))
        .expect("the id was sent");
    &all[at + 1..]
}

#[sqlx::test]
async fn resuming_with_last_event_id_loses_and_repeats_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [ann, _bob, agent] = ann_bob_and_agent(&app).await;
    let ticket = open_ticket(&app, &ann, "Resume me").await;
    let watch = format!("ticket={ticket}");
    // A reference stream stays connected the whole time.
    let mut reference = LiveClient::connect(&app, &ann, &watch, None).await;
    reply(&app, &agent, ticket, "first", false).await;
    let mut seen = reference.until(is_reply("first")).await;
    let r = app
        .patch(
            &format!("/api/v1/tickets/{ticket}/status"),
            &agent.token,
            json!({"status": "in_progress"}),
        )
        .await;
    json_of(r, StatusCode::OK).await;
    reply(&app, &agent, ticket, "second", false).await;
    retitle(&app, &agent, ticket, "Resume me, please").await;
    reply(&app, &agent, ticket, "third", false).await;
    seen.extend(reference.until(is_reply("third")).await);
    let kinds: Vec<&str> = seen.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        kinds.contains(&"ticket") && kinds.contains(&"notification"),
        "{kinds:?}"
    );

    // Resume after every event the reference got, ticket and notification ids alike.
    for (i, e) in seen.iter().enumerate() {
        let id = e.id.clone().expect("every change has an id");
        let mut resumed = LiveClient::connect(&app, &ann, &watch, Some(&id)).await;
        let mut got = Vec::new();
        if i + 1 < seen.len() {
            got = resumed.until(is_reply("third")).await;
        }
        assert_eq!(
            got.as_slice(),
            after(&seen, &id),
            "resumed after {id} ({})",
            e.kind
        );
        // ... and then live: the next change is next.
        if i + 1 == seen.len() {
            reply(&app, &agent, ticket, "fourth", false).await;
            let next = resumed.until(is_reply("fourth")).await;
            assert_eq!(
                next.first().map(|e| e.kind.as_str()),
                Some("ticket"),
                "{next:?}"
            );
        }
    }
}

#[sqlx::test]
async fn an_id_past_the_retention_window_or_not_in_the_log_resets_and_a_malformed_one_is_422(
    pool: PgPool,
) {
    let mut config = test_config(&pool);
    config.bus.live_retention_secs = 1;
    let app = TestApp::spawn_with(pool, config).await;
    let [ann, _bob, agent] = ann_bob_and_agent(&app).await;
    let ticket = open_ticket(&app, &ann, "Old news").await;
    let watch = format!("ticket={ticket}");
    let mut stream = LiveClient::connect(&app, &ann, &watch, None).await;
    reply(&app, &agent, ticket, "long ago", false).await;
    let old = stream
        .next_of("ticket", Duration::from_secs(5))
        .await
        .expect("ticket");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for id in [old.id.as_deref().unwrap(), "1.1", "999999999"] {
        let mut resumed = LiveClient::connect(&app, &ann, &watch, Some(id)).await;
        let first = resumed
            .until(|e| e.kind == "reset" || e.kind == "ticket")
            .await;
        assert_eq!(
            first.last().map(|e| e.kind.as_str()),
            Some("reset"),
            "after {id}: {first:?}"
        );
    }
    for bad in ["yesterday", "-3", "1.x"] {
        let r = live_request(&app, &ann, &watch, Some(bad))
            .send()
            .await
            .unwrap();
        let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["detail"][0]["loc"], json!(["header", "Last-Event-ID"]));
    }
    let r = live_request(&app, &ann, "ticket=abc", None)
        .send()
        .await
        .unwrap();
    let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["detail"][0]["loc"], json!(["query", "ticket"]));
}

#[sqlx::test]
async fn staff_get_the_queue_coalesced_and_requesters_may_not_ask_for_it(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [ann, _bob, agent] = ann_bob_and_agent(&app).await;
    let r = live_request(&app, &ann, "queue=true", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let mut queue = LiveClient::connect(&app, &agent, "queue=true", None).await;
    let ticket = open_ticket(&app, &ann, "Queue me").await;
    for n in 0..6 {
        retitle(&app, &agent, ticket, &format!("Queue me {n}")).await;
    }
    // The last version always arrives; versions only grow; bursts are coalesced.
    let mut versions = Vec::new();
    while versions.last() != Some(&7) {
        let e = queue
            .next_of("queue", Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("versions so far {versions:?}"));
        assert_eq!(e.data["ticket_id"], json!(ticket));
        versions.push(e.data["version"].as_i64().unwrap());
    }
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert!(versions.len() < 7, "coalesced: {versions:?}");
}

#[sqlx::test]
async fn a_live_stream_ends_when_its_session_signs_out(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [ann, _bob, _agent] = ann_bob_and_agent(&app).await;
    let ticket = open_ticket(&app, &ann, "Bye").await;
    // The hub hands a new stream what the log gains after its own position, which trails the
    // notifications projection: let the opening pass first, so that it is not news later.
    app.settle().await;
    let mut stream = LiveClient::connect(&app, &ann, &format!("ticket={ticket}"), None).await;
    stream
        .next_of("presence", Duration::from_secs(2))
        .await
        .expect("presence on connect");
    let r = app
        .request(Method::POST, "/api/v1/auth/logout", None)
        .json(&json!({"refresh_token": ann.refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let started = Instant::now();
    // (A presence refresh may still be on its way; nothing else is.)
    let next = loop {
        match stream.next(Duration::from_secs(5)).await {
            Some(e) if e.kind == "presence" => continue,
            other => break other,
        }
    };
    assert!(next.is_none(), "nothing after the sign-out: {next:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the stream ended at once"
    );
}
