//! JWTs checked with a locally configured key: the `bearer` strategy (tokens
//! minted by someone else with a shared secret or a key pair) and the `oauth2`
//! strategy (tokens this server minted after the login flow).
//!
//! The algorithm is pinned by configuration, so `alg: none` and algorithm
//! confusion (an HS256 token "signed" with the RSA public key) are rejected by
//! construction; `iss` and `exp` are required, `aud` when configured, `nbf` is
//! checked when present (RFC 7519 makes it optional, and tokens minted as converse
//! 1.3.2's docs show carry none). The `oidc` strategy reuses [`validation`].

use std::collections::HashMap;

use converse_config::{JwtAlgorithm, JwtConfig};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{AuthError, AuthSetupError};
use crate::principal::Principal;

/// The claims we read. Unknown claims are ignored.
#[derive(Debug, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub sub: Option<String>,
    /// OAuth scopes as a space-separated string (RFC 8693/9068)…
    #[serde(default)]
    pub scope: Option<String>,
    /// …or as an array (`scp`, Azure/Okta style).
    #[serde(default)]
    pub scp: Option<ScopeClaim>,
    #[serde(default)]
    pub oauth2: Option<bool>,
    /// The client a client-credentials token was issued to (RFC 9068), when it names no user.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The authorized party (OIDC), the same for tokens of some identity providers.
    #[serde(default)]
    pub azp: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ScopeClaim {
    List(Vec<String>),
    Text(String),
}

impl Claims {
    /// Who the token is for: its `sub`, else the client it was issued to (`client_id` or `azp`,
    /// as `client:<id>`, so a client never shares a principal with a user of the same name).
    pub fn principal_id(&self) -> Result<String, AuthError> {
        let present = |c: &Option<String>| c.clone().filter(|s| !s.is_empty());
        present(&self.sub)
            .or_else(|| {
                present(&self.client_id)
                    .or_else(|| present(&self.azp))
                    .map(|client| format!("client:{client}"))
            })
            .ok_or_else(|| {
                AuthError::Invalid(
                    "the token names nobody: it has no sub (nor client_id or azp)".into(),
                )
            })
    }

    pub fn scopes(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        match &self.scp {
            Some(ScopeClaim::List(list)) => out.extend(list.iter().cloned()),
            Some(ScopeClaim::Text(text)) => out.extend(text.split_whitespace().map(str::to_string)),
            None => {}
        }
        out
    }
}

pub fn algorithm(alg: JwtAlgorithm) -> Algorithm {
    match alg {
        JwtAlgorithm::HS256 => Algorithm::HS256,
        JwtAlgorithm::HS384 => Algorithm::HS384,
        JwtAlgorithm::HS512 => Algorithm::HS512,
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::RS384 => Algorithm::RS384,
        JwtAlgorithm::RS512 => Algorithm::RS512,
        JwtAlgorithm::ES256 => Algorithm::ES256,
        JwtAlgorithm::ES384 => Algorithm::ES384,
        JwtAlgorithm::PS256 => Algorithm::PS256,
        JwtAlgorithm::PS384 => Algorithm::PS384,
        JwtAlgorithm::PS512 => Algorithm::PS512,
        JwtAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}

/// Explains a validation failure without echoing the token.
pub fn describe(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidIssuer => "the token's issuer (iss) is not accepted".into(),
        ErrorKind::InvalidAudience => "the token's audience (aud) is not this server".into(),
        ErrorKind::InvalidSignature => "the token's signature is invalid".into(),
        ErrorKind::InvalidAlgorithm => "the token's algorithm is not accepted".into(),
        ErrorKind::MissingRequiredClaim(claim) => {
            format!("the token lacks the required claim {claim}")
        }
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => "the token is malformed".into(),
        _ => "the token was rejected".into(),
    }
}

/// The validation rules shared by every JWT strategy: pinned algorithm, `iss`,
/// `exp`, and `aud` when one is expected. `nbf` is checked when present, never
/// required: RFC 7519 makes it optional, IdPs such as Keycloak and Auth0 leave it
/// out of access tokens, and so do tokens minted as converse 1.3.2 documented.
pub fn validation(alg: Algorithm, issuer: &[String], audience: Option<&str>) -> Validation {
    let mut v = Validation::new(alg);
    v.set_issuer(issuer);
    v.validate_nbf = true;
    v.leeway = 30;
    let mut required = vec!["exp", "iss"];
    match audience {
        Some(aud) => {
            v.set_audience(&[aud]);
            required.push("aud");
        }
        None => v.validate_aud = false,
    }
    v.set_required_spec_claims(&required);
    v
}

/// The verification key(s): one key, or a JWKS file with keys by `kid`.
#[derive(Clone)]
enum Keys {
    One(DecodingKey),
    ByKid(HashMap<String, DecodingKey>),
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Keys::One(_) => f.write_str("Keys::One([REDACTED])"),
            Keys::ByKid(m) => write!(f, "Keys::ByKid({:?})", m.keys().collect::<Vec<_>>()),
        }
    }
}

