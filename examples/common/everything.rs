//! The conformance fixture of `examples/conformance.rs`: an rmcp 3.11 server with every tool,
//! prompt and resource the official MCP conformance suite's server scenarios call, in both
//! protocol eras (2025-11-25 sessions and stateless 2026-07-28).
//!
//! What each name does is what the suite's scenario descriptions ask for
//! (`conformance list --server` and the scenario sources): fixed contents for the content-type
//! tools, progress and log notifications, server-to-client requests (sampling, elicitation) on
//! a legacy session, `InputRequiredResult` rounds (SEP-2322) on 2026-07-28, resources with a
//! template and subscriptions, prompts with arguments, embedded resources and images, and
//! `subscriptions/listen` with list-changed triggers. It is a test fixture, not an example of
//! a good tool server: the demo tools are in `tools.rs`.
//!
//! Results are written as JSON and deserialized into rmcp's types, so the wire shape the suite
//! checks is the one visible here.

#![allow(deprecated)] // logging and resources/subscribe are deprecated for 2026-07-28 only

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientCapabilities,
        CompleteRequestParams, CompleteResult, CreateMessageRequestParams, ErrorCode,
        GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult,
        InputRequiredResult, InputResponses, ListPromptsResult, ListResourceTemplatesResult,
        ListResourcesResult, ListToolsResult, LoggingLevel, LoggingMessageNotificationParam,
        PaginatedRequestParams, ProgressNotificationParam, ProtocolVersion,
        ReadResourceRequestParams, ReadResourceResponse, SamplingMessage, ServerConfig,
        ServerRequest, SetLevelRequestParams, SubscribeRequestParams, SubscriptionFilter,
        UnsubscribeRequestParams, UpdateTaskParams,
    },
    service::{RequestContext, SubscriptionContext},
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// A 1×1 PNG, base64.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A minimal WAV file, base64.
const WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

/// A list change announced to every open `subscriptions/listen` stream (2026-07-28).
#[derive(Debug, Clone, Copy)]
pub enum Change {
    /// `notifications/tools/list_changed`.
    Tools,
    /// `notifications/prompts/list_changed`.
    Prompts,
}

/// State shared by every session of one server (the handler is built per session).
pub struct Shared {
    changes: broadcast::Sender<Change>,
    /// Keys the SipHash tag that protects `requestState` (random per process).
    state_key: RandomState,
    /// The tasks (SEP-2663) of every session and stateless request.
    tasks: rmcp::task_manager::TaskManager,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            changes: broadcast::channel(64).0,
            state_key: RandomState::new(),
            tasks: rmcp::task_manager::TaskManager::new(),
        }
    }
}

impl Shared {
    /// `payload.tag`: the payload with a keyed SipHash tag, so a changed state is refused.
    fn seal(&self, payload: &str) -> String {
        format!("{payload}.{:016x}", self.state_key.hash_one(payload))
    }

    /// The payload of a state `seal` wrote, or `None` when it was altered.
    fn open<'a>(&self, sealed: &'a str) -> Option<&'a str> {
        let (payload, tag) = sealed.rsplit_once('.')?;
        let tag = u64::from_str_radix(tag, 16).ok()?;
        (self.state_key.hash_one(payload) == tag).then_some(payload)
    }
}

/// The conformance server: one per rmcp session (or per stateless request).
#[derive(Debug, Clone)]
pub struct Everything {
    shared: Arc<Shared>,
    subscriptions: Arc<Mutex<HashSet<String>>>,
    log_level: Arc<Mutex<Option<LoggingLevel>>>,
}

impl Everything {
    /// A handler sharing `shared` with the server's other sessions.
    pub fn new(shared: Arc<Shared>) -> Self {
        Everything {
            shared,
            subscriptions: Arc::default(),
            log_level: Arc::default(),
        }
    }
}

fn from_json<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("fixture JSON matches rmcp's types")
}

/// A complete result: rmcp keeps `resultType: "complete"` for 2026-07-28 peers and strips it
/// for older ones (its own constructors set it; JSON-built results must say it).
fn result<T: DeserializeOwned>(mut value: Value) -> T {
    value["resultType"] = json!("complete");
    from_json(value)
}

fn text_result(text: impl Into<String>) -> CallToolResponse {
    CallToolResponse::Complete(result(
        json!({ "content": [{ "type": "text", "text": text.into() }] }),
    ))
}

