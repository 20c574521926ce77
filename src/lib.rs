//! ticketd: an event-sourced ticket desk. This library holds the server and the CLI in four
//! layers: `app` (process wiring) → `http` (axum) and `cli` (clap) → `service` (the use
//! cases); below them the `projections` and `aggregates` crates. `main.rs` only starts `app`.

pub mod app;
pub mod cli;
pub mod http;
pub mod service;
