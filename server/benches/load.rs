//! Load benchmark: converse-server against the Node.js `converse-mcp-server`
//! (the npm package, pinned in `bench/node/`), both talking to the same strict
//! fake provider with a fixed latency, measured in the same run.
//!
//! For each server, each mode and each concurrency level it starts a fresh
//! server process, drives it with rmcp's client (legacy era: `initialize`, then
//! `tools/call chat` in a loop), and reports calls/s, p50/p99 latency, errors and
//! the process's peak RSS; separately it measures startup time (spawn → the port
//! answers an MCP `initialize`) as the median of several starts. The numbers are
//! printed as Markdown tables with the ratios converse-server / Node.
//!
//! A third stage drives the same `tools/call chat` with `wrk` (Debian package
//! `wrk`): keep-alive HTTP/1.1 connections, as real MCP clients use, which
//! rmcp's client does not. It shows stalls that only such connections hit (a
//! response written in several pieces, held back by Nagle's algorithm until the
//! client's delayed ACK: 40 ms per call). For each server and each connection
//! count it opens one MCP session with plain HTTP (2025-11-25) and has every
//! connection call in it; for converse-server also without a session
//! (2026-07-28, every request carrying its version, `Mcp-Method` and `Mcp-Name`).
//!
//! A fourth stage, `sessions`, is the compass goal: `BENCH_SESSIONS` (256) MCP
//! sessions at once. For each server it raises the session cap to that number
//! (`HTTP_MAX_CONCURRENT_SESSIONS`, which both servers read), opens all the
//! sessions with plain HTTP at the same moment, each client with its own
//! keep-alive connection, then keeps every session busy with one `tools/call
//! chat` in flight; it reports sessions opened and refused, calls/s, p50/p99,
//! errors, peak RSS and the RSS each open session costs.
//!
//! A fifth stage, `fanout` (converse-server only), measures the consensus
//! fan-out: a `consensus` of `BENCH_FANOUT_MODELS` (5) models of a custom
//! provider pointed at its own fake answering in `BENCH_FANOUT_LATENCY_MS`
//! (200) per model call. Both phases (answers, then cross feedback) should run
//! their model calls in parallel, so one call should take ≈ 2 × that latency;
//! it reports one consensus at a time against that ideal and against a `chat`
//! baseline measured in the same run, then `BENCH_FANOUT_CONCURRENCY` (64)
//! consensus calls at once (p50/p99/max, p99 / p50 for head-of-line blocking).
//!
//! Run it with `make bench` (installs `bench/node`, builds, runs) or
//! `cargo bench -p converse-server --bench load`. Settings, all optional:
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `BENCH_STAGES` | `startup,load,wrk,sessions,fanout` | which stages to run |
//! | `BENCH_SERVERS` | `rust,node` | which servers to measure |
//! | `BENCH_MODES` | `sessions,shared` | `sessions`: N clients, one MCP session each; `shared`: one session, N calls in flight |
//! | `BENCH_CONCURRENCY` | `1,8,32` | concurrency levels |
//! | `BENCH_WRK_CONNECTIONS` | `1,16` | keep-alive connections per wrk level |
//! | `BENCH_SESSIONS` | `256` | sessions at once in the `sessions` stage (1..=10000) |
//! | `BENCH_WARMUP_SECS` | `3` | warm-up per level (not measured) |
//! | `BENCH_DURATION_SECS` | `10` | measured time per level |
//! | `BENCH_LATENCY_MS` | `50` | the fake provider's fixed latency per call |
//! | `BENCH_FANOUT_MODELS` | `5` | models per consensus in the `fanout` stage (1..=20) |
//! | `BENCH_FANOUT_LATENCY_MS` | `200` | the `fanout` stage's own fake latency per model call |
//! | `BENCH_FANOUT_CONCURRENCY` | `64` | consensus calls at once in the `fanout` stage |
//! | `BENCH_FANOUT_ROUNDS` | `5` | measured calls one at a time, and rounds of calls at once |
//! | `BENCH_WRK_LATENCY_MS` | `0` | the same for the wrk stage (its own fake; see there why 0) |
//! | `BENCH_STARTUP_RUNS` | `5` | starts per server for the startup median |
//! | `BENCH_CALL_TIMEOUT_SECS` | `30` | a call slower than this counts as an error (also wrk's `--timeout`) |
//! | `BENCH_REPORT` | — | also write the Markdown report to this file |
//! | `CONVERSE_SERVER_BIN` | the bench build | converse-server binary |
//! | `BENCH_NODE_DIR` | `bench/node` | where `npm ci` installed the Node server |
//! | `BENCH_NODE_BIN` | `$BENCH_NODE_DIR/node_modules/node/bin/node` | Node.js (≥ 24) |
//!
//! Every process it starts listens on 127.0.0.1 only and is killed at the end,
//! also when the benchmark fails. Benchmarks are not tests: nothing here asserts
//! a time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::TcpListener as StdTcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use converse_fake_llm::{FakeLlm, FakeLlmConfig};
use rmcp::RoleClient;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, Peer, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

/// The key the fake demands. Shaped like an OpenAI key (`sk-`, > 20 characters)
/// because the Node server refuses keys of any other shape. Not a secret.
const FAKE_KEY: &str = "sk-converse-bench-not-a-real-key";
/// The short prompt every call sends.
const PROMPT: &str = "Say hello in five words.";
/// Each server's own default OpenAI model (both go through the Responses API).
const RUST_MODEL: &str = "gpt-5";
const NODE_MODEL: &str = "gpt-5.6";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Flavor {
    Rust,
    Node,
}

impl Flavor {
    fn label(self) -> &'static str {
        match self {
            Self::Rust => "converse-server (Rust)",
            Self::Node => "converse-mcp-server 3.6.0 (Node)",
        }
    }

    /// The `chat` arguments in each server's schema: ours takes `model`, the
    /// Node server's 3.x unified tool takes `models` (and would try
    /// subscription SDK providers first for `auto`).
    fn chat_args(self) -> serde_json::Map<String, Value> {
        let args = match self {
            Self::Rust => json!({"prompt": PROMPT, "model": RUST_MODEL}),
            Self::Node => json!({"prompt": PROMPT, "models": [NODE_MODEL]}),
        };
        match args {
            Value::Object(map) => map,
            _ => unreachable!("literal object"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    /// N clients, each with its own MCP session, one call in flight each.
    Sessions,
    /// One MCP session, N calls in flight on it.
    Shared,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Self::Sessions => "sessions",
            Self::Shared => "shared",
        }
    }
}

/// The parts of the benchmark, each of which can be run alone (`BENCH_STAGES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Startup,
    Load,
    Wrk,
    /// `BENCH_SESSIONS` sessions at once, each busy (the compass goal).
    Sessions,
    /// A consensus over several models: one call alone, then many at once.
    Fanout,
}

