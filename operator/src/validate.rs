//! Phase 2, validate (pure): a ConverseServer and what the dereference phase found become a
//! [`ValidatedServer`], or a [`ValidationError`] that tells the user what to change.
//!
//! CEL rules reject most mistakes at `kubectl apply` time; this phase re-checks the few that
//! the build relies on (a CRD can be installed without its rules, or an object can predate
//! them), checks what only the operator can see (Secrets and keys exist and are usable, the
//! Secrets and ConfigMaps of `spec.env`/`spec.envFrom` exist unless optional, the ConfigMap or
//! PersistentVolumeClaim of `spec.files` exists), and finally runs the server's own
//! parser over the environment the operator will write, with stand-ins for Secret values, so a
//! value the server would refuse (a bad URL, a duration below its minimum, an origin with a
//! path) is refused here, named by its spec field, instead of crash-looping the pods.

use std::collections::BTreeSet;

use converse_config::ServerConfig;
use converse_config::env::EnvValue;
use converse_config::vars::{self, *};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

use crate::crd::{
    AuthStrategy, ConversationStore, ConverseServer, ConverseServerSpec, Files, FilesSource, rules,
};
use crate::desired::env::{self, EnvInputs};
use crate::endpoints;
use crate::references::{
    Dereferenced, EnvSource, EnvSourceKind, KeyDigest, env_references, secret_references,
};

/// A spec the operator can build from, with the facts derived while checking it.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedServer {
    pub name: String,
    pub namespace: String,
    /// Controller owner reference for the children; `None` for an object without a uid
    /// (not yet stored, as in unit tests).
    pub owner: Option<OwnerReference>,
    pub spec: ConverseServerSpec,
    /// status.url.
    pub public_url: String,
    pub auth_strategy: AuthStrategy,
    /// Every referenced Secret key with its digest, sorted: part of the config hash.
    pub secrets: Vec<ResolvedSecret>,
    /// What `spec.env`/`spec.envFrom` read from Secrets and ConfigMaps, sorted: part of the
    /// config hash, so a change rolls the pods.
    pub env_sources: Vec<ResolvedEnvSource>,
    /// The port of the Redis URL when conversations are kept in Redis (the NetworkPolicy's
    /// egress allows it).
    pub redis_port: Option<u16>,
    /// Whether the operator must supply the oauth2 JWT signing secret (`<name>-generated`).
    pub needs_generated_jwt_secret: bool,
    /// What was found of `spec.files`' source (the FilesResolved condition).
    pub files: FilesCheck,
    /// Things worth telling the user that do not stop the build (become Events).
    pub warnings: Vec<String>,
}

/// A referenced Secret key that exists, with its digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResolvedSecret {
    pub name: String,
    pub key: String,
    pub sha256: String,
}

/// A Secret or ConfigMap (or one key of it) the pods' environment reads, with its digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResolvedEnvSource {
    pub kind: EnvSourceKind,
    pub name: String,
    /// The key (`valueFrom`); `None`: every key (`envFrom`).
    pub key: Option<String>,
    /// SHA-256 of what is read; `None` when there is nothing to digest: an optional reference
    /// to something absent, or a ConfigMap the operator may not read.
    pub sha256: Option<String>,
}

/// What validate found of the source of `spec.files`, for the FilesResolved condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilesCheck {
    /// No `spec.files`: no files directory.
    NotSet,
    /// The source exists (and a ConfigMap has every listed key); says which, e.g.
    /// `ConfigMap "docs"`.
    Found(String),
    /// The operator may not read the source's kind (RBAC), so it is not known whether it
    /// exists: which source, and the API server's message.
    NotChecked { source: String, message: String },
}

