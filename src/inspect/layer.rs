use tower_layer::Layer;

use super::{DEFAULT_MAX_BODY_BYTES, Inspect};

/// Classifies MCP requests and reads POST bodies once; see the [module docs](super).
#[derive(Debug, Clone, Copy)]
pub struct InspectLayer {
    pub(crate) max_body_bytes: usize,
}

impl InspectLayer {
    /// An inspect layer with the default 4 MiB body limit.
    pub fn new() -> Self {
        InspectLayer {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Sets the largest POST body accepted; larger bodies get `413 Payload Too Large`.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }
}

impl Default for InspectLayer {
    fn default() -> Self {
        InspectLayer::new()
    }
}

impl<S> Layer<S> for InspectLayer {
    type Service = Inspect<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Inspect {
            inner,
            config: *self,
        }
    }
}
