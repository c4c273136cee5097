//! The typed view of one MCP POST body (SPEC R5, R67–R69), parsed in one pass.
//!
//! Only the fields an edge needs are decoded: `method`, `id`, the target (`params.name`,
//! `params.uri`, `params.ref`, `params.taskId`), `initialize`'s `protocolVersion` and
//! `clientInfo`, and the 2026-07-28 `_meta` keys. Everything else is parsed in full but not
//! kept (no tree is built); `params.arguments` is handed out on demand as a zero-copy slice of
//! the body.
//!
//! A body passes only if the server's own parser takes it and cannot read it otherwise than
//! the edge did: it must be JSON that serde_json's defaults accept (nesting up to 128, numbers
//! in range, valid escapes, no lone surrogates), with no key repeated in any object and no
//! case or NUL-suffixed variant of a key the edge decides on (`method`, `params`, `name`, `id`,
//! `_meta`, `arguments`, `uri`).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::sync::OnceLock;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
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

/// A message's `_meta`. Most carry only a `progressToken` (and, in 2026-07-28, client
/// capabilities) and nothing the edge keeps as text: those share a static value instead of
/// a boxed copy per message.
#[derive(Debug, Clone)]
enum Meta {
    Flags(&'static RequestMeta),
    Boxed(Box<RequestMeta>),
}

/// `_meta` with flags only, one per combination of `has_client_capabilities` and
/// `has_progress_token`.
static META_FLAGS: [RequestMeta; 4] = {
    const fn flags(has_client_capabilities: bool, has_progress_token: bool) -> RequestMeta {
        RequestMeta {
            protocol_version: None,
            client_info: None,
            has_client_capabilities,
            log_level: None,
            traceparent: None,
            tracestate: None,
            baggage: None,
            has_progress_token,
        }
    }
    [
        flags(false, false),
        flags(false, true),
        flags(true, false),
        flags(true, true),
    ]
};

/// Equal when the fields are, however kept.
impl PartialEq for Meta {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for Meta {}

impl Meta {
    fn new(meta: RequestMeta) -> Meta {
        let index =
            usize::from(meta.has_client_capabilities) * 2 + usize::from(meta.has_progress_token);
        let flags = &META_FLAGS[index];
        if meta == *flags {
            Meta::Flags(flags)
        } else {
            Meta::Boxed(Box::new(meta))
        }
    }

