//! Authentication: strategy, JWT, API keys, OAuth2 login flow, session rules, OIDC resource
//! server. The cross-field rules live here too, so the server can rely on a strategy having
//! everything it needs once parsing succeeded.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::parse::{self, ParseError};
use crate::reader::Reader;
use crate::vars::*;

/// Minimum length of an HMAC secret: RFC 7518 §3.2 requires a key at least as long as the hash
/// output (32 bytes for HS256).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Minimum length of a plain API key: a guessable key is a password, not a key. Digest entries
/// (`sha256:`) are exempt: their key's length cannot be checked.
pub const MIN_API_KEY_CHARS: usize = 32;

string_enum! {
    /// How requests are authenticated.
    #[derive(Default)]
    pub enum AuthStrategy: "none, bearer, api_key, oauth2, oidc" {
        #[default]
        None = "none",
        /// JWTs verified with a pinned algorithm and a shared secret or public key.
        Bearer = "bearer",
        /// Static keys in `X-API-Key` or `Authorization: Bearer`.
        ApiKey = "api_key" | "apikey" | "api-key",
        /// Login flow at an external provider; this server then issues its own JWTs.
        OAuth2 = "oauth2",
        /// MCP-spec resource server: tokens from an external IdP, checked against its JWKS.
        Oidc = "oidc",
    }
}

string_enum! {
    /// The only JWT algorithm accepted (pinned, so `alg: none` and HS/RS confusion are
    /// impossible). Names as in RFC 7518 and the `jsonwebtoken` crate.
    #[derive(Default)]
    #[allow(clippy::upper_case_acronyms)]
    pub enum JwtAlgorithm: "HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, PS256, PS384, PS512, EdDSA" {
        #[default]
        HS256 = "HS256",
        HS384 = "HS384",
        HS512 = "HS512",
        RS256 = "RS256",
        RS384 = "RS384",
        RS512 = "RS512",
        ES256 = "ES256",
        ES384 = "ES384",
        PS256 = "PS256",
        PS384 = "PS384",
        PS512 = "PS512",
        EdDSA = "EdDSA",
    }
}

impl JwtAlgorithm {
    /// HMAC algorithms verify with `MCP_JWT_SECRET`; the others with a public key or JWKS.
    pub fn is_symmetric(self) -> bool {
        matches!(
            self,
            JwtAlgorithm::HS256 | JwtAlgorithm::HS384 | JwtAlgorithm::HS512
        )
    }
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub strategy: AuthStrategy,
    /// Reject unauthenticated requests (`MCP_AUTH_REQUIRE`); defaults to true for every
    /// strategy but `none`. Never true with `none` (rejected: it would look secure and not be).
    pub required: bool,
    pub jwt: JwtConfig,
    pub api_keys: Vec<ApiKey>,
    pub oauth: OAuthConfig,
    pub session_auth: SessionAuthConfig,
    pub oidc: OidcConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            strategy: AuthStrategy::None,
            required: false,
            jwt: JwtConfig::default(),
            api_keys: Vec::new(),
            oauth: OAuthConfig::default(),
            session_auth: SessionAuthConfig::default(),
            oidc: OidcConfig::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// HMAC secret, exactly as given (not trimmed: other parties signing with the same Secret
    /// must get the same bytes). At least [`MIN_JWT_SECRET_BYTES`] when a strategy uses it.
    pub secret: Option<SecretString>,
    pub algorithm: JwtAlgorithm,
    /// PEM text (checked only for a `-----BEGIN` marker; the server parses the key).
    pub public_key: Option<String>,
    /// Read by the server at start-up; this crate does no I/O.
    pub public_key_file: Option<PathBuf>,
    pub jwks_file: Option<PathBuf>,
    pub expires_in: Duration,
    pub issuer: String,
    pub audience: Option<String>,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            secret: None,
            algorithm: JwtAlgorithm::HS256,
            public_key: None,
            public_key_file: None,
            jwks_file: None,
            expires_in: Duration::from_secs(24 * 3600),
            issuer: "converse-mcp-server".to_owned(),
            audience: None,
        }
    }
}

/// One accepted API key.
#[derive(Clone)]
pub enum ApiKey {
    /// The key itself.
    Plain(SecretString),
    /// SHA-256 of the key (`sha256:<64 hex>`), so the Secret need not hold usable keys.
    Sha256([u8; 32]),
}

/// Redacted: neither the key nor its hash is printed.
impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiKey::Plain(_) => f.write_str("ApiKey::Plain([REDACTED])"),
            ApiKey::Sha256(_) => f.write_str("ApiKey::Sha256([REDACTED])"),
        }
    }
}

