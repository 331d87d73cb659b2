//! Which Secret keys a spec uses, and what the dereference phase found in them (and of the
//! ConfigMap or PersistentVolumeClaim of `spec.files`).
//!
//! The controller fetches (and watches) exactly the Secrets listed by [`secret_references`];
//! [`Dereferenced`] is what it hands to `validate`: per Secret, its keys with a SHA-256 and the
//! length of their data, and which entries the server would refuse were the value an API-key
//! list. The values themselves never leave the dereference phase: hashes are enough to roll the
//! pods on rotation, lengths and entry numbers enough to catch an empty or short secret.

use std::collections::{BTreeMap, BTreeSet};

use converse_config::ApiKey;
use converse_config::vars::MCP_API_KEYS;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
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
    /// The value is an `MCP_API_KEYS` list, whose every entry must be a usable key
    /// ([`KeyDigest::api_keys`]).
    pub api_key_list: bool,
}

impl SecretReference {
    fn new(field: impl Into<String>, secret: &SecretKeyRef, min_bytes: usize) -> Self {
        SecretReference {
            field: field.into(),
            secret: secret.clone(),
            min_bytes,
            api_key_list: false,
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
            refs.push(SecretReference {
                api_key_list: k.var == MCP_API_KEYS,
                ..SecretReference::new(k.field, k.secret, k.min_bytes)
            });
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
    /// The data read as an `MCP_API_KEYS` list. Worked out for every key, since the digest does
    /// not know how the spec uses it (cheap: a Secret holds at most 1 MiB); only keys referenced
    /// as API keys are checked against it.
    pub api_keys: ApiKeyEntries,
}

impl KeyDigest {
    pub fn of(data: &[u8]) -> Self {
        KeyDigest {
            sha256: sha256_hex(data),
            len: data.len(),
            api_keys: ApiKeyEntries::of(&String::from_utf8_lossy(data)),
        }
    }
}

/// What the server would make of a value as its `MCP_API_KEYS`, without the value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiKeyEntries {
    /// Number of entries, split as the server splits them (commas or line breaks, trimmed, blank
    /// ones dropped).
    pub count: usize,
    /// The entries the server refuses: 1-based position and the rule broken, in the server
    /// parser's words (`ApiKey::parse`, whose messages never contain the entry).
    pub refused: Vec<RefusedEntry>,
}

/// One API-key entry the server refuses. Never the entry itself, nor its length: status is
/// readable by more people than the Secret, and a length narrows a guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedEntry {
    /// 1-based position in the list.
    pub entry: usize,
    pub rule: String,
}

impl ApiKeyEntries {
    fn of(value: &str) -> Self {
        let entries = converse_config::parse::list_lines(value);
        let refused = entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                ApiKey::parse(e).err().map(|rule| RefusedEntry {
                    entry: i + 1,
                    rule: rule.to_string(),
                })
            })
            .collect();
        ApiKeyEntries {
            count: entries.len(),
            refused,
        }
    }
}