    fn get(&self) -> &RequestMeta {
        match self {
            Meta::Flags(meta) => meta,
            Meta::Boxed(meta) => meta,
        }
    }
}

/// One JSON-RPC message of a POST body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpMessage {
    kind: MessageKind,
    id: Option<RequestId>,
    /// Borrowed from [`KNOWN_METHODS`] for the methods MCP defines: no copy per message.
    method: Option<Cow<'static, str>>,
    target: Option<Target>,
    init_version: Option<Box<str>>,
    // Boxed: only `initialize` has it, and every message stays small.
    init_client: Option<Box<ClientInfo>>,
    meta: Option<Meta>,
    arguments: LazyArguments,
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
            .as_deref()
            .or_else(|| self.meta()?.client_info.as_ref())
    }
    /// The per-request `_meta` fields, when `params._meta` is present.
    pub fn meta(&self) -> Option<&RequestMeta> {
        self.meta.as_ref().map(Meta::get)
    }
    /// `params.arguments` exactly as sent (a zero-copy slice of the body).
    ///
    /// The first call finds them in the body again (a skimming pass, not a full parse): the
    /// edge's one pass checks them but keeps no slice, since only an audit capture reads them.
    pub fn arguments(&self) -> Option<&Bytes> {
        self.arguments.get()
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
    /// JSON that another parser could read otherwise: a key repeated in an object, or a case
    /// or NUL-suffixed variant of a key the edge decides on: `-32600`.
    AmbiguousKey,
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
                // A custom error raised inside params, or a repeated key, hides a later
                // syntax error (or one found while re-reading a raw slice): check.
                if let Err(syntax) = check_syntax(text)
                    && syntax.classify() != Category::Data
                {
                    return ParseError::syntax(syntax.to_string());
                }
                let (kind, message) = if let Some((_, rest)) = message.split_once(AMBIGUOUS_MARK) {
                    (ParseErrorKind::AmbiguousKey, rest.to_owned())
                } else if message.contains(PARAMS_MARK) {
                    (
                        ParseErrorKind::InvalidParams,
                        message.replace(PARAMS_MARK, ""),
                    )
                } else {
                    (ParseErrorKind::InvalidRequest, message)
                };
                ParseError {
                    kind,
                    message,
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
            ParseErrorKind::InvalidRequest | ParseErrorKind::AmbiguousKey => code::INVALID_REQUEST,
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
/// Marks repeated and look-alike keys, so they map to `-32600` wherever they are.
const AMBIGUOUS_MARK: &str = "\u{1}ambiguous\u{1}";

/// On the error path only: the whole text parsed as serde_json parses it, for its first
/// syntax error (nesting, number range, escapes included).
fn check_syntax(text: &str) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    Unread::SYNTAX_ONLY.deserialize(&mut de)?;
    de.end()
}

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

/// `params.arguments`, found in the body when first asked for.
#[derive(Debug, Clone, Default)]
struct LazyArguments {
    /// The whole body and the message's place in a batch; `None` without arguments.
    source: Option<(Bytes, Option<usize>)>,
    slice: OnceLock<Option<Bytes>>,
}

impl LazyArguments {
    fn get(&self) -> Option<&Bytes> {
        let (body, index) = self.source.as_ref()?;
        self.slice
            .get_or_init(|| find_arguments(body, *index))
            .as_ref()
    }
}

/// Equal when drawn from equal bodies at the same place, found yet or not.
impl PartialEq for LazyArguments {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for LazyArguments {}

/// The `params.arguments` slice of an already checked body (of its `index`th message when a
/// batch). serde_json skims everything else.
fn find_arguments(body: &Bytes, index: Option<usize>) -> Option<Bytes> {
    #[derive(serde::Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        params: Option<Params<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Params<'a> {
        #[serde(borrow, default, deserialize_with = "present")]
        arguments: Option<&'a RawValue>,
    }
    /// Keeps a JSON `null` as the raw `null` it is.
    fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
        <&RawValue as serde::Deserialize>::deserialize(d).map(Some)
    }
    let text = std::str::from_utf8(body).ok()?;
    let message = match index {
        None => serde_json::from_str::<Message<'_>>(text).ok()?,
        Some(index) => serde_json::from_str::<Vec<Message<'_>>>(text)
            .ok()?
            .into_iter()
            .nth(index)?,
    };
    let raw = message.params?.arguments?;
    Some(body.slice_ref(raw.get().as_bytes()))
}

struct BodyVisitor<'b> {
    body: &'b Bytes,
}

impl<'de> Visitor<'de> for BodyVisitor<'_> {
    type Value = Body;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message object or an array of them")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Body, A::Error> {
        MessageVisitor {
            body: self.body,
            index: None,
        }
        .visit_map(map)
        .map(Body::Single)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
        let mut messages = Vec::new();
        loop {
            let seed = MessageSeed {
                body: self.body,
                index: messages.len(),
            };
            let Some(message) = seq.next_element_seed(seed)? else {
                break;
            };
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
    index: usize,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = McpMessage;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<McpMessage, D::Error> {
        d.deserialize_map(MessageVisitor {
            body: self.body,
            index: Some(self.index),
        })
    }
}

struct MessageVisitor<'b> {
    body: &'b Bytes,
    /// The message's place in a batch.
    index: Option<usize>,
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

/// A client-sent `error` object: its `code` is read, the rest parsed and dropped.
struct WireError {
    code: i64,
}

