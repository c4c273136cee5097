//! Classifying one HTTP request: era, protocol version and body (SPEC R33–R42, §L.1, §L.6).

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, Method};

use super::header::{self, MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION};
use super::jsonrpc::{RequestId, code};
use super::message::{Body, McpMessage, MessageKind, ParseError, Target};
use super::version::{Era, ProtocolVersion, UnknownVersion};

/// What the edge knows of one MCP HTTP request, parsed once by the inspect layer and shared
/// with every layer inside it (and outside it, through the response extensions) as
/// `Arc<McpRequest>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpRequest {
    era: Era,
    version: ProtocolVersion,
    /// What the first `MCP-Protocol-Version` value names, read once here for every layer.
    header_version: Option<ProtocolVersion>,
    body: Option<Body>,
}

impl McpRequest {
    /// Classifies a request from its method, headers and (for POST) its whole body.
    ///
    /// `body` is `None` for requests whose body is not read (GET, DELETE).
    pub fn classify(
        method: &Method,
        headers: &HeaderMap,
        body: Option<&Bytes>,
    ) -> Result<McpRequest, ProtocolError> {
        let (header_version, first_header_version) = header_version(headers);
        let Some(bytes) = body.filter(|_| method == Method::POST) else {
            if let Some(name) = header::conflicting(headers, None) {
                return Err(ProtocolError::conflicting_header(name, None));
            }
            let version = match header_version {
                None => ProtocolVersion::DEFAULT_LEGACY,
                Some(Ok(v)) => v,
                Some(Err(unknown)) => return Err(ProtocolError::unsupported(unknown, None)),
            };
            return Ok(McpRequest {
                era: version.era(),
                version,
                header_version: first_header_version,
                body: None,
            });
        };

        let body = Body::parse(bytes).map_err(ProtocolError::parse)?;
        let first = &body.messages()[0];
        let initialize = body.messages().iter().any(McpMessage::is_initialize);

        // Two copies of an MCP header that disagree: an intermediary reading one and the
        // server the other would see different requests. On `initialize` the version header
        // does not count: the body's version supersedes it.
        let version_header = MCP_PROTOCOL_VERSION;
        let except = initialize.then_some(&version_header);
        if let Some(name) = header::conflicting(headers, except) {
            return Err(ProtocolError::conflicting_header(name, first.id().cloned()));
        }

        // `initialize` selects the legacy era whatever the header says (R33, §L.6): its
        // version travels in the body and the server negotiates it.
        if initialize {
            let version = first
                .initialize_version()
                .and_then(|v| v.parse().ok())
                .unwrap_or(ProtocolVersion::V2025_11_25)
                .min(ProtocolVersion::V2025_11_25);
            let request = McpRequest {
                era: Era::Legacy,
                version,
                header_version: first_header_version,
                body: Some(body),
            };
            return Ok(request);
        }

        let id = first.id().cloned();
        let meta_version = match first.kind() {
            MessageKind::Request => first.meta().and_then(|m| m.protocol_version.as_deref()),
            _ => None,
        };
        let version = match (meta_version, header_version) {
            (Some(meta), header) => {
                let Some(raw) = raw_header(headers) else {
                    return Err(ProtocolError::header_mismatch(
                        "request _meta protocolVersion requires the MCP-Protocol-Version header",
                        id,
                    ));
                };
                if raw != meta {
                    return Err(ProtocolError::header_mismatch(
                        format!(
                            "MCP-Protocol-Version header ({}) does not match request _meta protocolVersion ({})",
                            echo(raw),
                            echo(meta)
                        ),
                        id,
                    ));
                }
                match header {
                    Some(Ok(v)) => v,
                    _ => {
                        return Err(ProtocolError::unsupported(
                            meta.parse::<ProtocolVersion>().unwrap_err(),
                            id,
                        ));
                    }
                }
            }
            (None, None) => ProtocolVersion::DEFAULT_LEGACY,
            (None, Some(Ok(v))) => {
                if v.era() == Era::Modern && first.kind() == MessageKind::Request {
                    return Err(ProtocolError::new(
                        ProtocolErrorKind::MissingMeta,
                        code::INVALID_PARAMS,
                        "Invalid params: request _meta is missing io.modelcontextprotocol/protocolVersion",
                        id,
                    ));
                }
                v
            }
            (None, Some(Err(unknown))) => return Err(ProtocolError::unsupported(unknown, id)),
        };

        if body.is_batch() && !version.allows_batch() {
            return Err(ProtocolError::new(
                ProtocolErrorKind::BatchNotAllowed,
                code::INVALID_REQUEST,
                format!("JSON-RPC batches are not allowed in protocol version {version}"),
                None,
            ));
        }
        if version.era() == Era::Modern {
            check_standard_headers(headers, first)?;
        }
        Ok(McpRequest {
            era: version.era(),
            version,
            header_version: first_header_version,
            body: Some(body),
        })
    }

