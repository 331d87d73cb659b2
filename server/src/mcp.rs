//! The MCP face of the server: rmcp tool, prompt and resource handlers that
//! delegate to the [`Engine`]. rmcp builds one handler per session (or per
//! request in stateless mode); all of them share the engine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use tracing::Instrument;

use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, GetPromptResult, Implementation, ListResourcesResult,
    PaginatedRequestParams, ProgressNotificationParam, PromptMessage, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, Role, ServerCapabilities,
};
use rmcp::service::RequestContext;
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler, prompt, prompt_handler, prompt_router, tool,
    tool_handler, tool_router,
};

use crate::help;
use crate::principal::Principal;
use crate::tools::chat::ChatParams;
use crate::tools::consensus::ConsensusParams;
use crate::tools::progress::{Progress, Update};
use crate::tools::{Engine, Owner, ToolOutput};

pub const HELP_URI: &str = "converse://help";

/// How often a call that reports progress says it is still working while nothing else happens:
/// well under the idle timeouts of common clients (60 s for some hosted connectors).
const PROGRESS_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The progress reporter of a call, and the task that turns its steps into
/// `notifications/progress`; a silent reporter when the request carries no progress token.
fn progress_for(
    ctx: &RequestContext<RoleServer>,
) -> (Progress, Option<tokio::task::JoinHandle<()>>) {
    let Some(token) = ctx.meta.get_progress_token() else {
        return (Progress::default(), None);
    };
    let (progress, updates) = Progress::channel();
    let peer = ctx.peer.clone();
    let send = move |update: Update| {
        let (peer, token) = (peer.clone(), token.clone());
        async move {
            let mut param =
                ProgressNotificationParam::new(token, update.progress).with_message(update.message);
            if let Some(total) = update.total {
                param = param.with_total(total);
            }
            // An error: the client is gone; the call itself is cancelled through its own token.
            peer.notify_progress(param).await.is_ok()
        }
    };
    let task = tokio::spawn(forward_progress(updates, PROGRESS_KEEP_ALIVE, send));
    (progress, Some(task))
}

/// Sends each step, and a keep-alive after every `keep_alive` without one, until the call's
/// reporter is dropped or `send` fails. Progress must increase, so keep-alives creep towards the
/// next step (½, ⅔, ¾ … of the way) without reaching it.
async fn forward_progress<S, F>(
    mut updates: UnboundedReceiver<Update>,
    keep_alive: Duration,
    mut send: S,
) where
    S: FnMut(Update) -> F,
    F: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    let mut last = Update {
        progress: 0.0,
        total: None,
        message: "started".into(),
    };
    let mut waits = 0u32;
    loop {
        let update = tokio::select! {
            update = updates.recv() => match update {
                Some(update) => {
                    waits = 0;
                    last = update.clone();
                    update
                }
                None => return,
            },
            () = tokio::time::sleep(keep_alive) => {
                waits += 1;
                Update {
                    progress: last.progress + f64::from(waits) / f64::from(waits + 1),
                    total: last.total,
                    message: format!("{}; still working ({} s)", last.message, started.elapsed().as_secs()),
                }
            }
        };
        if !send(update).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Between steps, keep-alives every interval with progress creeping towards the next step;
    /// a step resets them; the updates end with the reporter.
    #[tokio::test(start_paused = true)]
    async fn keep_alives_fill_the_silence_and_progress_only_increases() {
        let (progress, updates) = Progress::channel();
        let sent = Arc::new(std::sync::Mutex::new(Vec::<Update>::new()));
        let record = sent.clone();
        let task = tokio::spawn(forward_progress(
            updates,
            Duration::from_secs(15),
            move |u| {
                record.lock().unwrap().push(u);
                async { true }
            },
        ));
        progress.set_total(2);
        progress.step("asking gpt-5");
        tokio::time::sleep(Duration::from_secs(31)).await;
        progress.step("gpt-5 answered");
        drop(progress);
        task.await.unwrap();
        let sent = sent.lock().unwrap();
        let values: Vec<f64> = sent.iter().map(|u| u.progress).collect();
        assert_eq!(values, [1.0, 1.5, 1.0 + 2.0 / 3.0, 2.0], "{sent:?}");
        assert!(
            sent[1]
                .message
                .starts_with("asking gpt-5 (1/2); still working"),
            "{sent:?}"
        );
        assert!(sent.iter().all(|u| u.total == Some(2.0)));
    }
}

#[derive(Clone)]
pub struct ConverseMcp {
    engine: Arc<Engine>,
    /// `serverInfo`: this build, or `MCP_SERVER_NAME`/`MCP_SERVER_VERSION`.
    server_info: Implementation,
    tool_router: ToolRouter<ConverseMcp>,
    prompt_router: PromptRouter<ConverseMcp>,
}

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
pub struct HelpArgs {
    /// Optional topic: tools, models, configuration or examples.
    #[serde(default)]
    pub topic: Option<String>,
}

/// The authenticated caller of this request, if the HTTP layer recorded one.
fn owner(ctx: &RequestContext<RoleServer>) -> Owner {
    ctx.extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Principal>())
        .map(|p| format!("{}:{}", p.strategy, p.id))
}

