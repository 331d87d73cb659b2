//! Which Secret keys a spec uses, which Secrets and ConfigMaps the pods' environment reads
//! (`spec.env[].valueFrom`, `spec.envFrom`), and what the dereference phase found in them (and of
//! the ConfigMap or PersistentVolumeClaim of `spec.files`).
//!
//! The controller fetches (and watches) exactly the Secrets listed by [`secret_names`] and the
//! ConfigMaps listed by [`config_map_names`]; [`Dereferenced`] is what it hands to `validate`: per
//! Secret, its keys with a SHA-256 and the length of their data, and which entries the server
//! would refuse were the value an API-key list; per ConfigMap, its keys with a SHA-256. The values
//! themselves never leave the dereference phase: hashes are enough to roll the pods on rotation,
//! lengths and entry numbers enough to catch an empty or short secret.

use std::collections::BTreeMap;

use converse_config::ApiKey;
use converse_config::vars::MCP_API_KEYS;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
use sha2::{Digest, Sha256};

use crate::crd::{ConversationStore, ConverseServerSpec, FilesSource, SecretKeyRef};

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

/// The kind of object the pods' environment reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EnvSourceKind {
    Secret,
    ConfigMap,
}

impl EnvSourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EnvSourceKind::Secret => "Secret",
            EnvSourceKind::ConfigMap => "ConfigMap",
        }
    }
}

/// An object, or one key of it, that the server container reads through `spec.env[].valueFrom`
/// or `spec.envFrom`. The kubelet resolves these when a container starts, so a change reaches
/// the server only in new pods: their digests go into the config hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvReference {
    /// Path of the referencing field under `spec.`, for messages.
    pub field: String,
    pub kind: EnvSourceKind,
    pub name: String,
    /// The key (`valueFrom`); `None`: every key of the object (`envFrom`).
    pub key: Option<String>,
    /// `optional: true`: the kubelet starts the container without it.
    pub optional: bool,
}

/// Every Secret and ConfigMap the spec's `env` and `envFrom` read, in spec order. Entries without
/// a name are left out (the API server refuses such a Deployment anyway).
pub fn env_references(spec: &ConverseServerSpec) -> Vec<EnvReference> {
    let mut refs = Vec::new();
    let mut push = |field: String, kind, name: &str, key: Option<&str>, optional: Option<bool>| {
        if !name.is_empty() {
            refs.push(EnvReference {
                field,
                kind,
                name: name.to_owned(),
                key: key.map(str::to_owned),
                optional: optional.unwrap_or(false),
            });
        }
    };
    for e in &spec.env {
        let Some(from) = &e.value_from else { continue };
        if let Some(r) = &from.secret_key_ref {
            let field = format!("env[{}].valueFrom.secretKeyRef", e.name);
            push(
                field,
                EnvSourceKind::Secret,
                &r.name,
                Some(&r.key),
                r.optional,
            );
        }
        if let Some(r) = &from.config_map_key_ref {
            let field = format!("env[{}].valueFrom.configMapKeyRef", e.name);
            push(
                field,
                EnvSourceKind::ConfigMap,
                &r.name,
                Some(&r.key),
                r.optional,
            );
        }
    }
    for (i, e) in spec.env_from.iter().enumerate() {
        if let Some(r) = &e.secret_ref {
            let field = format!("envFrom[{i}].secretRef");
            push(field, EnvSourceKind::Secret, &r.name, None, r.optional);
        }
        if let Some(r) = &e.config_map_ref {
            let field = format!("envFrom[{i}].configMapRef");
            push(field, EnvSourceKind::ConfigMap, &r.name, None, r.optional);
        }
    }
    refs
}

/// The names of the Secrets the spec uses, its own references and the environment's,
/// deduplicated and sorted (what to fetch and watch).
pub fn secret_names(spec: &ConverseServerSpec) -> Vec<String> {
    let own = secret_references(spec).into_iter().map(|r| r.secret.name);
    let env = env_references(spec)
        .into_iter()
        .filter(|r| r.kind == EnvSourceKind::Secret)
        .map(|r| r.name);
    sorted_names(own.chain(env))
}

/// The names of the ConfigMaps the spec uses, the environment's and the source of `spec.files`,
/// deduplicated and sorted (what to fetch and watch).
pub fn config_map_names(spec: &ConverseServerSpec) -> Vec<String> {
    let files = match spec.files.as_ref().and_then(|f| f.source()) {
        Some(FilesSource::ConfigMap(c)) => Some(c.name.clone()),
        _ => None,
    };
    let env = env_references(spec)
        .into_iter()
        .filter(|r| r.kind == EnvSourceKind::ConfigMap)
        .map(|r| r.name);
    sorted_names(files.into_iter().chain(env))
}

