//! The container environment: the spec translated into converse-server's variables, through
//! the contract crate ([`converse_config::env::EnvBuilder`]), so only variables the server reads
//! are written and every secret is a `secretKeyRef`.
//!
//! Each entry remembers the spec field it came from, so an error the server's parser reports
//! for a variable can be shown to the user as an error of that field (see `validate`).
//!
//! Every managed variable the spec leaves unset is written too, with an empty value (which the
//! server reads as unset): Kubernetes gives `env` precedence over `envFrom`, so a Secret or
//! ConfigMap in `spec.envFrom` cannot set a variable the operator manages (`CONVERSE_FILES_ROOT`,
//! the auth settings, ...) behind the spec's and the validation's back.

use std::collections::{BTreeMap, BTreeSet};

use converse_config::env::{EnvBuilder, EnvEntry, EnvError, EnvValue};
use converse_config::vars::{self, *};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};

use crate::crd::{
    AuthSecretKey, AuthStrategy, BearerAuth, ConversationStore, ConverseServerSpec, OAuth2Auth,
    OidcAuth, SecretKeyRef, SessionAuth, rules,
};

/// Port the server listens on inside the pod.
pub const CONTAINER_PORT: u16 = 3157;

/// Key of the generated JWT secret in the `<name>-generated` Secret.
pub const GENERATED_JWT_KEY: &str = "jwt-secret";

/// Everything besides the spec that the environment depends on.
#[derive(Debug, Clone)]
pub struct EnvInputs<'a> {
    pub spec: &'a ConverseServerSpec,
    /// status.url: the public URL of `/mcp`.
    pub public_url: &'a str,
    /// `HTTP_ALLOWED_HOSTS`, already defaulted.
    pub allowed_hosts: &'a [String],
    /// Name of the operator's own Secret (`<name>-generated`).
    pub generated_secret: &'a str,
    /// Default OAuth2 callback URL, when derivable from the ingress host.
    pub default_callback_url: Option<&'a str>,
}

/// The variables and where each came from.
#[derive(Debug, Clone, Default)]
pub struct ServerEnv {
    /// The variables the spec sets, in the order they are written.
    pub entries: Vec<EnvEntry>,
    /// The managed variables the spec leaves unset, written with an empty value so `envFrom`
    /// cannot set them: every variable of the contract (`rules::managed_variable_names`, in
    /// table order), then each custom provider's unset `CUSTOM_<N>_*`. A fixed order, so the
    /// pod template (and its hash) is the same on every reconcile.
    pub unset: Vec<String>,
    /// Variable name → the spec field (path under `spec.`) that set it, or a description of
    /// the operator default.
    pub origins: BTreeMap<String, String>,
}

impl ServerEnv {
    /// The spec field behind `var`, for error messages.
    pub fn origin(&self, var: &str) -> Option<&str> {
        self.origins.get(var).map(String::as_str)
    }

    /// As container `env` entries: the variables the spec sets, then the empty ones.
    pub fn to_env_vars(&self) -> Vec<EnvVar> {
        let unset = self.unset.iter().map(|name| EnvVar {
            name: name.clone(),
            // Neither value nor valueFrom: the variable is set, to the empty string. The API
            // server stores `value: ""` this way anyway, so nothing differs on read-back.
            value: None,
            value_from: None,
        });
        self.entries.iter().map(to_env_var).chain(unset).collect()
    }
}

fn to_env_var(entry: &EnvEntry) -> EnvVar {
    match &entry.value {
        EnvValue::Literal(value) => EnvVar {
            name: entry.name.clone(),
            value: Some(value.clone()),
            value_from: None,
        },
        EnvValue::SecretKeyRef { secret, key } => EnvVar {
            name: entry.name.clone(),
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.clone(),
                    key: key.clone(),
                    // A missing Secret is reported by the operator (SecretsResolved=False);
                    // letting the pod start without it would hide the problem.
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
        },
    }
}

/// Writes the pod's variables: [`EnvBuilder`] (known names only, secrets only by reference) plus
/// the spec field each variable came from, so the server parser's errors can name that field.
struct EnvWriter {
    env: EnvBuilder,
    origins: BTreeMap<String, String>,
}

impl EnvWriter {
    fn literal(
        &mut self,
        var: &str,
        value: impl Into<String>,
        field: &str,
    ) -> Result<(), EnvError> {
        self.env.literal(var, value)?;
        self.origins.insert(var.to_owned(), field.to_owned());
        Ok(())
    }

