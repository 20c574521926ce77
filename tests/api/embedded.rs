//! The README's run command on a machine with PostgreSQL binaries and no `DATABASE_URL`:
//! `ticketd serve` creates and starts a private cluster, the bootstrap admin can sign in,
//! and SIGTERM stops both the server and the cluster; also for root in a directory that only
//! root can enter.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test]
async fn serve_without_database_url_runs_on_the_embedded_cluster_and_stops_it() {
    let data = std::env::temp_dir().join(format!("ticketd-embedded-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&data).expect("data dir");
    serve_and_stop(&data, &data.join("pg")).await;
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn serve_as_root_from_a_directory_only_root_can_enter_comes_up_on_the_embedded_default() {
    // The tests run as root here; elsewhere there is nothing to prove.
    if !ticketd::app::db::is_root() {
        return;
    }
    let home = std::env::temp_dir().join(format!("ticketd-private-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&home).expect("private dir");
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let data = home.join(".data");
    let cluster = ticketd::app::db::cluster_dir(&data).expect("cluster dir");
    serve_and_stop(&data, &cluster).await;
    // Nothing was opened to others.
    let mode = std::fs::metadata(&home).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_dir_all(&cluster);
}

/// Runs `ticketd serve` on `data` without `DATABASE_URL`, signs in, stops it with SIGTERM, and
/// checks that the cluster (in `cluster`) went down with it.
async fn serve_and_stop(data: &Path, cluster: &Path) {
    let http_port = free_port();
    let pg_port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("TICKETD_DATA_DIR", data)
        .env("TICKETD_EMBEDDED_PG_PORT", pg_port.to_string())
        .env("TICKETD_ADDR", format!("127.0.0.1:{http_port}"))
        .env("TICKETD_ADMIN_EMAIL", "boss@example.com")
        .env("TICKETD_ADMIN_PASSWORD", "embedded admin password")
        .env("TICKETD_STATIC_DIR", data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ticketd");
    let base = format!("http://127.0.0.1:{http_port}");
    let client = crate::helpers::http_client().build().expect("client");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "ticketd exited early"
        );
        assert!(Instant::now() < deadline, "ticketd did not come up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "boss@example.com", "password": "embedded admin password"}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["user"]["role"], "admin");
    assert!(cluster.join("PG_VERSION").exists());

    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "ticketd did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The private cluster went down with the server.
    assert!(
        !cluster.join("postmaster.pid").exists(),
        "embedded PostgreSQL still running"
    );
}