/// Why a ConverseServer cannot be built. Each variant maps to a condition (see
/// [`ValidationError::condition_type`]); none is worth retrying until the spec, a Secret or the
/// files source changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The spec breaks a rule: Accepted=False, Stalled=True.
    #[error("the spec is invalid: {}", join(.0))]
    InvalidSpec(Vec<FieldError>),
    /// A referenced Secret or key is missing or unusable, or a Secret or ConfigMap the pods'
    /// environment reads is missing: SecretsResolved=False, Stalled=True.
    #[error("references do not resolve: {}", join(.0))]
    UnresolvedSecrets(Vec<SecretProblem>),
    /// The ConfigMap (or one of its listed keys) or PersistentVolumeClaim of `spec.files` is
    /// missing: FilesResolved=False, Stalled=True. Neither is watched, so the controller looks
    /// again periodically.
    #[error("spec.files does not resolve: {}", join(.0))]
    UnresolvedFiles(Vec<FilesProblem>),
}

impl ValidationError {
    /// The condition that reports this error.
    pub fn condition_type(&self) -> &'static str {
        use crate::crd::status::condition;
        match self {
            ValidationError::InvalidSpec(_) => condition::ACCEPTED,
            ValidationError::UnresolvedSecrets(_) => condition::SECRETS_RESOLVED,
            ValidationError::UnresolvedFiles(_) => condition::FILES_RESOLVED,
        }
    }

    /// The condition reason (CamelCase, as Kubernetes conditions want).
    pub fn reason(&self) -> &'static str {
        match self {
            ValidationError::InvalidSpec(_) => "InvalidSpec",
            ValidationError::UnresolvedSecrets(problems) => match problems.first() {
                Some(SecretProblem::SecretNotFound { .. }) => "SecretNotFound",
                Some(SecretProblem::KeyNotFound { .. }) => "SecretKeyNotFound",
                Some(SecretProblem::ConfigMapNotFound { .. }) => "ConfigMapNotFound",
                Some(SecretProblem::ConfigMapKeyNotFound { .. }) => "ConfigMapKeyNotFound",
                _ => "SecretValueInvalid",
            },
            ValidationError::UnresolvedFiles(problems) => match problems.first() {
                Some(FilesProblem::ConfigMapKeyNotFound { .. }) => "ConfigMapKeyNotFound",
                Some(FilesProblem::ClaimNotFound { .. }) => "PersistentVolumeClaimNotFound",
                _ => "ConfigMapNotFound",
            },
        }
    }
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One broken rule of the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.{field}: {message}")]
pub struct FieldError {
    /// Path under `spec.`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One Secret reference that does not resolve, or a ConfigMap the environment reads that is
/// missing. Messages name the object and key, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretProblem {
    /// A ConfigMap `spec.env`/`spec.envFrom` read without `optional: true`: the kubelet would not
    /// start the container.
    #[error("ConfigMap {config_map:?} (spec.{field}) does not exist in the namespace")]
    ConfigMapNotFound { field: String, config_map: String },
    #[error("ConfigMap {config_map:?} has no key {key:?} (spec.{field})")]
    ConfigMapKeyNotFound {
        field: String,
        config_map: String,
        key: String,
    },
    #[error("Secret {secret:?} (spec.{field}) does not exist in the namespace")]
    SecretNotFound { field: String, secret: String },
    #[error("Secret {secret:?} has no key {key:?} (spec.{field})")]
    KeyNotFound {
        field: String,
        secret: String,
        key: String,
    },
    #[error("key {key:?} of Secret {secret:?} (spec.{field}) is empty")]
    Empty {
        field: String,
        secret: String,
        key: String,
    },
    #[error(
        "key {key:?} of Secret {secret:?} (spec.{field}) is too short: at least {min} bytes are \
         required (e.g. `openssl rand -base64 32`)"
    )]
    /// Says the minimum, never the actual length: status is readable by more people than the
    /// Secret, and a length narrows a guess.
    TooShort {
        field: String,
        secret: String,
        key: String,
        min: usize,
    },
    /// An entry of an API-key list the server would refuse (a plain key shorter than 32
    /// characters, a malformed `sha256:` digest): which entry, and the server's rule; never the
    /// entry or its length.
    #[error("entry {entry} of key {key:?} of Secret {secret:?} (spec.{field}): {rule}")]
    ApiKeyRefused {
        field: String,
        secret: String,
        key: String,
        entry: usize,
        rule: String,
    },
}

