//! `converse-fake-llm`: a strict local imitation of the LLM provider APIs that
//! converse-server speaks, for tests, benchmarks and the in-cluster demo. It is
//! **not** a model: every answer is a deterministic one-line summary of what the
//! request contained, so tests can check that the request was understood.
//!
//! One server answers every wire format, told apart by path:
//!
//! | Path | API | Base URL to configure |
//! |---|---|---|
//! | `POST /v1/responses` | OpenAI Responses | `{base}/v1` |
//! | `POST /v1/chat/completions` | OpenAI Chat Completions (also X.AI, Mistral, DeepSeek, custom) | `{base}/v1` |
//! | `POST /api/v1/chat/completions` | OpenRouter-style Chat Completions (lenient, OpenRouter errors) | `{base}/api/v1` |
//! | `POST /v1/messages` | Anthropic Messages | `{base}` |
//! | `POST /v1beta/models/{model}:generateContent` | Gemini | `{base}` |
//! | `GET /v1/models` | model list (OpenAI shape, Anthropic shape with `x-api-key`) | |
//! | `GET /healthz` | liveness | |
//! | `GET /_fake/requests`, `DELETE /_fake/requests` | the request log | |
//!
//! Like the real APIs, the fake refuses what they refuse: missing or wrong keys,
//! missing required fields, unknown fields, wrong roles, Anthropic's alternation
//! and thinking-budget rules, invalid images — each with the status code and
//! error body that API uses.
//!
//! The model name scripts failures and timing (directives can be chained as
//! prefixes, e.g. `slow-200-long-5000-x`):
//!
//! - `fail-401…`, `fail-403…`, `fail-404…` / `missing-…`, `fail-429…` (with
//!   `retry-after: 1`), `fail-500…`, `fail-context…` (context-window error);
//! - `flaky-…`: the first request for that exact model name gets 503 (Anthropic:
//!   529 `overloaded_error`), later ones succeed;
//! - `slow-<ms>-…`: waits that long before answering;
//! - `long-<n>-…`: the answer text is exactly `n` characters.

mod anthropic;
mod common;
mod gemini;
mod openai;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use common::TINY_PNG_BASE64;

/// Request bodies above this are refused (the real APIs cap around 32 MB).
const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeLlmConfig {
    /// The key every API must present. Empty: no key is required (like a local
    /// vLLM), which lets tests check that no auth header is sent.
    pub api_key: String,
    /// Added before every answer.
    pub latency: Duration,
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The request log keeps this many most recent requests.
    pub max_recorded: usize,
}

impl Default for FakeLlmConfig {
    fn default() -> Self {
        Self {
            api_key: "test-key".to_owned(),
            latency: Duration::ZERO,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_recorded: 10_000,
        }
    }
}

/// One request as the fake received it. Credential values are never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// Order of arrival, from 1.
    pub id: u64,
    pub method: String,
    pub path: String,
    /// The query string, with any `key=` value redacted.
    pub query: Option<String>,
    /// All request headers, lower-case names; `authorization`, `x-api-key`,
    /// `x-goog-api-key` and cookies show `[REDACTED]` (a bearer token as
    /// `Bearer [REDACTED]`).
    pub headers: BTreeMap<String, String>,
    /// Whether the presented key matched (always true when no key is required).
    pub authenticated: bool,
    /// The JSON body (a string if it was not JSON, null if empty).
    pub body: Value,
    /// The answer's status; `None` while in flight or when the client left first.
    pub status: Option<u16>,
}

impl RecordedRequest {
    /// A header value by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// What the caller presented as credentials, judged against the configured key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthState {
    Ok,
    Missing,
    Wrong,
}

/// A request handed to a wire-format module.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub auth: AuthState,
    pub body: Bytes,
}

/// State shared by all handlers.
#[derive(Debug)]
pub(crate) struct Shared {
    config: FakeLlmConfig,
    log: Mutex<VecDeque<RecordedRequest>>,
    flaky_seen: Mutex<HashSet<String>>,
    next_id: AtomicU64,
    /// Requests being answered right now, and the most seen at once: lets tests
    /// prove that calls ran in parallel without measuring time.
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

/// Counts a request as in flight until dropped (also when the client gives up).
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    fn new(config: FakeLlmConfig) -> Self {
        Self {
            config,
            log: Mutex::new(VecDeque::new()),
            flaky_seen: Mutex::new(HashSet::new()),
            next_id: AtomicU64::new(1),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
        }
    }

