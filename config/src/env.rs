//! The contract seen from the other side: building an environment for converse-server.
//!
//! The operator writes container `env` entries; this module is the only way it does so, so the
//! two rules of the contract hold by construction:
//! - only variables of [`crate::VARIABLES`] (or a custom provider's `CUSTOM_<N>_*`) are written,
//!   so a typo in the operator cannot silently produce a variable the server ignores;
//! - a variable marked secret ([`crate::vars::is_secret`]) can only come from a Secret reference,
//!   never a literal value that would be visible in the pod spec.
//!
//! It knows nothing about Kubernetes types: [`EnvValue::SecretKeyRef`] is a name and a key,
//! which the operator turns into `valueFrom.secretKeyRef`.

use crate::vars;

/// Where the value of one variable comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// Written into the pod spec as is. Never used for a secret variable.
    Literal(String),
    /// Read by the kubelet from key `key` of Secret `secret` (same namespace).
    SecretKeyRef { secret: String, key: String },
}

/// One variable to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEntry {
    pub name: String,
    pub value: EnvValue,
}

/// A programming error on the writing side; users never see these (the operator's tests make
/// sure no spec can produce one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("{0} holds a secret: it must come from a Secret reference, never a literal value")]
    SecretAsLiteral(String),
    #[error("{0} is not a variable converse-server reads")]
    Unknown(String),
    #[error("{0} is set twice")]
    Duplicate(String),
}

/// Collects [`EnvEntry`]s in the order they are added, enforcing the rules above.
#[derive(Debug, Clone, Default)]
pub struct EnvBuilder {
    entries: Vec<EnvEntry>,
}

impl EnvBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Set `name` to a literal value. Fails for a secret variable.
    pub fn literal(&mut self, name: &str, value: impl Into<String>) -> Result<(), EnvError> {
        if vars::is_secret(name) {
            return Err(EnvError::SecretAsLiteral(name.to_owned()));
        }
        self.push(name, EnvValue::Literal(value.into()))
    }

    /// Set `name` from a Secret key. Allowed for any variable: a non-secret one (a PEM public
    /// key, say) may well be kept in a Secret too.
    pub fn secret_ref(&mut self, name: &str, secret: &str, key: &str) -> Result<(), EnvError> {
        self.push(
            name,
            EnvValue::SecretKeyRef {
                secret: secret.to_owned(),
                key: key.to_owned(),
            },
        )
    }

    fn push(&mut self, name: &str, value: EnvValue) -> Result<(), EnvError> {
        if !is_known(name) {
            return Err(EnvError::Unknown(name.to_owned()));
        }
        if self.entries.iter().any(|e| e.name == name) {
            return Err(EnvError::Duplicate(name.to_owned()));
        }
        self.entries.push(EnvEntry {
            name: name.to_owned(),
            value,
        });
        Ok(())
    }

    pub fn entries(&self) -> &[EnvEntry] {
        &self.entries
    }

    pub fn into_entries(self) -> Vec<EnvEntry> {
        self.entries
    }
}

/// Whether converse-server reads `name`: a [`crate::VARIABLES`] entry or a per-custom-provider
/// variable (`CUSTOM_<N>_BASE_URL`, `_API_KEY`, `_MODELS` with a non-empty `<N>`).
pub fn is_known(name: &str) -> bool {
    if vars::spec(name).is_some() {
        return true;
    }
    let Some(rest) = name.strip_prefix("CUSTOM_") else {
        return false;
    };
    ["_BASE_URL", "_API_KEY", "_MODELS"].iter().any(|suffix| {
        rest.strip_suffix(suffix).is_some_and(|n| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vars::*;

    #[test]
    fn secrets_only_by_reference() {
        let mut env = EnvBuilder::new();
        assert_eq!(
            env.literal(MCP_API_KEYS, "k"),
            Err(EnvError::SecretAsLiteral(MCP_API_KEYS.to_owned()))
        );
        assert_eq!(
            env.literal("CUSTOM_LOCAL_VLLM_API_KEY", "k"),
            Err(EnvError::SecretAsLiteral(
                "CUSTOM_LOCAL_VLLM_API_KEY".to_owned()
            ))
        );
        env.secret_ref(MCP_API_KEYS, "mcp-keys", "keys").unwrap();
        env.secret_ref(MCP_JWT_PUBLIC_KEY, "jwt", "pub.pem")
            .unwrap();
        env.literal(HTTP_PORT, "3157").unwrap();
        assert_eq!(env.entries().len(), 3);
    }

    #[test]
    fn unknown_and_duplicate_names_are_refused() {
        let mut env = EnvBuilder::new();
        assert_eq!(
            env.literal("HTTP_PROT", "1"),
            Err(EnvError::Unknown("HTTP_PROT".to_owned()))
        );
        assert!(env.literal("CUSTOM__MODELS", "a").is_err());
        assert!(env.literal("CUSTOM_x_MODELS", "a").is_err());
        env.literal("CUSTOM_LOCAL_VLLM_MODELS", "a").unwrap();
        env.literal(LOG_LEVEL, "info").unwrap();
        assert_eq!(
            env.literal(LOG_LEVEL, "debug"),
            Err(EnvError::Duplicate(LOG_LEVEL.to_owned()))
        );
    }
}
