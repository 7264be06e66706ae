//! The scheduling queue, as upstream's PriorityQueue: an active queue ordered by priority
//! then age; a backoff queue (1 s doubling per attempt up to 10 s); and the unschedulable
//! set, whose pods go back to the active (or backoff) queue when a cluster event that could
//! help them happens, or after five minutes. Gated pods (PreEnqueue rejections) wait in the
//! unschedulable set until an update lifts the gate.
//!
//! Events that happen while a pod is being scheduled are not lost: a pod whose cycle started
//! before the last move request goes to the backoff queue instead of the unschedulable set.
//!
//! This is not the client's FIFO work queue: scheduling needs priority order and per-pod
//! backoff keyed on scheduling attempts, which that queue does not model.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::framework::{ClusterEvent, Framework, PodInfo};

/// A pod in the queue with its scheduling history.
#[derive(Clone, Debug)]
pub struct QueuedPodInfo {
    pub pod: Arc<PodInfo>,
    /// When the pod was last added (orders pods of equal priority; base of the backoff).
    pub timestamp: Instant,
    pub initial_attempt: Option<Instant>,
    pub attempts: u32,
    /// Plugins that rejected the pod in its last attempt (empty: an error, retry on anything).
    pub unschedulable_plugins: Vec<&'static str>,
    pub gated: bool,
}

type ActiveKey = (Reverse<i32>, Instant, u64);

/// A queued pod with its key in `active` or in `backoff`.
type Queued = (QueuedPodInfo, Option<ActiveKey>, Option<(Instant, u64)>);

#[derive(Default)]
struct Inner {
    active: BTreeMap<ActiveKey, String>,
    backoff: BTreeMap<(Instant, u64), String>,
    /// Pods in `active` or `backoff`, with their position key.
    queued: HashMap<String, Queued>,
    unschedulable: HashMap<String, (QueuedPodInfo, Instant)>,
    in_flight: HashSet<String>,
    scheduling_cycle: u64,
    move_request_cycle: u64,
    seq: u64,
    closed: bool,
}

pub struct SchedulingQueue {
    inner: Mutex<Inner>,
    ready: Notify,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_in_unschedulable: Duration,
    frameworks: HashMap<String, Arc<Framework>>,
}

/// Whether an update of a pending pod could change the scheduling outcome: anything but
/// status and bookkeeping metadata.
pub fn pod_spec_changed(
    old: &k8s_openapi::api::core::v1::Pod,
    new: &k8s_openapi::api::core::v1::Pod,
) -> bool {
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.metadata.annotations != new.metadata.annotations
}

impl SchedulingQueue {
    pub fn new(
        frameworks: HashMap<String, Arc<Framework>>,
        initial_backoff: Duration,
        max_backoff: Duration,
        max_in_unschedulable: Duration,
    ) -> Arc<Self> {
        Arc::new(SchedulingQueue {
            inner: Mutex::new(Inner::default()),
            ready: Notify::new(),
            initial_backoff,
            max_backoff,
            max_in_unschedulable,
            frameworks,
        })
    }

    fn framework_of(&self, p: &PodInfo) -> Option<&Arc<Framework>> {
        self.frameworks.get(crate::scheduler_name(&p.pod))
    }

    /// The backoff a pod has earned: initial * 2^(attempts-1), capped.
    pub fn backoff_duration(&self, attempts: u32) -> Duration {
        let mut d = self.initial_backoff;
        for _ in 1..attempts {
            d = d.saturating_mul(2);
            if d >= self.max_backoff {
                return self.max_backoff;
            }
        }
        d.min(self.max_backoff)
    }

    fn backoff_expiry(&self, q: &QueuedPodInfo) -> Instant {
        q.timestamp + self.backoff_duration(q.attempts)
    }

    fn push_active(&self, g: &mut Inner, q: QueuedPodInfo) {
        g.seq += 1;
        let k = (Reverse(q.pod.priority), q.timestamp, g.seq);
        g.active.insert(k, q.pod.key.clone());
        g.queued.insert(q.pod.key.clone(), (q, Some(k), None));
    }