impl ApiKey {
    /// Parse one `MCP_API_KEYS` entry. An entry starting with `sha256:` (any case) must be
    /// followed by exactly 64 hex digits; anything else is a plain key of at least
    /// [`MIN_API_KEY_CHARS`].
    pub fn parse(entry: &str) -> Result<ApiKey, ParseError> {
        let prefix = "sha256:";
        match entry.get(..prefix.len()) {
            Some(p) if p.eq_ignore_ascii_case(prefix) => decode_sha256(&entry[prefix.len()..])
                .map(ApiKey::Sha256)
                .ok_or_else(|| {
                    ParseError::Rule(
                        "\"sha256:\" must be followed by exactly 64 hex digits".to_owned(),
                    )
                }),
            _ if entry.chars().count() < MIN_API_KEY_CHARS => Err(ParseError::Rule(format!(
                "is too short (value not shown: secret): plain keys need at least \
                 {MIN_API_KEY_CHARS} characters, e.g. from `openssl rand -hex 32`; or give the \
                 key's digest as sha256:<64 hex>"
            ))),
            _ => Ok(ApiKey::Plain(SecretString::from(entry.to_owned()))),
        }
    }
}

fn decode_sha256(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub auth_url: Option<Url>,
    pub token_url: Option<Url>,
    pub userinfo_url: Option<Url>,
    /// Always absolute (1.3.2 fell back to a relative `/oauth/callback`, which providers reject).
    pub callback_url: Option<Url>,
    /// Space-separated scopes, as sent to the provider.
    pub scope: String,
    /// Who may log in (`MCP_OAUTH_ALLOWED_USERS`); required with `oauth2`.
    pub allowed_users: Vec<AllowedUser>,
}

/// One `MCP_OAUTH_ALLOWED_USERS` entry. Anyone can make an account at GitHub or Google, so an
/// `oauth2` server names the accounts it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedUser {
    /// `*`: every account of the identity provider (an explicit opt-in, warned about).
    Anyone,
    /// `@example.com`: every *verified* e-mail address of the domain; lower-case, no `@`.
    Domain(String),
    /// A subject id (exact), a login or a verified e-mail address (both case-insensitive).
    Identity(String),
}

impl AllowedUser {
    pub fn parse(entry: &str) -> Result<AllowedUser, ParseError> {
        if entry == "*" {
            return Ok(AllowedUser::Anyone);
        }
        match entry.strip_prefix('@') {
            Some(domain) if is_domain(domain) => {
                Ok(AllowedUser::Domain(domain.to_ascii_lowercase()))
            }
            Some(_) => Err(ParseError::Rule(format!(
                "\"{entry}\" is not a domain entry: expected @ followed by a domain name like @example.com"
            ))),
            None => Ok(AllowedUser::Identity(entry.to_owned())),
        }
    }
}

fn is_domain(s: &str) -> bool {
    s.contains('.')
        && s.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            client_id: None,
            client_secret: None,
            auth_url: None,
            token_url: None,
            userinfo_url: None,
            callback_url: None,
            scope: "openid profile email".to_owned(),
            allowed_users: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAuthConfig {
    pub enabled: bool,
    pub require_for_session: bool,
    pub require_for_operations: bool,
}

impl Default for SessionAuthConfig {
    fn default() -> Self {
        SessionAuthConfig {
            enabled: true,
            require_for_session: false,
            require_for_operations: true,
        }
    }
}

/// The MCP authorization spec's resource-server settings.
///
/// Note on comparing URLs: `url::Url` writes an empty path as `/`, so
/// `https://accounts.google.com` is stored as `https://accounts.google.com/`. Compare a token's
/// `iss`/`aud` with these by parsing the claim as a `Url` and comparing `Url`s (or use the
/// issuer string returned by discovery), not by comparing strings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OidcConfig {
    /// Public URL of the MCP endpoint: the resource identifier (RFC 9728) and the default
    /// audience.
    pub public_url: Option<Url>,
    pub issuer: Option<Url>,
    pub audience: Option<String>,
    /// `None`: discovered from the issuer's metadata.
    pub jwks_url: Option<Url>,
    pub required_scopes: Vec<String>,
}

impl OidcConfig {
    /// The audience tokens must carry: `MCP_OIDC_AUDIENCE`, else `MCP_PUBLIC_URL`.
    pub fn effective_audience(&self) -> Option<String> {
        self.audience
            .clone()
            .or_else(|| self.public_url.as_ref().map(|u| u.as_str().to_owned()))
    }
}