fn sorted_names(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut names: Vec<String> = names.collect();
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
    /// The port the data names if it is a `redis://` or `rediss://` URL (6379 when it names
    /// none): the NetworkPolicy lets the pods reach it. Worked out for every key, like
    /// `api_keys`; a port is no secret, the rest of the URL stays here.
    pub redis_port: Option<u16>,
}

/// Redis' port when a URL names none.
pub const REDIS_DEFAULT_PORT: u16 = 6379;

impl KeyDigest {
    pub fn of(data: &[u8]) -> Self {
        let text = String::from_utf8_lossy(data);
        KeyDigest {
            sha256: sha256_hex(data),
            len: data.len(),
            api_keys: ApiKeyEntries::of(&text),
            redis_port: redis_port(&text),
        }
    }
}

/// The port of a `redis://`/`rediss://` URL, parsed as the server parses it (`url::Url`).
fn redis_port(value: &str) -> Option<u16> {
    let url = url::Url::parse(value).ok()?;
    // Parsing lower-cases the scheme.
    matches!(url.scheme(), "redis" | "rediss").then(|| url.port().unwrap_or(REDIS_DEFAULT_PORT))
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
/// key, the referenced ConfigMaps that exist (the environment's and the one of `spec.files`),
/// and the PersistentVolumeClaim of `spec.files` if it exists. A referenced object that is
/// absent here does not exist, unless its kind is listed in `unreadable`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dereferenced {
    pub secrets: BTreeMap<String, BTreeMap<String, KeyDigest>>,
    /// ConfigMaps that exist: name → their keys (data and binaryData) → SHA-256 of the value.
    /// Only what the environment reads goes into the config hash: a files ConfigMap is the
    /// kubelet's to refresh in place, and its edits must not roll the pods.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
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

    /// Record a ConfigMap from the API server: its name, keys and a digest of each value.
    pub fn with_config_map_object(mut self, config_map: &ConfigMap) -> Self {
        let Some(name) = &config_map.metadata.name else {
            return self;
        };
        let text = config_map
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), sha256_hex(v.as_bytes())));
        let binary = config_map
            .binary_data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), sha256_hex(&v.0)));
        self.config_maps
            .insert(name.clone(), text.chain(binary).collect());
        self
    }

    /// Record ConfigMap `name` with the given keys, all empty (tests and fixtures).
    pub fn with_config_map<K: AsRef<str>>(
        self,
        name: &str,
        keys: impl IntoIterator<Item = K>,
    ) -> Self {
        self.with_config_map_data(name, keys.into_iter().map(|k| (k, "")))
    }

    /// Record ConfigMap `name` with the given keys and values (tests and fixtures).
    pub fn with_config_map_data<K: AsRef<str>, V: AsRef<[u8]>>(
        mut self,
        name: &str,
        data: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let keys = data
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), sha256_hex(v.as_ref())))
            .collect();
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

    /// What the environment reference `r` reads, as far as the operator can tell.
    pub fn env_source(&self, r: &EnvReference) -> EnvSource {
        let keys: Option<BTreeMap<&str, &str>> = match r.kind {
            EnvSourceKind::Secret => self.secrets.get(&r.name).map(|keys| {
                keys.iter()
                    .map(|(k, d)| (k.as_str(), d.sha256.as_str()))
                    .collect()
            }),
            EnvSourceKind::ConfigMap => {
                if self.unreadable.contains_key(r.kind.as_str()) {
                    return EnvSource::NotChecked;
                }
                self.config_maps
                    .get(&r.name)
                    .map(|keys| keys.iter().map(|(k, d)| (k.as_str(), d.as_str())).collect())
            }
        };
        let Some(keys) = keys else {
            return EnvSource::ObjectMissing;
        };
        match &r.key {
            Some(key) => keys.get(key.as_str()).map_or(EnvSource::KeyMissing, |d| {
                EnvSource::Digest((*d).to_owned())
            }),
            // The whole object: every key and its value's digest, so adding, removing or
            // changing any variable changes it.
            None => {
                let listing: String = keys.iter().map(|(k, d)| format!("{k}={d}\n")).collect();
                EnvSource::Digest(sha256_hex(listing.as_bytes()))
            }
        }
    }
}