fn input_required(requests: Value, state: Option<String>) -> InputRequiredResult {
    let mut result = json!({ "resultType": "input_required", "inputRequests": requests });
    if let Some(state) = state {
        result["requestState"] = Value::String(state);
    }
    from_json(result)
}

/// An `elicitation/create` input request for one `field` of type `kind`.
pub(crate) fn elicit(message: &str, field: &str, kind: &str) -> Value {
    json!({
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": message,
            "requestedSchema": {
                "type": "object",
                "properties": { field: { "type": kind } },
                "required": [field]
            }
        }
    })
}

fn sample(text: &str, max_tokens: u32) -> Value {
    json!({
        "method": "sampling/createMessage",
        "params": {
            "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
            "maxTokens": max_tokens
        }
    })
}

fn list_roots() -> Value {
    json!({ "method": "roots/list", "params": {} })
}

/// Whether the request runs on the stateless 2026-07-28 lifecycle (no server-to-client
/// requests; input goes through `InputRequiredResult`).
fn is_modern(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

/// The responses whose keys are all in `keys`, or `None` when one is missing.
fn answered<'a>(responses: &'a Option<InputResponses>, keys: &[&str]) -> Option<Vec<&'a Value>> {
    let responses = responses.as_ref()?;
    // Every answer is a result object; anything else is asked for again.
    keys.iter()
        .map(|key| responses.get(*key).filter(|r| r.is_object()))
        .collect()
}

/// An elicitation response's `content.<field>` as text.
fn field(response: &Value, field: &str) -> String {
    match &response["content"][field] {
        Value::String(s) => s.clone(),
        Value::Null => "(none)".to_owned(),
        other => other.to_string(),
    }
}

fn schema(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": properties, "required": required })
}

fn tool(name: &str, description: &str, input: Value) -> Value {
    json!({ "name": name, "description": description, "inputSchema": input })
}

fn empty() -> Value {
    json!({ "type": "object", "properties": {} })
}

fn schema_2020_12_tool() -> Value {
    let mut t = tool(
        "json_schema_2020_12_tool",
        "JSON Schema 2020-12 input (SEP-1613)",
        empty(),
    );
    t["inputSchema"] = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "address",
                "type": "object",
                "properties": { "street": { "type": "string" }, "city": { "type": "string" } }
            }
        },
        "properties": { "name": { "type": "string" }, "address": { "$ref": "#/$defs/address" } },
        "additionalProperties": false,
        // Composition and conditional keywords a server must publish as written (SEP-2106).
        "allOf": [{ "anyOf": [{ "required": ["name"] }, { "not": { "required": ["name"] } }] }],
        "if": { "properties": { "name": { "const": "" } } },
        "then": { "properties": { "address": { "type": "object" } } },
        "else": { "properties": { "name": { "minLength": 1 } } }
    });
    t
}

fn tools() -> Vec<Value> {
    let e = empty;
    let irr = "Asks for client input through an InputRequiredResult (SEP-2322, 2026-07-28)";
    json!([
        tool("test_simple_text", "Returns one text content", e()),
        tool("test_image_content", "Returns one image content", e()),
        tool("test_audio_content", "Returns one audio content", e()),
        tool(
            "test_embedded_resource",
            "Returns one embedded resource",
            e()
        ),
        tool(
            "test_multiple_content_types",
            "Returns text, image and resource",
            e()
        ),
        tool(
            "test_tool_with_logging",
            "Sends three log notifications",
            e()
        ),
        tool(
            "test_tool_with_progress",
            "Sends progress 0, 50, 100 of 100",
            e()
        ),
        tool("test_error_handling", "Returns a tool error (isError)", e()),
        tool("test_reconnection", "Answers after a short pause", e()),
        tool(
            "test_sampling",
            "Asks the client for an LLM completion",
            schema(json!({ "prompt": { "type": "string" } }), &["prompt"])
        ),
        tool(
            "test_elicitation",
            "Asks the user for input",
            schema(json!({ "message": { "type": "string" } }), &["message"])
        ),
        tool(
            "test_elicitation_sep1034_defaults",
            "Elicitation with defaults (SEP-1034)",
            e()
        ),
        tool(
            "test_elicitation_sep1330_enums",
            "Elicitation with enums (SEP-1330)",
            e()
        ),
        schema_2020_12_tool(),
        tool(
            "test_missing_capability",
            "Needs the client's sampling capability",
            e()
        ),
        tool(
            "test_streaming_elicitation",
            "Asks for input while streaming progress",
            e()
        ),
        tool(
            "test_logging_tool",
            "Logs only at the level the request asked for",
            e()
        ),
        tool(
            "test_custom_headers",
            "Echoes `region`, which clients mirror into the Mcp-Param-Region header (SEP-2243)",
            schema(
                json!({ "region": { "type": "string", "x-mcp-header": "Region" } }),
                &["region"]
            )
        ),
        tool(
            "test_trigger_tool_change",
            "Announces a tools list change",
            e()
        ),
        tool(
            "test_trigger_prompt_change",
            "Announces a prompts list change",
            e()
        ),
        tool("test_input_required_result_elicitation", irr, e()),
        tool("test_input_required_result_sampling", irr, e()),
        tool("test_input_required_result_list_roots", irr, e()),
        tool("test_input_required_result_request_state", irr, e()),
        tool("test_input_required_result_multiple_inputs", irr, e()),
        tool("test_input_required_result_multi_round", irr, e()),
        tool("test_input_required_result_tampered_state", irr, e()),
        tool("test_input_required_result_capabilities", irr, e()),
    ])
    .as_array()
    .into_iter()
    .flatten()
    .cloned()
    .chain(crate::tasks::tools())
    .collect()
}

