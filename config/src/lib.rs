//! The environment-variable contract of converse-server.
//!
//! converse-server is configured only through environment variables (the names of converse
//! 1.3.2, so existing `.env` files carry over). This crate turns them into a typed, validated
//! [`ServerConfig`], and is shared with the Kubernetes operator, which emits the same variables
//! using the names in [`vars`].
//!
//! Rules that hold everywhere:
//! - An empty (or all-blank) value counts as unset: the default applies.
//! - Every invalid variable is reported, all at once ([`ConfigErrors`]), naming the variable and
//!   the rule; the value is shown only when the variable is not secret.
//! - No `Debug` or `Display` output of this crate contains a secret ([`secrecy::SecretString`]).
//! - Unknown variables are ignored; near misses of known names become [`ServerConfig::warnings`].
//! - Parsing does no I/O (files named by variables are read by the server).

#[macro_use]
mod macros;

pub mod auth;
pub mod builtin_providers;
pub mod conversations;
pub mod env;
mod error;
pub mod http_server;
pub mod parse;
pub mod providers;
mod reader;
mod runtime;
mod suggest;
pub mod vars;

use std::net::IpAddr;
use std::path::PathBuf;

pub use auth::{
    AllowedUser, ApiKey, AuthConfig, AuthStrategy, JwtAlgorithm, JwtConfig, OAuthConfig,
    OidcConfig, SessionAuthConfig,
};
pub use builtin_providers::{BUILTIN_PROVIDERS, BuiltinProvider, ChatDialect, WireFormat};
pub use conversations::{ConversationConfig, ConversationStoreKind};
pub use error::{ConfigError, ConfigErrors};
pub use http_server::{CorsConfig, HttpConfig, RateLimitConfig};
pub use parse::ParseError;
pub use providers::{CustomProviderConfig, ProviderConfig, ProvidersConfig};
pub use runtime::{LogConfig, LogFormat, LogLevel, TelemetryConfig, Transport};
pub use vars::{VARIABLES, VarSpec, render_markdown_reference};

use reader::Reader;
use vars::*;

/// Everything converse-server needs to start. `Default` is the configuration of an empty
/// environment.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `--transport` if given, else `MCP_TRANSPORT`, else HTTP.
    pub transport: Transport,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub providers: ProvidersConfig,
    pub conversations: ConversationConfig,
    /// `MAX_MCP_OUTPUT_TOKENS`, at least 1.
    pub max_output_tokens: u32,
    /// `CONVERSE_FILES_ROOT`, absolute. `None`: local paths refused over HTTP.
    pub files_root: Option<PathBuf>,
    /// `CONVERSE_MODELS_FILE`: a model catalog replacing the built-in one.
    pub models_file: Option<PathBuf>,
    /// `MCP_SERVER_NAME` / `MCP_SERVER_VERSION`: what MCP clients are told (`serverInfo`);
    /// `None`: the server's own name and version.
    pub server_name: Option<String>,
    pub server_version: Option<String>,
    /// `CONVERSE_ENV_FILE`: the env file named explicitly (the server reads it before parsing;
    /// kept for the start-up log).
    pub env_file: Option<PathBuf>,
    pub telemetry: TelemetryConfig,
    /// Warnings found while reading the environment (near-miss names, an alias overridden,
    /// values set but unused). Use [`ServerConfig::warnings`], which adds the ones derived from
    /// the final configuration. Never contains a secret value.
    pub env_warnings: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            transport: Transport::default(),
            http: HttpConfig::default(),
            log: LogConfig::default(),
            auth: AuthConfig::default(),
            providers: ProvidersConfig::default(),
            conversations: ConversationConfig::default(),
            max_output_tokens: DEFAULT_MAX_OUTPUT_TOKENS,
            files_root: None,
            models_file: None,
            server_name: None,
            server_version: None,
            env_file: None,
            telemetry: TelemetryConfig::default(),
            env_warnings: Vec::new(),
        }
    }
}

/// Default of `MAX_MCP_OUTPUT_TOKENS` (converse 1.3.2's value).
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 25_000;

