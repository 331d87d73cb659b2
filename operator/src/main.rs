//! `converse-operator`: `crd` prints the CustomResourceDefinition; `run` runs the controller.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use converse_config::TelemetryConfig;
use converse_operator::controller::{self, Context, Settings};
use converse_operator::leader::Elector;
use converse_operator::metrics::{self, Metrics};
use converse_telemetry::{self as telemetry, Tracing};
use tokio::sync::watch;
use tracing::{error, info};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// musl's allocator is slow under concurrency: the static (image) builds use mimalloc.
#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "converse-operator",
    version = env!("CONVERSE_VERSION"),
    about = "Kubernetes operator for converse-server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the ConverseServer CustomResourceDefinition as YAML (`| kubectl apply -f -`).
    Crd,
    /// Run the controller (in-cluster config, or KUBECONFIG).
    Run(Box<RunArgs>),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Namespaces to watch (repeatable or comma separated); default: all namespaces.
    #[arg(
        long = "namespace",
        env = "CONVERSE_OPERATOR_NAMESPACES",
        value_delimiter = ','
    )]
    namespaces: Vec<String>,
    /// converse-server image for ConverseServers without spec.image.
    #[arg(
        long,
        env = "CONVERSE_OPERATOR_SERVER_IMAGE",
        default_value = concat!("ghcr.io/converse-on-kubernetes/converse-server:", env!("CARGO_PKG_VERSION"))
    )]
    server_image: String,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(
        long,
        env = "CONVERSE_OPERATOR_METRICS_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    metrics_addr: SocketAddr,
    /// Log format.
    #[arg(long, env = "CONVERSE_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
    /// Log filter (tracing-subscriber EnvFilter syntax, e.g. `info,converse_operator=debug`).
    #[arg(long, env = "CONVERSE_OPERATOR_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Cluster DNS domain (for the Service names the server accepts as Host).
    #[arg(
        long,
        env = "CONVERSE_OPERATOR_CLUSTER_DOMAIN",
        default_value = "cluster.local"
    )]
    cluster_domain: String,
    /// Lease-based leader election: only the replica holding the Lease runs the controllers
    /// (writes children and status); the others wait to take over.
    #[arg(long, env = "CONVERSE_OPERATOR_LEADER_ELECTION")]
    leader_election: bool,
    /// Namespace of the leader Lease (in a pod: its own namespace through POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    leader_election_namespace: String,
    /// Name of the leader Lease.
    #[arg(
        long,
        env = "CONVERSE_OPERATOR_LEADER_ELECTION_ID",
        default_value = "converse-operator"
    )]
    leader_election_id: String,
    /// OTLP/HTTP endpoint for traces (one span per reconcile), e.g. http://otel-collector:4318;
    /// unset: no export. The SDK reads the other standard `OTEL_*` variables.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_parser = converse_config::parse::http_url)]
    otlp_endpoint: Option<url::Url>,
    /// Service name in traces.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "converse-operator")]
    otel_service_name: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Crd => match converse_operator::crd::crd_yaml() {
            Ok(yaml) => {
                let mut out = std::io::stdout().lock();
                if out
                    .write_all(yaml.as_bytes())
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return ExitCode::FAILURE;
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("converse-operator: cannot render the CRD: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => {
            let telemetry = TelemetryConfig {
                otlp_endpoint: args.otlp_endpoint.clone(),
                service_name: args.otel_service_name.clone(),
            };
            let tracing = match init_logging(args.log_format, &args.log_level, &telemetry) {
                Ok(tracing) => tracing,
                Err(e) => {
                    eprintln!("converse-operator: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("converse-operator: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let code = match runtime.block_on(run(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    error!("converse-operator: {e}");
                    ExitCode::FAILURE
                }
            };
            // Outside the runtime: flushing the spans blocks.
            if let Some(tracing) = tracing {
                tracing.shutdown();
            }
            code
        }
    }
}

/// Logs to stdout, and spans to the OTLP endpoint when one is configured (its provider is
/// returned to be flushed at exit).
fn init_logging(
    format: LogFormat,
    filter: &str,
    telemetry: &TelemetryConfig,
) -> Result<Option<Tracing>, telemetry::TelemetryError> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal());
    let fmt = match format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    let (otel, tracing) = telemetry::otlp_layer(telemetry)?.unzip();
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .init();
    Ok(tracing)
}

async fn run(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let client = kube::Client::try_default().await?;
    let metrics = Arc::new(Metrics::default());
    let mut settings = Settings::new(args.server_image);
    settings.cluster_domain = args.cluster_domain;
    let ctx = Context::new(client.clone(), settings, metrics.clone());

    // SIGTERM or Ctrl-C: every controller drains its running reconciles, then the endpoint stops.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let signal_tx = stop_tx.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutting down");
        let _ = signal_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let server = tokio::spawn(metrics::serve(
        args.metrics_addr,
        metrics.clone(),
        stopped(stop_rx.clone()),
    ));
    info!(addr = %args.metrics_addr, "serving /healthz, /readyz, /metrics");
    // Ready once the process serves; a standby replica is ready too (it is healthy, waiting).
    metrics.set_ready(true);

    let elector = args.leader_election.then(|| {
        let identity = std::env::var("POD_NAME")
            .unwrap_or_else(|_| format!("converse-operator-{}", std::process::id()));
        Arc::new(Elector::new(
            client.clone(),
            &args.leader_election_namespace,
            &args.leader_election_id,
            &identity,
            LEASE_DURATION,
        ))
    });
    let mut lost_leadership = false;
    if let Some(elector) = &elector {
        info!(
            identity = elector.identity(),
            "waiting for the leader Lease"
        );
        tokio::select! {
            () = elector.acquire(Duration::from_secs(2)) => {}
            () = stopped(stop_rx.clone()) => {
                server.await??;
                return Ok(());
            }
        }
        // Losing the Lease stops the controllers (the process then exits non-zero and restarts).
        let holder = elector.clone();
        let lost_tx = stop_tx.clone();
        let mut lost_rx = stop_rx.clone();
        let watchdog = tokio::spawn(async move {
            tokio::select! {
                () = holder.hold(LEASE_DURATION / 3, LEASE_DURATION * 2 / 3) => {
                    let _ = lost_tx.send(true);
                    true
                }
                _ = lost_rx.wait_for(|s| *s) => false,
            }
        });
        let namespaces = namespaces(args.namespaces);
        run_controllers(&ctx, namespaces, &stop_rx).await;
        lost_leadership = watchdog.await.unwrap_or(false);
        if !lost_leadership && let Err(e) = elector.release().await {
            error!("releasing the leader Lease: {e}");
        }
    } else {
        run_controllers(&ctx, namespaces(args.namespaces), &stop_rx).await;
    }
    metrics.set_ready(false);
    server.await??;
    if lost_leadership {
        return Err("lost the leader Lease".into());
    }
    Ok(())
}

const LEASE_DURATION: Duration = Duration::from_secs(15);

fn namespaces(flags: Vec<String>) -> Vec<Option<String>> {
    if flags.is_empty() {
        vec![None]
    } else {
        flags.into_iter().map(Some).collect()
    }
}

async fn run_controllers(
    ctx: &Arc<Context>,
    namespaces: Vec<Option<String>>,
    stop: &watch::Receiver<bool>,
) {
    futures::future::join_all(namespaces.into_iter().map(|ns| {
        let mut rx = stop.clone();
        controller::run(ctx.clone(), ns, async move {
            let _ = rx.wait_for(|s| *s).await;
        })
    }))
    .await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
