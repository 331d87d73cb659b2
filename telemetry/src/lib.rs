//! OpenTelemetry trace export, shared by converse-server and converse-operator: a `tracing` layer
//! that sends spans over OTLP/HTTP (protobuf) to `OTEL_EXPORTER_OTLP_ENDPOINT`. Without an endpoint
//! there is no layer and nothing is exported.
//!
//! A crate of its own rather than part of converse-config: the `OTEL_*` settings
//! ([`TelemetryConfig`]) are the environment contract, this exporter is not, and users of the
//! contract alone should not pull in the OpenTelemetry stack.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use converse_config::TelemetryConfig;

/// Why the exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("OpenTelemetry OTLP exporter for {endpoint}: {reason}")]
pub struct TelemetryError {
    endpoint: String,
    reason: String,
}

/// The exporting tracer provider: [`Tracing::shutdown`] flushes the spans not yet sent.
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Tracing {
    /// Exports what is buffered and stops the exporter thread (it blocks: call it at exit).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("OpenTelemetry: flushing spans at exit: {e}");
        }
    }
}

/// The layer exporting spans as `config.service_name` to `config.otlp_endpoint`, and the
/// provider to shut down at exit; `None` when no endpoint is configured.
pub fn otlp_layer<S>(
    config: &TelemetryConfig,
) -> Result<Option<(impl Layer<S> + use<S>, Tracing)>, TelemetryError>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let Some(endpoint) = &config.otlp_endpoint else {
        return Ok(None);
    };
    let url = traces_url(endpoint.as_str());
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(url.clone())
        .build()
        .map_err(|e| TelemetryError {
            endpoint: url,
            reason: e.to_string(),
        })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer(config.service_name.clone());
    let layer = tracing_opentelemetry::layer().with_tracer(tracer);
    Ok(Some((layer, Tracing { provider })))
}

/// The traces URL for the generic `OTEL_EXPORTER_OTLP_ENDPOINT`: the OTLP/HTTP specification
/// appends `v1/traces` to it (an explicit endpoint given to the exporter is used as is).
fn traces_url(endpoint: &str) -> String {
    format!("{}/v1/traces", endpoint.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signal_path_is_appended_once() {
        assert_eq!(
            traces_url("http://collector:4318"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.example.com/otlp/"),
            "https://otel.example.com/otlp/v1/traces"
        );
    }
}
