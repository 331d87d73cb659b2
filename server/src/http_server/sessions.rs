//! Which principal owns which legacy MCP session, and how many sessions exist.
//!
//! rmcp owns the sessions themselves (creation, idle expiry, DELETE); this
//! registry adds what it lacks: a cap (503 instead of unbounded growth), a
//! separate smaller cap for sessions opened without credentials (so anonymous
//! clients cannot fill the server), and binding to the principal that created
//! the session (another principal presenting the id gets 404, as if it did not
//! exist).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tokio::sync::Mutex;

/// Who may use a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Opened without credentials; the first principal to use it claims it.
    Unclaimed,
    Principal(String),
}

#[derive(Debug)]
pub struct Sessions {
    manager: Arc<LocalSessionManager>,
    owners: Mutex<HashMap<String, Owner>>,
    /// Initialize requests admitted but not answered yet: they count against the
    /// cap so a burst cannot overshoot it.
    reserved: AtomicUsize,
    pub max: usize,
    pub max_anonymous: usize,
}

pub enum Admission {
    Admitted(Reservation),
    Full,
}

/// Holds a place under the cap until the initialize request is answered.
pub struct Reservation(Arc<Sessions>);

impl Drop for Reservation {
    fn drop(&mut self) {
        self.0.reserved.fetch_sub(1, Ordering::SeqCst);
    }
}

pub enum Access {
    Allowed,
    /// The session is not this caller's (or not known to rmcp either): 404.
    NotFound,
}

impl Sessions {
    pub fn new(manager: Arc<LocalSessionManager>, max: usize) -> Arc<Self> {
        Arc::new(Self {
            manager,
            owners: Mutex::new(HashMap::new()),
            reserved: AtomicUsize::new(0),
            max,
            max_anonymous: (max / 4).max(1),
        })
    }

    pub async fn live(&self) -> usize {
        self.manager.sessions.read().await.len()
    }

    /// Drops ownership records of sessions rmcp has closed (idle expiry, DELETE).
    pub async fn sweep(&self) {
        let live: Vec<String> = self
            .manager
            .sessions
            .read()
            .await
            .keys()
            .map(|k| k.to_string())
            .collect();
        self.owners.lock().await.retain(|id, _| live.contains(id));
    }

    /// May a new session be opened for this owner?
    pub async fn admit(self: &Arc<Self>, anonymous: bool) -> Admission {
        let reserved = self.reserved.fetch_add(1, Ordering::SeqCst) + 1;
        let reservation = Reservation(self.clone());
        let mut live = self.live().await;
        if live + reserved > self.max {
            self.sweep().await;
            live = self.live().await;
        }
        if live + reserved > self.max {
            return Admission::Full;
        }
        if anonymous {
            let owners = self.owners.lock().await;
            let unclaimed = owners.values().filter(|o| **o == Owner::Unclaimed).count();
            if unclaimed + 1 > self.max_anonymous {
                return Admission::Full;
            }
        }
        Admission::Admitted(reservation)
    }

    pub async fn record(&self, id: &str, owner: Owner) {
        self.owners.lock().await.insert(id.to_string(), owner);
    }

    pub async fn forget(&self, id: &str) {
        self.owners.lock().await.remove(id);
    }

    /// Checks (and for unclaimed sessions, claims) access for `principal`.
    pub async fn access(&self, id: &str, principal: Option<&str>) -> Access {
        let mut owners = self.owners.lock().await;
        match (owners.get(id), principal) {
            // Unknown to us: let rmcp answer (404 for an unknown session).
            (None, _) => Access::Allowed,
            (Some(Owner::Principal(owner)), Some(p)) if owner == p => Access::Allowed,
            (Some(Owner::Principal(_)), _) => Access::NotFound,
            (Some(Owner::Unclaimed), None) => Access::Allowed,
            (Some(Owner::Unclaimed), Some(p)) => {
                owners.insert(id.to_string(), Owner::Principal(p.to_string()));
                Access::Allowed
            }
        }
    }
}
