//! Events reaching the outside, against real components on loopback: a webhook receiver that
//! verifies every signature with the Standard Webhooks algorithm (written here independently),
//! an SMTP server (aiosmtpd, `tests/support/smtp_sink.py`), and the NATS server with JetStream
//! on 127.0.0.1:4222. Crashes are `kill -9` of a real `ticketd serve`.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::PgPool;

use crate::helpers::{json_of, test_config, TestApp};
use crate::serve::Served;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

#[derive(Default)]
struct ReceiverState {
    hits: Mutex<Vec<Hit>>,
    /// Answer 500 to this many requests first.
    fail_first: AtomicUsize,
    delay: Duration,
}

/// A webhook receiver on loopback.
struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    async fn start(fail_first: usize, delay: Duration) -> Receiver {
        let state = Arc::new(ReceiverState {
            hits: Mutex::default(),
            fail_first: AtomicUsize::new(fail_first),
            delay,
        });
        async fn hook(
            State(state): State<Arc<ReceiverState>>,
            headers: HeaderMap,
            body: String,
        ) -> AxumStatus {
            tokio::time::sleep(state.delay).await;
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            state.hits.lock().expect("hits").push(Hit {
                id: header("webhook-id"),
                timestamp: header("webhook-timestamp"),
                signature: header("webhook-signature"),
                body,
            });
            let fail = state
                .fail_first
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if fail {
                AxumStatus::INTERNAL_SERVER_ERROR
            } else {
                AxumStatus::NO_CONTENT
            }
        }
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            state,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().expect("hits").clone()
    }

    /// Waits until `done` holds for the hits so far.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let hits = self.hits();
            if done(&hits) {
                return hits;
            }
            assert!(Instant::now() < deadline, "{what}: {hits:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The Standard Webhooks check, as a receiver implements it from the specification: the
/// base64 HMAC-SHA256, keyed with the secret's base64 part, of `id.timestamp.body`, among the
/// space-separated `v1,` signatures.
fn verify(secret: &str, hit: &Hit) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("secret is base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{}.{}.{}", hit.id, hit.timestamp, hit.body).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    hit.signature
        .split(' ')
        .any(|s| s == format!("v1,{expected}"))
}

fn distinct_ids(hits: &[Hit]) -> BTreeSet<String> {
    hits.iter().map(|h| h.id.clone()).collect()
}

