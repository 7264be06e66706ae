//! The extension points: one small trait per point, status codes, and the per-cycle state.
//! Plugins say what they found with a [`Status`]; the framework, not the plugin, decides what
//! a code means for the pod (try other nodes, give up on this node for preemption, retry...).

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::Handle;
use super::snapshot::Snapshot;
use super::types::{NodeInfo, PodInfo};

/// framework.Code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    Success,
    /// An internal error: the pod is retried with backoff, no preemption.
    Error,
    /// The node cannot take the pod now; preemption may help.
    Unschedulable,
    /// The node cannot take the pod and preemption will not change that.
    UnschedulableAndUnresolvable,
    /// Permit: wait for an allow or a reject.
    Wait,
    /// PreFilter/PreScore: this plugin has nothing to check for this pod; Bind: not mine.
    Skip,
    /// The pod waits for something outside the scheduler (a PVC to be provisioned...).
    Pending,
}

/// What a plugin found: a code, the reasons users read, and which plugin said it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    pub plugin: &'static str,
}

impl Default for Status {
    fn default() -> Self {
        Status::success()
    }
}

impl Status {
    pub const fn success() -> Self {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    pub fn new(code: Code, reason: impl Into<String>) -> Self {
        Status {
            code,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }

    pub fn with_reasons(code: Code, reasons: Vec<String>) -> Self {
        Status {
            code,
            reasons,
            plugin: "",
        }
    }

    pub fn code_only(code: Code) -> Self {
        Status {
            code,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    pub fn unschedulable(reason: impl Into<String>) -> Self {
        Status::new(Code::Unschedulable, reason)
    }

    pub fn unresolvable(reason: impl Into<String>) -> Self {
        Status::new(Code::UnschedulableAndUnresolvable, reason)
    }

    pub fn error(msg: impl Into<String>) -> Self {
        Status::new(Code::Error, msg)
    }

    pub fn skip() -> Self {
        Status::code_only(Code::Skip)
    }

    pub fn with_plugin(mut self, plugin: &'static str) -> Self {
        if self.plugin.is_empty() {
            self.plugin = plugin;
        }
        self
    }

    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    pub fn is_skip(&self) -> bool {
        self.code == Code::Skip
    }

    /// The pod was rejected (as opposed to an error).
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable | Code::Pending
        )
    }

    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

/// Data a plugin keeps for one scheduling cycle. Cloned for preemption's what-if runs.
pub trait StateData: Any + Send + Sync {
    fn clone_box(&self) -> Box<dyn StateData>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Clone + Send + Sync> StateData for T {
    fn clone_box(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// FNV-1a for the short static plugin-name keys of the cycle state: they are looked up for
/// every node in every cycle, where SipHash stood out in profiles.
#[derive(Clone, Copy)]
pub struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> Self {
        NameHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

pub type NameBuildHasher = std::hash::BuildHasherDefault<NameHasher>;

/// framework.CycleState: per-cycle data keyed by plugin, plus the plugins that asked to be
/// skipped for the rest of the cycle.
#[derive(Default)]
pub struct CycleState {
    /// A dozen entries at most, read for every node by Filter and Score plugins: a scan that
    /// compares lengths and then addresses (the keys are the plugins' constants) costs less
    /// than hashing the key.
    data: Vec<(&'static str, Box<dyn StateData>)>,
    pub skip_filter: HashSet<&'static str, NameBuildHasher>,
    pub skip_score: HashSet<&'static str, NameBuildHasher>,
    /// `skip_filter` as one bit per Filter plugin of the framework, in its order, once
    /// PreFilter has run: Filter runs per node, and a set lookup per node and plugin was a
    /// tenth of the scheduler's time with 5,000 nodes.
    pub(crate) filter_skips: Option<u64>,
}

impl Clone for CycleState {
    fn clone(&self) -> Self {
        CycleState {
            data: self
                .data
                .iter()
                .map(|(k, v)| (*k, (**v).clone_box()))
                .collect(),
            skip_filter: self.skip_filter.clone(),
            skip_score: self.skip_score.clone(),
            filter_skips: self.filter_skips,
        }
    }
}

impl CycleState {
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.data.iter().position(|(k, _)| {
            k.len() == key.len() && (std::ptr::eq(k.as_ptr(), key.as_ptr()) || *k == key)
        })
    }

    pub fn write<T: StateData>(&mut self, key: &'static str, v: T) {
        match self.position(key) {
            Some(i) => self.data[i].1 = Box::new(v),
            None => self.data.push((key, Box::new(v))),
        }
    }

    pub fn read<T: 'static>(&self, key: &'static str) -> Option<&T> {
        let i = self.position(key)?;
        (*self.data[i].1).as_any().downcast_ref()
    }

    pub fn read_mut<T: 'static>(&mut self, key: &'static str) -> Option<&mut T> {
        let i = self.position(key)?;
        (*self.data[i].1).as_any_mut().downcast_mut()
    }
}

/// Which nodes a PreFilter plugin already knows are the only candidates (None: all).
#[derive(Clone, Debug, Default)]
pub struct PreFilterResult {
    pub node_names: Option<HashSet<String>>,
}

impl PreFilterResult {
    pub fn all() -> Self {
        PreFilterResult { node_names: None }
    }

    pub fn merge(self, other: Option<PreFilterResult>) -> PreFilterResult {
        let Some(other) = other else { return self };
        match (self.node_names, other.node_names) {
            (None, x) | (x, None) => PreFilterResult { node_names: x },
            (Some(a), Some(b)) => PreFilterResult {
                node_names: Some(a.intersection(&b).cloned().collect()),
            },
        }
    }
}

/// Per-node statuses of a failed cycle; nodes not listed get `absent`.
#[derive(Clone, Debug)]
pub struct NodeToStatus {
    pub map: HashMap<String, Status>,
    pub absent: Status,
}

impl Default for NodeToStatus {
    fn default() -> Self {
        NodeToStatus {
            map: HashMap::new(),
            absent: Status::code_only(Code::UnschedulableAndUnresolvable),
        }
    }
}

impl NodeToStatus {
    pub fn get(&self, node: &str) -> &Status {
        self.map.get(node).unwrap_or(&self.absent)
    }
}

pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
}

/// PreFilter: checks on the pod alone and per-cycle precomputation over all nodes.
pub trait PreFilterPlugin: Plugin {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status);

    /// PreFilterExtensions.AddPod: the precomputed state as if `added` ran on `node`
    /// (nominated pods, reprieved preemption victims). Plugins without such state do nothing.
    fn add_pod(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _added: &PodInfo,
        _node: &NodeInfo,
    ) -> Status {
        Status::success()
    }

    /// PreFilterExtensions.RemovePod.
    fn remove_pod(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _removed: &PodInfo,
        _node: &NodeInfo,
    ) -> Status {
        Status::success()
    }
}

/// Filter: can the pod run on this node?
pub trait FilterPlugin: Plugin {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// What a PostFilter plugin (preemption) achieved.
#[derive(Clone, Debug, Default)]
pub struct PostFilterResult {
    /// The node the pod is nominated to (victims are being evicted there); Some("") clears it.
    pub nominated_node_name: Option<String>,
}

/// PostFilter: runs when no node fits.
#[async_trait]
pub trait PostFilterPlugin: Plugin {
    async fn post_filter(
        &self,
        fw: &super::Framework,
        state: &CycleState,
        pod: &Arc<PodInfo>,
        statuses: &NodeToStatus,
        snapshot: &Snapshot,
    ) -> (Option<PostFilterResult>, Status);
}

/// PreScore: precomputation for scoring over the feasible nodes.
pub trait PreScorePlugin: Plugin {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        feasible: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status;
}

/// The highest score a plugin may give after normalization.
pub const MAX_NODE_SCORE: i64 = 100;

/// Score: how much the plugin likes this node; normalized to 0..=100 afterwards.
pub trait ScorePlugin: Plugin {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status);

    /// ScoreExtensions.NormalizeScore over all scored nodes, in place.
    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [i64]) -> Status {
        Status::success()
    }
}

/// Reserve/Unreserve: keep per-node state in step with the assumed pod.
pub trait ReservePlugin: Plugin {
    fn reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status;
    /// Must be idempotent: it may run for a pod that was never reserved by this plugin.
    fn unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str);
}

/// Permit: approve, reject, or hold the pod (Wait, up to the returned timeout).
pub trait PermitPlugin: Plugin {
    fn permit(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> (Status, Duration);
}

/// PreBind: work that must happen before the binding (volume binding through the API).
#[async_trait]
pub trait PreBindPlugin: Plugin {
    async fn pre_bind(
        &self,
        handle: &Handle,
        state: &CycleState,
        pod: &PodInfo,
        node: &str,
    ) -> Status;
}

/// Bind: writes the binding. `Skip` hands the pod to the next bind plugin.
#[async_trait]
pub trait BindPlugin: Plugin {
    async fn bind(&self, handle: &Handle, state: &CycleState, pod: &PodInfo, node: &str) -> Status;
}

/// Cluster changes a plugin cares about: a pod it rejected is moved back to the active queue
/// when one of them happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClusterEvent {
    NodeAdd,
    NodeUpdate,
    NodeDelete,
    AssignedPodAdd,
    AssignedPodUpdate,
    AssignedPodDelete,
    UnscheduledPodUpdate,
    PvcChange,
    PvChange,
    StorageClassChange,
    NamespaceChange,
    ServiceChange,
    PriorityClassChange,
    /// A periodic flush of pods that waited too long.
    Flush,
}

pub trait EnqueueExtensions {
    fn events_to_register(&self) -> &'static [ClusterEvent];
}
