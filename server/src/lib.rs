//! converse-server: an MCP server that lets AI assistants consult other LLMs.
//!
//! Layout: [`tools`] hold the behaviour of `chat` and `consensus`, [`mcp`] exposes
//! them over MCP with rmcp, [`http`] is the axum application around rmcp's
//! Streamable HTTP service, [`providers`] speak each LLM wire format, and
//! [`catalog`]/[`routing`] decide which provider and model answer a name.

pub mod app;
pub mod auth;
pub mod catalog;
pub mod conversation;
pub mod env_file;
pub mod files;
pub mod help;
pub mod http_server;
pub mod mcp;
pub mod metrics;
pub mod principal;
pub mod providers;
pub mod routing;
pub mod tools;
