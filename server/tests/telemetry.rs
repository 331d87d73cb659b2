//! OpenTelemetry: with OTEL_EXPORTER_OTLP_ENDPOINT set, the server exports its spans over
//! OTLP/HTTP (protobuf) to `<endpoint>/v1/traces` — here a collector written in the test that
//! records what it receives.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use common::*;
use serde_json::json;

/// (content-type, body) of every export request.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

async fn collector() -> (String, Received) {
    let received: Received = Arc::default();
    let seen = received.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let content_type = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                seen.lock().unwrap().push((content_type, body.to_vec()));
                // An empty ExportTraceServiceResponse.
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn spans_of_a_tool_call_are_exported_over_otlp_http() {
    let (endpoint, received) = collector().await;
    let fake = fake().await;
    let mut env = env_for(&fake);
    env.insert("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint);
    env.insert("OTEL_SERVICE_NAME".into(), "converse-test".into());
    // The batch processor's export interval (the SDK reads it): do not wait the default 5 s.
    env.insert("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into());
    let server = start_http(&env).await;
    let client = connect_legacy(&server.url).await;
    let result = call(
        &client,
        "chat",
        json!({"prompt": "trace me", "model": "gpt-4o"}),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));

    let all = || {
        received
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, body)| body.clone())
            .collect::<Vec<u8>>()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(contains(&all(), "tools/call chat") && contains(&all(), "provider call")) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no span of the tool call reached the collector within 20 s ({} export requests)",
            received.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exports = received.lock().unwrap().clone();
    assert!(
        exports
            .iter()
            .all(|(content_type, _)| content_type == "application/x-protobuf"),
        "OTLP/HTTP protobuf: {:?}",
        exports.iter().map(|(c, _)| c).collect::<Vec<_>>()
    );
    let body = all();
    assert!(
        contains(&body, "converse-test"),
        "the service name is the resource's"
    );
    assert!(
        contains(&body, "openai"),
        "the provider call span names its provider"
    );
    client.cancel().await.ok();
}

#[tokio::test]
async fn an_invalid_endpoint_is_refused_naming_the_variable() {
    let fake = fake().await;
    let mut env = env_for(&fake);
    env.insert(
        "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
        "collector:4318".into(),
    );
    let out = tokio::process::Command::new(BIN)
        .env_clear()
        .envs(&env)
        .output()
        .await
        .expect("run converse-server");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_ENDPOINT"),
        "the error names the variable: {stderr}"
    );
}
