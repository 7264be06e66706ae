//! The one work queue every controller and the scheduler use, as client-go's workqueue does:
//! a key queued many times is processed once, never by two workers at the same time, and a
//! key that fails is retried with exponential backoff.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Backoff for failed keys: `base * 2^failures`, capped (client-go's default controller rate
/// limiter uses 5 ms and 1000 s).
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_secs(1000),
        }
    }
}

impl Backoff {
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 2u64.saturating_pow(failures.min(40));
        let d = self.base.saturating_mul(factor.min(u32::MAX as u64) as u32);
        d.min(self.max)
    }
}

struct State<K> {
    queue: VecDeque<K>,
    /// Keys waiting to be processed (in `queue`, or re-added while processing).
    dirty: HashSet<K>,
    processing: HashSet<K>,
    failures: HashMap<K, u32>,
    shutting_down: bool,
}

/// A deduplicating queue of keys.
pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    ready: Notify,
    backoff: Backoff,
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static> WorkQueue<K> {
    pub fn new() -> Arc<Self> {
        Self::with_backoff(Backoff::default())
    }

    pub fn with_backoff(backoff: Backoff) -> Arc<Self> {
        Arc::new(WorkQueue {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                shutting_down: false,
            }),
            ready: Notify::new(),
            backoff,
        })
    }

    /// Queues a key unless it is already waiting. A key being processed is queued again once
    /// its worker calls [`WorkQueue::done`].
    pub fn add(&self, key: K) {
        let mut st = self.state.lock();
        if st.shutting_down || st.dirty.contains(&key) {
            return;
        }
        st.dirty.insert(key.clone());
        if !st.processing.contains(&key) {
            st.queue.push_back(key);
            drop(st);
            self.ready.notify_one();
        }
    }

    /// Queues a key after a delay (through `tokio::time`, so tests can pause time).
    pub fn add_after(self: &Arc<Self>, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        // The deadline is taken now, not when the task first runs.
        let deadline = tokio::time::Instant::now() + delay;
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            q.add(key);
        });
    }

    /// Queues a key after the backoff its failures so far call for.
    pub fn add_rate_limited(self: &Arc<Self>, key: K) {
        let failures = {
            let mut st = self.state.lock();
            let n = st.failures.entry(key.clone()).or_insert(0);
            let f = *n;
            *n += 1;
            f
        };
        self.add_after(key, self.backoff.delay(failures));
    }

    /// Clears a key's failure count (after it was processed successfully).
    pub fn forget(&self, key: &K) {
        self.state.lock().failures.remove(key);
    }

    pub fn failures(&self, key: &K) -> u32 {
        self.state.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// The next key to process; None once the queue shuts down. The caller must call
    /// [`WorkQueue::done`] with it.
    pub async fn get(&self) -> Option<K> {
        loop {
            let notified = self.ready.notified();
            {
                let mut st = self.state.lock();
                if let Some(k) = st.queue.pop_front() {
                    st.dirty.remove(&k);
                    st.processing.insert(k.clone());
                    if !st.queue.is_empty() {
                        self.ready.notify_one();
                    }
                    return Some(k);
                }
                if st.shutting_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Marks a key processed; if it was added meanwhile it is queued again.
    pub fn done(&self, key: &K) {
        let mut st = self.state.lock();
        st.processing.remove(key);
        if st.dirty.contains(key) {
            st.queue.push_back(key.clone());
            drop(st);
            self.ready.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.state.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops handing out keys; workers' `get` returns None.
    pub fn shut_down(&self) {
        self.state.lock().shutting_down = true;
        self.ready.notify_waiters();
    }
}

/// What a reconcile asks of the queue afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Done until something changes.
    AwaitChange,
    /// Look again after this long.
    Requeue(Duration),
}

/// Runs `workers` tasks that take keys from the queue and reconcile them: on `Ok` the key's
/// failures are forgotten (and requeued if asked), on `Err` it is retried with backoff.
pub async fn run_workers<K, F, Fut, E>(queue: Arc<WorkQueue<K>>, workers: usize, reconcile: F)
where
    K: Clone + Eq + Hash + Send + Sync + std::fmt::Debug + 'static,
    F: Fn(K) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Action, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let reconcile = Arc::new(reconcile);
    let mut handles = Vec::new();
    for _ in 0..workers.max(1) {
        let q = queue.clone();
        let r = reconcile.clone();
        handles.push(tokio::spawn(async move {
            while let Some(key) = q.get().await {
                match r(key.clone()).await {
                    Ok(Action::AwaitChange) => q.forget(&key),
                    Ok(Action::Requeue(d)) => {
                        q.forget(&key);
                        q.add_after(key.clone(), d);
                    }
                    Err(e) => {
                        tracing::debug!(key = ?key, error = %e, "reconcile failed; retrying with backoff");
                        q.add_rate_limited(key.clone());
                    }
                }
                q.done(&key);
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_added_many_times_is_processed_once() {
        let q = WorkQueue::new();
        for _ in 0..5 {
            q.add("a");
        }
        q.add("b");
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(q.get().await, Some("b"));
    }

    #[tokio::test]
    async fn a_key_added_while_processing_waits_for_done() {
        let q = WorkQueue::new();
        q.add("a");
        let k = q.get().await.unwrap();
        q.add("a");
        assert!(
            q.is_empty(),
            "not handed to a second worker while the first holds it"
        );
        q.done(&k);
        assert_eq!(q.get().await, Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially() {
        let q = WorkQueue::with_backoff(Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_secs(1),
        });
        q.add_rate_limited("a");
        q.add_rate_limited("a");
        q.add_rate_limited("a");
        assert_eq!(q.failures(&"a"), 3);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(q.is_empty());
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(Backoff::default().delay(30), Duration::from_secs(1000));
    }

    #[tokio::test]
    async fn shut_down_releases_waiting_workers() {
        let q: Arc<WorkQueue<u32>> = WorkQueue::new();
        let w = {
            let q = q.clone();
            tokio::spawn(async move { q.get().await })
        };
        tokio::task::yield_now().await;
        q.shut_down();
        assert_eq!(w.await.unwrap(), None);
    }
}
