//! The names of every environment variable converse-server reads, and a table describing them.
//!
//! The server parses these names and the operator emits them. Both sides use the constants
//! below, so a name is typed exactly once. [`VARIABLES`] feeds the generated configuration
//! reference ([`render_markdown_reference`]) and tells the parser which values are secret and
//! must never be echoed back in an error message or a log line.

use std::borrow::Cow;
use std::sync::LazyLock;

use serde::Serialize;

use crate::builtin_providers::{BUILTIN_PROVIDERS, BuiltinProvider};

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------
pub const MCP_TRANSPORT: &str = "MCP_TRANSPORT";
pub const LOG_LEVEL: &str = "LOG_LEVEL";
pub const LOG_FORMAT: &str = "LOG_FORMAT";
pub const MAX_MCP_OUTPUT_TOKENS: &str = "MAX_MCP_OUTPUT_TOKENS";
pub const CONVERSE_FILES_ROOT: &str = "CONVERSE_FILES_ROOT";
pub const CONVERSE_MODELS_FILE: &str = "CONVERSE_MODELS_FILE";
pub const CONVERSE_ENV_FILE: &str = "CONVERSE_ENV_FILE";
pub const MCP_SERVER_NAME: &str = "MCP_SERVER_NAME";
pub const MCP_SERVER_VERSION: &str = "MCP_SERVER_VERSION";

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------
pub const HTTP_HOST: &str = "HTTP_HOST";
pub const HOST: &str = "HOST";
pub const HTTP_PORT: &str = "HTTP_PORT";
pub const PORT: &str = "PORT";
pub const HTTP_REQUEST_TIMEOUT: &str = "HTTP_REQUEST_TIMEOUT";
pub const HTTP_MAX_REQUEST_SIZE: &str = "HTTP_MAX_REQUEST_SIZE";
pub const HTTP_SESSION_TIMEOUT: &str = "HTTP_SESSION_TIMEOUT";
pub const HTTP_SESSION_CLEANUP_INTERVAL: &str = "HTTP_SESSION_CLEANUP_INTERVAL";
pub const HTTP_MAX_CONCURRENT_SESSIONS: &str = "HTTP_MAX_CONCURRENT_SESSIONS";
pub const HTTP_MAX_CONCURRENT_REQUESTS: &str = "HTTP_MAX_CONCURRENT_REQUESTS";
pub const HTTP_ENABLE_CORS: &str = "HTTP_ENABLE_CORS";
pub const HTTP_CORS_ORIGINS: &str = "HTTP_CORS_ORIGINS";
pub const HTTP_CORS_METHODS: &str = "HTTP_CORS_METHODS";
pub const HTTP_CORS_HEADERS: &str = "HTTP_CORS_HEADERS";
pub const HTTP_CORS_CREDENTIALS: &str = "HTTP_CORS_CREDENTIALS";
pub const HTTP_DNS_REBINDING_PROTECTION: &str = "HTTP_DNS_REBINDING_PROTECTION";
pub const HTTP_ALLOWED_HOSTS: &str = "HTTP_ALLOWED_HOSTS";
pub const HTTP_ALLOWED_ORIGINS: &str = "HTTP_ALLOWED_ORIGINS";
pub const HTTP_RATE_LIMIT_ENABLED: &str = "HTTP_RATE_LIMIT_ENABLED";
pub const HTTP_RATE_LIMIT_WINDOW: &str = "HTTP_RATE_LIMIT_WINDOW";
pub const HTTP_RATE_LIMIT_MAX_REQUESTS: &str = "HTTP_RATE_LIMIT_MAX_REQUESTS";
pub const HTTP_TRUSTED_PROXIES: &str = "HTTP_TRUSTED_PROXIES";

