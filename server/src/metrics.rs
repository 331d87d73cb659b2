//! Prometheus metrics (`GET /metrics`, text exposition format). Labels carry
//! tool, provider and reason names only — never a principal, key or prompt.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ToolLabels {
    pub tool: &'static str,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ToolName {
    pub tool: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ProviderLabels {
    pub provider: String,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RefusalLabels {
    pub reason: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub tool_calls: Family<ToolLabels, Counter>,
    pub tool_duration: Family<ToolName, Histogram>,
    pub provider_calls: Family<ProviderLabels, Counter>,
    pub refusals: Family<RefusalLabels, Counter>,
    pub sessions: Gauge,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("converse");
        let tool_calls = Family::<ToolLabels, Counter>::default();
        registry.register(
            "tool_calls",
            "Tool calls by tool and outcome (success, error, cancelled)",
            tool_calls.clone(),
        );
        let tool_duration = Family::<ToolName, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.05, 2.0, 14))
        });
        registry.register(
            "tool_call_duration_seconds",
            "Duration of tool calls",
            tool_duration.clone(),
        );
        let provider_calls = Family::<ProviderLabels, Counter>::default();
        registry.register(
            "provider_calls",
            "LLM provider calls by provider and outcome (ok or the error kind)",
            provider_calls.clone(),
        );
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "http_refusals",
            "Requests refused before reaching MCP, by reason",
            refusals.clone(),
        );
        let sessions = Gauge::default();
        registry.register(
            "sessions_active",
            "Open legacy MCP sessions",
            sessions.clone(),
        );
        Arc::new(Self {
            registry,
            tool_calls,
            tool_duration,
            provider_calls,
            refusals,
            sessions,
        })
    }

    pub fn tool_call(&self, tool: &'static str, outcome: &'static str, elapsed: Duration) {
        self.tool_calls
            .get_or_create(&ToolLabels { tool, outcome })
            .inc();
        self.tool_duration
            .get_or_create(&ToolName { tool })
            .observe(elapsed.as_secs_f64());
    }

    pub fn provider_call(&self, provider: &str, outcome: &'static str) {
        self.provider_calls
            .get_or_create(&ProviderLabels {
                provider: provider.to_string(),
                outcome,
            })
            .inc();
    }

    pub fn refused(&self, reason: &'static str) {
        self.refusals.get_or_create(&RefusalLabels { reason }).inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
