//! `up`, `down`, `status` and `verify-clean`: starting the components in order, recording every
//! host change in the state file first, and undoing all of it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Node, ServiceAccount};
use kube::Api;

use crate::build;
use crate::certs::{self, Pki};
use crate::containerd;
use crate::error::{Error, IoContext, Result};
use crate::host;
use crate::kubelet;
use crate::layout::{
    API_PORT, BRIDGE_IP, KUBERNETES_SERVICE_IP, Layout, NODE_NAME, POD_CIDR, SERVICE_CIDR, is_root,
};
use crate::network;
use crate::process;
use crate::state::State;

#[derive(Debug, Clone, Copy, Default)]
pub struct UpOptions {
    /// etcd + API server + controller manager only: no root, no node, no host changes.
    pub control_plane_only: bool,
}

/// Hosts directories the node components create outside the state dir when missing: removed by
/// `down` if `up` created them.
const HOST_DIRS: &[&str] = &["/var/lib/cni", "/var/log/containers", "/var/log/pods"];

fn step(what: &str, start: Instant) {
    eprintln!("    {what} ({:.1} s)", start.elapsed().as_secs_f64());
}

/// Starts the cluster; on any failure everything already started is torn down again before the
/// error (naming the component, with its log's last lines) is returned.
pub async fn up(layout: &Layout, opts: UpOptions) -> Result<PathBuf> {
    let node = !opts.control_plane_only;
    if node && !is_root() {
        return Err(Error::NotRoot { command: "up" });
    }
    if let Some(missing) = build::missing_binaries(layout, node) {
        return Err(Error::NotBuilt { missing });
    }
    if let Some(state) = State::load(&layout.state_file())? {
        if state.processes.iter().any(process::is_alive) {
            return Err(Error::AlreadyUp {
                state: layout.state_file(),
            });
        }
        eprintln!("testenv: cleaning up after an earlier run that did not finish");
        down(layout);
    } else if node && leftovers(layout).iter().any(|l| !l.starts_with("sysctl")) {
        // A crashed run whose state file is gone: sweep it (restoring the sysctls from the
        // baseline it left) before recording a new baseline.
        eprintln!("testenv: removing leftovers of an earlier run");
        down(layout);
    }
    match start_all(layout, node).await {
        Ok(kubeconfig) => Ok(kubeconfig),
        Err(e) => {
            // The state dir goes with the teardown: keep the component logs for the reader.
            let kept = layout.cache_root.join("failed-up-logs");
            let _ = std::fs::remove_dir_all(&kept);
            if std::fs::create_dir_all(&kept).is_ok()
                && let Ok(rd) = std::fs::read_dir(layout.logs())
            {
                for entry in rd.flatten() {
                    let _ = std::fs::copy(entry.path(), kept.join(entry.file_name()));
                }
                eprintln!(
                    "testenv up failed; component logs kept in {}",
                    kept.display()
                );
            }
            eprintln!("testenv up failed; tearing down what was started");
            down(layout);
            Err(e)
        }
    }
}

fn free_port(ip: &str) -> Result<u16> {
    let l = TcpListener::bind((ip, 0)).ctx(|| format!("finding a free port on {ip}"))?;
    Ok(l.local_addr()
        .ctx(|| "reading a bound address".to_string())?
        .port())
}

fn port_in_use(ip: &str, port: u16) -> bool {
    TcpListener::bind((ip, port)).is_err()
}

struct Starter<'a> {
    layout: &'a Layout,
    state: State,
}

impl Starter<'_> {
    fn save(&self) -> Result<()> {
        self.state.save(&self.layout.state_file())
    }

    /// Records a host change *before* making it, so a crash in between still gets undone.
    fn record_change(&mut self, change: &str) -> Result<()> {
        self.state.changes.push(change.to_string());
        self.save()
    }

    fn spawn(
        &mut self,
        name: &str,
        args: Vec<String>,
        env: &[(&str, String)],
    ) -> Result<crate::state::ProcessRecord> {
        let program = if name == "containerd" {
            PathBuf::from("containerd")
        } else {
            self.layout.bin(name)
        };
        let rec = process::spawn(
            name,
            &program,
            &args,
            &self.layout.state_dir,
            env,
            &self.layout.log(name),
        )?;
        self.state.processes.push(rec.clone());
        self.save()?;
        Ok(rec)
    }
}