#[derive(Debug, Clone)]
struct Settings {
    stages: Vec<Stage>,
    servers: Vec<Flavor>,
    modes: Vec<Mode>,
    concurrency: Vec<usize>,
    wrk_connections: Vec<usize>,
    /// Sessions at once in the `sessions` stage.
    sessions: usize,
    /// The `fanout` stage: models per consensus, the fake's latency there,
    /// consensus calls at once, and rounds (of single calls and of bursts).
    fanout_models: usize,
    fanout_latency: Duration,
    fanout_concurrency: usize,
    fanout_rounds: usize,
    warmup: Duration,
    duration: Duration,
    latency: Duration,
    wrk_latency: Duration,
    startup_runs: usize,
    call_timeout: Duration,
    report: Option<PathBuf>,
    rust_bin: PathBuf,
    node_bin: PathBuf,
    node_entry: PathBuf,
    /// `None` when wrk is not on the PATH (an error only if the stage runs).
    wrk_bin: Option<PathBuf>,
    scratch: PathBuf,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn env_number(name: &str, default: u64) -> Result<u64> {
    let raw = env_or(name, &default.to_string());
    raw.trim()
        .parse()
        .with_context(|| format!("{name}={raw:?} is not a whole number"))
}

fn list(name: &str, default: &str) -> Vec<String> {
    env_or(name, default)
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A list of counts in 1..=1000.
fn counts(name: &str, default: &str) -> Result<Vec<usize>> {
    list(name, default)
        .iter()
        .map(|s| match s.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(anyhow!("{name}: {s:?} is not a number in 1..=1000")),
        })
        .collect()
}

impl Settings {
    fn from_env() -> Result<Self> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("server/ has a parent")?
            .to_path_buf();
        let stages = list("BENCH_STAGES", "startup,load,wrk,sessions,fanout")
            .iter()
            .map(|s| match s.as_str() {
                "startup" => Ok(Stage::Startup),
                "load" => Ok(Stage::Load),
                "wrk" => Ok(Stage::Wrk),
                "sessions" => Ok(Stage::Sessions),
                "fanout" => Ok(Stage::Fanout),
                other => Err(anyhow!(
                    "BENCH_STAGES: unknown stage {other:?} (startup, load, wrk, sessions, fanout)"
                )),
            })
            .collect::<Result<Vec<_>>>()?;
        let servers = list("BENCH_SERVERS", "rust,node")
            .iter()
            .map(|s| match s.as_str() {
                "rust" => Ok(Flavor::Rust),
                "node" => Ok(Flavor::Node),
                other => Err(anyhow!(
                    "BENCH_SERVERS: unknown server {other:?} (rust, node)"
                )),
            })
            .collect::<Result<Vec<_>>>()?;
        let modes = list("BENCH_MODES", "sessions,shared")
            .iter()
            .map(|s| match s.as_str() {
                "sessions" => Ok(Mode::Sessions),
                "shared" => Ok(Mode::Shared),
                other => Err(anyhow!(
                    "BENCH_MODES: unknown mode {other:?} (sessions, shared)"
                )),
            })
            .collect::<Result<Vec<_>>>()?;
        let concurrency = counts("BENCH_CONCURRENCY", "1,8,32")?;
        let fanout_models = match env_number("BENCH_FANOUT_MODELS", 5)? {
            n @ 1..=20 => usize::try_from(n)?,
            n => bail!("BENCH_FANOUT_MODELS: {n} is not in 1..=20"),
        };
        let fanout_concurrency = match env_number("BENCH_FANOUT_CONCURRENCY", 64)? {
            n @ 1..=1000 => usize::try_from(n)?,
            n => bail!("BENCH_FANOUT_CONCURRENCY: {n} is not in 1..=1000"),
        };
        let wrk_connections = counts("BENCH_WRK_CONNECTIONS", "1,16")?;
        // The Node server accepts a session cap up to 10000.
        let sessions = match env_number("BENCH_SESSIONS", 256)? {
            n @ 1..=10_000 => usize::try_from(n)?,
            n => bail!("BENCH_SESSIONS: {n} is not in 1..=10000"),
        };
        if [
            stages.len(),
            servers.len(),
            modes.len(),
            concurrency.len(),
            wrk_connections.len(),
        ]
        .contains(&0)
        {
            bail!(
                "BENCH_STAGES, BENCH_SERVERS, BENCH_MODES, BENCH_CONCURRENCY and BENCH_WRK_CONNECTIONS must not be empty"
            );
        }
        let node_dir = std::env::var_os("BENCH_NODE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join("bench/node"));
        let node_bin = std::env::var_os("BENCH_NODE_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| node_dir.join("node_modules/node/bin/node"));
        let node_entry = node_dir.join("node_modules/converse-mcp-server/bin/converse.js");
        let rust_bin = std::env::var_os("CONVERSE_SERVER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_converse-server")));
        let scratch = std::env::temp_dir().join(format!("converse-bench-{}", std::process::id()));
        Ok(Self {
            stages,
            servers,
            modes,
            concurrency,
            wrk_connections,
            sessions,
            warmup: Duration::from_secs(env_number("BENCH_WARMUP_SECS", 3)?),
            duration: Duration::from_secs(env_number("BENCH_DURATION_SECS", 10)?.max(1)),
            latency: Duration::from_millis(env_number("BENCH_LATENCY_MS", 50)?),
            wrk_latency: Duration::from_millis(env_number("BENCH_WRK_LATENCY_MS", 0)?),
            fanout_models,
            fanout_latency: Duration::from_millis(env_number("BENCH_FANOUT_LATENCY_MS", 200)?),
            fanout_concurrency,
            fanout_rounds: usize::try_from(env_number("BENCH_FANOUT_ROUNDS", 5)?.max(1))?,
            startup_runs: usize::try_from(env_number("BENCH_STARTUP_RUNS", 5)?.max(1))?,
            call_timeout: Duration::from_secs(env_number("BENCH_CALL_TIMEOUT_SECS", 30)?.max(1)),
            report: std::env::var_os("BENCH_REPORT").map(PathBuf::from),
            rust_bin,
            node_bin,
            node_entry,
            wrk_bin: find_wrk(),
            scratch,
        })
    }

    fn check(&self) -> Result<()> {
        if self.stages.contains(&Stage::Wrk) && self.wrk_bin.is_none() {
            bail!(
                "wrk not found on the PATH: install it with `apt-get install wrk` (bench/run.sh does when run as root), \
                 or leave the keep-alive stage out with BENCH_STAGES=startup,load"
            );
        }
        if self.servers.contains(&Flavor::Rust) && !self.rust_bin.is_file() {
            bail!(
                "converse-server not found at {}: build it with `cargo build --release -p converse-server` or set CONVERSE_SERVER_BIN",
                self.rust_bin.display()
            );
        }
        if self.servers.contains(&Flavor::Node) {
            for (path, what) in [
                (&self.node_bin, "Node.js"),
                (&self.node_entry, "converse-mcp-server"),
            ] {
                if !path.is_file() {
                    bail!(
                        "{what} not found at {}: install the baseline with `make bench` (or `cd bench/node && npm ci`), \
                         or measure only this server with BENCH_SERVERS=rust",
                        path.display()
                    );
                }
            }
        }
        Ok(())
    }
}

// ----------------------------------------------------------------- processes

/// A server process, killed (with its whole process group) when dropped.
struct ServerProcess {
    flavor: Flavor,
    child: Child,
    pid: u32,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    async fn recent_log(&self) -> String {
        self.log.lock().await.join("\n")
    }

    /// Kills the process group and waits (bounded) for the server to be gone.
    async fn stop(mut self) {
        kill_group(self.pid);
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        // Gone: `Drop` must not signal a process group id that may be reused.
        self.pid = 0;
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        kill_group(self.pid);
        let _ = self.child.start_kill();
    }
}

/// SIGKILL to the process group the server leads (it was spawned as a group
/// leader, so this reaches anything it forked and nothing else).
fn kill_group(pid: u32) {
    if pid == 0 {
        return;
    }
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener = StdTcpListener::bind("127.0.0.1:0").context("bind a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Keeps the last lines a server printed (for error messages) and keeps the
/// pipe drained so the server never blocks on it.
fn drain(stream: impl AsyncRead + Unpin + Send + 'static, log: Arc<Mutex<Vec<String>>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut log = log.lock().await;
            log.push(line);
            if log.len() > 60 {
                log.drain(..20);
            }
        }
    });
}

/// Starts `flavor` on a free port against `fake`, with `extra` settings on top
/// of the common ones.
fn spawn_server(
    settings: &Settings,
    flavor: Flavor,
    fake: &FakeLlm,
    extra: &[(&str, String)],
) -> Result<ServerProcess> {
    let port = free_port()?;
    let program = match flavor {
        Flavor::Rust => &settings.rust_bin,
        Flavor::Node => &settings.node_bin,
    };
    let mut cmd = Command::new(program);
    // Built from nothing: no provider key or setting of the caller's shell leaks in.
    cmd.env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("LOG_LEVEL", "info")
        .env("HTTP_HOST", "127.0.0.1")
        .env("HTTP_PORT", port.to_string())
        .env("OPENAI_API_KEY", FAKE_KEY)
        .env("OPENAI_BASE_URL", fake.openai_base_url())
        .envs(extra.iter().map(|(name, value)| (name, value)));
    if flavor == Flavor::Node {
        let home = settings.scratch.join("node-home");
        std::fs::create_dir_all(&home).with_context(|| format!("create {}", home.display()))?;
        cmd.arg(&settings.node_entry)
            .env("MCP_TRANSPORT", "http")
            .env("NODE_ENV", "production")
            .env("HOME", &home)
            .env("CLIENT_CWD", &home);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawn {}", flavor.label()))?;
    let pid = child.id().unwrap_or(0);
    let log = Arc::new(Mutex::new(Vec::new()));
    if let Some(out) = child.stdout.take() {
        drain(out, Arc::clone(&log));
    }
    if let Some(err) = child.stderr.take() {
        drain(err, Arc::clone(&log));
    }
    Ok(ServerProcess {
        flavor,
        child,
        pid,
        port,
        log,
    })
}

/// Polls the port with a raw MCP `initialize` until it is answered; closes the
/// session it opened (the Node server serves one session at a time). Returns
/// the time from `since` to the answer.
async fn wait_ready(
    http: &reqwest::Client,
    server: &mut ServerProcess,
    since: Instant,
) -> Result<Duration> {
    let url = server.url();
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "converse-bench-probe", "version": "0"}
        }
    });
    let deadline = since + Duration::from_secs(60);
    loop {
        if let Some(status) = server.child.try_wait()? {
            bail!(
                "{} exited ({status}) before it answered initialize:\n{}",
                server.flavor.label(),
                server.recent_log().await
            );
        }
        let attempt = http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .json(&body)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if let Ok(response) = attempt
            && response.status().is_success()
        {
            let elapsed = since.elapsed();
            let session = response
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let text = response.text().await.unwrap_or_default();
            if !text.contains("\"result\"") {
                bail!(
                    "{} answered initialize without a result: {text}",
                    server.flavor.label()
                );
            }
            if let Some(session) = session {
                let _ = http
                    .delete(&url)
                    .header("mcp-session-id", session)
                    .header("mcp-protocol-version", "2025-06-18")
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
            }
            return Ok(elapsed);
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not answer initialize within 60 s:\n{}",
                server.flavor.label(),
                server.recent_log().await
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

// ----------------------------------------------------------------------- RSS

/// `VmHWM` (peak resident set) or `VmRSS` of one process, in kB.
fn proc_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// The process and all its descendants.
fn process_tree(root: u32) -> Vec<u32> {
    let mut parents: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // `pid (comm) state ppid …`; comm may contain spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        if let Some(children) = parents.get(&tree[i]) {
            tree.extend(children);
        }
        i += 1;
    }
    tree
}

