//! The typed view of one MCP POST body (SPEC R5, R67–R69), parsed in one pass.
//!
//! Only the fields an edge needs are decoded: `method`, `id`, the target (`params.name`,
//! `params.uri`, `params.ref`, `params.taskId`), `initialize`'s `protocolVersion` and
//! `clientInfo`, and the 2026-07-28 `_meta` keys. Everything else is skipped without building
//! a tree; `params.arguments` is kept as a zero-copy slice of the body.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::jsonrpc::RequestId;
use super::version::{Era, ProtocolVersion};

/// What one JSON-RPC message is (R67).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Has `method` and `id`: expects a response.
    Request,
    /// Has `method` and no `id`.
    Notification,
    /// Has `id` and `result`.
    Response,
    /// Has `error` (and usually `id`).
    Error,
}

impl MessageKind {
    /// `"request"`, `"notification"`, `"response"` or `"error"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageKind::Request => "request",
            MessageKind::Notification => "notification",
            MessageKind::Response => "response",
            MessageKind::Error => "error",
        }
    }
}

/// What a request acts on: the tool, prompt, resource or task it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// `tools/call`'s `params.name`.
    Tool(Box<str>),
    /// `prompts/get`'s `params.name`, or a `completion/complete` `ref/prompt`.
    Prompt(Box<str>),
    /// `resources/read|subscribe|unsubscribe`'s `params.uri`, or a `ref/resource`.
    Resource(Box<str>),
    /// `tasks/*`'s `params.taskId`.
    Task(Box<str>),
}

impl Target {
    /// The name, URI or task id.
    pub fn name(&self) -> &str {
        match self {
            Target::Tool(s) | Target::Prompt(s) | Target::Resource(s) | Target::Task(s) => s,
        }
    }

    /// `"tool"`, `"prompt"`, `"resource"` or `"task"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Tool(_) => "tool",
            Target::Prompt(_) => "prompt",
            Target::Resource(_) => "resource",
            Target::Task(_) => "task",
        }
    }
}

/// Self-reported client identity (`clientInfo`, R68). Never a basis for security decisions (R64).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// `name`.
    pub name: Option<Box<str>>,
    /// `version`.
    pub version: Option<Box<str>>,
    /// `title`.
    pub title: Option<Box<str>>,
}

/// The 2026-07-28 per-request `_meta` fields (R68, R69), plus W3C trace context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    /// `io.modelcontextprotocol/protocolVersion`.
    pub protocol_version: Option<Box<str>>,
    /// `io.modelcontextprotocol/clientInfo`.
    pub client_info: Option<ClientInfo>,
    /// Whether `io.modelcontextprotocol/clientCapabilities` is present.
    pub has_client_capabilities: bool,
    /// `io.modelcontextprotocol/logLevel`.
    pub log_level: Option<Box<str>>,
    /// `traceparent`.
    pub traceparent: Option<Box<str>>,
    /// `tracestate`.
    pub tracestate: Option<Box<str>>,
    /// `baggage`.
    pub baggage: Option<Box<str>>,
    /// Whether `progressToken` is present.
    pub has_progress_token: bool,
}

/// One JSON-RPC message of a POST body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpMessage {
    kind: MessageKind,
    id: Option<RequestId>,
    method: Option<Box<str>>,
    target: Option<Target>,
    init_version: Option<Box<str>>,
    init_client: Option<ClientInfo>,
    meta: Option<Box<RequestMeta>>,
    arguments: Option<Bytes>,
    error_code: Option<i64>,
}

