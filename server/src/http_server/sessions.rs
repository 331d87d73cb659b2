//! Which principal owns which legacy MCP session, and how many sessions exist.
//!
//! rmcp owns the sessions themselves (creation, idle expiry, DELETE); this registry adds what it
//! lacks: a cap (503 instead of unbounded growth), a separate smaller cap for sessions opened
//! without credentials (so anonymous clients cannot fill the server), and binding to the
//! principal that created the session (another principal presenting the id gets 404, as if it
//! did not exist).
//!
//! It is the one count of sessions: the cap, `/info` and `converse_sessions_active` all read
//! [`Sessions::live`]. Admission is atomic: a place is reserved under the same lock that checks
//! the cap, and turns into the session's entry under that lock when rmcp has opened it, so a
//! burst of `initialize`s can neither overshoot the cap nor be counted twice (once reserved,
//! once opened). Sessions rmcp closes by itself (idle expiry) leave at the next [`Sessions::sweep`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

/// Who may use a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Opened without credentials; the first principal to use it claims it.
    Unclaimed,
    Principal(String),
}

/// The counted state, changed only under its lock (never held across an await).
#[derive(Debug, Default)]
struct Registry {
    owners: HashMap<String, Owner>,
    /// Admitted `initialize` requests not answered yet, and how many of them are anonymous.
    reserved: usize,
    reserved_anonymous: usize,
}

impl Registry {
    fn unclaimed(&self) -> usize {
        self.owners
            .values()
            .filter(|o| **o == Owner::Unclaimed)
            .count()
    }

    fn has_room(&self, max: usize, anonymous: bool, max_anonymous: usize) -> bool {
        self.owners.len() + self.reserved < max
            && (!anonymous || self.unclaimed() + self.reserved_anonymous < max_anonymous)
    }
}

#[derive(Debug)]
pub struct Sessions {
    manager: Arc<LocalSessionManager>,
    registry: Mutex<Registry>,
    pub max: usize,
    pub max_anonymous: usize,
}

pub enum Admission {
    Admitted(Reservation),
    Full,
}

/// A place under the cap, held from admission until the session is recorded (or the
/// `initialize` failed and the reservation is dropped).
pub struct Reservation {
    sessions: Arc<Sessions>,
    anonymous: bool,
    /// Set when [`Sessions::record`] turned the place into a session.
    used: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.used {
            let mut registry = self.sessions.registry();
            release(&mut registry, self.anonymous);
        }
    }
}