impl<'de> serde::Deserialize<'de> for WireError {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireError;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC error object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireError, A::Error> {
                let mut code = None;
                let mut seen = SeenKeys::new();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    if key.as_str() == "code" {
                        once_seed(&mut code, &mut map, "code", PhantomData)?;
                    } else {
                        unread_field(&mut map, &mut seen, key, false)?;
                    }
                }
                let code = code.ok_or_else(|| de::Error::missing_field("code"))?;
                Ok(WireError { code })
            }
        }
        d.deserialize_map(V)
    }
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
        let mut jsonrpc: Option<JsonRpcTwo> = None;
        let mut id: Option<IdField> = None;
        let mut method: Option<MethodName> = None;
        let mut params: Option<ParamsFields> = None;
        let mut has_result = false;
        let mut error: Option<WireError> = None;
        let mut seen = SeenKeys::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "jsonrpc" => once_seed(&mut jsonrpc, &mut map, "jsonrpc", PhantomData)?,
                "id" => once_seed(&mut id, &mut map, "id", PhantomData)?,
                "method" => once_seed(&mut method, &mut map, "method", PhantomData)?,
                "params" => once_seed(&mut params, &mut map, "params", ParamsSeed)?,
                "result" => once_unread(&mut has_result, &mut map, "result")?,
                "error" => once_seed(&mut error, &mut map, "error", PhantomData)?,
                _ => unread_field(&mut map, &mut seen, key, true)?,
            }
        }
        if !matches!(jsonrpc, Some(JsonRpcTwo(true))) {
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
            method: method.map(|m| m.0),
            target: None,
            init_version: None,
            init_client: None,
            meta: None,
            arguments: LazyArguments::default(),
            error_code: error.map(|e| e.code),
        };
        apply_params(
            &mut message,
            params.unwrap_or_default(),
            self.body,
            self.index,
        )
        .map_err(|e| de::Error::custom(format_args!("{PARAMS_MARK}invalid params: {e}")))?;
        Ok(message)
    }
}

/// Turns the `params` fields into the message's target and metadata, now that the method is
/// known (it may come after `params` in the object).
fn apply_params(
    message: &mut McpMessage,
    fields: ParamsFields,
    body: &Bytes,
    index: Option<usize>,
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
        message.init_client = fields.client_info.map(Box::new);
    }
    message.meta = fields.meta.map(Meta::new);
    if fields.has_arguments {
        message.arguments.source = Some((body.clone(), index));
    }
    Ok(())
}

/// The era a message's own `_meta` protocol version names; legacy without one (only
/// 2026-07-28 requests carry it, and the inspect layer holds them to it, R36).
fn era_of(fields: &ParamsFields) -> Era {
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
struct ParamsFields {
    name: Option<Box<str>>,
    uri: Option<Box<str>>,
    task_id: Option<Box<str>>,
    reference: Option<RefField>,
    protocol_version: Option<Box<str>>,
    client_info: Option<ClientInfo>,
    meta: Option<RequestMeta>,
    has_arguments: bool,
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

/// Reads a field once with `seed` (`PhantomData` for a plain `Deserialize` type); a second
/// occurrence is an error.
fn once_seed<'de, A: MapAccess<'de>, T: DeserializeSeed<'de>>(
    slot: &mut Option<T::Value>,
    map: &mut A,
    name: &'static str,
    seed: T,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(dup(name));
    }
    *slot = Some(map.next_value_seed(seed)?);
    Ok(())
}

/// Checks a field the edge does not read (its value parsed in full and dropped) and notes
/// that it was there; a second occurrence is an error.
fn once_unread<'de, A: MapAccess<'de>>(
    present: &mut bool,
    map: &mut A,
    name: &'static str,
) -> Result<(), A::Error> {
    if *present {
        return Err(dup(name));
    }
    map.next_value_seed(Unread::MAIN_PASS)?;
    *present = true;
    Ok(())
}

/// Reads an object with the visitor it holds.
struct Object<V>(V);

impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for Object<V> {
    type Value = V::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        d.deserialize_map(self.0)
    }
}

struct ParamsSeed;

impl<'de> DeserializeSeed<'de> for ParamsSeed {
    type Value = ParamsFields;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(ParamsVisitor)
            .map_err(|e| de::Error::custom(format_args!("{PARAMS_MARK}invalid params: {e}")))
    }
}

struct ParamsVisitor;

