//! The scheduling loop: pop a pod, run the scheduling cycle on a snapshot (filter a share of
//! the nodes, score the feasible ones, pick the best), assume the pod, and bind it in the
//! background; on failure run PostFilter (preemption), tell the user (FailedScheduling event,
//! PodScheduled=False condition) and put the pod back in the queue.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ferrokube_client::events::{EventRecorder, EventType};
use ferrokube_client::{Change, Informer, Informers};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::config::Config;
use crate::framework::*;
use crate::queue::{QueuedPodInfo, SchedulingQueue};
use crate::util::fit_error_message;
use crate::{Result, plugins, scheduler_name};

const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;
/// Events and conditions carry at most this much of a message (upstream's truncateMessage).
const MAX_MESSAGE: usize = 1024;

/// Why a scheduling cycle found no node.
struct Diagnosis {
    statuses: NodeToStatus,
    unschedulable_plugins: HashSet<&'static str>,
    pre_filter_msg: String,
}

enum Failure {
    /// No node fits: the statuses say why.
    Fit(Diagnosis),
    /// Something went wrong (a plugin error, no nodes at all).
    Error(String),
}

pub struct Scheduler {
    pub config: Config,
    pub handle: Arc<Handle>,
    pub frameworks: HashMap<String, Arc<Framework>>,
    pub queue: Arc<SchedulingQueue>,
    pub cache: Arc<Cache>,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    next_start_node_index: AtomicUsize,
    bindings: Arc<Semaphore>,
}

fn truncate(msg: &str) -> String {
    if msg.len() <= MAX_MESSAGE {
        return msg.to_string();
    }
    let mut end = MAX_MESSAGE - 3;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &msg[..end])
}

fn assigned(p: &Pod) -> bool {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

fn terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn key(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or(""),
        p.metadata.name.as_deref().unwrap_or("")
    )
}

