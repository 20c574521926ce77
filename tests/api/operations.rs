//! Admin operations: the projections with their lag and leader, and a rebuild started from
//! the API whose progress the same list shows.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{json_of, TestApp};
use crate::steps::{get_ok, users};

#[sqlx::test]
async fn an_admin_sees_every_projection_and_rebuilds_one_with_its_progress(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let [root, rita] = users(&app, [("root", "admin"), ("rita", "requester")]).await;
    for n in 0..5 {
        app.ticket(&rita, &format!("ticket {n}")).await;
    }
    app.settle().await;
    let list = get_ok(&app, &root, "/api/v1/admin/projections").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for expected in ["tickets", "comments", "reports", "notifications"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let reports = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "reports")
        .unwrap();
    assert_eq!(reports["lag_events"], json!(0));
    assert_eq!(reports["rebuild"]["running"], json!(false));
    assert!(reports["leader"].is_string(), "{reports}");

    let r = app
        .post(
            "/api/v1/admin/projections/reports/rebuild",
            &root.token,
            json!({}),
        )
        .await;
    let started = json_of(r, StatusCode::ACCEPTED).await;
    assert_eq!(started["rebuild"]["running"], json!(true));
    assert!(started["rebuild"]["started_at"].is_string());
    // A second one while it runs is refused.
    let r = app
        .post(
            "/api/v1/admin/projections/reports/rebuild",
            &root.token,
            json!({}),
        )
        .await;
    let body = json_of(r, StatusCode::CONFLICT).await;
    assert!(body["detail"].as_str().unwrap().contains("already running"));

    let mut done = Value::Null;
    for _ in 0..250 {
        let list = get_ok(&app, &root, "/api/v1/admin/projections").await;
        let p = list
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "reports")
            .unwrap()
            .clone();
        if p["rebuild"]["finished_at"].is_string() {
            done = p;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
    assert_eq!(done["rebuild"]["running"], json!(false), "{done}");
    assert_eq!(done["rebuild"]["error"], Value::Null);
    assert_eq!(
        done["rebuild"]["done_events"],
        done["rebuild"]["total_events"]
    );
    // The rebuilt read model answers as before.
    let dash = get_ok(&app, &root, "/api/v1/reports/dashboard").await;
    assert!(dash.to_string().contains('5'), "{dash}");

    let r = app
        .post(
            "/api/v1/admin/projections/nope/rebuild",
            &root.token,
            json!({}),
        )
        .await;
    json_of(r, StatusCode::NOT_FOUND).await;
}
