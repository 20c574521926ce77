//! The OpenAPI document the SPA's types are generated from (`frontend/openapi.json`) must be
//! the one the server serves: a route or schema change without regenerating fails here.
//! `UPDATE_OPENAPI=1` rewrites the file (then run `npm run gen:api` in `frontend/`).

#[test]
fn the_committed_openapi_document_matches_the_server() {
    let doc = serde_json::to_string_pretty(&ticketd::http::openapi()).unwrap() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/frontend/openapi.json");
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(path, &doc).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let committed: serde_json::Value = serde_json::from_str(&committed).unwrap_or_default();
    let served: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert!(
        committed == served,
        "frontend/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo nextest run --test api openapi` \
         and `npm run gen:api` in frontend/"
    );
}

#[tokio::test]
async fn every_operation_is_documented_with_a_tag_and_responses() {
    let doc = serde_json::to_value(ticketd::http::openapi()).unwrap();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{method} {path} has no tag"
            );
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} documents no response"
            );
        }
    }
}