/// What is missing of the source of `spec.files`: the pods could not start with it (the kubelet
/// cannot mount the volume).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilesProblem {
    #[error("ConfigMap {name:?} (spec.files.configMap) does not exist in the namespace")]
    ConfigMapNotFound { name: String },
    #[error("ConfigMap {name:?} has no key {key:?} (spec.files.configMap.items)")]
    ConfigMapKeyNotFound { name: String, key: String },
    #[error(
        "PersistentVolumeClaim {name:?} (spec.files.persistentVolumeClaim) does not exist in the \
         namespace"
    )]
    ClaimNotFound { name: String },
}

/// Phase 2. `dereferenced` holds the referenced objects that exist.
pub fn validate(
    server: &ConverseServer,
    dereferenced: &Dereferenced,
) -> Result<ValidatedServer, ValidationError> {
    let name = server.metadata.name.clone().unwrap_or_default();
    let namespace = server.metadata.namespace.clone().unwrap_or_default();
    let spec = &server.spec;

    let mut errors = structural_errors(spec);
    if name.is_empty() || namespace.is_empty() {
        errors.push(FieldError::new(
            "(metadata)",
            "the ConverseServer has no name or namespace",
        ));
    }
    let public_url = endpoints::public_url(spec, &name, &namespace);
    let mut warnings = Vec::new();
    if errors.is_empty() {
        match server_parse_errors(spec, &name, &namespace, &public_url) {
            Ok(server_warnings) => warnings.extend(server_warnings),
            Err(mut parse_errors) => errors.append(&mut parse_errors),
        }
    }
    if !errors.is_empty() {
        return Err(ValidationError::InvalidSpec(errors));
    }

    // Every problem of both kinds at once: one fix per round trip is tedious.
    let (secrets, env_sources) = match (
        resolve_secrets(spec, dereferenced),
        resolve_env_sources(spec, dereferenced),
    ) {
        (Ok(secrets), Ok(env_sources)) => (secrets, env_sources),
        (secrets, env_sources) => {
            let problems = [secrets.err(), env_sources.err()];
            return Err(ValidationError::UnresolvedSecrets(
                problems.into_iter().flatten().flatten().collect(),
            ));
        }
    };
    let files = resolve_files(spec, dereferenced).map_err(ValidationError::UnresolvedFiles)?;
    warnings.extend(advice(spec));
    warnings.extend(files_advice(spec, dereferenced, &files));
    warnings.extend(env_sources_advice(spec, dereferenced));

    let redis_port = spec
        .conversations
        .as_ref()
        .filter(|c| c.store == Some(ConversationStore::Redis))
        .and_then(|c| c.redis.as_ref())
        .and_then(|r| dereferenced.digest(&r.url_secret_ref))
        .and_then(|d| d.redis_port);
    let auth_strategy = spec.auth.as_ref().map(|a| a.strategy).unwrap_or_default();
    let needs_generated_jwt_secret = auth_strategy == AuthStrategy::OAuth2
        && spec
            .auth
            .as_ref()
            .and_then(|a| a.oauth2.as_ref())
            .is_some_and(|o| o.jwt_secret_ref.is_none());

    Ok(ValidatedServer {
        owner: server.controller_owner_ref(&()),
        name,
        namespace,
        spec: spec.clone(),
        public_url,
        auth_strategy,
        secrets,
        env_sources,
        redis_port,
        needs_generated_jwt_secret,
        files,
        warnings,
    })
}

