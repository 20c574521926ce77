//! One integration-test binary; a module per API area.

mod audit;
mod auth;
mod helpers;
mod tickets;