impl McpMessage {
    /// The message's kind.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }
    /// The JSON-RPC id, when the message has one.
    pub fn id(&self) -> Option<&RequestId> {
        self.id.as_ref()
    }
    /// The method of a request or notification.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }
    /// What the request acts on.
    pub fn target(&self) -> Option<&Target> {
        self.target.as_ref()
    }
    /// Whether this is an `initialize` request.
    pub fn is_initialize(&self) -> bool {
        self.kind == MessageKind::Request && self.method() == Some("initialize")
    }
    /// `initialize`'s `params.protocolVersion`, as sent.
    pub fn initialize_version(&self) -> Option<&str> {
        self.init_version.as_deref()
    }
    /// The client's self-reported identity: `initialize`'s `clientInfo`, or the 2026-07-28
    /// `_meta` one.
    pub fn client_info(&self) -> Option<&ClientInfo> {
        self.init_client
            .as_ref()
            .or_else(|| self.meta.as_ref()?.client_info.as_ref())
    }
    /// The per-request `_meta` fields, when `params._meta` is present.
    pub fn meta(&self) -> Option<&RequestMeta> {
        self.meta.as_deref()
    }
    /// `params.arguments` exactly as sent (a zero-copy slice of the body).
    pub fn arguments(&self) -> Option<&Bytes> {
        self.arguments.as_ref()
    }
    /// The `error.code` of a client-sent error response.
    pub fn error_code(&self) -> Option<i64> {
        self.error_code
    }
}

/// A POST body: one message, or a 2025-03-26 batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// One JSON object.
    Single(McpMessage),
    /// A JSON array of messages (2025-03-26 only, R5).
    Batch(Vec<McpMessage>),
}

impl Body {
    /// Parses a POST body. One pass over the bytes; `params.arguments` is not copied.
    pub fn parse(body: &Bytes) -> Result<Body, ParseError> {
        let text =
            std::str::from_utf8(body).map_err(|_| ParseError::syntax("body is not valid UTF-8"))?;
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed = de
            .deserialize_any(BodyVisitor { body })
            .and_then(|b| de.end().map(|()| b));
        parsed.map_err(|err| ParseError::from_json(err, text))
    }

    /// The messages, in order.
    pub fn messages(&self) -> &[McpMessage] {
        match self {
            Body::Single(m) => std::slice::from_ref(m),
            Body::Batch(ms) => ms,
        }
    }

    /// Whether the body was a JSON array.
    pub fn is_batch(&self) -> bool {
        matches!(self, Body::Batch(_))
    }
}

/// Why a body is not a valid MCP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    kind: ParseErrorKind,
    message: String,
    id: Option<RequestId>,
}

/// The JSON-RPC class of a [`ParseError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Not JSON (or not UTF-8): `-32700`.
    Syntax,
    /// JSON, but not a valid JSON-RPC message: `-32600`.
    InvalidRequest,
    /// A valid envelope whose `params` we read has the wrong shape: `-32602`.
    InvalidParams,
}

impl ParseError {
    fn syntax(message: impl Into<String>) -> Self {
        ParseError {
            kind: ParseErrorKind::Syntax,
            message: message.into(),
            id: None,
        }
    }

    fn from_json(err: serde_json::Error, text: &str) -> Self {
        use serde_json::error::Category;
        match err.classify() {
            Category::Syntax | Category::Eof | Category::Io => ParseError::syntax(err.to_string()),
            Category::Data => {
                let message = err.to_string();
                // A custom error raised inside params hides a later syntax error: check.
                if let Err(syntax) = serde_json::from_str::<IgnoredAny>(text)
                    && syntax.classify() != Category::Data
                {
                    return ParseError::syntax(syntax.to_string());
                }
                let kind = if message.contains(PARAMS_MARK) {
                    ParseErrorKind::InvalidParams
                } else {
                    ParseErrorKind::InvalidRequest
                };
                ParseError {
                    kind,
                    message: message.replace(PARAMS_MARK, ""),
                    id: recover_id(text),
                }
            }
        }
    }

