//! converse-operator: the `ConverseServer` custom resource and the pure phases of its
//! reconcile (Stackable's five-phase shape):
//!
//! 1. dereference (client): read the CR and the Secrets, ConfigMap or PersistentVolumeClaim it
//!    references ([`references`]);
//! 2. [`validate`] (pure): spec + what was found → [`validate::ValidatedServer`] or a typed,
//!    user-facing error;
//! 3. [`desired`] (pure): [`build`] every desired child object ([`DesiredObjects`]);
//! 4. [`apply`] (client): server-side apply of the children, deletion of those no longer desired;
//! 5. [`status`] (client): conditions and observed state, written only when they change.
//!
//! [`controller`] wires the phases to watches; [`metrics`] serves probes and Prometheus text.

pub mod apply;
pub mod controller;
pub mod crd;
pub mod dereference;
pub mod desired;
pub mod docs;
pub mod endpoints;
pub mod leader;
pub mod metrics;
pub mod references;
pub mod status;
pub mod validate;

pub use crd::{ConverseServer, ConverseServerSpec, ConverseServerStatus};
pub use desired::{BuildContext, BuildError, DesiredObjects, build};
pub use references::Dereferenced;
pub use validate::{ValidatedServer, ValidationError, validate};
