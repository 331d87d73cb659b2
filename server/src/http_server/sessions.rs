//! Which principal owns which legacy MCP session, and how many sessions exist.
//!
//! rmcp owns the sessions themselves (creation, idle expiry, DELETE); this registry adds what it
//! lacks: a cap (503 instead of unbounded growth), a separate smaller cap for sessions opened
//! without credentials (so anonymous clients cannot fill the server) and a yet smaller one per
//! client address (so one host cannot take all the anonymous places), and binding to the
//! principal that created the session (another principal presenting the id gets 404, as if it
//! did not exist).
//!
//! It is the one count of sessions: the cap, `/info` and `converse_sessions_active` all read
//! [`Sessions::live`]. Admission is atomic: a place is reserved under the same lock that checks
//! the cap, and turns into the session's entry under that lock when rmcp has opened it, so a
//! burst of `initialize`s can neither overshoot the cap nor be counted twice (once reserved,
//! once opened). Sessions rmcp closes by itself (idle expiry) leave at the next [`Sessions::sweep`].
//!
//! At the cap, clients that vanished without `DELETE` (a crashed IDE, a laptop gone to sleep)
//! must not lock others out until `HTTP_SESSION_TIMEOUT`: the least recently used *idle* session
//! (no request in flight, no open stream) is closed to make room — its client gets 404 and
//! initializes again, as the MCP transport spec intends. Fairly: a principal holding its share
//! of the cap (the cap divided by the principals holding sessions) gives up its own idle
//! sessions first, and may not push out a principal below its share. 503 only when no session
//! may be taken.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

/// Who may use a session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// Opened without credentials; the first principal to use it claims it.
    Unclaimed,
    Principal(String),
}

/// One open session.
#[derive(Debug)]
struct Entry {
    owner: Owner,
    /// The client address bucket an anonymous session was opened from, while unclaimed.
    anonymous_from: Option<String>,
    /// Requests and streams of the session still running ([`InUse`] guards).
    in_flight: usize,
    last_used: Instant,
    recorded: Instant,
}

/// The counted state, changed only under its lock (never held across an await).
#[derive(Debug, Default)]
struct Registry {
    sessions: HashMap<String, Entry>,
    /// Admitted `initialize` requests not answered yet, and how many of them are anonymous,
    /// in all and per client address bucket.
    reserved: usize,
    reserved_anonymous: usize,
    reserved_anonymous_from: HashMap<String, usize>,
}

impl Registry {
    fn held_by(&self, owner: &Owner) -> usize {
        self.sessions.values().filter(|e| e.owner == *owner).count()
    }

    /// Anonymous sessions (open and reserved) from one client address bucket.
    fn anonymous_from(&self, ip: &str) -> usize {
        let open = self
            .sessions
            .values()
            .filter(|e| e.anonymous_from.as_deref() == Some(ip))
            .count();
        open + self.reserved_anonymous_from.get(ip).copied().unwrap_or(0)
    }

    fn has_room(&self, max: usize, anonymous: Option<&str>, limits: AnonymousLimits) -> bool {
        self.sessions.len() + self.reserved < max
            && anonymous.is_none_or(|ip| {
                self.held_by(&Owner::Unclaimed) + self.reserved_anonymous < limits.total
                    && self.anonymous_from(ip) < limits.per_address
            })
    }

    /// The idle unclaimed session an anonymous requester from `ip` may take: its own
    /// address's when that address is at its limit, else any.
    fn anonymous_victim(&self, ip: &str, per_address: usize) -> Option<String> {
        let own_only = self.anonymous_from(ip) >= per_address;
        self.sessions
            .iter()
            .filter(|(_, e)| {
                e.in_flight == 0
                    && e.owner == Owner::Unclaimed
                    && (!own_only || e.anonymous_from.as_deref() == Some(ip))
            })
            .min_by_key(|(_, e)| e.last_used)
            .map(|(id, _)| id.clone())
    }