    /// The request's era.
    pub fn era(&self) -> Era {
        self.era
    }

    /// The request's protocol version: the body's for `initialize` and 2026-07-28 requests,
    /// else the header's, else 2025-03-26 (R34).
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The version the request's `MCP-Protocol-Version` header names, read from its first
    /// value (the first known entry of a comma list), when that names a known one. Unlike
    /// [`version`](Self::version), never a default nor the body's version.
    pub fn header_version(&self) -> Option<ProtocolVersion> {
        self.header_version
    }

    /// The parsed POST body; `None` for GET and DELETE.
    pub fn body(&self) -> Option<&Body> {
        self.body.as_ref()
    }

    /// The body's messages (empty for GET and DELETE).
    pub fn messages(&self) -> &[McpMessage] {
        self.body.as_ref().map_or(&[], Body::messages)
    }

    /// The single message of a non-batch POST, or the first of a batch.
    pub fn message(&self) -> Option<&McpMessage> {
        self.messages().first()
    }

    /// Whether the body was a 2025-03-26 batch.
    pub fn is_batch(&self) -> bool {
        self.body.as_ref().is_some_and(Body::is_batch)
    }

    /// The method of the (first) message.
    pub fn method(&self) -> Option<&str> {
        self.message()?.method()
    }

    /// The JSON-RPC id of the (first) message.
    pub fn id(&self) -> Option<&RequestId> {
        self.message()?.id()
    }

    /// The target of the (first) message.
    pub fn target(&self) -> Option<&Target> {
        self.message()?.target()
    }

    /// Whether this POST carries an `initialize` request.
    pub fn is_initialize(&self) -> bool {
        self.messages().iter().any(McpMessage::is_initialize)
    }

    /// Removes from `headers` what the body supersedes, so the server reads the request as the
    /// edge read it: on `initialize`, `MCP-Protocol-Version`. The version is negotiated from
    /// the body (R33), and a server that checks the header against the body would refuse the
    /// handshake with a 400 that the client reads as "old transport" (R45). A 2026-07-28
    /// `initialize` (a method that era removed) keeps its header: it goes to the server
    /// unjudged, which answers it as that era's unknown method.
    pub fn remove_superseded_headers(&self, headers: &mut HeaderMap) {
        let modern_meta = |m: &McpMessage| {
            m.meta()
                .and_then(|meta| {
                    meta.protocol_version
                        .as_deref()?
                        .parse::<ProtocolVersion>()
                        .ok()
                })
                .is_some_and(|v| v.era() == Era::Modern)
        };
        if self.is_initialize() && !self.messages().iter().any(modern_meta) {
            headers.remove(MCP_PROTOCOL_VERSION);
        }
    }

    /// Whether every message is a notification or a response, so a server answers `202` (R6).
    pub fn is_notification_or_response(&self) -> bool {
        !self.messages().is_empty()
            && self
                .messages()
                .iter()
                .all(|m| m.kind() != MessageKind::Request)
    }
}

