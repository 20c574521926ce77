//! One integration-test binary; a module per API area.
#![allow(clippy::unwrap_used)] // tests assert by unwrapping

mod auth;
mod cli;
mod embedded;
mod helpers;
mod projections;
mod reports;
mod tickets;