    /// The session to close so that `requester` may open one, if any may be taken (see the
    /// module docs). Anonymous requesters at their share take from the unclaimed sessions.
    fn victim(&self, requester: &Owner, max: usize) -> Option<String> {
        let mut held: HashMap<&Owner, usize> = HashMap::new();
        for entry in self.sessions.values() {
            *held.entry(&entry.owner).or_default() += 1;
        }
        let owners = held.len() + usize::from(!held.contains_key(requester));
        let share = max.div_ceil(owners.max(1));
        let own = held.get(requester).copied().unwrap_or(0);
        let least_recently_used = |may_take: &dyn Fn(&Owner) -> bool| {
            self.sessions
                .iter()
                .filter(|(_, e)| e.in_flight == 0 && may_take(&e.owner))
                .min_by_key(|(_, e)| e.last_used)
                .map(|(id, _)| id.clone())
        };
        let others_above_share =
            |owner: &Owner| owner != requester && held.get(owner).copied().unwrap_or(0) > share;
        // Anonymous clients only ever make room among themselves; a principal at its share
        // only among its own; below it, it takes from those above their share first. Giving up
        // one's own idle session never hurts anyone, so that is always the fallback (it also
        // covers a burst, whose places not yet recorded are not counted in `held`).
        let mut victim = None;
        if own < share && *requester != Owner::Unclaimed {
            victim = least_recently_used(&others_above_share);
        }
        victim.or_else(|| least_recently_used(&|owner: &Owner| owner == requester))
    }
}

/// How many sessions opened without credentials may exist: in all, and from one client
/// address bucket.
#[derive(Debug, Clone, Copy)]
pub struct AnonymousLimits {
    pub total: usize,
    pub per_address: usize,
}

#[derive(Debug)]
pub struct Sessions {
    manager: Arc<LocalSessionManager>,
    registry: Mutex<Registry>,
    pub max: usize,
    pub anonymous: AnonymousLimits,
}

pub enum Admission {
    Admitted(Reservation),
    Full,
}

/// A place under the cap, held from admission until the session is recorded (or the
/// `initialize` failed and the reservation is dropped).
pub struct Reservation {
    sessions: Arc<Sessions>,
    /// The client address bucket of an anonymous `initialize`.
    anonymous: Option<String>,
    /// Set when [`Sessions::record`] turned the place into a session.
    used: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.used {
            let mut registry = self.sessions.registry();
            release(&mut registry, self.anonymous.as_deref());
        }
    }
}

fn release(registry: &mut Registry, anonymous: Option<&str>) {
    registry.reserved = registry.reserved.saturating_sub(1);
    if let Some(ip) = anonymous {
        registry.reserved_anonymous = registry.reserved_anonymous.saturating_sub(1);
        if let Some(n) = registry.reserved_anonymous_from.get_mut(ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                registry.reserved_anonymous_from.remove(ip);
            }
        }
    }
}

/// Marks a session busy while it lives: keep it until the request's response (or stream) ends.
pub struct InUse {
    sessions: Arc<Sessions>,
    id: String,
}

impl Drop for InUse {
    fn drop(&mut self) {
        let mut registry = self.sessions.registry();
        if let Some(entry) = registry.sessions.get_mut(&self.id) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            entry.last_used = Instant::now();
        }
    }
}

pub enum Access {
    /// Ours, or unknown to us (rmcp answers 404 for an unknown session). `Some` while ours.
    Allowed(Option<InUse>),
    /// The session is not this caller's: 404.
    NotFound,
}

impl Sessions {
    /// A quarter of the cap for anonymous sessions, a quarter of that per client address.
    pub fn new(manager: Arc<LocalSessionManager>, max: usize) -> Arc<Self> {
        let total = (max / 4).max(1);
        Arc::new(Self {
            manager,
            registry: Mutex::new(Registry::default()),
            max,
            anonymous: AnonymousLimits {
                total,
                per_address: (total / 4).max(1),
            },
        })
    }

