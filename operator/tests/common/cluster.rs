//! Cluster setup shared by the tests and the benchmark that run against testenv's API server.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};
use testenv::{apply_yaml, wait_for};

/// The client of testenv's cluster, or `None` (the test skips) when there is none and none is
/// required (`TESTENV_REQUIRED=1`, set by `make test-cluster`, turns that into a failure).
pub async fn cluster(test: &str) -> Option<Client> {
    match testenv::client_or_skip(test).await {
        Ok(c) => c,
        Err(e) => panic!("{test}: TESTENV_REQUIRED=1 but no cluster: {e}"),
    }
}

/// Applies the CRD from crds/ with `manager` and waits until it is established.
pub async fn install_crd(client: &Client, manager: &str) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crds/converseservers.converse.dev.yaml"
    );
    let yaml = std::fs::read_to_string(path).expect("read the CRD");
    apply_yaml(client, &yaml, None, manager)
        .await
        .expect("apply the CRD");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    wait_for(
        &crds,
        "converseservers.converse.dev",
        |crd: &CustomResourceDefinition| {
            crd.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                })
        },
        Duration::from_secs(60),
    )
    .await
    .expect("CRD established");
}
