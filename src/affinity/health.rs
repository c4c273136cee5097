use std::future::Future;
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};

use super::Replica;
use super::set::{Backoff, ReplicaSet};

/// An active health check over a [`ReplicaSet`], started by
/// [`ReplicaSet::health_check`]; it stops when dropped.
///
/// Without one, the router learns that a replica is down from the traffic it sends (a
/// refused connection marks it down at once); with one, a replica is marked down within one
/// interval of its death even when no request reaches it, so new sessions and 2026-07-28
/// calls stop going there, and marked up within one interval of its return, so it takes new
/// sessions again.
#[derive(Debug)]
#[must_use = "the health check stops when dropped"]
pub struct HealthCheck {
    task: JoinHandle<()>,
}

impl Drop for HealthCheck {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<S: Send + Sync + 'static> ReplicaSet<S> {
    /// Probes every replica every `every` (all at once; `probe` should bound its own time,
    /// e.g. a TCP connect with a timeout shorter than `every`). A failed probe marks the
    /// replica down ([`ReplicaSet::mark_down`]: no new work, and its sessions answer 404 so
    /// their clients start over on a live replica, R28) for two intervals, renewed by each
    /// failed probe; a successful one marks it up ([`ReplicaSet::mark_up`]).
    ///
    /// A probe cannot tell a replica that lost its sessions from one that kept them (a
    /// restart with a shared session store): sessions are answered 404 only while the
    /// replica is down, and reach it again once it is up.
    ///
    /// Needs a Tokio runtime. Cancel safety: dropping the [`HealthCheck`] aborts the task and
    /// any probe in progress; the marks already made stay.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mcp_edge::Replica;
    /// use mcp_edge::affinity::ReplicaSet;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let replicas: ReplicaSet<()> = ReplicaSet::new();
    /// replicas.add(Replica::new("127.0.0.1:9"), ());
    /// let _check = replicas.health_check(Duration::from_millis(50), |replica: Replica| async move {
    ///     let connect = tokio::net::TcpStream::connect(replica.id().to_owned());
    ///     matches!(tokio::time::timeout(Duration::from_millis(40), connect).await, Ok(Ok(_)))
    /// });
    /// # }
    /// ```
    pub fn health_check<P, F>(&self, every: Duration, probe: P) -> HealthCheck
    where
        P: Fn(Replica) -> F + Send + 'static,
        F: Future<Output = bool> + Send + 'static,
    {
        let set = self.clone();
        let hold = every.saturating_mul(2);
        let backoff = Backoff {
            base: hold,
            max: hold,
        };
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let mut probes = JoinSet::new();
                for status in set.status() {
                    let replica = status.replica().clone();
                    let probing = probe(replica.clone());
                    probes.spawn(async move { (replica, probing.await) });
                }
                while let Some(Ok((replica, up))) = probes.join_next().await {
                    if up {
                        set.mark_up(replica.id());
                    } else {
                        set.mark_down(replica.id(), backoff);
                    }
                }
            }
        });
        HealthCheck { task }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failed_probes_mark_down_and_a_good_one_marks_up() {
        let set: ReplicaSet<()> = ReplicaSet::new();
        set.add(Replica::new("a"), ());
        set.add(Replica::new("b"), ());
        let a_up = Arc::new(AtomicBool::new(true));
        let probe_a = Arc::clone(&a_up);
        let check = set.health_check(Duration::from_millis(100), move |replica: Replica| {
            let up = replica.id() != "a" || probe_a.load(Ordering::SeqCst);
            async move { up }
        });
        let a = |set: &ReplicaSet<()>| set.status()[0].clone();
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!a(&set).is_down());
        a_up.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(a(&set).is_down() && a(&set).is_ejected());
        // Still down well past one hold period: each failed probe renews it.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(a(&set).is_down() && a(&set).is_ejected());
        for _ in 0..20 {
            assert_eq!(set.least_loaded_replica().unwrap().id(), "b");
        }
        a_up.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!a(&set).is_down() && !a(&set).is_ejected());
        assert!(!set.status()[1].is_down());
        drop(check);
    }
}
