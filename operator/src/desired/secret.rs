//! The Secret the operator owns (`<name>-generated`): values it generated, such as the oauth2
//! JWT signing secret when the spec names none. The value comes from the build context (the
//! controller reads it back from this Secret, generating it only when absent), so it is stable
//! across reconciles.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::env::GENERATED_JWT_KEY;
use super::{child_meta, generated_secret_name};
use crate::validate::ValidatedServer;

pub fn generated_secret(
    v: &ValidatedServer,
    object_labels: &BTreeMap<String, String>,
    jwt_secret: &str,
) -> Secret {
    Secret {
        metadata: child_meta(
            v,
            generated_secret_name(&v.name),
            object_labels,
            BTreeMap::new(),
        ),
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            GENERATED_JWT_KEY.to_owned(),
            ByteString(jwt_secret.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}