#[derive(Debug)]
pub struct StaticJwt {
    keys: Keys,
    algorithm: Algorithm,
    validation: Validation,
    /// `oauth2` mode accepts only tokens carrying `oauth2: true` (the ones it mints).
    require_oauth2_claim: bool,
}

fn key_error(var: &'static str, message: impl std::fmt::Display) -> AuthSetupError {
    AuthSetupError::Key {
        var,
        message: message.to_string(),
    }
}

fn decoding_key_from_pem(
    alg: Algorithm,
    pem: &[u8],
    var: &'static str,
) -> Result<DecodingKey, AuthSetupError> {
    use jsonwebtoken::AlgorithmFamily;
    match alg.family() {
        AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(pem),
        AlgorithmFamily::Ec => DecodingKey::from_ec_pem(pem),
        AlgorithmFamily::Ed => DecodingKey::from_ed_pem(pem),
        AlgorithmFamily::Hmac => {
            return Err(key_error(
                var,
                "an HS* algorithm takes MCP_JWT_SECRET, not a public key",
            ));
        }
    }
    .map_err(|e| {
        key_error(
            var,
            format!("not a usable {alg:?} public key in PEM form: {e}"),
        )
    })
}

impl StaticJwt {
    pub fn bearer(config: &JwtConfig) -> Result<Self, AuthSetupError> {
        let algorithm = algorithm(config.algorithm);
        let keys = match (
            &config.secret,
            &config.public_key,
            &config.public_key_file,
            &config.jwks_file,
        ) {
            (Some(secret), ..) if config.algorithm.is_symmetric() => {
                Keys::One(DecodingKey::from_secret(secret.expose_secret().as_bytes()))
            }
            (_, Some(pem), ..) => Keys::One(decoding_key_from_pem(
                algorithm,
                pem.as_bytes(),
                "MCP_JWT_PUBLIC_KEY",
            )?),
            (_, _, Some(path), _) => {
                let pem = std::fs::read(path).map_err(|e| {
                    key_error(
                        "MCP_JWT_PUBLIC_KEY_FILE",
                        format!("{}: {e}", path.display()),
                    )
                })?;
                Keys::One(decoding_key_from_pem(
                    algorithm,
                    &pem,
                    "MCP_JWT_PUBLIC_KEY_FILE",
                )?)
            }
            (_, _, _, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    key_error("MCP_JWT_JWKS_FILE", format!("{}: {e}", path.display()))
                })?;
                let set: JwkSet = serde_json::from_str(&text).map_err(|e| {
                    key_error("MCP_JWT_JWKS_FILE", format!("not a JWKS document: {e}"))
                })?;
                let mut by_kid = HashMap::new();
                for jwk in &set.keys {
                    let (Some(kid), Ok(key)) =
                        (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk))
                    else {
                        continue;
                    };
                    by_kid.insert(kid, key);
                }
                if by_kid.is_empty() {
                    return Err(key_error(
                        "MCP_JWT_JWKS_FILE",
                        "no usable key with a kid in the JWKS",
                    ));
                }
                Keys::ByKid(by_kid)
            }
            _ => {
                return Err(key_error(
                    "MCP_JWT_SECRET",
                    "no verification key configured",
                ));
            }
        };
        Ok(Self {
            keys,
            algorithm,
            validation: validation(
                algorithm,
                std::slice::from_ref(&config.issuer),
                config.audience.as_deref(),
            ),
            require_oauth2_claim: false,
        })
    }

    pub fn oauth2(config: &JwtConfig) -> Result<Self, AuthSetupError> {
        Ok(Self {
            require_oauth2_claim: true,
            ..Self::bearer(config)?
        })
    }

    pub fn strategy(&self) -> &'static str {
        if self.require_oauth2_claim {
            "oauth2"
        } else {
            "bearer"
        }
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(describe(&e)))?;
        if header.alg != self.algorithm {
            return Err(AuthError::Invalid(
                "the token's algorithm is not accepted".into(),
            ));
        }
        let key = match &self.keys {
            Keys::One(key) => key,
            Keys::ByKid(keys) => header
                .kid
                .as_deref()
                .and_then(|kid| keys.get(kid))
                .ok_or_else(|| {
                    AuthError::Invalid("the token's signing key (kid) is not known".into())
                })?,
        };
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|e| AuthError::Invalid(describe(&e)))?;
        if self.require_oauth2_claim && data.claims.oauth2 != Some(true) {
            return Err(AuthError::Invalid(
                "not a token issued by this server's login flow".into(),
            ));
        }
        Ok(Principal {
            id: data.claims.principal_id()?,
            strategy: self.strategy(),
            scopes: data.claims.scopes(),
        })
    }
}
