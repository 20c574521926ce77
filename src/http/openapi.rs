//! The OpenAPI document's frame: title, security scheme, tags. Paths come from the
//! `#[utoipa::path]` annotations of each handler.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The API description served at `/api/v1/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "ticketd", description = "Event-sourced ticket desk REST API"),
    modifiers(&BearerAuth),
    components(schemas(crate::http::error::ErrorBody, crate::http::error::ValidationErrorBody, crate::http::error::FieldError)),
    tags(
        (name = "attachments", description = "Files on tickets: upload, download, remove"),
        (name = "auth", description = "Sign-in, tokens and profile"),
        (name = "comments", description = "Ticket conversations, replies and internal notes"),
        (name = "tickets", description = "Tickets: commands, list and search"),
        (name = "users", description = "User management"),
        (name = "approvals", description = "Approvals: requests, decisions, delegation, the inbox and the change request policy"),
        (name = "items", description = "Configuration items and assets"),
        (name = "notifications", description = "Your notifications, and their live stream"),
        (name = "live", description = "One live connection per tab (Server-Sent Events) and presence on tickets"),
        (name = "reports", description = "Dashboard, analytics, exports and the SLA policy (managers and admins)"),
        (name = "webhooks", description = "Webhooks: signed deliveries of the event log to other systems, their delivery log and retries (admins)"),
        (name = "views", description = "Saved views of the ticket queue, their counts and their tickets (agents and up)"),
        (name = "macros", description = "Canned replies with changes, personal or shared (agents and up)"),
        (name = "admin", description = "Operations for admins: projections, their lag and rebuilds"),
    )
)]
pub struct ApiDoc;

/// Adds the bearer security scheme and the reusable error responses.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components
                .responses
                .extend(crate::http::responses::components());
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
        }
    }
}