/// Polls `check` until it returns true, failing with the component's log if the process dies
/// or `limit` passes.
async fn wait_until<F, Fut>(
    rec: &crate::state::ProcessRecord,
    what: &str,
    limit: Duration,
    mut check: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return Ok(());
        }
        if !process::is_alive(rec) {
            return Err(process::start_error(rec, format!("exited before {what}")));
        }
        if Instant::now() > deadline {
            return Err(process::start_error(
                rec,
                format!("no {what} after {} s", limit.as_secs()),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A plain HTTP GET over loopback (etcd's and kube-proxy's health endpoints speak plain HTTP).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let code = body.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body))
}

async fn start_all(layout: &Layout, node: bool) -> Result<PathBuf> {
    let t0 = Instant::now();
    for d in [&layout.state_dir, &layout.logs(), &layout.run_dir] {
        std::fs::create_dir_all(d).ctx(|| format!("creating {}", d.display()))?;
    }
    let mut s = Starter {
        layout,
        state: State {
            control_plane_only: !node,
            ..State::default()
        },
    };
    s.save()?;
    eprintln!(
        "testenv up ({}): state in {}",
        if node {
            "single-node cluster"
        } else {
            "control plane only"
        },
        layout.state_dir.display()
    );

    if node {
        check_node_ports_free()?;
        // Host changes first: the API server binds to the bridge address.
        prepare_host(&mut s, t0)?;
    }
    let pki = certs::generate(&layout.pki())?;
    let api = api_address(node)?;
    s.state.api_server = format!("https://{}:{}", api.0, api.1);
    write_kubeconfigs(layout, &pki, &s.state.api_server, t0)?;
    let etcd_url = start_etcd(&mut s, t0).await?;
    let admin = start_apiserver(&mut s, &pki, &etcd_url, api, node, t0).await?;
    start_controller_manager(&mut s, &pki, &admin, t0).await?;
    if node {
        start_node(&mut s, &pki, &admin, t0).await?;
    }

    s.save()?;
    eprintln!(
        "testenv up: done in {:.1} s; API server {}",
        t0.elapsed().as_secs_f64(),
        s.state.api_server
    );
    Ok(layout.kubeconfig())
}

/// The fixed loopback ports of the node components must be free: fail before changing anything.
fn check_node_ports_free() -> Result<()> {
    for (port, who) in [
        (10250, "kubelet"),
        (10248, "kubelet healthz"),
        (10249, "kube-proxy metrics"),
        (10256, "kube-proxy healthz"),
    ] {
        if port_in_use("127.0.0.1", port) {
            return Err(Error::Invalid(format!(
                "127.0.0.1:{port} ({who}) is already in use by another process"
            )));
        }
    }
    Ok(())
}

/// Records the host's state before `up` (sysctls, which host directories exist), then creates
/// the pod bridge.
fn prepare_host(s: &mut Starter<'_>, t0: Instant) -> Result<()> {
    let layout = s.layout;
    s.state.sysctls = network::read_sysctls();
    // Also outside the state dir: `down` restores from it if the state file is lost, and
    // `verify-clean` compares against it.
    std::fs::create_dir_all(&layout.cache_root)
        .ctx(|| format!("creating {}", layout.cache_root.display()))?;
    std::fs::write(
        sysctl_baseline(layout),
        serde_json::to_vec_pretty(&s.state.sysctls)?,
    )
    .ctx(|| "writing the sysctl baseline".to_string())?;
    for d in HOST_DIRS {
        if !Path::new(d).exists() {
            s.state.created_dirs.push(PathBuf::from(d));
        }
    }
    s.record_change("bridge")?;
    network::create_bridge()?;
    step("pod bridge cni-node0 10.244.0.1/24", t0);
    Ok(())
}