#[sqlx::test(migrations = "./migrations")]
async fn webhooks_are_for_admins_and_refuse_private_addresses_and_unknown_events(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let admin = app.user("admin@example.com", "admin").await;
    let agent = app.user("agent@example.com", "agent").await;
    let hook = json!({"url": "https://hooks.example.com/ticketd", "events": ["ticket.created"]});

    let r = app
        .post("/api/v1/webhooks/", &agent.token, hook.clone())
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.get("/api/v1/webhooks/", &agent.token).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    for (body, why) in [
        (json!({"url": "http://127.0.0.1:9/x"}), "loopback"),
        (json!({"url": "http://10.1.2.3/x"}), "private"),
        (json!({"url": "http://[::1]/x"}), "IPv6 loopback"),
        (
            json!({"url": "http://169.254.169.254/latest"}),
            "link-local metadata",
        ),
        (json!({"url": "http://localhost:8080/x"}), "localhost"),
        (json!({"url": "ftp://hooks.example.com/x"}), "scheme"),
        (json!({"url": "not a url"}), "syntax"),
        (
            json!({"url": "https://hooks.example.com/x", "events": ["ticket.exploded"]}),
            "event type",
        ),
    ] {
        let r = app.post("/api/v1/webhooks/", &admin.token, body).await;
        let body = json_of(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        let field = if why == "event type" { "events" } else { "url" };
        assert!(body.to_string().contains(field), "{why}: {body}");
    }
    let (count,): (i64,) = sqlx::query_as("select count(*) from webhooks")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(count, 0, "a refused webhook is not saved");

    let r = app.post("/api/v1/webhooks/", &admin.token, hook).await;
    let created = json_of(r, StatusCode::CREATED).await;
    let id = created["id"].as_i64().expect("id");
    let secret = created["secret"].as_str().expect("secret");
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(created["events"], json!(["ticket.created"]));
    assert_eq!(created["active"], json!(true));

    let found = json_of(
        app.get(&format!("/api/v1/webhooks/{id}"), &admin.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(
        found.get("secret").is_none(),
        "the secret is shown once: {found}"
    );
    let types = json_of(
        app.get("/api/v1/webhooks/event-types", &admin.token).await,
        StatusCode::OK,
    )
    .await;
    assert!(types.as_array().expect("types").len() >= 10, "{types}");

    let r = app
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            &admin.token,
            json!({"active": false, "events": []}),
        )
        .await;
    let changed = json_of(r, StatusCode::OK).await;
    assert_eq!(changed["active"], json!(false));
    assert_eq!(changed["events"], json!([]));
    let list = json_of(
        app.get("/api/v1/webhooks/", &admin.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(list["total"], json!(1));

    let r = app
        .delete(&format!("/api/v1/webhooks/{id}"), &admin.token)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .get(&format!("/api/v1/webhooks/{id}"), &admin.token)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = "./migrations")]
async fn deliveries_are_signed_retried_with_the_same_id_and_retried_by_hand(pool: PgPool) {
    let mut config = test_config(&pool);
    config.delivery.webhook_allow_loopback = true;
    let app = TestApp::spawn_with(pool, config).await;
    let admin = app.user("admin@example.com", "admin").await;
    let requester = app.user("req@example.com", "requester").await;
    let receiver = Receiver::start(1, Duration::ZERO).await;

    let r = app
        .post(
            "/api/v1/webhooks/",
            &admin.token,
            json!({"url": receiver.url, "events": ["ticket.created", "comment.created"]}),
        )
        .await;
    let hook = json_of(r, StatusCode::CREATED).await;
    let hook_id = hook["id"].as_i64().expect("id");
    let secret = hook["secret"].as_str().expect("secret").to_string();

    let ticket = app.ticket(&requester, "Printer on fire").await;
    let ticket_id = ticket["id"].as_i64().expect("ticket");
    let r = app
        .patch(
            &format!("/api/v1/tickets/{ticket_id}"),
            &requester.token,
            json!({"title": "Printer on fire, really"}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let r = app
        .post(
            "/api/v1/comments/",
            &requester.token,
            json!({"ticket_id": ticket_id, "content": "It smells of toner", "is_internal": false}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // The first attempt gets 500; the retry (after 5 s) carries the same webhook-id.
    let hits = receiver
        .wait_for("a retry and the comment", |hits| {
            distinct_ids(hits).len() >= 2 && hits.len() >= 3
        })
        .await;
    for hit in &hits {
        assert!(verify(&secret, hit), "signature of {hit:?}");
        assert!(
            !verify("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", hit),
            "verify can fail"
        );
    }
    let first = &hits[0];
    let again = hits[1..]
        .iter()
        .find(|h| h.id == first.id)
        .expect("the failed delivery came again with the same webhook-id");
    assert_eq!(first.body, again.body, "the same message");
    let bodies: Vec<Value> = hits
        .iter()
        .map(|h| serde_json::from_str(&h.body).expect("json body"))
        .collect();
    let types: BTreeSet<&str> = bodies.iter().filter_map(|b| b["type"].as_str()).collect();
    assert_eq!(
        types,
        BTreeSet::from(["comment.created", "ticket.created"]),
        "the filter holds back ticket.updated"
    );
    for b in &bodies {
        assert_eq!(b["data"]["ticket_id"], json!(ticket_id), "{b}");
    }
    let comment = bodies
        .iter()
        .find(|b| b["type"] == "comment.created")
        .expect("comment");
    assert_eq!(
        comment["data"]["event"]["content"],
        json!("It smells of toner"),
        "rendered at send time, opened: {comment}"
    );

    // The delivery log.
    let log = json_of(
        app.get(
            &format!("/api/v1/webhooks/{hook_id}/deliveries"),
            &admin.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let items = log["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{log}");
    let created = items
        .iter()
        .find(|d| d["event_type"] == "ticket.created")
        .expect("ticket.created");
    assert_eq!(created["status"], json!("delivered"), "{created}");
    assert_eq!(created["attempts"], json!(2), "{created}");
    assert_eq!(created["last_status_code"], json!(204), "{created}");

    // A manual retry sends it once more, with the same id.
    let delivery = created["id"].as_i64().expect("delivery id");
    let before = receiver.hits().len();
    let r = app
        .post(
            &format!("/api/v1/webhooks/{hook_id}/deliveries/{delivery}/retry"),
            &admin.token,
            json!({}),
        )
        .await;
    let retried = json_of(r, StatusCode::OK).await;
    assert_eq!(retried["status"], json!("pending"), "{retried}");
    let hits = receiver
        .wait_for("the manual retry", |hits| hits.len() > before)
        .await;
    assert_eq!(hits[before].id, first.id);
    assert!(verify(&secret, &hits[before]));
    let r = app
        .post(
            &format!("/api/v1/webhooks/{hook_id}/deliveries/999999/retry"),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// Signs in as the admin of a served process.
async fn admin_token(served: &Served) -> String {
    let r = served
        .login("admin@example.com", "admin-password-1234")
        .await;
    let body: Value = r.json().await.expect("login");
    body["access_token"].as_str().expect("token").to_string()
}

async fn open_tickets(served: &Served, token: &str, n: usize, title: &str) {
    for i in 0..n {
        let r = served
            .request(Method::POST, "/api/v1/tickets/")
            .bearer_auth(token)
            .json(&json!({"title": format!("{title} {i}"), "description": "d",
                          "priority": "medium", "type": "issue"}))
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), StatusCode::CREATED);
    }
}

const ADMIN_ENV: [(&str, &str); 2] = [
    ("TICKETD_ADMIN_EMAIL", "admin@example.com"),
    ("TICKETD_ADMIN_PASSWORD", "admin-password-1234"),
];

#[sqlx::test(migrations = "./migrations")]
async fn each_event_reaches_the_receiver_exactly_once_after_dedup_across_a_kill_9(pool: PgPool) {
    let mut env = ADMIN_ENV.to_vec();
    env.push(("TICKETD_WEBHOOK_ALLOW_LOOPBACK", "true"));
    // A slow receiver: deliveries are in flight when the server dies.
    let receiver = Receiver::start(0, Duration::from_millis(150)).await;
    let served = Served::start(&pool, &env).await;
    let token = admin_token(&served).await;
    let r = served
        .request(Method::POST, "/api/v1/webhooks/")
        .bearer_auth(&token)
        .json(&json!({"url": receiver.url, "events": ["ticket.created"]}))
        .send()
        .await
        .expect("hook");
    assert_eq!(r.status(), StatusCode::CREATED);
    open_tickets(&served, &token, 40, "Crash").await;
    receiver
        .wait_for("the first deliveries", |hits| hits.len() >= 3)
        .await;
    served.kill9();
    let before = receiver.hits().len();
    assert!(before < 40, "the crash came mid-delivery ({before} sent)");

    let served = Served::start(&pool, &env).await;
    let (installation,): (uuid::Uuid,) = sqlx::query_as("select id from installation")
        .fetch_one(&pool)
        .await
        .expect("installation");
    let expected: BTreeSet<String> = sqlx::query_as::<_, (i64,)>(
        "select global_position from events where event_type = 'TicketOpened'",
    )
    .fetch_all(&pool)
    .await
    .expect("events")
    .into_iter()
    .map(|(p,)| format!("msg_{}_{p}", installation.simple()))
    .collect();
    assert_eq!(expected.len(), 40);
    let hits = receiver
        .wait_for("every event after the restart", |hits| {
            distinct_ids(hits) == expected
        })
        .await;
    assert_eq!(
        distinct_ids(&hits),
        expected,
        "each event exactly once after dedup"
    );
    // The restarted sender records its round once every send of it is answered.
    let deadline = Instant::now() + Duration::from_secs(30);
    let pending = loop {
        let (pending,): (i64,) = sqlx::query_as(
            "select count(*) from deliveries where channel = 'webhook' and status <> 'delivered'",
        )
        .fetch_one(&pool)
        .await
        .expect("pending");
        if pending == 0 || Instant::now() > deadline {
            break pending;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(pending, 0);
    served.stop();
}

/// Waits until the NATS relay has sent everything the log holds.
async fn nats_caught_up(pool: &PgPool) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (events, delivered, pending): (i64, i64, i64) = sqlx::query_as(
            "select (select count(*) from events),
                    (select count(*) from deliveries where channel = 'nats' and status = 'delivered'),
                    (select count(*) from deliveries where channel = 'nats' and status = 'pending')",
        )
        .fetch_one(pool)
        .await
        .expect("counts");
        if events == delivered && pending == 0 {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "relay behind: {events} events, {delivered} sent, {pending} pending"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn the_nats_stream_holds_one_message_per_event_after_a_relay_crash_and_replays_from_0(
    pool: PgPool,
) {
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let prefix = format!("t{tag}");
    let stream = format!("T{}", tag.to_uppercase());
    let mut env = ADMIN_ENV.to_vec();
    env.push(("TICKETD_NATS_URL", "nats://127.0.0.1:4222"));
    env.push(("TICKETD_NATS_PREFIX", &prefix));
    env.push(("TICKETD_NATS_STREAM", &stream));
    let served = Served::start(&pool, &env).await;
    let token = admin_token(&served).await;
    open_tickets(&served, &token, 60, "Feed").await;
    // Kill the relay while it is sending.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (sent,): (i64,) = sqlx::query_as(
            "select count(*) from deliveries where channel = 'nats' and status = 'delivered'",
        )
        .fetch_one(&pool)
        .await
        .expect("sent");
        if sent > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the relay sent nothing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    served.kill9();
    // Mark some sent messages as unsent, as a crash between publish and record leaves them:
    // the restarted relay sends them again, and JetStream drops the duplicates by id.
    sqlx::query(
        "update deliveries set status = 'pending', delivered_at = null
          where id in (select id from deliveries where channel = 'nats' and status = 'delivered'
                        order by id limit 10)",
    )
    .execute(&pool)
    .await
    .expect("unsend");

    let served = Served::start(&pool, &env).await;
    let token = admin_token(&served).await;
    open_tickets(&served, &token, 10, "After").await;
    let events = nats_caught_up(&pool).await;
    served.stop();

    let client = async_nats::connect("nats://127.0.0.1:4222")
        .await
        .expect("nats");
    let js = async_nats::jetstream::new(client);
    let mut feed = js.get_stream(&stream).await.expect("stream");
    let info = feed.info().await.expect("info").clone();
    assert_eq!(
        i64::try_from(info.state.messages).expect("count"),
        events,
        "one message per event: no gap, no duplicate"
    );

    // A consumer replays from position 0.
    let consumer = feed
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::All,
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer
        .fetch()
        .max_messages(usize::try_from(events).expect("n"))
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .expect("fetch");
    let mut positions = Vec::new();
    let mut ids = BTreeSet::new();
    use futures::StreamExt;
    while let Some(m) = messages.next().await {
        let m = m.expect("message");
        let body: Value = serde_json::from_slice(&m.payload).expect("json");
        let position = body["position"].as_i64().expect("position");
        assert_eq!(
            m.subject.as_str(),
            format!(
                "{prefix}.{}.{}",
                body["aggregate_type"].as_str().expect("aggregate"),
                body["event_type"].as_str().expect("type")
            )
        );
        let id = m
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.to_string())
            .unwrap_or_else(|| panic!("Nats-Msg-Id in {:?}", m.headers));
        assert!(id.ends_with(&format!(":{position}")), "{id}");
        ids.insert(id);
        positions.push(position);
    }
    let log: Vec<i64> =
        sqlx::query_as::<_, (i64,)>("select global_position from events order by global_position")
            .fetch_all(&pool)
            .await
            .expect("log")
            .into_iter()
            .map(|(p,)| p)
            .collect();
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, log, "every position of the log, once");
    assert_eq!(ids.len(), log.len());
    assert_eq!(
        positions.first(),
        log.first(),
        "the replay starts at the log's start"
    );
    js.delete_stream(&stream).await.expect("delete stream");
}

/// An SMTP server on loopback (aiosmtpd), writing each message it gets as JSON.
struct SmtpSink {
    port: u16,
    dir: PathBuf,
    child: tokio::process::Child,
}

impl SmtpSink {
    async fn start() -> SmtpSink {
        let python = std::env::var("TICKETD_TEST_PYTHON").unwrap_or_else(|_| {
            let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv-test/bin/python");
            if std::path::Path::new(venv).exists() {
                venv.to_string()
            } else {
                "python3".to_string()
            }
        });
        let dir = std::env::temp_dir().join(format!("ticketd-smtp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let child = tokio::process::Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/support/smtp_sink.py"
            ))
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(&dir)
            .kill_on_drop(true)
            .spawn()
            .expect("python");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !dir.join("ready").exists() {
            assert!(
                Instant::now() < deadline,
                "the SMTP server did not start: it needs Python with aiosmtpd \
                 (scripts/test.sh creates .venv-test; or set TICKETD_TEST_PYTHON)"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        SmtpSink { port, dir, child }
    }

    fn messages(&self) -> Vec<Value> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.dir)
            .expect("dir")
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let n = name.strip_suffix(".json")?.parse().ok()?;
                Some((n, e.path()))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| {
                serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json")
            })
            .collect()
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let m = self.messages();
            if done(&m) {
                return m;
            }
            assert!(Instant::now() < deadline, "{what}: {m:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn to_of(m: &Value) -> Vec<String> {
    m["rcpt_tos"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[sqlx::test(migrations = "./migrations")]
async fn requesters_get_the_reply_by_email_threaded_and_never_an_internal_note(pool: PgPool) {
    let smtp = SmtpSink::start().await;
    let mut config = test_config(&pool);
    config.delivery.smtp_url = Some(format!("smtp://127.0.0.1:{}", smtp.port));
    config.delivery.mail_from = "Service Desk <desk@example.com>".into();
    config.delivery.public_url = "https://desk.example.com".into();
    let app = TestApp::spawn_with(pool, config).await;
    let agent = app.user("agent@example.com", "agent").await;
    let requester = app.user("anna@example.com", "requester").await;
    let german = app.user("bernd@example.com", "requester").await;
    let r = app
        .patch(
            "/api/v1/auth/profile",
            &german.token,
            json!({"locale": "de"}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());

    let ticket = app.ticket(&requester, "VPN drops every hour").await;
    let id = ticket["id"].as_i64().expect("id");
    let comment = |content: &str, internal: bool, ticket: i64| json!({"ticket_id": ticket, "content": content, "is_internal": internal});
    let r = app
        .post(
            "/api/v1/comments/",
            &agent.token,
            comment("Internal: the **firewall** team owes us one", true, id),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .post(
            "/api/v1/comments/",
            &agent.token,
            comment("We are on it: please send the **VPN log**.", false, id),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .patch(
            &format!("/api/v1/tickets/{id}/status"),
            &agent.token,
            json!({"status": "pending"}),
        )
        .await;
    let moved = r.status();
    let other = app.ticket(&german, "Drucker streikt").await;
    let other_id = other["id"].as_i64().expect("id");
    let r = app
        .post(
            "/api/v1/comments/",
            &agent.token,
            comment("Wir kümmern uns darum.", false, other_id),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let expected = if moved.is_success() { 3 } else { 2 };
    let mails = smtp
        .wait_for("the requesters' e-mails", |m| m.len() >= expected)
        .await;
    app.settle().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = if smtp.messages().len() > mails.len() {
        smtp.messages()
    } else {
        mails
    };
    for m in &mails {
        let all = m.to_string();
        assert!(
            !all.contains("firewall"),
            "an internal note went out: {m:#}"
        );
        assert!(
            !to_of(m).contains(&"agent@example.com".to_string()),
            "never the actor: {m:#}"
        );
    }
    let anna: Vec<&Value> = mails
        .iter()
        .filter(|m| to_of(m) == vec!["anna@example.com".to_string()])
        .collect();
    assert_eq!(anna.len(), expected - 1, "{mails:#?}");
    let reply = anna
        .iter()
        .find(|m| m["text"].as_str().is_some_and(|t| t.contains("VPN log")))
        .expect("the reply");
    assert_eq!(reply["mail_from"], json!("desk@example.com"));
    assert_eq!(reply["content_type"], json!("multipart/alternative"));
    assert_eq!(
        reply["headers"]["Subject"],
        json!(format!("[TKT-{id}] VPN drops every hour"))
    );
    assert!(reply["html"]
        .as_str()
        .expect("html")
        .contains("<strong>VPN log</strong>"));
    assert!(reply["text"]
        .as_str()
        .expect("text")
        .contains(&format!("https://desk.example.com/tickets/{id}")));
    let thread = reply["headers"]["In-Reply-To"]
        .as_str()
        .expect("In-Reply-To");
    assert_eq!(reply["headers"]["References"].as_str(), Some(thread));
    assert!(thread.contains(&format!("ticket-{id}.")), "{thread}");
    let message_ids: BTreeSet<&str> = mails
        .iter()
        .filter_map(|m| m["headers"]["Message-ID"].as_str())
        .collect();
    assert_eq!(message_ids.len(), mails.len(), "a Message-ID each");
    if moved.is_success() {
        let info = anna
            .iter()
            .find(|m| {
                m["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("more information"))
            })
            .expect("the request for information");
        assert_eq!(
            info["headers"]["In-Reply-To"].as_str(),
            Some(thread),
            "same thread"
        );
    }
    let bernd = mails
        .iter()
        .find(|m| to_of(m) == vec!["bernd@example.com".to_string()])
        .expect("the German requester's e-mail");
    let text = bernd["text"].as_str().expect("text");
    assert!(
        text.contains("Hallo") && text.contains("geantwortet"),
        "{text}"
    );
    assert!(text.contains("Wir kümmern uns darum."), "{text}");

    // Agents hear of an assignment (and its e-mail names them, not the ticket's requester).
    let second = app.user("carla@example.com", "agent").await;
    let r = app
        .patch(
            &format!("/api/v1/tickets/{id}/assign"),
            &agent.token,
            json!({"assignee_id": second.id}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let mails = smtp
        .wait_for("the assignment", |m| {
            m.iter()
                .any(|m| to_of(m) == vec!["carla@example.com".to_string()])
        })
        .await;
    let assigned = mails
        .iter()
        .find(|m| to_of(m) == vec!["carla@example.com".to_string()])
        .expect("assignment");
    assert!(
        assigned["text"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("assigned TKT-{id} to you"))),
        "{assigned:#}"
    );

    // Turned off in the profile: no more replies by e-mail.
    let r = app
        .patch(
            "/api/v1/auth/profile",
            &requester.token,
            json!({"notify": {"email": [], "in_app": ["comment"]}}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let to_anna = |m: &[Value]| {
        m.iter()
            .filter(|m| to_of(m) == vec!["anna@example.com".to_string()])
            .count()
    };
    let before = to_anna(&smtp.messages());
    let r = app
        .post(
            "/api/v1/comments/",
            &agent.token,
            comment("Any news?", false, id),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // The assignee follows the ticket and still hears of the reply; the requester does not.
    smtp.wait_for("the assignee's copy of the reply", |m| {
        m.iter().any(|m| {
            to_of(m) == vec!["carla@example.com".to_string()]
                && m["text"].as_str().is_some_and(|t| t.contains("Any news?"))
        })
    })
    .await;
    app.settle().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(to_anna(&smtp.messages()), before, "the preference holds");
    let counts: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "select status, count(*) from deliveries where channel = 'email' group by status",
    )
    .fetch_all(&app.pool)
    .await
    .expect("counts")
    .into_iter()
    .collect();
    assert_eq!(counts.get("pending"), None, "{counts:?}");
}