pub(crate) fn parse(r: &mut Reader) -> AuthConfig {
    let d = AuthConfig::default();

    let strategy = r.parse_opt(MCP_AUTH_STRATEGY, str::parse::<AuthStrategy>);
    let strategy_valid = strategy.is_some() || !r.is_set(MCP_AUTH_STRATEGY);
    let strategy = strategy.unwrap_or_default();
    let required = r
        .parse_opt(MCP_AUTH_REQUIRE, parse::boolean)
        .unwrap_or(strategy != AuthStrategy::None);

    let (jwt, algorithm_valid) = parse_jwt(r, &d.jwt);

    let api_keys = parse_api_keys(r);

    let oauth = OAuthConfig {
        client_id: r.string(MCP_OAUTH_CLIENT_ID),
        client_secret: r
            .get(MCP_OAUTH_CLIENT_SECRET)
            .map(|s| SecretString::from(s.to_owned())),
        auth_url: r.parse_opt(MCP_OAUTH_AUTH_URL, parse::http_url),
        token_url: r.parse_opt(MCP_OAUTH_TOKEN_URL, parse::http_url),
        userinfo_url: r.parse_opt(MCP_OAUTH_USERINFO_URL, parse::http_url),
        callback_url: r.parse_opt(MCP_OAUTH_CALLBACK_URL, parse::http_url),
        scope: r.string_or(MCP_OAUTH_SCOPE, &d.oauth.scope),
        allowed_users: r
            .parse_opt(MCP_OAUTH_ALLOWED_USERS, parse_allowed_users)
            .unwrap_or_default(),
    };

    let session_auth = SessionAuthConfig {
        enabled: r.parse_or(
            MCP_SESSION_AUTH_ENABLED,
            d.session_auth.enabled,
            parse::boolean,
        ),
        // converse 1.3.2 let `initialize` through without credentials by default.
        // `oidc` is new and follows the MCP authorization spec instead: every
        // request is authorized, so there the default is true.
        require_for_session: r.parse_or(
            MCP_SESSION_AUTH_REQUIRE_FOR_SESSION,
            strategy == AuthStrategy::Oidc || d.session_auth.require_for_session,
            parse::boolean,
        ),
        require_for_operations: r.parse_or(
            MCP_SESSION_AUTH_REQUIRE_FOR_OPERATIONS,
            d.session_auth.require_for_operations,
            parse::boolean,
        ),
    };

    let oidc = OidcConfig {
        public_url: r.parse_opt(MCP_PUBLIC_URL, parse::http_url),
        issuer: r.parse_opt(MCP_OIDC_ISSUER, parse::http_url),
        audience: r.string(MCP_OIDC_AUDIENCE),
        jwks_url: r.parse_opt(MCP_OIDC_JWKS_URL, parse::http_url),
        required_scopes: r
            .get(MCP_OIDC_REQUIRED_SCOPES)
            .map(parse::list_words)
            .unwrap_or_default(),
    };

    let config = AuthConfig {
        strategy,
        required,
        jwt,
        api_keys,
        oauth,
        session_auth,
        oidc,
    };
    if strategy_valid {
        check_rules(r, &config, algorithm_valid);
    }
    config
}

/// The `MCP_JWT_*` variables, and whether `MCP_JWT_ALGORITHM` is valid (or unset): the
/// cross-field rules about keys only make sense for a known algorithm.
fn parse_jwt(r: &mut Reader, d: &JwtConfig) -> (JwtConfig, bool) {
    let algorithm = r.parse_opt(MCP_JWT_ALGORITHM, str::parse::<JwtAlgorithm>);
    let algorithm_valid = algorithm.is_some() || !r.is_set(MCP_JWT_ALGORITHM);
    let public_key = r.get(MCP_JWT_PUBLIC_KEY).map(str::to_owned);
    if let Some(pem) = &public_key
        && !pem.contains("-----BEGIN ")
    {
        r.invalid(
            MCP_JWT_PUBLIC_KEY,
            pem,
            "expected PEM text starting with -----BEGIN PUBLIC KEY----- (for a file path use \
             MCP_JWT_PUBLIC_KEY_FILE)",
        );
    }
    let jwt = JwtConfig {
        secret: r
            .raw(MCP_JWT_SECRET)
            .map(|s| SecretString::from(s.to_owned())),
        algorithm: algorithm.unwrap_or_default(),
        public_key,
        public_key_file: r.get(MCP_JWT_PUBLIC_KEY_FILE).map(PathBuf::from),
        jwks_file: r.get(MCP_JWT_JWKS_FILE).map(PathBuf::from),
        expires_in: r.parse_or(MCP_JWT_EXPIRES_IN, d.expires_in, |s| {
            parse::duration_at_least(s, Duration::from_secs(1))
        }),
        issuer: r.string_or(MCP_JWT_ISSUER, &d.issuer),
        audience: r.string(MCP_JWT_AUDIENCE),
    };
    (jwt, algorithm_valid)
}

