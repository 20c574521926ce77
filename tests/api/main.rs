//! One integration-test binary; a module per API area.

mod auth;
mod helpers;
mod tickets;