    /// The registry; a panic elsewhere while holding it leaves consistent counts (every change
    /// is a single statement), so a poisoned lock is used as is.
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Open sessions (the one count the cap, `/info` and the metric use).
    pub fn live(&self) -> usize {
        self.registry().sessions.len()
    }

    /// Open sessions, and how many of them are busy (a request in flight or a stream open: not
    /// to be closed to make room), read together.
    pub fn counts(&self) -> (usize, usize) {
        let registry = self.registry();
        let busy = registry
            .sessions
            .values()
            .filter(|e| e.in_flight > 0)
            .count();
        (registry.sessions.len(), busy)
    }

    /// Drops the entries of sessions rmcp has closed (idle expiry). Entries recorded after the
    /// look at rmcp's sessions are kept: those sessions may be too new to be in it.
    pub async fn sweep(&self) {
        let looked = Instant::now();
        let open: HashSet<String> = self
            .manager
            .sessions
            .read()
            .await
            .keys()
            .map(|k| k.to_string())
            .collect();
        self.registry()
            .sessions
            .retain(|id, e| open.contains(id) || e.recorded >= looked);
    }

    /// May a new session be opened for `requester`? `anonymous`: opened without credentials
    /// while an auth strategy is set (the client's address bucket), held to the smaller limits.
    /// At the cap, closed sessions are swept, then an idle session may be closed to make room
    /// (see the module docs).
    pub async fn admit(self: &Arc<Self>, requester: &Owner, anonymous: Option<&str>) -> Admission {
        if let Some(admitted) = self.try_reserve(anonymous) {
            return admitted;
        }
        self.sweep().await;
        if let Some(admitted) = self.try_reserve(anonymous) {
            return admitted;
        }
        match self.reserve_by_evicting(requester, anonymous) {
            Some((admitted, victim)) => {
                tracing::info!(session = %victim, "session cap reached: closing the least recently used idle session");
                if let Err(e) = self.manager.close_session(&victim.as_str().into()).await {
                    tracing::debug!(session = %victim, error = %e, "closing an evicted session");
                }
                admitted
            }
            None => Admission::Full,
        }
    }

    fn try_reserve(self: &Arc<Self>, anonymous: Option<&str>) -> Option<Admission> {
        let mut registry = self.registry();
        if !registry.has_room(self.max, anonymous, self.anonymous) {
            return None;
        }
        Some(self.reserve(&mut registry, anonymous))
    }

    fn reserve(self: &Arc<Self>, registry: &mut Registry, anonymous: Option<&str>) -> Admission {
        registry.reserved += 1;
        if let Some(ip) = anonymous {
            registry.reserved_anonymous += 1;
            *registry
                .reserved_anonymous_from
                .entry(ip.to_string())
                .or_default() += 1;
        }
        Admission::Admitted(Reservation {
            sessions: self.clone(),
            anonymous: anonymous.map(str::to_string),
            used: false,
        })
    }

    /// Takes an idle session's place, under one lock: the victim leaves the count and the
    /// reservation takes its place atomically. Returns the victim to close in rmcp.
    fn reserve_by_evicting(
        self: &Arc<Self>,
        requester: &Owner,
        anonymous: Option<&str>,
    ) -> Option<(Admission, String)> {
        let mut registry = self.registry();
        let victim = match anonymous {
            Some(ip) => registry.anonymous_victim(ip, self.anonymous.per_address),
            None => registry.victim(requester, self.max),
        }?;
        registry.sessions.remove(&victim);
        if !registry.has_room(self.max, anonymous, self.anonymous) {
            // Cannot happen (the victim freed a place of the requester's kind); stay correct.
            return None;
        }
        Some((self.reserve(&mut registry, anonymous), victim))
    }

    /// The session rmcp opened for `reservation`: its place becomes the session's entry.
    pub fn record(&self, mut reservation: Reservation, id: &str, owner: Owner) {
        let mut registry = self.registry();
        release(&mut registry, reservation.anonymous.as_deref());
        registry.sessions.insert(
            id.to_string(),
            Entry {
                anonymous_from: reservation.anonymous.take(),
                owner,
                in_flight: 0,
                last_used: Instant::now(),
                recorded: Instant::now(),
            },
        );
        reservation.used = true;
    }

