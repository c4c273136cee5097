use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tower_layer::Layer;

use super::{DEFAULT_GRACE, DEFAULT_HEARTBEAT, DEFAULT_RETRY, Drain, Intermediary, Sse};

/// Makes `text/event-stream` responses survive proxies; see the [module docs](super).
///
/// Plain configuration: cheap to clone (the only shared part is the optional [`Drain`]).
#[derive(Debug, Clone)]
pub struct SseLayer {
    pub(super) heartbeat: Option<Duration>,
    pub(super) first_byte: bool,
    pub(super) max_age: Option<Duration>,
    pub(super) grace: Duration,
    pub(super) retry: Duration,
    pub(super) drain: Option<Drain>,
}

/// What each stream needs from the configuration (shared by all streams of a service).
#[derive(Debug)]
pub(super) struct Config {
    pub(super) heartbeat: Option<Duration>,
    pub(super) first_byte: bool,
    pub(super) max_age: Option<Duration>,
    pub(super) grace: Duration,
    /// `retry: <ms>\n\n`, written once.
    pub(super) retry_frame: Bytes,
    pub(super) drain: Option<Drain>,
}

impl SseLayer {
    /// Anti-buffering headers, and a heartbeat after 15 s of quiet (as rmcp's default). No
    /// first-byte comment, no maximum age, no drain handle.
    pub fn new() -> Self {
        SseLayer {
            heartbeat: Some(DEFAULT_HEARTBEAT),
            first_byte: false,
            max_age: None,
            grace: DEFAULT_GRACE,
            retry: DEFAULT_RETRY,
            drain: None,
        }
    }

    /// Writes a heartbeat comment (`: keep-alive`) after `idle` without any byte on the
    /// stream (from the server or from the layer), at an event boundary only.
    ///
    /// Pick it below the shortest idle timeout between you and your clients, or use
    /// [`SseLayer::behind`].
    pub fn heartbeat(mut self, idle: Duration) -> Self {
        self.heartbeat = Some(idle);
        self
    }

    /// No heartbeat comments.
    pub fn no_heartbeat(mut self) -> Self {
        self.heartbeat = None;
        self
    }

    /// Fits the heartbeat to an intermediary's idle limit: the heartbeat interval becomes the
    /// smaller of the current one and [`Intermediary::heartbeat`]. Call it once per hop
    /// (`.behind(Intermediary::Cloudflare).behind(Intermediary::Nginx)`). For
    /// [`Intermediary::Heroku`] it also turns the first-byte comment on.
    pub fn behind(mut self, intermediary: Intermediary) -> Self {
        let fit = intermediary.heartbeat();
        self.heartbeat = Some(self.heartbeat.map_or(fit, |current| current.min(fit)));
        self.first_byte |= intermediary.needs_first_byte();
        self
    }

    /// Writes a comment (`: stream open`) as soon as a stream opens, before the server's first
    /// event, for intermediaries that hold the response headers until a body byte arrives.
    pub fn first_byte(mut self, enabled: bool) -> Self {
        self.first_byte = enabled;
        self
    }

    /// Ends every stream after `age`, as a [`Drain`] would, so long-lived streams (GET
    /// streams, `subscriptions/listen`) move to fresh replicas over time.
    pub fn max_stream_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// How long a draining stream that cannot be resumed may run on before it is closed
    /// (default 30 s); also the longest a resumable stream waits for an event boundary.
    pub fn drain_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The `retry:` value sent to resumable streams before they are closed (default 3 s,
    /// rmcp's `sse_retry`).
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = retry;
        self
    }

    /// Attaches the streams to a [`Drain`] handle. When it [starts](Drain::start):
    ///
    /// - a 2025-11-25 stream whose events gave the client an id to resume from (R20) gets a
    ///   `retry: <ms>` line at its next event boundary, then ends; the client waits that
    ///   long and resumes with `Last-Event-ID`, on a healthy replica;
    /// - any other stream (older versions, 2026-07-28 where closing means cancelling, or no
    ///   event id yet) runs on until it ends by itself, for at most the
    ///   [grace period](SseLayer::drain_grace), then is closed.
    pub fn drain(mut self, drain: Drain) -> Self {
        self.drain = Some(drain);
        self
    }

    pub(super) fn config(&self) -> Config {
        let ms = u64::try_from(self.retry.as_millis()).unwrap_or(u64::MAX);
        Config {
            heartbeat: self.heartbeat.filter(|d| !d.is_zero()),
            first_byte: self.first_byte,
            max_age: self.max_age,
            grace: self.grace,
            retry_frame: Bytes::from(format!("retry: {ms}\n\n")),
            drain: self.drain.clone(),
        }
    }
}

impl Default for SseLayer {
    fn default() -> Self {
        SseLayer::new()
    }
}

impl<S> Layer<S> for SseLayer {
    type Service = Sse<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Sse {
            inner,
            config: Arc::new(self.config()),
        }
    }
}
