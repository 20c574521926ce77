//! `/api/v1/attachments`: limits, hostile names, streaming, deduplication, visibility.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::io::AsyncWriteExt;

use crate::helpers::{json_of, test_config, TestApp, TestUser};
use crate::steps::{get_consistent, get_ok, users};

const BOUNDARY: &str = "----ticketd-test-boundary-7MA4YWxkTrZu0gW";

/// A multipart body with `ticket_id` and a `file` part whose Content-Disposition carries
/// `name_params` verbatim (e.g. `filename="a.txt"`).
fn multipart_body(ticket: i64, name_params: &[u8], content: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"ticket_id\"\r\n\r\n{ticket}\r\n").as_bytes(),
    );
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; ").as_bytes(),
    );
    body.extend_from_slice(name_params);
    body.extend_from_slice(b"\r\nContent-Type: application/octet-stream\r\n\r\n");
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload_raw(
    app: &TestApp,
    user: &TestUser,
    ticket: i64,
    name_params: &[u8],
    content: &[u8],
) -> Response {
    app.request(Method::POST, "/api/v1/attachments/", Some(&user.token))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart_body(ticket, name_params, content))
        .send()
        .await
        .expect("upload")
}

pub(crate) async fn upload(
    app: &TestApp,
    user: &TestUser,
    ticket: i64,
    name: &str,
    content: &[u8],
) -> Response {
    upload_raw(
        app,
        user,
        ticket,
        format!("filename=\"{name}\"").as_bytes(),
        content,
    )
    .await
}

async fn uploaded(
    app: &TestApp,
    user: &TestUser,
    ticket: i64,
    name: &str,
    content: &[u8],
) -> Value {
    json_of(
        upload(app, user, ticket, name, content).await,
        StatusCode::CREATED,
    )
    .await
}

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn store_dir(app: &TestApp) -> PathBuf {
    app.config.data_dir.join("attachments")
}

async fn added_events(app: &TestApp) -> i64 {
    let (n,): (i64,) =
        sqlx::query_as("select count(*) from events where event_type = 'AttachmentAdded'")
            .fetch_one(&app.pool)
            .await
            .expect("count");
    n
}

/// Waits until `check` holds (at most 5 s).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn download(app: &TestApp, user: &TestUser, id: &str) -> Response {
    app.get(&format!("/api/v1/attachments/{id}/download"), &user.token)
        .await
}

async fn ticket_of(app: &TestApp, user: &TestUser) -> i64 {
    app.ticket(user, "Files").await["id"].as_i64().expect("id")
}

#[sqlx::test]
async fn uploads_of_zero_one_and_limit_bytes_are_kept_and_limit_plus_one_is_refused_with_nothing_stored(
    pool: PgPool,
) {
    let mut config = test_config(&pool);
    config.max_upload_bytes = 1024;
    let app = TestApp::spawn_with(pool, config).await;
    let req = app.user("req@example.com", "requester").await;
    let ticket = ticket_of(&app, &req).await;

    for size in [0usize, 1, 1024] {
        let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let r = upload(&app, &req, ticket, &format!("f{size}.bin"), &content).await;
        let token = r.headers()["x-consistency-token"].clone();
        let a = json_of(r, StatusCode::CREATED).await;
        assert_eq!(a["size"], size as i64);
        assert_eq!(a["sha256"], sha_hex(&content));
        assert_eq!(a["uploaded_by"], req.id);
        // Read-your-writes: the token makes the download wait for the read model.
        let path = format!(
            "/api/v1/attachments/{}/download",
            a["id"].as_str().expect("id")
        );
        let r = get_consistent(&app, &req, &path, &token).await;
        assert_eq!(r.status(), StatusCode::OK);
        let bytes = r.bytes().await.expect("bytes");
        assert_eq!(
            sha_hex(&bytes),
            sha_hex(&content),
            "download of {size} bytes"
        );
    }
    assert_eq!(files_under(&store_dir(&app)).len(), 3);

    let over: Vec<u8> = vec![7u8; 1025];
    let r = upload(&app, &req, ticket, "over.bin", &over).await;
    assert_eq!(
        json_of(r, StatusCode::PAYLOAD_TOO_LARGE).await["code"],
        "PAYLOAD_TOO_LARGE"
    );
    // A body beyond even the server's body limit is refused the same way.
    let huge: Vec<u8> = vec![7u8; 200 * 1024];
    let r = upload(&app, &req, ticket, "huge.bin", &huge).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let dir = store_dir(&app);
    eventually("the refused uploads' temporary objects are gone", || {
        files_under(&dir).len() == 3
    })
    .await;
    assert_eq!(added_events(&app).await, 3);
    app.settle().await;
    let list = get_ok(
        &app,
        &req,
        &format!("/api/v1/attachments/?ticket_id={ticket}"),
    )
    .await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(list["total"], 3);
}

