//! The pods' own ServiceAccount: no RBAC and no token, so a compromised pod holds no
//! Kubernetes credentials (and does not borrow the namespace's `default` account).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;

use super::child_meta;
use crate::validate::ValidatedServer;

pub fn service_account(
    v: &ValidatedServer,
    object_labels: &BTreeMap<String, String>,
) -> ServiceAccount {
    ServiceAccount {
        metadata: child_meta(v, v.name.clone(), object_labels, BTreeMap::new()),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}