/// Sum of the peak RSS of the process tree, in kB.
fn tree_peak_kb(root: u32) -> u64 {
    process_tree(root)
        .into_iter()
        .filter_map(|pid| proc_kb(pid, "VmHWM"))
        .sum()
}

/// The tree's resident set right now, in MB.
fn tree_rss_mb(root: u32) -> f64 {
    process_tree(root)
        .into_iter()
        .filter_map(|pid| proc_kb(pid, "VmRSS"))
        .sum::<u64>() as f64
        / 1024.0
}

/// Samples the tree's peak RSS until stopped; returns the highest seen (so a
/// child that exits before the end still counts).
fn rss_sampler(
    root: u32,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<u64>,
) {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let mut peak = 0;
        loop {
            peak = peak.max(tree_peak_kb(root));
            tokio::select! {
                _ = &mut stopped => break,
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
        peak.max(tree_peak_kb(root))
    });
    (stop, handle)
}

// ------------------------------------------------------------------- startup

#[derive(Debug, Clone)]
struct Startup {
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    idle_rss_mb: f64,
}

async fn measure_startup(settings: &Settings, flavor: Flavor, fake: &FakeLlm) -> Result<Startup> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("HTTP client")?;
    let mut times = Vec::new();
    let mut idle = Vec::new();
    for _ in 0..settings.startup_runs {
        let since = Instant::now();
        let mut server = spawn_server(settings, flavor, fake, &[])?;
        let ready = wait_ready(&http, &mut server, since).await;
        let ready = match ready {
            Ok(ready) => ready,
            Err(e) => {
                server.stop().await;
                return Err(e);
            }
        };
        times.push(ready.as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(300)).await;
        idle.push(tree_rss_mb(server.pid));
        server.stop().await;
    }
    times.sort_by(f64::total_cmp);
    idle.sort_by(f64::total_cmp);
    Ok(Startup {
        median_ms: median(&times),
        min_ms: times[0],
        max_ms: times[times.len() - 1],
        idle_rss_mb: median(&idle),
    })
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

// ---------------------------------------------------------------------- load

type Client = RunningService<RoleClient, ClientConfig>;

async fn connect(url: &str) -> Result<Client> {
    ClientConfig::default()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_uri(url.to_owned()),
            ClientLifecycleMode::Initialize,
        )
        .await
        .map_err(|e| anyhow!("initialize failed: {e}"))
}

#[derive(Debug, Clone)]
struct LoadResult {
    flavor: Flavor,
    mode: Mode,
    concurrency: usize,
    sessions_up: usize,
    sessions_wanted: usize,
    calls: usize,
    calls_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
    first_error: Option<String>,
    peak_rss_mb: f64,
    fake_max_in_flight: u64,
}

/// What one worker saw during the measured window (or all of them, merged).
#[derive(Debug, Default)]
struct WorkerStats {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

impl WorkerStats {
    fn merge(&mut self, other: Self) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// The `p`th percentile (nearest rank) of sorted latencies, in ms; NaN if none.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

/// Calls in a loop until `end`, one in flight; records the calls that finish
/// inside `[measure_from, end]`. A call yields `None` when it got a result, or
/// what went wrong.
async fn worker<F, Fut>(
    mut call: F,
    measure_from: Instant,
    end: Instant,
    call_timeout: Duration,
) -> WorkerStats
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<String>>,
{
    let mut stats = WorkerStats::default();
    while Instant::now() < end {
        let started = Instant::now();
        let outcome = tokio::time::timeout(call_timeout, call()).await;
        let finished = Instant::now();
        let in_window = finished >= measure_from && finished <= end;
        let failure =
            outcome.unwrap_or_else(|_| Some(format!("no answer within {call_timeout:?}")));
        match failure {
            None if in_window => stats.latencies.push(finished - started),
            None => {}
            Some(failure) => {
                if in_window {
                    stats.errors += 1;
                }
                stats.first_error.get_or_insert(failure);
                // Do not spin on an error that comes back at once.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    stats
}

/// Runs one [`worker`] per call function: warm-up, then the measured window.
/// Returns what they saw, merged, with the latencies sorted, and the most model
/// calls the fake answered at once during the window.
async fn drive<F, Fut>(
    settings: &Settings,
    fake: &FakeLlm,
    calls: Vec<F>,
) -> Result<(WorkerStats, u64)>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Option<String>> + Send + 'static,
{
    if calls.is_empty() {
        return Ok((WorkerStats::default(), 0));
    }
    let measure_from = Instant::now() + settings.warmup;
    let end = measure_from + settings.duration;
    let workers: Vec<_> = calls
        .into_iter()
        .map(|call| tokio::spawn(worker(call, measure_from, end, settings.call_timeout)))
        .collect();
    // The fake's in-flight high-water mark, for the measured window only.
    tokio::time::sleep_until(measure_from.into()).await;
    fake.clear_requests();
    let mut stats = WorkerStats::default();
    for handle in workers {
        stats.merge(handle.await.context("a load worker panicked")?);
    }
    stats.latencies.sort();
    Ok((stats, fake.max_in_flight()))
}

/// One `tools/call chat` through rmcp's client.
async fn rmcp_call(peer: Peer<RoleClient>, args: serde_json::Map<String, Value>) -> Option<String> {
    rmcp_tool_call(peer, "chat", args).await
}

/// One `tools/call` of `tool` through rmcp's client: `None` when it got a
/// result, or what went wrong.
async fn rmcp_tool_call(
    peer: Peer<RoleClient>,
    tool: &'static str,
    args: serde_json::Map<String, Value>,
) -> Option<String> {
    match peer
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
    {
        Err(e) => Some(format!("protocol error: {e}")),
        Ok(result) if result.is_error == Some(true) => Some(format!(
            "tool error: {}",
            result
                .content
                .iter()
                .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(300)
                .collect::<String>()
        )),
        Ok(_) => None,
    }
}

async fn run_load(
    settings: &Settings,
    flavor: Flavor,
    mode: Mode,
    concurrency: usize,
    fake: &FakeLlm,
) -> Result<LoadResult> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let mut server = spawn_server(settings, flavor, fake, &[])?;
    if let Err(e) = wait_ready(&http, &mut server, Instant::now()).await {
        server.stop().await;
        return Err(e);
    }
    let (stop_sampler, sampler) = rss_sampler(server.pid);
    let url = server.url();

    // Sessions: N clients, or one shared by all workers.
    let wanted = match mode {
        Mode::Sessions => concurrency,
        Mode::Shared => 1,
    };
    let attempts = futures::future::join_all((0..wanted).map(|_| connect(&url))).await;
    let mut clients = Vec::new();
    let mut init_error = None;
    for attempt in attempts {
        match attempt {
            Ok(client) => clients.push(client),
            Err(e) => {
                init_error.get_or_insert(e.to_string());
            }
        }
    }
    let sessions_up = clients.len();

    let args = flavor.chat_args();
    let peers: Vec<Peer<RoleClient>> = match (mode, clients.first()) {
        (_, None) => Vec::new(),
        (Mode::Sessions, _) => clients.iter().map(|c| c.peer().clone()).collect(),
        (Mode::Shared, Some(client)) => vec![client.peer().clone(); concurrency],
    };
    let calls = peers
        .into_iter()
        .map(|peer| {
            let args = args.clone();
            move || rmcp_call(peer.clone(), args.clone())
        })
        .collect();
    let outcome = drive(settings, fake, calls).await;
    let _ = stop_sampler.send(());
    let peak_kb = sampler.await.unwrap_or(0);
    for client in clients {
        let _ = tokio::time::timeout(Duration::from_secs(5), client.cancel()).await;
    }
    server.stop().await;
    let (stats, fake_max_in_flight) = outcome?;

    let first_error = init_error
        .map(|e| format!("{} of {wanted} sessions: {e}", wanted - sessions_up))
        .or(stats.first_error);
    Ok(LoadResult {
        flavor,
        mode,
        concurrency,
        sessions_up,
        sessions_wanted: wanted,
        calls: stats.latencies.len(),
        calls_per_s: stats.latencies.len() as f64 / settings.duration.as_secs_f64(),
        p50_ms: percentile(&stats.latencies, 50.0),
        p99_ms: percentile(&stats.latencies, 99.0),
        errors: stats.errors,
        first_error,
        peak_rss_mb: peak_kb as f64 / 1024.0,
        fake_max_in_flight,
    })
}

// ---------------------------------------------------- keep-alive clients (wrk)

// Real MCP clients keep one HTTP/1.1 connection alive and send call after call
// on it. A 40 ms stall per call on such connections (Nagle's algorithm holding
// back the second piece of a response until the client's delayed ACK) went
// unseen because rmcp's client above does not behave like that on the wire.
// `wrk` does, so this stage drives the same `tools/call chat` with it.
//
// It has its own fake provider, with no latency by default: while the server
// waits on a slower provider, the client's delayed ACK of the response's first
// piece (the SSE priming event) fires on its own, and the stall hides. Measured
// on a build without TCP_NODELAY: p50 53 ms with or without it at 50 ms, but
// 44 ms against 0.5 ms at 0 ms.

/// The two eras a client may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Era {
    /// `initialize` → `Mcp-Session-Id`, then calls in that session.
    Sessions,
    /// 2026-07-28: no handshake, no session; every request carries its version.
    Stateless,
}

const SESSION_VERSION: &str = "2025-11-25";
const STATELESS_VERSION: &str = "2026-07-28";
const MCP_ACCEPT: &str = "application/json, text/event-stream";

impl Era {
    /// The Node server predates the stateless era.
    fn applies_to(self, flavor: Flavor) -> bool {
        self == Self::Sessions || flavor == Flavor::Rust
    }
}

#[derive(Debug, Clone)]
struct WrkResult {
    flavor: Flavor,
    /// The era with the protocol version actually used (a server may negotiate
    /// an older one than we asked for).
    era: String,
    connections: usize,
    numbers: WrkNumbers,
}

/// What one measured `wrk` run reported.
#[derive(Debug, Clone, Default)]
struct WrkNumbers {
    /// Answers that were 200 with a result, per second.
    calls_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Non-200 answers, bodies without a result or with `isError`, and socket
    /// errors (connect, read, write, timeout).
    errors: u64,
    first_error: Option<String>,
}

/// POSTs one JSON-RPC message the way an MCP client does.
async fn post_mcp(
    http: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    body: &Value,
) -> Result<reqwest::Response> {
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", MCP_ACCEPT)
        .json(body)
        .timeout(Duration::from_secs(10));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.context("POST to the server")
}

/// The JSON-RPC answer in a response body, which may be plain JSON or an SSE
/// stream (the Node server answers every POST with one); in a stream, the first
/// event with a `result` or an `error` (notifications may come before it).
fn jsonrpc_message(body: &str) -> Result<Value> {
    if let Ok(value) = serde_json::from_str(body) {
        return Ok(value);
    }
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("result").is_some() || message.get("error").is_some())
        .with_context(|| format!("no JSON-RPC answer in the response: {body}"))
}

/// Opens one MCP session with plain HTTP (`initialize`, then
/// `notifications/initialized`) and returns the headers every call in it must
/// carry, and the version the server chose.
async fn open_session(
    http: &reqwest::Client,
    url: &str,
) -> Result<(Vec<(String, String)>, String)> {
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": SESSION_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "converse-bench-wrk", "version": "0"}
        }
    });
    let response = post_mcp(http, url, &[], &init).await?;
    let status = response.status();
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("initialize answered {status}: {text}");
    }
    let session = session.context("initialize answered without an Mcp-Session-Id")?;
    let version = jsonrpc_message(&text)?
        .pointer("/result/protocolVersion")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("initialize answered without a protocolVersion: {text}"))?;
    let headers = vec![
        ("Mcp-Session-Id".to_owned(), session),
        ("Mcp-Protocol-Version".to_owned(), version.clone()),
    ];
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = post_mcp(http, url, &headers, &initialized).await?;
    if !response.status().is_success() {
        bail!(
            "notifications/initialized answered {}: {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    Ok((headers, version))
}

/// The `tools/call` body with `"__ID__"` where each request's own id goes: calls
/// in flight at once in one session must not share an id.
fn wrk_call_body(flavor: Flavor, era: Era) -> Value {
    let mut params = json!({"name": "chat", "arguments": flavor.chat_args()});
    if era == Era::Stateless {
        // Without a handshake the request itself says who is calling (rmcp
        // refuses a 2026-07-28 request whose _meta lacks these).
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "converse-bench-wrk", "version": "0"}
        });
    }
    json!({"jsonrpc": "2.0", "id": "__ID__", "method": "tools/call", "params": params})
}