    /// True the first time a model name is seen (drives `flaky-`).
    pub(crate) fn first_call_of(&self, model: &str) -> bool {
        self.flaky_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(model.to_owned())
    }

    /// A fresh number for response ids.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn record(&self, request: RecordedRequest) {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.push_back(request);
        while log.len() > self.config.max_recorded.max(1) {
            log.pop_front();
        }
    }

    fn set_status(&self, id: u64, status: u16) {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = log.iter_mut().rev().find(|r| r.id == id) {
            entry.status = Some(status);
        }
    }

    fn requests(&self) -> Vec<RecordedRequest> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    fn clear(&self) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.max_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// Which API a path belongs to.
#[derive(Debug, Clone)]
enum Endpoint {
    Responses,
    Chat { openrouter: bool },
    Anthropic,
    Gemini { model_action: String },
}

impl Endpoint {
    /// The key the caller presented, where this API expects it.
    fn presented_key<'a>(&self, headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        match self {
            Self::Responses | Self::Chat { .. } => header("authorization").and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
                    .map(str::trim)
            }),
            Self::Anthropic => header("x-api-key"),
            // Gemini also takes the key as `?key=`.
            Self::Gemini { .. } => header("x-goog-api-key")
                .or_else(|| query?.split('&').find_map(|pair| pair.strip_prefix("key="))),
        }
    }
}

async fn dispatch(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = uri.query();
    let presented = endpoint.presented_key(&headers, query);
    let auth = match (shared.config.api_key.as_str(), presented) {
        ("", _) => AuthState::Ok,
        (_, None | Some("")) => AuthState::Missing,
        (key, Some(given)) if given == key => AuthState::Ok,
        _ => AuthState::Wrong,
    };
    let id = shared.next_id();
    shared.record(RecordedRequest {
        id,
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: query.map(redact_query),
        headers: redacted_headers(&headers),
        authenticated: auth == AuthState::Ok,
        body: recorded_body(&body),
        status: None,
    });

    let _in_flight = InFlight::enter(&shared);
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    let incoming = Incoming { auth, body };
    let reply = match &endpoint {
        Endpoint::Responses => openai::responses(&shared, &incoming).await,
        Endpoint::Chat { openrouter } => openai::chat(&shared, &incoming, *openrouter).await,
        Endpoint::Anthropic => anthropic::messages(&shared, &incoming, &headers).await,
        Endpoint::Gemini { model_action } => {
            gemini::generate(&shared, &incoming, model_action).await
        }
    };
    shared.set_status(id, reply.status.as_u16());
    tracing::info!(
        id,
        path = uri.path(),
        status = reply.status.as_u16(),
        "fake-llm answered"
    );
    reply.into_response()
}

fn redacted_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str().to_owned();
            let value = match name.as_str() {
                "authorization" | "proxy-authorization" => {
                    match value.to_str().ok().and_then(|v| v.split_once(' ')) {
                        Some((scheme, _)) => format!("{scheme} [REDACTED]"),
                        None => "[REDACTED]".to_owned(),
                    }
                }
                "x-api-key" | "x-goog-api-key" | "cookie" => "[REDACTED]".to_owned(),
                _ => String::from_utf8_lossy(value.as_bytes()).into_owned(),
            };
            (name, value)
        })
        .collect()
}

fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            if pair.starts_with("key=") {
                "key=[REDACTED]"
            } else {
                pair
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn recorded_body(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// The axum application serving every wire format.
fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/models", get(list_models))
        .route("/v1/responses", post(responses))
        .route("/v1/chat/completions", post(chat))
        .route("/api/v1/chat/completions", post(openrouter_chat))
        .route("/v1/messages", post(anthropic_messages))
        .route(
            // One path segment `{model}:{method}`: the colon is part of the segment.
            "/v1beta/models/{model_action}",
            post(gemini_generate),
        )
        .route(
            "/_fake/requests",
            get(|State(shared): State<Arc<Shared>>| async move { axum::Json(shared.requests()) })
                .delete(|State(shared): State<Arc<Shared>>| async move {
                    shared.clear();
                    StatusCode::NO_CONTENT
                }),
        )
        .fallback(|method: Method, uri: Uri| async move {
            // OpenAI's answer to an unknown path.
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": {
                    "message": format!("Invalid URL ({method} {})", uri.path()),
                    "type": "invalid_request_error", "param": null, "code": null
                }})),
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