fn parse_api_keys(r: &mut Reader) -> Vec<ApiKey> {
    let Some(value) = r.get(MCP_API_KEYS).map(str::to_owned) else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    for (i, entry) in parse::list_lines(&value).iter().enumerate() {
        match ApiKey::parse(entry) {
            Ok(k) => keys.push(k),
            // The entry is secret: say which one, never what it is.
            Err(e) => r.error(MCP_API_KEYS, format!("entry {}: {e}", i + 1)),
        }
    }
    keys
}

fn parse_allowed_users(s: &str) -> Result<Vec<AllowedUser>, ParseError> {
    let users = parse::list(s)
        .iter()
        .map(|e| AllowedUser::parse(e))
        .collect::<Result<Vec<_>, _>>()?;
    if users.contains(&AllowedUser::Anyone) && users.len() > 1 {
        return Err(ParseError::Rule(
            "\"*\" (every account) must be the only entry".to_owned(),
        ));
    }
    Ok(users)
}

/// The cross-field rules. Each broken rule is one error naming the variable to set or fix.
fn check_rules(r: &mut Reader, c: &AuthConfig, algorithm_valid: bool) {
    let strategy = c.strategy;
    let when = format!("{MCP_AUTH_STRATEGY}={strategy}");

    if strategy == AuthStrategy::None && c.required && r.is_set(MCP_AUTH_REQUIRE) {
        r.error(
            MCP_AUTH_REQUIRE,
            format!("true needs an authentication strategy; set {MCP_AUTH_STRATEGY} to bearer, api_key, oauth2 or oidc"),
        );
    }
    match strategy {
        AuthStrategy::Bearer if algorithm_valid => check_bearer(r, c, &when),
        AuthStrategy::ApiKey if c.api_keys.is_empty() && !r.has_error(MCP_API_KEYS) => {
            r.error(
                MCP_API_KEYS,
                format!("at least one key is required when {when}"),
            );
        }
        AuthStrategy::OAuth2 => check_oauth2(r, c, &when, algorithm_valid),
        AuthStrategy::Oidc => check_oidc(r, c, &when),
        _ => {}
    }
    warn_unused(r, c, &when);
}

/// `bearer`: an HMAC algorithm needs the shared secret and no public key; an asymmetric one
/// exactly one source of public keys.
fn check_bearer(r: &mut Reader, c: &AuthConfig, when: &str) {
    let alg = c.jwt.algorithm;
    // A key variable with an error (say, not UTF-8) still counts as set: one was meant.
    let key_vars = [
        (
            MCP_JWT_PUBLIC_KEY,
            c.jwt.public_key.is_some() || r.has_error(MCP_JWT_PUBLIC_KEY),
        ),
        (MCP_JWT_PUBLIC_KEY_FILE, c.jwt.public_key_file.is_some()),
        (MCP_JWT_JWKS_FILE, c.jwt.jwks_file.is_some()),
    ];
    if alg.is_symmetric() {
        require_jwt_secret(r, c, &format!("{when} and {MCP_JWT_ALGORITHM}={alg}"));
        for (var, set) in key_vars {
            if set && !r.has_error(var) {
                r.error(
                    var,
                    format!(
                        "is only used with an asymmetric {MCP_JWT_ALGORITHM} (RS*, ES*, PS*, \
                         EdDSA), but {MCP_JWT_ALGORITHM} is {alg}; set the algorithm the \
                         key is for, or unset {var}"
                    ),
                );
            }
        }
    } else {
        let set: Vec<&'static str> = key_vars
            .iter()
            .filter(|(_, s)| *s)
            .map(|(v, _)| *v)
            .collect();
        match set.as_slice() {
            [] => r.error(
                MCP_JWT_PUBLIC_KEY,
                format!(
                    "one of {MCP_JWT_PUBLIC_KEY}, {MCP_JWT_PUBLIC_KEY_FILE} or \
                     {MCP_JWT_JWKS_FILE} is required when {when} and \
                     {MCP_JWT_ALGORITHM}={alg}"
                ),
            ),
            [_] => {}
            [first, rest @ ..] => {
                r.error(
                    first,
                    format!(
                        "only one of {MCP_JWT_PUBLIC_KEY}, {MCP_JWT_PUBLIC_KEY_FILE}, \
                         {MCP_JWT_JWKS_FILE} may be set, but {first} and {} are",
                        rest.join(" and ")
                    ),
                );
            }
        }
    }
}