impl Everything {
    /// Sends a log notification unless the session's or the request's level filters it out.
    async fn log(&self, ctx: &RequestContext<RoleServer>, level: LoggingLevel, text: &str) {
        let wanted = if is_modern(ctx) {
            // 2026-07-28: only when this request asked for logs (`_meta` logLevel).
            ctx.meta.log_level()
        } else {
            Some(
                self.log_level
                    .lock()
                    .expect("lock")
                    .unwrap_or(LoggingLevel::Debug),
            )
        };
        let Some(wanted) = wanted else { return };
        if rank(level) < rank(wanted) {
            return;
        }
        let param: LoggingMessageNotificationParam = from_json(json!({
            "level": level,
            "logger": "conformance",
            "data": text,
        }));
        let _ = ctx.peer.notify_logging_message(param).await;
    }

    async fn progress(&self, ctx: &RequestContext<RoleServer>, done: f64) {
        if let Some(token) = ctx.meta.get_progress_token() {
            let param = ProgressNotificationParam::new(token, done)
                .with_total(100.0)
                .with_message(format!("{done} of 100"));
            let _ = ctx.peer.notify_progress(param).await;
        }
    }

    async fn call(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.clone().unwrap_or_default();
        let responses = &request.input_responses;
        let pause = || tokio::time::sleep(Duration::from_millis(50));
        Ok(match request.name.as_ref() {
            "test_simple_text" => text_result("This is a simple text response for testing."),
            "test_image_content" => CallToolResponse::Complete(result(json!({
                "content": [{ "type": "image", "data": PNG, "mimeType": "image/png" }]
            }))),
            "test_audio_content" => CallToolResponse::Complete(result(json!({
                "content": [{ "type": "audio", "data": WAV, "mimeType": "audio/wav" }]
            }))),
            "test_embedded_resource" => CallToolResponse::Complete(result(json!({
                "content": [{ "type": "resource", "resource": {
                    "uri": "test://embedded-resource",
                    "mimeType": "text/plain",
                    "text": "This is an embedded resource content."
                } }]
            }))),
            "test_multiple_content_types" => CallToolResponse::Complete(result(json!({
                "content": [
                    { "type": "text", "text": "Multiple content types test:" },
                    { "type": "image", "data": PNG, "mimeType": "image/png" },
                    { "type": "resource", "resource": {
                        "uri": "test://mixed-content-resource",
                        "mimeType": "application/json",
                        "text": "{\"test\":\"data\",\"value\":123}"
                    } }
                ]
            }))),
            "test_tool_with_logging" | "test_logging_tool" => {
                for (i, text) in [
                    "Tool execution started",
                    "Tool processing data",
                    "Tool execution completed",
                ]
                .into_iter()
                .enumerate()
                {
                    if i > 0 {
                        pause().await;
                    }
                    self.log(&ctx, LoggingLevel::Info, text).await;
                }
                text_result("Tool with logging executed successfully")
            }
            "test_tool_with_progress" => {
                for (i, done) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                    if i > 0 {
                        pause().await;
                    }
                    self.progress(&ctx, done).await;
                }
                let token = ctx
                    .meta
                    .get_progress_token()
                    .map(|t| serde_json::to_string(&t).unwrap_or_default())
                    .unwrap_or_default();
                text_result(token.trim_matches('"').to_owned())
            }
            "test_error_handling" => CallToolResponse::Complete(result(json!({
                "content": [{ "type": "text", "text": "This tool intentionally returns an error for testing" }],
                "isError": true
            }))),
            "test_reconnection" => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                text_result("Reconnection test completed successfully.")
            }
            "test_sampling" => {
                let prompt = args
                    .get("prompt")
                    .and_then(Value::as_str)
                    .unwrap_or("Hello");
                if is_modern(&ctx) {
                    return self.modern_sampling(&request, prompt);
                }
                let params =
                    CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
                match ctx.peer.create_message(params).await {
                    Ok(result) => {
                        let text = serde_json::to_value(&result.message.content)
                            .ok()
                            .and_then(|c| first_text(&c))
                            .unwrap_or_else(|| "No response".to_owned());
                        text_result(format!("LLM response: {text}"))
                    }
                    Err(error) => text_result(format!("Sampling not supported or error: {error}")),
                }
            }
            "test_elicitation" => {
                let message = args
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("Please provide your response");
                let schema = schema(
                    json!({ "response": { "type": "string", "description": "User's response" } }),
                    &["response"],
                );
                self.elicitation(&request, &ctx, message, schema).await?
            }
            "test_elicitation_sep1034_defaults" => {
                let schema = json!({
                    "type": "object",
                    "properties": {
                        "name": { "type": "string", "description": "User name", "default": "John Doe" },
                        "age": { "type": "integer", "description": "User age", "default": 30 },
                        "score": { "type": "number", "description": "User score", "default": 95.5 },
                        "status": {
                            "type": "string", "description": "User status",
                            "enum": ["active", "inactive", "pending"], "default": "active"
                        },
                        "verified": { "type": "boolean", "description": "Verification status", "default": true }
                    },
                    "required": []
                });
                self.elicitation(
                    &request,
                    &ctx,
                    "Please review and update the form fields with defaults",
                    schema,
                )
                .await?
            }
            "test_elicitation_sep1330_enums" => {
                let schema = json!({
                    "type": "object",
                    "properties": {
                        "untitledSingle": {
                            "type": "string", "description": "Select one option",
                            "enum": ["option1", "option2", "option3"]
                        },
                        "titledSingle": {
                            "type": "string", "description": "Select one option with titles",
                            "oneOf": [
                                { "const": "value1", "title": "First Option" },
                                { "const": "value2", "title": "Second Option" },
                                { "const": "value3", "title": "Third Option" }
                            ]
                        },
                        "legacyEnum": {
                            "type": "string", "description": "Select one option (legacy)",
                            "enum": ["opt1", "opt2", "opt3"],
                            "enumNames": ["Option One", "Option Two", "Option Three"]
                        },
                        "untitledMulti": {
                            "type": "array", "description": "Select multiple options",
                            "minItems": 1, "maxItems": 3,
                            "items": { "type": "string", "enum": ["option1", "option2", "option3"] }
                        },
                        "titledMulti": {
                            "type": "array", "description": "Select multiple options with titles",
                            "minItems": 1, "maxItems": 3,
                            "items": { "anyOf": [
                                { "const": "value1", "title": "First Choice" },
                                { "const": "value2", "title": "Second Choice" },
                                { "const": "value3", "title": "Third Choice" }
                            ] }
                        }
                    },
                    "required": []
                });
                self.elicitation(
                    &request,
                    &ctx,
                    "Please select options from the enum fields",
                    schema,
                )
                .await?
            }
            "json_schema_2020_12_tool" => text_result(format!(
                "JSON Schema 2020-12 tool called with: {}",
                Value::Object(args)
            )),
            "test_missing_capability" => {
                let declared = ctx
                    .client_capabilities()
                    .is_some_and(|caps| caps.sampling.is_some());
                if !declared {
                    let mut required = ClientCapabilities::default();
                    required.sampling = Some(from_json(json!({})));
                    return Err(ErrorData::missing_required_client_capability(required));
                }
                text_result("This tool ran with the sampling capability declared.")
            }
            "test_streaming_elicitation" => {
                // Progress on the request's stream, then the question as an
                // InputRequiredResult: never an independent request on that stream.
                self.progress(&ctx, 50.0).await;
                if !is_modern(&ctx) {
                    let schema = schema(json!({ "answer": { "type": "string" } }), &["answer"]);
                    return self
                        .elicitation(&request, &ctx, "Streaming question", schema)
                        .await;
                }
                match answered(responses, &["answer"]) {
                    Some(r) => text_result(format!("Answer: {}", field(r[0], "answer"))),
                    None => input_required(
                        json!({ "answer": elicit("Streaming question", "answer", "string") }),
                        None,
                    )
                    .into(),
                }
            }
            "test_custom_headers" => {
                let region = args.get("region").and_then(Value::as_str);
                let header = ctx
                    .extensions
                    .get::<http::request::Parts>()
                    .and_then(|parts| parts.headers.get("mcp-param-region"))
                    .map(|value| value.to_str().ok().and_then(header_value));
                match (region, header) {
                    (Some(region), Some(Some(header))) if header == region => {
                        text_result(format!("region: {region}"))
                    }
                    // 2025-era clients send no Mcp-Param headers.
                    (Some(region), None) if !is_modern(&ctx) => {
                        text_result(format!("region: {region}"))
                    }
                    _ => {
                        return Err(ErrorData::new(
                            ErrorCode::HEADER_MISMATCH,
                            "Mcp-Param-Region is missing, malformed or differs from `region`",
                            None,
                        ));
                    }
                }
            }
            "test_trigger_tool_change" | "test_trigger_prompt_change" => {
                let change = if request.name == "test_trigger_tool_change" {
                    Change::Tools
                } else {
                    Change::Prompts
                };
                let _ = self.shared.changes.send(change);
                if !is_modern(&ctx) {
                    let _ = match change {
                        Change::Tools => ctx.peer.notify_tool_list_changed().await,
                        Change::Prompts => ctx.peer.notify_prompt_list_changed().await,
                    };
                }
                text_result("List change announced.")
            }
            name if name.starts_with("test_input_required_result_") => {
                self.input_required_tool(name, &request, &ctx)?
            }
            other => {
                // `test_tool_with_task` gathers a name through an InputRequiredResult first.
                let user_name = answered(responses, &["user_name"]).map(|r| field(r[0], "name"));
                let ask = || {
                    let ask = elicit("What is your name?", "name", "string");
                    input_required(json!({ "user_name": ask }), None).into()
                };
                if let Some(answer) =
                    crate::tasks::call(&self.shared.tasks, &request, &ctx, user_name, ask)
                {
                    return answer;
                }
                return Err(ErrorData::invalid_params(
                    format!("unknown tool `{other}`"),
                    None,
                ));
            }
        })
    }

    /// `test_sampling` on 2026-07-28: the request goes back as an `InputRequiredResult`.
    fn modern_sampling(
        &self,
        request: &CallToolRequestParams,
        prompt: &str,
    ) -> Result<CallToolResponse, ErrorData> {
        Ok(match answered(&request.input_responses, &["sampling"]) {
            Some(r) => text_result(format!(
                "LLM response: {}",
                first_text(&r[0]["content"]).unwrap_or_default()
            )),
            None => input_required(json!({ "sampling": sample(prompt, 100) }), None).into(),
        })
    }

    /// A form elicitation: a request to the client on a legacy session, an
    /// `InputRequiredResult` on 2026-07-28.
    async fn elicitation(
        &self,
        request: &CallToolRequestParams,
        ctx: &RequestContext<RoleServer>,
        message: &str,
        schema: Value,
    ) -> Result<CallToolResponse, ErrorData> {
        if is_modern(ctx) {
            return Ok(match answered(&request.input_responses, &["form"]) {
                Some(r) => text_result(format!(
                    "Elicitation completed: action={}, content={}",
                    r[0]["action"].as_str().unwrap_or("?"),
                    r[0]["content"]
                )),
                None => input_required(
                    json!({ "form": {
                        "method": "elicitation/create",
                        "params": { "mode": "form", "message": message, "requestedSchema": schema }
                    } }),
                    None,
                )
                .into(),
            });
        }
        // A plain `elicitation/create` request (rmcp's typed helper needs its `elicitation`
        // feature, which this crate does not enable).
        let request: ServerRequest = from_json(json!({
            "method": "elicitation/create",
            "params": { "mode": "form", "message": message, "requestedSchema": schema },
        }));
        Ok(match ctx.peer.send_request(request).await {
            Ok(result) => {
                let result = serde_json::to_value(&result).unwrap_or_default();
                text_result(format!(
                    "Elicitation completed: action={}, content={}",
                    result["action"].as_str().unwrap_or("?"),
                    result.get("content").cloned().unwrap_or(json!({}))
                ))
            }
            Err(error) => text_result(format!("Elicitation not supported or error: {error}")),
        })
    }

    /// The SEP-2322 tools: round 1 asks, the next round (with `inputResponses` and the echoed
    /// `requestState`) completes. A missing answer is asked again, never an error.
    fn input_required_tool(
        &self,
        name: &str,
        request: &CallToolRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let responses = &request.input_responses;
        // A state the client changed is refused before anything else.
        let state = match &request.request_state {
            None => None,
            Some(sealed) => Some(self.shared.open(sealed).ok_or_else(|| {
                ErrorData::invalid_params("requestState failed its integrity check", None)
            })?),
        };
        let user_name = || elicit("What is your name?", "name", "string");
        Ok(match name {
            "test_input_required_result_elicitation" => match answered(responses, &["user_name"]) {
                Some(r) => text_result(format!("Hello, {}!", field(r[0], "name"))),
                None => input_required(json!({ "user_name": user_name() }), None).into(),
            },
            "test_input_required_result_sampling" => {
                match answered(responses, &["capital_question"]) {
                    Some(r) => text_result(format!(
                        "Sampling said: {}",
                        first_text(&r[0]["content"]).unwrap_or_default()
                    )),
                    None => input_required(
                        json!({ "capital_question": sample("What is the capital of France?", 100) }),
                        None,
                    )
                    .into(),
                }
            }
            "test_input_required_result_list_roots" => match answered(responses, &["client_roots"])
            {
                Some(r) => text_result(format!("Roots: {}", r[0]["roots"])),
                None => input_required(json!({ "client_roots": list_roots() }), None).into(),
            },
            "test_input_required_result_request_state" => {
                match (answered(responses, &["confirm"]), state) {
                    (Some(_), Some("confirm-pending")) => {
                        text_result("state-ok: the request state came back intact")
                    }
                    _ => input_required(
                        json!({ "confirm": elicit("Please confirm", "ok", "boolean") }),
                        Some(self.shared.seal("confirm-pending")),
                    )
                    .into(),
                }
            }
            "test_input_required_result_multiple_inputs" => {
                match (
                    answered(responses, &["user_name", "greeting", "client_roots"]),
                    state,
                ) {
                    (Some(r), Some("multiple")) => {
                        text_result(format!("All inputs answered; name {}", field(r[0], "name")))
                    }
                    _ => input_required(
                        json!({
                            "user_name": user_name(),
                            "greeting": sample("Generate a greeting", 50),
                            "client_roots": list_roots(),
                        }),
                        Some(self.shared.seal("multiple")),
                    )
                    .into(),
                }
            }
            "test_input_required_result_multi_round" => {
                let step1 = answered(responses, &["step1"]);
                let step2 = answered(responses, &["step2"]);
                match (state, step1, step2) {
                    (Some(s), _, Some(r)) if s.starts_with("round-2:") => text_result(format!(
                        "Both rounds answered: {} / {}",
                        &s["round-2:".len()..],
                        field(r[0], "color")
                    )),
                    (Some("round-1"), Some(r), _) => input_required(
                        json!({ "step2": elicit("Step 2: What is your favorite color?", "color", "string") }),
                        Some(self.shared.seal(&format!("round-2:{}", field(r[0], "name")))),
                    )
                    .into(),
                    _ => input_required(
                        json!({ "step1": elicit("Step 1: What is your name?", "name", "string") }),
                        Some(self.shared.seal("round-1")),
                    )
                    .into(),
                }
            }
            "test_input_required_result_tampered_state" => {
                match (answered(responses, &["confirm"]), state) {
                    (Some(_), Some("tamper-test")) => {
                        text_result("Request state verified; the call is complete.")
                    }
                    _ => input_required(
                        json!({ "confirm": elicit("Please confirm", "ok", "boolean") }),
                        Some(self.shared.seal("tamper-test")),
                    )
                    .into(),
                }
            }
            "test_input_required_result_capabilities" => {
                // Asks only for what the client declared it can answer.
                let caps = ctx.client_capabilities().unwrap_or_default();
                let mut wanted = serde_json::Map::new();
                if caps.elicitation.is_some() {
                    wanted.insert("user_name".into(), user_name());
                }
                if caps.sampling.is_some() {
                    wanted.insert("greeting".into(), sample("Generate a greeting", 50));
                }
                if caps.roots.is_some() {
                    wanted.insert("client_roots".into(), list_roots());
                }
                let keys: Vec<&str> = wanted.keys().map(String::as_str).collect();
                if wanted.is_empty() || answered(responses, &keys).is_some() {
                    text_result("Declared-capability input answered.")
                } else {
                    input_required(Value::Object(wanted), None).into()
                }
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!("unknown tool `{other}`"),
                    None,
                ));
            }
        })
    }
}

