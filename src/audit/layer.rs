use std::net::SocketAddr;
use std::sync::Arc;

use http::Extensions;
use tower_layer::Layer;

use super::redact::Capture;
use super::service::Audit;
use super::sink::AuditSink;
use crate::context::PeerAddrs;

/// The default bound on the copy of a JSON response kept to read its outcome: 64 KiB.
pub const DEFAULT_INSPECT_BYTES: usize = 64 * 1024;

/// Emits one [`AuditEvent`](super::AuditEvent) per MCP message; see the [module docs](super).
///
/// Cheap to clone: the sink and the configuration are shared.
pub struct AuditLayer<K> {
    pub(crate) sink: Arc<K>,
    pub(crate) config: Arc<Config>,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) inspect_bytes: usize,
    pub(crate) capture: Option<Capture>,
    pub(crate) peer_addr: PeerAddrs,
    pub(crate) echo_request_id: bool,
    pub(crate) spans: bool,
    /// Spans straight to an OpenTelemetry tracer instead of `tracing` spans.
    #[cfg(feature = "otel")]
    pub(crate) otel: Option<crate::observe::OtelSpans>,
}

impl<K: AuditSink> AuditLayer<K> {
    /// An audit layer sending events to `sink`.
    pub fn new(sink: K) -> Self {
        AuditLayer {
            sink: Arc::new(sink),
            config: Arc::new(Config {
                inspect_bytes: DEFAULT_INSPECT_BYTES,
                capture: None,
                peer_addr: PeerAddrs::default(),
                echo_request_id: true,
                spans: true,
                #[cfg(feature = "otel")]
                otel: None,
            }),
        }
    }
}

impl<K> AuditLayer<K> {
    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Sets the bound on the copy of a JSON response kept to read its outcome (default
    /// [`DEFAULT_INSPECT_BYTES`]). A larger response still passes through untouched; its
    /// event's outcome is then [`Unknown`](super::Outcome::Unknown) unless the status tells.
    pub fn inspect_bytes(mut self, limit: usize) -> Self {
        self.config_mut().inspect_bytes = limit;
        self
    }

    /// Turns on capture of tool arguments and/or results (off by default; see [`Capture`]).
    pub fn capture(mut self, capture: Capture) -> Self {
        self.config_mut().capture = Some(capture);
        self
    }

    /// How to find the peer address in the request extensions. The default
    /// ([`PeerAddrs::extension`]) looks for a [`PeerAddr`](crate::context::PeerAddr), then a
    /// plain `SocketAddr`; with axum, use its `ConnectInfo`:
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use axum::extract::ConnectInfo;
    /// use mcp_edge::audit::{AuditLayer, TracingSink};
    ///
    /// let layer = AuditLayer::new(TracingSink::new())
    ///     .peer_addr(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0));
    /// # let _ = layer;
    /// ```
    ///
    /// Shorthand for [`peer_addrs`](AuditLayer::peer_addrs)`(`[`PeerAddrs::with`]`(find))`.
    /// The client address recorded is the one a [`Guard`](crate::guard::Guard) derived (its
    /// trusted proxies honoured) when one ran, else this peer's.
    pub fn peer_addr<F>(self, find: F) -> Self
    where
        F: Fn(&Extensions) -> Option<SocketAddr> + Send + Sync + 'static,
    {
        self.peer_addrs(PeerAddrs::with(find))
    }

    /// Where to find the connecting peer's address: the same [`PeerAddrs`] value the guard
    /// and the gateway upstream take.
    pub fn peer_addrs(mut self, peers: PeerAddrs) -> Self {
        self.config_mut().peer_addr = peers;
        self
    }

    /// Whether to set `x-request-id` on responses that lack it (default `true`). A request
    /// without a usable `x-request-id` always gets a generated one, so the layers and the
    /// service inside see the id audit records.
    pub fn echo_request_id(mut self, on: bool) -> Self {
        self.config_mut().echo_request_id = on;
        self
    }

    /// Whether to open a `tracing` span per MCP message (default `true`; see
    /// [`observe`](crate::observe) for the names and attributes). With no subscriber
    /// interested in target `mcp_edge::span` at `DEBUG`, a span costs one cached level check.
    pub fn spans(mut self, on: bool) -> Self {
        self.config_mut().spans = on;
        self
    }

    /// Hands each message's span straight to an OpenTelemetry tracer when its outcome is
    /// known, instead of opening a `tracing` span for `tracing-opentelemetry` to convert: the
    /// same spans (name, attributes, status, parent) for a fraction of the cost, sampled
    /// before any attribute is built (see [`OtelSpans`](crate::observe::OtelSpans)). No
    /// `tracing` span is opened then; [`spans(false)`](AuditLayer::spans) turns both off.
    #[cfg(feature = "otel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
    pub fn otel_spans(mut self, spans: crate::observe::OtelSpans) -> Self {
        self.config_mut().otel = Some(spans);
        self
    }
}

impl<K> Clone for AuditLayer<K> {
    fn clone(&self) -> Self {
        AuditLayer {
            sink: Arc::clone(&self.sink),
            config: Arc::clone(&self.config),
        }
    }
}

impl<K> std::fmt::Debug for AuditLayer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLayer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S, K> Layer<S> for AuditLayer<K> {
    type Service = Audit<S, K>;

    fn layer(&self, inner: S) -> Self::Service {
        Audit {
            inner,
            sink: Arc::clone(&self.sink),
            config: Arc::clone(&self.config),
        }
    }
}