/// What the dereference phase found: the referenced Secrets that exist, with a digest of each
/// key, and the ConfigMap or PersistentVolumeClaim of `spec.files` if it exists. A referenced
/// object that is absent here does not exist, unless its kind is listed in `unreadable`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dereferenced {
    pub secrets: BTreeMap<String, BTreeMap<String, KeyDigest>>,
    /// ConfigMaps that exist: name → their keys (data and binaryData). Only the keys: the
    /// contents are the kubelet's to mount, and edits must not roll the pods.
    pub config_maps: BTreeMap<String, BTreeSet<String>>,
    /// PersistentVolumeClaims that exist: name → their access modes (spec.accessModes).
    pub claims: BTreeMap<String, Vec<String>>,
    /// Kinds the operator may not read (RBAC refused the get): kind → the API server's message.
    /// References to them are not checked; the pod's events will tell instead.
    pub unreadable: BTreeMap<String, String>,
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

    /// Record a ConfigMap from the API server: its name and keys.
    pub fn with_config_map_object(self, config_map: &ConfigMap) -> Self {
        let Some(name) = &config_map.metadata.name else {
            return self;
        };
        let keys = config_map
            .data
            .iter()
            .flat_map(|d| d.keys())
            .chain(config_map.binary_data.iter().flat_map(|d| d.keys()))
            .cloned();
        self.with_config_map(name, keys)
    }

    /// Record ConfigMap `name` with the given keys (tests and fixtures).
    pub fn with_config_map<K: AsRef<str>>(
        mut self,
        name: &str,
        keys: impl IntoIterator<Item = K>,
    ) -> Self {
        let keys = keys.into_iter().map(|k| k.as_ref().to_owned()).collect();
        self.config_maps.insert(name.to_owned(), keys);
        self
    }

    /// Record a PersistentVolumeClaim from the API server: its name and access modes.
    pub fn with_claim_object(self, claim: &PersistentVolumeClaim) -> Self {
        let Some(name) = &claim.metadata.name else {
            return self;
        };
        let modes = claim
            .spec
            .as_ref()
            .and_then(|s| s.access_modes.clone())
            .unwrap_or_default();
        self.with_claim(name, modes)
    }

    /// Record PersistentVolumeClaim `name` with the given access modes (tests and fixtures).
    pub fn with_claim<M: AsRef<str>>(
        mut self,
        name: &str,
        access_modes: impl IntoIterator<Item = M>,
    ) -> Self {
        let modes = access_modes
            .into_iter()
            .map(|m| m.as_ref().to_owned())
            .collect();
        self.claims.insert(name.to_owned(), modes);
        self
    }

    /// Record that objects of `kind` may not be read (RBAC).
    pub fn with_unreadable(mut self, kind: &str, message: impl Into<String>) -> Self {
        self.unreadable.insert(kind.to_owned(), message.into());
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "k0123456789abcdef0123456789abcde";

    #[test]
    fn api_key_entries_are_split_and_checked_as_the_server_does() {
        let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let value = format!("{KEY}\n short-key , sha256:{hash}\r\n\nsha256:abcd,\n");
        let entries = KeyDigest::of(value.as_bytes()).api_keys;
        assert_eq!(entries.count, 4);
        let refused: Vec<usize> = entries.refused.iter().map(|r| r.entry).collect();
        assert_eq!(refused, [2, 4]);
        assert!(
            entries.refused[0].rule.contains("at least 32"),
            "{entries:?}"
        );
        for r in &entries.refused {
            assert!(
                !r.rule.contains("short-key") && !r.rule.contains("abcd"),
                "{r:?}"
            );
            assert!(!r.rule.contains('9'), "no length: {r:?}");
        }
        assert_eq!(KeyDigest::of(b" ,\n").api_keys, ApiKeyEntries::default());
    }

    #[test]
    fn config_map_keys_come_from_data_and_binary_data() {
        use k8s_openapi::ByteString;
        let cm = ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some("docs".to_owned()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([("a.md".to_owned(), "# A".to_owned())])),
            binary_data: Some(BTreeMap::from([(
                "logo.png".to_owned(),
                ByteString(vec![0x89, b'P']),
            )])),
            ..ConfigMap::default()
        };
        let d = Dereferenced::default().with_config_map_object(&cm);
        let keys: Vec<&str> = d.config_maps["docs"].iter().map(String::as_str).collect();
        assert_eq!(keys, ["a.md", "logo.png"]);
    }

    #[test]
    fn only_the_api_keys_reference_is_an_api_key_list() {
        let spec: ConverseServerSpec = serde_norway::from_str(
            "{providers: {openai: {apiKeySecretRef: {name: llm, key: openai}}}, \
             auth: {strategy: apiKey, apiKey: {secretRef: {name: mcp, key: keys}}}}",
        )
        .unwrap();
        let lists: Vec<(String, bool)> = secret_references(&spec)
            .into_iter()
            .map(|r| (r.field, r.api_key_list))
            .collect();
        assert_eq!(
            lists,
            [
                ("providers.openai.apiKeySecretRef".to_owned(), false),
                ("auth.apiKey.secretRef".to_owned(), true)
            ]
        );
    }
}