    fn opt<T: ToString>(
        &mut self,
        var: &str,
        value: Option<T>,
        field: &str,
    ) -> Result<(), EnvError> {
        match value {
            Some(v) => self.literal(var, v.to_string(), field),
            None => Ok(()),
        }
    }

    fn secret(&mut self, var: &str, r: &SecretKeyRef, field: &str) -> Result<(), EnvError> {
        self.env.secret_ref(var, &r.name, &r.key)?;
        self.origins.insert(var.to_owned(), field.to_owned());
        Ok(())
    }

    /// Writes `var` from its entry of [`Auth::secret_keys`](crate::crd::Auth::secret_keys), if
    /// the spec references one; whether it did. Looked up by variable rather than written in one
    /// loop: each strategy's secrets sit between its other variables, and the order of `env` is
    /// part of the pod template (changing it would roll every pod).
    fn auth_secret(&mut self, keys: &[AuthSecretKey<'_>], var: &str) -> Result<bool, EnvError> {
        match keys.iter().find(|k| k.var == var) {
            Some(k) => self.secret(k.var, k.secret, k.field).map(|()| true),
            None => Ok(false),
        }
    }
}

/// The server's environment for `inputs`. Errors are bugs of this function (a variable the
/// server does not read, a secret as a literal, a variable set twice), never user errors; the
/// tests render every fixture to prove none occurs.
pub fn server_env(inputs: &EnvInputs<'_>) -> Result<ServerEnv, EnvError> {
    let spec = inputs.spec;
    let mut w = EnvWriter {
        env: EnvBuilder::new(),
        origins: BTreeMap::new(),
    };

    // The listener: all interfaces (the pod network), the port the Service targets.
    w.literal(
        HTTP_HOST,
        "0.0.0.0",
        "(operator: listen on the pod network)",
    )?;
    w.literal(
        HTTP_PORT,
        CONTAINER_PORT.to_string(),
        "(operator: container port)",
    )?;

    w.opt(LOG_LEVEL, spec.log_level, "logLevel")?;
    // Log collectors parse JSON; a human reading `kubectl logs` still gets one line per event.
    let log_format = spec.log_format.unwrap_or(converse_config::LogFormat::Json);
    w.literal(LOG_FORMAT, log_format.as_str(), "logFormat")?;
    w.opt(
        MAX_MCP_OUTPUT_TOKENS,
        spec.max_output_tokens,
        "maxOutputTokens",
    )?;

    auth(&mut w, inputs)?;
    providers(&mut w, spec)?;
    http(&mut w, inputs)?;
    conversations(&mut w, spec)?;

    // The directory is the operator's mount of spec.files, so the two cannot disagree.
    w.opt(
        CONVERSE_FILES_ROOT,
        spec.files
            .as_ref()
            .and_then(|f| f.source())
            .map(|_| super::files::FILES_MOUNT_PATH),
        "files",
    )?;

    if let Some(t) = &spec.telemetry {
        w.opt(
            OTEL_EXPORTER_OTLP_ENDPOINT,
            t.otlp_endpoint.as_deref(),
            "telemetry.otlpEndpoint",
        )?;
        w.opt(
            OTEL_SERVICE_NAME,
            t.service_name.as_deref(),
            "telemetry.serviceName",
        )?;
    }

    let entries = w.env.into_entries();
    Ok(ServerEnv {
        unset: unset_managed(&entries, spec),
        entries,
        origins: w.origins,
    })
}

/// The managed variables not among `entries`: the contract's, then each custom provider's
/// (their names depend on the spec; other `CUSTOM_<N>_*` are ignored by the server, since
/// `CUSTOM_PROVIDERS` is always written).
fn unset_managed(entries: &[EnvEntry], spec: &ConverseServerSpec) -> Vec<String> {
    let written: BTreeSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let custom = spec.providers.custom.iter().flat_map(|c| {
        [
            vars::custom_base_url_var(&c.name),
            vars::custom_models_var(&c.name),
            vars::custom_api_key_var(&c.name),
        ]
    });
    rules::managed_variable_names()
        .into_iter()
        .map(str::to_owned)
        .chain(custom)
        .filter(|name| !written.contains(name.as_str()))
        .collect()
}

/// `spec.auth`: the strategy, then the settings of the selected strategy's block (CEL forbids
/// the others), then which requests need credentials.
fn auth(w: &mut EnvWriter, inputs: &EnvInputs<'_>) -> Result<(), EnvError> {
    let Some(auth) = &inputs.spec.auth else {
        // Explicit, so `kubectl describe pod` shows the server is open on purpose.
        return w.literal(
            MCP_AUTH_STRATEGY,
            converse_config::AuthStrategy::None.as_str(),
            "auth.strategy",
        );
    };
    w.literal(
        MCP_AUTH_STRATEGY,
        auth.strategy.to_config().as_str(),
        "auth.strategy",
    )?;
    w.opt(MCP_AUTH_REQUIRE, auth.required, "auth.required")?;

    let keys = auth.secret_keys();
    match auth.strategy {
        AuthStrategy::None => {}
        AuthStrategy::ApiKey => {
            w.auth_secret(&keys, MCP_API_KEYS)?;
        }
        AuthStrategy::Bearer => {
            if let Some(b) = &auth.bearer {
                bearer(w, b, &keys)?;
            }
        }
        AuthStrategy::OAuth2 => {
            if let Some(o) = &auth.oauth2 {
                oauth2(w, o, &keys, inputs)?;
            }
        }
        AuthStrategy::Oidc => {
            if let Some(o) = &auth.oidc {
                oidc(w, o, inputs)?;
            }
        }
    }

    if let Some(s) = &auth.session_auth {
        session_auth(w, s)?;
    }
    Ok(())
}

/// Strategy bearer: the pinned algorithm and claims, and the shared secret or public key.
fn bearer(w: &mut EnvWriter, b: &BearerAuth, keys: &[AuthSecretKey<'_>]) -> Result<(), EnvError> {
    w.opt(MCP_JWT_ALGORITHM, b.algorithm, "auth.bearer.algorithm")?;
    w.opt(MCP_JWT_ISSUER, b.issuer.as_deref(), "auth.bearer.issuer")?;
    w.opt(
        MCP_JWT_AUDIENCE,
        b.audience.as_deref().filter(|a| !a.is_empty()),
        "auth.bearer.audience",
    )?;
    w.auth_secret(keys, MCP_JWT_SECRET)?;
    w.auth_secret(keys, MCP_JWT_PUBLIC_KEY)?;
    Ok(())
}

/// Strategy oauth2: the client at the external provider, its endpoints, and the secret that
/// signs the server's own tokens (the operator's generated one when the spec names none).
fn oauth2(
    w: &mut EnvWriter,
    o: &OAuth2Auth,
    keys: &[AuthSecretKey<'_>],
    inputs: &EnvInputs<'_>,
) -> Result<(), EnvError> {
    w.literal(MCP_OAUTH_CLIENT_ID, &o.client_id, "auth.oauth2.clientId")?;
    w.auth_secret(keys, MCP_OAUTH_CLIENT_SECRET)?;
    w.literal(
        MCP_OAUTH_AUTH_URL,
        &o.authorization_url,
        "auth.oauth2.authorizationUrl",
    )?;
    w.literal(MCP_OAUTH_TOKEN_URL, &o.token_url, "auth.oauth2.tokenUrl")?;
    w.literal(
        MCP_OAUTH_USERINFO_URL,
        &o.userinfo_url,
        "auth.oauth2.userinfoUrl",
    )?;
    w.opt(
        MCP_OAUTH_CALLBACK_URL,
        o.callback_url.as_deref().or(inputs.default_callback_url),
        "auth.oauth2.callbackUrl",
    )?;
    w.opt(MCP_OAUTH_SCOPE, o.scope.as_deref(), "auth.oauth2.scope")?;
    if !o.allowed_users.is_empty() {
        w.literal(
            MCP_OAUTH_ALLOWED_USERS,
            o.allowed_users.join(","),
            "auth.oauth2.allowedUsers",
        )?;
    }
    w.opt(
        MCP_JWT_EXPIRES_IN,
        o.token_ttl.as_deref(),
        "auth.oauth2.tokenTTL",
    )?;
    if w.auth_secret(keys, MCP_JWT_SECRET)? {
        return Ok(());
    }
    w.secret(
        MCP_JWT_SECRET,
        &SecretKeyRef::new(inputs.generated_secret, GENERATED_JWT_KEY),
        "auth.oauth2.jwtSecretRef (generated)",
    )
}

/// Strategy oidc: the identity provider, what its tokens must carry, and the public URL.
fn oidc(w: &mut EnvWriter, o: &OidcAuth, inputs: &EnvInputs<'_>) -> Result<(), EnvError> {
    w.literal(MCP_OIDC_ISSUER, &o.issuer, "auth.oidc.issuer")?;
    w.opt(
        MCP_OIDC_AUDIENCE,
        o.audience.as_deref().filter(|a| !a.is_empty()),
        "auth.oidc.audience",
    )?;
    w.opt(
        MCP_OIDC_JWKS_URL,
        o.jwks_url.as_deref().filter(|u| !u.is_empty()),
        "auth.oidc.jwksUrl",
    )?;
    if !o.required_scopes.is_empty() {
        w.literal(
            MCP_OIDC_REQUIRED_SCOPES,
            o.required_scopes.join(","),
            "auth.oidc.requiredScopes",
        )?;
    }
    // The resource identifier of the Protected Resource Metadata and the default
    // audience: what clients are told to ask tokens for.
    w.literal(
        MCP_PUBLIC_URL,
        inputs.public_url,
        "status.url (ingress.host or the Service)",
    )
}

/// `auth.sessionAuth`: which MCP requests need credentials.
fn session_auth(w: &mut EnvWriter, s: &SessionAuth) -> Result<(), EnvError> {
    w.opt(
        MCP_SESSION_AUTH_REQUIRE_FOR_SESSION,
        s.require_for_session,
        "auth.sessionAuth.requireForSession",
    )?;
    w.opt(
        MCP_SESSION_AUTH_REQUIRE_FOR_OPERATIONS,
        s.require_for_operations,
        "auth.sessionAuth.requireForOperations",
    )
}

fn providers(w: &mut EnvWriter, spec: &ConverseServerSpec) -> Result<(), EnvError> {
    let p = &spec.providers;
    for (row, key_ref, base_url) in p.builtin() {
        let field = row.crd_field;
        w.secret(
            row.key_var,
            key_ref,
            &format!("providers.{field}.apiKeySecretRef"),
        )?;
        w.opt(
            row.base_url_var,
            base_url,
            &format!("providers.{field}.baseUrl"),
        )?;
    }
    if let Some(o) = &p.openrouter {
        w.opt(
            OPENROUTER_REFERER,
            o.referer.as_deref(),
            "providers.openrouter.referer",
        )?;
        w.opt(
            OPENROUTER_TITLE,
            o.title.as_deref(),
            "providers.openrouter.title",
        )?;
    }
    if !p.custom.is_empty() {
        let names: Vec<&str> = p.custom.iter().map(|c| c.name.as_str()).collect();
        w.literal(CUSTOM_PROVIDERS, names.join(","), "providers.custom")?;
        for c in &p.custom {
            let field = format!("providers.custom[{}]", c.name);
            w.literal(
                &vars::custom_base_url_var(&c.name),
                &c.base_url,
                &format!("{field}.baseUrl"),
            )?;
            w.literal(
                &vars::custom_models_var(&c.name),
                c.models.join(","),
                &format!("{field}.models"),
            )?;
            if let Some(r) = &c.api_key_secret_ref {
                w.secret(
                    &vars::custom_api_key_var(&c.name),
                    r,
                    &format!("{field}.apiKeySecretRef"),
                )?;
            }
        }
    }
    w.opt(PROVIDER_TIMEOUT, p.timeout.as_deref(), "providers.timeout")?;
    w.opt(PROVIDER_MAX_RETRIES, p.max_retries, "providers.maxRetries")?;
    Ok(())
}

fn http(w: &mut EnvWriter, inputs: &EnvInputs<'_>) -> Result<(), EnvError> {
    let spec = inputs.spec;
    if let Some(c) = &spec.cors {
        w.opt(HTTP_ENABLE_CORS, c.enabled, "cors.enabled")?;
        w.opt(
            HTTP_CORS_ORIGINS,
            c.origins.as_ref().map(|o| o.join(",")),
            "cors.origins",
        )?;
        w.opt(
            HTTP_CORS_METHODS,
            c.methods.as_ref().map(|m| m.join(",")),
            "cors.methods",
        )?;
        w.opt(
            HTTP_CORS_HEADERS,
            c.headers.as_ref().map(|h| h.join(",")),
            "cors.headers",
        )?;
        w.opt(HTTP_CORS_CREDENTIALS, c.credentials, "cors.credentials")?;
    }
    if let Some(r) = &spec.rate_limit {
        w.opt(HTTP_RATE_LIMIT_ENABLED, r.enabled, "rateLimit.enabled")?;
        w.opt(
            HTTP_RATE_LIMIT_WINDOW,
            r.window.as_deref(),
            "rateLimit.window",
        )?;
        w.opt(
            HTTP_RATE_LIMIT_MAX_REQUESTS,
            r.max_requests,
            "rateLimit.maxRequests",
        )?;
    }

    let network = spec.network.clone().unwrap_or_default();
    let protection = network.dns_rebinding_protection.unwrap_or(true);
    w.opt(
        HTTP_DNS_REBINDING_PROTECTION,
        network.dns_rebinding_protection,
        "network.dnsRebindingProtection",
    )?;
    if protection {
        w.literal(
            HTTP_ALLOWED_HOSTS,
            inputs.allowed_hosts.join(","),
            "network.allowedHosts",
        )?;
    }
    if !network.allowed_origins.is_empty() {
        w.literal(
            HTTP_ALLOWED_ORIGINS,
            network.allowed_origins.join(","),
            "network.allowedOrigins",
        )?;
    }
    if !network.trusted_proxies.is_empty() {
        w.literal(
            HTTP_TRUSTED_PROXIES,
            network.trusted_proxies.join(","),
            "network.trustedProxies",
        )?;
    }

    if let Some(s) = &spec.sessions {
        w.opt(
            HTTP_SESSION_TIMEOUT,
            s.timeout.as_deref(),
            "sessions.timeout",
        )?;
        w.opt(
            HTTP_SESSION_CLEANUP_INTERVAL,
            s.cleanup_interval.as_deref(),
            "sessions.cleanupInterval",
        )?;
        w.opt(
            HTTP_MAX_CONCURRENT_SESSIONS,
            s.max_concurrent,
            "sessions.maxConcurrent",
        )?;
    }
    if let Some(h) = &spec.http {
        w.opt(
            HTTP_REQUEST_TIMEOUT,
            h.request_timeout.as_deref(),
            "http.requestTimeout",
        )?;
        w.opt(
            HTTP_MAX_REQUEST_SIZE,
            h.max_request_size.as_ref().map(|q| q.0.clone()),
            "http.maxRequestSize",
        )?;
        w.opt(
            HTTP_MAX_CONCURRENT_REQUESTS,
            h.max_concurrent_requests,
            "http.maxConcurrentRequests",
        )?;
    }
    Ok(())
}

fn conversations(w: &mut EnvWriter, spec: &ConverseServerSpec) -> Result<(), EnvError> {
    let Some(c) = &spec.conversations else {
        return Ok(());
    };
    if let Some(store) = c.store {
        let kind = match store {
            ConversationStore::Memory => converse_config::ConversationStoreKind::Memory,
            ConversationStore::Redis => converse_config::ConversationStoreKind::Redis,
        };
        w.literal(CONVERSATION_STORE, kind.as_str(), "conversations.store")?;
    }
    // The URL only matters to a Redis store; the server warns about an unused one.
    if c.store == Some(ConversationStore::Redis)
        && let Some(r) = &c.redis
    {
        w.secret(
            REDIS_URL,
            &r.url_secret_ref,
            "conversations.redis.urlSecretRef",
        )?;
    }
    w.opt(CONVERSATION_TTL, c.ttl.as_deref(), "conversations.ttl")?;
    w.opt(
        CONVERSATION_MAX_COUNT,
        c.max_count,
        "conversations.maxCount",
    )?;
    w.opt(
        CONVERSATION_MAX_MESSAGES,
        c.max_messages,
        "conversations.maxMessages",
    )?;
    w.opt(
        CONVERSATION_MAX_BYTES,
        c.max_bytes.as_ref().map(|q| q.0.clone()),
        "conversations.maxBytes",
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(yaml: &str) -> ServerEnv {
        let spec: ConverseServerSpec = serde_norway::from_str(yaml).unwrap();
        server_env(&EnvInputs {
            spec: &spec,
            public_url: "https://mcp/mcp",
            allowed_hosts: &[],
            generated_secret: "generated",
            default_callback_url: None,
        })
        .unwrap()
    }

    /// Every managed variable appears exactly once in the container env: with the spec's value,
    /// or empty; the empty ones in the contract's table order, custom providers' after.
    #[test]
    fn every_managed_variable_is_written_once_in_a_fixed_order() {
        let env = env_of(
            "{providers: {openai: {apiKeySecretRef: {name: s, key: openai}}, custom: [\
             {name: local-vllm, baseUrl: 'http://vllm:8000/v1', models: [m]}]}}",
        );
        let vars = env.to_env_vars();
        let names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "a variable twice: {names:?}");
        for managed in rules::managed_variable_names() {
            assert!(unique.contains(managed), "{managed} is not written");
        }
        for custom in [
            "CUSTOM_LOCAL_VLLM_BASE_URL",
            "CUSTOM_LOCAL_VLLM_MODELS",
            "CUSTOM_LOCAL_VLLM_API_KEY",
        ] {
            assert!(unique.contains(custom), "{custom} is not written");
        }
        assert_eq!(
            env.unset.last().map(String::as_str),
            Some("CUSTOM_LOCAL_VLLM_API_KEY")
        );
        let table: Vec<&str> = rules::managed_variable_names();
        let positions: Vec<usize> = env
            .unset
            .iter()
            .filter_map(|n| table.iter().position(|t| t == n))
            .collect();
        assert!(positions.is_sorted(), "not in table order: {:?}", env.unset);
        for v in &vars[env.entries.len()..] {
            assert!(v.value.is_none() && v.value_from.is_none(), "{v:?}");
        }
        assert!(env.unset.iter().any(|n| n == CONVERSE_FILES_ROOT));
        assert!(env.unset.iter().any(|n| n == MCP_API_KEYS));
        assert!(!env.unset.iter().any(|n| n == "OPENAI_API_KEY"));
    }

    /// spec.files sets `CONVERSE_FILES_ROOT` to the operator's mount path, named after the
    /// field; without it the variable is written empty (local files refused over HTTP).
    #[test]
    fn files_root_is_the_mount_path_when_files_are_set() {
        let env = env_of(
            "{providers: {openai: {apiKeySecretRef: {name: s, key: openai}}}, \
             files: {configMap: {name: docs}}}",
        );
        let entry = env
            .entries
            .iter()
            .find(|e| e.name == CONVERSE_FILES_ROOT)
            .expect("CONVERSE_FILES_ROOT");
        assert_eq!(
            entry.value,
            EnvValue::Literal(crate::desired::files::FILES_MOUNT_PATH.to_owned())
        );
        assert_eq!(env.origin(CONVERSE_FILES_ROOT), Some("files"));
        assert!(!env.unset.iter().any(|n| n == CONVERSE_FILES_ROOT));

        let env = env_of("{providers: {openai: {apiKeySecretRef: {name: s, key: openai}}}}");
        assert!(!env.entries.iter().any(|e| e.name == CONVERSE_FILES_ROOT));
        assert!(env.unset.iter().any(|n| n == CONVERSE_FILES_ROOT));
    }

    /// The environment reads exactly the auth Secret keys `Auth::secret_keys` lists (what the
    /// dereference phase fetches and validate checks), each under the field the list names.
    #[test]
    fn auth_secrets_in_the_env_are_the_listed_ones() {
        let specs = [
            "{providers: {}, auth: {strategy: apiKey, apiKey: {secretRef: {name: s, key: keys}}}}",
            "{providers: {}, auth: {strategy: bearer, bearer: {secretRef: {name: s, key: hs}, \
             publicKeySecretRef: {name: s, key: pem}}}}",
            "{providers: {}, auth: {strategy: oauth2, oauth2: {clientId: c, \
             clientSecretRef: {name: s, key: client}, authorizationUrl: 'https://idp/a', \
             tokenUrl: 'https://idp/t', userinfoUrl: 'https://idp/u', \
             callbackUrl: 'https://mcp/oauth/callback', jwtSecretRef: {name: s, key: jwt}}}}",
        ];
        for yaml in specs {
            let spec: ConverseServerSpec = serde_norway::from_str(yaml).unwrap();
            let env = server_env(&EnvInputs {
                spec: &spec,
                public_url: "https://mcp/mcp",
                allowed_hosts: &[],
                generated_secret: "generated",
                default_callback_url: None,
            })
            .unwrap();
            let keys = spec.auth.as_ref().unwrap().secret_keys();
            let secret_vars: Vec<&str> = env
                .entries
                .iter()
                .filter(|e| matches!(e.value, EnvValue::SecretKeyRef { .. }))
                .map(|e| e.name.as_str())
                .collect();
            let listed_vars: Vec<&str> = keys.iter().map(|k| k.var).collect();
            assert_eq!(secret_vars, listed_vars, "{yaml}");
            for k in keys {
                let entry = env.entries.iter().find(|e| e.name == k.var).unwrap();
                let want = EnvValue::SecretKeyRef {
                    secret: k.secret.name.clone(),
                    key: k.secret.key.clone(),
                };
                assert_eq!(entry.value, want, "{}", k.var);
                assert_eq!(env.origin(k.var), Some(k.field), "{}", k.var);
            }
        }
    }
}