    fn push_backoff(&self, g: &mut Inner, q: QueuedPodInfo) {
        g.seq += 1;
        let k = (self.backoff_expiry(&q), g.seq);
        g.backoff.insert(k, q.pod.key.clone());
        g.queued.insert(q.pod.key.clone(), (q, None, Some(k)));
    }

    fn take_queued(g: &mut Inner, key: &str) -> Option<QueuedPodInfo> {
        let (q, a, b) = g.queued.remove(key)?;
        if let Some(a) = a {
            g.active.remove(&a);
        }
        if let Some(b) = b {
            g.backoff.remove(&b);
        }
        Some(q)
    }

    /// Runs PreEnqueue: gated pods wait in the unschedulable set.
    fn enqueue(&self, g: &mut Inner, mut q: QueuedPodInfo) -> bool {
        if let Some(fw) = self.framework_of(&q.pod) {
            let s = fw.run_pre_enqueue(&q.pod);
            if !s.is_success() {
                q.gated = true;
                q.unschedulable_plugins = vec![s.plugin];
                g.unschedulable
                    .insert(q.pod.key.clone(), (q, Instant::now()));
                return false;
            }
        }
        q.gated = false;
        self.push_active(g, q);
        true
    }

    /// A new pending pod.
    pub fn add(&self, pod: Arc<PodInfo>) {
        let mut g = self.inner.lock();
        if g.closed {
            return;
        }
        let key = pod.key.clone();
        Self::take_queued(&mut g, &key);
        g.unschedulable.remove(&key);
        if g.in_flight.contains(&key) {
            return;
        }
        let q = QueuedPodInfo {
            pod,
            timestamp: Instant::now(),
            initial_attempt: None,
            attempts: 0,
            unschedulable_plugins: Vec::new(),
            gated: false,
        };
        if self.enqueue(&mut g, q) {
            drop(g);
            self.ready.notify_one();
        }
    }

    /// A pending pod changed.
    pub fn update(&self, old: &k8s_openapi::api::core::v1::Pod, new: Arc<PodInfo>) {
        let mut g = self.inner.lock();
        let key = new.key.clone();
        if let Some(mut q) = Self::take_queued(&mut g, &key) {
            let in_backoff = q.attempts > 0 && self.backoff_expiry(&q) > Instant::now();
            q.pod = new;
            if in_backoff {
                self.push_backoff(&mut g, q);
            } else {
                self.push_active(&mut g, q);
                drop(g);
                self.ready.notify_one();
            }
            return;
        }
        if let Some((mut q, since)) = g.unschedulable.remove(&key) {
            let changed = pod_spec_changed(old, &new.pod);
            q.pod = new;
            if !changed {
                g.unschedulable.insert(key, (q, since));
                return;
            }
            if q.gated {
                if self.enqueue(&mut g, q) {
                    drop(g);
                    self.ready.notify_one();
                }
                return;
            }
            self.requeue_moved(&mut g, q);
            drop(g);
            self.ready.notify_one();
            return;
        }
        if g.in_flight.contains(&key) {
            if pod_spec_changed(old, &new.pod) {
                g.move_request_cycle = g.scheduling_cycle;
            }
            return;
        }
        drop(g);
        self.add(new);
    }

    /// Moves a pod out of the unschedulable set: to backoff if it still owes backoff time.
    fn requeue_moved(&self, g: &mut Inner, q: QueuedPodInfo) {
        if q.attempts > 0 && self.backoff_expiry(&q) > Instant::now() {
            self.push_backoff(g, q);
        } else {
            self.enqueue(g, q);
        }
    }

    /// The pod left the pending state (deleted, or bound).
    pub fn delete(&self, key: &str) {
        let mut g = self.inner.lock();
        Self::take_queued(&mut g, key);
        g.unschedulable.remove(key);
    }

    /// The next pod to schedule, highest priority first; waits while the active queue is
    /// empty. None once closed. Returns the pod and its scheduling cycle.
    pub async fn pop(&self) -> Option<(QueuedPodInfo, u64)> {
        loop {
            let notified = self.ready.notified();
            {
                let mut g = self.inner.lock();
                if g.closed {
                    return None;
                }
                if let Some((_, key)) = g.active.pop_first() {
                    let (mut q, _, _) = g.queued.remove(&key).expect("active entries are indexed");
                    q.attempts += 1;
                    if q.initial_attempt.is_none() {
                        q.initial_attempt = Some(Instant::now());
                    }
                    g.scheduling_cycle += 1;
                    g.in_flight.insert(key);
                    return Some((q, g.scheduling_cycle));
                }
            }
            notified.await;
        }
    }

