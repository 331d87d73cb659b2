//! Operator benchmark on testenv's cluster (`make bench-operator`; docs/PERFORMANCE.md): the
//! release `converse-operator` binary watches one namespace while ConverseServers are created.
//!
//! 1. latency: 100 ConverseServers created one after the other (100 ms apart); for each, the
//!    time from the create request to its Deployment appearing in a watch — p50, p99, max;
//! 2. scale: 400 more created at once (16 in flight); the time until all 500 carry an up-to-date
//!    status (observedGeneration = generation, Accepted=True);
//! 3. steady state: every ConverseServer is annotated (a change that triggers a reconcile but
//!    changes nothing the operator builds); the operator's own write counter
//!    (`converse_operator_api_writes_total`) must not move while it reconciles all 500 again;
//! 4. the operator process's RSS (VmRSS, VmHWM) and CPU time from /proc — of the binary in
//!    `CONVERSE_OPERATOR_BIN` when set (the image's static musl build), else of this build.
//!
//! The ConverseServers ask for 0 replicas: the node could not run 500 pods, and pods are the
//! kubelet's work, not the operator's. Needs a running cluster (`make testenv-up`).

#[path = "../tests/common/cluster.rs"]
mod cluster;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use converse_operator::crd::ConverseServer;
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use testenv::TestNamespace;

const MANAGER: &str = "converse-operator-bench";
const FIRST: usize = 100;
const TOTAL: usize = 500;

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; nothing to parse.
    let Some(client) = cluster::cluster("bench reconcile").await else {
        eprintln!("bench reconcile: needs a running testenv cluster (make testenv-up)");
        std::process::exit(1);
    };
    cluster::install_crd(&client, MANAGER).await;
    let ns = TestNamespace::create(&client, "bench")
        .await
        .expect("namespace");
    let report = run(&client, &ns.name).await;
    ns.cleanup().await.expect("cleanup");
    println!("{report}");
}

