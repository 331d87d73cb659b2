//! The library side for Rust tests: a client for the running testenv cluster, a fresh namespace
//! per test, waiting for conditions, and server-side apply of YAML.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Scope};
use kube::{Api, Client, Config, Resource};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::layout::Layout;

/// A client for the cluster whose kubeconfig is at `path`.
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(path)?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// The kubeconfig of a running testenv cluster: `TESTENV_KUBECONFIG`, or `KUBECONFIG` when it is
/// the file testenv wrote. A KUBECONFIG pointing anywhere else is deliberately ignored: these
/// tests create and delete namespaces and must never run against a real cluster by accident.
pub fn testenv_kubeconfig() -> Result<PathBuf> {
    let path = match std::env::var_os("TESTENV_KUBECONFIG") {
        Some(p) => PathBuf::from(p),
        None => {
            let ours = Layout::from_env().kubeconfig();
            match std::env::var_os("KUBECONFIG").map(PathBuf::from) {
                Some(p) if p == ours => p,
                _ => {
                    return Err(Error::NoCluster {
                        reason: "TESTENV_KUBECONFIG is not set".into(),
                    });
                }
            }
        }
    };
    if !path.exists() {
        return Err(Error::NoCluster {
            reason: format!("{} does not exist", path.display()),
        });
    }
    Ok(path)
}

/// A client for the running testenv cluster, or an error telling the reader to run
/// `make testenv-up`.
pub async fn client() -> Result<Client> {
    let path = testenv_kubeconfig()?;
    let client = client_from_kubeconfig(&path).await?;
    client
        .apiserver_version()
        .await
        .map_err(|e| Error::NoCluster {
            reason: format!("the API server in {} does not answer: {e}", path.display()),
        })?;
    Ok(client)
}

/// For cluster tests: `Ok(Some(client))` when a testenv cluster is up; `Ok(None)` (after
/// printing a notice) when none is and the test should skip; an error when none is but
/// `TESTENV_REQUIRED=1` says one must be (so `make test-cluster` fails instead of skipping).
pub async fn client_or_skip(test: &str) -> Result<Option<Client>> {
    match client().await {
        Ok(c) => Ok(Some(c)),
        Err(e) if std::env::var("TESTENV_REQUIRED").as_deref() == Ok("1") => Err(e),
        Err(e) => {
            // Written to the stderr handle directly: the test harness captures eprintln!, and
            // a skip must be visible.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {e}");
            Ok(None)
        }
    }
}

/// A namespace of its own for one test, deleted by [`TestNamespace::cleanup`] or, if the test
/// panicked first, when dropped.
pub struct TestNamespace {
    pub client: Client,
    pub name: String,
    kubeconfig: Option<PathBuf>,
    cleaned: bool,
}