/// The rules the build depends on, re-checked in case CEL did not run.
fn structural_errors(spec: &ConverseServerSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if spec.providers.is_empty() {
        errors.push(FieldError::new(
            "providers",
            "configure at least one provider",
        ));
    }
    if spec.replicas.is_some() && spec.autoscaling.is_some() {
        errors.push(FieldError::new(
            "replicas",
            "replicas and autoscaling are mutually exclusive",
        ));
    }
    if let Some(a) = &spec.autoscaling
        && a.min_replicas.unwrap_or(1) > a.max_replicas
    {
        errors.push(FieldError::new(
            "autoscaling.minReplicas",
            "must not exceed autoscaling.maxReplicas",
        ));
    }
    if let Some(i) = &spec.ingress
        && i.enabled
        && i.host.is_none()
    {
        errors.push(FieldError::new(
            "ingress.host",
            "is required when the ingress is enabled",
        ));
    }
    if let Some(p) = &spec.pod_disruption_budget
        && p.min_available.is_some() == p.max_unavailable.is_some()
    {
        errors.push(FieldError::new(
            "podDisruptionBudget",
            "set exactly one of minAvailable and maxUnavailable",
        ));
    }
    if let Some(auth) = &spec.auth
        && let Some(block) = auth.strategy.block()
    {
        let present = match auth.strategy {
            AuthStrategy::None => true,
            AuthStrategy::Bearer => auth.bearer.is_some(),
            AuthStrategy::ApiKey => auth.api_key.is_some(),
            AuthStrategy::OAuth2 => auth.oauth2.is_some(),
            AuthStrategy::Oidc => auth.oidc.is_some(),
        };
        if !present {
            errors.push(FieldError::new(
                format!("auth.{block}"),
                format!("is required by auth.strategy {}", auth.strategy.as_str()),
            ));
        }
    }
    if let Some(files) = &spec.files {
        errors.extend(files_errors(files));
    }
    let managed: BTreeSet<&str> = rules::managed_variable_names().into_iter().collect();
    for e in &spec.env {
        if managed.contains(e.name.as_str()) || e.name.starts_with(rules::MANAGED_PREFIX) {
            errors.push(FieldError::new(
                "env",
                format!(
                    "may not set {}: the operator manages it from the spec",
                    e.name
                ),
            ));
        }
    }
    if let Some(pod) = &spec.pod {
        for key in crate::desired::labels::SELECTOR_KEYS {
            if pod.labels.contains_key(*key) {
                errors.push(FieldError::new(
                    "pod.labels",
                    format!("may not set {key}: the operator selects the pods with it"),
                ));
            }
        }
    }
    errors
}

/// `spec.files`: one source, and item paths the kubelet accepts (else the Deployment would fail
/// to apply).
fn files_errors(files: &Files) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if files.source().is_none() {
        errors.push(FieldError::new(
            "files",
            "set exactly one of configMap and persistentVolumeClaim",
        ));
    }
    let items = files.config_map.iter().flat_map(|c| &c.items);
    let mut paths = BTreeSet::new();
    for item in items {
        if !item.path_is_valid() {
            errors.push(FieldError::new(
                "files.configMap.items",
                format!(
                    "path {:?} must be relative, without a '..' element, and not start with '..'",
                    item.path
                ),
            ));
        }
        if !paths.insert(item.path.as_str()) {
            errors.push(FieldError::new(
                "files.configMap.items",
                format!("path {:?} is listed twice", item.path),
            ));
        }
    }
    errors
}

/// Values that stand in for Secret data when the server's parser checks the environment. Each
/// satisfies the server's format rules; whether the real value is present and long enough is
/// checked from the digests instead.
fn stand_in(var: &str) -> String {
    match var {
        REDIS_URL => "redis://stand-in:6379".to_owned(),
        MCP_JWT_PUBLIC_KEY => {
            "-----BEGIN PUBLIC KEY-----\nstand-in\n-----END PUBLIC KEY-----\n".to_owned()
        }
        _ => "x".repeat(converse_config::auth::MIN_JWT_SECRET_BYTES),
    }
}

/// Where to point the user when the server reports a variable the operator did not write (a
/// required one that is missing).
fn field_of_missing(var: &str) -> &'static str {
    match var {
        MCP_API_KEYS => "auth.apiKey.secretRef",
        MCP_JWT_SECRET => "auth.bearer.secretRef",
        MCP_JWT_PUBLIC_KEY => "auth.bearer.publicKeySecretRef",
        MCP_OAUTH_CALLBACK_URL => "auth.oauth2.callbackUrl",
        MCP_OAUTH_ALLOWED_USERS => "auth.oauth2.allowedUsers",
        MCP_OIDC_ISSUER => "auth.oidc.issuer",
        REDIS_URL => "conversations.redis.urlSecretRef",
        CUSTOM_PROVIDERS => "providers.custom",
        _ => "(spec)",
    }
}