#[sqlx::test]
async fn hostile_file_names_come_back_safe(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let req = app.user("req@example.com", "requester").await;
    let ticket = ticket_of(&app, &req).await;
    let long = format!("{}.txt", "a".repeat(1000));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"filename=\"../../etc/passwd\"".to_vec(), "passwd"),
        (
            b"filename=\"..\\\\..\\\\windows\\\\win.ini\"".to_vec(),
            "win.ini",
        ),
        (b"filename*=UTF-8''evil%00name.txt".to_vec(), "evilname.txt"),
        (b"filename=\"say \\\"hi\\\".txt\"".to_vec(), "say hi.txt"),
        (b"filename=\"quote%22d.txt\"".to_vec(), "quoted.txt"),
        (
            "filename=\"invoice\u{202E}fdp.exe\"".as_bytes().to_vec(),
            "invoicefdp.exe",
        ),
        (
            "filename=\"\u{200F}rtl\u{2067}.pdf\"".as_bytes().to_vec(),
            "rtl.pdf",
        ),
        (
            "filename=\"party 🎉.png\"".as_bytes().to_vec(),
            "party 🎉.png",
        ),
        (format!("filename=\"{long}\"").into_bytes(), ""),
    ];
    let mut stored = Vec::new();
    for (params, expected) in cases {
        let r = upload_raw(&app, &req, ticket, &params, b"content").await;
        stored.push((params, expected, json_of(r, StatusCode::CREATED).await));
    }
    app.settle().await;
    for (params, expected, a) in stored {
        let name = a["filename"].as_str().expect("filename").to_string();
        if expected.is_empty() {
            assert_eq!(name.chars().count(), 200);
            assert!(name.ends_with(".txt"));
        } else {
            assert_eq!(name, expected, "for {}", String::from_utf8_lossy(&params));
        }
        for bad in ['/', '\\', '\0', '"', '\u{202E}', '\u{200F}', '\u{2067}'] {
            assert!(!name.contains(bad), "{name:?} contains {bad:?}");
        }
        let r = download(&app, &req, a["id"].as_str().expect("id")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        let cd = r.headers()["content-disposition"]
            .to_str()
            .expect("ascii header")
            .to_string();
        assert!(cd.starts_with("attachment; filename=\""), "{cd}");
        assert!(cd.contains("; filename*=UTF-8''"), "{cd}");
        let fallback = cd.split('"').nth(1).expect("quoted name");
        assert!(
            fallback.chars().all(|c| c.is_ascii_graphic() || c == ' '),
            "{cd}"
        );
        assert!(!fallback.contains(['/', '\\', '%']), "{cd}");
        if expected == "party 🎉.png" {
            assert!(
                cd.ends_with("filename*=UTF-8''party%20%F0%9F%8E%89.png"),
                "{cd}"
            );
            assert_eq!(r.headers()["content-type"], "image/png");
        }
        if expected == "invoicefdp.exe" {
            assert_eq!(r.headers()["content-type"], "application/octet-stream");
        }
    }
    // A raw NUL in the part header is malformed: refused, nothing recorded, no 5xx.
    let before = added_events(&app).await;
    let r = upload_raw(&app, &req, ticket, b"filename=\"a\0b.txt\"", b"x").await;
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_eq!(added_events(&app).await, before);
}

