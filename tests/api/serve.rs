//! `ticketd serve` as an operator runs it: the real binary on a free loopback port and a test
//! database, configured through the environment. The admin password generated at first
//! start, `CORS_ORIGINS`, and the API reference (`/api/v1/openapi.json`, `/docs`).

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, CONTENT_TYPE, ORIGIN,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{json_of, url_of, TestApp};

/// A `ticketd serve` process; killed if a test fails before stopping it.
pub struct Served {
    child: Child,
    pub base: String,
    client: reqwest::Client,
}

impl Served {
    /// Starts `ticketd serve` on `pool`'s database with `env` and waits until it answers.
    /// The working directory is empty (no `.env`), and no `TICKETD_ADMIN_*` is inherited.
    pub async fn start(pool: &PgPool, env: &[(&str, &str)]) -> Served {
        let dir = std::env::temp_dir().join(format!("ticketd-serve-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("working dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut command = Command::new(env!("CARGO_BIN_EXE_ticketd"));
        command
            .arg("serve")
            .current_dir(&dir)
            .env("DATABASE_URL", url_of(pool))
            .env("TICKETD_ADDR", format!("127.0.0.1:{port}"))
            .env("TICKETD_DATA_DIR", &dir)
            .env("TICKETD_STATIC_DIR", &dir)
            .env("RUST_LOG", "warn")
            .env_remove("TICKETD_ADMIN_EMAIL")
            .env_remove("TICKETD_ADMIN_PASSWORD")
            .env_remove("CORS_ORIGINS")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let served = Served {
            child: command.spawn().expect("spawn ticketd"),
            base: format!("http://127.0.0.1:{port}"),
            client: crate::helpers::http_client().build().expect("client"),
        };
        served.wait_until_up().await;
        served
    }

    async fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.client.get(format!("{}/healthz", self.base)).send();
            if r.await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(Instant::now() < deadline, "ticketd did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// The browser's CORS preflight, from a page of `origin`, for a PATCH of a ticket that
    /// sends `headers` (if any).
    async fn preflight(&self, origin: &str, headers: Option<&str>) -> reqwest::Response {
        let mut r = self
            .request(Method::OPTIONS, "/api/v1/tickets/1")
            .header(ORIGIN, origin)
            .header("access-control-request-method", "PATCH");
        if let Some(headers) = headers {
            r = r.header("access-control-request-headers", headers);
        }
        r.send().await.expect("preflight")
    }

    /// GET `/healthz` from a page of `origin`.
    async fn healthz_from(&self, origin: &str) -> reqwest::Response {
        self.request(Method::GET, "/healthz")
            .header(ORIGIN, origin)
            .send()
            .await
            .expect("healthz")
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.request(Method::POST, "/api/v1/auth/login")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login")
    }

    /// Kills the server with SIGKILL, as a crash would: nothing of it runs on.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server with SIGTERM and returns everything it wrote to stderr.
    pub fn stop(mut self) -> String {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
        let mut stderr = String::new();
        let mut pipe = self.child.stderr.take().expect("stderr");
        pipe.read_to_string(&mut stderr).expect("read stderr");
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "ticketd exited with {exit}: {stderr}");
        stderr
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The password from the line `created admin admin@ticketd.local with password X`.
fn generated_password(stderr: &str) -> Option<String> {
    let line = stderr
        .lines()
        .find(|l| l.contains("created admin admin@ticketd.local with password "))?;
    let password = line.rsplit(' ').next()?.trim();
    (!password.is_empty()).then(|| password.to_string())
}

/// Reads stderr until the generated password appears (it is printed before the server
/// listens, so it is in the pipe by the time `/healthz` answers).
fn read_generated_password(served: &mut Served) -> String {
    let pipe = served.child.stderr.as_mut().expect("stderr");
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let text = String::from_utf8_lossy(&seen).to_string();
        if text.ends_with('\n') {
            if let Some(p) = generated_password(&text) {
                return p;
            }
        }
        let n = pipe.read(&mut byte).expect("read stderr");
        assert!(n == 1, "stderr ended without a password: {text}");
        seen.push(byte[0]);
    }
}

#[sqlx::test(migrations = false)]
async fn first_start_on_an_empty_database_prints_an_admin_password_that_signs_in(pool: PgPool) {
    let mut served = Served::start(&pool, &[]).await;
    let password = read_generated_password(&mut served);
    assert!(password.len() >= 16, "a strong password: {password}");
    let r = served.login("admin@ticketd.local", &password).await;
    let body = json_of(r, StatusCode::OK).await;
    assert_eq!(body["user"]["role"], "admin");
    let wrong = served
        .login("admin@ticketd.local", "not the password")
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    served.stop();

    // The next start finds the admin: no new password, and the printed one still works.
    let served = Served::start(&pool, &[]).await;
    let r = served.login("admin@ticketd.local", &password).await;
    assert_eq!(r.status(), StatusCode::OK);
    let stderr = served.stop();
    assert_eq!(generated_password(&stderr), None, "{stderr}");
    let (admins,): (i64,) = sqlx::query_as("select count(*) from users where role = 'admin'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(admins, 1);
}

#[sqlx::test(migrations = false)]
async fn empty_admin_variables_create_no_admin_and_an_empty_sign_in_is_refused(pool: PgPool) {
    // What `${TICKETD_ADMIN_EMAIL:-}` in a compose file passes: set, but empty.
    let served = Served::start(
        &pool,
        &[
            ("TICKETD_ADMIN_EMAIL", ""),
            ("TICKETD_ADMIN_PASSWORD", ""),
            ("ENVIRONMENT", "production"),
            ("SECRET_KEY", "k3y-for-a-production-like-start-0123456789"),
            // Production requires the master key of the personal data (a test key: bytes 0..31).
            (
                "TICKETD_MASTER_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            ),
            ("CORS_ORIGINS", ""),
        ],
    )
    .await;
    for (email, password) in [("", ""), (" ", " ")] {
        let r = served.login(email, password).await;
        assert!(
            matches!(
                r.status(),
                StatusCode::UNAUTHORIZED | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{email:?}/{password:?}: {}",
            r.status()
        );
    }
    // Empty counts as unset: the generated admin, as on a first start without them.
    let stderr = served.stop();
    assert!(generated_password(&stderr).is_some(), "{stderr}");
    let emails: Vec<(String,)> = sqlx::query_as("select email from users")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(emails, [("admin@ticketd.local".to_string(),)]);
}

#[sqlx::test(migrations = false)]
async fn an_invalid_admin_variable_stops_the_start_with_a_clear_error(pool: PgPool) {
    for (email, password, says) in [
        (
            "not-an-email",
            "long enough pw",
            "Enter a valid email address",
        ),
        ("boss@example.com", "short", "at least 8 characters"),
        ("boss@example.com", "", "set both"),
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ticketd"))
            .arg("serve")
            .current_dir(std::env::temp_dir())
            .env("DATABASE_URL", url_of(&pool))
            .env("TICKETD_ADDR", "127.0.0.1:0")
            .env("TICKETD_ADMIN_EMAIL", email)
            .env("TICKETD_ADMIN_PASSWORD", password)
            .env("RUST_LOG", "off")
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(60), out)
            .await
            .expect("ticketd stops by itself")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{email:?}/{password:?} started");
        assert!(
            stderr.contains("TICKETD_ADMIN") && stderr.contains(says),
            "{email:?}/{password:?}: {stderr}"
        );
    }
    let (users,): (i64,) = sqlx::query_as("select count(*) from users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[sqlx::test]
async fn cors_origins_lets_the_listed_origins_in_and_no_other(pool: PgPool) {
    let served = Served::start(
        &pool,
        &[
            (
                "CORS_ORIGINS",
                "https://desk.example.com, https://ops.example.com",
            ),
            ("TICKETD_ADMIN_EMAIL", "boss@example.com"),
            ("TICKETD_ADMIN_PASSWORD", "boss password 123"),
        ],
    )
    .await;
    for origin in ["https://desk.example.com", "https://ops.example.com"] {
        // The browser's preflight for a conditional PATCH with a token.
        let r = served
            .preflight(origin, Some("authorization,if-match"))
            .await;
        assert!(r.status().is_success(), "{origin}: {}", r.status());
        let h = r.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], origin);
        let methods = h[ACCESS_CONTROL_ALLOW_METHODS].to_str().unwrap();
        assert!(methods.contains("PATCH"), "{methods}");
        let headers = h[ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap();
        assert!(
            headers.contains("authorization") && headers.contains("if-match"),
            "{headers}"
        );
        // The request itself: the answer is readable and its ETag exposed.
        let r = served.healthz_from(origin).await;
        assert_eq!(r.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], origin);
        let exposed = r.headers()[ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap();
        assert!(exposed.contains("etag"), "{exposed}");
    }
    for origin in [
        "https://evil.example.com",
        "https://desk.example.com.evil.net",
    ] {
        let r = served.preflight(origin, None).await;
        assert!(
            r.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
            "{origin} let in"
        );
        let r = served.healthz_from(origin).await;
        assert!(r.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }
    served.stop();
}

#[sqlx::test]
async fn without_cors_origins_no_origin_is_let_in(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let r = app
        .request(Method::GET, "/healthz", None)
        .header(ORIGIN, "https://desk.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

#[sqlx::test]
async fn the_openapi_document_is_served_without_signing_in(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let r = app
        .request(Method::GET, "/api/v1/openapi.json", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
    let served: Value = json_of(r, StatusCode::OK).await;
    let committed = include_str!("../../frontend/openapi.json");
    let committed: Value = serde_json::from_str(committed).unwrap();
    assert!(
        served == committed,
        "the served document is the committed one"
    );
    assert_eq!(served["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    assert!(served["paths"]["/api/v1/tickets/{id}"]["patch"].is_object());
}

#[sqlx::test]
async fn the_docs_page_is_the_builds_reference_page_served_from_our_origin(pool: PgPool) {
    // The page and its script come from the SPA build (`frontend/dist`); a stand-in build here
    // (the real one is exercised in Chromium by `frontend/e2e/docs.spec.ts`).
    let mut config = crate::helpers::test_config(&pool);
    let dist = config.data_dir.join("dist");
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    let page = "<!DOCTYPE html><title>ticketd API reference</title>\
                <script type=\"module\" src=\"/assets/docs-1.js\"></script><main id=\"docs\"></main>";
    std::fs::write(dist.join("docs.html"), page).unwrap();
    std::fs::write(dist.join("assets/docs-1.js"), "export {}").unwrap();
    std::fs::write(
        dist.join("index.html"),
        "<!DOCTYPE html><title>ticketd</title>",
    )
    .unwrap();
    config.static_dir = dist;
    let app = TestApp::spawn_with(pool, config).await;

    for path in ["/docs", "/docs/"] {
        let r = app.request(Method::GET, path, None).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let policy = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(policy.contains("script-src 'self';"), "{policy}");
        assert_eq!(r.text().await.unwrap(), page, "{path}");
    }
    let script = app
        .request(Method::GET, "/assets/docs-1.js", None)
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .contains("javascript"));
}