fn raw_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(MCP_PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The version the `MCP-Protocol-Version` values name (the first known one, else the first
/// error; `None` without the header), and what its first value alone names.
fn header_version(
    headers: &HeaderMap,
) -> (
    Option<Result<ProtocolVersion, UnknownVersion>>,
    Option<ProtocolVersion>,
) {
    let mut first_err = None;
    for (index, value) in headers.get_all(MCP_PROTOCOL_VERSION).iter().enumerate() {
        match ProtocolVersion::from_header(value.as_bytes()) {
            Ok(v) => return (Some(Ok(v)), (index == 0).then_some(v)),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    (first_err.map(Err), None)
}

/// 2026-07-28 methods whose `Mcp-Name` header is required, and so checked (R38, R41). Methods
/// the era does not define (`resources/subscribe`, ...) go to the server unjudged.
fn name_header_required(method: &str) -> bool {
    matches!(
        method,
        "tools/call"
            | "prompts/get"
            | "resources/read"
            | "tasks/get"
            | "tasks/update"
            | "tasks/cancel"
    )
}

/// How many bytes of a client-sent value a refusal message repeats.
const ECHO_CAP: usize = 64;

/// A client-sent value as a refusal message repeats it: whole when short, else its first
/// [`ECHO_CAP`] bytes (cut on a char boundary) and `…`, so no refusal body or audit record
/// grows with what the client sent.
fn echo(value: &str) -> Cow<'_, str> {
    if value.len() <= ECHO_CAP {
        return Cow::Borrowed(value);
    }
    let mut end = ECHO_CAP;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &value[..end]))
}

/// Checks `Mcp-Method` and `Mcp-Name` against the body (R38–R41).
fn check_standard_headers(headers: &HeaderMap, message: &McpMessage) -> Result<(), ProtocolError> {
    if message.kind() != MessageKind::Request {
        return Ok(());
    }
    let id = message.id().cloned();
    let method = message.method().unwrap_or_default();
    let mismatch = |text: String| ProtocolError::header_mismatch(text, id.clone());
    let decoded = |name: &http::HeaderName| -> Result<Option<Cow<'_, str>>, ProtocolError> {
        match header::single(headers, name) {
            Err(_) => Err(mismatch(format!("duplicate {name} header"))),
            Ok(None) => Ok(None),
            Ok(Some(value)) => header::decode_value(value.as_bytes())
                .map(Some)
                .ok_or_else(|| mismatch(format!("{name} header is not a valid value"))),
        }
    };
    match decoded(&MCP_METHOD)? {
        None => return Err(mismatch("missing required Mcp-Method header".into())),
        Some(value) if value != method => {
            return Err(mismatch(format!(
                "Mcp-Method header `{}` does not match body method `{}`",
                echo(&value),
                echo(method)
            )));
        }
        Some(_) => {}
    }
    if let Some(target) = message.target().filter(|_| name_header_required(method)) {
        match decoded(&MCP_NAME)? {
            None => {
                return Err(mismatch(format!(
                    "missing required Mcp-Name header for `{}`",
                    echo(method)
                )));
            }
            Some(value) if value != target.name() => {
                return Err(mismatch(format!(
                    "Mcp-Name header `{}` does not match body value `{}`",
                    echo(&value),
                    echo(target.name())
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Why a request breaks the protocol. Always answered `400 Bad Request`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtocolError {
    kind: ProtocolErrorKind,
    code: i64,
    message: Cow<'static, str>,
    id: Option<RequestId>,
    data: Option<serde_json::Value>,
}

/// The class of a [`ProtocolError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProtocolErrorKind {
    /// The body is not JSON (`-32700`).
    Parse,
    /// The body is not a valid JSON-RPC message (`-32600`).
    InvalidMessage,
    /// A field the edge reads in `params` has the wrong shape (`-32602`).
    InvalidParams,
    /// A batch in a version that has none (`-32600`, R5).
    BatchNotAllowed,
    /// A 2026-07-28 header is missing, malformed or does not match the body (`-32020`, R36, R41).
    HeaderMismatch,
    /// An unknown or unsupported protocol version (`-32022`, R35, R36).
    UnsupportedVersion,
    /// A 2026-07-28 request without its `_meta` protocol version (`-32602`).
    MissingMeta,
    /// A body another parser could read otherwise: a repeated key, or a case or NUL-suffixed
    /// variant of a key the edge decides on (`-32600`).
    AmbiguousKey,
    /// An MCP header sent more than once with different values (`-32000`, the SDKs' code for
    /// a malformed request head, R26).
    ConflictingHeader,
}

impl ProtocolErrorKind {
    /// A short machine-readable name, e.g. `"header_mismatch"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProtocolErrorKind::Parse => "parse_error",
            ProtocolErrorKind::InvalidMessage => "invalid_message",
            ProtocolErrorKind::InvalidParams => "invalid_params",
            ProtocolErrorKind::BatchNotAllowed => "batch_not_allowed",
            ProtocolErrorKind::HeaderMismatch => "header_mismatch",
            ProtocolErrorKind::UnsupportedVersion => "unsupported_protocol_version",
            ProtocolErrorKind::MissingMeta => "missing_meta",
            ProtocolErrorKind::AmbiguousKey => "ambiguous_key",
            ProtocolErrorKind::ConflictingHeader => "conflicting_header",
        }
    }
}

impl ProtocolError {
    fn new(
        kind: ProtocolErrorKind,
        code: i64,
        message: impl Into<Cow<'static, str>>,
        id: Option<RequestId>,
    ) -> Self {
        ProtocolError {
            kind,
            code,
            message: message.into(),
            id,
            data: None,
        }
    }

    fn parse(err: ParseError) -> Self {
        use super::message::ParseErrorKind as P;
        let kind = match err.kind() {
            P::Syntax => ProtocolErrorKind::Parse,
            P::InvalidRequest => ProtocolErrorKind::InvalidMessage,
            P::InvalidParams => ProtocolErrorKind::InvalidParams,
            P::AmbiguousKey => ProtocolErrorKind::AmbiguousKey,
        };
        let prefix = match err.kind() {
            P::Syntax => "Parse error",
            P::InvalidRequest | P::AmbiguousKey => "Invalid Request",
            P::InvalidParams => "Invalid params",
        };
        ProtocolError::new(
            kind,
            err.code(),
            format!("{prefix}: {}", err.message()),
            err.id().cloned(),
        )
    }

    fn header_mismatch(message: impl Into<Cow<'static, str>>, id: Option<RequestId>) -> Self {
        ProtocolError::new(
            ProtocolErrorKind::HeaderMismatch,
            code::HEADER_MISMATCH,
            message,
            id,
        )
    }

    fn conflicting_header(name: &http::HeaderName, id: Option<RequestId>) -> Self {
        ProtocolError::new(
            ProtocolErrorKind::ConflictingHeader,
            code::LEGACY_BAD_REQUEST,
            format!("Bad Request: {name} is sent more than once with different values"),
            id,
        )
    }

    fn unsupported(unknown: UnknownVersion, id: Option<RequestId>) -> Self {
        let supported: Vec<&str> = ProtocolVersion::ALL.iter().map(|v| v.as_str()).collect();
        let mut err = ProtocolError::new(
            ProtocolErrorKind::UnsupportedVersion,
            code::UNSUPPORTED_PROTOCOL_VERSION,
            format!(
                "Unsupported protocol version: {}",
                echo(unknown.requested())
            ),
            id,
        );
        err.data = Some(serde_json::json!({
            "supported": supported,
            "requested": echo(unknown.requested()),
        }));
        err
    }

    /// The class of error.
    pub fn kind(&self) -> ProtocolErrorKind {
        self.kind
    }
    /// The JSON-RPC error code.
    pub fn code(&self) -> i64 {
        self.code
    }
    /// A human-readable reason.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The request id, when it is known.
    pub fn id(&self) -> Option<&RequestId> {
        self.id.as_ref()
    }
    /// `error.data`, when the error has any (`supported` / `requested` for versions).
    pub fn data(&self) -> Option<&serde_json::Value> {
        self.data.as_ref()
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn post(pairs: &[(&str, &str)], body: &str) -> Result<McpRequest, ProtocolError> {
        McpRequest::classify(
            &Method::POST,
            &headers(pairs),
            Some(&Bytes::copy_from_slice(body.as_bytes())),
        )
    }

    /// The kind, JSON-RPC code and id of the refusal of a POST.
    fn refusal(pairs: &[(&str, &str)], body: &str) -> String {
        let err = post(pairs, body).unwrap_err();
        format!("{:?} {} {:?}", err.kind(), err.code(), err.id())
    }

    const MODERN_CALL: &str = r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

    #[test]
    fn legacy_without_header_is_2025_03_26() {
        let r = post(&[], r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
        assert_eq!(r.era(), Era::Legacy);
        assert_eq!(r.version(), ProtocolVersion::V2025_03_26);
        let r = post(
            &[("mcp-protocol-version", "2025-11-25, 2025-06-18")],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        )
        .unwrap();
        assert_eq!(r.version(), ProtocolVersion::V2025_11_25);
    }

    #[test]
    fn unknown_header_version_is_400_with_supported_list() {
        let err = post(
            &[("mcp-protocol-version", "2031-01-01")],
            r#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ProtocolErrorKind::UnsupportedVersion);
        assert_eq!(err.code(), -32022);
        assert_eq!(err.id(), Some(&RequestId::Number(9)));
        let data = err.data().unwrap();
        assert_eq!(data["requested"], "2031-01-01");
        assert!(
            data["supported"]
                .as_array()
                .unwrap()
                .contains(&"2026-07-28".into())
        );
    }

    #[test]
    fn initialize_is_never_refused_over_the_header() {
        for header in [
            "2031-01-01",
            "garbage",
            "2026-07-28",
            "2025-06-18, 2025-03-26",
        ] {
            let r = post(
                &[("mcp-protocol-version", header)],
                r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#,
            )
            .unwrap();
            assert_eq!(r.era(), Era::Legacy);
            assert_eq!(r.version(), ProtocolVersion::V2025_06_18);
            assert!(r.is_initialize());
        }
        // An unknown requested version is the server's to negotiate.
        let r = post(
            &[],
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2099-01-01"}}"#,
        )
        .unwrap();
        assert_eq!(r.era(), Era::Legacy);
    }

    #[test]
    fn modern_request_with_matching_headers() {
        let r = post(
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ],
            MODERN_CALL,
        )
        .unwrap();
        assert_eq!(r.era(), Era::Modern);
        assert_eq!(r.version(), ProtocolVersion::V2026_07_28);
        assert_eq!(r.target(), Some(&Target::Tool("echo".into())));
    }

    #[test]
    fn modern_header_values_are_trimmed_and_base64_decoded() {
        post(
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "  tools/call "),
                ("mcp-name", "=?base64?ZWNobw==?="),
            ],
            MODERN_CALL,
        )
        .unwrap();
    }

    #[test]
    fn modern_header_mismatches_are_32020_with_the_id() {
        let cases: [&[(&str, &str)]; 7] = [
            &[("mcp-method", "tools/call"), ("mcp-name", "echo")],
            &[
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ],
            &[("mcp-protocol-version", "2026-07-28"), ("mcp-name", "echo")],
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/list"),
                ("mcp-name", "echo"),
            ],
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
            ],
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "other"),
            ],
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ],
        ];
        let expected = "HeaderMismatch -32020 Some(Number(4))";
        for pairs in cases {
            assert_eq!(refusal(pairs, MODERN_CALL), expected, "{pairs:?}");
        }
    }

    #[test]
    fn modern_header_without_meta_on_a_request_is_invalid_params() {
        let err = post(
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/list"),
            ],
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ProtocolErrorKind::MissingMeta);
        assert_eq!(err.code(), -32602);
        // A notification carries no per-request metadata: it passes.
        let r = post(
            &[("mcp-protocol-version", "2026-07-28")],
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#,
        )
        .unwrap();
        assert_eq!(r.era(), Era::Modern);
        assert!(r.is_notification_or_response());
    }

    #[test]
    fn modern_methods_the_era_removed_go_to_the_server_unjudged() {
        // The conformance suite's SEP-2575 probe: no uri, no Mcp-Name; the server answers 404.
        for method in ["resources/subscribe", "resources/unsubscribe"] {
            let r = post(
                &[
                    ("mcp-protocol-version", "2026-07-28"),
                    ("mcp-method", method),
                ],
                &format!(
                    r#"{{"jsonrpc":"2.0","id":500,"method":"{method}","params":{{"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#
                ),
            )
            .unwrap();
            assert_eq!(r.era(), Era::Modern);
            assert_eq!(r.method(), Some(method));
            assert_eq!(r.target(), None);
        }
        // Legacy still defines them: a missing uri stays invalid params.
        let err = post(
            &[("mcp-protocol-version", "2025-11-25")],
            r#"{"jsonrpc":"2.0","id":5,"method":"resources/subscribe","params":{}}"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), -32602);
    }

    #[test]
    fn unsupported_meta_version_is_32022() {
        let body = MODERN_CALL.replace("2026-07-28", "2027-01-01");
        let err = post(
            &[
                ("mcp-protocol-version", "2027-01-01"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ],
            &body,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ProtocolErrorKind::UnsupportedVersion);
        assert_eq!(err.id(), Some(&RequestId::Number(4)));
    }

    #[test]
    fn batches_only_in_2025_03_26() {
        let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#;
        let r = post(&[], batch).unwrap();
        assert!(r.is_batch());
        assert_eq!(r.messages().len(), 2);
        post(&[("mcp-protocol-version", "2025-03-26")], batch).unwrap();
        let err = post(&[("mcp-protocol-version", "2025-06-18")], batch).unwrap_err();
        assert_eq!(err.kind(), ProtocolErrorKind::BatchNotAllowed);
        assert_eq!(err.code(), -32600);
    }

    #[test]
    fn get_and_delete_take_the_header_version() {
        let bodiless = |method: &Method, version: Option<&str>| {
            let pairs: Vec<_> = version
                .map(|v| ("mcp-protocol-version", v))
                .into_iter()
                .collect();
            McpRequest::classify(method, &headers(&pairs), None)
        };
        let r = bodiless(&Method::GET, None).unwrap();
        assert_eq!(
            (r.era(), r.version()),
            (Era::Legacy, ProtocolVersion::V2025_03_26)
        );
        assert!(r.messages().is_empty());
        let r = bodiless(&Method::DELETE, Some("2025-11-25")).unwrap();
        assert_eq!(r.version(), ProtocolVersion::V2025_11_25);
        let r = bodiless(&Method::GET, Some("2026-07-28")).unwrap();
        assert_eq!(r.era(), Era::Modern);
        let err = bodiless(&Method::GET, Some("nope")).unwrap_err();
        assert_eq!(err.code(), -32022);
    }

    #[test]
    fn mcp_headers_repeated_with_different_values_are_refused() {
        let list = r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#;
        let conflicting: [&[(&str, &str)]; 5] = [
            &[
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-protocol-version", "2025-06-18"),
            ],
            &[("mcp-session-id", "a"), ("mcp-session-id", "b")],
            &[("last-event-id", "1"), ("last-event-id", "2")],
            &[("mcp-method", "tools/list"), ("mcp-method", "tools/call")],
            &[("mcp-param-region", "eu"), ("mcp-param-region", "us")],
        ];
        let expected = "ConflictingHeader -32000 Some(Number(3))";
        for pairs in conflicting {
            assert_eq!(refusal(pairs, list), expected, "{pairs:?}");
            let err = McpRequest::classify(&Method::GET, &headers(pairs), None).unwrap_err();
            assert_eq!(
                err.kind(),
                ProtocolErrorKind::ConflictingHeader,
                "{pairs:?}"
            );
        }
        // One value twice, or other headers repeated, say nothing contradictory.
        let consistent: [&[(&str, &str)]; 3] = [
            &[
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            &[("mcp-session-id", "a"), ("mcp-session-id", " a")],
            &[
                ("accept", "application/json"),
                ("accept", "text/event-stream"),
            ],
        ];
        for pairs in consistent {
            post(pairs, list).unwrap();
            McpRequest::classify(&Method::DELETE, &headers(pairs), None).unwrap();
        }
    }

    #[test]
    fn initialize_drops_its_version_header_and_ignores_its_copies() {
        let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#;
        let mut map = headers(&[
            ("mcp-protocol-version", "2025-06-18"),
            ("mcp-protocol-version", "junk"),
            ("mcp-session-id", "kept"),
        ]);
        let r = McpRequest::classify(
            &Method::POST,
            &map,
            Some(&Bytes::copy_from_slice(init.as_bytes())),
        )
        .unwrap();
        assert_eq!(r.version(), ProtocolVersion::V2025_11_25);
        r.remove_superseded_headers(&mut map);
        assert!(map.get(MCP_PROTOCOL_VERSION).is_none());
        assert_eq!(map.get("mcp-session-id").unwrap(), "kept");
        // Any other request keeps its header.
        let mut map = headers(&[("mcp-protocol-version", "2025-11-25")]);
        let r = McpRequest::classify(
            &Method::POST,
            &map,
            Some(&Bytes::from_static(
                br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            )),
        )
        .unwrap();
        r.remove_superseded_headers(&mut map);
        assert_eq!(map.get(MCP_PROTOCOL_VERSION).unwrap(), "2025-11-25");
    }

    #[test]
    fn ambiguous_bodies_are_invalid_requests() {
        for body in [
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/list","Method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"a","arguments":{"x":1,"x":2}}}"#,
        ] {
            let err = post(&[], body).unwrap_err();
            assert_eq!(err.kind(), ProtocolErrorKind::AmbiguousKey, "{body}");
            assert_eq!(err.code(), -32600);
            assert_eq!(err.id(), Some(&RequestId::Number(5)));
            assert!(err.message().starts_with("Invalid Request: "), "{err}");
        }
    }

    #[test]
    fn parse_errors_carry_their_codes() {
        assert_eq!(post(&[], "{").unwrap_err().code(), -32700);
        assert_eq!(
            post(&[], r#"{"id":1,"method":"x"}"#).unwrap_err().code(),
            -32600
        );
        assert_eq!(
            post(
                &[],
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#
            )
            .unwrap_err()
            .code(),
            -32602
        );
    }
}
