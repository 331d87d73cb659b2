//! A remote JWKS: fetched on first use, cached, and refetched when a token names
//! a key id we do not know (the IdP rotated its keys) — but at most once per
//! [`MIN_REFRESH_INTERVAL`], so a flood of tokens with random `kid`s cannot turn
//! this server into a load generator against the IdP. A failed fetch is not retried
//! within that interval either ([`RecentFailure`]): a failing IdP is not hammered
//! once per request.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};

pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Keys are refetched after this long even when every `kid` is known, so a key
/// the IdP withdrew stops being trusted.
pub const MAX_AGE: Duration = Duration::from_secs(3600);

#[derive(Clone)]
pub struct VerificationKey {
    pub key: DecodingKey,
    /// The algorithm the JWK declares, if it does.
    pub algorithm: Option<Algorithm>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("identity provider unreachable: {0}")]
    Fetch(String),
    #[error("signing key {0:?} is not in the identity provider's JWKS")]
    UnknownKey(Option<String>),
}

/// The last failure of a fetch, remembered for an interval: callers within it get the same
/// error without a new request to the identity provider.
#[derive(Debug)]
pub struct RecentFailure {
    last: std::sync::Mutex<Option<(Instant, String)>>,
    interval: Duration,
}

impl RecentFailure {
    pub fn new(interval: Duration) -> Self {
        Self {
            last: std::sync::Mutex::new(None),
            interval,
        }
    }

    /// The error of a failure less than the interval ago.
    pub fn recent(&self) -> Option<String> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|(at, _)| at.elapsed() < self.interval)
            .map(|(at, error)| {
                let wait = self.interval.saturating_sub(at.elapsed()).as_secs().max(1);
                format!("{error} (retried in {wait}s)")
            })
    }

    /// Records the outcome of an attempt.
    pub fn record<T, E: ToString>(&self, result: &Result<T, E>) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = result
            .as_ref()
            .err()
            .map(|e| (Instant::now(), e.to_string()));
    }
}

#[derive(Default)]
struct Cached {
    keys: HashMap<Option<String>, VerificationKey>,
    fetched: Option<Instant>,
}

pub struct JwksCache {
    http: reqwest::Client,
    cached: RwLock<Cached>,
    /// Serialises refreshes; holds the time of the last attempt.
    refresh: Mutex<Option<Instant>>,
    min_interval: Duration,
    failure: RecentFailure,
    /// How many times the JWKS was fetched (observable in tests and metrics).
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache").finish_non_exhaustive()
    }
}

fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    jwk.common
        .key_algorithm
        .and_then(|a| a.to_string().parse::<Algorithm>().ok())
}

impl JwksCache {
    pub fn new(http: reqwest::Client, min_interval: Duration) -> Self {
        Self {
            http,
            cached: RwLock::new(Cached::default()),
            refresh: Mutex::new(None),
            min_interval,
            failure: RecentFailure::new(min_interval),
            fetches: Default::default(),
        }
    }

    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The key for `kid`, refreshing the set once (rate-limited) when it is unknown.
    pub async fn key(&self, url: &str, kid: Option<&str>) -> Result<VerificationKey, JwksError> {
        let kid = kid.map(str::to_string);
        let stale = self
            .cached
            .read()
            .await
            .fetched
            .is_some_and(|t| t.elapsed() > MAX_AGE);
        if stale {
            let _serialised = self.refresh.lock().await;
            if self
                .cached
                .read()
                .await
                .fetched
                .is_some_and(|t| t.elapsed() > MAX_AGE)
                && let Err(e) = self.fetch(url).await
            {
                // Keep the old keys rather than lock everyone out while the IdP is
                // down, and retry after the refresh interval, not on every request.
                tracing::warn!(error = %e, "could not refresh the JWKS; keeping the cached keys");
                if let Some(t) =
                    Instant::now().checked_sub(MAX_AGE.saturating_sub(self.min_interval))
                {
                    self.cached.write().await.fetched = Some(t);
                }
            }
        }
        if let Some(key) = self.lookup(&kid).await {
            return Ok(key);
        }
        {
            let mut last = self.refresh.lock().await;
            // Another task may have refreshed while we waited for the lock.
            if let Some(key) = self.lookup(&kid).await {
                return Ok(key);
            }
            // The first fetch is free; after it, a refetch for an unknown kid
            // happens at most once per interval.
            let fetched_once = self.cached.read().await.fetched.is_some();
            if fetched_once {
                if last.is_some_and(|t| t.elapsed() < self.min_interval) {
                    return Err(JwksError::UnknownKey(kid));
                }
                *last = Some(Instant::now());
            }
            self.fetch(url).await?;
        }
        self.lookup(&kid).await.ok_or(JwksError::UnknownKey(kid))
    }

    async fn lookup(&self, kid: &Option<String>) -> Option<VerificationKey> {
        let cached = self.cached.read().await;
        cached.keys.get(kid).cloned().or_else(|| {
            // A token without kid may use the only key of a one-key set.
            (kid.is_none() && cached.keys.len() == 1)
                .then(|| cached.keys.values().next().cloned())
                .flatten()
        })
    }

    /// Fetches the set, unless the last attempt failed less than the interval ago.
    async fn fetch(&self, url: &str) -> Result<(), JwksError> {
        if let Some(error) = self.failure.recent() {
            return Err(JwksError::Fetch(error));
        }
        let result = self.fetch_now(url).await;
        self.failure.record(&result);
        result
    }

    async fn fetch_now(&self, url: &str) -> Result<(), JwksError> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let set: JwkSet = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| JwksError::Fetch(e.without_url().to_string()))?
            .json()
            .await
            .map_err(|e| {
                JwksError::Fetch(format!("JWKS is not valid JSON: {}", e.without_url()))
            })?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            // Encryption keys and unsupported key types are skipped, not fatal.
            if matches!(
                jwk.common.public_key_use,
                Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
            ) {
                continue;
            }
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(
                    jwk.common.key_id.clone(),
                    VerificationKey {
                        key,
                        algorithm: algorithm_of(jwk),
                    },
                );
            }
        }
        let mut cached = self.cached.write().await;
        cached.keys = keys;
        cached.fetched = Some(Instant::now());
        Ok(())
    }
}
