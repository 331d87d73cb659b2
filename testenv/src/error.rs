//! The one error type of the crate: every failure names what was being done.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed ({status}){}", if output.is_empty() { String::new() } else { format!(":\n{output}") })]
    Command {
        command: String,
        status: String,
        output: String,
    },

    /// A component of the cluster failed to start; `tail` holds the end of its log.
    #[error("{component} did not start: {reason}\n--- last lines of {} ---\n{tail}", log.display())]
    Start {
        component: String,
        reason: String,
        log: PathBuf,
        tail: String,
    },

    #[error(
        "testenv {command} needs root (it changes the host's network, mounts and cgroups); run it with sudo, or use `testenv up --control-plane-only`"
    )]
    NotRoot { command: &'static str },

    #[error("the binaries for this version table are not built (missing {}); run `make testenv-build` (or `testenv build`) first", missing.display())]
    NotBuilt { missing: PathBuf },

    #[error(
        "no testenv cluster is running ({reason}); run `make testenv-up` and export the KUBECONFIG it prints"
    )]
    NoCluster { reason: String },

    #[error("a testenv cluster is already running (state in {}); run `testenv down` first", state.display())]
    AlreadyUp { state: PathBuf },

    #[error("timed out after {secs} s waiting for {what}")]
    Timeout { what: String, secs: u64 },

    #[error("the host is not clean after teardown:\n{}", leftovers.join("\n"))]
    NotClean { leftovers: Vec<String> },

    #[error("invalid YAML document: {0}")]
    Yaml(#[from] serde_norway::Error),

    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),

    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),

    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// Attach a description to an io::Result.
pub trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}