/// Run converse-server's parser over the environment this spec produces. `Ok` carries the
/// parser's warnings.
fn server_parse_errors(
    spec: &ConverseServerSpec,
    name: &str,
    namespace: &str,
    public_url: &str,
) -> Result<Vec<String>, Vec<FieldError>> {
    // The cluster domain only appears in default host names, which are valid whatever it is.
    let hosts = endpoints::allowed_hosts(spec, name, namespace, endpoints::DEFAULT_CLUSTER_DOMAIN);
    let callback = endpoints::default_callback_url(spec);
    let inputs = EnvInputs {
        spec,
        public_url,
        allowed_hosts: &hosts,
        generated_secret: &crate::desired::generated_secret_name(name),
        default_callback_url: callback.as_deref(),
    };
    let server_env = env::server_env(&inputs).map_err(|e| {
        vec![FieldError::new(
            "(operator)",
            format!("internal error while building the environment: {e}"),
        )]
    })?;
    let pairs: Vec<(String, String)> = server_env
        .entries
        .iter()
        .map(|e| match &e.value {
            EnvValue::Literal(v) => (e.name.clone(), v.clone()),
            EnvValue::SecretKeyRef { .. } => (e.name.clone(), stand_in(&e.name)),
        })
        .collect();
    match ServerConfig::from_vars(pairs, None) {
        Ok(config) => Ok(config.env_warnings),
        Err(errors) => Err(errors
            .0
            .iter()
            .map(|e| {
                // Per-custom-provider variables are filed under CUSTOM_PROVIDERS with the real
                // name leading the message; point at that provider's field.
                let (var, message) = match e.message.split_once(": ") {
                    Some((named, rest))
                        if e.var == CUSTOM_PROVIDERS && server_env.origin(named).is_some() =>
                    {
                        (named, rest)
                    }
                    _ => (e.var, e.message.as_str()),
                };
                let field = server_env
                    .origin(var)
                    .map(str::to_owned)
                    .unwrap_or_else(|| field_of_missing(var).to_owned());
                // Messages about secret variables never contain values (the parser hides
                // them), and the stand-ins are not the user's anyway.
                let message = if vars::is_secret(var) {
                    format!("{message} ({var})")
                } else {
                    format!("{var}: {message}")
                };
                FieldError::new(field, message)
            })
            .collect()),
    }
}