impl<'de> Visitor<'de> for ParamsVisitor {
    type Value = ParamsFields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a params object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = ParamsFields::default();
        let mut seen = SeenKeys::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "name" => once(&mut out.name, &mut map, "name")?,
                "uri" => once(&mut out.uri, &mut map, "uri")?,
                "taskId" => once(&mut out.task_id, &mut map, "taskId")?,
                "protocolVersion" => once(&mut out.protocol_version, &mut map, "protocolVersion")?,
                "clientInfo" => once_seed(
                    &mut out.client_info,
                    &mut map,
                    "clientInfo",
                    Object(ClientInfoVisitor),
                )?,
                "ref" => {
                    if out.reference.is_some() {
                        return Err(dup("ref"));
                    }
                    out.reference = map.next_value_seed(Object(RefVisitor))?;
                }
                "_meta" => once_seed(&mut out.meta, &mut map, "_meta", Object(MetaVisitor))?,
                "arguments" => once_unread(&mut out.has_arguments, &mut map, "arguments")?,
                _ => unread_field(&mut map, &mut seen, key, true)?,
            }
        }
        Ok(out)
    }
}

struct ClientInfoVisitor;

impl<'de> Visitor<'de> for ClientInfoVisitor {
    type Value = ClientInfo;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a clientInfo object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ClientInfo, A::Error> {
        let mut info = ClientInfo::default();
        let mut seen = SeenKeys::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "name" => once(&mut info.name, &mut map, "name")?,
                "version" => once(&mut info.version, &mut map, "version")?,
                "title" => once(&mut info.title, &mut map, "title")?,
                _ => unread_field(&mut map, &mut seen, key, false)?,
            }
        }
        Ok(info)
    }
}

struct RefVisitor;

impl<'de> Visitor<'de> for RefVisitor {
    type Value = Option<RefField>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a ref object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut ty, mut name, mut uri) = (None, None, None);
        let mut seen = SeenKeys::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "type" => once(&mut ty, &mut map, "type")?,
                "name" => once(&mut name, &mut map, "name")?,
                "uri" => once(&mut uri, &mut map, "uri")?,
                _ => unread_field(&mut map, &mut seen, key, true)?,
            }
        }
        Ok(match ty.as_deref() {
            Some("ref/prompt") => name.map(RefField::Prompt),
            Some("ref/resource") => uri.map(RefField::Resource),
            _ => None,
        })
    }
}

struct MetaVisitor;

impl<'de> Visitor<'de> for MetaVisitor {
    type Value = RequestMeta;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a _meta object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RequestMeta, A::Error> {
        let mut meta = RequestMeta::default();
        let mut seen = SeenKeys::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "io.modelcontextprotocol/protocolVersion" => {
                    once(&mut meta.protocol_version, &mut map, "protocolVersion")?
                }
                "io.modelcontextprotocol/clientInfo" => once_seed(
                    &mut meta.client_info,
                    &mut map,
                    "clientInfo",
                    Object(ClientInfoVisitor),
                )?,
                "io.modelcontextprotocol/clientCapabilities" => once_unread(
                    &mut meta.has_client_capabilities,
                    &mut map,
                    "clientCapabilities",
                )?,
                "io.modelcontextprotocol/logLevel" => {
                    once(&mut meta.log_level, &mut map, "logLevel")?
                }
                "traceparent" => once(&mut meta.traceparent, &mut map, "traceparent")?,
                "tracestate" => once(&mut meta.tracestate, &mut map, "tracestate")?,
                "baggage" => once(&mut meta.baggage, &mut map, "baggage")?,
                "progressToken" => {
                    once_unread(&mut meta.has_progress_token, &mut map, "progressToken")?
                }
                _ => unread_field(&mut map, &mut seen, key, false)?,
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

/// The methods MCP defines, most frequent first: a message naming one of them keeps this
/// `&'static str` instead of a copy.
const KNOWN_METHODS: [&str; 24] = [
    "tools/call",
    "notifications/progress",
    "tools/list",
    "resources/read",
    "prompts/get",
    "notifications/cancelled",
    "ping",
    "initialize",
    "notifications/initialized",
    "resources/list",
    "resources/templates/list",
    "prompts/list",
    "completion/complete",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
    "notifications/roots/list_changed",
    "subscriptions/listen",
    "tasks/get",
    "tasks/list",
    "tasks/cancel",
    "tasks/result",
    "sampling/createMessage",
    "elicitation/create",
];

/// `method` as the `&'static str` of MCP's list, when MCP defines it (a bounded metric
/// label, a name kept without a copy).
pub fn known_method(method: &str) -> Option<&'static str> {
    KNOWN_METHODS.into_iter().find(|m| *m == method)
}

/// A `"method"` member's string, unescaped, not copied when it is a [known](KNOWN_METHODS)
/// method.
struct MethodName(Cow<'static, str>);

impl<'de> serde::Deserialize<'de> for MethodName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MethodName;
            // The words `String`'s visitor uses: the same error for a non-string.
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MethodName, E> {
                Ok(MethodName(
                    known_method(v).map_or_else(|| Cow::Owned(v.to_owned()), Cow::Borrowed),
                ))
            }
        }
        d.deserialize_str(V)
    }
}

