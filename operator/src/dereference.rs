//! Phase 1, dereference (client): read what the spec points at. The referenced Secrets and
//! ConfigMaps (the spec's own references, those of `spec.env`/`spec.envFrom`, and the source of
//! `spec.files`; only those that exist, validate reports the rest), the PersistentVolumeClaim of
//! `spec.files` (likewise), and the operator's own `<name>-generated` Secret: its JWT signing
//! value is read back when present and generated once otherwise, so it stays stable across
//! reconciles (the apply phase then stores it).

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
use kube::{Api, Client};
use rand::RngCore;

use crate::crd::{ConverseServer, ConverseServerSpec, FilesSource};
use crate::desired::env::GENERATED_JWT_KEY;
use crate::desired::generated_secret_name;
use crate::references::{Dereferenced, config_map_names, secret_names};

/// What phase 1 found.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Digests of the referenced Secrets that exist.
    pub dereferenced: Dereferenced,
    /// The JWT signing value of `<name>-generated`: read back, or freshly generated when the
    /// Secret (or its key) does not exist yet. Only used when the spec needs it.
    pub generated_jwt_secret: String,
}

/// Reads the Secrets `server` references and its generated Secret.
pub async fn dereference(
    client: &Client,
    server: &ConverseServer,
    namespace: &str,
    name: &str,
) -> Result<Found, kube::Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut secrets = Vec::new();
    for secret_name in secret_names(&server.spec) {
        if let Some(s) = api.get_opt(&secret_name).await? {
            secrets.push(s);
        }
    }
    let generated = api
        .get_opt(&generated_secret_name(name))
        .await?
        .and_then(|s| stored_jwt_secret(&s))
        .unwrap_or_else(fresh_jwt_secret);
    let dereferenced = Dereferenced::from_secrets(&secrets);
    let dereferenced =
        dereference_config_maps(client, &server.spec, namespace, dereferenced).await?;
    Ok(Found {
        dereferenced: dereference_claim(client, &server.spec, namespace, dereferenced).await?,
        generated_jwt_secret: generated,
    })
}

/// Adds the ConfigMaps the spec names (the environment's, the files source) that exist to
/// `found`. Without `get` on ConfigMaps (an RBAC set up before the operator read them) the
/// references go unchecked rather than failing every reconcile of the ConverseServer: the
/// kubelet reports a missing one on the pod anyway.
async fn dereference_config_maps(
    client: &Client,
    spec: &ConverseServerSpec,
    namespace: &str,
    mut found: Dereferenced,
) -> Result<Dereferenced, kube::Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for name in config_map_names(spec) {
        found = match split_forbidden(api.get_opt(&name).await)? {
            Ok(Some(cm)) => found.with_config_map_object(&cm),
            Ok(None) => found,
            Err(message) => return Ok(found.with_unreadable("ConfigMap", message)),
        };
    }
    Ok(found)
}

/// Adds the PersistentVolumeClaim of `spec.files` to `found`, if it exists. The operator needs
/// only `get` for it (no watch: a stalled ConverseServer looks again periodically). Without that
/// permission the reference goes unchecked, as for ConfigMaps.
async fn dereference_claim(
    client: &Client,
    spec: &ConverseServerSpec,
    namespace: &str,
    found: Dereferenced,
) -> Result<Dereferenced, kube::Error> {
    let Some(FilesSource::Claim(p)) = spec.files.as_ref().and_then(|f| f.source()) else {
        return Ok(found);
    };
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    Ok(match split_forbidden(api.get_opt(&p.claim_name).await)? {
        Ok(Some(pvc)) => found.with_claim_object(&pvc),
        Ok(None) => found,
        Err(message) => found.with_unreadable("PersistentVolumeClaim", message),
    })
}

/// Separates a 403 (`Ok(Err(message))`) from the errors worth a retry.
fn split_forbidden<T>(
    result: Result<Option<T>, kube::Error>,
) -> Result<Result<Option<T>, String>, kube::Error> {
    match result {
        Ok(found) => Ok(Ok(found)),
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(Err(status.message.clone())),
        Err(e) => Err(e),
    }
}

/// The stored value, if the generated Secret holds a usable one.
fn stored_jwt_secret(secret: &Secret) -> Option<String> {
    let data = secret.data.as_ref()?.get(GENERATED_JWT_KEY)?;
    let value = String::from_utf8(data.0.clone()).ok()?;
    (value.len() >= converse_config::auth::MIN_JWT_SECRET_BYTES).then_some(value)
}

/// 32 random bytes as 64 hex characters.
pub fn fresh_jwt_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    #[test]
    fn fresh_secrets_are_long_enough_and_differ() {
        let a = fresh_jwt_secret();
        assert_eq!(a.len(), 64);
        assert!(a.len() >= converse_config::auth::MIN_JWT_SECRET_BYTES);
        assert_ne!(a, fresh_jwt_secret());
    }

    #[test]
    fn stored_secret_is_read_back() {
        let mut s = Secret {
            data: Some(BTreeMap::from([(
                GENERATED_JWT_KEY.to_owned(),
                ByteString(b"x".repeat(40)),
            )])),
            ..Secret::default()
        };
        assert_eq!(stored_jwt_secret(&s), Some("x".repeat(40)));
        s.data = Some(BTreeMap::from([(
            GENERATED_JWT_KEY.to_owned(),
            ByteString(b"short".to_vec()),
        )]));
        assert_eq!(stored_jwt_secret(&s), None);
    }
}