    /// The class of error.
    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }
    /// A human-readable reason.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The request id, when it could still be read.
    pub fn id(&self) -> Option<&RequestId> {
        self.id.as_ref()
    }
    /// The JSON-RPC error code for this error.
    pub fn code(&self) -> i64 {
        use super::jsonrpc::code;
        match self.kind {
            ParseErrorKind::Syntax => code::PARSE_ERROR,
            ParseErrorKind::InvalidRequest => code::INVALID_REQUEST,
            ParseErrorKind::InvalidParams => code::INVALID_PARAMS,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// Marks errors raised inside `params`, so they map to `-32602`.
const PARAMS_MARK: &str = "\u{1}params\u{1}";

/// On the error path only: the id of a single-object body, if it can be read at all.
fn recover_id(text: &str) -> Option<RequestId> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<RequestId>,
    }
    serde_json::from_str::<IdOnly>(text).ok()?.id
}

/// The most messages a batch may hold.
pub const MAX_BATCH: usize = 1024;

struct BodyVisitor<'b> {
    body: &'b Bytes,
}

impl<'de> Visitor<'de> for BodyVisitor<'_> {
    type Value = Body;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message object or an array of them")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Body, A::Error> {
        MessageVisitor { body: self.body }
            .visit_map(map)
            .map(Body::Single)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
        let mut messages = Vec::new();
        while let Some(message) = seq.next_element_seed(MessageSeed { body: self.body })? {
            if messages.len() == MAX_BATCH {
                return Err(de::Error::custom(format_args!(
                    "batch has more than {MAX_BATCH} messages"
                )));
            }
            messages.push(message);
        }
        if messages.is_empty() {
            return Err(de::Error::custom("empty batch"));
        }
        Ok(Body::Batch(messages))
    }
}

struct MessageSeed<'b> {
    body: &'b Bytes,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = McpMessage;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<McpMessage, D::Error> {
        d.deserialize_map(MessageVisitor { body: self.body })
    }
}

struct MessageVisitor<'b> {
    body: &'b Bytes,
}

/// `id` that tells `null` apart from absent.
enum IdField {
    Null,
    Id(RequestId),
}

impl<'de> serde::Deserialize<'de> for IdField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<RequestId>::deserialize(d).map(|id| id.map_or(IdField::Null, IdField::Id))
    }
}

#[derive(serde::Deserialize)]
struct WireError {
    code: i64,
}

fn dup<E: de::Error>(field: &'static str) -> E {
    E::duplicate_field(field)
}