// ---------------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------------
pub const MCP_AUTH_STRATEGY: &str = "MCP_AUTH_STRATEGY";
pub const MCP_AUTH_REQUIRE: &str = "MCP_AUTH_REQUIRE";
pub const MCP_JWT_SECRET: &str = "MCP_JWT_SECRET";
pub const MCP_JWT_ALGORITHM: &str = "MCP_JWT_ALGORITHM";
pub const MCP_JWT_PUBLIC_KEY: &str = "MCP_JWT_PUBLIC_KEY";
pub const MCP_JWT_PUBLIC_KEY_FILE: &str = "MCP_JWT_PUBLIC_KEY_FILE";
pub const MCP_JWT_JWKS_FILE: &str = "MCP_JWT_JWKS_FILE";
pub const MCP_JWT_EXPIRES_IN: &str = "MCP_JWT_EXPIRES_IN";
pub const MCP_JWT_ISSUER: &str = "MCP_JWT_ISSUER";
pub const MCP_JWT_AUDIENCE: &str = "MCP_JWT_AUDIENCE";
pub const MCP_API_KEYS: &str = "MCP_API_KEYS";
pub const MCP_OAUTH_CLIENT_ID: &str = "MCP_OAUTH_CLIENT_ID";
pub const MCP_OAUTH_CLIENT_SECRET: &str = "MCP_OAUTH_CLIENT_SECRET";
pub const MCP_OAUTH_AUTH_URL: &str = "MCP_OAUTH_AUTH_URL";
pub const MCP_OAUTH_TOKEN_URL: &str = "MCP_OAUTH_TOKEN_URL";
pub const MCP_OAUTH_USERINFO_URL: &str = "MCP_OAUTH_USERINFO_URL";
pub const MCP_OAUTH_CALLBACK_URL: &str = "MCP_OAUTH_CALLBACK_URL";
pub const MCP_OAUTH_SCOPE: &str = "MCP_OAUTH_SCOPE";
pub const MCP_OAUTH_ALLOWED_USERS: &str = "MCP_OAUTH_ALLOWED_USERS";
pub const MCP_SESSION_AUTH_ENABLED: &str = "MCP_SESSION_AUTH_ENABLED";
pub const MCP_SESSION_AUTH_REQUIRE_FOR_SESSION: &str = "MCP_SESSION_AUTH_REQUIRE_FOR_SESSION";
pub const MCP_SESSION_AUTH_REQUIRE_FOR_OPERATIONS: &str = "MCP_SESSION_AUTH_REQUIRE_FOR_OPERATIONS";
pub const MCP_PUBLIC_URL: &str = "MCP_PUBLIC_URL";
pub const MCP_OIDC_ISSUER: &str = "MCP_OIDC_ISSUER";
pub const MCP_OIDC_AUDIENCE: &str = "MCP_OIDC_AUDIENCE";
pub const MCP_OIDC_JWKS_URL: &str = "MCP_OIDC_JWKS_URL";
pub const MCP_OIDC_REQUIRED_SCOPES: &str = "MCP_OIDC_REQUIRED_SCOPES";

// ---------------------------------------------------------------------------------------------
// Providers
// ---------------------------------------------------------------------------------------------
// The key and base-URL variables of the built-in providers are rows of
// `crate::builtin_providers::BUILTIN_PROVIDERS`; their entries in [`VARIABLES`] are made from it.
pub const OPENROUTER_REFERER: &str = "OPENROUTER_REFERER";
pub const OPENROUTER_TITLE: &str = "OPENROUTER_TITLE";
pub const CUSTOM_PROVIDERS: &str = "CUSTOM_PROVIDERS";
pub const PROVIDER_TIMEOUT: &str = "PROVIDER_TIMEOUT";
pub const PROVIDER_MAX_RETRIES: &str = "PROVIDER_MAX_RETRIES";

// ---------------------------------------------------------------------------------------------
// Conversations
// ---------------------------------------------------------------------------------------------
pub const CONVERSATION_STORE: &str = "CONVERSATION_STORE";
pub const REDIS_URL: &str = "REDIS_URL";
pub const CONVERSATION_TTL: &str = "CONVERSATION_TTL";
pub const CONVERSATION_MAX_COUNT: &str = "CONVERSATION_MAX_COUNT";
pub const CONVERSATION_MAX_MESSAGES: &str = "CONVERSATION_MAX_MESSAGES";
pub const CONVERSATION_MAX_BYTES: &str = "CONVERSATION_MAX_BYTES";

// ---------------------------------------------------------------------------------------------
// Telemetry
// ---------------------------------------------------------------------------------------------
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";

// ---------------------------------------------------------------------------------------------
// Per-custom-provider variables (names built at run time)
// ---------------------------------------------------------------------------------------------

/// The placeholder used wherever a custom provider's key variable must be named without
/// knowing the provider (for example in [`crate::ServerConfig::secrets_set`]).
pub const CUSTOM_API_KEY_PATTERN: &str = "CUSTOM_<NAME>_API_KEY";

