//! The error answers of the OpenAPI document: one reusable response per status (in
//! `components.responses`), and the named sets an operation lists beside its success answer.

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Type};
use utoipa::IntoResponses;

/// Each documented error status: its component name, description, and whether its body is
/// the 422 list (`ValidationErrorBody`) rather than `ErrorBody`.
const ERRORS: &[(u16, &str, &str)] = &[
    (401, "Unauthorized", "Not signed in, or the token is invalid, expired or revoked (`AUTH_ERROR`, with `WWW-Authenticate: Bearer`)"),
    (403, "Forbidden", "The caller's role may not do this (`PERMISSION_ERROR`)"),
    (404, "NotFound", "No such resource, or one the caller may not see (`NOT_FOUND`)"),
    (409, "Conflict", "The change conflicts with the resource's state, or a request with the same `Idempotency-Key` is still running (`CONFLICT`)"),
    (412, "PreconditionFailed", "`If-Match` names a version that is not the current one (`PRECONDITION_FAILED`); nothing changed"),
    (413, "PayloadTooLarge", "The request body is too large (`PAYLOAD_TOO_LARGE`)"),
    (415, "UnsupportedMediaType", "The body is not of the expected content type (`UNSUPPORTED_MEDIA_TYPE`)"),
    (422, "ValidationFailed", "Invalid input: each entry names the field (`loc`), what is wrong (`msg`) and its kind (`type`)"),
    (428, "PreconditionRequired", "This change needs `If-Match` with the current version (`PRECONDITION_REQUIRED`); nothing changed"),
    (429, "RateLimited", "Too many attempts; retry after `Retry-After` seconds (`RATE_LIMITED`)"),
    (503, "Unavailable", "Not ready yet (a write named by `X-Consistency-Token` not yet visible, or the database unreachable); retry after `Retry-After` seconds (`SERVER_ERROR`)"),
];

fn find(status: u16) -> (u16, &'static str, &'static str) {
    ERRORS
        .iter()
        .copied()
        .find(|(s, ..)| *s == status)
        .unwrap_or((status, "Error", "An error"))
}

/// Every error response, for `components.responses`.
pub fn components() -> Vec<(String, RefOr<Response>)> {
    ERRORS
        .iter()
        .map(|(status, name, description)| {
            let schema = if *status == 422 {
                "ValidationErrorBody"
            } else {
                "ErrorBody"
            };
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build();
            let mut response = ResponseBuilder::new()
                .description(*description)
                .content("application/json", content);
            let header = match status {
                401 => Some("WWW-Authenticate"),
                429 | 503 => Some("Retry-After"),
                _ => None,
            };
            if let Some(header) = header {
                let string = ObjectBuilder::new().schema_type(Type::String).build();
                response = response.header(header, HeaderBuilder::new().schema(string).build());
            }
            (name.to_string(), RefOr::T(response.build()))
        })
        .collect()
}

fn refs(statuses: &[u16]) -> BTreeMap<String, RefOr<Response>> {
    statuses
        .iter()
        .map(|status| {
            let (status, name, _) = find(*status);
            (
                status.to_string(),
                RefOr::Ref(Ref::from_response_name(name)),
            )
        })
        .collect()
}

/// Declares a named set of error responses: `error_set!(/// doc\n Name: 401, 404);`.
macro_rules! error_set {
    ($(#[$doc:meta])* $name:ident: $($status:literal),+) => {
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                refs(&[$($status),+])
            }
        }
    };
}

error_set!(
    /// A read of one resource or of a resource's sub-list.
    ReadErrors: 401, 403, 404, 422, 503
);
error_set!(
    /// A list or report without a parent resource.
    ListErrors: 401, 403, 422, 503
);
error_set!(
    /// A command without a body (delete, cancel, mark read).
    CommandErrors: 401, 403, 404, 409, 422, 503
);
error_set!(
    /// A command with a JSON (or multipart) body.
    WriteErrors: 401, 403, 404, 409, 413, 415, 422, 503
);
error_set!(
    /// A command that takes an optional `If-Match`.
    ConditionalWriteErrors: 401, 403, 404, 409, 412, 413, 415, 422, 503
);
error_set!(
    /// A command without a body that takes an optional `If-Match`.
    ConditionalCommandErrors: 401, 403, 404, 409, 412, 422, 503
);
error_set!(
    /// A command that needs `If-Match`.
    VersionedWriteErrors: 401, 403, 404, 409, 412, 413, 415, 422, 428, 503
);
error_set!(
    /// A command without a body that needs `If-Match`.
    VersionedCommandErrors: 401, 403, 404, 409, 412, 422, 428, 503
);
error_set!(
    /// Signing in, refreshing and signing out: no bearer token, attempts are limited.
    SignInErrors: 401, 413, 415, 422, 429, 503
);
error_set!(
    /// Registering: no token needed, attempts are limited.
    RegisterErrors: 409, 413, 415, 422, 429, 503
);