impl<'de> Visitor<'de> for MessageVisitor<'_> {
    type Value = McpMessage;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<McpMessage, A::Error> {
        let mut jsonrpc: Option<String> = None;
        let mut id: Option<IdField> = None;
        let mut method: Option<String> = None;
        let mut params: Option<ParamsFields<'de>> = None;
        let mut has_result = false;
        let mut error: Option<WireError> = None;
        while let Some(key) = map.next_key::<KeyField>()? {
            match key {
                KeyField::JsonRpc => {
                    if jsonrpc.is_some() {
                        return Err(dup("jsonrpc"));
                    }
                    jsonrpc = Some(map.next_value()?);
                }
                KeyField::Id => {
                    if id.is_some() {
                        return Err(dup("id"));
                    }
                    id = Some(map.next_value()?);
                }
                KeyField::Method => {
                    if method.is_some() {
                        return Err(dup("method"));
                    }
                    method = Some(map.next_value()?);
                }
                KeyField::Params => {
                    if params.is_some() {
                        return Err(dup("params"));
                    }
                    params = Some(map.next_value_seed(ParamsSeed)?);
                }
                KeyField::Result => {
                    if has_result {
                        return Err(dup("result"));
                    }
                    map.next_value::<IgnoredAny>()?;
                    has_result = true;
                }
                KeyField::Error => {
                    if error.is_some() {
                        return Err(dup("error"));
                    }
                    error = Some(map.next_value()?);
                }
                KeyField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if jsonrpc.as_deref() != Some("2.0") {
            return Err(de::Error::custom("\"jsonrpc\" must be \"2.0\""));
        }
        let kind = match (&method, &id, has_result, &error) {
            (Some(_), Some(IdField::Id(_)), false, None) => MessageKind::Request,
            (Some(_), Some(IdField::Null), _, _) => {
                return Err(de::Error::custom("a request id must not be null"));
            }
            (Some(_), None, false, None) => MessageKind::Notification,
            (None, Some(IdField::Id(_)), true, None) => MessageKind::Response,
            (None, _, false, Some(_)) => MessageKind::Error,
            _ => {
                return Err(de::Error::custom(
                    "not a JSON-RPC request, notification, result or error",
                ));
            }
        };
        let id = match id {
            Some(IdField::Id(id)) => Some(id),
            _ => None,
        };
        let mut message = McpMessage {
            kind,
            id,
            method: method.map(String::into_boxed_str),
            target: None,
            init_version: None,
            init_client: None,
            meta: None,
            arguments: None,
            error_code: error.map(|e| e.code),
        };
        apply_params(&mut message, params.unwrap_or_default(), self.body)
            .map_err(|e| de::Error::custom(format_args!("{PARAMS_MARK}invalid params: {e}")))?;
        Ok(message)
    }
}

enum KeyField {
    JsonRpc,
    Id,
    Method,
    Params,
    Result,
    Error,
    Other,
}

impl<'de> serde::Deserialize<'de> for KeyField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyField, E> {
                Ok(match v {
                    "jsonrpc" => KeyField::JsonRpc,
                    "id" => KeyField::Id,
                    "method" => KeyField::Method,
                    "params" => KeyField::Params,
                    "result" => KeyField::Result,
                    "error" => KeyField::Error,
                    _ => KeyField::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// Turns the `params` fields into the message's target and metadata, now that the method is
/// known (it may come after `params` in the object).
fn apply_params(
    message: &mut McpMessage,
    fields: ParamsFields<'_>,
    body: &Bytes,
) -> Result<(), serde_json::Error> {
    let method = message.method.as_deref().unwrap_or("");
    let is_request = message.kind == MessageKind::Request;
    message.target = match method {
        "tools/call" if is_request => Some(Target::Tool(required(fields.name, "name")?)),
        "prompts/get" if is_request => Some(Target::Prompt(required(fields.name, "name")?)),
        // A method the message's era does not define (a 2026-07-28 `resources/subscribe`) is
        // the server's to answer (404, -32601): its params are read when present, not required.
        "resources/subscribe" | "resources/unsubscribe"
            if is_request && !era_of(&fields).defines(method) =>
        {
            fields.uri.map(Target::Resource)
        }
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" if is_request => {
            Some(Target::Resource(required(fields.uri, "uri")?))
        }
        "completion/complete" => match fields.reference {
            Some(RefField::Prompt(name)) => Some(Target::Prompt(name)),
            Some(RefField::Resource(uri)) => Some(Target::Resource(uri)),
            None => None,
        },
        m if m.starts_with("tasks/") => fields.task_id.map(Target::Task),
        _ => None,
    };
    if message.is_initialize() {
        message.init_version = fields.protocol_version;
        message.init_client = fields.client_info;
    }
    message.meta = fields.meta.map(Box::new);
    message.arguments = fields
        .arguments
        .map(|raw| body.slice_ref(raw.get().as_bytes()));
    Ok(())
}

/// The era a message's own `_meta` protocol version names; legacy without one (only
/// 2026-07-28 requests carry it, and the inspect layer holds them to it, R36).
fn era_of(fields: &ParamsFields<'_>) -> Era {
    fields
        .meta
        .as_ref()
        .and_then(|meta| meta.protocol_version.as_deref()?.parse().ok())
        .map_or(Era::Legacy, ProtocolVersion::era)
}

fn required(value: Option<Box<str>>, field: &'static str) -> Result<Box<str>, serde_json::Error> {
    value.ok_or_else(|| de::Error::missing_field(field))
}

#[derive(Default)]
struct ParamsFields<'de> {
    name: Option<Box<str>>,
    uri: Option<Box<str>>,
    task_id: Option<Box<str>>,
    reference: Option<RefField>,
    protocol_version: Option<Box<str>>,
    client_info: Option<ClientInfo>,
    meta: Option<RequestMeta>,
    arguments: Option<&'de RawValue>,
}

enum RefField {
    Prompt(Box<str>),
    Resource(Box<str>),
}

/// Reads a string field once; a second occurrence is an error.
fn once<'de, A: MapAccess<'de>>(
    slot: &mut Option<Box<str>>,
    map: &mut A,
    name: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(dup(name));
    }
    *slot = Some(map.next_value::<String>()?.into_boxed_str());
    Ok(())
}

struct ParamsSeed;

impl<'de> DeserializeSeed<'de> for ParamsSeed {
    type Value = ParamsFields<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(ParamsVisitor)
            .map_err(|e| de::Error::custom(format_args!("{PARAMS_MARK}invalid params: {e}")))
    }
}