/// A Lua string literal: printable ASCII as is, every other byte as `\ddd`.
fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        if (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\{b:03}");
        }
    }
    out.push('"');
    out
}

/// The wrk script: the call with its headers, a fresh id per request, and a
/// `response` hook that counts what a client would not accept as a result;
/// `done` prints the count over all threads for [`parse_wrk`].
fn wrk_script(headers: &[(String, String)], body: &Value) -> Result<String> {
    let body = serde_json::to_string(body)?;
    let (head, tail) = body
        .split_once("\"__ID__\"")
        .context("the call body has no id placeholder")?;
    let mut lua = String::from("wrk.method = \"POST\"\n");
    let fixed = [
        ("Content-Type".to_owned(), "application/json".to_owned()),
        ("Accept".to_owned(), MCP_ACCEPT.to_owned()),
    ];
    for (name, value) in fixed.iter().chain(headers) {
        let _ = writeln!(
            lua,
            "wrk.headers[{}] = {}",
            lua_string(name),
            lua_string(value)
        );
    }
    let _ = writeln!(lua, "local head = {}", lua_string(head));
    let _ = writeln!(lua, "local tail = {}", lua_string(tail));
    lua.push_str(WRK_HOOKS);
    Ok(lua)
}

/// The Lua hooks. Each wrk thread runs the script in its own Lua state, so the
/// error counts live in per-thread globals that only `done` (in the main state)
/// can add up, through the thread handles `setup` kept.
const WRK_HOOKS: &str = r#"
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
local counter = 0
errors = 0
first_error = ""
function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, head .. '"w' .. tid .. '-' .. counter .. '"' .. tail)
end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"result"', 1, true)
      or string.find(body, '"isError":true', 1, true) then
    errors = errors + 1
    if first_error == "" then
      first_error = status .. " " .. string.sub(string.gsub(body, "%s+", " "), 1, 300)
    end
  end
end
function done(summary, latency, requests)
  local bad, first = 0, ""
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("errors")
    if first == "" then first = thread:get("first_error") end
  end
  local e = summary.errors
  io.write(string.format("converse-bench: responses %d bad %d socket %d\n",
    summary.requests, bad, e.connect + e.read + e.write + e.timeout))
  io.write("converse-bench-first-error: " .. first .. "\n")
end
"#;

/// `wrk` on the PATH, if any.
fn find_wrk() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("wrk"))
        .find(|path| path.is_file())
}

