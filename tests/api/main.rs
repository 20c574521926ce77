//! One integration-test binary; a module per API area.

mod attachments;
mod auth;
mod comments;
mod helpers;
mod tickets;