/// An `Mcp-Param-*` value: `=?base64?…?=` is strict base64 (padded, standard alphabet) of
/// UTF-8 text, anything else is the literal value. `None` when the base64 form is invalid.
fn header_value(value: &str) -> Option<String> {
    let Some(encoded) = value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Some(value.to_owned());
    };
    if encoded.len() % 4 != 0 {
        return None;
    }
    let sextet = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(encoded.len() / 4 * 3);
    let chunks = encoded.as_bytes().chunks(4);
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i != last) {
            return None;
        }
        let mut bits = 0u32;
        for &c in &chunk[..4 - pad] {
            bits = bits << 6 | sextet(c)?;
        }
        bits <<= 6 * pad as u32;
        out.extend_from_slice(&bits.to_be_bytes()[1..4 - pad]);
    }
    String::from_utf8(out).ok()
}

/// The text of a sampling result's content (an object or a list of them).
fn first_text(content: &Value) -> Option<String> {
    match content {
        Value::Array(items) => items.iter().find_map(first_text),
        Value::Object(_) => content["text"].as_str().map(str::to_owned),
        _ => None,
    }
}

fn resources() -> Value {
    json!([
        {
            "uri": "test://static-text", "name": "static-text", "title": "Static Text Resource",
            "description": "A static text resource", "mimeType": "text/plain"
        },
        {
            "uri": "test://static-binary", "name": "static-binary", "title": "Static Binary Resource",
            "description": "A static binary resource (a PNG image)", "mimeType": "image/png"
        },
        {
            "uri": "test://watched-resource", "name": "watched-resource", "title": "Watched Resource",
            "description": "A resource clients can subscribe to", "mimeType": "text/plain"
        }
    ])
}