#[sqlx::test]
async fn an_upload_cut_off_halfway_leaves_nothing_behind(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let req = app.user("req@example.com", "requester").await;
    let ticket = ticket_of(&app, &req).await;
    let content = vec![42u8; 6 * 1024 * 1024];
    let body = multipart_body(ticket, b"filename=\"big.bin\"", &content);
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/attachments/ HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        req.token,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(&body[..body.len() / 2])
        .await
        .expect("half");
    stream.flush().await.expect("flush");
    // The server is writing the temporary object...
    let dir = store_dir(&app);
    eventually("a temporary object exists", || {
        !files_under(&dir.join("tmp")).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...when the client goes away.
    drop(stream);
    eventually("nothing is left in the store", || {
        files_under(&dir).is_empty()
    })
    .await;
    // A later, whole upload is the barrier: once it is stored, the store and the log hold it
    // and nothing of the cut-off one.
    let whole = uploaded(&app, &req, ticket, "small.bin", b"whole").await;
    assert_eq!(
        added_events(&app).await,
        1,
        "only the whole upload is recorded"
    );
    let blobs: Vec<String> = files_under(&dir)
        .iter()
        .map(|f| f.to_string_lossy().to_string())
        .collect();
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    assert!(
        blobs[0].contains(whole["sha256"].as_str().expect("sha")),
        "{blobs:?}"
    );
}

#[sqlx::test]
async fn two_uploads_of_the_same_bytes_share_one_blob_that_outlives_the_first_delete(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [req, agent] = users(&app, [("req", "requester"), ("agent", "agent")]).await;
    let ticket = ticket_of(&app, &req).await;
    let other_ticket = ticket_of(&app, &agent).await;
    // Large enough to be written in several parts.
    let content: Vec<u8> = (0..3 * 1024 * 1024 + 17)
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    let a = uploaded(&app, &req, ticket, "report.pdf", &content).await;
    let b = uploaded(&app, &agent, other_ticket, "copy.pdf", &content).await;
    assert_eq!(a["sha256"], sha_hex(&content));
    assert_eq!(a["sha256"], b["sha256"]);
    assert_eq!(a["content_type"], "application/pdf");
    let dir = store_dir(&app);
    eventually("one blob, no temporary objects", || {
        files_under(&dir).len() == 1
    })
    .await;
    app.settle().await;

    let (a_id, b_id) = (a["id"].as_str().expect("id"), b["id"].as_str().expect("id"));
    let r = app
        .delete(&format!("/api/v1/attachments/{a_id}"), &req.token)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    app.settle().await;
    // The collector, run to its end once the removal is counted, keeps the blob: the other
    // attachment uses it.
    let deleted = app
        .state
        .storage
        .collect(&app.pool, None)
        .await
        .expect("collect");
    assert_eq!(deleted, 0, "a blob still in use was collected");
    assert_eq!(files_under(&dir).len(), 1);
    assert_eq!(
        download(&app, &req, a_id).await.status(),
        StatusCode::NOT_FOUND
    );
    let r = download(&app, &agent, b_id).await;
    assert_eq!(
        r.headers()["content-length"],
        content.len().to_string().as_str()
    );
    let bytes = r.bytes().await.expect("bytes");
    assert_eq!(sha_hex(&bytes), sha_hex(&content));

    let r = app
        .delete(&format!("/api/v1/attachments/{b_id}"), &agent.token)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    eventually("the unreferenced blob is collected", || {
        files_under(&dir).is_empty()
    })
    .await;
    // Uploading the same bytes again stores them again.
    let c = uploaded(&app, &req, ticket, "again.pdf", &content).await;
    app.settle().await;
    let r = download(&app, &req, c["id"].as_str().expect("id")).await;
    assert_eq!(sha_hex(&r.bytes().await.expect("bytes")), sha_hex(&content));
}

#[sqlx::test]
async fn another_requester_gets_404_for_metadata_download_list_upload_and_delete(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [owner, other, agent] = users(
        &app,
        [
            ("owner", "requester"),
            ("other", "requester"),
            ("agent", "agent"),
        ],
    )
    .await;
    let ticket = ticket_of(&app, &owner).await;
    let a = uploaded(&app, &owner, ticket, "secret.txt", b"the secret").await;
    let id = a["id"].as_str().expect("id");
    app.settle().await;

    for path in [
        format!("/api/v1/attachments/{id}"),
        format!("/api/v1/attachments/{id}/download"),
        format!("/api/v1/attachments/?ticket_id={ticket}"),
    ] {
        let r = app.get(&path, &other.token).await;
        assert_eq!(
            json_of(r, StatusCode::NOT_FOUND).await["code"],
            "NOT_FOUND",
            "{path}"
        );
    }
    assert_eq!(
        app.delete(&format!("/api/v1/attachments/{id}"), &other.token)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = upload(&app, &other, ticket, "sneaky.txt", b"sneaky").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(added_events(&app).await, 1);
    let dir = store_dir(&app);
    eventually("only the owner's blob is stored", || {
        files_under(&dir).len() == 1
    })
    .await;

    // The owner and staff read it; the agent may remove it.
    let r = download(&app, &agent, id).await;
    assert_eq!(r.bytes().await.expect("bytes").as_ref(), b"the secret");
    assert_eq!(
        get_ok(&app, &owner, &format!("/api/v1/attachments/{id}")).await["filename"],
        "secret.txt"
    );
    let r = app
        .delete(&format!("/api/v1/attachments/{id}"), &agent.token)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[sqlx::test]
async fn the_attachment_list_answers_the_standard_page(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let req = app.user("req@example.com", "requester").await;
    let ticket = ticket_of(&app, &req).await;
    for name in ["a.txt", "b.txt", "c.txt"] {
        uploaded(&app, &req, ticket, name, name.as_bytes()).await;
    }
    app.settle().await;
    let list = |query: String| {
        let (app, req) = (&app, &req);
        async move {
            app.get(
                &format!("/api/v1/attachments?ticket_id={ticket}{query}"),
                &req.token,
            )
            .await
        }
    };

    let first = json_of(list("&size=2".into()).await, StatusCode::OK).await;
    let names: Vec<&str> = first["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|a| a["filename"].as_str())
        .collect();
    assert_eq!(names, ["a.txt", "b.txt"]);
    assert_eq!(
        (
            &first["total"],
            &first["page"],
            &first["size"],
            &first["pages"]
        ),
        (&json!(3), &json!(1), &json!(2), &json!(2))
    );
    let second = json_of(list("&size=2&page=2".into()).await, StatusCode::OK).await;
    assert_eq!(second["items"][0]["filename"], "c.txt");
    assert_eq!(second["items"].as_array().map(Vec::len), Some(1));

    for (query, field) in [("&size=101", "size"), ("&page=0", "page")] {
        let body = json_of(list(query.into()).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["detail"][0]["loc"], json!(["query", field]), "{query}");
    }
}