async fn responses(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    dispatch(shared, Endpoint::Responses, method, uri, headers, body).await
}

async fn chat(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let endpoint = Endpoint::Chat { openrouter: false };
    dispatch(shared, endpoint, method, uri, headers, body).await
}

async fn openrouter_chat(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let endpoint = Endpoint::Chat { openrouter: true };
    dispatch(shared, endpoint, method, uri, headers, body).await
}

async fn anthropic_messages(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    dispatch(shared, Endpoint::Anthropic, method, uri, headers, body).await
}

async fn gemini_generate(
    State(shared): State<Arc<Shared>>,
    Path(model_action): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let endpoint = Endpoint::Gemini { model_action };
    dispatch(shared, endpoint, method, uri, headers, body).await
}

/// `GET /v1/models`: OpenAI's list, or Anthropic's when called with `x-api-key`.
async fn list_models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    const MODELS: [&str; 3] = ["fake-model", "fake-model-mini", "fake-reasoner"];
    let anthropic = headers.contains_key("x-api-key");
    let presented = if anthropic {
        Endpoint::Anthropic.presented_key(&headers, None)
    } else {
        Endpoint::Responses.presented_key(&headers, None)
    };
    if !shared.config.api_key.is_empty() && presented != Some(shared.config.api_key.as_str()) {
        let body = if anthropic {
            json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
        } else {
            json!({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})
        };
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let body = if anthropic {
        json!({
            "data": MODELS.iter().map(|id| json!({
                "type": "model", "id": id, "display_name": id, "created_at": "2025-01-01T00:00:00Z"
            })).collect::<Vec<_>>(),
            "has_more": false, "first_id": MODELS[0], "last_id": MODELS[MODELS.len() - 1]
        })
    } else {
        json!({
            "object": "list",
            "data": MODELS.iter().map(|id| json!({
                "id": id, "object": "model", "created": 1_735_689_600, "owned_by": "converse-fake-llm"
            })).collect::<Vec<_>>()
        })
    };
    axum::Json(body).into_response()
}

/// Accepted connections with TCP_NODELAY: a streamed answer written in pieces must not wait for
/// the client's delayed ACK (40 ms per call on a kept-alive connection), or the fake would slow
/// down the benchmarks that use it.
fn no_delay(listener: TcpListener) -> impl axum::serve::Listener<Addr = SocketAddr> {
    listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    })
}

/// Serves the fake on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: FakeLlmConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(no_delay(listener), app(Arc::new(Shared::new(config))))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A running fake, for tests. Dropping it shuts the server down.
#[derive(Debug)]
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FakeLlm {
    /// Binds `config.listen` (127.0.0.1 on a free port by default) and serves in
    /// the background on the current Tokio runtime.
    pub async fn start(config: FakeLlmConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let (shutdown, stop) = oneshot::channel::<()>();
        let router = app(Arc::clone(&shared));
        tokio::spawn(async move {
            let stopped = async {
                // Either an explicit signal or the sender's drop ends the server.
                let _ = stop.await;
            };
            if let Err(e) = axum::serve(no_delay(listener), router)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::warn!(error = %e, "fake-llm server stopped with an error");
            }
        });
        Ok(Self {
            addr,
            shared,
            shutdown: Some(shutdown),
        })
    }

    /// Starts with the default configuration (key `test-key`, no latency).
    pub async fn start_default() -> std::io::Result<Self> {
        Self::start(FakeLlmConfig::default()).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` — the base URL for Anthropic and Gemini clients.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1` — the base URL for OpenAI(-compatible) clients.
    pub fn openai_base_url(&self) -> String {
        format!("{}/v1", self.base_url())
    }

    /// `http://127.0.0.1:PORT/api/v1` — an OpenRouter-style base URL.
    pub fn openrouter_base_url(&self) -> String {
        format!("{}/api/v1", self.base_url())
    }

    /// The key the fake expects.
    pub fn api_key(&self) -> &str {
        &self.shared.config.api_key
    }

    /// Every request received so far (bounded by `max_recorded`), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// The requests whose path ends with `suffix` (e.g. `"/messages"`).
    pub fn requests_to(&self, suffix: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with(suffix))
            .collect()
    }

    /// Model requests being answered right now.
    pub fn in_flight(&self) -> u64 {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// The most model requests this fake was answering at the same moment
    /// (since start or the last [`Self::clear_requests`]).
    pub fn max_in_flight(&self) -> u64 {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn clear_requests(&self) {
        self.shared.clear();
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