impl ServerConfig {
    /// Parse from `(name, value)` pairs: tests pass a map, [`ServerConfig::from_env`] the
    /// process environment. Later pairs win over earlier ones with the same name.
    /// `cli_transport` (the `--transport` flag) wins over `MCP_TRANSPORT`, which is still
    /// validated.
    ///
    /// Returns every error at once.
    pub fn from_vars<I, K, V>(
        vars: I,
        cli_transport: Option<Transport>,
    ) -> Result<ServerConfig, ConfigErrors>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        build(Reader::new(vars), cli_transport, &[])
    }

    /// Parse the process environment. Unlike `std::env::vars`, a variable that is not valid
    /// UTF-8 does not panic: it is reported if it is one of ours and ignored otherwise.
    pub fn from_env(cli_transport: Option<Transport>) -> Result<ServerConfig, ConfigErrors> {
        Self::from_env_over(cli_transport, Vec::new())
    }

    /// [`ServerConfig::from_env`], with `fallback` pairs (an env file's) for the names the
    /// process environment does not set: the real environment wins, as with dotenv.
    pub fn from_env_over(
        cli_transport: Option<Transport>,
        fallback: Vec<(String, String)>,
    ) -> Result<ServerConfig, ConfigErrors> {
        let mut pairs = Vec::new();
        let mut not_utf8 = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().map(str::to_owned) else {
                continue;
            };
            seen.insert(name.clone());
            match value.into_string() {
                Ok(value) => pairs.push((name, value)),
                Err(_) => {
                    if let Some(spec) = vars::spec(&name) {
                        not_utf8.push(spec.name);
                    }
                }
            }
        }
        pairs.extend(fallback.into_iter().filter(|(k, _)| !seen.contains(k)));
        build(Reader::new(pairs), cli_transport, &not_utf8)
    }

    /// The secret variables that are set (names only), for a start-up log line. In
    /// [`VARIABLES`] order; the Gemini key is reported as `GOOGLE_API_KEY`, and keys of custom
    /// providers as [`vars::CUSTOM_API_KEY_PATTERN`] once.
    pub fn secrets_set(&self) -> Vec<&'static str> {
        let p = &self.providers;
        let auth = [
            (MCP_JWT_SECRET, self.auth.jwt.secret.is_some()),
            (MCP_API_KEYS, !self.auth.api_keys.is_empty()),
            (
                MCP_OAUTH_CLIENT_SECRET,
                self.auth.oauth.client_secret.is_some(),
            ),
        ];
        let rest = [
            (
                CUSTOM_API_KEY_PATTERN,
                p.custom.iter().any(|c| c.api_key.is_some()),
            ),
            (REDIS_URL, self.conversations.redis_url.is_some()),
        ];
        let set = |(name, set): &(&'static str, bool)| set.then_some(*name);
        auth.iter()
            .filter_map(set)
            .chain(p.configured_builtin().map(|(b, _)| b.key_var))
            .chain(rest.iter().filter_map(set))
            .collect()
    }

    /// Things worth a warning at start-up that are not errors: [`ServerConfig::env_warnings`]
    /// plus no provider configured, and no authentication on a non-loopback address.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = self.env_warnings.clone();
        if self.providers.is_empty() {
            out.push(format!(
                "no provider is configured: set at least one of {} or {CUSTOM_PROVIDERS}; tools \
                 answer with an error until then",
                builtin_providers::key_vars().join(", ")
            ));
        }
        if self.transport == Transport::Http
            && self.auth.strategy == AuthStrategy::None
            && !is_loopback(&self.http.host)
        {
            out.push(format!(
                "{MCP_AUTH_STRATEGY}=none while listening on {}:{}: anyone who can reach this \
                 address can use the configured provider keys",
                self.http.host, self.http.port
            ));
        }
        out
    }
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn build(
    mut r: Reader,
    cli_transport: Option<Transport>,
    not_utf8: &[&'static str],
) -> Result<ServerConfig, ConfigErrors> {
    for name in not_utf8 {
        r.error(name, "is not valid UTF-8");
    }
    let env_transport = r.parse_opt(MCP_TRANSPORT, str::parse::<Transport>);
    let transport = cli_transport.or(env_transport).unwrap_or_default();
    let log = runtime::parse_log(&mut r);
    let max_output_tokens = r.parse_or(MAX_MCP_OUTPUT_TOKENS, DEFAULT_MAX_OUTPUT_TOKENS, |s| {
        parse::integer(s, 1, u64::from(u32::MAX))
    });
    let files_root = r.parse_opt(CONVERSE_FILES_ROOT, parse::absolute_path);
    let models_file = r.get(CONVERSE_MODELS_FILE).map(PathBuf::from);
    let server_name = r.string(MCP_SERVER_NAME);
    let server_version = r.string(MCP_SERVER_VERSION);
    let env_file = r.get(CONVERSE_ENV_FILE).map(PathBuf::from);
    let http = http_server::parse(&mut r);
    let auth = auth::parse(&mut r);
    let providers = providers::parse(&mut r);
    let conversations = conversations::parse(&mut r);
    let telemetry = runtime::parse_telemetry(&mut r);
    if http.cors.any_origin() && auth.strategy == AuthStrategy::None {
        r.error(
            HTTP_CORS_ORIGINS,
            format!(
                "* lets any web page the user visits call this server with its provider keys; \
                 it needs {MCP_AUTH_STRATEGY} other than none. List the allowed origins instead \
                 (https://app.example.com)"
            ),
        );
    }
    suggest::check_names(&mut r);

    let (errors, env_warnings) = r.finish();
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(ServerConfig {
        transport,
        http,
        log,
        auth,
        providers,
        conversations,
        max_output_tokens,
        files_root,
        models_file,
        server_name,
        server_version,
        env_file,
        telemetry,
        env_warnings,
    })
}

#[cfg(test)]
mod tests;