impl TestNamespace {
    /// Creates `<prefix>-<random suffix>`, labelled so leftovers are easy to find.
    pub async fn create(client: &Client, prefix: &str) -> Result<TestNamespace> {
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "generateName": format!("{prefix}-"),
                "labels": {"converse-testenv/test": "true"}
            }
        }))?;
        let api: Api<Namespace> = Api::all(client.clone());
        let created = api.create(&PostParams::default(), &ns).await?;
        let name = created.metadata.name.clone().unwrap_or_default();
        // The namespace is usable once its default ServiceAccount exists (pods need it).
        let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(client.clone(), &name);
        wait_for(&sas, "default", |_| true, Duration::from_secs(30)).await?;
        Ok(TestNamespace {
            client: client.clone(),
            name,
            kubeconfig: testenv_kubeconfig().ok(),
            cleaned: false,
        })
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Deletes the namespace and waits until it is gone.
    pub async fn cleanup(mut self) -> Result<()> {
        self.cleaned = true;
        let api: Api<Namespace> = Api::all(self.client.clone());
        api.delete(&self.name, &DeleteParams::foreground()).await?;
        wait_gone(&api, &self.name, Duration::from_secs(120)).await
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        // Drop cannot await, and the test's client is bound to the test's runtime (which is
        // blocked here): delete with a fresh client on a thread of its own.
        let (Some(kc), name) = (self.kubeconfig.clone(), self.name.clone()) else {
            return;
        };
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(c) = client_from_kubeconfig(&kc).await {
                    let api: Api<Namespace> = Api::all(c);
                    let _ = api.delete(&name, &DeleteParams::background()).await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// Polls `name` until `predicate` holds, returning the object; times out with the last state
/// seen in the error.
pub async fn wait_for<K, P>(api: &Api<K>, name: &str, predicate: P, timeout: Duration) -> Result<K>
where
    K: Clone + DeserializeOwned + Debug,
    P: Fn(&K) -> bool,
{
    let deadline = Instant::now() + timeout;
    let mut last: Option<K> = None;
    loop {
        if let Some(obj) = api.get_opt(name).await? {
            if predicate(&obj) {
                return Ok(obj);
            }
            last = Some(obj);
        }
        if Instant::now() > deadline {
            let seen = match &last {
                Some(o) => format!("{o:?}"),
                None => "not found".into(),
            };
            return Err(Error::Timeout {
                what: format!("{name} (last seen: {})", truncate(&seen, 3000)),
                secs: timeout.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls until `name` no longer exists.
pub async fn wait_gone<K>(api: &Api<K>, name: &str, timeout: Duration) -> Result<()>
where
    K: Clone + DeserializeOwned + Debug,
{
    let deadline = Instant::now() + timeout;
    while api.get_opt(name).await?.is_some() {
        if Instant::now() > deadline {
            return Err(Error::Timeout {
                what: format!("{name} to be deleted"),
                secs: timeout.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Server-side applies every document of a (multi-document) YAML string with `field_manager`,
/// forcing conflicts. Namespaced objects without a namespace go to `namespace`. The kind of each
/// document is resolved through API discovery, so CRDs applied earlier in the same call work
/// once established.
pub async fn apply_yaml(
    client: &Client,
    yaml: &str,
    namespace: Option<&str>,
    field_manager: &str,
) -> Result<Vec<DynamicObject>> {
    let mut applied = Vec::new();
    for doc in serde_norway::Deserializer::from_str(yaml) {
        let value: serde_json::Value = serde::Deserialize::deserialize(doc)?;
        if value.is_null() {
            continue;
        }
        let obj: DynamicObject = serde_json::from_value(value.clone())?;
        let types = obj.types.clone().ok_or_else(|| {
            Error::Invalid(format!("a YAML document has no apiVersion/kind: {value}"))
        })?;
        let gvk = GroupVersionKind::try_from(&types)
            .map_err(|e| Error::Invalid(format!("bad apiVersion/kind: {e}")))?;
        let name = obj
            .metadata
            .name
            .clone()
            .ok_or_else(|| Error::Invalid(format!("{} without metadata.name", types.kind)))?;
        let (ar, caps) = discovery::pinned_kind(client, &gvk).await?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => {
                let ns = obj
                    .metadata
                    .namespace
                    .as_deref()
                    .or(namespace)
                    .unwrap_or("default");
                Api::namespaced_with(client.clone(), ns, &ar)
            }
            Scope::Cluster => Api::all_with(client.clone(), &ar),
        };
        let params = PatchParams::apply(field_manager).force();
        applied.push(api.patch(&name, &params, &Patch::Apply(&value)).await?);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_kubeconfig_is_not_a_testenv_cluster() {
        // SAFETY of the assertion: TESTENV_KUBECONFIG is only set by `make test-cluster`.
        if std::env::var_os("TESTENV_KUBECONFIG").is_none() {
            let err = testenv_kubeconfig().err().map(|e| e.to_string());
            let text = err.unwrap_or_default();
            assert!(text.contains("make testenv-up"), "{text}");
        }
    }
}
