//! Logins started at `/oauth/authorize` and not finished yet: each `state` is accepted once,
//! within [`STATE_TTL`], and only from the browser that started it (login CSRF: without the
//! binding, an attacker could send a victim's browser to the callback with the attacker's own
//! `state` and code, and the victim would end up logged in as the attacker).
//!
//! Bounded: at most [`MAX_PENDING`] at once, the oldest dropped first in O(1) (states expire in
//! the order they were made, so a queue in creation order is also the expiry order).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

/// A login must finish within this time.
pub const STATE_TTL: Duration = Duration::from_secs(600);
/// Pending logins kept at once.
pub const MAX_PENDING: usize = 10_000;

#[derive(Debug)]
struct Pending {
    verifier: String,
    /// The value of the login cookie set on the browser that started the login.
    browser: String,
    created: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    by_state: HashMap<String, Pending>,
    /// States in creation order; may still name states already taken (skipped when popped).
    order: VecDeque<(String, Instant)>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Unknown, expired or already used.
    UnknownState,
    /// Known, but this browser did not start it (the state is spent all the same).
    OtherBrowser,
}

#[derive(Debug)]
pub struct PendingLogins {
    inner: Mutex<Inner>,
    max: usize,
}

impl Default for PendingLogins {
    fn default() -> Self {
        Self::with_capacity(MAX_PENDING)
    }
}

impl PendingLogins {
    pub fn with_capacity(max: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max,
        }
    }

    pub fn insert(&self, state: String, verifier: String, browser: String) {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        // Drop expired entries and, at the bound, the oldest live ones; the queue never holds
        // more than twice the bound (taken states linger in it until popped).
        while let Some((oldest, created)) = inner.order.front() {
            let expired = now.duration_since(*created) >= STATE_TTL;
            if !(expired || inner.by_state.len() >= self.max || inner.order.len() >= 2 * self.max) {
                break;
            }
            let oldest = oldest.clone();
            inner.order.pop_front();
            inner.by_state.remove(&oldest);
        }
        inner.order.push_back((state.clone(), now));
        inner.by_state.insert(
            state,
            Pending {
                verifier,
                browser,
                created: now,
            },
        );
    }

    /// The PKCE verifier of `state`, spending it, if `browser` (the login cookie's value) is
    /// the browser that started it.
    pub fn take(&self, state: &str, browser: Option<&str>) -> Result<String, Refused> {
        let entry = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_state
            .remove(state)
            .filter(|p| p.created.elapsed() < STATE_TTL)
            .ok_or(Refused::UnknownState)?;
        let same_browser =
            browser.is_some_and(|b| bool::from(b.as_bytes().ct_eq(entry.browser.as_bytes())));
        if same_browser {
            Ok(entry.verifier)
        } else {
            Err(Refused::OtherBrowser)
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap().by_state.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_taken_once_and_only_by_its_browser() {
        let p = PendingLogins::default();
        p.insert("s1".into(), "v1".into(), "b1".into());
        p.insert("s2".into(), "v2".into(), "b2".into());
        assert_eq!(p.take("s1", Some("b1")), Ok("v1".into()));
        assert_eq!(p.take("s1", Some("b1")), Err(Refused::UnknownState));
        assert_eq!(p.take("s2", Some("b1")), Err(Refused::OtherBrowser));
        assert_eq!(
            p.take("s2", Some("b2")),
            Err(Refused::UnknownState),
            "spent"
        );
        p.insert("s3".into(), "v3".into(), "b3".into());
        assert_eq!(p.take("s3", None), Err(Refused::OtherBrowser));
        assert_eq!(p.take("nope", Some("b3")), Err(Refused::UnknownState));
    }

    #[test]
    fn at_the_bound_the_oldest_goes() {
        let p = PendingLogins::with_capacity(3);
        for i in 0..5 {
            p.insert(format!("s{i}"), format!("v{i}"), "b".into());
        }
        assert_eq!(p.len(), 3);
        assert_eq!(p.take("s1", Some("b")), Err(Refused::UnknownState));
        assert_eq!(p.take("s2", Some("b")), Ok("v2".into()));
        // Taken states do not let the queue grow without bound.
        for i in 5..100 {
            p.insert(format!("s{i}"), "v".into(), "b".into());
            let _ = p.take(&format!("s{i}"), Some("b"));
        }
        assert!(p.inner.lock().unwrap().order.len() <= 6);
    }
}
