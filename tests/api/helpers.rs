#![allow(dead_code)]
//! The test harness: every test gets its own migrated database (`#[sqlx::test]`), a real
//! server on a loopback port with the projection workers running, and a reqwest client.

use std::sync::{Arc, LazyLock, Mutex};

use chrono::{DateTime, Utc};

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use ticketd::app::config::Config;
use ticketd::http::state::AppState;
use ticketd::service::clock::{Clock, SystemClock};
use ticketd::service::executor::Actor;

/// Set `TEST_LOG=1` to see the server's logs.
static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var("TEST_LOG").is_ok() {
        ticketd::app::telemetry::init();
    }
});

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery";

/// A clock the test sets: the server judges SLA states at its time.
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    /// A clock standing at `t`.
    pub fn at(t: DateTime<Utc>) -> Arc<FixedClock> {
        Arc::new(FixedClock(Mutex::new(t)))
    }

    /// Moves the clock to `t`.
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// A running server on its own database.
pub struct TestApp {
    pub base: String,
    pub pool: PgPool,
    pub state: AppState,
    /// The configuration the server was built from.
    pub config: Config,
    pub client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

/// A signed-in user.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: i64,
    pub token: String,
    pub refresh: String,
    pub email: String,
}

/// The database URL behind a test pool.
pub fn url_of(pool: &PgPool) -> String {
    let o = pool.connect_options();
    format!(
        "postgres://{}@{}:{}/{}",
        o.get_username(),
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or("postgres")
    )
}

/// The HTTP client every test uses. It forgets a pooled connection after it idled for
/// [`CLIENT_IDLE`], before the server's idle limit (the header deadline, 10 s) closes it: a
/// request sent on a connection that the server is closing at that moment fails with
/// "connection closed before message completed" (hyper's `IncompleteMessage`), and a test that
/// idles about ten seconds (a seed, a takeover) would fail at random.
pub fn http_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder().pool_idle_timeout(CLIENT_IDLE)
}

/// How long a test client keeps an idle connection: half the server's idle limit.
pub const CLIENT_IDLE: std::time::Duration = std::time::Duration::from_secs(5);

/// A configuration for a test database.
pub fn test_config(pool: &PgPool) -> Config {
    let mut config = Config::for_database(&url_of(pool));
    config.data_dir = std::env::temp_dir().join(format!("ticketd-test-{}", uuid::Uuid::new_v4()));
    config
}

impl TestApp {
    /// Starts a server with a default configuration.
    pub async fn spawn(pool: PgPool) -> TestApp {
        let config = test_config(&pool);
        Self::spawn_with(pool, config).await
    }

    /// Starts a server with the given configuration.
    pub async fn spawn_with(pool: PgPool, config: Config) -> TestApp {
        Self::start(pool, config, Arc::new(SystemClock), true).await
    }

    /// Starts a server whose SLA states are judged at `clock`'s time.
    pub async fn spawn_at(pool: PgPool, clock: Arc<FixedClock>) -> TestApp {
        let config = test_config(&pool);
        Self::start(pool, config, clock, true).await
    }

    /// Starts a server that runs no projections: the read models stay as they are.
    pub async fn spawn_without_projections(pool: PgPool) -> TestApp {
        let config = test_config(&pool);
        Self::start(pool, config, Arc::new(SystemClock), false).await
    }

    async fn start(
        pool: PgPool,
        config: Config,
        clock: Arc<dyn Clock>,
        run_projections: bool,
    ) -> TestApp {
        LazyLock::force(&TRACING);
        // `#[sqlx::test]` pools are small; the server gets a pool of its own size.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(config.db_pool.max(16))
            .connect(&url_of(&pool))
            .await
            .expect("server pool");
        let state = ticketd::app::startup::build_state_with_clock(
            config.clone(),
            pool.clone(),
            run_projections,
            clock,
        )
        .await
        .expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = ticketd::http::app(state.clone());
        let limits = config.limits.clone();
        let server = tokio::spawn(async move {
            ticketd::app::server::serve(listener, app, &limits, std::future::pending()).await;
        });
        TestApp {
            base: format!("http://{addr}"),
            pool,
            state,
            config,
            client: http_client().build().expect("client"),
            server,
        }
    }