/// Whether a `"jsonrpc"` member's string is `"2.0"`: read in place, no copy (a `String` per
/// message only to compare it was one of the stack's per-call allocations).
struct JsonRpcTwo(bool);

impl<'de> serde::Deserialize<'de> for JsonRpcTwo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = JsonRpcTwo;
            // The words `String`'s visitor uses: the same error for a non-string.
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<JsonRpcTwo, E> {
                Ok(JsonRpcTwo(v == "2.0"))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Key<'de> {
    fn into_cow(self) -> Cow<'de, str> {
        match self {
            Key::Borrowed(s) => Cow::Borrowed(s),
            Key::Owned(s) => Cow::Owned(s),
        }
    }
}

/// The keys whose values the edge decides on. A key equal to one of them but for ASCII case,
/// or with NULs after it, is that key to a case-insensitive or C-string parser and another key
/// to serde_json: the edge and the server could each act on a different value.
const DECISIVE_KEYS: [&str; 7] = [
    "method",
    "params",
    "name",
    "id",
    "_meta",
    "arguments",
    "uri",
];

/// The decisive key `key` is a look-alike of (and not equal to), if any.
fn look_alike(key: &str) -> Option<&'static str> {
    let stem = key.trim_end_matches('\0');
    DECISIVE_KEYS
        .into_iter()
        .find(|k| stem.eq_ignore_ascii_case(k) && key != *k)
}

/// A `-32600` error for a body another parser could read otherwise.
fn ambiguous<E: de::Error>(what: fmt::Arguments<'_>) -> E {
    E::custom(format_args!("{AMBIGUOUS_MARK}{what}"))
}