/// numFeasibleNodesToFind: every node below 100; otherwise a share of them (adaptive: 50%
/// minus 1% per 125 nodes, at least 5%), but at least 100.
pub fn num_feasible_nodes_to_find(percentage: i32, all: usize) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND {
        return all;
    }
    let mut pct = percentage.max(0) as usize;
    if pct == 0 {
        pct = 50usize
            .saturating_sub(all / 125)
            .max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND);
    }
    (all * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

impl Scheduler {
    /// Builds the profiles' frameworks and the queue; nothing runs until [`Scheduler::run`].
    pub fn new(
        client: kube::Client,
        informers: &Informers,
        config: Config,
        recorder: Option<EventRecorder>,
    ) -> Result<Arc<Self>> {
        let handle = Arc::new(Handle::new(
            client,
            Listers::from_informers(informers),
            recorder,
        ));
        Self::with_parts(handle, informers.get(), informers.get(), config)
    }

    pub fn with_parts(
        handle: Arc<Handle>,
        pods: Arc<Informer<Pod>>,
        nodes: Arc<Informer<Node>>,
        config: Config,
    ) -> Result<Arc<Self>> {
        let mut frameworks = HashMap::new();
        for p in &config.profiles {
            let fw = plugins::build_framework(p, &handle, config.percentage_of_nodes_to_score)?;
            frameworks.insert(p.scheduler_name.clone(), Arc::new(fw));
        }
        let queue = SchedulingQueue::new(
            frameworks.clone(),
            config.pod_initial_backoff,
            config.pod_max_backoff,
            config.pod_max_in_unschedulable,
        );
        Ok(Arc::new(Scheduler {
            bindings: Arc::new(Semaphore::new(config.parallel_bindings.max(1))),
            config,
            handle,
            frameworks,
            queue,
            cache: Cache::new(),
            pods,
            nodes,
            next_start_node_index: AtomicUsize::new(0),
        }))
    }

    fn responsible(&self, p: &Pod) -> bool {
        self.frameworks.contains_key(scheduler_name(p))
    }

    fn pod_info(&self, p: &Arc<Pod>) -> Arc<PodInfo> {
        PodInfo::with_priority(p.clone(), Some(self.handle.resolve_priority(p)))
    }

    /// Event handlers: they only update the cache and the queue.
    pub fn register_handlers(self: &Arc<Self>) {
        let s = self.clone();
        self.nodes.on_change(move |c| match c {
            Change::Added(n) => {
                s.cache.add_node((*n).clone());
                s.queue.move_all(ClusterEvent::NodeAdd);
            }
            Change::Updated { old, new } => {
                s.cache.update_node((*new).clone());
                let relevant = old.metadata.labels != new.metadata.labels
                    || old.spec != new.spec
                    || old
                        .status
                        .as_ref()
                        .map(|s| (&s.allocatable, &s.conditions, &s.images))
                        != new
                            .status
                            .as_ref()
                            .map(|s| (&s.allocatable, &s.conditions, &s.images));
                if relevant {
                    s.queue.move_all(ClusterEvent::NodeUpdate);
                }
            }
            Change::Deleted(n) => {
                s.cache
                    .remove_node(n.metadata.name.as_deref().unwrap_or(""));
                s.queue.move_all(ClusterEvent::NodeDelete);
            }
        });
        let s = self.clone();
        self.pods.on_change(move |c| s.on_pod_change(c));
        let listers = &self.handle.listers;
        macro_rules! move_on {
            ($inf:expr, $ev:expr) => {{
                let q = self.queue.clone();
                $inf.on_change(move |c| {
                    if !matches!(c, Change::Added(_)) || true {
                        q.move_all($ev);
                    }
                });
            }};
        }
        move_on!(listers.pvcs, ClusterEvent::PvcChange);
        move_on!(listers.pvs, ClusterEvent::PvChange);
        move_on!(listers.storage_classes, ClusterEvent::StorageClassChange);
        move_on!(listers.namespaces, ClusterEvent::NamespaceChange);
        move_on!(listers.services, ClusterEvent::ServiceChange);
    }

    fn on_pod_change(&self, c: &Change<'_, Pod>) {
        match c {
            Change::Added(p) => {
                if assigned(p) {
                    if !terminal(p) {
                        self.cache.add_pod(self.pod_info(p));
                        self.queue.move_all(ClusterEvent::AssignedPodAdd);
                    }
                } else if self.responsible(p)
                    && p.metadata.deletion_timestamp.is_none()
                    && !terminal(p)
                {
                    let info = self.pod_info(p);
                    self.note_nomination(&info);
                    self.queue.add(info);
                }
            }
            Change::Updated { old, new } => {
                if assigned(new) {
                    if !assigned(old) {
                        self.queue.delete(&key(new));
                        self.handle.nominator.remove(&key(new));
                    }
                    if terminal(new) {
                        self.cache.remove_pod(&key(new));
                        self.queue.move_all(ClusterEvent::AssignedPodDelete);
                    } else {
                        self.cache.update_pod(self.pod_info(new));
                        if !assigned(old) {
                            self.queue.move_all(ClusterEvent::AssignedPodAdd);
                        } else if old.metadata.labels != new.metadata.labels {
                            self.queue.move_all(ClusterEvent::AssignedPodUpdate);
                        }
                    }
                } else if self.responsible(new) {
                    if new.metadata.deletion_timestamp.is_some() || terminal(new) {
                        self.queue.delete(&key(new));
                        self.handle.nominator.remove(&key(new));
                        return;
                    }
                    let info = self.pod_info(new);
                    self.note_nomination(&info);
                    self.queue.update(old, info);
                }
            }
            Change::Deleted(p) => {
                let k = key(p);
                if assigned(p) {
                    self.cache.remove_pod(&k);
                    self.queue.move_all(ClusterEvent::AssignedPodDelete);
                } else {
                    self.queue.delete(&k);
                    self.handle.nominator.remove(&k);
                    self.cache.forget_pod(&k);
                }
            }
        }
    }

    fn note_nomination(&self, p: &Arc<PodInfo>) {
        let nominated = p
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .unwrap_or("");
        if nominated.is_empty() {
            if self.handle.nominator.node_of(&p.key).is_some() {
                self.handle.nominator.remove(&p.key);
            }
        } else {
            self.handle.nominator.add(p.clone(), nominated);
        }
    }

    /// Waits for the informers, then schedules until cancelled.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = async {
                self.nodes.wait_synced().await;
                self.pods.wait_synced().await;
                self.handle.listers.wait_synced().await;
            } => {}
        }
        tokio::spawn(self.queue.clone().run_flushes(cancel.clone()));
        let mut snapshot = Snapshot::default();
        loop {
            let popped = tokio::select! {
                _ = cancel.cancelled() => return,
                p = self.queue.pop() => p,
            };
            let Some((qp, cycle)) = popped else { return };
            self.schedule_one(&mut snapshot, qp, cycle).await;
        }
    }

    /// The pod was deleted or is already placed: nothing to do.
    fn skip(&self, qp: &QueuedPodInfo) -> bool {
        match self.pods.get(&qp.pod.key) {
            None => true,
            Some(p) => {
                p.metadata.deletion_timestamp.is_some()
                    || assigned(&p)
                    || p.metadata.uid != qp.pod.pod.metadata.uid
                    || self.cache.has_pod(&qp.pod.key)
            }
        }
    }

    async fn schedule_one(
        self: &Arc<Self>,
        snapshot: &mut Snapshot,
        qp: QueuedPodInfo,
        cycle: u64,
    ) {
        let pod = qp.pod.clone();
        let Some(fw) = self.frameworks.get(scheduler_name(&pod.pod)).cloned() else {
            self.queue.done(&pod.key);
            return;
        };
        if self.skip(&qp) {
            self.queue.done(&pod.key);
            return;
        }
        self.cache.update_snapshot(snapshot);
        let mut state = CycleState::new();
        match self.schedule_pod(&fw, &mut state, &pod, snapshot) {
            Ok(host) => self.assume_and_bind(fw, state, qp, cycle, host),
            Err(Failure::Error(msg)) => {
                self.handle_failure(&fw, qp, cycle, "SchedulerError", &msg, Vec::new(), None);
            }
            Err(Failure::Fit(diag)) => {
                let (result, status) = if fw.post_filter.is_empty() {
                    (None, Status::success())
                } else {
                    fw.run_post_filter(&state, &pod, &diag.statuses, snapshot)
                        .await
                };
                let post_msg = if status.is_success() {
                    String::new()
                } else {
                    status.message()
                };
                let msg = fit_error_message(
                    snapshot.len(),
                    &diag.pre_filter_msg,
                    &diag.statuses,
                    &post_msg,
                );
                let nominated = result.and_then(|r| r.nominated_node_name);
                let plugins: Vec<&'static str> = diag.unschedulable_plugins.into_iter().collect();
                let reason = if status.code == Code::Error {
                    "SchedulerError"
                } else {
                    "Unschedulable"
                };
                self.handle_failure(&fw, qp, cycle, reason, &msg, plugins, nominated);
            }
        }
    }

    /// schedulePod: the host for the pod, or why there is none.
    fn schedule_pod(
        &self,
        fw: &Framework,
        state: &mut CycleState,
        pod: &Arc<PodInfo>,
        snap: &Snapshot,
    ) -> std::result::Result<String, Failure> {
        if snap.is_empty() {
            return Err(Failure::Error("no nodes available to schedule pods".into()));
        }
        let (feasible, diag) = self.find_nodes_that_fit(fw, state, pod, snap)?;
        if feasible.is_empty() {
            return Err(Failure::Fit(diag));
        }
        if feasible.len() == 1 {
            return Ok(feasible[0].name().to_string());
        }
        let s = fw.run_pre_score(state, pod, &feasible, snap);
        if !s.is_success() {
            return Err(Failure::Error(s.message()));
        }
        let scores = fw
            .run_score(state, pod, &feasible)
            .map_err(|s| Failure::Error(s.message()))?;
        // selectHost: the best score; ties broken uniformly at random (reservoir sampling).
        let mut best = 0usize;
        let mut ties = 1usize;
        for i in 1..scores.len() {
            if scores[i] > scores[best] {
                best = i;
                ties = 1;
            } else if scores[i] == scores[best] {
                ties += 1;
                if crate::util::random_below(ties) == 0 {
                    best = i;
                }
            }
        }
        Ok(feasible[best].name().to_string())
    }

    fn find_nodes_that_fit(
        &self,
        fw: &Framework,
        state: &mut CycleState,
        pod: &Arc<PodInfo>,
        snap: &Snapshot,
    ) -> std::result::Result<(Vec<Arc<NodeInfo>>, Diagnosis), Failure> {
        let mut diag = Diagnosis {
            statuses: NodeToStatus::default(),
            unschedulable_plugins: HashSet::new(),
            pre_filter_msg: String::new(),
        };
        let (pre, s, plugins) = fw.run_pre_filter(state, pod, snap);
        if !s.is_success() {
            if !s.is_rejected() {
                return Err(Failure::Error(s.message()));
            }
            diag.pre_filter_msg = s.message();
            diag.unschedulable_plugins.extend(plugins);
            diag.statuses.absent = s;
            return Ok((Vec::new(), diag));
        }
        // A pod nominated by an earlier preemption tries its node first.
        let nominated = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .unwrap_or("");
        if !nominated.is_empty()
            && let Some(n) = snap.get(nominated)
            && fw.run_filter_with_nominated(state, pod, n).is_success()
        {
            return Ok((vec![n.clone()], diag));
        }
        let candidates: Vec<Arc<NodeInfo>>;
        let nodes: &[Arc<NodeInfo>] = match &pre.node_names {
            None => &snap.nodes,
            Some(names) => {
                candidates = snap
                    .nodes
                    .iter()
                    .filter(|n| names.contains(n.name()))
                    .cloned()
                    .collect();
                diag.statuses.absent = Status::unresolvable(format!(
                    "node(s) didn't satisfy plugin(s) [{}]",
                    plugins.join(" ")
                ));
                diag.unschedulable_plugins.extend(plugins);
                &candidates
            }
        };
        let n = nodes.len();
        if n == 0 {
            return Ok((Vec::new(), diag));
        }
        let want = num_feasible_nodes_to_find(fw.percentage_of_nodes_to_score, n);
        let start = self.next_start_node_index.load(Ordering::Relaxed) % n;
        let mut feasible = Vec::with_capacity(want.min(n));
        // Rejections by node index; named in the diagnosis only if no node fits (a pod that
        // fits never reads them, and spreading constraints can reject thousands per cycle).
        let mut rejected: Vec<(usize, Status)> = Vec::new();
        let mut processed = 0;
        for i in 0..n {
            let at = (start + i) % n;
            let node = &nodes[at];
            processed = i + 1;
            let s = fw.run_filter_with_nominated(state, pod, node);
            if s.is_success() {
                feasible.push(node.clone());
                if feasible.len() >= want {
                    break;
                }
            } else if s.is_rejected() {
                rejected.push((at, s));
            } else {
                return Err(Failure::Error(s.message()));
            }
        }
        if feasible.is_empty() {
            for (at, s) in rejected {
                diag.unschedulable_plugins.insert(s.plugin);
                diag.statuses.map.insert(nodes[at].name().to_string(), s);
            }
        }
        let total = snap.len().max(1);
        self.next_start_node_index
            .store((start + processed) % total, Ordering::Relaxed);
        Ok((feasible, diag))
    }

    fn assume_and_bind(
        self: &Arc<Self>,
        fw: Arc<Framework>,
        mut state: CycleState,
        qp: QueuedPodInfo,
        cycle: u64,
        host: String,
    ) {
        let pod = qp.pod.clone();
        let mut assumed = (*pod.pod).clone();
        if let Some(spec) = assumed.spec.as_mut() {
            spec.node_name = Some(host.clone());
        }
        let assumed = PodInfo::with_priority(Arc::new(assumed), Some(pod.priority));
        self.cache.assume_pod(assumed.clone());
        self.handle.nominator.remove(&pod.key);
        let s = fw.run_reserve(&mut state, &assumed, &host);
        if !s.is_success() {
            fw.run_unreserve(&mut state, &assumed, &host);
            self.cache.forget_pod(&pod.key);
            let reason = if s.is_rejected() {
                "Unschedulable"
            } else {
                "SchedulerError"
            };
            let plugins = if s.is_rejected() {
                vec![s.plugin]
            } else {
                Vec::new()
            };
            self.handle_failure(&fw, qp, cycle, reason, &s.message(), plugins, None);
            return;
        }
        let (permit, timeout) = fw.run_permit(&mut state, &assumed, &host);
        if !permit.is_success() && permit.code != Code::Wait {
            fw.run_unreserve(&mut state, &assumed, &host);
            self.cache.forget_pod(&pod.key);
            let reason = if permit.is_rejected() {
                "Unschedulable"
            } else {
                "SchedulerError"
            };
            let plugins = if permit.is_rejected() {
                vec![permit.plugin]
            } else {
                Vec::new()
            };
            self.handle_failure(&fw, qp, cycle, reason, &permit.message(), plugins, None);
            return;
        }
        let waiter = (permit.code == Code::Wait).then(|| self.handle.waiting.register(pod.uid()));
        let s = self.clone();
        let sem = self.bindings.clone();
        tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            let status = s
                .binding_cycle(&fw, &state, &assumed, &host, waiter, timeout)
                .await;
            if status.is_success() {
                s.queue.done(&pod.key);
                if let Some(r) = &s.handle.recorder {
                    r.record(
                        pod.pod.as_ref(),
                        EventType::Normal,
                        "Scheduled",
                        &format!(
                            "Successfully assigned {}/{} to {}",
                            pod.namespace(),
                            pod.name(),
                            host
                        ),
                    );
                }
                return;
            }
            let mut st = state;
            fw.run_unreserve(&mut st, &assumed, &host);
            s.cache.forget_pod(&pod.key);
            let reason = if status.is_rejected() {
                "Unschedulable"
            } else {
                "SchedulerError"
            };
            let plugins = if status.is_rejected() {
                vec![status.plugin]
            } else {
                Vec::new()
            };
            s.handle_failure(&fw, qp, cycle, reason, &status.message(), plugins, None);
        });
    }

    async fn binding_cycle(
        &self,
        fw: &Framework,
        state: &CycleState,
        pod: &Arc<PodInfo>,
        host: &str,
        waiter: Option<tokio::sync::oneshot::Receiver<Status>>,
        timeout: Duration,
    ) -> Status {
        if let Some(rx) = waiter {
            let s = match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(s)) => s,
                Ok(Err(_)) => Status::unschedulable("rejected while waiting at permit"),
                Err(_) => {
                    self.handle.waiting.forget(pod.uid());
                    Status::unschedulable("rejected due to timeout after waiting at permit")
                }
            };
            if !s.is_success() {
                return s;
            }
        }
        let s = fw.run_pre_bind(state, pod, host).await;
        if !s.is_success() {
            return s;
        }
        fw.run_bind(state, pod, host).await
    }

    /// handleSchedulingFailure: requeue, record the event, update the condition and the
    /// nomination.
    fn handle_failure(
        self: &Arc<Self>,
        _fw: &Framework,
        mut qp: QueuedPodInfo,
        cycle: u64,
        reason: &str,
        msg: &str,
        plugins: Vec<&'static str>,
        nominated: Option<String>,
    ) {
        let key = qp.pod.key.clone();
        let current = self.pods.get(&key);
        let still_pending = current.as_ref().is_some_and(|p| {
            !assigned(p)
                && p.metadata.uid == qp.pod.pod.metadata.uid
                && p.metadata.deletion_timestamp.is_none()
        });
        if !still_pending {
            self.queue.done(&key);
            return;
        }
        let current = current.expect("checked");
        if let Some(n) = &nominated {
            if n.is_empty() {
                self.handle.nominator.remove(&key);
            } else {
                self.handle.nominator.add(qp.pod.clone(), n);
            }
        }
        qp.unschedulable_plugins = plugins.into_iter().filter(|p| !p.is_empty()).collect();
        if reason == "Unschedulable" && qp.unschedulable_plugins.is_empty() {
            qp.unschedulable_plugins.push("");
        }
        if reason != "Unschedulable" {
            qp.unschedulable_plugins.clear();
        }
        self.queue.add_unschedulable(qp.clone(), cycle);
        let msg = truncate(msg);
        if let Some(r) = &self.handle.recorder {
            r.record(
                current.as_ref(),
                EventType::Warning,
                "FailedScheduling",
                &msg,
            );
        }
        let s = self.clone();
        let reason = reason.to_string();
        tokio::spawn(async move {
            s.update_pod_condition(&current, &reason, &msg, nominated)
                .await
        });
    }

    /// Writes PodScheduled=False (and the nomination) when it differs from what the pod has.
    async fn update_pod_condition(
        &self,
        pod: &Pod,
        reason: &str,
        msg: &str,
        nominated: Option<String>,
    ) {
        let status = pod.status.as_ref();
        let cond = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
        let same_cond = cond.is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(msg)
        });
        let current_nom = status
            .and_then(|s| s.nominated_node_name.clone())
            .unwrap_or_default();
        let nom_change = nominated.as_ref().is_some_and(|n| *n != current_nom);
        if same_cond && !nom_change {
            return;
        }
        let transition = match cond {
            Some(c) if c.status == "False" => {
                c.last_transition_time.as_ref().map(|t| t.0.to_string())
            }
            _ => None,
        }
        .unwrap_or_else(|| jiff::Timestamp::now().to_string());
        let mut patch = serde_json::json!({"status": {"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": reason, "message": msg,
            "lastProbeTime": null, "lastTransitionTime": transition}]}});
        if let Some(n) = nominated.filter(|_| nom_change) {
            patch["status"]["nominatedNodeName"] = if n.is_empty() {
                serde_json::Value::Null
            } else {
                n.into()
            };
        }
        let api: Api<Pod> = Api::namespaced(
            self.handle.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or(""),
        );
        if let Err(e) = api
            .patch_status(
                pod.metadata.name.as_deref().unwrap_or(""),
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            tracing::debug!(pod = %key(pod), error = %e, "updating the PodScheduled condition");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_of_nodes_to_find_is_adaptive_as_upstream() {
        assert_eq!(num_feasible_nodes_to_find(0, 50), 50);
        assert_eq!(num_feasible_nodes_to_find(0, 1000), 420);
        assert_eq!(num_feasible_nodes_to_find(0, 5000), 500);
        assert_eq!(num_feasible_nodes_to_find(0, 6000), 300);
        assert_eq!(num_feasible_nodes_to_find(10, 500), 100);
        assert_eq!(num_feasible_nodes_to_find(100, 500), 500);
    }
}
