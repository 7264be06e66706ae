//! Periodic compaction of store history.
//!
//! Like kube-apiserver's compactor for etcd: every interval, compact to the revision recorded at
//! the previous tick, so at least one interval of history is always kept for watchers that
//! reconnect and for paginated lists that continue at an old revision.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{Backend, Revision};

/// Compacts a [`Backend`]'s history in the background.
pub struct Compactor {
    backend: Arc<dyn Backend>,
    interval: Duration,
    cancel: CancellationToken,
}

impl Compactor {
    /// The upstream default (kube-apiserver `--etcd-compaction-interval`).
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5 * 60);

    /// A compactor of `backend` ticking every `interval` (a zero interval is taken as
    /// [`Compactor::DEFAULT_INTERVAL`]), stopped by `cancel`. Nothing runs until
    /// [`Compactor::run`] or [`Compactor::spawn`].
    pub fn new(backend: Arc<dyn Backend>, interval: Duration, cancel: CancellationToken) -> Self {
        let interval = if interval.is_zero() {
            Self::DEFAULT_INTERVAL
        } else {
            interval
        };
        Compactor {
            backend,
            interval,
            cancel,
        }
    }

    /// Runs [`Compactor::run`] on a new tokio task.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    /// Ticks until cancelled. At each tick it compacts to the revision it recorded at the tick
    /// before (never further), then records the current revision. Failures are logged and the
    /// next tick tries again; they never end the loop.
    pub async fn run(self) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut recorded: Option<Revision> = None;
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => {
                    tracing::debug!(backend = self.backend.name(), "compactor stopped");
                    return;
                }
                _ = ticker.tick() => {}
            }
            if let Some(target) = recorded.filter(|&r| r > 0) {
                match self.backend.compact(target).await {
                    Ok(compacted) => tracing::info!(
                        backend = self.backend.name(),
                        revision = compacted,
                        "compacted store history"
                    ),
                    Err(err) => tracing::warn!(
                        backend = self.backend.name(),
                        revision = target,
                        error = %err,
                        "compaction failed"
                    ),
                }
            }
            match self.backend.current_revision().await {
                Ok(rev) => recorded = Some(rev),
                Err(err) => {
                    tracing::warn!(
                        backend = self.backend.name(),
                        error = %err,
                        "compactor could not read the current revision"
                    );
                    recorded = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryBackend;
    use bytes::Bytes;

    #[tokio::test(start_paused = true)]
    async fn compactor_keeps_one_interval_of_history() {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let cancel = CancellationToken::new();
        let interval = Duration::from_secs(60);
        let task = Compactor::new(backend.clone(), interval, cancel.clone()).spawn();

        backend
            .create("/a", Bytes::from_static(b"1"), None)
            .await
            .unwrap();
        // First tick (immediately) records revision 1; nothing is compacted yet.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(backend.compacted_revision().await.unwrap(), 0);

        backend
            .update("/a", Bytes::from_static(b"2"), 1, None)
            .await
            .unwrap();
        backend
            .update("/a", Bytes::from_static(b"3"), 2, None)
            .await
            .unwrap();
        // Second tick compacts to 1 (recorded a tick ago), not to the current 3.
        tokio::time::sleep(interval).await;
        assert_eq!(backend.compacted_revision().await.unwrap(), 1);
        assert!(backend.get("/a", 2).await.is_ok());

        // Third tick compacts to 3.
        tokio::time::sleep(interval).await;
        assert_eq!(backend.compacted_revision().await.unwrap(), 3);
        assert!(backend.get("/a", 2).await.is_err());
        assert_eq!(
            backend.get("/a", 0).await.unwrap().1.unwrap().value,
            Bytes::from_static(b"3")
        );

        cancel.cancel();
        task.await.unwrap();
    }
}
