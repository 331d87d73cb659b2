//! Runtime settings: transport, logging, telemetry.

use url::Url;

use crate::parse;
use crate::reader::Reader;
use crate::vars::{LOG_FORMAT, LOG_LEVEL, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME};

string_enum! {
    /// How MCP messages reach the server.
    #[derive(Default)]
    pub enum Transport: "http, stdio" {
        /// Streamable HTTP (and the legacy SSE era) on `HTTP_HOST:HTTP_PORT`.
        #[default]
        Http = "http",
        /// JSON-RPC over stdin/stdout, for a local client that spawns the server.
        Stdio = "stdio",
    }
}

string_enum! {
    /// Log verbosity. Unlike converse 1.3.2, `trace` is accepted.
    #[derive(Default, PartialOrd, Ord)]
    pub enum LogLevel: "silent, error, warn, info, debug, trace" {
        /// No log output at all (converse 1.3.2's name).
        Silent = "silent",
        Error = "error",
        Warn = "warn",
        #[default]
        Info = "info",
        Debug = "debug",
        Trace = "trace",
    }
}

string_enum! {
    /// Log line format.
    #[derive(Default)]
    pub enum LogFormat: "text, json" {
        #[default]
        Text = "text",
        Json = "json",
    }
}

impl LogLevel {
    /// The `tracing` filter directive of this level (`silent` is `off`).
    pub fn directive(self) -> &'static str {
        match self {
            LogLevel::Silent => "off",
            other => other.as_str(),
        }
    }
}

/// `LOG_LEVEL` and `LOG_FORMAT`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogConfig {
    pub level: LogLevel,
    pub format: LogFormat,
}

/// OpenTelemetry export. Only the endpoint and service name are read here; the OpenTelemetry SDK
/// reads the other standard `OTEL_*` variables itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// `None` disables trace export.
    pub otlp_endpoint: Option<Url>,
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: None,
            service_name: "converse-server".to_owned(),
        }
    }
}

pub(crate) fn parse_log(r: &mut Reader) -> LogConfig {
    LogConfig {
        level: r.parse_or(LOG_LEVEL, LogLevel::default(), str::parse),
        format: r.parse_or(LOG_FORMAT, LogFormat::default(), str::parse),
    }
}

pub(crate) fn parse_telemetry(r: &mut Reader) -> TelemetryConfig {
    let d = TelemetryConfig::default();
    TelemetryConfig {
        otlp_endpoint: r.parse_opt(OTEL_EXPORTER_OTLP_ENDPOINT, parse::http_url),
        service_name: r.string_or(OTEL_SERVICE_NAME, &d.service_name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_parse_case_insensitively_and_round_trip() {
        assert_eq!("STDIO".parse::<Transport>(), Ok(Transport::Stdio));
        assert_eq!(" http ".parse::<Transport>(), Ok(Transport::Http));
        assert!("sse".parse::<Transport>().is_err());
        for level in LogLevel::ALL {
            assert_eq!(level.as_str().parse::<LogLevel>(), Ok(*level));
            assert_eq!(level.to_string(), level.as_str());
        }
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!(LogLevel::Trace > LogLevel::Info);
        assert_eq!("silent".parse::<LogLevel>(), Ok(LogLevel::Silent));
        assert_eq!(LogLevel::Silent.directive(), "off");
        assert_eq!(
            "quiet".parse::<LogLevel>().map_err(|e| e.to_string()),
            Err("expected one of: silent, error, warn, info, debug, trace".to_owned())
        );
    }
}