/// `CUSTOM_<N>_` for a custom provider name: upper-cased, `-` replaced by `_`
/// (`local-vllm` → `CUSTOM_LOCAL_VLLM_`). Env var names cannot contain `-`.
pub fn custom_prefix(name: &str) -> String {
    format!("CUSTOM_{}_", name.to_ascii_uppercase().replace('-', "_"))
}

/// `CUSTOM_<N>_BASE_URL` for the custom provider `name` (required).
pub fn custom_base_url_var(name: &str) -> String {
    format!("{}BASE_URL", custom_prefix(name))
}

/// `CUSTOM_<N>_API_KEY` for the custom provider `name` (optional, secret).
pub fn custom_api_key_var(name: &str) -> String {
    format!("{}API_KEY", custom_prefix(name))
}

/// `CUSTOM_<N>_MODELS` for the custom provider `name` (required, comma list).
pub fn custom_models_var(name: &str) -> String {
    format!("{}MODELS", custom_prefix(name))
}

/// Whether a per-custom-provider variable name holds a secret (`CUSTOM_*_API_KEY`).
fn is_custom_secret(name: &str) -> bool {
    name.starts_with("CUSTOM_")
        && name.ends_with("_API_KEY")
        && name.len() > "CUSTOM__API_KEY".len()
}

/// One environment variable: its name, whether it is secret, its default as the string a user
/// would write, what it does, and the group it is listed under in the reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VarSpec {
    pub name: &'static str,
    /// Secret values are never shown in errors or logs, and the operator always sources them
    /// from a Kubernetes Secret (`secretKeyRef`).
    pub secret: bool,
    /// `None` when there is no default or the default depends on other variables (then the
    /// description says how).
    pub default: Option<&'static str>,
    pub description: Cow<'static, str>,
    pub group: &'static str,
}

const RUNTIME: &str = "Runtime";
const HTTP: &str = "HTTP";
const AUTH: &str = "Authentication";
const PROVIDERS: &str = "Providers";
const CONVERSATIONS: &str = "Conversations";
const TELEMETRY: &str = "Telemetry";

const fn var(
    name: &'static str,
    default: Option<&'static str>,
    group: &'static str,
    description: &'static str,
) -> VarSpec {
    VarSpec {
        name,
        secret: false,
        default,
        description: Cow::Borrowed(description),
        group,
    }
}

const fn secret(name: &'static str, group: &'static str, description: &'static str) -> VarSpec {
    VarSpec {
        name,
        secret: true,
        default: None,
        description: Cow::Borrowed(description),
        group,
    }
}

/// Every variable converse-server reads, grouped, in the order the reference lists them: the
/// hand-written entries with the built-in providers' variables (made from their table) before
/// the other provider settings.
pub static VARIABLES: LazyLock<Vec<VarSpec>> = LazyLock::new(|| {
    let at = LISTED
        .iter()
        .position(|v| v.name == OPENROUTER_REFERER)
        .unwrap_or(LISTED.len());
    let (before, after) = LISTED.split_at(at);
    before
        .iter()
        .cloned()
        .chain(BUILTIN_PROVIDERS.iter().flat_map(provider_variables))
        .chain(after.iter().cloned())
        .collect()
});

/// The key variable, the base-URL variable and their aliases of one built-in provider.
fn provider_variables(p: &BuiltinProvider) -> Vec<VarSpec> {
    let alias_of = |primary: &str| {
        format!("Alias of `{primary}`; setting both to different values is an error.")
    };
    let mut out = vec![VarSpec {
        description: format!("{} API key; enables the provider.", p.display_name).into(),
        ..secret(p.key_var, PROVIDERS, "")
    }];
    out.extend(p.key_aliases.iter().map(|alias| VarSpec {
        description: alias_of(p.key_var).into(),
        ..secret(alias, PROVIDERS, "")
    }));
    out.push(VarSpec {
        description: format!("{} API base URL.", p.display_name).into(),
        ..var(p.base_url_var, Some(p.default_base_url), PROVIDERS, "")
    });
    out.extend(p.base_url_aliases.iter().map(|alias| VarSpec {
        description: alias_of(p.base_url_var).into(),
        ..var(alias, None, PROVIDERS, "")
    }));
    out
}

