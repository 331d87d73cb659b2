//! Test harness: the real `converse-server` binary, configured by environment
//! like a user would, talking to the strict fake providers of `converse-fake-llm`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use converse_config::{ChatDialect, WireFormat};
use converse_fake_llm::{FakeLlm, FakeLlmConfig};
use rmcp::RoleClient;
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_converse-server");

pub async fn fake() -> FakeLlm {
    FakeLlm::start(FakeLlmConfig::default())
        .await
        .expect("start fake LLM")
}

/// Environment pointing every built-in provider at the fake, plus a custom
/// endpoint `lab` whose models script failures and delays.
pub fn env_for(fake: &FakeLlm) -> BTreeMap<String, String> {
    let base = fake.base_url();
    let key = FakeLlmConfig::default().api_key;
    let mut env = BTreeMap::new();
    for p in converse_config::BUILTIN_PROVIDERS {
        // Where the fake serves each wire format (see converse_fake_llm's route table).
        let suffix = match (p.wire, p.dialect) {
            (WireFormat::Messages | WireFormat::Gemini, _) => "",
            (_, ChatDialect::OpenRouter) => "/api/v1",
            _ => "/v1",
        };
        env.insert(p.key_var.to_string(), key.clone());
        env.insert(p.base_url_var.to_string(), format!("{base}{suffix}"));
    }
    env.insert("CUSTOM_PROVIDERS".into(), "lab".into());
    env.insert("CUSTOM_LAB_BASE_URL".into(), format!("{base}/v1"));
    env.insert("CUSTOM_LAB_API_KEY".into(), key);
    env.insert(
        "CUSTOM_LAB_MODELS".into(),
        "lab-ok,fail-500-lab,fail-401-lab,slow-3000-lab,long-400000-lab,slow-800-a,slow-800-b,slow-800-c".into(),
    );
    env.insert("PROVIDER_MAX_RETRIES".into(), "0".into());
    env
}

/// A running server process, killed on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub base: String,
    /// Everything the server logged (stderr), for assertions about logs.
    pub logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Starts the binary in HTTP mode on a free port and waits for its "serving" line.
pub async fn start_http(env: &BTreeMap<String, String>) -> Server {
    start_http_in(env, None).await
}

/// [`start_http`] in the working directory `dir` (where a `.env` file would be read). Elsewhere
/// no env file is read (`CONVERSE_ENV_FILE=/dev/null`), so a developer's `.env` cannot leak in.
pub async fn start_http_in(
    env: &BTreeMap<String, String>,
    dir: Option<&std::path::Path>,
) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("HTTP_PORT", "0")
        .env("LOG_LEVEL", "debug");
    match dir {
        Some(dir) => cmd.current_dir(dir),
        None => cmd.env("CONVERSE_ENV_FILE", "/dev/null"),
    };
    cmd.envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn converse-server");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = logs.clone();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.lock().unwrap().push(line.clone());
            if let Some(rest) = line.split("serving MCP on ").nth(1) {
                return rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
        }
        panic!(
            "server exited before serving:\n{}",
            seen.lock().unwrap().join("\n")
        );
    })
    .await
    .expect("server did not start within 30 s");
    // Keep draining stderr so the child never blocks on a full pipe.
    let seen = logs.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.lock().unwrap().push(line);
        }
    });
    let base = url.trim_end_matches("/mcp").to_string();
    Server {
        child,
        url,
        base,
        logs,
    }
}

pub type Client = RunningService<RoleClient, ClientConfig>;

/// Connects rmcp's client in the legacy (initialize + session) era.
pub async fn connect_legacy(url: &str) -> Client {
    ClientConfig::default()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_uri(url.to_string()),
            ClientLifecycleMode::Initialize,
        )
        .await
        .expect("legacy client connects")
}

/// Connects rmcp's client in the stateless 2026-07-28 era (server/discover).
pub async fn connect_modern(url: &str) -> Client {
    ClientConfig::default()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_uri(url.to_string()),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("modern client connects")
}

pub async fn call(client: &Client, tool: &'static str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .expect("tools/call succeeds at the protocol level")
}

pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits (bounded) until the fake is answering nothing.
pub async fn until_idle(fake: &FakeLlm) {
    for _ in 0..100 {
        if fake.in_flight() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the fake LLM still has {} requests in flight",
        fake.in_flight()
    );
}

/// Connects rmcp's client (legacy era) sending extra headers on every request.
pub async fn connect_with_headers(url: &str, headers: &[(&str, &str)]) -> Result<Client, String> {
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let mut map = std::collections::HashMap::new();
    for (k, v) in headers {
        map.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            reqwest::header::HeaderValue::from_str(v).unwrap(),
        );
    }
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_string()).custom_headers(map);
    ClientConfig::default()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_config(config),
            ClientLifecycleMode::Initialize,
        )
        .await
        .map_err(|e| e.to_string())
}

pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw-test","version":"1"}}}"#;

/// A raw MCP POST, as a misbehaving or unauthenticated client would send it.
pub async fn post(url: &str, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.expect("request reaches the server")
}

/// The server's `/info` document.
pub async fn info(server: &Server) -> Value {
    reqwest::get(format!("{}/info", server.base))
        .await
        .expect("/info answers")
        .json()
        .await
        .expect("/info is JSON")
}

/// The JSON-RPC error body of a refused request.
pub async fn jsonrpc_error(response: reqwest::Response) -> Value {
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert!(body["error"]["code"].is_i64(), "{body}");
    body["error"].clone()
}

/// A fresh key pair made by the openssl CLI: (private PEM, public PEM).
pub fn rsa_keypair() -> (String, String) {
    let dir = std::env::temp_dir().join(format!("converse-keys-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let private = dir.join("private.pem");
    let public = dir.join("public.pem");
    let ok = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&private)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed")
        .success()
        && std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public)
            .status()
            .unwrap()
            .success();
    assert!(ok, "openssl failed");
    let keys = (
        std::fs::read_to_string(&private).unwrap(),
        std::fs::read_to_string(&public).unwrap(),
    );
    let _ = std::fs::remove_dir_all(dir);
    keys
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
