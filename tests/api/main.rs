//! One integration-test binary; a module per API area.

mod auth;
mod cli;
mod embedded;
mod helpers;
mod projections;
mod tickets;
