//! One integration-test binary; a module per API area.
#![allow(clippy::unwrap_used)] // tests assert by unwrapping
#![allow(clippy::too_many_lines)] // a scenario reads top to bottom

mod approvals;
mod attachments;
mod audit;
mod auth;
mod bulk;
mod cli;
mod comments;
mod delivery;
mod embedded;
mod headers;
mod helpers;
mod idempotency;
mod inputs;
mod items;
mod layout;
mod live;
mod macros;
mod notifications;
mod openapi;
mod operations;
mod people;
mod privacy;
mod projections;
mod races;
mod reads;
mod reports;
mod role_table;
mod roles;
mod serve;
mod sessions;
mod sla;
mod slow_clients;
mod steps;
mod throttle;
mod tickets;
mod transitions;
mod users;
mod views;