/// The hand-written entries of [`VARIABLES`].
static LISTED: &[VarSpec] = &[
    // Runtime
    var(
        MCP_TRANSPORT,
        Some("http"),
        RUNTIME,
        "Transport: `http` or `stdio`. The `--transport` command-line flag wins over this variable.",
    ),
    var(
        LOG_LEVEL,
        Some("info"),
        RUNTIME,
        "Log verbosity: `silent` (no output), `error`, `warn`, `info`, `debug` or `trace`.",
    ),
    var(
        LOG_FORMAT,
        Some("text"),
        RUNTIME,
        "Log format: `text` (human-readable) or `json` (one object per line, for log collectors).",
    ),
    var(
        MAX_MCP_OUTPUT_TOKENS,
        Some("25000"),
        RUNTIME,
        "Cap on the size of a tool answer, in tokens (about 4 characters each); longer answers are truncated with a note. At least 1.",
    ),
    var(
        CONVERSE_FILES_ROOT,
        None,
        RUNTIME,
        "Absolute directory under which the `files`/`images` tool parameters may read local paths. Unset: local paths are refused over HTTP and allowed over stdio.",
    ),
    var(
        CONVERSE_MODELS_FILE,
        None,
        RUNTIME,
        "Path of a model catalog file that overrides the built-in catalog.",
    ),
    var(
        CONVERSE_ENV_FILE,
        None,
        RUNTIME,
        "A `KEY=VALUE` file read at start-up; default: `.env` in the working directory, as converse 1.3.2 read it (missing is fine for the default, an error for a named file). Variables of the real environment win over the file's.",
    ),
    var(
        MCP_SERVER_NAME,
        None,
        RUNTIME,
        "The server name advertised to MCP clients (`serverInfo.name`), as in converse 1.3.2; default: `converse-server`.",
    ),
    var(
        MCP_SERVER_VERSION,
        None,
        RUNTIME,
        "The server version advertised to MCP clients (`serverInfo.version`); default: this build's version.",
    ),
    // HTTP
    var(
        HTTP_HOST,
        Some("127.0.0.1"),
        HTTP,
        "Listen address. Container images set `0.0.0.0`.",
    ),
    var(
        HOST,
        None,
        HTTP,
        "Alias of `HTTP_HOST`; `HTTP_HOST` wins when both are set.",
    ),
    var(
        HTTP_PORT,
        Some("3157"),
        HTTP,
        "Listen port, 0-65535 (0 picks a free port and logs it).",
    ),
    var(
        PORT,
        None,
        HTTP,
        "Alias of `HTTP_PORT`; `HTTP_PORT` wins when both are set.",
    ),
    var(
        HTTP_REQUEST_TIMEOUT,
        Some("5m"),
        HTTP,
        "Time limit for receiving a request's body (408 beyond it). A tool call itself is bounded by `PROVIDER_TIMEOUT` per provider call, not by this. Duration: milliseconds (`300000`) or `30s`, `5m`, `1h 30m`. At least 1s.",
    ),
    var(
        HTTP_MAX_REQUEST_SIZE,
        Some("10mb"),
        HTTP,
        "Largest accepted request body; larger bodies get 413. Size: bytes, or a number with `b`, `kb`, `mb`, `gb` (1024-based) or `Ki`, `Mi`, `Gi`.",
    ),
    var(
        HTTP_SESSION_TIMEOUT,
        Some("30m"),
        HTTP,
        "An MCP session idle this long is closed (later requests with its id get 404). Duration, at least 1s.",
    ),
    var(
        HTTP_SESSION_CLEANUP_INTERVAL,
        Some("5m"),
        HTTP,
        "How often closed sessions and idle rate-limit entries are forgotten. Duration, at least 1s.",
    ),
    var(
        HTTP_MAX_CONCURRENT_SESSIONS,
        Some("100"),
        HTTP,
        "Session cap per server process (1-10000); beyond it new sessions get 503 with `Retry-After`.",
    ),
    var(
        HTTP_MAX_CONCURRENT_REQUESTS,
        Some("512"),
        HTTP,
        "Requests to `/mcp` in flight at once per server process, open streams included (1-100000); beyond it 503 with `Retry-After`. Bounds the memory request bodies can take.",
    ),
    var(
        HTTP_ENABLE_CORS,
        Some("true"),
        HTTP,
        "Answer CORS requests (browser clients).",
    ),
    var(
        HTTP_CORS_ORIGINS,
        None,
        HTTP,
        "Origins whose web pages may call the server (CORS, and the `Origin` check): a comma list such as `https://app.example.com`, or `*` (any page; needs an auth strategy other than `none`). Default: none — requests carrying an `Origin` header are refused (403) unless it is listed here or in `HTTP_ALLOWED_ORIGINS` or is the server's own origin; requests without `Origin` (CLIs, SDKs) are unaffected.",
    ),
    var(
        HTTP_CORS_METHODS,
        Some("GET,POST,DELETE,OPTIONS"),
        HTTP,
        "CORS allowed methods, comma list.",
    ),
    var(
        HTTP_CORS_HEADERS,
        Some(
            "Content-Type,Authorization,X-API-Key,Mcp-Session-Id,Mcp-Protocol-Version,Last-Event-ID,Mcp-Method,Mcp-Name",
        ),
        HTTP,
        "CORS allowed request headers, comma list.",
    ),
    var(
        HTTP_CORS_CREDENTIALS,
        Some("false"),
        HTTP,
        "Send `Access-Control-Allow-Credentials: true`. Not allowed together with `*` origins.",
    ),
    var(
        HTTP_DNS_REBINDING_PROTECTION,
        Some("true"),
        HTTP,
        "Reject requests whose `Host` header is not in `HTTP_ALLOWED_HOSTS` (403). On by default, unlike converse 1.3.2.",
    ),
    var(
        HTTP_ALLOWED_HOSTS,
        Some("localhost,127.0.0.1,::1"),
        HTTP,
        "Host names accepted in the `Host` header when DNS-rebinding protection is on, comma list.",
    ),
    var(
        HTTP_ALLOWED_ORIGINS,
        None,
        HTTP,
        "When set, requests carrying an `Origin` header not in this comma list get 403. Each entry is `scheme://host[:port]`, `scheme://host:*` (any port) or `null`.",
    ),
    var(
        HTTP_RATE_LIMIT_ENABLED,
        Some("false"),
        HTTP,
        "Limit requests per principal (or per client IP when unauthenticated); excess gets 429.",
    ),
    var(
        HTTP_RATE_LIMIT_WINDOW,
        Some("15m"),
        HTTP,
        "Rate-limit window. Duration, at least 1s.",
    ),
    var(
        HTTP_RATE_LIMIT_MAX_REQUESTS,
        Some("1000"),
        HTTP,
        "Requests allowed per window, at least 1.",
    ),
    var(
        HTTP_TRUSTED_PROXIES,
        None,
        HTTP,
        "Comma list of CIDRs (a bare IP means one address) whose `X-Forwarded-For` header is believed, e.g. `10.0.0.0/8`.",
    ),
    // Authentication
    var(
        MCP_AUTH_STRATEGY,
        Some("none"),
        AUTH,
        "`none`, `bearer` (JWT), `api_key` (also `apikey`, `api-key`), `oauth2` (login flow, this server issues JWTs) or `oidc` (tokens from an external identity provider).",
    ),
    var(
        MCP_AUTH_REQUIRE,
        None,
        AUTH,
        "Reject unauthenticated requests. Default: `true` unless the strategy is `none`; `true` with `none` is an error.",
    ),
    secret(
        MCP_JWT_SECRET,
        AUTH,
        "HMAC secret, at least 32 bytes. Needed by `bearer` with HS256/384/512 and by `oauth2` (signs the tokens it issues). Generate with `openssl rand -base64 32`.",
    ),
    var(
        MCP_JWT_ALGORITHM,
        Some("HS256"),
        AUTH,
        "The only JWT algorithm accepted (pinned): HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, PS256, PS384, PS512, EdDSA. `oauth2` needs an HS algorithm.",
    ),
    var(
        MCP_JWT_PUBLIC_KEY,
        None,
        AUTH,
        "PEM public key for `bearer` with an asymmetric algorithm. Exactly one of `MCP_JWT_PUBLIC_KEY`, `MCP_JWT_PUBLIC_KEY_FILE`, `MCP_JWT_JWKS_FILE`.",
    ),
    var(
        MCP_JWT_PUBLIC_KEY_FILE,
        None,
        AUTH,
        "Path of a PEM public key file (alternative to `MCP_JWT_PUBLIC_KEY`).",
    ),
    var(
        MCP_JWT_JWKS_FILE,
        None,
        AUTH,
        "Path of a JWKS file (alternative to `MCP_JWT_PUBLIC_KEY`).",
    ),
    var(
        MCP_JWT_EXPIRES_IN,
        Some("24h"),
        AUTH,
        "Lifetime of the tokens `oauth2` issues. Duration, at least 1s.",
    ),
    var(
        MCP_JWT_ISSUER,
        Some("converse-mcp-server"),
        AUTH,
        "`iss` claim required in `bearer` tokens and set in `oauth2` tokens.",
    ),
    var(
        MCP_JWT_AUDIENCE,
        None,
        AUTH,
        "When set, the `aud` claim `bearer` tokens must carry (and `oauth2` tokens get).",
    ),
    secret(
        MCP_API_KEYS,
        AUTH,
        "API keys for `api_key`, separated by commas or newlines; several allow rotation. An entry `sha256:<64 hex digits>` is the SHA-256 of a key, so the key itself need not be stored.",
    ),
    var(
        MCP_OAUTH_CLIENT_ID,
        None,
        AUTH,
        "`oauth2`: client id registered at the identity provider.",
    ),
    secret(MCP_OAUTH_CLIENT_SECRET, AUTH, "`oauth2`: client secret."),
    var(
        MCP_OAUTH_AUTH_URL,
        None,
        AUTH,
        "`oauth2`: authorization endpoint URL.",
    ),
    var(
        MCP_OAUTH_TOKEN_URL,
        None,
        AUTH,
        "`oauth2`: token endpoint URL.",
    ),
    var(
        MCP_OAUTH_USERINFO_URL,
        None,
        AUTH,
        "`oauth2`: the identity provider's user-info endpoint (required: it tells who logged in; its `sub`, `id`, `login` or `email` becomes the principal).",
    ),
    var(
        MCP_OAUTH_CALLBACK_URL,
        None,
        AUTH,
        "`oauth2`: absolute redirect URI, e.g. `https://mcp.example.com/oauth/callback`; must match the provider registration.",
    ),
    var(
        MCP_OAUTH_SCOPE,
        Some("openid profile email"),
        AUTH,
        "`oauth2`: requested scopes, space-separated.",
    ),
    var(
        MCP_OAUTH_ALLOWED_USERS,
        None,
        AUTH,
        "`oauth2` (required): who may log in. Comma list of subject ids, logins, verified e-mail addresses and `@domain` entries (any verified e-mail of that domain); anyone else gets 403 at the callback. `*` lets every account of the identity provider in (explicit opt-in, logged as a warning at start-up).",
    ),
    var(
        MCP_SESSION_AUTH_ENABLED,
        Some("true"),
        AUTH,
        "Apply the session rules below.",
    ),
    var(
        MCP_SESSION_AUTH_REQUIRE_FOR_SESSION,
        Some("false"),
        AUTH,
        "Require authentication for `initialize` (creating a session). Default false as in converse 1.3.2 (with any strategy but `none`, sessions opened without credentials are limited to a quarter of the session cap), but true for `oidc`.",
    ),
    var(
        MCP_SESSION_AUTH_REQUIRE_FOR_OPERATIONS,
        Some("true"),
        AUTH,
        "Require authentication for requests inside a session.",
    ),
    var(
        MCP_PUBLIC_URL,
        None,
        AUTH,
        "Public URL of the MCP endpoint, e.g. `https://mcp.example.com/mcp` (absolute http(s), no fragment). Required for `oidc`: the resource identifier of the Protected Resource Metadata and the default token audience.",
    ),
    var(
        MCP_OIDC_ISSUER,
        None,
        AUTH,
        "`oidc`: issuer URL of the identity provider; its JWKS is discovered from it.",
    ),
    var(
        MCP_OIDC_AUDIENCE,
        None,
        AUTH,
        "`oidc`: audience tokens must carry; default `MCP_PUBLIC_URL`.",
    ),
    var(
        MCP_OIDC_JWKS_URL,
        None,
        AUTH,
        "`oidc`: JWKS URL, when discovery from the issuer is not wanted.",
    ),
    var(
        MCP_OIDC_REQUIRED_SCOPES,
        None,
        AUTH,
        "`oidc`: scopes every token must carry, separated by commas or spaces; missing scope gives 403.",
    ),
    // Providers (after the rows made from the provider table)
    var(
        OPENROUTER_REFERER,
        None,
        PROVIDERS,
        "Sent to OpenRouter as `HTTP-Referer` (app attribution).",
    ),
    var(
        OPENROUTER_TITLE,
        None,
        PROVIDERS,
        "Sent to OpenRouter as `X-Title` (app attribution).",
    ),
    var(
        CUSTOM_PROVIDERS,
        None,
        PROVIDERS,
        "Comma list of names (`[a-z0-9-]+`) of OpenAI-compatible endpoints. For each name N (upper-cased, `-` becomes `_`): `CUSTOM_<N>_BASE_URL` (required), `CUSTOM_<N>_API_KEY` (optional, secret), `CUSTOM_<N>_MODELS` (required comma list of model ids).",
    ),
    var(
        PROVIDER_TIMEOUT,
        Some("10m"),
        PROVIDERS,
        "Time limit for one provider call attempt. Duration, at least 1s.",
    ),
    var(
        PROVIDER_MAX_RETRIES,
        Some("2"),
        PROVIDERS,
        "Retries (with backoff) after a 429 or 5xx answer, 0-10.",
    ),
    // Conversations
    var(
        CONVERSATION_STORE,
        Some("memory"),
        CONVERSATIONS,
        "Where continuation history is kept: `memory` (per process) or `redis` (shared by all replicas).",
    ),
    secret(
        REDIS_URL,
        CONVERSATIONS,
        "`redis://` or `rediss://` URL; required when `CONVERSATION_STORE=redis`. Secret because it may contain a password.",
    ),
    var(
        CONVERSATION_TTL,
        Some("24h"),
        CONVERSATIONS,
        "A conversation unused this long is forgotten. Duration, at least 1s.",
    ),
    var(
        CONVERSATION_MAX_COUNT,
        Some("1000"),
        CONVERSATIONS,
        "Conversations kept per store; the least recently used is dropped first. At least 1.",
    ),
    var(
        CONVERSATION_MAX_MESSAGES,
        Some("100"),
        CONVERSATIONS,
        "Messages kept per conversation; the oldest are dropped first. At least 1.",
    ),
    var(
        CONVERSATION_MAX_BYTES,
        Some("4mb"),
        CONVERSATIONS,
        "Bytes kept per conversation (size, like `HTTP_MAX_REQUEST_SIZE`).",
    ),
    // Telemetry
    var(
        OTEL_EXPORTER_OTLP_ENDPOINT,
        None,
        TELEMETRY,
        "OTLP/HTTP (protobuf) endpoint for traces, e.g. `http://otel-collector:4318`; spans go to `<endpoint>/v1/traces`. Unset disables export. Other standard `OTEL_*` variables (`OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_HEADERS`…) are read by the OpenTelemetry SDK.",
    ),
    var(
        OTEL_SERVICE_NAME,
        Some("converse-server"),
        TELEMETRY,
        "Service name reported to telemetry.",
    ),
];

