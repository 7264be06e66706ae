//! The scheduling framework: extension point traits, per-cycle state, the snapshot, and
//! [`Framework`], which runs one profile's plugins at each point in order and turns their
//! statuses into decisions.

pub mod interface;
pub mod label_ids;
pub mod node_memo;
pub mod selector;
pub mod snapshot;
pub mod types;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferrokube_client::Informer;
use ferrokube_client::events::EventRecorder;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{
    Namespace, PersistentVolume, PersistentVolumeClaim, ReplicationController, Service,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::StorageClass;
use parking_lot::Mutex;
use tokio::sync::oneshot;

pub use interface::*;
pub use snapshot::Snapshot;
pub use types::{NodeInfo, PodInfo, Resource};

/// Read access to the objects plugins consult, from the shared informers.
#[derive(Clone)]
pub struct Listers {
    pub namespaces: Arc<Informer<Namespace>>,
    pub pvcs: Arc<Informer<PersistentVolumeClaim>>,
    pub pvs: Arc<Informer<PersistentVolume>>,
    pub storage_classes: Arc<Informer<StorageClass>>,
    pub priority_classes: Arc<Informer<PriorityClass>>,
    pub services: Arc<Informer<Service>>,
    pub replica_sets: Arc<Informer<ReplicaSet>>,
    pub replication_controllers: Arc<Informer<ReplicationController>>,
    pub stateful_sets: Arc<Informer<StatefulSet>>,
    pub pdbs: Arc<Informer<PodDisruptionBudget>>,
}

impl Listers {
    /// Listers fed by hand (unit tests).
    pub fn detached() -> Self {
        Listers {
            namespaces: Informer::detached(),
            pvcs: Informer::detached(),
            pvs: Informer::detached(),
            storage_classes: Informer::detached(),
            priority_classes: Informer::detached(),
            services: Informer::detached(),
            replica_sets: Informer::detached(),
            replication_controllers: Informer::detached(),
            stateful_sets: Informer::detached(),
            pdbs: Informer::detached(),
        }
    }

    pub fn from_informers(i: &ferrokube_client::Informers) -> Self {
        Listers {
            namespaces: i.get(),
            pvcs: i.get(),
            pvs: i.get(),
            storage_classes: i.get(),
            priority_classes: i.get(),
            services: i.get(),
            replica_sets: i.get(),
            replication_controllers: i.get(),
            stateful_sets: i.get(),
            pdbs: i.get(),
        }
    }

    pub async fn wait_synced(&self) {
        self.namespaces.wait_synced().await;
        self.pvcs.wait_synced().await;
        self.pvs.wait_synced().await;
        self.storage_classes.wait_synced().await;
        self.priority_classes.wait_synced().await;
        self.services.wait_synced().await;
        self.replica_sets.wait_synced().await;
        self.replication_controllers.wait_synced().await;
        self.stateful_sets.wait_synced().await;
        self.pdbs.wait_synced().await;
    }

    /// Labels of a namespace (for namespaceSelector in affinity terms).
    pub fn namespace_labels(&self, ns: &str) -> Option<std::collections::BTreeMap<String, String>> {
        self.namespaces
            .get(ns)
            .map(|n| n.metadata.labels.clone().unwrap_or_default())
    }
}

/// Pods nominated to nodes by preemption: the scheduler treats them as if they ran there when
/// it places pods of lower or equal priority.
#[derive(Default)]
pub struct Nominator {
    inner: Mutex<NominatorInner>,
}

#[derive(Default)]
struct NominatorInner {
    by_node: HashMap<String, Vec<Arc<PodInfo>>>,
    node_of: HashMap<String, String>,
}

impl Nominator {
    pub fn add(&self, pod: Arc<PodInfo>, node: &str) {
        let mut g = self.inner.lock();
        Self::remove_locked(&mut g, &pod.key);
        if node.is_empty() {
            return;
        }
        g.node_of.insert(pod.key.clone(), node.to_string());
        g.by_node.entry(node.to_string()).or_default().push(pod);
    }

    fn remove_locked(g: &mut NominatorInner, key: &str) {
        if let Some(node) = g.node_of.remove(key)
            && let Some(v) = g.by_node.get_mut(&node)
        {
            v.retain(|p| p.key != key);
            if v.is_empty() {
                g.by_node.remove(&node);
            }
        }
    }

    pub fn remove(&self, key: &str) {
        Self::remove_locked(&mut self.inner.lock(), key);
    }

    pub fn for_node(&self, node: &str) -> Vec<Arc<PodInfo>> {
        let g = self.inner.lock();
        if g.by_node.is_empty() {
            return Vec::new();
        }
        g.by_node.get(node).cloned().unwrap_or_default()
    }

    pub fn node_of(&self, key: &str) -> Option<String> {
        self.inner.lock().node_of.get(key).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.lock().by_node.is_empty()
    }
}

/// Pods held at Permit, waiting for an allow or a reject.
#[derive(Default)]
pub struct WaitingPods {
    inner: Mutex<HashMap<String, oneshot::Sender<Status>>>,
}

impl WaitingPods {
    pub fn register(&self, uid: &str) -> oneshot::Receiver<Status> {
        let (tx, rx) = oneshot::channel();
        self.inner.lock().insert(uid.to_string(), tx);
        rx
    }

    /// Lets a waiting pod go on to binding.
    pub fn allow(&self, uid: &str) -> bool {
        self.inner
            .lock()
            .remove(uid)
            .is_some_and(|tx| tx.send(Status::success()).is_ok())
    }

    pub fn reject(&self, uid: &str, plugin: &'static str, msg: &str) -> bool {
        self.inner.lock().remove(uid).is_some_and(|tx| {
            tx.send(Status::unschedulable(msg).with_plugin(plugin))
                .is_ok()
        })
    }

    pub fn forget(&self, uid: &str) {
        self.inner.lock().remove(uid);
    }
}

/// What plugins may use besides their arguments: the API, listers, events, nominations.
pub struct Handle {
    pub client: kube::Client,
    pub listers: Listers,
    pub recorder: Option<EventRecorder>,
    pub nominator: Arc<Nominator>,
    pub waiting: WaitingPods,
}

impl Handle {
    pub fn new(client: kube::Client, listers: Listers, recorder: Option<EventRecorder>) -> Self {
        Handle {
            client,
            listers,
            recorder,
            nominator: Arc::new(Nominator::default()),
            waiting: WaitingPods::default(),
        }
    }

    /// The pod's priority: spec.priority, else its PriorityClass (or the global default
    /// class) when admission did not resolve it, else 0.
    pub fn resolve_priority(&self, pod: &k8s_openapi::api::core::v1::Pod) -> i32 {
        let spec = pod.spec.as_ref();
        if let Some(p) = spec.and_then(|s| s.priority) {
            return p;
        }
        if let Some(name) = spec
            .and_then(|s| s.priority_class_name.as_deref())
            .filter(|n| !n.is_empty())
        {
            return self
                .listers
                .priority_classes
                .get(name)
                .map(|pc| pc.value)
                .unwrap_or(0);
        }
        self.listers
            .priority_classes
            .list()
            .iter()
            .find(|pc| pc.global_default == Some(true))
            .map(|pc| pc.value)
            .unwrap_or(0)
    }

    /// The pod's preemption policy, from the spec or its PriorityClass.
    pub fn preemption_policy(&self, pod: &k8s_openapi::api::core::v1::Pod) -> String {
        let spec = pod.spec.as_ref();
        if let Some(p) = spec.and_then(|s| s.preemption_policy.clone()) {
            return p;
        }
        spec.and_then(|s| s.priority_class_name.as_deref())
            .and_then(|n| self.listers.priority_classes.get(n))
            .and_then(|pc| pc.preemption_policy.clone())
            .unwrap_or_else(|| "PreemptLowerPriority".into())
    }
}

/// PreEnqueue: may the pod enter the active queue at all?
pub trait PreEnqueuePlugin: Plugin {
    fn pre_enqueue(&self, pod: &PodInfo) -> Status;
}

/// One plugin instance, seen through each extension point it implements.
#[derive(Clone, Default)]
pub struct PluginInstance {
    pub name: &'static str,
    pub pre_enqueue: Option<Arc<dyn PreEnqueuePlugin>>,
    pub pre_filter: Option<Arc<dyn PreFilterPlugin>>,
    pub filter: Option<Arc<dyn FilterPlugin>>,
    pub post_filter: Option<Arc<dyn PostFilterPlugin>>,
    pub pre_score: Option<Arc<dyn PreScorePlugin>>,
    pub score: Option<Arc<dyn ScorePlugin>>,
    pub reserve: Option<Arc<dyn ReservePlugin>>,
    pub permit: Option<Arc<dyn PermitPlugin>>,
    pub pre_bind: Option<Arc<dyn PreBindPlugin>>,
    pub bind: Option<Arc<dyn BindPlugin>>,
    pub events: &'static [ClusterEvent],
}

impl PluginInstance {
    pub fn new(name: &'static str) -> Self {
        PluginInstance {
            name,
            ..Default::default()
        }
    }
}

/// Which plugins run at each point, in order, with score weights.
#[derive(Clone, Default)]
pub struct Framework {
    pub scheduler_name: String,
    pub handle: Option<Arc<Handle>>,
    pub pre_enqueue: Vec<Arc<dyn PreEnqueuePlugin>>,
    pub pre_filter: Vec<Arc<dyn PreFilterPlugin>>,
    pub filter: Vec<Arc<dyn FilterPlugin>>,
    pub post_filter: Vec<Arc<dyn PostFilterPlugin>>,
    pub pre_score: Vec<Arc<dyn PreScorePlugin>>,
    pub score: Vec<(Arc<dyn ScorePlugin>, i64)>,
    pub reserve: Vec<Arc<dyn ReservePlugin>>,
    pub permit: Vec<Arc<dyn PermitPlugin>>,
    pub pre_bind: Vec<Arc<dyn PreBindPlugin>>,
    pub bind: Vec<Arc<dyn BindPlugin>>,
    /// Plugin name -> the cluster events that may make pods it rejected schedulable.
    pub events: HashMap<&'static str, &'static [ClusterEvent]>,
    /// KubeSchedulerConfiguration percentageOfNodesToScore (0: adaptive).
    pub percentage_of_nodes_to_score: i32,
}

impl Framework {
    pub fn handle(&self) -> &Arc<Handle> {
        self.handle.as_ref().expect("framework built with a handle")
    }

    pub fn run_pre_enqueue(&self, pod: &PodInfo) -> Status {
        for p in &self.pre_enqueue {
            let s = p.pre_enqueue(pod);
            if !s.is_success() {
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Runs PreFilter plugins; plugins answering Skip are left out of Filter for this cycle.
    pub fn run_pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (PreFilterResult, Status, Vec<&'static str>) {
        let mut result = PreFilterResult::all();
        let mut narrowed_by = Vec::new();
        for p in &self.pre_filter {
            let (r, s) = p.pre_filter(state, pod, snapshot);
            if s.is_skip() {
                state.skip_filter.insert(p.name());
                continue;
            }
            if !s.is_success() {
                return (result, s.with_plugin(p.name()), vec![p.name()]);
            }
            if let Some(r) = r
                && r.node_names.is_some()
            {
                narrowed_by.push(p.name());
                result = result.merge(Some(r));
                if result.node_names.as_ref().is_some_and(|n| n.is_empty()) {
                    return (
                        result,
                        Status::unresolvable(format!(
                            "node(s) didn't satisfy plugin(s) [{}] simultaneously",
                            narrowed_by.join(" ")
                        )),
                        narrowed_by,
                    );
                }
            }
        }
        state.filter_skips = (self.filter.len() <= 64).then(|| {
            self.filter
                .iter()
                .enumerate()
                .filter(|(_, p)| state.skip_filter.contains(p.name()))
                .fold(0u64, |m, (i, _)| m | (1 << i))
        });
        (result, Status::success(), narrowed_by)
    }

    pub fn run_pre_filter_add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        added: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        for p in &self.pre_filter {
            if state.skip_filter.contains(p.name()) {
                continue;
            }
            let s = p.add_pod(state, pod, added, node);
            if !s.is_success() {
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    pub fn run_pre_filter_remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        for p in &self.pre_filter {
            if state.skip_filter.contains(p.name()) {
                continue;
            }
            let s = p.remove_pod(state, pod, removed, node);
            if !s.is_success() {
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Runs Filter plugins in order; the first that rejects decides.
    pub fn run_filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for (i, p) in self.filter.iter().enumerate() {
            let skip = match state.filter_skips {
                Some(mask) => mask & (1 << i) != 0,
                None => !state.skip_filter.is_empty() && state.skip_filter.contains(p.name()),
            };
            if skip {
                continue;
            }
            let s = p.filter(state, pod, node);
            if !s.is_success() {
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// RunFilterPluginsWithNominatedPods: pods nominated to this node with at least the
    /// pod's priority count as running there. The filters must pass both with and without
    /// them (without, because the nominated pods may not end up there).
    pub fn run_filter_with_nominated(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        let nominated = match &self.handle {
            Some(h) if !h.nominator.is_empty() => h.nominator.for_node(node.name()),
            _ => Vec::new(),
        };
        let relevant: Vec<_> = nominated
            .into_iter()
            .filter(|n| n.key != pod.key && n.priority >= pod.priority)
            .collect();
        if relevant.is_empty() {
            return self.run_filter(state, pod, node);
        }
        let mut with = node.clone();
        let mut st = state.clone();
        for n in &relevant {
            with.add_pod(n.clone());
            let s = self.run_pre_filter_add_pod(&mut st, pod, n, &with);
            if !s.is_success() {
                return s;
            }
        }
        let s = self.run_filter(&st, pod, &with);
        if !s.is_success() {
            return s;
        }
        self.run_filter(state, pod, node)
    }

    pub async fn run_post_filter(
        &self,
        state: &CycleState,
        pod: &Arc<PodInfo>,
        statuses: &NodeToStatus,
        snapshot: &Snapshot,
    ) -> (Option<PostFilterResult>, Status) {
        let mut reasons = Vec::new();
        for p in &self.post_filter {
            let (r, s) = p.post_filter(self, state, pod, statuses, snapshot).await;
            if s.is_success() {
                return (r, s);
            }
            if !s.is_rejected() {
                return (r, s.with_plugin(p.name()));
            }
            reasons.extend(s.reasons);
            if r.is_some() {
                return (r, Status::with_reasons(Code::Unschedulable, reasons));
            }
        }
        (None, Status::with_reasons(Code::Unschedulable, reasons))
    }

    pub fn run_pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        feasible: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        for p in &self.pre_score {
            let s = p.pre_score(state, pod, feasible, snapshot);
            if s.is_skip() {
                state.skip_score.insert(p.name());
                continue;
            }
            if !s.is_success() {
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Weighted sum of every score plugin's normalized scores, per feasible node.
    pub fn run_score(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        feasible: &[Arc<NodeInfo>],
    ) -> Result<Vec<i64>, Status> {
        let mut total = vec![0i64; feasible.len()];
        let mut scores = vec![0i64; feasible.len()];
        for (p, weight) in &self.score {
            if state.skip_score.contains(p.name()) {
                continue;
            }
            for (i, n) in feasible.iter().enumerate() {
                let (v, s) = p.score(state, pod, n);
                if !s.is_success() {
                    return Err(s.with_plugin(p.name()));
                }
                scores[i] = v;
            }
            let s = p.normalize(state, pod, &mut scores);
            if !s.is_success() {
                return Err(s.with_plugin(p.name()));
            }
            for (t, v) in total.iter_mut().zip(&scores) {
                *t += v * weight;
            }
        }
        Ok(total)
    }

    pub fn run_reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in &self.reserve {
            let s = p.reserve(state, pod, node);
            if !s.is_success() {
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Unreserve runs in reverse order over every reserve plugin.
    pub fn run_unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) {
        for p in self.reserve.iter().rev() {
            p.unreserve(state, pod, node);
        }
    }

    /// Returns Success, a rejection, or Wait with the longest timeout asked for.
    pub fn run_permit(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        node: &str,
    ) -> (Status, Duration) {
        let mut wait = None::<Duration>;
        for p in &self.permit {
            let (s, d) = p.permit(state, pod, node);
            match s.code {
                Code::Success => {}
                Code::Wait => wait = Some(wait.map_or(d, |w| w.max(d))),
                _ => return (s.with_plugin(p.name()), Duration::ZERO),
            }
        }
        match wait {
            Some(d) => (Status::code_only(Code::Wait), d),
            None => (Status::success(), Duration::ZERO),
        }
    }

    pub async fn run_pre_bind(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in &self.pre_bind {
            let s = p.pre_bind(self.handle(), state, pod, node).await;
            if !s.is_success() && !s.is_skip() {
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    pub async fn run_bind(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in &self.bind {
            let s = p.bind(self.handle(), state, pod, node).await;
            if s.is_skip() {
                continue;
            }
            return s.with_plugin(p.name());
        }
        Status::error("no bind plugin bound the pod")
    }

    /// Whether a pod rejected by `plugins` may become schedulable after `event`.
    pub fn event_may_help(&self, plugins: &[&'static str], event: ClusterEvent) -> bool {
        if plugins.is_empty() || event == ClusterEvent::Flush {
            return true;
        }
        plugins
            .iter()
            .any(|p| self.events.get(p).is_none_or(|evs| evs.contains(&event)))
    }
}