fn release(registry: &mut Registry, anonymous: bool) {
    registry.reserved = registry.reserved.saturating_sub(1);
    if anonymous {
        registry.reserved_anonymous = registry.reserved_anonymous.saturating_sub(1);
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
            registry: Mutex::new(Registry::default()),
            max,
            max_anonymous: (max / 4).max(1),
        })
    }

    /// The registry; a panic elsewhere while holding it leaves consistent counts (every change
    /// is a single statement), so a poisoned lock is used as is.
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Open sessions (the one count the cap, `/info` and the metric use).
    pub fn live(&self) -> usize {
        self.registry().owners.len()
    }

    /// Drops the entries of sessions rmcp has closed (idle expiry).
    pub async fn sweep(&self) {
        let open: HashSet<String> = self
            .manager
            .sessions
            .read()
            .await
            .keys()
            .map(|k| k.to_string())
            .collect();
        self.registry().owners.retain(|id, _| open.contains(id));
    }

    /// May a new session be opened? `anonymous`: opened without credentials while an auth
    /// strategy is set, held to the smaller share. At the cap, closed sessions are swept once
    /// before refusing.
    pub async fn admit(self: &Arc<Self>, anonymous: bool) -> Admission {
        if let Some(admitted) = self.try_reserve(anonymous) {
            return admitted;
        }
        self.sweep().await;
        self.try_reserve(anonymous).unwrap_or(Admission::Full)
    }

    fn try_reserve(self: &Arc<Self>, anonymous: bool) -> Option<Admission> {
        let mut registry = self.registry();
        if !registry.has_room(self.max, anonymous, self.max_anonymous) {
            return None;
        }
        registry.reserved += 1;
        if anonymous {
            registry.reserved_anonymous += 1;
        }
        Some(Admission::Admitted(Reservation {
            sessions: self.clone(),
            anonymous,
            used: false,
        }))
    }

    /// The session rmcp opened for `reservation`: its place becomes the session's entry.
    pub fn record(&self, mut reservation: Reservation, id: &str, owner: Owner) {
        let mut registry = self.registry();
        release(&mut registry, reservation.anonymous);
        registry.owners.insert(id.to_string(), owner);
        reservation.used = true;
    }

    pub fn forget(&self, id: &str) {
        self.registry().owners.remove(id);
    }

    /// Checks (and for unclaimed sessions, claims) access for `principal`.
    pub fn access(&self, id: &str, principal: Option<&str>) -> Access {
        let mut registry = self.registry();
        match (registry.owners.get(id), principal) {
            // Unknown to us: let rmcp answer (404 for an unknown session).
            (None, _) => Access::Allowed,
            (Some(Owner::Principal(owner)), Some(p)) if owner == p => Access::Allowed,
            (Some(Owner::Principal(_)), _) => Access::NotFound,
            (Some(Owner::Unclaimed), None) => Access::Allowed,
            (Some(Owner::Unclaimed), Some(p)) => {
                registry
                    .owners
                    .insert(id.to_string(), Owner::Principal(p.to_string()));
                Access::Allowed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry whose rmcp manager is empty; the tests use `try_reserve` (admission without
    /// the sweep, which would drop sessions this manager does not know).
    fn sessions(max: usize) -> Arc<Sessions> {
        Sessions::new(Arc::new(LocalSessionManager::default()), max)
    }

    fn reserve(s: &Arc<Sessions>, anonymous: bool) -> Option<Reservation> {
        match s.try_reserve(anonymous)? {
            Admission::Admitted(r) => Some(r),
            Admission::Full => None,
        }
    }

    /// A burst of authenticated `initialize`s up to the cap, all in flight at once, then all
    /// recorded: every one is admitted, none is counted twice, the next is refused.
    #[test]
    fn a_burst_up_to_the_cap_is_admitted_and_counted_once() {
        let s = sessions(64);
        let reservations: Vec<Reservation> = (0..64)
            .map(|i| reserve(&s, false).unwrap_or_else(|| panic!("refused at {i}")))
            .collect();
        assert!(reserve(&s, false).is_none());
        // rmcp opens them one by one while the others are still in flight.
        for (i, r) in reservations.into_iter().enumerate() {
            s.record(r, &format!("s{i}"), Owner::Principal("apikey:a".into()));
            assert_eq!(s.live(), i + 1);
            assert!(reserve(&s, false).is_none(), "{i}");
        }
        assert_eq!(s.registry().reserved, 0);
    }

    #[test]
    fn a_failed_initialize_gives_its_place_back() {
        let s = sessions(1);
        drop(reserve(&s, false));
        let r = reserve(&s, false).expect("the place is free again");
        s.record(r, "s", Owner::Unclaimed);
        assert_eq!(s.live(), 1);
        s.forget("s");
        assert_eq!(s.live(), 0);
    }

    #[test]
    fn anonymous_sessions_share_a_quarter_and_never_crowd_out_the_authenticated() {
        let s = sessions(8);
        let anon: Vec<Reservation> = (0..2).filter_map(|_| reserve(&s, true)).collect();
        assert_eq!(anon.len(), 2);
        assert!(reserve(&s, true).is_none(), "2 = 8/4");
        let r = reserve(&s, false).expect("authenticated");
        s.record(r, "auth", Owner::Principal("sub:x".into()));
        for (i, r) in anon.into_iter().enumerate() {
            s.record(r, &format!("anon{i}"), Owner::Unclaimed);
        }
        assert!(reserve(&s, true).is_none());
        assert!(matches!(s.access("anon0", Some("sub:y")), Access::Allowed));
        assert!(matches!(s.access("anon0", Some("sub:z")), Access::NotFound));
        // Claimed, anon0 no longer counts against the anonymous share.
        assert!(reserve(&s, true).is_some());
    }
}
