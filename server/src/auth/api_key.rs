//! `api_key`: keys from `X-API-Key` or `Authorization: Bearer`, compared in
//! constant time against SHA-256 digests (plain keys are hashed at start-up, so
//! every comparison has the same shape and no plain key stays in a comparison path).

use axum::http::HeaderMap;
use converse_config::ApiKey;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthError, bearer_token};
use crate::principal::Principal;

#[derive(Debug)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

/// A stable, non-secret id for logs, rate limits and session ownership: the first 128 bits of
/// the digest in hex. Long enough that two keys never share an id (32 bits would make
/// collisions — one key's sessions and budget handed to another — a birthday away).
pub fn key_id(digest: &[u8; 32]) -> String {
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl ApiKeys {
    pub fn new(keys: &[ApiKey]) -> Self {
        let digests = keys
            .iter()
            .map(|k| match k {
                ApiKey::Plain(secret) => digest(secret.expose_secret().as_bytes()),
                ApiKey::Sha256(d) => *d,
            })
            .collect();
        Self { digests }
    }

    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Principal>, AuthError> {
        let presented = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .or_else(|| bearer_token(headers));
        let Some(key) = presented else {
            return Ok(None);
        };
        let wanted = digest(key.as_bytes());
        // Compare against every key without stopping early, so timing does not
        // reveal which key (if any) matched.
        let mut matched = subtle::Choice::from(0);
        for d in &self.digests {
            matched |= d.ct_eq(&wanted);
        }
        if bool::from(matched) {
            Ok(Some(Principal {
                id: key_id(&wanted),
                strategy: "api_key",
                scopes: Vec::new(),
            }))
        } else {
            Err(AuthError::Invalid("unknown API key".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn keys() -> ApiKeys {
        let hashed = digest(b"second-key");
        // (The 32-character minimum is the config crate's rule; these are built directly.)
        ApiKeys::new(&[
            ApiKey::Plain(SecretString::from("first-key")),
            ApiKey::Sha256(hashed),
        ])
    }

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        h
    }

    #[test]
    fn plain_and_hashed_keys_from_either_header() {
        let k = keys();
        let p = k
            .authenticate(&headers("x-api-key", "first-key"))
            .unwrap()
            .unwrap();
        assert_eq!(p.id, key_id(&digest(b"first-key")));
        assert!(
            k.authenticate(&headers("authorization", "Bearer second-key"))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn wrong_and_missing_keys() {
        let k = keys();
        assert_eq!(
            k.authenticate(&headers("x-api-key", "nope")),
            Err(AuthError::Invalid("unknown API key".into()))
        );
        assert_eq!(k.authenticate(&HeaderMap::new()), Ok(None));
    }

    #[test]
    fn key_ids_do_not_reveal_the_key() {
        let id = key_id(&digest(b"first-key"));
        assert_eq!(id.len(), 32);
        assert!(!id.contains("first"));
    }
}
