//! Which Secret keys a spec uses, and what the dereference phase found in them.
//!
//! The controller fetches (and watches) exactly the Secrets listed by [`secret_references`];
//! [`Dereferenced`] is what it hands to `validate`: per Secret, its keys with a SHA-256 and the
//! length of their data. The values themselves never leave the dereference phase: hashes are
//! enough to roll the pods on rotation, lengths enough to catch an empty or short secret.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use sha2::{Digest, Sha256};

use crate::crd::{ConversationStore, ConverseServerSpec, SecretKeyRef};

/// One use of a Secret key by the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretReference {
    /// Path of the referencing field under `spec.`, for messages.
    pub field: String,
    pub secret: SecretKeyRef,
    /// Fewest bytes the value must have (1: not empty).
    pub min_bytes: usize,
}

impl SecretReference {
    fn new(field: impl Into<String>, secret: &SecretKeyRef, min_bytes: usize) -> Self {
        SecretReference {
            field: field.into(),
            secret: secret.clone(),
            min_bytes,
        }
    }
}

/// Every Secret key the spec uses, in a stable order. The auth keys are
/// [`Auth::secret_keys`](crate::crd::Auth::secret_keys), the list the environment writes too
/// (only the selected strategy's); a Redis URL with a Memory store is ignored.
pub fn secret_references(spec: &ConverseServerSpec) -> Vec<SecretReference> {
    let mut refs = Vec::new();
    for (row, key_ref, _) in spec.providers.builtin() {
        refs.push(SecretReference::new(
            format!("providers.{}.apiKeySecretRef", row.crd_field),
            key_ref,
            1,
        ));
    }
    for c in &spec.providers.custom {
        if let Some(r) = &c.api_key_secret_ref {
            refs.push(SecretReference::new(
                format!("providers.custom[{}].apiKeySecretRef", c.name),
                r,
                1,
            ));
        }
    }
    if let Some(auth) = &spec.auth {
        for k in auth.secret_keys() {
            refs.push(SecretReference::new(k.field, k.secret, k.min_bytes));
        }
    }
    if let Some(c) = &spec.conversations
        && c.store == Some(ConversationStore::Redis)
        && let Some(r) = &c.redis
    {
        refs.push(SecretReference::new(
            "conversations.redis.urlSecretRef",
            &r.url_secret_ref,
            1,
        ));
    }
    refs
}

/// The names of the Secrets the spec uses, deduplicated and sorted (what to fetch and watch).
pub fn secret_names(spec: &ConverseServerSpec) -> Vec<String> {
    let mut names: Vec<String> = secret_references(spec)
        .into_iter()
        .map(|r| r.secret.name)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A digest of one key's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDigest {
    /// Lower-case hex SHA-256 of the data.
    pub sha256: String,
    /// Length of the data in bytes.
    pub len: usize,
}

impl KeyDigest {
    pub fn of(data: &[u8]) -> Self {
        KeyDigest {
            sha256: sha256_hex(data),
            len: data.len(),
        }
    }
}

/// What the dereference phase found: the referenced Secrets that exist, with a digest of each
/// key. A referenced Secret that is absent here does not exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dereferenced {
    pub secrets: BTreeMap<String, BTreeMap<String, KeyDigest>>,
}

impl Dereferenced {
    /// Digest the `data` of Secrets read from the API server.
    pub fn from_secrets<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        let mut out = Dereferenced::default();
        for secret in secrets {
            let Some(name) = &secret.metadata.name else {
                continue;
            };
            let keys = secret
                .data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), KeyDigest::of(&v.0)))
                .collect();
            out.secrets.insert(name.clone(), keys);
        }
        out
    }

    /// Record Secret `name` with the given keys and values (tests and fixtures).
    pub fn with_secret<K: AsRef<str>, V: AsRef<[u8]>>(
        mut self,
        name: &str,
        data: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let keys = data
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), KeyDigest::of(v.as_ref())))
            .collect();
        self.secrets.insert(name.to_owned(), keys);
        self
    }

    /// The digest of `r`, if the Secret and key exist.
    pub fn digest(&self, r: &SecretKeyRef) -> Option<&KeyDigest> {
        self.secrets.get(&r.name).and_then(|keys| keys.get(&r.key))
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
