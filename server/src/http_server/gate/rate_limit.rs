//! `HTTP_RATE_LIMIT_*`: at most `max_requests` per `window` for each principal
//! (or client IP when unauthenticated), as a GCRA from `governor` — smooth, O(1)
//! per request, and with idle keys forgotten periodically so memory stays bounded.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};

use super::client_ip::ClientIp;
use super::{owner_key, refusal, with_retry_after};
use crate::principal::Principal;

/// The layer: 429 with `Retry-After` when the caller is over its budget; a no-op when rate
/// limiting is off (`None`).
pub async fn check(
    State(limiter): State<Option<Arc<Limiter>>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(limiter) = &limiter {
        let key = match request.extensions().get::<Principal>() {
            Some(principal) => owner_key(principal),
            None => ClientIp::bucket(request.extensions()),
        };
        if let Err(wait) = limiter.check(&key) {
            return with_retry_after(
                refusal(StatusCode::TOO_MANY_REQUESTS, -32000, "rate limit exceeded"),
                wait,
            );
        }
    }
    next.run(request).await
}

pub struct Limiter {
    inner:
        RateLimiter<String, governor::state::keyed::DefaultKeyedStateStore<String>, DefaultClock>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("keys", &self.inner.len())
            .finish()
    }
}

impl Limiter {
    pub fn new(window: Duration, max_requests: u32) -> Option<Self> {
        let burst = NonZeroU32::new(max_requests)?;
        let period = window
            .checked_div(max_requests)?
            .max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)?.allow_burst(burst);
        Some(Self {
            inner: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        })
    }

    /// `Err(retry_after)` when the key is over its limit.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.inner.check_key(&key.to_string()).map_err(|not_until| {
            not_until
                .wait_time_from(self.clock.now())
                .max(Duration::from_secs(1))
        })
    }

    /// Forgets keys whose bucket is full again (idle clients).
    pub fn forget_idle(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }

    pub fn tracked_keys(&self) -> usize {
        self.inner.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_burst_then_refuses_with_a_wait() {
        let l = Limiter::new(Duration::from_secs(60), 3).unwrap();
        for _ in 0..3 {
            assert!(l.check("a").is_ok());
        }
        let wait = l.check("a").unwrap_err();
        assert!(
            wait >= Duration::from_secs(1) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(l.check("b").is_ok(), "keys are independent");
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let l = Limiter::new(Duration::from_millis(10), 1).unwrap();
        l.check("a").unwrap();
        std::thread::sleep(Duration::from_millis(30));
        l.forget_idle();
        assert_eq!(l.tracked_keys(), 0);
    }
}