/// Runs wrk once for `duration`; its whole output on success.
async fn run_wrk(
    settings: &Settings,
    script: &Path,
    url: &str,
    connections: usize,
    duration: Duration,
) -> Result<String> {
    let secs = duration.as_secs().max(1);
    let timeout = settings.call_timeout.as_secs().max(1);
    let wrk = settings
        .wrk_bin
        .as_deref()
        .context("wrk is not installed")?;
    let mut cmd = Command::new(wrk);
    cmd.args(["--latency", "-s"])
        .arg(script)
        .arg(format!("-t{}", connections.min(2)))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{secs}s"))
        .arg(format!("--timeout={timeout}s"))
        .arg(url)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // wrk stops by itself after -d; the margin covers calls still in flight.
    let bound = Duration::from_secs(secs + timeout + 10);
    let output = tokio::time::timeout(bound, cmd.output())
        .await
        .with_context(|| format!("wrk did not finish within {bound:?}"))?
        .context("run wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}

/// A wrk duration (`812.00us`, `52.10ms`, `1.20s`, `2.00m`) in milliseconds.
fn wrk_ms(value: &str) -> Option<f64> {
    let split = value.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    Some(number * factor)
}

/// Reads the numbers out of `wrk --latency` output and the script's `done` lines.
fn parse_wrk(output: &str) -> Result<WrkNumbers> {
    let field = |prefix: &str| -> Option<&str> {
        output
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .map(str::trim)
    };
    let percentile = |p: &str| field(p).and_then(wrk_ms).unwrap_or(f64::NAN);
    let counts: Vec<u64> = field("converse-bench: responses")
        .context("no count from the script's done hook")?
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    let [responses, bad, socket] = counts[..] else {
        bail!("unreadable counts from the script's done hook:\n{output}");
    };
    // "N requests in 3.00s, …": the time wrk really measured.
    let elapsed = output
        .lines()
        .find_map(|line| line.split_once(" requests in "))
        .and_then(|(_, rest)| rest.split(',').next())
        .and_then(wrk_ms)
        .with_context(|| format!("no \"requests in\" line in the wrk output:\n{output}"))?;
    let first_error = field("converse-bench-first-error:")
        .filter(|e| !e.is_empty())
        .map(str::to_owned);
    Ok(WrkNumbers {
        calls_per_s: responses.saturating_sub(bad) as f64 / (elapsed / 1000.0).max(0.001),
        p50_ms: percentile("50%"),
        p99_ms: percentile("99%"),
        errors: bad + socket,
        first_error,
    })
}

/// One level: a fresh server, a session (or none), warm-up, the measured run.
async fn run_wrk_level(
    settings: &Settings,
    flavor: Flavor,
    era: Era,
    connections: usize,
    fake: &FakeLlm,
) -> Result<WrkResult> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let mut server = spawn_server(settings, flavor, fake, &[])?;
    let outcome = async {
        wait_ready(&http, &mut server, Instant::now()).await?;
        let url = server.url();
        let (headers, era_label) = match era {
            Era::Sessions => {
                let (headers, version) = open_session(&http, &url).await?;
                (headers, format!("{version} session"))
            }
            Era::Stateless => (
                vec![
                    (
                        "MCP-Protocol-Version".to_owned(),
                        STATELESS_VERSION.to_owned(),
                    ),
                    ("Mcp-Method".to_owned(), "tools/call".to_owned()),
                    ("Mcp-Name".to_owned(), "chat".to_owned()),
                ],
                format!("{STATELESS_VERSION} stateless"),
            ),
        };
        let script = settings.scratch.join(format!("wrk-{flavor:?}-{era:?}.lua"));
        let lua = wrk_script(&headers, &wrk_call_body(flavor, era))?;
        std::fs::write(&script, lua).with_context(|| format!("write {}", script.display()))?;
        if !settings.warmup.is_zero() {
            run_wrk(settings, &script, &url, connections, settings.warmup).await?;
        }
        let output = run_wrk(settings, &script, &url, connections, settings.duration).await?;
        let numbers = parse_wrk(&output)?;
        Ok::<_, anyhow::Error>(WrkResult {
            flavor,
            era: era_label,
            connections,
            numbers,
        })
    }
    .await;
    let outcome = match outcome {
        Ok(result) => Ok(result),
        Err(e) => Err(anyhow!("{e:#}\nserver log:\n{}", server.recent_log().await)),
    };
    server.stop().await;
    outcome
}

// ------------------------------------------------ many sessions at once

// The compass goal: 256 MCP clients on one server, each with its own session
// and its own keep-alive connection, all arriving together, all busy. Plain
// HTTP (the 2025-11-25 session era, as in the wrk stage) rather than rmcp's
// client: one reqwest client per session pins each session to its own
// connection, as real clients are, and keeps the driver light on 2 shared cores.

#[derive(Debug, Clone)]
struct SessionsResult {
    flavor: Flavor,
    wanted: usize,
    opened: usize,
    /// Why the first session that could not be opened was refused.
    first_refusal: Option<String>,
    calls: usize,
    calls_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
    first_error: Option<String>,
    /// Resident set before any session, with all sessions open (before any
    /// call), and the peak over the whole run.
    idle_rss_mb: f64,
    open_rss_mb: f64,
    peak_rss_mb: f64,
    fake_max_in_flight: u64,
}

impl SessionsResult {
    /// What each open session adds to `rss_mb` over the idle server, in KB.
    fn kb_per_session(&self, rss_mb: f64) -> f64 {
        if self.opened == 0 {
            return f64::NAN;
        }
        (rss_mb - self.idle_rss_mb) * 1024.0 / self.opened as f64
    }
}

/// One client of the stage: its own HTTP client (so its own keep-alive
/// connection) and the headers of its session.
struct OpenSession {
    http: reqwest::Client,
    headers: Vec<(String, String)>,
}

/// Opens `n` sessions at the same moment: every client is built first, then all
/// send `initialize` together (a barrier). Returns the sessions opened and the
/// first refusal.
async fn open_sessions(url: &str, n: usize) -> Result<(Vec<OpenSession>, Option<String>)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut openers = Vec::with_capacity(n);
    for _ in 0..n {
        let http = reqwest::Client::builder().no_proxy().build()?;
        let barrier = Arc::clone(&barrier);
        let url = url.to_owned();
        openers.push(tokio::spawn(async move {
            barrier.wait().await;
            let (headers, _version) = open_session(&http, &url).await?;
            Ok::<_, anyhow::Error>(OpenSession { http, headers })
        }));
    }
    let mut sessions = Vec::with_capacity(n);
    let mut first_refusal = None;
    for opener in openers {
        match opener.await.context("a session opener panicked")? {
            Ok(session) => sessions.push(session),
            Err(e) => {
                first_refusal.get_or_insert(format!("{e:#}"));
            }
        }
    }
    Ok((sessions, first_refusal))
}

/// One `tools/call` in a session over plain HTTP; `Err` unless the answer is a
/// result without `isError`.
async fn http_call(session: &OpenSession, url: &str, body: &Value) -> Result<()> {
    let response = post_mcp(&session.http, url, &session.headers, body).await?;
    let status = response.status();
    let text = response.text().await.context("read the answer")?;
    let short = |s: &str| s.chars().take(300).collect::<String>();
    if !status.is_success() {
        bail!("{status}: {}", short(&text));
    }
    let message = jsonrpc_message(&text)?;
    if let Some(error) = message.get("error") {
        bail!("JSON-RPC error: {}", short(&error.to_string()));
    }
    if message.pointer("/result/isError") == Some(&Value::Bool(true)) {
        bail!(
            "tool error: {}",
            short(&message["result"]["content"].to_string())
        );
    }
    Ok(())
}

/// One call of a [`worker`], boxed (a function cannot name its closures' futures).
type CallFuture = std::pin::Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// A call function per session for [`drive`]: `tools/call chat`, a fresh id
/// each time.
fn session_calls(
    flavor: Flavor,
    url: &str,
    sessions: Vec<OpenSession>,
) -> Vec<impl FnMut() -> CallFuture + Send + 'static> {
    let template = wrk_call_body(flavor, Era::Sessions);
    sessions
        .into_iter()
        .map(|session| {
            let session = Arc::new(session);
            let (url, template) = (url.to_owned(), template.clone());
            let mut id = 1_u64;
            move || {
                id += 1;
                let mut body = template.clone();
                body["id"] = json!(id);
                let (session, url) = (Arc::clone(&session), url.clone());
                Box::pin(async move {
                    let outcome = http_call(&session, &url, &body).await;
                    outcome.err().map(|e| format!("{e:#}"))
                }) as CallFuture
            }
        })
        .collect()
}

/// One server: a fresh process with its session cap at `BENCH_SESSIONS`, all
/// sessions opened at once, then all busy through warm-up and the measured
/// window.
async fn run_sessions_level(
    settings: &Settings,
    flavor: Flavor,
    fake: &FakeLlm,
) -> Result<SessionsResult> {
    let n = settings.sessions;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let cap = [("HTTP_MAX_CONCURRENT_SESSIONS", n.to_string())];
    let mut server = spawn_server(settings, flavor, fake, &cap)?;
    let outcome = async {
        wait_ready(&http, &mut server, Instant::now()).await?;
        // As in the startup stage: the resident set a moment after the first answer.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let idle_rss_mb = tree_rss_mb(server.pid);
        let (stop_sampler, sampler) = rss_sampler(server.pid);
        let url = server.url();
        let (sessions, first_refusal) = open_sessions(&url, n).await?;
        let opened = sessions.len();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let open_rss_mb = tree_rss_mb(server.pid);
        let driven = drive(settings, fake, session_calls(flavor, &url, sessions)).await;
        let _ = stop_sampler.send(());
        let peak_kb = sampler.await.unwrap_or(0);
        let (stats, fake_max_in_flight) = driven?;
        Ok::<_, anyhow::Error>(SessionsResult {
            flavor,
            wanted: n,
            opened,
            first_refusal,
            calls: stats.latencies.len(),
            calls_per_s: stats.latencies.len() as f64 / settings.duration.as_secs_f64(),
            p50_ms: percentile(&stats.latencies, 50.0),
            p99_ms: percentile(&stats.latencies, 99.0),
            errors: stats.errors,
            first_error: stats.first_error,
            idle_rss_mb,
            open_rss_mb,
            peak_rss_mb: peak_kb as f64 / 1024.0,
            fake_max_in_flight,
        })
    }
    .await;
    let outcome = match outcome {
        Ok(result) => Ok(result),
        Err(e) => Err(anyhow!("{e:#}\nserver log:\n{}", server.recent_log().await)),
    };
    server.stop().await;
    outcome
}

// ------------------------------------------------------- consensus fan-out

// A `consensus` in parallel mode asks every model at once, then (cross
// feedback, on by default) every model again with the others' answers, also
// at once: with N models and a provider answering in L, one call should take
// about 2 × L, not 2 × N × L. The stage measures that on converse-server alone
// (the Node server's consensus is another tool with other phases, and it
// serves one session at a time), against its own fake with `BENCH_FANOUT_LATENCY_MS`
// (200) per model call. The models are `fan-1` … `fan-N` of a custom provider
// `fan` pointed at the fake (one fake serves any number of models by name).
// Baseline, same process, same fake: a `chat` with one of those models, one at
// a time. Then one consensus at a time, then `BENCH_FANOUT_CONCURRENCY` (64)
// consensus calls released together from as many sessions, for
// `BENCH_FANOUT_ROUNDS` rounds (after one unmeasured round of each).

