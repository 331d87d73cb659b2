//! Operator metrics (Prometheus text format through prometheus-client) and the HTTP endpoint
//! serving them with the probes: `/healthz` (the process is up), `/readyz` (the controller has
//! started), `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// Why: a condition reason (InvalidSpec, SecretNotFound, …) or an error kind (KubernetesApi,
    /// BuildFailed, MissingMetadata).
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// The kind written: Deployment, Service, …, ConverseServer (status), Event.
    pub kind: String,
    /// apply, delete, status or publish.
    pub verb: String,
}

/// The operator's metrics, shared by the reconciler and the HTTP endpoint.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Counter,
    pub failures: Family<FailureLabels, Counter>,
    pub duration: Histogram,
    /// Every write request the reconciler sends, so "a steady-state reconcile writes nothing"
    /// can be watched in production and asserted in tests.
    pub writes: Family<WriteLabels, Counter>,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("converse_operator");
        let reconciles = Counter::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let duration = Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
        registry.register(
            "reconciles",
            "Reconciles of ConverseServers",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconciles that ended in an error or a stalled ConverseServer, by reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile",
            duration.clone(),
        );
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "api_writes",
            "Write requests sent to the API server by reconciles, by kind and verb",
            writes.clone(),
        );
        Metrics {
            registry,
            reconciles,
            failures,
            duration,
            writes,
            ready: AtomicBool::new(false),
        }
    }
}

impl Metrics {
    /// Records one reconcile: its duration, and its failure reason if any.
    pub fn observe(&self, elapsed: Duration, failure: Option<&str>) {
        self.reconciles.inc();
        self.duration.observe(elapsed.as_secs_f64());
        if let Some(reason) = failure {
            self.failures
                .get_or_create(&FailureLabels {
                    reason: reason.to_owned(),
                })
                .inc();
        }
    }

    /// Counts one write request of `verb` on a `kind`.
    pub fn write(&self, kind: &str, verb: &str) {
        self.writes
            .get_or_create(&WriteLabels {
                kind: kind.to_owned(),
                verb: verb.to_owned(),
            })
            .inc();
    }

    /// All write requests counted so far.
    pub fn total_writes(&self) -> u64 {
        let mut total = 0;
        // prometheus-client has no iteration over a Family: sum what the encoder prints.
        for line in self.encode().lines() {
            if let Some(rest) = line.strip_prefix("converse_operator_api_writes_total{")
                && let Some((_, value)) = rest.rsplit_once(' ')
            {
                total += value.parse::<u64>().unwrap_or(0);
            }
        }
        total
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Marks the operator ready (`/readyz` answers 200).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// The `/healthz`, `/readyz`, `/metrics` router.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(metrics)
}

async fn readyz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    if m.is_ready() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics_text(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}

/// Serves [`router`] on `addr` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on(
        tokio::net::TcpListener::bind(addr).await?,
        metrics,
        shutdown,
    )
    .await
}

/// Serves [`router`] on a bound listener until `shutdown` resolves.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn probes_and_metrics_are_served() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_on(listener, metrics.clone(), async move {
            let _ = rx.await;
        }));
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
        metrics.set_ready(true);
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        metrics.observe(Duration::from_millis(5), Some("KubernetesApi"));
        let text = get(addr, "/metrics").await;
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(
            text.contains("converse_operator_reconciles_total 1"),
            "{text}"
        );
        assert!(text.contains("reason=\"KubernetesApi\""), "{text}");
        let _ = tx.send(());
        server.await.unwrap().unwrap();
    }

    #[test]
    fn text_format_has_counts_failures_and_durations() {
        let m = Metrics::default();
        m.observe(Duration::from_millis(20), None);
        m.observe(Duration::from_millis(30), Some("SecretNotFound"));
        let text = m.encode();
        assert!(
            text.contains("converse_operator_reconciles_total 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "converse_operator_reconcile_failures_total{reason=\"SecretNotFound\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("converse_operator_reconcile_duration_seconds_count 2"),
            "{text}"
        );
    }

    #[test]
    fn writes_are_counted_by_kind_and_verb() {
        let m = Metrics::default();
        assert_eq!(m.total_writes(), 0);
        m.write("Deployment", "apply");
        m.write("Deployment", "apply");
        m.write("ConverseServer", "status");
        assert_eq!(m.total_writes(), 3);
        assert!(
            m.encode().contains(
                "converse_operator_api_writes_total{kind=\"Deployment\",verb=\"apply\"} 2"
            ),
            "{}",
            m.encode()
        );
    }
}