/// `oauth2`: every endpoint of the provider and the client credentials, and an HMAC algorithm
/// with its secret for the tokens this server issues.
fn check_oauth2(r: &mut Reader, c: &AuthConfig, when: &str, algorithm_valid: bool) {
    let missing = [
        (MCP_OAUTH_CLIENT_ID, c.oauth.client_id.is_none()),
        (MCP_OAUTH_CLIENT_SECRET, c.oauth.client_secret.is_none()),
        (MCP_OAUTH_AUTH_URL, c.oauth.auth_url.is_none()),
        (MCP_OAUTH_TOKEN_URL, c.oauth.token_url.is_none()),
        // Without user info the server cannot tell who logged in.
        (MCP_OAUTH_USERINFO_URL, c.oauth.userinfo_url.is_none()),
        (MCP_OAUTH_CALLBACK_URL, c.oauth.callback_url.is_none()),
    ];
    for (var, is_missing) in missing {
        if is_missing && !r.has_error(var) {
            r.error(var, format!("is required when {when}"));
        }
    }
    if c.oauth.allowed_users.is_empty() && !r.has_error(MCP_OAUTH_ALLOWED_USERS) {
        r.error(
            MCP_OAUTH_ALLOWED_USERS,
            format!(
                "is required when {when}: anyone can make an account at the identity provider, \
                 so name who may log in (subject ids, logins, verified e-mails, @domain), or `*` \
                 to let every account in"
            ),
        );
    }
    if c.oauth.allowed_users == [AllowedUser::Anyone] {
        r.warn(format!(
            "{MCP_OAUTH_ALLOWED_USERS}=*: every account at the identity provider may log in and \
             use the provider keys"
        ));
    }
    if algorithm_valid && !c.jwt.algorithm.is_symmetric() {
        r.error(
            MCP_JWT_ALGORITHM,
            format!(
                "must be HS256, HS384 or HS512 when {when}: the server signs its own \
                 tokens with {MCP_JWT_SECRET}"
            ),
        );
    }
    require_jwt_secret(
        r,
        c,
        &format!("{when} (it signs the tokens this server issues)"),
    );
}

/// `oidc`: the issuer, and the public URL of the endpoint.
fn check_oidc(r: &mut Reader, c: &AuthConfig, when: &str) {
    if c.oidc.issuer.is_none() && !r.has_error(MCP_OIDC_ISSUER) {
        r.error(MCP_OIDC_ISSUER, format!("is required when {when}"));
    }
    // The Protected Resource Metadata needs the canonical URL of `/mcp`;
    // behind an ingress it cannot be guessed from request headers.
    if c.oidc.public_url.is_none() && !r.has_error(MCP_PUBLIC_URL) {
        r.error(
            MCP_PUBLIC_URL,
            format!(
                "is required when {when}: the canonical URL of the MCP endpoint (e.g. \
                 https://mcp.example.com/mcp), published as the protected resource and the \
                 default token audience"
            ),
        );
    }
}

/// Values that are set but that the chosen strategy ignores: not wrong, but worth a line in the
/// log, because they usually mean the strategy is not the one intended.
fn warn_unused(r: &mut Reader, c: &AuthConfig, when: &str) {
    let strategy = c.strategy;
    let alg = c.jwt.algorithm;
    let uses_secret = matches!(strategy, AuthStrategy::OAuth2)
        || (strategy == AuthStrategy::Bearer && alg.is_symmetric());
    if c.jwt.secret.is_some() && !uses_secret {
        r.warn(format!(
            "{MCP_JWT_SECRET} is set but not used with {when} and {MCP_JWT_ALGORITHM}={alg}"
        ));
    }
    if !c.api_keys.is_empty() && strategy != AuthStrategy::ApiKey {
        r.warn(format!("{MCP_API_KEYS} is set but not used with {when}"));
    }
}