/// The kubeconfig of one component, in the state dir.
fn component_kubeconfig(layout: &Layout, id: certs::Identity) -> PathBuf {
    layout.in_state(&format!("{}.kubeconfig", id.file))
}

/// Where the API server listens: the bridge address with a node (checked free), else a free
/// loopback port.
fn api_address(node: bool) -> Result<(&'static str, u16)> {
    if node {
        if port_in_use(BRIDGE_IP, API_PORT) {
            return Err(Error::Invalid(format!(
                "{BRIDGE_IP}:{API_PORT} is in use: is another cluster running?"
            )));
        }
        Ok((BRIDGE_IP, API_PORT))
    } else {
        Ok(("127.0.0.1", free_port("127.0.0.1")?))
    }
}

/// Every component's kubeconfig in the state dir, and the admin one `up` hands out.
fn write_kubeconfigs(layout: &Layout, pki: &Pki, server: &str, t0: Instant) -> Result<()> {
    for id in [
        certs::ADMIN,
        certs::CONTROLLER_MANAGER,
        certs::SCHEDULER,
        certs::KUBELET,
        certs::KUBE_PROXY,
        certs::COREDNS,
    ] {
        certs::write_kubeconfig(pki, id, server, &component_kubeconfig(layout, id))?;
    }
    certs::write_kubeconfig(pki, certs::ADMIN, server, &layout.kubeconfig())?;
    step("certificates and kubeconfigs (openssl)", t0);
    Ok(())
}