/// The description of `name`, if it is a variable of [`VARIABLES`].
pub fn spec(name: &str) -> Option<&'static VarSpec> {
    VARIABLES.iter().find(|v| v.name == name)
}

/// Whether the value of `name` must never be shown: a secret of [`VARIABLES`] or a
/// `CUSTOM_<N>_API_KEY`.
pub fn is_secret(name: &str) -> bool {
    spec(name).is_some_and(|v| v.secret) || is_custom_secret(name)
}

/// The configuration reference as markdown: one `###` section and one table per group, in the
/// order of [`VARIABLES`]. The README embeds this output; a test there checks it did not drift.
pub fn render_markdown_reference() -> String {
    let mut out = String::from(
        "<!-- Generated by converse_config::render_markdown_reference(); do not edit by hand. -->\n",
    );
    let mut groups: Vec<&str> = Vec::new();
    for v in VARIABLES.iter() {
        if !groups.contains(&v.group) {
            groups.push(v.group);
        }
    }
    for group in groups {
        out.push_str(&format!("\n### {group}\n\n"));
        out.push_str("| Variable | Default | Secret | Description |\n");
        out.push_str("|---|---|---|---|\n");
        for v in VARIABLES.iter().filter(|v| v.group == group) {
            let default = v
                .default
                .map_or_else(|| "—".to_owned(), |d| format!("`{d}`"));
            let secret = if v.secret { "yes" } else { "" };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                v.name,
                escape_cell(&default),
                secret,
                escape_cell(&v.description)
            ));
        }
    }
    out
}

