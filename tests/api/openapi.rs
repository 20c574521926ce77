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

#[test]
fn every_operation_documents_the_errors_it_can_answer() {
    let doc = serde_json::to_value(ticketd::http::openapi()).unwrap();
    let components = &doc["components"]["responses"];
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let has = |status: &str| responses.contains_key(status);
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let json_body = op["requestBody"]["content"]["application/json"].is_object();
            let has_params = op["parameters"].as_array().is_some_and(|p| !p.is_empty());
            if secured {
                assert!(has("401"), "{method} {path} documents no 401");
            }
            if json_body {
                for status in ["413", "415", "422"] {
                    assert!(has(status), "{method} {path} documents no {status}");
                }
            }
            if has_params || json_body {
                assert!(has("422"), "{method} {path} documents no 422");
            }
            // Every error answer is one of the shared components, with its body schema.
            for (status, response) in responses.iter().filter(|(s, _)| s.as_str() >= "400") {
                let name = response["$ref"].as_str().unwrap_or_default();
                let name = name.trim_start_matches("#/components/responses/");
                let schema = &components[name]["content"]["application/json"]["schema"]["$ref"];
                let expected = if status == "422" {
                    "ValidationErrorBody"
                } else {
                    "ErrorBody"
                };
                assert_eq!(
                    schema.as_str(),
                    Some(format!("#/components/schemas/{expected}").as_str()),
                    "{method} {path} {status}"
                );
            }
        }
    }
    let loc = &doc["components"]["schemas"]["FieldError"]["properties"]["loc"]["items"];
    assert_eq!(loc["$ref"], "#/components/schemas/LocSegment", "{loc}");
}