    /// The scheduling (and binding) of a popped pod is over.
    pub fn done(&self, key: &str) {
        self.inner.lock().in_flight.remove(key);
    }

    /// A pod that failed its cycle: to the unschedulable set, or to backoff when it failed
    /// with an error or a cluster event happened while it was being scheduled.
    pub fn add_unschedulable(&self, mut q: QueuedPodInfo, cycle: u64) {
        let mut g = self.inner.lock();
        let key = q.pod.key.clone();
        g.in_flight.remove(&key);
        if g.closed || g.queued.contains_key(&key) || g.unschedulable.contains_key(&key) {
            return;
        }
        q.timestamp = Instant::now();
        if q.unschedulable_plugins.is_empty() || g.move_request_cycle >= cycle {
            self.push_backoff(&mut g, q);
        } else {
            g.unschedulable.insert(key, (q, Instant::now()));
        }
    }

    /// A cluster event: unschedulable pods rejected by a plugin that cares about it are
    /// moved back.
    pub fn move_all(&self, event: ClusterEvent) {
        let mut g = self.inner.lock();
        g.move_request_cycle = g.scheduling_cycle;
        if g.unschedulable.is_empty() {
            return;
        }
        let keys: Vec<String> = g
            .unschedulable
            .iter()
            .filter(|(_, (q, _))| !q.gated)
            .filter(|(_, (q, _))| {
                self.framework_of(&q.pod)
                    .is_none_or(|fw| fw.event_may_help(&q.unschedulable_plugins, event))
            })
            .map(|(k, _)| k.clone())
            .collect();
        if keys.is_empty() {
            return;
        }
        for k in keys {
            if let Some((q, _)) = g.unschedulable.remove(&k) {
                self.requeue_moved(&mut g, q);
            }
        }
        drop(g);
        self.ready.notify_waiters();
        self.ready.notify_one();
    }

    /// flushBackoffQCompleted: pods whose backoff is over go to the active queue.
    pub fn flush_backoff_completed(&self) {
        let mut g = self.inner.lock();
        let now = Instant::now();
        let mut moved = false;
        while let Some((&(at, _), _)) = g.backoff.first_key_value() {
            if at > now {
                break;
            }
            let (_, key) = g.backoff.pop_first().expect("checked");
            if let Some((q, _, _)) = g.queued.remove(&key) {
                self.push_active(&mut g, q);
                moved = true;
            }
        }
        if moved {
            drop(g);
            self.ready.notify_waiters();
            self.ready.notify_one();
        }
    }