    /// A request to `path` (relative to the server), with a bearer token if given.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let mut r = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r
    }

    /// GET with a token.
    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token))
            .send()
            .await
            .expect("request")
    }

    /// POST JSON with a token.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(token))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// PATCH JSON with a token.
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::PATCH, path, Some(token))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// DELETE with a token.
    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.request(Method::DELETE, path, Some(token))
            .send()
            .await
            .expect("request")
    }

    /// Creates a user with `role` directly and signs them in through the API.
    pub async fn user(&self, email: &str, role: &str) -> TestUser {
        static HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
        let hash = HASH
            .get_or_init(|| async {
                ticketd::service::auth::hash_password(PASSWORD.to_string())
                    .await
                    .expect("hash")
            })
            .await;
        sqlx::query(
            "insert into users (email, full_name, password_hash, role) values ($1, $2, $3, $4)",
        )
        .bind(email)
        .bind(format!("User {email}"))
        .bind(hash)
        .bind(role)
        .execute(&self.pool)
        .await
        .expect("insert user");
        self.login(email, PASSWORD).await
    }

    /// Signs in through the API.
    pub async fn login(&self, email: &str, password: &str) -> TestUser {
        let r = self
            .request(Method::POST, "/api/v1/auth/login", None)
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), StatusCode::OK, "login of {email}");
        let body: Value = r.json().await.expect("json");
        TestUser {
            id: body["user"]["id"].as_i64().expect("id"),
            token: body["access_token"].as_str().expect("token").to_string(),
            refresh: body["refresh_token"].as_str().expect("refresh").to_string(),
            email: email.to_string(),
        }
    }

    /// Opens a ticket and returns its JSON (asserting 201).
    pub async fn ticket(&self, user: &TestUser, title: &str) -> Value {
        let r = self
            .post(
                "/api/v1/tickets/",
                &user.token,
                json!({"title": title, "description": "details", "priority": "medium", "type": "issue"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.expect("json")
    }

    /// Requests a one-step ("Manager", any of `approver`) approval of ticket `ticket_id`
    /// straight through the aggregate, as `by` at `at`, bypassing the API's checks (a
    /// request racing a close, or a history dated in the past). Returns the approval's id.
    pub async fn request_approval_directly(
        &self,
        ticket_id: i64,
        ticket_requester_id: i64,
        by: i64,
        approver: i64,
        at: chrono::DateTime<chrono::Utc>,
    ) -> uuid::Uuid {
        use aggregates::approval::{ApprovalCommand, ApprovalRequest, Rule, StepSpec};
        let id = uuid::Uuid::new_v4();
        let steps = vec![StepSpec {
            name: "Manager".into(),
            approver_ids: vec![approver],
            rule: Rule::Any,
            min_approvals: None,
        }];
        self.state
            .approvals
            .execute(
                &id.to_string(),
                Some(0),
                Actor::user(by).metadata(),
                move |_| {
                    ApprovalCommand::RequestApproval(ApprovalRequest {
                        id,
                        ticket_id,
                        ticket_requester_id,
                        requested_by: by,
                        steps: steps.clone(),
                        reason: None,
                        at,
                    })
                },
            )
            .await
            .expect("approval requested");
        id
    }

    /// Waits until every projection has passed everything committed so far. It wakes them:
    /// a command wakes only those that read its events, and the others would pass over them
    /// at their next poll.
    pub async fn settle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(rt) = &self.state.runtime {
                rt.wake();
            }
            let reports = projections::runtime::report(&self.pool)
                .await
                .expect("report");
            if reports
                .iter()
                .all(|r| r.lag_events == 0 || r.name.ends_with("__rebuild"))
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "projections did not settle: {reports:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        let _ = self.state.shutdown.send(true);
        self.state.bus.stop();
        if let Some(rt) = &self.state.runtime {
            rt.abort();
        }
        // Close the server's pool now, so that `#[sqlx::test]` can drop the test database at
        // once instead of waiting out PostgreSQL's 5 s for its other sessions (and leaving the
        // database behind when they outlast it).
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let pool = self.pool.clone();
            handle.spawn(async move { pool.close().await });
        }
    }
}

/// Runs the real `ticketd` binary with `args` against the test database, without blocking
/// the server's runtime; whether it succeeded, its standard output and its standard error.
pub async fn ticketd(pool: &PgPool, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .args(args)
        .env("DATABASE_URL", url_of(pool))
        .env("RUST_LOG", "warn")
        .env_remove("RUST_LOG_FORMAT")
        .output()
        .await
        .expect("run ticketd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Reads a JSON body, asserting the status first.
pub async fn json_of(r: Response, status: StatusCode) -> Value {
    let got = r.status();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(got, status, "unexpected status; body: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("the body is not JSON ({e}): {body:?}"))
}
