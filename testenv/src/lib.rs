//! testenv: a real single-node Kubernetes cluster on this machine, built from Go modules and
//! Debian packages, for the project's operator, Helm and end-to-end tests.
//!
//! The CLI (`testenv build | up | down | status | load-image | build-image | verify-clean`)
//! manages the cluster; the library gives tests a client ([`client::client_or_skip`]), a
//! namespace per test ([`client::TestNamespace`]), [`client::wait_for`] and
//! [`client::apply_yaml`].

pub mod build;
pub mod certs;
pub mod client;
pub mod cluster;
pub mod cmd;
pub mod containerd;
pub mod error;
pub mod gateway_api;
pub mod host;
pub mod images;
pub mod kubelet;
pub mod layout;
pub mod network;
pub mod process;
pub mod state;
pub mod tools;
pub mod versions;

pub use client::{TestNamespace, apply_yaml, client, client_or_skip, wait_for, wait_gone};
pub use error::{Error, Result};
pub use layout::Layout;