struct ParamsVisitor;

impl<'de> Visitor<'de> for ParamsVisitor {
    type Value = ParamsFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a params object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = ParamsFields::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "name" => once(&mut out.name, &mut map, "name")?,
                "uri" => once(&mut out.uri, &mut map, "uri")?,
                "taskId" => once(&mut out.task_id, &mut map, "taskId")?,
                "protocolVersion" => once(&mut out.protocol_version, &mut map, "protocolVersion")?,
                "clientInfo" => {
                    if out.client_info.is_some() {
                        return Err(dup("clientInfo"));
                    }
                    out.client_info = Some(map.next_value_seed(ClientInfoSeed)?);
                }
                "ref" => {
                    if out.reference.is_some() {
                        return Err(dup("ref"));
                    }
                    out.reference = map.next_value_seed(RefSeed)?;
                }
                "_meta" => {
                    if out.meta.is_some() {
                        return Err(dup("_meta"));
                    }
                    out.meta = Some(map.next_value_seed(MetaSeed)?);
                }
                "arguments" => {
                    if out.arguments.is_some() {
                        return Err(dup("arguments"));
                    }
                    out.arguments = Some(map.next_value()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

struct ClientInfoSeed;

impl<'de> DeserializeSeed<'de> for ClientInfoSeed {
    type Value = ClientInfo;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ClientInfo, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ClientInfoSeed {
    type Value = ClientInfo;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a clientInfo object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ClientInfo, A::Error> {
        let mut info = ClientInfo::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "name" => once(&mut info.name, &mut map, "name")?,
                "version" => once(&mut info.version, &mut map, "version")?,
                "title" => once(&mut info.title, &mut map, "title")?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(info)
    }
}

struct RefSeed;

impl<'de> DeserializeSeed<'de> for RefSeed {
    type Value = Option<RefField>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RefSeed {
    type Value = Option<RefField>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a ref object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut ty, mut name, mut uri) = (None, None, None);
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "type" => once(&mut ty, &mut map, "type")?,
                "name" => once(&mut name, &mut map, "name")?,
                "uri" => once(&mut uri, &mut map, "uri")?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match ty.as_deref() {
            Some("ref/prompt") => name.map(RefField::Prompt),
            Some("ref/resource") => uri.map(RefField::Resource),
            _ => None,
        })
    }
}

struct MetaSeed;

impl<'de> DeserializeSeed<'de> for MetaSeed {
    type Value = RequestMeta;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RequestMeta, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MetaSeed {
    type Value = RequestMeta;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a _meta object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RequestMeta, A::Error> {
        let mut meta = RequestMeta::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "io.modelcontextprotocol/protocolVersion" => {
                    once(&mut meta.protocol_version, &mut map, "protocolVersion")?
                }
                "io.modelcontextprotocol/clientInfo" => {
                    if meta.client_info.is_some() {
                        return Err(dup("clientInfo"));
                    }
                    meta.client_info = Some(map.next_value_seed(ClientInfoSeed)?);
                }
                "io.modelcontextprotocol/clientCapabilities" => {
                    map.next_value::<IgnoredAny>()?;
                    meta.has_client_capabilities = true;
                }
                "io.modelcontextprotocol/logLevel" => {
                    once(&mut meta.log_level, &mut map, "logLevel")?
                }
                "traceparent" => once(&mut meta.traceparent, &mut map, "traceparent")?,
                "tracestate" => once(&mut meta.tracestate, &mut map, "tracestate")?,
                "baggage" => once(&mut meta.baggage, &mut map, "baggage")?,
                "progressToken" => {
                    map.next_value::<IgnoredAny>()?;
                    meta.has_progress_token = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(meta)
    }
}

/// An object key, borrowed from the body unless it had escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_owned()))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Body, ParseError> {
        Body::parse(&Bytes::copy_from_slice(text.as_bytes()))
    }

    fn one(text: &str) -> McpMessage {
        match parse(text).unwrap() {
            Body::Single(m) => m,
            Body::Batch(_) => panic!("expected one message"),
        }
    }

    #[test]
    fn request_notification_response_and_error() {
        let m = one(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        assert_eq!(m.kind(), MessageKind::Request);
        assert_eq!(m.id(), Some(&RequestId::Number(1)));
        assert_eq!(m.method(), Some("tools/list"));

        let m = one(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert_eq!(m.kind(), MessageKind::Notification);
        assert_eq!(m.id(), None);

        let m = one(r#"{"jsonrpc":"2.0","id":"abc","result":{"roots":[]}}"#);
        assert_eq!(m.kind(), MessageKind::Response);
        assert_eq!(m.id(), Some(&RequestId::from("abc")));

        let m = one(r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32601,"message":"nope"}}"#);
        assert_eq!(m.kind(), MessageKind::Error);
        assert_eq!(m.error_code(), Some(-32601));

        let m = one(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#);
        assert_eq!(m.kind(), MessageKind::Error);
        assert_eq!(m.id(), None);
    }

    #[test]
    fn initialize_fields() {
        let m = one(
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{}},"clientInfo":{"name":"inspector","version":"1.2","title":"MCP Inspector","icons":[]}}}"#,
        );
        assert!(m.is_initialize());
        assert_eq!(m.initialize_version(), Some("2025-11-25"));
        let info = m.client_info().unwrap();
        assert_eq!(info.name.as_deref(), Some("inspector"));
        assert_eq!(info.version.as_deref(), Some("1.2"));
        assert_eq!(info.title.as_deref(), Some("MCP Inspector"));
    }

    #[test]
    fn every_target() {
        let cases = [
            (
                r#""method":"tools/call","params":{"name":"deploy","arguments":{}}"#,
                Target::Tool("deploy".into()),
            ),
            (
                r#""method":"prompts/get","params":{"name":"greet"}"#,
                Target::Prompt("greet".into()),
            ),
            (
                r#""method":"resources/read","params":{"uri":"file:///a"}"#,
                Target::Resource("file:///a".into()),
            ),
            (
                r#""method":"resources/subscribe","params":{"uri":"file:///b"}"#,
                Target::Resource("file:///b".into()),
            ),
            (
                r#""method":"resources/unsubscribe","params":{"uri":"file:///c"}"#,
                Target::Resource("file:///c".into()),
            ),
            (
                r#""method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","value":"v"}}"#,
                Target::Prompt("p".into()),
            ),
            (
                r#""method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"x://y"}}"#,
                Target::Resource("x://y".into()),
            ),
            (
                r#""method":"tasks/get","params":{"taskId":"t-1"}"#,
                Target::Task("t-1".into()),
            ),
        ];
        for (fields, target) in cases {
            let m = one(&format!(r#"{{"jsonrpc":"2.0","id":1,{fields}}}"#));
            assert_eq!(m.target(), Some(&target), "{fields}");
        }
        // Params before method: the target is still found.
        let m = one(r#"{"params":{"name":"late"},"id":2,"method":"tools/call","jsonrpc":"2.0"}"#);
        assert_eq!(m.target(), Some(&Target::Tool("late".into())));
        // Escaped names are decoded.
        let m = one(
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"na\u006de":"d\u00e9ploy"}}"#,
        );
        assert_eq!(m.target(), Some(&Target::Tool("déploy".into())));
    }

    #[test]
    fn modern_meta_fields() {
        let m = one(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"py","version":"1"},"io.modelcontextprotocol/logLevel":"info","traceparent":"00-abc-def-01","tracestate":"k=v","baggage":"b=1","progressToken":7,"com.example/other":{"deep":[1,2,3]}}}}"#,
        );
        let meta = m.meta().unwrap();
        assert_eq!(meta.protocol_version.as_deref(), Some("2026-07-28"));
        assert!(meta.has_client_capabilities);
        assert!(meta.has_progress_token);
        assert_eq!(meta.log_level.as_deref(), Some("info"));
        assert_eq!(meta.traceparent.as_deref(), Some("00-abc-def-01"));
        assert_eq!(meta.tracestate.as_deref(), Some("k=v"));
        assert_eq!(meta.baggage.as_deref(), Some("b=1"));
        assert_eq!(m.client_info().unwrap().name.as_deref(), Some("py"));
    }

    #[test]
    fn arguments_are_a_zero_copy_slice_of_the_body() {
        let body = Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments": {"text":"h\"i"} }}"#,
        );
        let Body::Single(m) = Body::parse(&body).unwrap() else {
            panic!()
        };
        let args = m.arguments().unwrap();
        assert_eq!(&args[..], br#"{"text":"h\"i"}"#);
        let offset = args.as_ptr() as usize - body.as_ptr() as usize;
        assert!(offset < body.len(), "arguments point into the body");
    }

    #[test]
    fn batches_of_mixed_messages() {
        let body = parse(
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}},{"jsonrpc":"2.0","id":9,"result":{}}]"#,
        )
        .unwrap();
        assert!(body.is_batch());
        let kinds: Vec<_> = body.messages().iter().map(McpMessage::kind).collect();
        assert_eq!(
            kinds,
            [
                MessageKind::Request,
                MessageKind::Notification,
                MessageKind::Response
            ]
        );
        assert_eq!(
            parse("[]").unwrap_err().kind(),
            ParseErrorKind::InvalidRequest
        );
        assert_eq!(
            parse("[[]]").unwrap_err().kind(),
            ParseErrorKind::InvalidRequest
        );
        assert_eq!(
            parse("[1]").unwrap_err().kind(),
            ParseErrorKind::InvalidRequest
        );
        let too_many = format!(
            "[{}]",
            vec![r#"{"jsonrpc":"2.0","method":"n"}"#; MAX_BATCH + 1].join(",")
        );
        assert_eq!(
            parse(&too_many).unwrap_err().kind(),
            ParseErrorKind::InvalidRequest
        );
    }

    #[test]
    fn malformed_json_is_a_syntax_error() {
        for text in [
            "",
            "{",
            "{\"jsonrpc\":",
            "nul",
            "{\"a\":1}}",
            "{'a':1}",
            "[{\"jsonrpc\":\"2.0\",\"method\":\"x\"},",
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.kind(), ParseErrorKind::Syntax, "{text:?}: {err}");
            assert_eq!(err.code(), -32700);
        }
        let err = Body::parse(&Bytes::from_static(
            b"{\"jsonrpc\":\"2.0\",\"method\":\"\xff\"}",
        ))
        .unwrap_err();
        assert_eq!(err.kind(), ParseErrorKind::Syntax);
    }

    #[test]
    fn syntax_error_inside_params_is_still_a_syntax_error() {
        let err =
            parse(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":1,"x":}"#)
                .unwrap_err();
        assert_eq!(err.kind(), ParseErrorKind::Syntax, "{err}");
    }

    #[test]
    fn invalid_envelopes_are_invalid_requests_with_the_id_when_readable() {
        let cases = [
            r#"{"id":1,"method":"x"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"a"}"#,
            "42",
            "\"text\"",
            "null",
        ];
        for text in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.kind(), ParseErrorKind::InvalidRequest, "{text}: {err}");
            assert_eq!(err.code(), -32600);
        }
        let err = parse(r#"{"jsonrpc":"1.0","id":"keep","method":"x"}"#).unwrap_err();
        assert_eq!(err.id(), Some(&RequestId::from("keep")));
    }

    #[test]
    fn wrong_types_in_read_params_are_invalid_params() {
        let cases = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1,2]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":2026}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"clientInfo":"me"}}"#,
        ];
        for text in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.kind(), ParseErrorKind::InvalidParams, "{text}: {err}");
            assert_eq!(err.id(), Some(&RequestId::Number(1)), "{text}");
        }
    }

    #[test]
    fn params_of_a_method_the_era_does_not_define_are_not_required() {
        let modern = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#;
        for method in ["resources/subscribe", "resources/unsubscribe"] {
            let m = one(&format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{{modern}}}}}"#
            ));
            assert_eq!(m.target(), None, "{method}");
            let m = one(&format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{"uri":"file:///a",{modern}}}}}"#
            ));
            assert_eq!(m.target(), Some(&Target::Resource("file:///a".into())));
            // The era that defines them still needs the uri.
            let err = parse(&format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{}}}}"#
            ))
            .unwrap_err();
            assert_eq!(err.kind(), ParseErrorKind::InvalidParams, "{method}");
        }
        // 2026-07-28 still defines resources/read.
        let err = parse(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{{{modern}}}}}"#
        ))
        .unwrap_err();
        assert_eq!(err.kind(), ParseErrorKind::InvalidParams);
    }

    #[test]
    fn hostile_inputs_give_typed_errors() {
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"x","arguments":{}{}}}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        // Arguments are skipped, never built into a tree: deep nesting there costs one pass
        // and no stack; the server behind decides what it accepts.
        let m = one(&deep);
        assert_eq!(m.arguments().unwrap().len(), 200_000);
        let deep_meta = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{{"_meta":{{"a":{}1{}}}}}}}"#,
            "{\"b\":".repeat(10_000),
            "}".repeat(10_000)
        );
        // Unknown `_meta` keys are skipped iteratively: no stack overflow either.
        assert!(one(&deep_meta).meta().is_some());
        // Where we do build values (ids), serde_json's recursion limit answers.
        let deep_id = format!(
            r#"{{"jsonrpc":"2.0","id":{}1{},"method":"x"}}"#,
            "[".repeat(1000),
            "]".repeat(1000)
        );
        assert!(parse(&deep_id).is_err());
        let huge = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{}"}}}}"#,
            "n".repeat(1 << 20)
        );
        assert_eq!(one(&huge).target().unwrap().name().len(), 1 << 20);
        // Lone surrogates are not valid UTF-8 text.
        assert!(parse(r#"{"jsonrpc":"2.0","id":1,"method":"\ud800"}"#).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every prefix and single-byte mutation of valid bodies.
        let seeds: [&[u8]; 3] = [
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
            br#"[{"jsonrpc":"2.0","id":"a","method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"}}},{"jsonrpc":"2.0","id":2,"result":{}}]"#,
            br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","clientInfo":{"name":"c","version":"1"}}}"#,
        ];
        let mutations = [
            b'"', b'{', b'}', b'[', b']', b',', b':', b'\\', 0xff, b'0', b' ',
        ];
        for seed in seeds {
            for end in 0..=seed.len() {
                let _ = Body::parse(&Bytes::copy_from_slice(&seed[..end]));
            }
            for i in 0..seed.len() {
                for m in mutations {
                    let mut bytes = seed.to_vec();
                    bytes[i] = m;
                    let _ = Body::parse(&Bytes::from(bytes));
                }
            }
        }
    }
}
