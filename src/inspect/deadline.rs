//! The time budget of a POST body: a total budget and a minimum average rate.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

/// How long a POST body may take to arrive, as configured on
/// [`InspectLayer`](super::InspectLayer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BodyBudget {
    /// The whole body must arrive within this time.
    pub(super) total: Option<Duration>,
    /// After `grace`, at least this many bytes per second on average (0: no minimum).
    pub(super) min_bytes_per_second: u64,
    /// The time before the minimum rate applies.
    pub(super) grace: Duration,
}

impl BodyBudget {
    /// The deadline for a body that started at `started` and has `received` bytes so far: the
    /// total budget, or the moment its average rate since `started + grace` falls below the
    /// minimum, whichever comes first. `None` when neither limit is set.
    fn deadline(&self, started: Instant, received: usize) -> Option<Instant> {
        let total = self.total.map(|total| started + total);
        let rate = (self.min_bytes_per_second > 0).then(|| {
            let nanos = received as u128 * 1_000_000_000 / u128::from(self.min_bytes_per_second);
            let earned = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            started + self.grace.saturating_add(earned)
        });
        match (total, rate) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

pin_project! {
    /// The timer of one body. Armed only the first time the body is not ready, so a body that
    /// is already there (the common case) never touches the clock or the timer wheel; it fires
    /// at most once per deadline, and the rate deadline is only moved when it fires.
    pub(super) struct BodyTimer {
        budget: BodyBudget,
        #[pin]
        state: Armed,
    }
}

pin_project! {
    #[project = ArmedProj]
    enum Armed {
        Idle,
        Running {
            started: Instant,
            #[pin]
            sleep: Sleep,
        },
        Never,
    }
}

impl BodyTimer {
    pub(super) fn new(budget: BodyBudget) -> Self {
        BodyTimer {
            budget,
            state: Armed::Idle,
        }
    }

    /// Called when the body is pending with `received` bytes so far: `Ready` once the body
    /// is out of time, `Pending` (with the waker registered) while it is within its budget.
    pub(super) fn poll_expired(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        received: usize,
    ) -> Poll<()> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                ArmedProj::Idle => {
                    let started = Instant::now();
                    match this.budget.deadline(started, 0) {
                        Some(deadline) => this.state.set(Armed::Running {
                            started,
                            sleep: tokio::time::sleep_until(deadline),
                        }),
                        None => this.state.set(Armed::Never),
                    }
                }
                ArmedProj::Running { started, mut sleep } => {
                    ready!(sleep.as_mut().poll(cx));
                    // The rate deadline moves with every byte received since it was set.
                    match this.budget.deadline(*started, received) {
                        Some(next) if next > Instant::now() => sleep.reset(next),
                        _ => return Poll::Ready(()),
                    }
                }
                ArmedProj::Never => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use futures::StreamExt;
    use http::{Request, Response, StatusCode};
    use http_body::Frame;
    use http_body_util::{BodyExt, Full, StreamBody};
    use tower::{ServiceBuilder, ServiceExt};

    use super::*;
    use crate::error::{Reason, Rejection};
    use crate::inspect::InspectLayer;

    const SECOND: Duration = Duration::from_secs(1);
    const CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;

    type Chunks = futures::stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>;

    /// Sends `chunks`, each after `gap`, then stalls forever if `stall`.
    fn trickle(chunks: Vec<&'static [u8]>, gap: Duration, stall: bool) -> Chunks {
        let sent = futures::stream::iter(chunks).then(move |chunk| async move {
            tokio::time::sleep(gap).await;
            Ok(Frame::data(Bytes::from_static(chunk)))
        });
        if stall {
            sent.chain(futures::stream::pending()).boxed()
        } else {
            sent.boxed()
        }
    }

    /// POSTs `body` through `layer` to a service that answers 200 with the body it got.
    async fn post(layer: InspectLayer, body: Chunks) -> (Response<Bytes>, Duration) {
        let service =
            ServiceBuilder::new()
                .layer(layer)
                .service_fn(|request: Request<_>| async move {
                    let body = BodyExt::collect(request.into_body()).await?.to_bytes();
                    Ok::<_, Infallible>(Response::new(Full::new(body)))
                });
        let request = Request::post("/mcp")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(StreamBody::new(body))
            .unwrap();
        let started = Instant::now();
        let response = service.oneshot(request).await.unwrap();
        let elapsed = started.elapsed();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (Response::from_parts(parts, body), elapsed)
    }

    fn assert_timed_out(response: &Response<Bytes>) {
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(response.headers()["connection"], "close");
        let rejection = response.extensions().get::<Rejection>().unwrap();
        assert_eq!(rejection.reason(), Reason::BodyTimeout);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["jsonrpc"], "2.0");
        assert_eq!(body["error"]["code"], -32600);
    }

    #[tokio::test(start_paused = true)]
    async fn stalled_body_gets_408_once_the_rate_grace_is_over() {
        let body = trickle(vec![&CALL.as_bytes()[..1]], Duration::ZERO, true);
        let (response, elapsed) = post(InspectLayer::new(), body).await;
        assert_timed_out(&response);
        // 2 s of grace, plus 1 ms for the one byte at 1 KiB/s.
        assert!(elapsed >= 2 * SECOND && elapsed < 3 * SECOND, "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn body_above_the_rate_still_gets_408_at_the_total_budget() {
        let layer = InspectLayer::new()
            .body_timeout(5 * SECOND)
            .min_body_rate(4, SECOND);
        // 8 bytes a second, forever: above the rate, never done.
        let body = trickle(vec![b"{\"jsonrp"; 100], SECOND, true);
        let (response, elapsed) = post(layer, body).await;
        assert_timed_out(&response);
        assert_eq!(elapsed, 5 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_body_within_its_budget_is_served_whole() {
        let layer = InspectLayer::new()
            .body_timeout(30 * SECOND)
            .min_body_rate(4, SECOND);
        let chunks: Vec<&'static [u8]> = CALL.as_bytes().chunks(8).collect();
        let count = chunks.len() as u32;
        let (response, elapsed) = post(layer, trickle(chunks, SECOND, false)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.body(), CALL.as_bytes());
        assert_eq!(elapsed, count * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn without_budgets_a_stalled_body_is_waited_for() {
        let layer = InspectLayer::new()
            .body_timeout(None)
            .min_body_rate(0, SECOND);
        let body = trickle(vec![&CALL.as_bytes()[..1]], Duration::ZERO, true);
        let outcome = tokio::time::timeout(3600 * SECOND, post(layer, body)).await;
        assert!(outcome.is_err(), "no budget, no 408");
    }

    #[tokio::test]
    async fn body_already_there_never_arms_the_timer() {
        // No paused clock and a zero budget: only a body that is pending would time out.
        let layer = InspectLayer::new().body_timeout(Duration::ZERO);
        let body = trickle(vec![CALL.as_bytes()], Duration::ZERO, false);
        let (response, _) = post(layer, body).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_is_the_earlier_of_total_and_rate() {
        let budget = BodyBudget {
            total: Some(10 * SECOND),
            min_bytes_per_second: 1024,
            grace: 2 * SECOND,
        };
        let t0 = Instant::now();
        assert_eq!(budget.deadline(t0, 0), Some(t0 + 2 * SECOND));
        assert_eq!(budget.deadline(t0, 2048), Some(t0 + 4 * SECOND));
        assert_eq!(budget.deadline(t0, 1 << 20), Some(t0 + 10 * SECOND));
        let total_only = BodyBudget {
            min_bytes_per_second: 0,
            ..budget
        };
        assert_eq!(total_only.deadline(t0, 0), Some(t0 + 10 * SECOND));
        let none = BodyBudget {
            total: None,
            ..total_only
        };
        assert_eq!(none.deadline(t0, 0), None);
    }
}