/// What the dereference phase found for one [`EnvReference`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSource {
    /// SHA-256 of the key's value, or for a whole object of its keys and their digests.
    Digest(String),
    /// The object does not exist.
    ObjectMissing,
    /// The object exists without the key.
    KeyMissing,
    /// The operator may not read objects of this kind (RBAC).
    NotChecked,
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
    fn redis_ports_are_read_from_redis_urls_only() {
        let port = |v: &str| KeyDigest::of(v.as_bytes()).redis_port;
        assert_eq!(port("redis://:secret@redis.data:6380/0"), Some(6380));
        assert_eq!(port("rediss://cache.example.com"), Some(6379));
        assert_eq!(port("redis://redis"), Some(6379));
        assert_eq!(port("https://api.example.com:8443"), None);
        assert_eq!(port("sk-not-a-url"), None);
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
        let keys: Vec<&str> = d.config_maps["docs"].keys().map(String::as_str).collect();
        assert_eq!(keys, ["a.md", "logo.png"]);
        // Digests of the values, text and binary alike; never the values.
        assert_eq!(d.config_maps["docs"]["a.md"], sha256_hex(b"# A"));
        assert_eq!(d.config_maps["docs"]["logo.png"], sha256_hex(&[0x89, b'P']));
    }

    const ENV_SPEC: &str = "{providers: {openai: {apiKeySecretRef: {name: llm, key: openai}}}, \
        files: {configMap: {name: docs}}, \
        env: [{name: A, valueFrom: {secretKeyRef: {name: extra, key: a, optional: true}}}, \
              {name: B, valueFrom: {configMapKeyRef: {name: settings, key: b}}}, \
              {name: C, value: plain}, \
              {name: D, valueFrom: {fieldRef: {fieldPath: metadata.name}}}], \
        envFrom: [{secretRef: {name: bulk}}, {configMapRef: {name: tuning, optional: true}, prefix: T_}]}";

    #[test]
    fn env_references_are_every_secret_and_config_map_the_environment_reads() {
        let spec: ConverseServerSpec = serde_norway::from_str(ENV_SPEC).unwrap();
        let refs: Vec<(String, EnvSourceKind, String, Option<String>, bool)> =
            env_references(&spec)
                .into_iter()
                .map(|r| (r.field, r.kind, r.name, r.key, r.optional))
                .collect();
        let s = |x: &str| x.to_owned();
        assert_eq!(
            refs,
            [
                (
                    s("env[A].valueFrom.secretKeyRef"),
                    EnvSourceKind::Secret,
                    s("extra"),
                    Some(s("a")),
                    true
                ),
                (
                    s("env[B].valueFrom.configMapKeyRef"),
                    EnvSourceKind::ConfigMap,
                    s("settings"),
                    Some(s("b")),
                    false
                ),
                (
                    s("envFrom[0].secretRef"),
                    EnvSourceKind::Secret,
                    s("bulk"),
                    None,
                    false
                ),
                (
                    s("envFrom[1].configMapRef"),
                    EnvSourceKind::ConfigMap,
                    s("tuning"),
                    None,
                    true
                ),
            ]
        );
        // What to fetch and watch: the spec's own references and the environment's, sorted.
        assert_eq!(secret_names(&spec), ["bulk", "extra", "llm"]);
        assert_eq!(config_map_names(&spec), ["docs", "settings", "tuning"]);
    }

    #[test]
    fn env_sources_are_digested_by_key_or_whole() {
        let d = Dereferenced::default()
            .with_secret("bulk", [("X", "1"), ("Y", "2")])
            .with_config_map_data("settings", [("b", "on")]);
        let r = |kind, name: &str, key: Option<&str>| EnvReference {
            field: "f".to_owned(),
            kind,
            name: name.to_owned(),
            key: key.map(str::to_owned),
            optional: false,
        };
        let secret = EnvSourceKind::Secret;
        let config_map = EnvSourceKind::ConfigMap;
        assert_eq!(
            d.env_source(&r(secret, "bulk", Some("X"))),
            EnvSource::Digest(sha256_hex(b"1"))
        );
        assert_eq!(
            d.env_source(&r(config_map, "settings", Some("b"))),
            EnvSource::Digest(sha256_hex(b"on"))
        );
        assert_eq!(
            d.env_source(&r(secret, "bulk", Some("Z"))),
            EnvSource::KeyMissing
        );
        assert_eq!(
            d.env_source(&r(secret, "other", None)),
            EnvSource::ObjectMissing
        );
        // A ConfigMap and a Secret of the same name are different objects.
        assert_eq!(
            d.env_source(&r(config_map, "bulk", None)),
            EnvSource::ObjectMissing
        );

        // A whole object's digest changes with any value, and with a key added or removed.
        let whole = |d: &Dereferenced| d.env_source(&r(secret, "bulk", None));
        let base = whole(&d);
        assert!(matches!(base, EnvSource::Digest(_)));
        let changed = d.clone().with_secret("bulk", [("X", "1"), ("Y", "3")]);
        let added = d
            .clone()
            .with_secret("bulk", [("X", "1"), ("Y", "2"), ("Z", "")]);
        let removed = d.clone().with_secret("bulk", [("X", "1")]);
        for other in [&changed, &added, &removed] {
            assert_ne!(whole(other), base);
        }
        assert_eq!(
            whole(&d.clone().with_secret("bulk", [("Y", "2"), ("X", "1")])),
            base
        );

        // ConfigMaps the operator may not read are not checked.
        let forbidden = d.with_unreadable("ConfigMap", "forbidden");
        assert_eq!(
            forbidden.env_source(&r(config_map, "settings", Some("b"))),
            EnvSource::NotChecked
        );
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