    pub fn forget(&self, id: &str) {
        self.registry().sessions.remove(id);
    }

    /// Checks (and for unclaimed sessions, claims) access for `principal`; while allowed, the
    /// session is in use until the returned guard drops.
    pub fn access(self: &Arc<Self>, id: &str, principal: Option<&str>) -> Access {
        let mut registry = self.registry();
        let Some(entry) = registry.sessions.get_mut(id) else {
            return Access::Allowed(None);
        };
        match (&entry.owner, principal) {
            (Owner::Principal(owner), Some(p)) if owner == p => {}
            (Owner::Principal(_), _) => return Access::NotFound,
            (Owner::Unclaimed, None) => {}
            (Owner::Unclaimed, Some(p)) => {
                entry.owner = Owner::Principal(p.to_string());
                entry.anonymous_from = None;
            }
        }
        entry.in_flight += 1;
        entry.last_used = Instant::now();
        Access::Allowed(Some(InUse {
            sessions: self.clone(),
            id: id.to_string(),
        }))
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

    fn reserve(s: &Arc<Sessions>, anonymous: Option<&str>) -> Option<Reservation> {
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
            .map(|i| reserve(&s, None).unwrap_or_else(|| panic!("refused at {i}")))
            .collect();
        assert!(reserve(&s, None).is_none());
        // rmcp opens them one by one while the others are still in flight.
        for (i, r) in reservations.into_iter().enumerate() {
            s.record(r, &format!("s{i}"), Owner::Principal("apikey:a".into()));
            assert_eq!(s.live(), i + 1);
            assert!(reserve(&s, None).is_none(), "{i}");
        }
        assert_eq!(s.registry().reserved, 0);
    }

    #[test]
    fn a_failed_initialize_gives_its_place_back() {
        let s = sessions(1);
        drop(reserve(&s, None));
        let r = reserve(&s, None).expect("the place is free again");
        s.record(r, "s", Owner::Unclaimed);
        assert_eq!(s.live(), 1);
        s.forget("s");
        assert_eq!(s.live(), 0);
    }

    fn open(s: &Arc<Sessions>, id: &str, owner: &str) {
        let r = reserve(s, None).expect("room");
        s.record(r, id, Owner::Principal(owner.into()));
    }

    fn victim(s: &Arc<Sessions>, requester: &str) -> Option<String> {
        s.registry()
            .victim(&Owner::Principal(requester.into()), s.max)
    }

    /// Vanished clients' sessions make room at the cap, least recently used first; busy ones
    /// never do.
    #[test]
    fn at_the_cap_the_least_recently_used_idle_session_makes_room() {
        let s = sessions(3);
        open(&s, "a1", "a");
        open(&s, "a2", "a");
        open(&s, "a3", "a");
        let busy = match s.access("a1", Some("a")) {
            Access::Allowed(Some(guard)) => guard,
            _ => panic!("a1 is a's"),
        };
        // a1 is in use, a2 is the least recently used idle one.
        assert_eq!(victim(&s, "a").as_deref(), Some("a2"));
        drop(s.access("a2", Some("a")));
        assert_eq!(victim(&s, "a").as_deref(), Some("a3"));
        drop(s.access("a3", Some("a")));
        drop(busy);
        assert_eq!(victim(&s, "a").as_deref(), Some("a2"), "a1 used last");

        let (admitted, evicted) = s
            .reserve_by_evicting(&Owner::Principal("b".into()), None)
            .expect("room made");
        assert!(matches!(admitted, Admission::Admitted(_)));
        assert_eq!(evicted, "a2");
        assert_eq!(s.live(), 2);
        assert!(reserve(&s, None).is_none(), "the freed place is taken");
    }

    /// During a burst, a principal's admitted places are not recorded yet, so it looks below its
    /// share: it still replaces its own idle sessions rather than being refused.
    #[test]
    fn below_its_share_with_no_one_above_it_a_principal_replaces_its_own() {
        let s = sessions(4);
        open(&s, "a1", "a");
        open(&s, "a2", "a");
        open(&s, "b1", "b");
        open(&s, "b2", "b");
        s.forget("a1"); // a1 was evicted for a place not recorded yet: a holds 1 of its 2.
        assert_eq!(victim(&s, "a").as_deref(), Some("a2"));
    }

    /// A noisy principal cannot push a quiet one out; at its share it gives up its own.
    #[test]
    fn each_principal_keeps_its_fair_share() {
        let s = sessions(4);
        open(&s, "q1", "quiet");
        open(&s, "n1", "noisy");
        open(&s, "n2", "noisy");
        open(&s, "n3", "noisy");
        // Two principals: a share of 2 each. noisy holds 3: it evicts its own.
        assert_eq!(victim(&s, "noisy").map(|v| v.starts_with('n')), Some(true));
        // quiet is under its share: it takes one of noisy's, never its own.
        assert_eq!(victim(&s, "quiet").map(|v| v.starts_with('n')), Some(true));
        // A third principal (share 2 of 4, rounded up) may take only from noisy (3 > 2).
        assert_eq!(
            victim(&s, "newcomer").map(|v| v.starts_with('n')),
            Some(true)
        );
        s.forget("n1");
        s.forget("n2");
        open(&s, "q2", "quiet");
        open(&s, "q3", "quiet");
        // quiet 3, noisy 1: noisy is below its share and quiet above it.
        assert_eq!(victim(&s, "noisy").map(|v| v.starts_with('q')), Some(true));
    }

    #[test]
    fn anonymous_sessions_share_a_quarter_and_never_crowd_out_the_authenticated() {
        let s = sessions(8);
        let anon: Vec<Reservation> = ["ip:a", "ip:b"]
            .into_iter()
            .filter_map(|ip| reserve(&s, Some(ip)))
            .collect();
        assert_eq!(anon.len(), 2);
        assert!(reserve(&s, Some("ip:c")).is_none(), "2 = 8/4");
        let r = reserve(&s, None).expect("authenticated");
        s.record(r, "auth", Owner::Principal("sub:x".into()));
        for (i, r) in anon.into_iter().enumerate() {
            s.record(r, &format!("anon{i}"), Owner::Unclaimed);
        }
        assert!(reserve(&s, Some("ip:c")).is_none());
        assert!(matches!(
            s.access("anon0", Some("sub:y")),
            Access::Allowed(Some(_))
        ));
        assert!(matches!(s.access("anon0", Some("sub:z")), Access::NotFound));
        // Claimed, anon0 no longer counts against the anonymous share.
        assert!(reserve(&s, Some("ip:c")).is_some());
    }

    /// One address holds at most its part of the anonymous places; at it, its own idle
    /// sessions make room, never another address's.
    #[test]
    fn one_address_cannot_take_every_anonymous_place() {
        let s = sessions(64); // 16 anonymous, 4 per address
        for i in 0..4 {
            let r = reserve(&s, Some("ip:flood")).expect("under the address's limit");
            s.record(r, &format!("flood{i}"), Owner::Unclaimed);
        }
        assert!(reserve(&s, Some("ip:flood")).is_none());
        let r = reserve(&s, Some("ip:quiet")).expect("another address");
        s.record(r, "quiet", Owner::Unclaimed);
        let registry = s.registry();
        let victim = registry.anonymous_victim("ip:flood", 4).unwrap();
        assert!(victim.starts_with("flood"), "{victim}");
        assert_eq!(
            registry.anonymous_victim("ip:other", 4).as_deref(),
            Some("flood0")
        );
        drop(registry);
        // Claimed by a principal, a session no longer counts for its address.
        drop(s.access("flood0", Some("sub:x")));
        assert!(reserve(&s, Some("ip:flood")).is_some());
    }
}
