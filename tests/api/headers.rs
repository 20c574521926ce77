//! Security headers over HTTP (Content-Security-Policy everywhere, HSTS when enabled, no
//! caching of token-bearing answers) and the SPA's history fallback, which never stands in
//! for a missing asset.

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{test_config, TestApp, PASSWORD};
use crate::steps::users;

/// A server whose SPA is a small built app: `index.html` and one hashed asset.
async fn with_spa(pool: PgPool, hsts: bool) -> TestApp {
    let mut config = test_config(&pool);
    let dist = config.data_dir.join("dist");
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    std::fs::write(
        dist.join("index.html"),
        "<!doctype html><script type=\"module\" src=\"/assets/app-1.js\"></script>",
    )
    .unwrap();
    std::fs::write(dist.join("assets/app-1.js"), "console.log(1)").unwrap();
    // The API reference page of the build (`frontend/docs.html`).
    std::fs::write(
        dist.join("docs.html"),
        "<!doctype html><script type=\"module\" src=\"/assets/docs-1.js\"></script>",
    )
    .unwrap();
    config.static_dir = dist;
    config.hsts = hsts;
    TestApp::spawn_with(pool, config).await
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.request(Method::GET, path, None).send().await.unwrap()
}

#[sqlx::test]
async fn the_spa_docs_and_api_carry_a_policy_without_inline_script(pool: PgPool) {
    let app = with_spa(pool, false).await;
    for path in [
        "/",
        "/tickets/42",
        "/docs",
        "/api/v1/openapi.json",
        "/api/v1/tickets",
        "/api/v1/nowhere",
    ] {
        let r = get(&app, path).await;
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        for wanted in [
            "script-src 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
            "default-src 'self'",
        ] {
            assert!(directives.contains(&wanted), "{path}: {csp}");
        }
        // Inline styles only where a renderer needs them; never inline scripts.
        let style = if path.starts_with("/docs") {
            "style-src 'self' 'unsafe-inline'"
        } else {
            "style-src 'self'"
        };
        assert!(directives.contains(&style), "{path}: {csp}");
        assert!(r.headers().get("strict-transport-security").is_none());
    }
    // The docs page is the build's, which loads its script from this origin.
    let docs = get(&app, "/docs").await.text().await.unwrap();
    assert!(docs.contains("src=\"/assets/docs-1.js\""), "{docs}");
}

#[sqlx::test]
async fn hsts_is_sent_only_when_enabled(pool: PgPool) {
    let app = with_spa(pool, true).await;
    for path in ["/", "/api/v1/openapi.json", "/healthz"] {
        let r = get(&app, path).await;
        assert_eq!(
            r.headers()["strict-transport-security"],
            "max-age=63072000; includeSubDomains",
            "{path}"
        );
    }
}

#[sqlx::test]
async fn answers_that_carry_tokens_are_not_stored_by_caches(pool: PgPool) {
    let app = with_spa(pool, false).await;
    let [user] = users(&app, [("ann", "requester")]).await;
    let answers = [
        (
            "/api/v1/auth/login",
            json!({"email": user.email, "password": PASSWORD}),
            StatusCode::OK,
        ),
        (
            "/api/v1/auth/refresh",
            json!({"refresh_token": user.refresh}),
            StatusCode::OK,
        ),
        (
            "/api/v1/auth/register",
            json!({"email": "new@example.com", "password": PASSWORD, "full_name": "New"}),
            StatusCode::CREATED,
        ),
    ];
    for (path, body, status) in answers {
        let r = app
            .request(Method::POST, path, None)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    }
}

#[sqlx::test]
async fn a_missing_asset_is_404_and_navigation_paths_get_the_app(pool: PgPool) {
    let app = with_spa(pool, false).await;
    let r = get(&app, "/assets/missing.js").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = get(&app, "/assets/app-1.js").await;
    assert_eq!(r.status(), StatusCode::OK);
    // A script is no document: nosniff, and none of the policy headers.
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    for name in [
        "content-security-policy",
        "x-frame-options",
        "referrer-policy",
    ] {
        assert!(r.headers().get(name).is_none(), "{name} on an asset");
    }
    assert_eq!(r.text().await.unwrap(), "console.log(1)");
    for path in ["/", "/tickets/42", "/approvals/inbox"] {
        let r = get(&app, path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(
            r.text().await.unwrap().contains("/assets/app-1.js"),
            "{path}"
        );
    }
}

/// A hashed asset the build compressed: the `.br` and `.gz` files beside it are sent as they
/// are to a client that accepts them, cached for a year as immutable; pages are revalidated;
/// a missing asset's 404 is never cached as immutable.
#[sqlx::test]
async fn assets_are_sent_precompressed_and_immutable_pages_revalidated(pool: PgPool) {
    let app = with_spa(pool, false).await;
    let assets = app.config.static_dir.join("assets");
    std::fs::write(assets.join("app-1.js.br"), b"brotli bytes").unwrap();
    std::fs::write(assets.join("app-1.js.gz"), b"gzip bytes").unwrap();
    let fetch = |path: &'static str, encoding: &'static str| {
        app.request(Method::GET, path, None)
            .header("accept-encoding", encoding)
            .send()
    };

    for (encoding, sent, body) in [
        ("br, gzip", Some("br"), "brotli bytes"),
        ("gzip", Some("gzip"), "gzip bytes"),
        ("identity", None, "console.log(1)"),
    ] {
        let r = fetch("/assets/app-1.js", encoding).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{encoding}");
        assert_eq!(
            r.headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap()),
            sent,
            "{encoding}"
        );
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(r.headers()["vary"], "accept-encoding");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript"));
        assert_eq!(r.text().await.unwrap(), body, "{encoding}");
    }

    for path in ["/", "/login", "/tickets/42", "/docs"] {
        let r = fetch(path, "br, gzip").await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-cache", "{path}");
    }

    let r = fetch("/assets/app-2.js", "br, gzip").await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let cache = r
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(!cache.unwrap_or_default().contains("immutable"));
}