    /// flushUnschedulablePodsLeftover: pods that waited longer than the limit are retried.
    pub fn flush_unschedulable_leftover(&self) {
        let mut g = self.inner.lock();
        let now = Instant::now();
        let keys: Vec<String> = g
            .unschedulable
            .iter()
            .filter(|(_, (q, since))| {
                !q.gated && now.duration_since(*since) > self.max_in_unschedulable
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if let Some((q, _)) = g.unschedulable.remove(&k) {
                self.requeue_moved(&mut g, q);
            }
        }
        drop(g);
        self.ready.notify_one();
    }

    /// Runs the periodic flushes until cancelled.
    pub async fn run_flushes(self: Arc<Self>, cancel: tokio_util::sync::CancellationToken) {
        let mut backoff = tokio::time::interval(Duration::from_secs(1));
        let mut leftover = tokio::time::interval(Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = backoff.tick() => self.flush_backoff_completed(),
                _ = leftover.tick() => self.flush_unschedulable_leftover(),
            }
        }
    }

    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.ready.notify_waiters();
    }

    /// (active, backoff, unschedulable) sizes.
    pub fn lens(&self) -> (usize, usize, usize) {
        let g = self.inner.lock();
        (g.active.len(), g.backoff.len(), g.unschedulable.len())
    }

    pub fn contains(&self, key: &str) -> bool {
        let g = self.inner.lock();
        g.queued.contains_key(key) || g.unschedulable.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins;
    use crate::testing::*;

    fn queue() -> Arc<SchedulingQueue> {
        let fw = Arc::new(plugins::build_default_framework(&handle()).unwrap());
        let mut m = HashMap::new();
        m.insert("default-scheduler".to_string(), fw);
        SchedulingQueue::new(
            m,
            Duration::from_secs(1),
            Duration::from_secs(10),
            Duration::from_secs(300),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn pods_pop_by_priority_then_age() {
        let q = queue();
        q.add(pod("low").priority(1).obj());
        tokio::time::advance(Duration::from_millis(1)).await;
        q.add(pod("high").priority(10).obj());
        tokio::time::advance(Duration::from_millis(1)).await;
        q.add(pod("low2").priority(1).obj());
        let order: Vec<String> = [q.pop().await, q.pop().await, q.pop().await]
            .into_iter()
            .map(|p| p.unwrap().0.pod.name().to_string())
            .collect();
        assert_eq!(order, vec!["high", "low", "low2"]);
    }

    #[test]
    fn backoff_doubles_from_one_second_to_ten() {
        let q = queue();
        let d: Vec<u64> = (1..=6).map(|a| q.backoff_duration(a).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 10, 10]);
    }

    #[tokio::test(start_paused = true)]
    async fn unschedulable_pods_come_back_on_events_that_may_help() {
        let q = queue();
        q.add(pod("p").obj());
        let (mut qp, cycle) = q.pop().await.unwrap();
        qp.unschedulable_plugins = vec!["NodeResourcesFit"];
        q.add_unschedulable(qp, cycle);
        assert_eq!(q.lens(), (0, 0, 1));
        // A namespace change cannot help a pod that did not fit for resources.
        q.move_all(ClusterEvent::NamespaceChange);
        assert_eq!(q.lens(), (0, 0, 1));
        tokio::time::advance(Duration::from_secs(2)).await;
        q.move_all(ClusterEvent::NodeAdd);
        assert_eq!(q.lens(), (1, 0, 0), "backoff served: straight to active");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pod_still_backing_off_waits_in_the_backoff_queue() {
        let q = queue();
        q.add(pod("p").obj());
        let (mut qp, cycle) = q.pop().await.unwrap();
        qp.unschedulable_plugins = vec!["NodeResourcesFit"];
        q.add_unschedulable(qp, cycle);
        q.move_all(ClusterEvent::NodeAdd);
        assert_eq!(q.lens(), (0, 1, 0));
        q.flush_backoff_completed();
        assert_eq!(q.lens(), (0, 1, 0));
        tokio::time::advance(Duration::from_millis(1001)).await;
        q.flush_backoff_completed();
        assert_eq!(q.lens(), (1, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn events_during_a_cycle_send_the_pod_to_backoff() {
        let q = queue();
        q.add(pod("p").obj());
        let (mut qp, cycle) = q.pop().await.unwrap();
        q.move_all(ClusterEvent::NodeAdd);
        qp.unschedulable_plugins = vec!["NodeResourcesFit"];
        q.add_unschedulable(qp, cycle);
        assert_eq!(q.lens(), (0, 1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn gated_pods_wait_until_the_gates_are_removed() {
        let q = queue();
        let gated = pod("p").gate("g").raw();
        q.add(PodInfo::new(Arc::new(gated.clone())));
        assert_eq!(q.lens(), (0, 0, 1));
        q.move_all(ClusterEvent::NodeAdd);
        assert_eq!(q.lens(), (0, 0, 1), "cluster events do not lift gates");
        q.update(&gated, pod("p").obj());
        assert_eq!(q.lens(), (1, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn leftover_unschedulable_pods_are_retried_after_five_minutes() {
        let q = queue();
        q.add(pod("p").obj());
        let (mut qp, cycle) = q.pop().await.unwrap();
        qp.unschedulable_plugins = vec!["NodeResourcesFit"];
        q.add_unschedulable(qp, cycle);
        tokio::time::advance(Duration::from_secs(301)).await;
        q.flush_unschedulable_leftover();
        assert_eq!(q.lens(), (1, 0, 0));
    }
}