#[derive(Debug, Clone)]
struct FanoutResult {
    models: usize,
    latency_ms: f64,
    /// One `chat`, one model, one at a time: the baseline.
    chat_median_ms: f64,
    /// One consensus at a time.
    single_median_ms: f64,
    single_min_ms: f64,
    single_max_ms: f64,
    /// Model calls the fake saw per single consensus (2 × models with cross feedback).
    model_calls_per_consensus: f64,
    /// Most model calls at once during the single consensus calls.
    single_max_in_flight: u64,
    concurrency: usize,
    sessions_up: usize,
    rounds: usize,
    burst_calls: usize,
    burst_p50_ms: f64,
    burst_p99_ms: f64,
    burst_max_ms: f64,
    burst_errors: usize,
    burst_max_in_flight: u64,
    first_error: Option<String>,
}

fn fanout_models(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("fan-{i}")).collect()
}

fn fanout_args(settings: &Settings) -> serde_json::Map<String, Value> {
    match json!({"prompt": PROMPT, "models": fanout_models(settings.fanout_models)}) {
        Value::Object(map) => map,
        _ => unreachable!("literal object"),
    }
}

/// `rounds` calls one after another on `peer`; their times, sorted, or the first failure.
async fn sequential_calls(
    peer: &Peer<RoleClient>,
    tool: &'static str,
    args: &serde_json::Map<String, Value>,
    rounds: usize,
    timeout: Duration,
) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(timeout, rmcp_tool_call(peer.clone(), tool, args.clone()))
                .await
                .unwrap_or_else(|_| Some(format!("no answer within {timeout:?}")));
        if let Some(failure) = outcome {
            bail!("{tool}: {failure}");
        }
        times.push(started.elapsed());
    }
    times.sort();
    Ok(times)
}

/// One round: every peer starts one consensus at the same moment.
async fn burst(
    peers: &[Peer<RoleClient>],
    args: &serde_json::Map<String, Value>,
    timeout: Duration,
) -> Result<WorkerStats> {
    let gate = Arc::new(tokio::sync::Barrier::new(peers.len()));
    let handles: Vec<_> = peers
        .iter()
        .map(|peer| {
            let (peer, args, gate) = (peer.clone(), args.clone(), Arc::clone(&gate));
            tokio::spawn(async move {
                gate.wait().await;
                let started = Instant::now();
                let outcome =
                    tokio::time::timeout(timeout, rmcp_tool_call(peer, "consensus", args))
                        .await
                        .unwrap_or_else(|_| Some(format!("no answer within {timeout:?}")));
                (started.elapsed(), outcome)
            })
        })
        .collect();
    let mut stats = WorkerStats::default();
    for handle in handles {
        match handle.await.context("a consensus call panicked")? {
            (took, None) => stats.latencies.push(took),
            (_, Some(failure)) => {
                stats.errors += 1;
                stats.first_error.get_or_insert(failure);
            }
        }
    }
    Ok(stats)
}

async fn run_fanout(settings: &Settings, fake: &FakeLlm) -> Result<FanoutResult> {
    let models = fanout_models(settings.fanout_models);
    let extra = [
        ("CUSTOM_PROVIDERS", "fan".to_owned()),
        ("CUSTOM_FAN_BASE_URL", fake.openai_base_url()),
        ("CUSTOM_FAN_API_KEY", FAKE_KEY.to_owned()),
        ("CUSTOM_FAN_MODELS", models.join(",")),
        (
            "HTTP_MAX_CONCURRENT_SESSIONS",
            (settings.fanout_concurrency + 2).to_string(),
        ),
    ];
    let http = reqwest::Client::builder().no_proxy().build()?;
    let mut server = spawn_server(settings, Flavor::Rust, fake, &extra)?;
    if let Err(e) = wait_ready(&http, &mut server, Instant::now()).await {
        server.stop().await;
        return Err(e);
    }
    let url = server.url();
    let outcome = fanout_measure(settings, fake, &url, &models).await;
    server.stop().await;
    outcome
}

async fn fanout_measure(
    settings: &Settings,
    fake: &FakeLlm,
    url: &str,
    models: &[String],
) -> Result<FanoutResult> {
    let timeout = settings.call_timeout;
    let rounds = settings.fanout_rounds;
    let client = connect(url).await?;
    let peer = client.peer().clone();
    let chat_args = match json!({"prompt": PROMPT, "model": models[0]}) {
        Value::Object(map) => map,
        _ => unreachable!("literal object"),
    };
    let consensus_args = fanout_args(settings);

    // Unmeasured: one of each, so connections to the fake are open.
    sequential_calls(&peer, "chat", &chat_args, 1, timeout).await?;
    sequential_calls(&peer, "consensus", &consensus_args, 1, timeout).await?;
    let chat = sequential_calls(&peer, "chat", &chat_args, rounds, timeout).await?;
    fake.clear_requests();
    let single = sequential_calls(&peer, "consensus", &consensus_args, rounds, timeout).await?;
    let model_calls = fake.requests().len();
    let single_max_in_flight = fake.max_in_flight();
    let _ = tokio::time::timeout(Duration::from_secs(5), client.cancel()).await;

    // N sessions, one consensus in flight each, all released together.
    let attempts =
        futures::future::join_all((0..settings.fanout_concurrency).map(|_| connect(url))).await;
    let mut clients = Vec::new();
    let mut first_error = None;
    for attempt in attempts {
        match attempt {
            Ok(client) => clients.push(client),
            Err(e) => {
                first_error.get_or_insert(format!("a session did not open: {e}"));
            }
        }
    }
    let peers: Vec<_> = clients.iter().map(|c| c.peer().clone()).collect();
    let mut stats = WorkerStats::default();
    let mut burst_max_in_flight = 0;
    if !peers.is_empty() {
        burst(&peers, &consensus_args, timeout).await?; // unmeasured
        fake.clear_requests();
        for _ in 0..rounds {
            stats.merge(burst(&peers, &consensus_args, timeout).await?);
        }
        burst_max_in_flight = fake.max_in_flight();
    }
    stats.latencies.sort();
    let sessions_up = clients.len();
    for client in clients {
        let _ = tokio::time::timeout(Duration::from_secs(5), client.cancel()).await;
    }
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let single_ms: Vec<f64> = single.iter().map(ms).collect();
    let chat_ms: Vec<f64> = chat.iter().map(ms).collect();
    Ok(FanoutResult {
        models: models.len(),
        latency_ms: settings.fanout_latency.as_secs_f64() * 1000.0,
        chat_median_ms: median(&chat_ms),
        single_median_ms: median(&single_ms),
        single_min_ms: single_ms.first().copied().unwrap_or(f64::NAN),
        single_max_ms: single_ms.last().copied().unwrap_or(f64::NAN),
        model_calls_per_consensus: model_calls as f64 / rounds as f64,
        single_max_in_flight,
        concurrency: settings.fanout_concurrency,
        sessions_up,
        rounds,
        burst_calls: stats.latencies.len(),
        burst_p50_ms: percentile(&stats.latencies, 50.0),
        burst_p99_ms: percentile(&stats.latencies, 99.0),
        burst_max_ms: stats.latencies.last().map(ms).unwrap_or(f64::NAN),
        burst_errors: stats.errors,
        burst_max_in_flight,
        first_error: first_error.or(stats.first_error),
    })
}

// -------------------------------------------------------------------- report

fn fmt_ms(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else if v < 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_nan() || b.is_nan() || b == 0.0 {
        "—".into()
    } else {
        format!("{:.2}×", a / b)
    }
}

fn report(
    settings: &Settings,
    startups: &BTreeMap<Flavor, Startup>,
    results: &[LoadResult],
    wrk: &[WrkResult],
    sessions: &[SessionsResult],
    fanout: Option<&FanoutResult>,
) -> String {
    let mut out = String::new();
    let timing = format!(
        "warm-up {} s, measured {} s per level",
        settings.warmup.as_secs(),
        settings.duration.as_secs()
    );
    // The wrk and fan-out tables name their own fakes' latencies.
    if results.is_empty() && startups.is_empty() && sessions.is_empty() {
        if !wrk.is_empty() {
            let _ = write!(out, "Keep-alive stage: {timing}");
        }
    } else {
        let _ = write!(
            out,
            "Fake provider latency {} ms, {timing}",
            settings.latency.as_millis()
        );
    }
    if !startups.is_empty() {
        let _ = write!(
            out,
            ", startup = median of {} starts",
            settings.startup_runs
        );
    }
    if !out.is_empty() {
        let _ = writeln!(out, ".");
    }
    if !results.is_empty() {
        load_table(&mut out, startups, results);
    }
    if !startups.is_empty() {
        startup_table(&mut out, startups);
    }
    ratio_table(&mut out, settings, results);
    if let (Some(rust), Some(node)) = (startups.get(&Flavor::Rust), startups.get(&Flavor::Node)) {
        let _ = writeln!(
            out,
            "\nStartup: converse-server {} ms, Node {} ms ({}; aim < 50 ms); idle RSS {} of Node's.",
            fmt_ms(rust.median_ms),
            fmt_ms(node.median_ms),
            ratio(rust.median_ms, node.median_ms),
            ratio(rust.idle_rss_mb, node.idle_rss_mb),
        );
    }
    if !wrk.is_empty() {
        wrk_table(&mut out, settings, wrk);
    }
    if !sessions.is_empty() {
        sessions_table(&mut out, settings, sessions);
    }
    if let Some(fanout) = fanout {
        fanout_table(&mut out, fanout);
    }
    let notes = error_notes(results, wrk, sessions);
    if !notes.is_empty() {
        let _ = writeln!(out, "\nFirst error per level:\n");
        for note in notes {
            let _ = writeln!(out, "{note}");
        }
    }
    out
}

