//! ticketd: an event-sourced ticket desk. This library holds the server and the CLI;
//! `main.rs` only parses the command line.

pub mod approval_policy;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod error;
pub mod history;
pub mod http;
pub mod items;
pub mod metrics;
pub mod openapi;
pub mod read;
pub mod replay;
pub mod reports;
pub mod roles;
pub mod saga;
pub mod seed;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod users;