fn require_jwt_secret(r: &mut Reader, c: &AuthConfig, when: &str) {
    match &c.jwt.secret {
        None => r.error(
            MCP_JWT_SECRET,
            format!(
                "is required when {when}; at least {MIN_JWT_SECRET_BYTES} bytes, e.g. from \
                 `openssl rand -base64 32`"
            ),
        ),
        Some(secret) => {
            use secrecy::ExposeSecret;
            if secret.expose_secret().len() < MIN_JWT_SECRET_BYTES {
                r.error(
                    MCP_JWT_SECRET,
                    format!(
                        "is too short (value not shown: secret): at least {MIN_JWT_SECRET_BYTES} \
                         bytes are required, e.g. from `openssl rand -base64 32`"
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    /// A plain key of the minimum length.
    const KEY: &str = "k0123456789abcdef0123456789abcde";
    const API_KEY_HASH_UPPER: &str =
        "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
    const PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n";

    fn auth(vars: &[(&str, &str)]) -> Result<(AuthConfig, Vec<String>), Vec<crate::ConfigError>> {
        let mut r = Reader::new(vars.iter().copied());
        let c = parse(&mut r);
        let (e, w) = r.finish();
        if e.is_empty() { Ok((c, w)) } else { Err(e) }
    }

    fn error_vars(vars: &[(&str, &str)]) -> Vec<&'static str> {
        match auth(vars) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(|e| e.var).collect(),
        }
    }

    #[test]
    fn defaults() {
        let (c, w) = auth(&[]).expect("defaults are valid");
        assert!(w.is_empty());
        assert_eq!(c.strategy, AuthStrategy::None);
        assert!(!c.required);
        assert_eq!(c.jwt.algorithm, JwtAlgorithm::HS256);
        assert_eq!(c.jwt.expires_in, Duration::from_secs(86_400));
        assert_eq!(c.jwt.issuer, "converse-mcp-server");
        assert_eq!(c.oauth.scope, "openid profile email");
        assert_eq!(c.session_auth, SessionAuthConfig::default());
        assert_eq!(c.oidc, OidcConfig::default());
    }

    #[test]
    fn strategy_aliases() {
        for s in ["api_key", "apikey", "api-key", "apiKey", "API_KEY"] {
            let (c, _) = auth(&[("MCP_AUTH_STRATEGY", s), ("MCP_API_KEYS", KEY)]).expect(s);
            assert_eq!(c.strategy, AuthStrategy::ApiKey, "{s}");
            assert!(c.required, "required defaults to true with a strategy");
        }
        assert_eq!(
            error_vars(&[("MCP_AUTH_STRATEGY", "custom")]),
            ["MCP_AUTH_STRATEGY"]
        );
    }

    #[test]
    fn algorithms() {
        for alg in JwtAlgorithm::ALL {
            assert_eq!(alg.as_str().parse::<JwtAlgorithm>(), Ok(*alg));
        }
        assert_eq!("eddsa".parse::<JwtAlgorithm>(), Ok(JwtAlgorithm::EdDSA));
        assert!("none".parse::<JwtAlgorithm>().is_err());
        assert!(JwtAlgorithm::HS512.is_symmetric());
        assert!(!JwtAlgorithm::ES256.is_symmetric());
        assert_eq!(
            error_vars(&[("MCP_JWT_ALGORITHM", "none")]),
            ["MCP_JWT_ALGORITHM"]
        );
    }

    #[test]
    fn require_with_none_is_an_error_but_false_is_fine() {
        assert_eq!(
            error_vars(&[("MCP_AUTH_REQUIRE", "true")]),
            ["MCP_AUTH_REQUIRE"]
        );
        assert!(auth(&[("MCP_AUTH_REQUIRE", "false")]).is_ok());
        let (c, _) = auth(&[
            ("MCP_AUTH_STRATEGY", "api_key"),
            ("MCP_API_KEYS", KEY),
            ("MCP_AUTH_REQUIRE", "no"),
        ])
        .expect("valid");
        assert!(!c.required);
    }

    #[test]
    fn bearer_hs_needs_a_long_secret() {
        assert_eq!(
            error_vars(&[("MCP_AUTH_STRATEGY", "bearer")]),
            ["MCP_JWT_SECRET"]
        );
        let short = [
            ("MCP_AUTH_STRATEGY", "bearer"),
            ("MCP_JWT_SECRET", "too-short-secret"),
        ];
        let errs = auth(&short).expect_err("short secret");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].var, "MCP_JWT_SECRET");
        assert!(!errs[0].message.contains("too-short-secret"));
        let (c, _) =
            auth(&[("MCP_AUTH_STRATEGY", "bearer"), ("MCP_JWT_SECRET", SECRET)]).expect("valid");
        assert_eq!(
            c.jwt.secret.as_ref().map(|s| s.expose_secret().to_owned()),
            Some(SECRET.to_owned())
        );
    }

    #[test]
    fn bearer_hs_rejects_a_public_key() {
        let vars = [
            ("MCP_AUTH_STRATEGY", "bearer"),
            ("MCP_JWT_SECRET", SECRET),
            ("MCP_JWT_PUBLIC_KEY", PEM),
        ];
        assert_eq!(error_vars(&vars), ["MCP_JWT_PUBLIC_KEY"]);
    }

    #[test]
    fn bearer_asymmetric_needs_exactly_one_key_source() {
        let base = [
            ("MCP_AUTH_STRATEGY", "bearer"),
            ("MCP_JWT_ALGORITHM", "RS256"),
        ];
        assert_eq!(error_vars(&base), ["MCP_JWT_PUBLIC_KEY"]);

        for (var, value) in [
            ("MCP_JWT_PUBLIC_KEY", PEM),
            ("MCP_JWT_PUBLIC_KEY_FILE", "/keys/pub.pem"),
            ("MCP_JWT_JWKS_FILE", "/keys/jwks.json"),
        ] {
            let mut vars = base.to_vec();
            vars.push((var, value));
            assert!(auth(&vars).is_ok(), "{var}");
        }

        let mut two = base.to_vec();
        two.extend([
            ("MCP_JWT_PUBLIC_KEY_FILE", "/k.pem"),
            ("MCP_JWT_JWKS_FILE", "/j.json"),
        ]);
        let errs = auth(&two).expect_err("two sources");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].var, "MCP_JWT_PUBLIC_KEY_FILE");
        assert!(errs[0].message.contains("MCP_JWT_JWKS_FILE"));
    }

    #[test]
    fn public_key_must_be_pem() {
        let vars = [
            ("MCP_AUTH_STRATEGY", "bearer"),
            ("MCP_JWT_ALGORITHM", "ES256"),
            ("MCP_JWT_PUBLIC_KEY", "/keys/pub.pem"),
        ];
        assert_eq!(
            error_vars(&vars),
            ["MCP_JWT_PUBLIC_KEY"],
            "one error, not also 'missing'"
        );
    }

    #[test]
    fn api_key_needs_keys() {
        assert_eq!(
            error_vars(&[("MCP_AUTH_STRATEGY", "api_key")]),
            ["MCP_API_KEYS"]
        );
        assert_eq!(
            error_vars(&[("MCP_AUTH_STRATEGY", "api_key"), ("MCP_API_KEYS", " ,\n ")]),
            ["MCP_API_KEYS"]
        );
    }

    #[test]
    fn api_keys_plain_and_hashed() {
        let hash = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
        let (one, two) = (format!("key-one-{KEY}"), format!("key-two-{KEY}"));
        let value = format!("{one}\n{two}, sha256:{hash}\n");
        let (c, _) =
            auth(&[("MCP_AUTH_STRATEGY", "api_key"), ("MCP_API_KEYS", &value)]).expect("valid");
        assert_eq!(c.api_keys.len(), 3);
        match &c.api_keys[0] {
            ApiKey::Plain(k) => assert_eq!(k.expose_secret(), one),
            other => panic!("{other:?}"),
        }
        match &c.api_keys[2] {
            ApiKey::Sha256(h) => {
                assert_eq!(h[0], 0x9f);
                assert_eq!(h[31], 0x08);
            }
            other => panic!("{other:?}"),
        }
        let bad = auth(&[
            ("MCP_AUTH_STRATEGY", "api_key"),
            ("MCP_API_KEYS", &format!("{KEY},sha256:abcd")),
        ])
        .expect_err("bad hash");
        assert_eq!(bad.len(), 1);
        assert!(bad[0].message.contains("entry 2"), "{}", bad[0].message);
        assert!(!bad[0].message.contains("abcd"));
        assert!(ApiKey::parse(&format!("SHA256:{}", "z".repeat(64))).is_err());
        assert!(ApiKey::parse(&format!("SHA256:{API_KEY_HASH_UPPER}")).is_ok());
    }

    #[test]
    fn short_plain_api_keys_are_refused_without_showing_them() {
        let short = &KEY[1..];
        let errs = auth(&[
            ("MCP_AUTH_STRATEGY", "api_key"),
            ("MCP_API_KEYS", &format!("{KEY},{short}")),
        ])
        .expect_err("31 characters");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.contains("entry 2"), "{}", errs[0].message);
        assert!(
            errs[0].message.contains("at least 32"),
            "{}",
            errs[0].message
        );
        assert!(!errs[0].message.contains(short));
        assert!(ApiKey::parse(KEY).is_ok());
    }

    #[test]
    fn oauth2_allowed_users() {
        let users = parse_allowed_users("12345, octocat ,alice@example.com,@Example.ORG").unwrap();
        assert_eq!(
            users,
            [
                AllowedUser::Identity("12345".into()),
                AllowedUser::Identity("octocat".into()),
                AllowedUser::Identity("alice@example.com".into()),
                AllowedUser::Domain("example.org".into()),
            ]
        );
        assert_eq!(parse_allowed_users("*").unwrap(), [AllowedUser::Anyone]);
        assert!(parse_allowed_users("*,octocat").is_err());
        assert!(parse_allowed_users("@localhost").is_err());
        assert!(parse_allowed_users("@exa mple.com").is_err());
    }

    #[test]
    fn oauth2_needs_everything() {
        let errs = error_vars(&[("MCP_AUTH_STRATEGY", "oauth2")]);
        assert_eq!(
            errs,
            [
                "MCP_OAUTH_CLIENT_ID",
                "MCP_OAUTH_CLIENT_SECRET",
                "MCP_OAUTH_AUTH_URL",
                "MCP_OAUTH_TOKEN_URL",
                "MCP_OAUTH_USERINFO_URL",
                "MCP_OAUTH_CALLBACK_URL",
                "MCP_OAUTH_ALLOWED_USERS",
                "MCP_JWT_SECRET"
            ]
        );
        let full = [
            ("MCP_AUTH_STRATEGY", "oauth2"),
            ("MCP_OAUTH_CLIENT_ID", "abc"),
            ("MCP_OAUTH_CLIENT_SECRET", "shh"),
            (
                "MCP_OAUTH_AUTH_URL",
                "https://github.com/login/oauth/authorize",
            ),
            (
                "MCP_OAUTH_TOKEN_URL",
                "https://github.com/login/oauth/access_token",
            ),
            (
                "MCP_OAUTH_CALLBACK_URL",
                "https://mcp.example.com/oauth/callback",
            ),
            ("MCP_OAUTH_USERINFO_URL", "https://api.github.com/user"),
            ("MCP_JWT_SECRET", SECRET),
            ("MCP_OAUTH_ALLOWED_USERS", "octocat"),
        ];
        let (c, warnings) = auth(&full).expect("valid");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.oauth.client_id.as_deref(), Some("abc"));
        assert_eq!(
            c.oauth.callback_url.as_ref().map(Url::as_str),
            Some("https://mcp.example.com/oauth/callback")
        );

        let mut relative = full.to_vec();
        relative[5] = ("MCP_OAUTH_CALLBACK_URL", "/oauth/callback");
        assert_eq!(
            error_vars(&relative),
            ["MCP_OAUTH_CALLBACK_URL"],
            "relative callback: one error"
        );

        let mut rs = full.to_vec();
        rs.push(("MCP_JWT_ALGORITHM", "RS256"));
        assert_eq!(error_vars(&rs), ["MCP_JWT_ALGORITHM"]);

        let mut anyone = full.to_vec();
        anyone[8] = ("MCP_OAUTH_ALLOWED_USERS", "*");
        let (_, warnings) = auth(&anyone).expect("an explicit opt-in");
        assert!(
            warnings.iter().any(|w| w.contains("every account")),
            "{warnings:?}"
        );
    }

    #[test]
    fn oidc_needs_issuer_and_audience() {
        assert_eq!(
            error_vars(&[("MCP_AUTH_STRATEGY", "oidc")]),
            ["MCP_OIDC_ISSUER", "MCP_PUBLIC_URL"]
        );
        let ok = [
            ("MCP_AUTH_STRATEGY", "oidc"),
            ("MCP_OIDC_ISSUER", "https://idp.example.com/realms/ai"),
            ("MCP_PUBLIC_URL", "https://mcp.example.com/mcp"),
            ("MCP_OIDC_REQUIRED_SCOPES", "mcp:tools mcp:read"),
        ];
        let (c, _) = auth(&ok).expect("valid");
        assert_eq!(c.oidc.required_scopes, vec!["mcp:tools", "mcp:read"]);
        assert_eq!(
            c.oidc.effective_audience().as_deref(),
            Some("https://mcp.example.com/mcp")
        );
        assert!(
            c.session_auth.require_for_session,
            "oidc authorizes every request by default"
        );
        let with_aud = [
            ("MCP_AUTH_STRATEGY", "oidc"),
            ("MCP_OIDC_ISSUER", "https://idp"),
            ("MCP_PUBLIC_URL", "https://mcp.example.com/mcp"),
            ("MCP_OIDC_AUDIENCE", "api://mcp"),
        ];
        let (c, _) = auth(&with_aud).expect("valid");
        assert_eq!(c.oidc.effective_audience().as_deref(), Some("api://mcp"));
        let no_public_url = [
            ("MCP_AUTH_STRATEGY", "oidc"),
            ("MCP_OIDC_ISSUER", "https://idp"),
            ("MCP_OIDC_AUDIENCE", "api://mcp"),
        ];
        assert_eq!(error_vars(&no_public_url), ["MCP_PUBLIC_URL"]);
    }

    #[test]
    fn public_url_rules_apply_even_when_unused() {
        assert_eq!(
            error_vars(&[("MCP_PUBLIC_URL", "https://mcp.example.com/mcp#x")]),
            ["MCP_PUBLIC_URL"]
        );
        assert_eq!(
            error_vars(&[("MCP_PUBLIC_URL", "mcp.example.com")]),
            ["MCP_PUBLIC_URL"]
        );
        assert_eq!(
            error_vars(&[("MCP_OAUTH_TOKEN_URL", "nope")]),
            ["MCP_OAUTH_TOKEN_URL"]
        );
    }

    #[test]
    fn unused_secrets_are_warnings_not_errors() {
        let (_, w) = auth(&[("MCP_JWT_SECRET", "short"), ("MCP_API_KEYS", KEY)]).expect("valid");
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w.iter().all(|w| !w.contains("short")));
    }

    #[test]
    fn jwt_secret_is_taken_verbatim() {
        let with_newline = format!("{SECRET}\n");
        let (c, _) = auth(&[
            ("MCP_AUTH_STRATEGY", "bearer"),
            ("MCP_JWT_SECRET", &with_newline),
        ])
        .expect("valid");
        assert_eq!(
            c.jwt.secret.map(|s| s.expose_secret().to_owned()),
            Some(with_newline)
        );
    }
}