fn prompts() -> Value {
    json!([
        { "name": "test_simple_prompt", "title": "Simple Test Prompt", "description": "A prompt without arguments" },
        {
            "name": "test_prompt_with_arguments", "title": "Prompt With Arguments",
            "description": "A prompt with two required arguments",
            "arguments": [
                { "name": "arg1", "description": "First test argument", "required": true },
                { "name": "arg2", "description": "Second test argument", "required": true }
            ]
        },
        {
            "name": "test_prompt_with_embedded_resource", "title": "Prompt With Embedded Resource",
            "description": "A prompt that embeds a resource",
            "arguments": [{ "name": "resourceUri", "description": "URI of the resource to embed", "required": true }]
        },
        { "name": "test_prompt_with_image", "title": "Prompt With Image", "description": "A prompt with an image" },
        {
            "name": "test_input_required_result_prompt", "title": "Prompt Needing Input",
            "description": "Asks for context through an InputRequiredResult (SEP-2322)"
        }
    ])
}

fn user(content: Value) -> Value {
    json!({ "role": "user", "content": content })
}

impl ServerHandler for Everything {
    fn get_info(&self) -> ServerConfig {
        let capabilities = from_json(json!({
            "tools": { "listChanged": true },
            "resources": { "subscribe": true, "listChanged": true },
            "prompts": { "listChanged": true },
            "logging": {},
            "completions": {},
            "extensions": { "io.modelcontextprotocol/tasks": {} }
        }));
        ServerConfig::new(capabilities)
            .with_server_info(rmcp::model::Implementation::new(
                "mcp-edge-conformance",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions("The MCP conformance suite's fixture server.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(result(json!({ "tools": tools() })))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.call(request, ctx).await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        crate::tasks::methods::get(&self.shared.tasks, request)
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        crate::tasks::methods::update(&self.shared.tasks, request)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        crate::tasks::methods::cancel(&self.shared.tasks, request)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(result(json!({ "resources": resources() })))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(result(json!({ "resourceTemplates": [{
            "uriTemplate": "test://template/{id}/data", "name": "template",
            "title": "Resource Template", "description": "A template with one parameter",
            "mimeType": "application/json"
        }] })))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri.as_str();
        let contents = match uri {
            "test://static-text" => json!({
                "uri": uri, "mimeType": "text/plain",
                "text": "This is the content of the static text resource."
            }),
            "test://static-binary" => json!({ "uri": uri, "mimeType": "image/png", "blob": PNG }),
            "test://watched-resource" => {
                json!({ "uri": uri, "mimeType": "text/plain", "text": "Watched resource content" })
            }
            _ => match uri
                .strip_prefix("test://template/")
                .and_then(|rest| rest.strip_suffix("/data"))
                .filter(|id| !id.is_empty() && !id.contains('/'))
            {
                Some(id) => json!({
                    "uri": uri, "mimeType": "application/json",
                    "text": json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") }).to_string()
                }),
                None => {
                    return Err(ErrorData::resource_not_found(
                        format!("Resource not found: {uri}"),
                        Some(json!({ "uri": uri })),
                    ));
                }
            },
        };
        Ok(ReadResourceResponse::Complete(result(
            json!({ "contents": [contents] }),
        )))
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions.lock().expect("lock").insert(request.uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions
            .lock()
            .expect("lock")
            .remove(&request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let mut changes = self.shared.changes.subscribe();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                change = changes.recv() => {
                    let sent = match change {
                        Ok(Change::Tools) => context.sink().notify_tool_list_changed().await,
                        Ok(Change::Prompts) => context.sink().notify_prompt_list_changed().await,
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    };
                    if sent.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(result(json!({ "prompts": prompts() })))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let args = request.arguments.clone().unwrap_or_default();
        let arg = |name: &str| -> Result<String, ErrorData> {
            args.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    ErrorData::invalid_params(format!("missing argument `{name}`"), None)
                })
        };
        let messages = match request.name.as_str() {
            "test_simple_prompt" => json!([user(
                json!({ "type": "text", "text": "This is a simple prompt for testing." })
            )]),
            "test_prompt_with_arguments" => {
                let (a, b) = (arg("arg1")?, arg("arg2")?);
                json!([user(json!({
                    "type": "text",
                    "text": format!("Prompt with arguments: arg1='{a}', arg2='{b}'")
                }))])
            }
            "test_prompt_with_embedded_resource" => {
                let uri = arg("resourceUri")?;
                json!([
                    user(json!({ "type": "resource", "resource": {
                        "uri": uri, "mimeType": "text/plain",
                        "text": "Embedded resource content for testing."
                    } })),
                    user(
                        json!({ "type": "text", "text": "Please process the embedded resource above." })
                    )
                ])
            }
            "test_prompt_with_image" => json!([
                user(json!({ "type": "image", "data": PNG, "mimeType": "image/png" })),
                user(json!({ "type": "text", "text": "Please analyze the image above." }))
            ]),
            "test_input_required_result_prompt" => {
                match answered(&request.input_responses, &["user_context"]) {
                    Some(r) => json!([user(json!({
                        "type": "text",
                        "text": format!("Use this context: {}", field(r[0], "context"))
                    }))]),
                    None => {
                        return Ok(input_required(
                            json!({ "user_context": elicit(
                                "What context should the prompt use?", "context", "string"
                            ) }),
                            None,
                        )
                        .into());
                    }
                }
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!("unknown prompt `{other}`"),
                    None,
                ));
            }
        };
        Ok(GetPromptResponse::Complete(result(
            json!({ "messages": messages }),
        )))
    }

    async fn complete(
        &self,
        _request: CompleteRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        Ok(result(
            json!({ "completion": { "values": [], "total": 0, "hasMore": false } }),
        ))
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *self.log_level.lock().expect("lock") = Some(request.level);
        self.log(&ctx, LoggingLevel::Info, "Log level set").await;
        Ok(())
    }
}

/// Severity order of the log levels (debug lowest).
fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}
