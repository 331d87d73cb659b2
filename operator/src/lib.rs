//! converse-operator: the `ConverseServer` custom resource and the pure phases of its
//! reconcile (Stackable's five-phase shape):
//!
//! 1. dereference (client): read the CR and the Secrets it references ([`references`]);
//! 2. [`validate`] (pure): spec + what was found → [`validate::ValidatedServer`] or a typed,
//!    user-facing error;
//! 3. [`build`] (pure): every desired child object ([`build::DesiredObjects`]);
//! 4. apply (client) and 5. update status (client): the controller (next slice).

pub mod build;
pub mod crd;
pub mod docs;
pub mod endpoints;
pub mod references;
pub mod validate;

pub use build::{BuildContext, BuildError, DesiredObjects, build};
pub use crd::{ConverseServer, ConverseServerSpec, ConverseServerStatus};
pub use references::Dereferenced;
pub use validate::{ValidatedServer, ValidationError, validate};