fn fanout_table(out: &mut String, r: &FanoutResult) {
    let ideal = 2.0 * r.latency_ms;
    let _ = writeln!(
        out,
        "\nConsensus fan-out (converse-server; {} models `fan-1`…, parallel mode with cross feedback; fake provider latency {} ms per model call, so the ideal is 2 × {} = {} ms; medians of {} calls one at a time; then {} consensus calls at once from {} sessions, {} rounds):\n",
        r.models,
        fmt_ms(r.latency_ms),
        fmt_ms(r.latency_ms),
        fmt_ms(ideal),
        r.rounds,
        r.concurrency,
        r.sessions_up,
        r.rounds,
    );
    let _ = writeln!(out, "| measure | ms | ratio | against |");
    let _ = writeln!(out, "|---|--:|--:|---|");
    let _ = writeln!(
        out,
        "| `chat`, 1 model, one at a time (baseline) | {} | {} | the fake's {} ms |",
        fmt_ms(r.chat_median_ms),
        ratio(r.chat_median_ms, r.latency_ms),
        fmt_ms(r.latency_ms)
    );
    let _ = writeln!(
        out,
        "| consensus, one at a time, median (min–max {}–{}) | {} | {} | ideal 2 × latency |",
        fmt_ms(r.single_min_ms),
        fmt_ms(r.single_max_ms),
        fmt_ms(r.single_median_ms),
        ratio(r.single_median_ms, ideal)
    );
    let _ = writeln!(
        out,
        "| consensus, one at a time, median | {} | {} | 2 × baseline `chat` |",
        fmt_ms(r.single_median_ms),
        ratio(r.single_median_ms, 2.0 * r.chat_median_ms)
    );
    let _ = writeln!(
        out,
        "| {} at once, p50 | {} | {} | single consensus |",
        r.concurrency,
        fmt_ms(r.burst_p50_ms),
        ratio(r.burst_p50_ms, r.single_median_ms)
    );
    let _ = writeln!(
        out,
        "| {} at once, p99 | {} | {} | single consensus |",
        r.concurrency,
        fmt_ms(r.burst_p99_ms),
        ratio(r.burst_p99_ms, r.single_median_ms)
    );
    let _ = writeln!(
        out,
        "| {} at once, p99 / p50 | | {} | head-of-line blocking shows as ≫ 1 |",
        r.concurrency,
        ratio(r.burst_p99_ms, r.burst_p50_ms)
    );
    let _ = writeln!(
        out,
        "| {} at once, max | {} | {} | single consensus |",
        r.concurrency,
        fmt_ms(r.burst_max_ms),
        ratio(r.burst_max_ms, r.single_median_ms)
    );
    let _ = writeln!(
        out,
        "\nModel calls per consensus: {:.1} (2 × {} models expected); most model calls at once: {} one at a time (expected {}), {} with {} at once (expected up to {}). Consensus calls at once: {} answered, {} errors.",
        r.model_calls_per_consensus,
        r.models,
        r.single_max_in_flight,
        r.models,
        r.burst_max_in_flight,
        r.concurrency,
        r.concurrency * r.models,
        r.burst_calls,
        r.burst_errors
    );
    if let Some(e) = &r.first_error {
        let first = e.lines().next().unwrap_or_default();
        let _ = writeln!(out, "\nFan-out, first error: {first}");
    }
}

/// `- <where>: <first line of the first error>` for every level that had one.
fn error_notes(
    results: &[LoadResult],
    wrk: &[WrkResult],
    sessions: &[SessionsResult],
) -> Vec<String> {
    let load_notes = results.iter().filter_map(|r| {
        let e = r.first_error.as_ref()?;
        let where_ = format!(
            "{} {} × {}",
            r.flavor.label(),
            r.mode.label(),
            r.concurrency
        );
        Some((where_, e.clone()))
    });
    let wrk_notes = wrk.iter().filter_map(|r| {
        let e = r.numbers.first_error.as_ref()?;
        let where_ = format!("{} wrk {} × {}", r.flavor.label(), r.era, r.connections);
        Some((where_, e.clone()))
    });
    let sessions_notes = sessions.iter().flat_map(|r| {
        let where_ = format!("{} {} sessions", r.flavor.label(), r.wanted);
        let refused = r.first_refusal.as_ref().map(|e| {
            let what = format!("{} of {} refused: {e}", r.wanted - r.opened, r.wanted);
            (format!("{where_}, opening"), what)
        });
        let failed = r
            .first_error
            .as_ref()
            .map(|e| (format!("{where_}, calls"), e.clone()));
        refused.into_iter().chain(failed)
    });
    load_notes
        .chain(wrk_notes)
        .chain(sessions_notes)
        .map(|(where_, e)| format!("- {where_}: {}", e.lines().next().unwrap_or_default()))
        .collect()
}

fn load_table(out: &mut String, startups: &BTreeMap<Flavor, Startup>, results: &[LoadResult]) {
    let _ = writeln!(
        out,
        "\n| server | mode | clients | sessions up | calls/s | p50 ms | p99 ms | errors | peak RSS MB | startup ms | fake max in flight |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in results {
        let startup = startups
            .get(&r.flavor)
            .map_or("—".into(), |s| fmt_ms(s.median_ms));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}/{} | {:.1} | {} | {} | {} | {:.1} | {} | {} |",
            r.flavor.label(),
            r.mode.label(),
            r.concurrency,
            r.sessions_up,
            r.sessions_wanted,
            r.calls_per_s,
            fmt_ms(r.p50_ms),
            fmt_ms(r.p99_ms),
            r.errors,
            r.peak_rss_mb,
            startup,
            r.fake_max_in_flight
        );
    }
}

fn startup_table(out: &mut String, startups: &BTreeMap<Flavor, Startup>) {
    let _ = writeln!(out, "\nStartup (spawn → answers an MCP initialize):\n");
    let _ = writeln!(
        out,
        "| server | median ms | min ms | max ms | idle RSS MB |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|");
    for (flavor, s) in startups {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} |",
            flavor.label(),
            fmt_ms(s.median_ms),
            fmt_ms(s.min_ms),
            fmt_ms(s.max_ms),
            s.idle_rss_mb
        );
    }
}

fn ratio_table(out: &mut String, settings: &Settings, results: &[LoadResult]) {
    let find = |flavor, mode, n| {
        results
            .iter()
            .find(|r| r.flavor == flavor && r.mode == mode && r.concurrency == n)
    };
    let mut ratio_rows = String::new();
    for mode in &settings.modes {
        for &n in &settings.concurrency {
            if let (Some(rust), Some(node)) =
                (find(Flavor::Rust, *mode, n), find(Flavor::Node, *mode, n))
            {
                let _ = writeln!(
                    ratio_rows,
                    "| {} | {} | {} | {} | {} | {} |",
                    mode.label(),
                    n,
                    ratio(rust.calls_per_s, node.calls_per_s),
                    ratio(rust.p50_ms, node.p50_ms),
                    ratio(rust.p99_ms, node.p99_ms),
                    ratio(rust.peak_rss_mb, node.peak_rss_mb),
                );
            }
        }
    }
    if !ratio_rows.is_empty() {
        let _ = writeln!(
            out,
            "\nRatios converse-server / Node (aims: calls/s ≥ 5× at 32 clients, RSS ≤ 0.20×):\n"
        );
        let _ = writeln!(out, "| mode | clients | calls/s | p50 | p99 | peak RSS |");
        let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|");
        out.push_str(&ratio_rows);
    }
}

fn wrk_table(out: &mut String, settings: &Settings, wrk: &[WrkResult]) {
    let _ = writeln!(
        out,
        "\nKeep-alive HTTP/1.1 clients (wrk; fake provider latency {} ms; one MCP session shared by all connections in the session era):\n",
        settings.wrk_latency.as_millis()
    );
    let _ = writeln!(
        out,
        "| server | era | connections | calls/s | p50 ms | p99 ms | errors |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|");
    for r in wrk {
        let n = &r.numbers;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {} | {} | {} |",
            r.flavor.label(),
            r.era,
            r.connections,
            n.calls_per_s,
            fmt_ms(n.p50_ms),
            fmt_ms(n.p99_ms),
            n.errors
        );
    }
}

