//! `fake-llm`: runs the strict fake provider APIs on one port, for tests,
//! benchmarks and the demo. It is not a model and says so on every answer.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use converse_fake_llm::{FakeLlmConfig, serve};

/// A FAKE LLM server imitating the OpenAI, Anthropic, Gemini and OpenAI-compatible
/// APIs, for tests and demos. Answers are deterministic summaries of the request.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "FAKE_LLM_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The API key every request must present (empty: no key required).
    #[arg(
        long,
        env = "FAKE_LLM_API_KEY",
        default_value = "test-key",
        hide_env_values = true
    )]
    api_key: String,
    /// Extra latency added to every answer, in milliseconds.
    #[arg(long, env = "FAKE_LLM_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("fake-llm: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let base = listener
        .local_addr()
        .map_or_else(|_| args.listen.to_string(), |a| a.to_string());
    println!("==================================================================");
    println!(
        " FAKE LLM — converse-fake-llm {}",
        env!("CARGO_PKG_VERSION")
    );
    println!(" This is NOT a language model. It imitates provider APIs for tests");
    println!(" and demos; every answer starts with \"[fake ...]\".");
    println!(" Listening on http://{base}");
    println!("   OpenAI / compatible base URL: http://{base}/v1");
    println!("   OpenRouter-style base URL:    http://{base}/api/v1");
    println!("   Anthropic / Gemini base URL:  http://{base}");
    println!(
        " API key required: {}",
        if args.api_key.is_empty() {
            "no"
        } else {
            "yes (as configured)"
        }
    );
    println!(" Request log: GET http://{base}/_fake/requests");
    println!("==================================================================");

    let config = FakeLlmConfig {
        api_key: args.api_key,
        latency: Duration::from_millis(args.latency_ms),
        listen: args.listen,
        ..FakeLlmConfig::default()
    };
    match serve(listener, config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fake-llm: server error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C or SIGTERM (how Kubernetes stops a pod).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