fn into_result(output: Option<ToolOutput>) -> Result<CallToolResult, McpError> {
    // A cancelled call gets no answer the client will read; rmcp still needs one.
    let output = output.ok_or_else(|| McpError::internal_error("request cancelled", None))?;
    if output.is_error {
        // No structuredContent: clients check it against the tool's outputSchema
        // even on errors (the TypeScript SDK does), and the text says it all.
        return Ok(CallToolResult::error(vec![ContentBlock::text(output.text)]));
    }
    let mut result = CallToolResult::success(vec![ContentBlock::text(output.text)]);
    result.structured_content = Some(output.structured);
    Ok(result)
}

#[tool_router]
impl ConverseMcp {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            server_info: Implementation::new("converse-server", env!("CARGO_PKG_VERSION")),
            tool_router: Self::tool_router(),
            prompt_router: Self::prompt_router(),
        }
    }

    /// Advertise another name or version (converse 1.3.2's `MCP_SERVER_NAME`/`_VERSION`).
    pub fn with_server_info(mut self, name: Option<&str>, version: Option<&str>) -> Self {
        if let Some(name) = name {
            self.server_info.name = name.to_string();
        }
        if let Some(version) = version {
            self.server_info.version = version.to_string();
        }
        self
    }

    #[tool(
        description = "Ask another AI model (GPT, Gemini, Claude, Grok, Mistral, DeepSeek, OpenRouter or a custom endpoint) for a second opinion, a review or help thinking a problem through. Supports files, images and continuing a conversation with continuation_id.",
        annotations(
            title = "Chat with another model",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn chat(
        &self,
        Parameters(params): Parameters<ChatParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let started = std::time::Instant::now();
        let (progress, forwarding) = progress_for(&ctx);
        let output = self
            .engine
            .chat(params, owner(&ctx), ctx.ct.clone(), progress)
            .instrument(tracing::info_span!("tools/call chat"))
            .await;
        // The last progress notification goes out before the result.
        if let Some(task) = forwarding {
            let _ = task.await;
        }
        self.record("chat", &output, started);
        into_result(output)
    }

    #[tool(
        description = "Ask several AI models the same question in parallel; each then refines its answer after seeing the others'. With mode \"roundtable\" they answer in turn instead, each seeing the answers before it. A models entry can give a model a stance (for, against, neutral or your own). Returns every model's answers plus failures per model. For architectural choices, reviews and decisions that benefit from independent perspectives.",
        output_schema = crate::tools::consensus_result::output_schema(),
        annotations(
            title = "Consensus of several models",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn consensus(
        &self,
        Parameters(params): Parameters<ConsensusParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let started = std::time::Instant::now();
        let (progress, forwarding) = progress_for(&ctx);
        let output = self
            .engine
            .consensus(params, owner(&ctx), ctx.ct.clone(), progress)
            .instrument(tracing::info_span!("tools/call consensus"))
            .await;
        if let Some(task) = forwarding {
            let _ = task.await;
        }
        self.record("consensus", &output, started);
        into_result(output)
    }

    fn record(&self, tool: &'static str, output: &Option<ToolOutput>, started: std::time::Instant) {
        let outcome = match output {
            None => "cancelled",
            Some(o) if o.is_error => "error",
            Some(_) => "success",
        };
        self.engine
            .metrics
            .tool_call(tool, outcome, started.elapsed());
    }

    fn guide(&self, topic: Option<&str>) -> Result<String, McpError> {
        let available = self.engine.router.available();
        help::guide(self.engine.router.catalog(), &available, topic)
            .map_err(|e| McpError::invalid_params(e, None))
    }
}

#[prompt_router]
impl ConverseMcp {
    /// Guide to the converse tools, the configured models and the configuration.
    #[prompt(name = "help")]
    async fn help(
        &self,
        Parameters(args): Parameters<HelpArgs>,
    ) -> Result<GetPromptResult, McpError> {
        let text = self.guide(args.topic.as_deref())?;
        Ok(GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            format!("Here is the guide to the Converse MCP server; use it to answer questions about it:\n\n{text}"),
        )])
        .with_description("Guide to the Converse MCP server"))
    }
}

#[tool_handler(router = self.tool_router)]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for ConverseMcp {
    fn get_info(&self) -> rmcp::model::InitializeResult {
        rmcp::model::InitializeResult::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
        .with_server_info(self.server_info.clone())
        .with_instructions(
            "Consult other AI models: `chat` asks one model (continue with the continuation_id its answer gives), `consensus` asks several in parallel with a cross-feedback round. Read the `help` prompt or the converse://help resource for models and parameters.",
        )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let help = Resource::new(HELP_URI, "help")
            .with_description("Guide to the converse tools, configured models and configuration")
            .with_mime_type("text/markdown");
        Ok(ListResourcesResult::with_all_items(vec![help]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        if request.uri != HELP_URI {
            return Err(McpError::resource_not_found(
                format!(
                    "unknown resource {}; the only resource is {HELP_URI}",
                    request.uri
                ),
                Some(serde_json::json!({ "uri": request.uri })),
            ));
        }
        let text = self.guide(None)?;
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, HELP_URI)]).into())
    }
}
