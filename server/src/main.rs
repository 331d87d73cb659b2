//! converse-server binary: parse the environment, then serve MCP over HTTP or stdio.

use std::process::ExitCode;
use std::sync::Arc;

use axum::serve::ListenerExt;
use clap::Parser;
use converse_config::{LogFormat, LogLevel, ServerConfig, Transport};
use converse_telemetry::{self as telemetry, Tracing};
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// musl's allocator is slow under concurrency: the static (image) builds use mimalloc.
#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// MCP server that lets AI assistants consult other LLMs (tools: chat, consensus).
/// All configuration comes from environment variables; see the README.
#[derive(Debug, Parser)]
#[command(version = env!("CONVERSE_VERSION"), about)]
struct Cli {
    /// Transport: `http` (Streamable HTTP on HTTP_HOST:HTTP_PORT/mcp) or `stdio`.
    /// Overrides MCP_TRANSPORT.
    #[arg(long, value_parser = ["http", "stdio"])]
    transport: Option<String>,
}

/// Logs to stderr, and spans to the OTLP endpoint when one is configured (its provider is
/// returned to be flushed at exit).
fn init_logging(config: &ServerConfig) -> Result<Option<Tracing>, telemetry::TelemetryError> {
    let level = config.log.level;
    let directives = match level {
        LogLevel::Silent => level.directive().to_string(),
        _ => format!("{},rmcp=warn", level.directive()),
    };
    let filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr: in stdio mode stdout carries the protocol.
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match config.log.format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Text => fmt.with_ansi(false).boxed(),
    };
    let (otel, tracing) = telemetry::otlp_layer(&config.telemetry)?.unzip();
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .init();
    Ok(tracing)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let cli_transport = cli.transport.as_deref().map(|t| match t {
        "stdio" => Transport::Stdio,
        _ => Transport::Http,
    });
    let env_file = match converse_server::env_file::read() {
        Ok(pairs) => pairs,
        Err(e) => {
            eprintln!("converse-server: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match ServerConfig::from_env_over(cli_transport, env_file) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("converse-server: {errors}");
            return ExitCode::from(2);
        }
    };
    let tracing = match init_logging(&config) {
        Ok(tracing) => tracing,
        Err(e) => {
            eprintln!(
                "converse-server: {e} ({})",
                converse_config::vars::OTEL_EXPORTER_OTLP_ENDPOINT
            );
            return ExitCode::from(2);
        }
    };
    let code = match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("converse-server: {e:#}");
            ExitCode::FAILURE
        }
    };
    if let Some(tracing) = tracing {
        // Flushing blocks (an HTTP export): off the async worker.
        let _ = tokio::task::spawn_blocking(move || tracing.shutdown()).await;
    }
    code
}

async fn run(config: ServerConfig) -> anyhow::Result<()> {
    let engine = Arc::new(converse_server::app::build_engine(&config).await?);
    let providers = engine.router.available();
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        providers = ?providers,
        secrets_set = ?config.secrets_set(),
        env_file = ?config.env_file,
        "converse-server starting"
    );
    match config.transport {
        Transport::Stdio => {
            let service = converse_server::mcp::ConverseMcp::new(engine)
                .with_server_info(
                    config.server_name.as_deref(),
                    config.server_version.as_deref(),
                )
                .serve(rmcp::transport::stdio())
                .await?;
            service.waiting().await?;
            Ok(())
        }
        Transport::Http => serve_http(config, engine).await,
    }
}

async fn serve_http(
    config: ServerConfig,
    engine: Arc<converse_server::tools::Engine>,
) -> anyhow::Result<()> {
    // Cancelling this token ends every MCP session and stream at once, so it is
    // only cancelled when the grace period for in-flight tool calls is over.
    let sessions_end = CancellationToken::new();
    let (app, housekeeping) =
        converse_server::http_server::router(&config, engine, sessions_end.clone())?;
    tokio::spawn(housekeeping);
    let addr = format!("{}:{}", config.http.host, config.http.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (HTTP_HOST/HTTP_PORT): {e}"))?;
    let local = listener.local_addr()?;
    // Without TCP_NODELAY, a response written in more than one piece (an SSE event, then the
    // result) waits for the client's delayed ACK: ~40 ms per call on a kept-alive connection,
    // which is how every real MCP client talks to us.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
    });
    tracing::info!(%local, "serving MCP on http://{local}/mcp");
    let grace = sessions_end.clone();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!(
            grace = ?converse_server::app::SHUTDOWN_GRACE,
            "shutting down: no new connections, letting in-flight requests finish"
        );
        // Kubernetes' terminationGracePeriodSeconds should exceed this grace.
        tokio::spawn(async move {
            tokio::time::sleep(converse_server::app::SHUTDOWN_GRACE).await;
            grace.cancel();
        });
    })
    .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