/// Starts etcd on free loopback ports and waits until it is healthy. Returns its client URL.
async fn start_etcd(s: &mut Starter<'_>, t0: Instant) -> Result<String> {
    let layout = s.layout;
    let etcd_port = free_port("127.0.0.1")?;
    let peer_port = free_port("127.0.0.1")?;
    s.state.etcd_client_port = etcd_port;
    let client_url = format!("http://127.0.0.1:{etcd_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let etcd = s.spawn(
        "etcd",
        strings(&[
            "--name=testenv",
            &format!("--data-dir={}", layout.in_state("etcd").display()),
            &format!("--listen-client-urls={client_url}"),
            &format!("--advertise-client-urls={client_url}"),
            &format!("--listen-peer-urls={peer_url}"),
            &format!("--initial-advertise-peer-urls={peer_url}"),
            &format!("--initial-cluster=testenv={peer_url}"),
            // Throwaway data: no fsync makes etcd fast on a shared small disk.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]),
        &[],
    )?;
    let health_addr = format!("127.0.0.1:{etcd_port}");
    wait_until(&etcd, "healthy /health", Duration::from_secs(30), || {
        let r = http_get(&health_addr, "/health");
        async move { matches!(r, Some((200, body)) if body.contains("\"health\":\"true\"")) }
    })
    .await?;
    step("etcd healthy", t0);
    Ok(client_url)
}

/// Starts kube-apiserver on `(ip, port)` and waits until it is ready. Returns the admin client.
async fn start_apiserver(
    s: &mut Starter<'_>,
    pki: &Pki,
    etcd_url: &str,
    (api_ip, api_port): (&str, u16),
    node: bool,
    t0: Instant,
) -> Result<kube::Client> {
    let layout = s.layout;
    let mut api_args = strings(&[
        &format!("--etcd-servers={etcd_url}"),
        &format!("--bind-address={api_ip}"),
        &format!("--secure-port={api_port}"),
        &format!("--tls-cert-file={}", pki.cert("apiserver").display()),
        &format!("--tls-private-key-file={}", pki.key("apiserver").display()),
        &format!("--client-ca-file={}", pki.ca_cert().display()),
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        &format!("--service-cluster-ip-range={SERVICE_CIDR}"),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        &format!("--service-account-key-file={}", pki.sa_pub().display()),
        &format!(
            "--service-account-signing-key-file={}",
            pki.sa_key().display()
        ),
        "--kubelet-preferred-address-types=Hostname",
        &format!(
            "--kubelet-client-certificate={}",
            pki.cert(certs::APISERVER_KUBELET_CLIENT.file).display()
        ),
        &format!(
            "--kubelet-client-key={}",
            pki.key(certs::APISERVER_KUBELET_CLIENT.file).display()
        ),
        "--allow-privileged=true",
        "--profiling=false",
        &format!(
            "--cert-dir={}",
            layout.in_state("apiserver-certs").display()
        ),
        "--v=1",
    ]);
    if node {
        api_args.push(format!("--advertise-address={BRIDGE_IP}"));
    }
    let apiserver = s.spawn("kube-apiserver", api_args, &[])?;
    let admin = crate::client::client_from_kubeconfig(&layout.kubeconfig()).await?;
    wait_until(&apiserver, "ready /readyz", Duration::from_secs(90), || {
        let c = admin.clone();
        async move { readyz(&c).await }
    })
    .await?;
    step(
        &format!("kube-apiserver ready on {}", s.state.api_server),
        t0,
    );
    Ok(admin)
}

/// Starts kube-controller-manager; it is ready when it has created the default ServiceAccount
/// and published the root CA.
async fn start_controller_manager(
    s: &mut Starter<'_>,
    pki: &Pki,
    admin: &kube::Client,
    t0: Instant,
) -> Result<()> {
    let layout = s.layout;
    let kcm_kc = component_kubeconfig(layout, certs::CONTROLLER_MANAGER)
        .display()
        .to_string();
    let kcm_port = free_port("127.0.0.1")?;
    let kcm = s.spawn(
        "kube-controller-manager",
        strings(&[
            &format!("--kubeconfig={kcm_kc}"),
            &format!("--authentication-kubeconfig={kcm_kc}"),
            &format!("--authorization-kubeconfig={kcm_kc}"),
            "--controllers=*",
            &format!(
                "--service-account-private-key-file={}",
                pki.sa_key().display()
            ),
            // Published in every namespace as kube-root-ca.crt: pods verify the API server.
            &format!("--root-ca-file={}", pki.ca_cert().display()),
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            &format!("--secure-port={kcm_port}"),
            &format!("--cert-dir={}", layout.in_state("kcm-certs").display()),
            &format!("--cluster-signing-cert-file={}", pki.ca_cert().display()),
            &format!("--cluster-signing-key-file={}", pki.ca_key().display()),
            &format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            "--allocate-node-cidrs=false",
            "--v=1",
        ]),
        &[],
    )?;
    wait_until(
        &kcm,
        "default ServiceAccount and kube-root-ca.crt",
        Duration::from_secs(60),
        || {
            let c = admin.clone();
            async move {
                let sa: Api<ServiceAccount> = Api::namespaced(c.clone(), "default");
                let cm: Api<ConfigMap> = Api::namespaced(c, "default");
                matches!(sa.get_opt("default").await, Ok(Some(_)))
                    && matches!(cm.get_opt("kube-root-ca.crt").await, Ok(Some(_)))
            }
        },
    )
    .await?;
    step("kube-controller-manager running", t0);
    Ok(())
}

async fn readyz(client: &kube::Client) -> bool {
    let req = http::Request::get("/readyz").body(Vec::new());
    match req {
        Ok(r) => matches!(client.request_text(r).await, Ok(body) if body.trim() == "ok"),
        Err(_) => false,
    }
}

/// The node: scheduler (and the FORWARD guard), containerd, kubelet, kube-proxy and CoreDNS, in
/// that order.
async fn start_node(
    s: &mut Starter<'_>,
    pki: &Pki,
    admin: &kube::Client,
    t0: Instant,
) -> Result<()> {
    start_scheduler(s, t0)?;
    start_containerd(s, t0).await?;
    start_kubelet(s, pki, admin, t0).await?;
    start_kube_proxy(s, t0).await?;
    start_coredns(s, admin, t0).await?;
    let _ = KUBERNETES_SERVICE_IP;
    Ok(())
}

/// A component's kubeconfig path as a command-line value.
fn kubeconfig_arg(layout: &Layout, id: certs::Identity) -> String {
    component_kubeconfig(layout, id).display().to_string()
}

/// Starts kube-scheduler and puts the FORWARD guard in place.
fn start_scheduler(s: &mut Starter<'_>, t0: Instant) -> Result<()> {
    let layout = s.layout;
    let sched_port = free_port("127.0.0.1")?;
    let sched_kc = kubeconfig_arg(layout, certs::SCHEDULER);
    let sched = s.spawn(
        "kube-scheduler",
        strings(&[
            &format!("--kubeconfig={sched_kc}"),
            &format!("--authentication-kubeconfig={sched_kc}"),
            &format!("--authorization-kubeconfig={sched_kc}"),
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            &format!("--secure-port={sched_port}"),
            &format!(
                "--cert-dir={}",
                layout.in_state("scheduler-certs").display()
            ),
            "--v=1",
        ]),
        &[],
    )?;

    // The FORWARD guard goes in before anything can run in a pod.
    s.record_change("forward-guard")?;
    network::add_forward_guard()?;
    if !process::is_alive(&sched) {
        return Err(process::start_error(&sched, "exited"));
    }
    step("kube-scheduler started; FORWARD guard in place", t0);
    Ok(())
}

/// Starts containerd, waits for its socket and imports the pause image.
async fn start_containerd(s: &mut Starter<'_>, t0: Instant) -> Result<()> {
    let layout = s.layout;
    let config = containerd::write_config(layout)?;
    containerd::write_cni_config(layout)?;
    let ctrd = s.spawn(
        "containerd",
        vec!["--config".into(), config.display().to_string()],
        &containerd::offline_env(),
    )?;
    wait_until(
        &ctrd,
        "answer on its socket",
        Duration::from_secs(30),
        || {
            let ok = containerd::ctr_ready(layout);
            async move { ok }
        },
    )
    .await?;
    containerd::import_image(layout, &layout.pause_archive())
        .map_err(|e| process::start_error(&ctrd, format!("importing the pause image: {e}")))?;
    step("containerd running, pause image imported", t0);
    Ok(())
}

/// Starts the kubelet and waits until the Node is Ready and untainted.
async fn start_kubelet(
    s: &mut Starter<'_>,
    pki: &Pki,
    admin: &kube::Client,
    t0: Instant,
) -> Result<()> {
    let layout = s.layout;
    let kubelet_config = kubelet::write_config(layout, &pki.ca_cert())?;
    let kubelet = s.spawn(
        "kubelet",
        strings(&[
            &format!("--config={}", kubelet_config.display()),
            &format!("--kubeconfig={}", kubeconfig_arg(layout, certs::KUBELET)),
            &format!("--hostname-override={NODE_NAME}"),
            &format!("--node-ip={BRIDGE_IP}"),
            &format!("--root-dir={}", layout.kubelet_root().display()),
            &format!("--cert-dir={}", layout.kubelet_root().join("pki").display()),
            "--v=1",
        ]),
        &containerd::offline_env(),
    )?;
    let nodes: Api<Node> = Api::all(admin.clone());
    wait_until(
        &kubelet,
        "Node Ready (and untainted)",
        Duration::from_secs(120),
        || {
            let nodes = nodes.clone();
            async move { node_ready(&nodes).await }
        },
    )
    .await?;
    step("kubelet: Node localhost Ready", t0);
    Ok(())
}

/// kube-proxy: Services (including `kubernetes` → the API server) for pods. It must change no
/// sysctl: conntrack sizing off, no localhost NodePorts, ports on the bridge address only.
async fn start_kube_proxy(s: &mut Starter<'_>, t0: Instant) -> Result<()> {
    let layout = s.layout;
    let proxy = s.spawn(
        "kube-proxy",
        strings(&[
            &format!("--kubeconfig={}", kubeconfig_arg(layout, certs::KUBE_PROXY)),
            &format!("--hostname-override={NODE_NAME}"),
            "--proxy-mode=iptables",
            &format!("--cluster-cidr={POD_CIDR}"),
            &format!("--bind-address={BRIDGE_IP}"),
            &format!("--nodeport-addresses={BRIDGE_IP}/32"),
            "--iptables-localhost-nodeports=false",
            "--conntrack-max-per-core=0",
            "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0",
            "--oom-score-adj=0",
            "--metrics-bind-address=127.0.0.1:10249",
            "--healthz-bind-address=127.0.0.1:10256",
            "--v=1",
        ]),
        &[],
    )?;
    wait_until(&proxy, "healthy /healthz", Duration::from_secs(60), || {
        let r = http_get("127.0.0.1:10256", "/healthz");
        async move { matches!(r, Some((200, _))) }
    })
    .await?;
    step("kube-proxy healthy", t0);
    Ok(())
}

/// CoreDNS on the bridge address, reading Services with an identity of its own.
async fn start_coredns(s: &mut Starter<'_>, admin: &kube::Client, t0: Instant) -> Result<()> {
    let layout = s.layout;
    crate::client::apply_yaml(admin, COREDNS_RBAC, None, "testenv").await?;
    let ready_port = free_port("127.0.0.1")?;
    let corefile = kubelet::corefile(&component_kubeconfig(layout, certs::COREDNS)).replace(
        "    cache 5\n",
        &format!("    cache 5\n    ready 127.0.0.1:{ready_port}\n"),
    );
    let corefile_path = layout.in_state("Corefile");
    std::fs::write(&corefile_path, corefile)
        .ctx(|| format!("writing {}", corefile_path.display()))?;
    let dns = s.spawn(
        "coredns",
        vec!["-conf".into(), corefile_path.display().to_string()],
        &containerd::offline_env(),
    )?;
    let ready_addr = format!("127.0.0.1:{ready_port}");
    wait_until(&dns, "ready", Duration::from_secs(60), || {
        let r = http_get(&ready_addr, "/ready");
        async move { matches!(r, Some((200, _))) }
    })
    .await?;
    step(&format!("CoreDNS ready on {BRIDGE_IP}:53"), t0);
    Ok(())
}

const COREDNS_RBAC: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: testenv:coredns
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: testenv:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: testenv:coredns
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: testenv:coredns
"#;

async fn node_ready(nodes: &Api<Node>) -> bool {
    let Ok(Some(node)) = nodes.get_opt(NODE_NAME).await else {
        return false;
    };
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        .unwrap_or(false);
    // The node-lifecycle controller removes the not-ready taint shortly after Ready.
    let tainted = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|ts| ts.iter().any(|t| t.key.starts_with("node.kubernetes.io/")))
        .unwrap_or(false);
    ready && !tainted
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// What `down` did, printed by the CLI.
#[derive(Debug, Default)]
pub struct DownReport {
    pub lines: Vec<String>,
}

/// Stops everything `up` started and undoes every host change. Idempotent: safe to run twice,
/// with no cluster, or after a crash (it also sweeps for leftovers the state file doesn't name).
pub fn down(layout: &Layout) -> DownReport {
    let mut report = DownReport::default();
    let state = State::load(&layout.state_file()).ok().flatten();
    let root = is_root();

    if let Some(state) = &state {
        stop_recorded_processes(layout, state, &mut report);
    }
    kill_leftover_processes(layout, &mut report);
    if root {
        undo_host_changes(layout, state.as_ref(), &mut report);
    }
    if let Some(state) = &state {
        wait_until_reaped(state);
    }
    remove_state_dirs(layout, &mut report);
    report
}

/// Stops the processes of the state file, newest first, waiting for each: the API server hangs
/// for 35 s+ if etcd goes first.
fn stop_recorded_processes(layout: &Layout, state: &State, report: &mut DownReport) {
    for rec in state.processes.iter().rev() {
        if rec.name == "containerd" && process::is_alive(rec) {
            // Pod sandboxes (shims, netns, mounts) are removed through the runtime while
            // it still runs.
            match containerd::remove_all_pods(layout) {
                Ok(()) => report.lines.push("removed all pod sandboxes".into()),
                Err(e) => report.lines.push(format!("crictl rmp -fa failed: {e}")),
            }
        }
        if process::is_alive(rec) {
            let t = Instant::now();
            process::stop(rec, Duration::from_secs(20));
            report.lines.push(format!(
                "stopped {} (pid {}) in {:.1} s",
                rec.name,
                rec.pid,
                t.elapsed().as_secs_f64()
            ));
        }
    }
}

/// Leftovers the state file does not name: shims, or processes of a run whose state is lost.
/// Newest (highest pid) first, as for recorded processes.
fn kill_leftover_processes(layout: &Layout, report: &mut DownReport) {
    let mut leftovers = process::find_processes(&layout.owned_prefixes());
    leftovers.sort_by_key(|(pid, _)| std::cmp::Reverse(*pid));
    for (pid, cmdline) in leftovers {
        process::kill_pid(pid, Duration::from_secs(5));
        report
            .lines
            .push(format!("killed leftover {pid}: {cmdline}"));
    }
}

/// Undoes the host changes (as root): container processes, mounts, network namespaces, iptables
/// chains, the bridge, sysctls, cgroups, the CNI cache and the host directories `up` created.
fn undo_host_changes(layout: &Layout, state: Option<&State>, report: &mut DownReport) {
    // Container processes whose shim is gone live on in the kubepods cgroups.
    for pid in kubepods_pids() {
        process::kill_pid(pid, Duration::from_secs(2));
        report.lines.push(format!("killed container process {pid}"));
    }
    for m in host::unmount_all(&layout.owned_prefixes()) {
        report.lines.push(format!("unmounted {m}"));
    }
    for ns in network::cni_netns() {
        if std::fs::remove_file(&ns).is_ok() {
            report.lines.push(format!("removed {}", ns.display()));
        }
    }
    for chain in network::sweep_chains() {
        report.lines.push(format!("removed {chain}"));
    }
    if network::bridge_exists() {
        network::delete_bridge();
        report.lines.push("deleted bridge cni-node0".into());
    }
    // The state file's copy of the sysctls, else the baseline kept outside the state dir.
    let before = match state {
        Some(state) if !state.sysctls.is_empty() => Some(state.sysctls.clone()),
        _ => load_sysctl_baseline(layout),
    };
    if let Some(before) = before {
        for s in network::restore_sysctls(&before) {
            report.lines.push(format!("restored sysctl {s}"));
        }
    }
    for cg in host::kubepods_cgroups() {
        if host::remove_cgroup_tree(&cg) {
            report
                .lines
                .push(format!("removed cgroup {}", cg.display()));
        }
    }
    remove_cni_cache(report);
    if let Some(state) = state {
        for d in &state.created_dirs {
            if d.exists() && std::fs::remove_dir_all(d).is_ok() {
                report.lines.push(format!("removed {}", d.display()));
            }
        }
    }
}

/// Stopped processes whose parent (the `up` CLI) is gone are reaped by init; give it a moment
/// so `pgrep` right after `down` shows no <defunct> entries.
fn wait_until_reaped(state: &State) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && state
            .processes
            .iter()
            .any(|p| process::start_ticks(p.pid) == Some(p.start_ticks))
    {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes the run and state directories (unmounting anything still mounted below them).
fn remove_state_dirs(layout: &Layout, report: &mut DownReport) {
    for d in [&layout.run_dir, &layout.state_dir] {
        if d.exists() {
            let _ = host::unmount_all(std::slice::from_ref(d));
            match std::fs::remove_dir_all(d) {
                Ok(()) => report.lines.push(format!("removed {}", d.display())),
                Err(e) => report
                    .lines
                    .push(format!("could not remove {}: {e}", d.display())),
            }
        }
    }
}

/// libcni caches each attachment's result under /var/lib/cni/results even when IPAM is told to
/// use another directory.
fn remove_cni_cache(report: &mut DownReport) {
    let dir = Path::new("/var/lib/cni/results");
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with("converse-testenv-")
                && std::fs::remove_file(e.path()).is_ok()
            {
                report.lines.push(format!("removed {}", e.path().display()));
            }
        }
    }
}

fn kubepods_pids() -> Vec<i32> {
    fn walk(dir: &Path, out: &mut Vec<i32>) {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(&e.path(), out);
                }
            }
        }
    }
    let mut pids = Vec::new();
    for cg in host::kubepods_cgroups() {
        walk(&cg, &mut pids);
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn sysctl_baseline(layout: &Layout) -> PathBuf {
    layout.cache_root.join("sysctls-before-up.json")
}

fn load_sysctl_baseline(layout: &Layout) -> Option<std::collections::BTreeMap<String, String>> {
    let bytes = std::fs::read(sysctl_baseline(layout)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Status lines for `testenv status`.
pub fn status(layout: &Layout) -> Result<Vec<String>> {
    let Some(state) = State::load(&layout.state_file())? else {
        return Ok(vec!["no testenv cluster (no state file)".into()]);
    };
    let mut lines = vec![format!(
        "testenv cluster ({}), API server {}, kubeconfig {}",
        if state.control_plane_only {
            "control plane only"
        } else {
            "single node"
        },
        state.api_server,
        layout.kubeconfig().display()
    )];
    for rec in &state.processes {
        if process::is_alive(rec) {
            lines.push(format!(
                "  {:<24} running  pid {:<8} RSS {} MiB",
                rec.name,
                rec.pid,
                process::rss_mib(rec.pid).unwrap_or(0)
            ));
        } else {
            lines.push(format!(
                "  {:<24} STOPPED  (log {})",
                rec.name,
                rec.log.display()
            ));
        }
    }
    for (pid, cmd) in process::find_processes(&[layout.run_dir.join("containerd")]) {
        if cmd.contains("containerd-shim") {
            lines.push(format!(
                "  {:<24} running  pid {pid:<8} RSS {} MiB",
                "containerd-shim",
                process::rss_mib(pid).unwrap_or(0)
            ));
        }
    }
    Ok(lines)
}

/// Everything `down` should have removed and did not. Empty means clean.
pub fn leftovers(layout: &Layout) -> Vec<String> {
    let mut left = Vec::new();
    for (pid, cmd) in process::find_processes(&layout.owned_prefixes()) {
        left.push(format!("process {pid}: {cmd}"));
    }
    // Any process running one of our binaries, wherever it was started from.
    for (pid, name) in process::find_by_exe_name(&[
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
        "coredns",
        "containerd",
        "containerd-shim-runc-v2",
    ]) {
        let line = format!("process {pid}: {name}");
        if !left
            .iter()
            .any(|l| l.starts_with(&format!("process {pid}:")))
        {
            left.push(line);
        }
    }
    for pid in kubepods_pids() {
        left.push(format!("container process {pid}"));
    }
    for m in host::our_mounts(&layout.owned_prefixes()) {
        left.push(format!("mount {}", m.display()));
    }
    for ns in network::cni_netns() {
        left.push(format!("netns {}", ns.display()));
    }
    if network::bridge_exists() {
        left.push("bridge cni-node0".into());
    }
    left.extend(network::leftover_chains());
    for cg in host::kubepods_cgroups() {
        left.push(format!("cgroup {}", cg.display()));
    }
    for d in [&layout.state_dir, &layout.run_dir] {
        if d.exists() {
            left.push(format!("directory {}", d.display()));
        }
    }
    if let Some(before) = load_sysctl_baseline(layout) {
        let now = network::read_sysctls();
        for (k, v) in before {
            if let Some(n) = now.get(&k)
                && *n != v
            {
                left.push(format!("sysctl {k} is {n}, was {v} before up"));
            }
        }
    }
    left
}
