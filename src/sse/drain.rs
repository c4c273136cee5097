//! [`Drain`]: ends SSE streams at an event boundary on shutdown.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Waker;

use tokio::sync::Notify;

/// A handle that tells every SSE stream of the [`SseLayer`](super::SseLayer)s it was given to
/// end, at its next event boundary, so that clients reconnect elsewhere.
///
/// Cheap to clone (an `Arc`). Typical use: pass a clone to [`SseLayer::drain`](super::SseLayer::drain),
/// call [`Drain::start`] from axum's graceful-shutdown signal, and the open SSE streams, which
/// would otherwise keep the server alive forever, end so that the shutdown can complete:
///
/// ```no_run
/// use mcp_edge::sse::{Drain, SseLayer};
/// # async fn run(app: axum::Router, listener: tokio::net::TcpListener) {
/// let drain = Drain::new();
/// let app = app.layer(SseLayer::new().drain(drain.clone()));
/// axum::serve(listener, app)
///     .with_graceful_shutdown(async move {
///         tokio::signal::ctrl_c().await.ok();
///         drain.start();
///     })
///     .await
///     .unwrap();
/// # }
/// ```
///
/// What each stream does is described in [`SseLayer::drain`](super::SseLayer::drain).
#[derive(Clone, Default)]
pub struct Drain {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    draining: AtomicBool,
    open: AtomicUsize,
    wakers: Mutex<Slots>,
    idle: Notify,
}

/// A small slab of the wakers of streams waiting on their inner body.
#[derive(Default)]
struct Slots {
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl fmt::Debug for Drain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain")
            .field("draining", &self.is_draining())
            .field("open_streams", &self.open_streams())
            .finish()
    }
}

impl Drain {
    /// A handle with no stream attached, not draining.
    pub fn new() -> Self {
        Drain::default()
    }

    /// Tells every open stream, and every stream opened from now on, to end. Idempotent.
    pub fn start(&self) {
        self.shared.draining.store(true, Ordering::SeqCst);
        let wakers: Vec<Waker> = {
            let mut slots = self.lock();
            slots.wakers.iter_mut().filter_map(Option::take).collect()
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// True once [`Drain::start`] has been called.
    pub fn is_draining(&self) -> bool {
        self.shared.draining.load(Ordering::Acquire)
    }

    /// How many SSE streams attached to this handle are open now.
    pub fn open_streams(&self) -> usize {
        self.shared.open.load(Ordering::Acquire)
    }

    /// Waits until no SSE stream attached to this handle is open.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future has no effect on the streams.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.shared.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.open_streams() == 0 {
                return;
            }
            notified.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // The slab holds no invariant a panic could break.
        self.shared
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Attaches a new stream.
    pub(super) fn register(&self) -> Registration {
        self.shared.open.fetch_add(1, Ordering::AcqRel);
        let slot = {
            let mut slots = self.lock();
            match slots.free.pop() {
                Some(slot) => slot,
                None => {
                    slots.wakers.push(None);
                    slots.wakers.len() - 1
                }
            }
        };
        Registration {
            drain: self.clone(),
            slot,
            waker: None,
        }
    }
}

/// One stream's place in a [`Drain`]; detaches on drop.
pub(super) struct Registration {
    drain: Drain,
    slot: usize,
    /// The waker last stored in the slab, to skip the lock when it has not changed.
    waker: Option<Waker>,
}

impl Registration {
    pub(super) fn is_draining(&self) -> bool {
        self.drain.is_draining()
    }

    /// Makes sure `waker` is woken when the drain starts. Locks only when the task's waker
    /// changed (normally once per stream).
    pub(super) fn watch(&mut self, waker: &Waker) {
        if self.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            return;
        }
        self.drain.lock().wakers[self.slot] = Some(waker.clone());
        self.waker = Some(waker.clone());
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        {
            let mut slots = self.drain.lock();
            slots.wakers[self.slot] = None;
            slots.free.push(self.slot);
        }
        if self.drain.shared.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.drain.shared.idle.notify_waiters();
        }
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn start_wakes_registered_streams_and_wait_idle_returns_when_all_are_gone() {
        let drain = Drain::new();
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counter));
        let mut a = drain.register();
        let mut b = drain.register();
        a.watch(&waker);
        b.watch(&waker);
        assert_eq!(drain.open_streams(), 2);
        drain.start();
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        assert!(a.is_draining());
        let waiter = tokio::spawn({
            let drain = drain.clone();
            async move { drain.wait_idle().await }
        });
        drop(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(b);
        waiter.await.unwrap();
        assert_eq!(drain.open_streams(), 0);
        // Slots are reused.
        let c = drain.register();
        assert!(c.slot < 2);
    }
}