/// At most 64 bytes of a key, for an error message.
fn shown(key: &str) -> &str {
    let mut end = key.len().min(64);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

/// A key of an object the edge reads that the edge itself does not read: refused when it
/// repeats, or (in objects whose keys are `decisive`) when it is a look-alike of a decisive
/// key; its value is parsed in full and dropped.
fn unread_field<'de, A: MapAccess<'de>>(
    map: &mut A,
    seen: &mut SeenKeys<'de>,
    key: Key<'de>,
    decisive: bool,
) -> Result<(), A::Error> {
    if decisive && let Some(like) = look_alike(key.as_str()) {
        return Err(ambiguous(format_args!(
            "key {:?} is a look-alike of {like:?}",
            shown(key.as_str())
        )));
    }
    seen.insert(key)?;
    map.next_value_seed(Unread::MAIN_PASS)
}

/// How many inline slots [`SeenKeys`] has.
const INLINE_KEYS: usize = 8;

/// The keys of one object so far, to refuse a repeated one. The first eight unescaped keys are
/// kept inline, so an ordinary object allocates nothing; the rest go to a hash set (SipHash,
/// so a crafted object cannot make the check quadratic).
struct SeenKeys<'de> {
    inline: [&'de str; INLINE_KEYS],
    len: usize,
    more: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> SeenKeys<'de> {
    fn new() -> Self {
        SeenKeys {
            inline: [""; INLINE_KEYS],
            len: 0,
            more: None,
        }
    }

    /// Records `key`; an error if the object already had it.
    fn insert<E: de::Error>(&mut self, key: Key<'de>) -> Result<(), E> {
        let text = key.as_str();
        if self.inline[..self.len].contains(&text)
            || self.more.as_ref().is_some_and(|more| more.contains(text))
        {
            return Err(ambiguous(format_args!("repeated key {:?}", shown(text))));
        }
        match key {
            Key::Borrowed(text) if self.len < INLINE_KEYS => {
                self.inline[self.len] = text;
                self.len += 1;
            }
            key => {
                self.more
                    .get_or_insert_with(HashSet::new)
                    .insert(key.into_cow());
            }
        }
        Ok(())
    }
}

/// A value the edge does not read, parsed in full and dropped.
///
/// serde_json skips an `IgnoredAny` (or a `RawValue`) checking only its grammar, so a body the
/// edge passed on could still be one the server's parser refuses. This goes through
/// `deserialize_any` as a `Value` does: numbers are converted (one out of `f64` range fails),
/// strings unescaped (a lone surrogate fails), arrays and objects counted against serde_json's
/// nesting limit; and a key repeated in one object is refused.
#[derive(Clone, Copy)]
struct Unread {
    /// Whether a repeated key is refused.
    keys: bool,
}

impl Unread {
    /// In the main pass over the body.
    const MAIN_PASS: Unread = Unread { keys: true };

    /// For the first syntax error only, past any repeated key.
    const SYNTAX_ONLY: Unread = Unread { keys: false };
}

impl<'de> DeserializeSeed<'de> for Unread {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unread {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = SeenKeys::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if self.keys {
                seen.insert(key)?;
            }
            map.next_value_seed(self)?;
        }
        Ok(())
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
        // Deep nesting is refused where serde_json refuses it (past 127 open levels), in
        // arguments as anywhere: no tree is built and the stack does not overflow.
        assert_eq!(parse(&deep).unwrap_err().kind(), ParseErrorKind::Syntax);
        let deep_meta = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{{"_meta":{{"a":{}1{}}}}}}}"#,
            "{\"b\":".repeat(10_000),
            "}".repeat(10_000)
        );
        assert_eq!(
            parse(&deep_meta).unwrap_err().kind(),
            ParseErrorKind::Syntax
        );
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

    /// `text` with `{}` replaced by `value`.
    fn with(text: &str, value: &str) -> String {
        text.replacen("{}", value, 1)
    }

    /// Where a value the edge does not read can sit in a body.
    const UNREAD_SPOTS: [&str; 9] = [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"e","arguments":{"a":{}}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"e","arguments":{}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"x","x-extra":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m","data":{}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"cursor":{},"_meta":{"progressToken":{},"k":{}}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"clientInfo":{"name":"c","icons":{}}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p","x":{}}}}"#,
        r#"[{"jsonrpc":"2.0","method":"n"},{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"e","arguments":{}}}]"#,
    ];

    #[test]
    fn unread_values_are_parsed_as_serde_json_parses_them() {
        let refused = [
            "1e999999",
            "-1e400",
            r#""\ud800""#,
            r#""a\udc00b""#,
            r#""\ud800\u0041""#,
            r#"{"\ud800":1}"#,
            r#"["\ud83d"]"#,
        ];
        let accepted = [
            "1e308",
            "-1e-99999",
            "123456789012345678901234567890",
            r#""\ud83d\ude00""#,
            r#""\u0000 \" \\ \/ \b \f \n \r \t""#,
            r#"{"k":[null,true,false,{"K":0}]}"#,
        ];
        for spot in UNREAD_SPOTS {
            for value in refused {
                let text = with(spot, value);
                assert!(serde_json::from_str::<serde_json::Value>(&text).is_err());
                let err = parse(&text).unwrap_err();
                assert_eq!(err.kind(), ParseErrorKind::Syntax, "{text}: {err}");
                assert_eq!(err.code(), -32700);
            }
            for value in accepted {
                let text = with(spot, value);
                assert!(parse(&text).is_ok(), "{text}");
            }
        }
    }

    #[test]
    fn the_nesting_limit_is_serde_jsons_exactly() {
        for spot in UNREAD_SPOTS {
            for levels in 118..=130 {
                let text = with(
                    spot,
                    &format!("{}{}", "[".repeat(levels), "]".repeat(levels)),
                );
                let serde = serde_json::from_str::<serde_json::Value>(&text);
                match parse(&text) {
                    Ok(_) => assert!(serde.is_ok(), "{levels} in {spot}"),
                    Err(err) => {
                        assert!(serde.is_err(), "{levels} in {spot}: {err}");
                        assert_eq!(err.kind(), ParseErrorKind::Syntax, "{levels} in {spot}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_key_repeated_anywhere_is_ambiguous() {
        for (spot, value) in [
            (UNREAD_SPOTS[0], r#"{"k":1,"k":2}"#),
            (UNREAD_SPOTS[1], r#"{"a":1,"b":[{"c":1,"c":1}]}"#),
            (UNREAD_SPOTS[1], r#"{"a":1,"\u0061":2}"#),
            (UNREAD_SPOTS[2], r#"1,"x-extra":2"#),
            (UNREAD_SPOTS[4], r#"1,"data":2"#),
            (UNREAD_SPOTS[5], r#"1,"cursor":2"#),
            (UNREAD_SPOTS[6], r#"1,"icons":2"#),
            (UNREAD_SPOTS[7], r#"1,"x":2"#),
        ] {
            let text = with(spot, value);
            let err = parse(&text).unwrap_err();
            assert_eq!(err.kind(), ParseErrorKind::AmbiguousKey, "{text}: {err}");
            assert_eq!(err.code(), -32600);
            assert!(!err.message().contains('\u{1}'), "{err}");
        }
        // Past the inline slots, repeats are still found, escaped or not.
        let mut keys: Vec<String> = (0..40).map(|i| format!(r#""k{i}":{i}"#)).collect();
        keys.push(r#""k\u0033\u0030":0"#.into());
        let text = with(UNREAD_SPOTS[1], &format!("{{{}}}", keys.join(",")));
        assert_eq!(
            parse(&text).unwrap_err().kind(),
            ParseErrorKind::AmbiguousKey
        );
        keys.pop();
        let text = with(UNREAD_SPOTS[1], &format!("{{{}}}", keys.join(",")));
        assert!(parse(&text).is_ok());
    }

    #[test]
    fn look_alikes_of_decisive_keys_are_ambiguous() {
        for fields in [
            r#""method":"tools/call","Method":"x","params":{"name":"a"}"#,
            r#""method":"tools/call","METHOD":"x","params":{"name":"a"}"#,
            r#""method":"tools/call","method\u0000":"x","params":{"name":"a"}"#,
            r#""method":"tools/call","params":{"name":"a"},"PARAMS":{}"#,
            r#""method":"tools/call","params":{"name":"a"},"Id":2"#,
            r#""method":"tools/call","params":{"name":"a","Name":"b"}"#,
            r#""method":"tools/call","params":{"name":"a","name\u0000\u0000":"b"}"#,
            r#""method":"tools/call","params":{"name":"a","Arguments":{}}"#,
            r#""method":"tools/call","params":{"name":"a","_Meta":{}}"#,
            r#""method":"resources/read","params":{"uri":"a","URI":"b"}"#,
            r#""method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p","nAme":"q"}}"#,
        ] {
            let text = format!(r#"{{"jsonrpc":"2.0","id":1,{fields}}}"#);
            let err = parse(&text).unwrap_err();
            assert_eq!(err.kind(), ParseErrorKind::AmbiguousKey, "{text}: {err}");
            assert_eq!(err.id(), Some(&RequestId::Number(1)), "{text}");
        }
        // Exact keys where they mean nothing, and look-alikes inside values the edge does not
        // read (a tool's own arguments, `_meta`), are fine.
        for fields in [
            r#""method":"tools/call","params":{"name":"a","arguments":{"Name":1,"name":2,"ID":3}}"#,
            r#""method":"x","name":"top","uri":"u","params":{"id":1,"method":2}"#,
            r#""method":"x","params":{"_meta":{"Name":1,"io.modelcontextprotocol/clientInfo":{"NAME":"n"}}}"#,
        ] {
            let text = format!(r#"{{"jsonrpc":"2.0","id":1,{fields}}}"#);
            assert!(parse(&text).is_ok(), "{text}");
        }
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