fn sessions_table(out: &mut String, settings: &Settings, sessions: &[SessionsResult]) {
    let _ = writeln!(
        out,
        "\n{} sessions at once (each its own keep-alive connection, all initialized together, one `tools/call chat` in flight each; fake provider latency {} ms):\n",
        settings.sessions,
        settings.latency.as_millis()
    );
    let _ = writeln!(
        out,
        "| server | sessions opened | refused | calls/s | p50 ms | p99 ms | errors | idle RSS MB | peak RSS MB | KB per session, open | KB per session, peak | fake max in flight |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in sessions {
        let _ = writeln!(
            out,
            "| {} | {}/{} | {} | {:.1} | {} | {} | {} | {:.1} | {:.1} | {} | {} | {} |",
            r.flavor.label(),
            r.opened,
            r.wanted,
            r.wanted - r.opened,
            r.calls_per_s,
            fmt_ms(r.p50_ms),
            fmt_ms(r.p99_ms),
            r.errors,
            r.idle_rss_mb,
            r.peak_rss_mb,
            fmt_ms(r.kb_per_session(r.open_rss_mb)),
            fmt_ms(r.kb_per_session(r.peak_rss_mb)),
            r.fake_max_in_flight
        );
    }
    let find = |flavor| sessions.iter().find(|r| r.flavor == flavor);
    if let (Some(rust), Some(node)) = (find(Flavor::Rust), find(Flavor::Node)) {
        let _ = writeln!(
            out,
            "\nRatios converse-server / Node at {} sessions:\n",
            settings.sessions
        );
        let _ = writeln!(
            out,
            "| sessions opened | calls/s | p50 | p99 | peak RSS | KB per session, peak |"
        );
        let _ = writeln!(out, "|--:|--:|--:|--:|--:|--:|");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            ratio(rust.opened as f64, node.opened as f64),
            ratio(rust.calls_per_s, node.calls_per_s),
            ratio(rust.p50_ms, node.p50_ms),
            ratio(rust.p99_ms, node.p99_ms),
            ratio(rust.peak_rss_mb, node.peak_rss_mb),
            ratio(
                rust.kb_per_session(rust.peak_rss_mb),
                node.kb_per_session(node.peak_rss_mb)
            ),
        );
    }
}

// ---------------------------------------------------------------------- main

async fn run_startups(settings: &Settings, fake: &FakeLlm) -> Result<BTreeMap<Flavor, Startup>> {
    let mut startups = BTreeMap::new();
    for &flavor in &settings.servers {
        eprintln!(
            "bench: startup × {} — {}",
            settings.startup_runs,
            flavor.label()
        );
        let startup = measure_startup(settings, flavor, fake).await?;
        eprintln!(
            "bench:   median {} ms, idle RSS {:.1} MB",
            fmt_ms(startup.median_ms),
            startup.idle_rss_mb
        );
        startups.insert(flavor, startup);
    }
    Ok(startups)
}

async fn run_loads(settings: &Settings, fake: &FakeLlm) -> Result<Vec<LoadResult>> {
    let mut results = Vec::new();
    for &flavor in &settings.servers {
        for &mode in &settings.modes {
            for &n in &settings.concurrency {
                // One client with one session is the same run in both modes.
                if mode == Mode::Shared && n == 1 && settings.modes.contains(&Mode::Sessions) {
                    continue;
                }
                eprintln!("bench: {} — {} × {n}", flavor.label(), mode.label());
                let result = run_load(settings, flavor, mode, n, fake).await?;
                eprintln!(
                    "bench:   {} calls, {:.1} calls/s, p50 {} ms, p99 {} ms, {} errors, sessions {}/{}, peak RSS {:.1} MB",
                    result.calls,
                    result.calls_per_s,
                    fmt_ms(result.p50_ms),
                    fmt_ms(result.p99_ms),
                    result.errors,
                    result.sessions_up,
                    result.sessions_wanted,
                    result.peak_rss_mb
                );
                results.push(result);
            }
        }
    }
    Ok(results)
}

async fn run_wrk_stage(settings: &Settings, fake: &FakeLlm) -> Result<Vec<WrkResult>> {
    let mut results = Vec::new();
    for &flavor in &settings.servers {
        for era in [Era::Sessions, Era::Stateless] {
            if !era.applies_to(flavor) {
                continue;
            }
            for &n in &settings.wrk_connections {
                eprintln!("bench: {} — wrk {era:?} × {n} connections", flavor.label());
                let result = run_wrk_level(settings, flavor, era, n, fake).await?;
                let numbers = &result.numbers;
                eprintln!(
                    "bench:   {}: {:.1} calls/s, p50 {} ms, p99 {} ms, {} errors",
                    result.era,
                    numbers.calls_per_s,
                    fmt_ms(numbers.p50_ms),
                    fmt_ms(numbers.p99_ms),
                    numbers.errors
                );
                results.push(result);
            }
        }
    }
    Ok(results)
}

async fn run_sessions_stage(settings: &Settings, fake: &FakeLlm) -> Result<Vec<SessionsResult>> {
    let mut results = Vec::new();
    for &flavor in &settings.servers {
        eprintln!(
            "bench: {} — {} sessions at once",
            flavor.label(),
            settings.sessions
        );
        let r = run_sessions_level(settings, flavor, fake).await?;
        eprintln!(
            "bench:   {}/{} sessions opened, {} calls, {:.1} calls/s, p50 {} ms, p99 {} ms, {} errors, RSS idle {:.1} / open {:.1} / peak {:.1} MB",
            r.opened,
            r.wanted,
            r.calls,
            r.calls_per_s,
            fmt_ms(r.p50_ms),
            fmt_ms(r.p99_ms),
            r.errors,
            r.idle_rss_mb,
            r.open_rss_mb,
            r.peak_rss_mb
        );
        results.push(r);
    }
    Ok(results)
}

async fn start_fake(latency: Duration) -> Result<FakeLlm> {
    start_fake_recording(latency, 100).await
}

/// [`start_fake`] keeping the last `max_recorded` requests (the fan-out stage counts them).
async fn start_fake_recording(latency: Duration, max_recorded: usize) -> Result<FakeLlm> {
    let fake = FakeLlm::start(FakeLlmConfig {
        api_key: FAKE_KEY.to_owned(),
        latency,
        max_recorded,
        ..FakeLlmConfig::default()
    })
    .await
    .context("start the fake provider")?;
    eprintln!(
        "bench: fake provider on {} ({} ms per call)",
        fake.base_url(),
        latency.as_millis()
    );
    Ok(fake)
}

async fn run(settings: &Settings) -> Result<String> {
    settings.check()?;
    std::fs::create_dir_all(&settings.scratch)
        .with_context(|| format!("create {}", settings.scratch.display()))?;
    let fake = start_fake(settings.latency).await?;
    let wants = |stage| settings.stages.contains(&stage);
    let startups = if wants(Stage::Startup) {
        run_startups(settings, &fake).await?
    } else {
        BTreeMap::new()
    };
    let results = if wants(Stage::Load) {
        run_loads(settings, &fake).await?
    } else {
        Vec::new()
    };
    let wrk = if wants(Stage::Wrk) {
        // Its own fake: the stall it looks for hides behind a slow provider.
        let wrk_fake = start_fake(settings.wrk_latency).await?;
        run_wrk_stage(settings, &wrk_fake).await?
    } else {
        Vec::new()
    };
    let sessions = if wants(Stage::Sessions) {
        run_sessions_stage(settings, &fake).await?
    } else {
        Vec::new()
    };
    // converse-server only: the Node server's consensus is not comparable (see the stage).
    let fanout = if wants(Stage::Fanout) && settings.servers.contains(&Flavor::Rust) {
        let fanout_fake = start_fake_recording(
            settings.fanout_latency,
            (settings.fanout_rounds * settings.fanout_models * 2 + 10).max(100),
        )
        .await?;
        eprintln!(
            "bench: {} — consensus of {} models, {} ms per model call, then {} at once",
            Flavor::Rust.label(),
            settings.fanout_models,
            settings.fanout_latency.as_millis(),
            settings.fanout_concurrency
        );
        let r = run_fanout(settings, &fanout_fake).await?;
        eprintln!(
            "bench:   chat {} ms, consensus {} ms, {} at once: p50 {} ms, p99 {} ms, {} errors",
            fmt_ms(r.chat_median_ms),
            fmt_ms(r.single_median_ms),
            r.concurrency,
            fmt_ms(r.burst_p50_ms),
            fmt_ms(r.burst_p99_ms),
            r.burst_errors
        );
        Some(r)
    } else {
        None
    };
    Ok(report(
        settings,
        &startups,
        &results,
        &wrk,
        &sessions,
        fanout.as_ref(),
    ))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // `cargo bench` passes `--bench` (and any filter); settings come from the environment.
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("bench: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = run(&settings).await;
    let _ = std::fs::remove_dir_all(&settings.scratch);
    match outcome {
        Ok(table) => {
            println!("{table}");
            if let Some(path) = &settings.report
                && let Err(e) = std::fs::write(path, &table)
            {
                eprintln!("bench: could not write {}: {e}", path.display());
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: FAILED: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