/// A table cell cannot contain a raw `|` or a line break.
fn escape_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Every `pub const X: &str = "X";` in this file, read from the source so that adding a
    /// constant without a [`VARIABLES`] entry (or the reverse) fails here.
    fn declared_constants() -> Vec<(String, String)> {
        include_str!("vars.rs")
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("pub const ")?;
                let (name, rest) = rest.split_once(": &str = \"")?;
                let (value, _) = rest.split_once('"')?;
                Some((name.to_owned(), value.to_owned()))
            })
            .collect()
    }

    #[test]
    fn constants_equal_their_names_and_match_variables() {
        let consts = declared_constants();
        assert!(consts.len() > 55, "found only {} constants", consts.len());
        let names: HashSet<&str> = VARIABLES.iter().map(|v| v.name).collect();
        for (name, value) in &consts {
            if name == "CUSTOM_API_KEY_PATTERN" {
                continue;
            }
            assert_eq!(name, value, "constant {name} has value {value}");
            assert!(
                names.contains(name.as_str()),
                "{name} missing from VARIABLES"
            );
        }
        let const_names: HashSet<&str> = consts.iter().map(|(n, _)| n.as_str()).collect();
        let from_table: HashSet<&str> = BUILTIN_PROVIDERS
            .iter()
            .flat_map(provider_variables)
            .map(|v| v.name)
            .collect();
        for v in VARIABLES.iter() {
            assert!(
                const_names.contains(v.name) || from_table.contains(v.name),
                "{} has no constant",
                v.name
            );
        }
    }

    #[test]
    fn variables_are_unique_and_described() {
        let mut seen = HashSet::new();
        for v in VARIABLES.iter() {
            assert!(seen.insert(v.name), "{} listed twice", v.name);
            assert!(!v.description.is_empty(), "{} has no description", v.name);
            assert!(!v.group.is_empty());
            assert!(
                !(v.secret && v.default.is_some()),
                "secret {} has a default",
                v.name
            );
        }
    }

    #[test]
    fn secrets_are_flagged() {
        for name in [
            MCP_JWT_SECRET,
            MCP_API_KEYS,
            MCP_OAUTH_CLIENT_SECRET,
            "OPENAI_API_KEY",
            "GEMINI_API_KEY",
            "GROQ_API_KEY",
            REDIS_URL,
            "CUSTOM_LOCAL_VLLM_API_KEY",
        ] {
            assert!(is_secret(name), "{name}");
        }
        for name in [
            HTTP_PORT,
            MCP_JWT_PUBLIC_KEY,
            "OPENAI_BASE_URL",
            "CUSTOM__API_KEY",
            "UNRELATED",
        ] {
            assert!(!is_secret(name), "{name}");
        }
    }

    #[test]
    fn custom_variable_names() {
        assert_eq!(
            custom_base_url_var("local-vllm"),
            "CUSTOM_LOCAL_VLLM_BASE_URL"
        );
        assert_eq!(custom_api_key_var("a1"), "CUSTOM_A1_API_KEY");
        assert_eq!(custom_models_var("x-y-z"), "CUSTOM_X_Y_Z_MODELS");
    }

    #[test]
    fn markdown_reference_lists_every_variable_once_per_group() {
        let md = render_markdown_reference();
        for v in VARIABLES.iter() {
            assert!(
                md.contains(&format!("| `{}` |", v.name)),
                "{} missing",
                v.name
            );
        }
        for group in [RUNTIME, HTTP, AUTH, PROVIDERS, CONVERSATIONS, TELEMETRY] {
            assert_eq!(
                md.matches(&format!("\n### {group}\n")).count(),
                1,
                "{group}"
            );
        }
        // Every table row has exactly 4 unescaped cell separators plus the outer ones.
        for line in md.lines().filter(|l| l.starts_with("| `")) {
            let cells = line.replace("\\|", "").matches('|').count();
            assert_eq!(cells, 5, "bad row: {line}");
        }
    }
}