fn resolve_secrets(
    spec: &ConverseServerSpec,
    dereferenced: &Dereferenced,
) -> Result<Vec<ResolvedSecret>, Vec<SecretProblem>> {
    let mut problems = Vec::new();
    let mut resolved = BTreeSet::new();
    for r in secret_references(spec) {
        let (secret, key) = (r.secret.name.clone(), r.secret.key.clone());
        let field = r.field.clone();
        if !dereferenced.secrets.contains_key(&secret) {
            problems.push(SecretProblem::SecretNotFound { field, secret });
            continue;
        }
        match dereferenced.digest(&r.secret) {
            None => problems.push(SecretProblem::KeyNotFound { field, secret, key }),
            Some(KeyDigest { len: 0, .. }) => {
                problems.push(SecretProblem::Empty { field, secret, key })
            }
            Some(KeyDigest { len, .. }) if *len < r.min_bytes => {
                problems.push(SecretProblem::TooShort {
                    field,
                    secret,
                    key,
                    min: r.min_bytes,
                })
            }
            // Only separators: the server sees no key at all.
            Some(KeyDigest { api_keys, .. }) if r.api_key_list && api_keys.count == 0 => {
                problems.push(SecretProblem::Empty { field, secret, key })
            }
            // The server refuses to start on any bad entry; report them all at once.
            Some(KeyDigest { api_keys, .. }) if r.api_key_list && !api_keys.refused.is_empty() => {
                problems.extend(api_keys.refused.iter().map(|refused| {
                    SecretProblem::ApiKeyRefused {
                        field: field.clone(),
                        secret: secret.clone(),
                        key: key.clone(),
                        entry: refused.entry,
                        rule: refused.rule.clone(),
                    }
                }))
            }
            Some(digest) => {
                resolved.insert(ResolvedSecret {
                    name: secret,
                    key,
                    sha256: digest.sha256.clone(),
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(resolved.into_iter().collect())
    } else {
        Err(problems)
    }
}

/// What `spec.env`/`spec.envFrom` read, digested. A missing object or key is a problem unless
/// the reference is optional (then the kubelet starts the container without it, and so does the
/// operator: its absence is hashed, so its arrival rolls the pods).
fn resolve_env_sources(
    spec: &ConverseServerSpec,
    dereferenced: &Dereferenced,
) -> Result<Vec<ResolvedEnvSource>, Vec<SecretProblem>> {
    let mut problems = Vec::new();
    let mut resolved = BTreeSet::new();
    for r in env_references(spec) {
        let sha256 = match dereferenced.env_source(&r) {
            EnvSource::Digest(d) => Some(d),
            EnvSource::NotChecked => None,
            EnvSource::ObjectMissing | EnvSource::KeyMissing if r.optional => None,
            missing => {
                let (field, name) = (r.field.clone(), r.name.clone());
                let key = r.key.clone().unwrap_or_default();
                problems.push(match (r.kind, missing) {
                    (EnvSourceKind::Secret, EnvSource::ObjectMissing) => {
                        SecretProblem::SecretNotFound {
                            field,
                            secret: name,
                        }
                    }
                    (EnvSourceKind::Secret, _) => SecretProblem::KeyNotFound {
                        field,
                        secret: name,
                        key,
                    },
                    (EnvSourceKind::ConfigMap, EnvSource::ObjectMissing) => {
                        SecretProblem::ConfigMapNotFound {
                            field,
                            config_map: name,
                        }
                    }
                    (EnvSourceKind::ConfigMap, _) => SecretProblem::ConfigMapKeyNotFound {
                        field,
                        config_map: name,
                        key,
                    },
                });
                continue;
            }
        };
        resolved.insert(ResolvedEnvSource {
            kind: r.kind,
            name: r.name,
            key: r.key,
            sha256,
        });
    }
    if problems.is_empty() {
        Ok(resolved.into_iter().collect())
    } else {
        Err(problems)
    }
}

/// The environment reads ConfigMaps the operator may not read: their changes do not roll the
/// pods.
fn env_sources_advice(spec: &ConverseServerSpec, dereferenced: &Dereferenced) -> Vec<String> {
    let kind = EnvSourceKind::ConfigMap.as_str();
    let Some(message) = dereferenced.unreadable.get(kind) else {
        return Vec::new();
    };
    env_references(spec)
        .into_iter()
        .filter(|r| r.kind == EnvSourceKind::ConfigMap)
        .map(|r| {
            format!(
                "spec.{}: the operator may not read ConfigMap {:?} ({message}), so a change to it \
                 does not roll the pods; grant it get, list and watch on configmaps",
                r.field, r.name
            )
        })
        .collect()
}

/// Whether the source of `spec.files` exists (and a ConfigMap has the listed keys). Only the
/// existence: whether the kubelet can mount a claim (bound, reachable from the node) is the
/// pod's to report.
fn resolve_files(
    spec: &ConverseServerSpec,
    dereferenced: &Dereferenced,
) -> Result<FilesCheck, Vec<FilesProblem>> {
    let Some(source) = spec.files.as_ref().and_then(|f| f.source()) else {
        return Ok(FilesCheck::NotSet);
    };
    let (kind, name) = match source {
        FilesSource::ConfigMap(c) => ("ConfigMap", c.name.as_str()),
        FilesSource::Claim(p) => ("PersistentVolumeClaim", p.claim_name.as_str()),
    };
    let described = format!("{kind} {name:?}");
    if let Some(message) = dereferenced.unreadable.get(kind) {
        return Ok(FilesCheck::NotChecked {
            source: described,
            message: message.clone(),
        });
    }
    match source {
        FilesSource::ConfigMap(c) => {
            let Some(keys) = dereferenced.config_maps.get(&c.name) else {
                return Err(vec![FilesProblem::ConfigMapNotFound {
                    name: c.name.clone(),
                }]);
            };
            let missing: Vec<FilesProblem> = c
                .items
                .iter()
                .filter(|i| !keys.contains_key(&i.key))
                .map(|i| FilesProblem::ConfigMapKeyNotFound {
                    name: c.name.clone(),
                    key: i.key.clone(),
                })
                .collect();
            if !missing.is_empty() {
                return Err(missing);
            }
        }
        FilesSource::Claim(p) => {
            if !dereferenced.claims.contains_key(&p.claim_name) {
                return Err(vec![FilesProblem::ClaimNotFound {
                    name: p.claim_name.clone(),
                }]);
            }
        }
    }
    Ok(FilesCheck::Found(described))
}

/// Access modes that let pods on several nodes mount a claim read-only.
const SHARED_ACCESS_MODES: &[&str] = &["ReadOnlyMany", "ReadWriteMany"];

/// Valid but worth a word about `spec.files`: a claim several pods cannot share, a source the
/// operator could not check.
fn files_advice(
    spec: &ConverseServerSpec,
    dereferenced: &Dereferenced,
    files: &FilesCheck,
) -> Vec<String> {
    let mut out = Vec::new();
    if let FilesCheck::NotChecked { source, message } = files {
        out.push(format!(
            "spec.files: the operator may not read {source} ({message}), so whether it exists is \
             not checked; grant it get on configmaps and persistentvolumeclaims, or watch the \
             pods' events (FailedMount, FailedScheduling)"
        ));
    }
    let several = spec.replicas.is_some_and(|r| r > 1) || spec.autoscaling.is_some();
    if let Some(FilesSource::Claim(p)) = spec.files.as_ref().and_then(|f| f.source())
        && let Some(modes) = dereferenced.claims.get(&p.claim_name)
        && several
        && !modes
            .iter()
            .any(|m| SHARED_ACCESS_MODES.contains(&m.as_str()))
    {
        out.push(format!(
            "spec.files.persistentVolumeClaim {:?} has access modes [{}]: pods on different \
             nodes cannot all mount it; use ReadOnlyMany or ReadWriteMany with several replicas",
            p.claim_name,
            modes.join(", ")
        ));
    }
    out
}

/// Valid but probably unintended.
fn advice(spec: &ConverseServerSpec) -> Vec<String> {
    let mut out = Vec::new();
    let several = spec.replicas.is_some_and(|r| r > 1) || spec.autoscaling.is_some();
    let memory = spec
        .conversations
        .as_ref()
        .and_then(|c| c.store)
        .unwrap_or_default()
        == ConversationStore::Memory;
    if several && memory {
        out.push(
            "several replicas with conversations.store Memory: a conversation continues only on \
             the pod that holds it; use store Redis"
                .to_owned(),
        );
    }
    if let Some(ingress) = &spec.ingress {
        let managed = crate::desired::ingress::operator_annotations(spec);
        for key in ingress
            .annotations
            .keys()
            .filter(|k| managed.contains_key(*k))
        {
            out.push(format!(
                "ingress.annotations sets {key}, which the operator sets itself from the spec; \
                 the operator's value is used"
            ));
        }
    }
    let strategy = spec.auth.as_ref().map(|a| a.strategy).unwrap_or_default();
    if strategy == AuthStrategy::None && endpoints::public_host(spec).is_some() {
        out.push(
            "auth.strategy none behind an ingress or gateway: anyone who can reach the host can use the \
             configured provider keys"
                .to_owned(),
        );
    }
    out
}
