//! quicket-followup: keeps every Quicket checkout hook and emails buyers whose purchase never
//! completed. `main.rs` only calls [`cli::main`]; everything else lives here, one module per concept.

pub mod builtin_templates;
pub mod check;
pub mod cli;
pub mod config;
pub mod confseq;
pub mod connections;
pub mod dns;
pub mod domain;
pub mod email;
pub mod email_events;
pub mod email_webhook;
pub mod error_chain;
pub mod events;
pub mod experiment;
pub mod export;
pub mod http_client;
pub mod init;
pub mod lift;
pub mod links;
pub mod metrics;
pub mod money;
pub mod notify;
pub mod present;
pub mod proxies;
pub mod quicket;
pub mod quicket_api;
pub mod reminders;
pub mod scanner;
pub mod send_rules;
pub mod server;
pub mod store;
pub mod templates;
pub mod web;
pub mod webhook;
pub mod workshop;

pub use error_chain::error_chain;