async fn run(client: &Client, ns: &str) -> String {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    for (name, key, value) in [
        ("llm-keys", "openai", "sk-bench"),
        ("mcp-keys", "keys", "bench-key-0123456789abcdef0123456789"),
    ] {
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name}, "stringData": {key: value}});
        secrets
            .patch(name, &PatchParams::apply(MANAGER), &Patch::Apply(&secret))
            .await
            .expect("Secret");
    }

    let operator = Operator::start(ns).await;
    let servers: Api<ConverseServer> = Api::namespaced(client.clone(), ns);

    // Deployments as they appear, with the instant they were seen.
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let watch = {
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut events = watcher(deployments, watcher::Config::default())
                .applied_objects()
                .boxed();
            while let Ok(Some(d)) = events.try_next().await {
                seen.lock()
                    .unwrap()
                    .entry(d.name_any())
                    .or_insert_with(Instant::now);
            }
        })
    };

    // 1. latency, one at a time
    let mut created = HashMap::new();
    for i in 0..FIRST {
        let name = format!("s{i:03}");
        created.insert(name.clone(), Instant::now());
        servers
            .create(&PostParams::default(), &server(&name))
            .await
            .expect("create");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait(Duration::from_secs(120), "100 Deployments", || {
        seen.lock().unwrap().len() >= FIRST
    })
    .await;
    let mut latencies: Vec<Duration> = {
        let seen = seen.lock().unwrap();
        created
            .iter()
            .map(|(n, t)| seen[n].duration_since(*t))
            .collect()
    };
    latencies.sort();
    watch.abort();

    // 2. scale: the other 400 at once
    let started = Instant::now();
    stream::iter(FIRST..TOTAL)
        .map(|i| {
            let servers = servers.clone();
            async move {
                let name = format!("s{i:03}");
                servers
                    .create(&PostParams::default(), &server(&name))
                    .await
                    .expect("create");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let list = servers.list(&ListParams::default()).await.expect("list");
        let stale: Vec<&ConverseServer> = list.items.iter().filter(|s| !current(s)).collect();
        if list.items.len() == TOTAL && stale.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} ConverseServers without a current status after 5 min; the first: {:?}",
            stale.len(),
            list.items.len(),
            stale
                .first()
                .map(|s| (s.name_any(), s.metadata.generation, &s.status))
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let to_steady = started.elapsed();
    // Let the Deployment controller's status updates (and the reconciles they cause) settle.
    let mut writes = operator.metric("converse_operator_api_writes_total").await;
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = operator.metric("converse_operator_api_writes_total").await;
        if now == writes {
            break;
        }
        writes = now;
    }

    // 3. steady state: a reconcile of every ConverseServer, no write
    let reconciles_before = operator.metric("converse_operator_reconciles_total").await;
    let annotate = Instant::now();
    stream::iter(0..TOTAL)
        .map(|i| {
            let servers = servers.clone();
            async move {
                let name = format!("s{i:03}");
                let patch = json!({"metadata": {"annotations": {"bench.converse.dev/poke": "1"}}});
                servers
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .expect("annotate");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let mut reconciled = 0.0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while reconciled < TOTAL as f64 {
        assert!(
            Instant::now() < deadline,
            "the annotated ConverseServers were not reconciled"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        reconciled =
            operator.metric("converse_operator_reconciles_total").await - reconciles_before;
    }
    let steady_round = annotate.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let steady_writes = operator.metric("converse_operator_api_writes_total").await - writes;
    let reconciled =
        operator.metric("converse_operator_reconciles_total").await - reconciles_before;

    // 4. resources
    let (rss, hwm) = operator.memory_kib();
    let cpu = operator.cpu_seconds();
    operator.stop().await;

    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    format!(
        "| measure | result | aim |\n|---|---|---|\n\
         | create → Deployment, p50 (100 CRs, one every 100 ms) | {} | < 1 s |\n\
         | create → Deployment, p99 | {} | |\n\
         | create → Deployment, max | {} | |\n\
         | 400 more created at once → all 500 with current status | {:.1} s | < 60 s for 500 |\n\
         | steady state: writes during {reconciled:.0} reconciles (all 500 annotated, {:.1} s) | {steady_writes:.0} | 0 |\n\
         | operator RSS at 500 CRs (peak) | {:.1} MiB ({:.1} MiB) | < 64 MB |\n\
         | operator CPU time, whole run | {cpu:.1} s | |",
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(latencies[latencies.len() - 1]),
        to_steady.as_secs_f64(),
        steady_round.as_secs_f64(),
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
    )
}

fn server(name: &str) -> ConverseServer {
    serde_json::from_value(json!({
        "apiVersion": "converse.dev/v1alpha1", "kind": "ConverseServer",
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "providers": {"openai": {"apiKeySecretRef": {"name": "llm-keys", "key": "openai"}}},
            "auth": {"strategy": "apiKey", "apiKey": {"secretRef": {"name": "mcp-keys", "key": "keys"}}}
        }
    }))
    .expect("a valid ConverseServer")
}

fn current(s: &ConverseServer) -> bool {
    s.status.as_ref().is_some_and(|st| {
        st.observed_generation == s.metadata.generation
            && st
                .conditions
                .iter()
                .any(|c| c.type_ == "Accepted" && c.status == "True")
    })
}

async fn wait(timeout: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The release binary as its own process (so its RSS and CPU are its own), watching `ns`.
struct Operator {
    child: tokio::process::Child,
    metrics: String,
}

impl Operator {
    async fn start(ns: &str) -> Operator {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let kubeconfig = testenv::client::testenv_kubeconfig().expect("kubeconfig");
        // The shipped binary (musl + mimalloc, `make bench-operator` builds it) when given: its
        // memory is what a pod uses; otherwise this build's.
        let binary = std::env::var("CONVERSE_OPERATOR_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_converse-operator").to_owned());
        let child = tokio::process::Command::new(&binary)
            .args(["run", "--namespace", ns, "--log-level", "warn"])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", kubeconfig)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start converse-operator");
        let operator = Operator {
            child,
            metrics: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            let ready = client
                .get(format!("{}/readyz", operator.metrics))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return operator;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("converse-operator did not become ready");
    }

    /// The sum of a metric's samples.
    async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.metrics))
            .await
            .expect("/metrics")
            .text()
            .await
            .expect("/metrics body");
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum()
    }

    fn proc_file(&self, file: &str) -> String {
        let pid = self.child.id().expect("running");
        std::fs::read_to_string(format!("/proc/{pid}/{file}")).expect("/proc")
    }

    /// (VmRSS, VmHWM) in KiB.
    fn memory_kib(&self) -> (u64, u64) {
        let status = self.proc_file("status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// utime + stime in seconds (clock ticks of 1/100 s on Linux).
    fn cpu_seconds(&self) -> f64 {
        let stat = self.proc_file("stat");
        // Fields after the command name (which is in parentheses and may contain spaces).
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of stat; 12 and 13 after the ')'.
        (ticks(11) + ticks(12)) / 100.0
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
