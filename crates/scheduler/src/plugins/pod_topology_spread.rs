//! PodTopologySpread: `topologySpreadConstraints` with maxSkew, whenUnsatisfiable
//! (DoNotSchedule filters, ScheduleAnyway scores), minDomains, matchLabelKeys and the node
//! inclusion policies (nodeAffinityPolicy Honor, nodeTaintsPolicy Ignore by default). Pods
//! without constraints get the system defaults (hostname maxSkew 3, zone maxSkew 5,
//! ScheduleAnyway) with a selector built from their Services, ReplicaSets, RCs and StatefulSets.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Taint, TopologySpreadConstraint};

use crate::framework::label_ids::{self, LabelId};
use crate::framework::node_memo::{Memos, Totals, fold_counted};
use crate::framework::selector::{CompiledNodeSelector, Op, Requirement, Selector};
use crate::framework::types::tolerations_tolerate;
use crate::framework::*;

pub const NAME: &str = "PodTopologySpread";
pub const ERR_REASON_CONSTRAINTS_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints";
pub const ERR_REASON_NODE_LABEL_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
const PRE_FILTER_KEY: &str = "PreFilterPodTopologySpread";
const PRE_SCORE_KEY: &str = "PreScorePodTopologySpread";
const HOSTNAME: &str = "kubernetes.io/hostname";
const ZONE: &str = "topology.kubernetes.io/zone";
/// Score given to nodes left out of scoring (missing a topology label); normalized to 0.
const IGNORED: i64 = -1;

#[derive(Clone, Debug)]
pub struct Constraint {
    pub max_skew: i64,
    pub topology_key: String,
    /// The topology key's [`label_ids`] id; none when no node has ever had the key.
    pub key_id: Option<LabelId>,
    pub selector: Selector,
    pub min_domains: i64,
    pub honor_node_affinity: bool,
    pub honor_node_taints: bool,
}

pub struct PodTopologySpread {
    listers: Listers,
    default_constraints: Vec<TopologySpreadConstraint>,
    system_defaulted: bool,
    /// PreFilter's counts per set of constraints, kept across cycles.
    memo: Memos<NodeCounts, SpreadTotals>,
    /// Score's per-node counts for hostname constraints, per namespace and selector, kept
    /// across cycles.
    host_memo: Memos<NodeCount, PerNode>,
}

/// One node's matching pods for a hostname constraint, under the node's [`node_key`].
type NodeCount = (usize, i64);

/// The address of a `NodeInfo`: the memo holding it keeps the `Arc` alive, so no other node
/// can have the same address while it is a key of [`PerNode`].
fn node_key(n: &NodeInfo) -> usize {
    std::ptr::from_ref(n) as usize
}

/// Matching pods per node (by [`node_key`]); shared with the cycles that read it, copied only
/// when a cycle changes it while an earlier one still holds it.
#[derive(Clone, Default)]
struct PerNode(Arc<HashMap<usize, i64, NameBuildHasher>>);

impl Totals<NodeCount> for PerNode {
    fn clear(&mut self) {
        self.0 = Arc::default();
    }

    fn apply(&mut self, &(node, count): &NodeCount, sign: i64) {
        let map = Arc::make_mut(&mut self.0);
        if sign > 0 {
            map.insert(node, count);
        } else {
            map.remove(&node);
        }
    }
}

/// Sets of constraints whose counts are kept (the most recently used first).
const MEMOS_KEPT: usize = 4;

/// What one node adds to PreFilter's counts: per constraint its domain and matching pods
/// (`None` for a constraint the node is not eligible for); `None` altogether when the node
/// lacks one of the topology keys.
type NodeCounts = Option<Vec<Option<(LabelId, i64)>>>;

/// Matching pods per topology value (its [`label_ids`] id); looked up for every node Filter and
/// Score see, so by number and with the framework's short-key hasher rather than SipHash.
type Counts = HashMap<LabelId, i64, NameBuildHasher>;

/// PreFilter's counts for one set of DoNotSchedule constraints of one namespace (and, where the
/// constraints honour them, one node selector/affinity and one set of tolerations), kept from
/// one cycle to the next in [`Memos`]: per constraint, domain -> (eligible nodes in it,
/// matching pods in it).
#[derive(Clone, Default)]
struct SpreadTotals(Vec<HashMap<LabelId, (usize, i64), NameBuildHasher>>);

impl Totals<NodeCounts> for SpreadTotals {
    fn clear(&mut self) {
        self.0.clear();
    }

    fn apply(&mut self, part: &NodeCounts, sign: i64) {
        let Some(per) = part else { return };
        if self.0.len() < per.len() {
            self.0.resize_with(per.len(), HashMap::default);
        }
        for (i, d) in per.iter().enumerate() {
            let Some((domain, count)) = d else { continue };
            fold_counted(&mut self.0[i], domain, *count, sign);
        }
    }
}

fn spread_memo_key(pod: &PodInfo, constraints: &[Constraint]) -> String {
    let spec = pod.pod.spec.as_ref();
    let mut key = format!("{}\u{0}{constraints:?}", pod.namespace());
    if constraints.iter().any(|c| c.honor_node_affinity) {
        let sel = spec.and_then(|s| s.node_selector.as_ref());
        let aff = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            });
        key.push_str(&format!("\u{0}{sel:?}\u{0}{aff:?}"));
    }
    if constraints.iter().any(|c| c.honor_node_taints) {
        let tols = spec.and_then(|s| s.tolerations.as_ref());
        key.push_str(&format!("\u{0}{tols:?}"));
    }
    key
}

fn node_counts(
    pod: &PodInfo,
    constraints: &[Constraint],
    aff: &NodeAffinityCheck,
    n: &NodeInfo,
) -> NodeCounts {
    if !node_has_all_keys(n, constraints) {
        return None;
    }
    Some(
        constraints
            .iter()
            .map(|c| {
                let v = value_id(n, c)?;
                c.includes_node(pod, aff, n)
                    .then(|| (v, count_matching(n, &c.selector, pod.namespace())))
            })
            .collect(),
    )
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }
}

fn node_has_all_keys(n: &NodeInfo, cs: &[Constraint]) -> bool {
    cs.iter().all(|c| value_id(n, c).is_some())
}

/// The id of the node's value for the constraint's topology key.
fn value_id(n: &NodeInfo, c: &Constraint) -> Option<LabelId> {
    c.key_id.and_then(|k| n.label_id(k))
}

/// Pods on the node in the namespace, not terminating, selected by `sel`.
fn count_matching(node: &NodeInfo, sel: &Selector, ns: &str) -> i64 {
    node.pods
        .iter()
        .filter(|p| !p.is_terminating() && p.namespace() == ns && sel.matches(p.labels()))
        .count() as i64
}

struct NodeAffinityCheck {
    selector: Option<Selector>,
    affinity: Option<CompiledNodeSelector>,
}

impl NodeAffinityCheck {
    fn of(pod: &PodInfo) -> Self {
        let spec = pod.pod.spec.as_ref();
        NodeAffinityCheck {
            selector: spec
                .and_then(|s| s.node_selector.as_ref())
                .map(Selector::from_map),
            affinity: spec
                .and_then(|s| s.affinity.as_ref())
                .and_then(|a| a.node_affinity.as_ref())
                .and_then(|n| {
                    n.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .map(CompiledNodeSelector::compile),
        }
    }

    fn matches(&self, node: &NodeInfo) -> bool {
        self.selector
            .as_ref()
            .is_none_or(|s| s.matches(node.labels()))
            && self
                .affinity
                .as_ref()
                .is_none_or(|a| a.matches(node.name(), node.labels()))
    }
}

fn taints_tolerated(pod: &PodInfo, taints: &[Taint]) -> bool {
    let tols = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[]);
    taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .all(|t| tolerations_tolerate(tols, t))
}

impl Constraint {
    fn includes_node(&self, pod: &PodInfo, aff: &NodeAffinityCheck, node: &NodeInfo) -> bool {
        (!self.honor_node_affinity || aff.matches(node))
            && (!self.honor_node_taints || taints_tolerated(pod, node.taints()))
    }
}

impl PodTopologySpread {
    /// The pod's constraints with the given whenUnsatisfiable, selectors compiled (with
    /// matchLabelKeys merged in from the pod's labels).
    fn constraints(&self, pod: &PodInfo, action: &str) -> Vec<Constraint> {
        let own = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or(&[]);
        if !own.is_empty() {
            return compile(own, pod, action, None);
        }
        if self.default_constraints.is_empty() {
            return Vec::new();
        }
        let sel = self.default_selector(pod);
        if matches!(&sel, Selector::All(r) if r.is_empty()) {
            return Vec::new();
        }
        compile(&self.default_constraints, pod, action, Some(sel))
    }

    /// helper.DefaultSelector: the union of the selectors of the Services, RCs, ReplicaSets
    /// and StatefulSets that select the pod.
    fn default_selector(&self, pod: &PodInfo) -> Selector {
        let ns = pod.namespace();
        let labels = pod.labels();
        let mut set: BTreeMap<String, String> = BTreeMap::new();
        let mut reqs: Vec<Requirement> = Vec::new();
        for s in self.listers.services.list_namespace(ns) {
            if let Some(sel) = s.spec.as_ref().and_then(|s| s.selector.as_ref())
                && !sel.is_empty()
                && Selector::from_map(sel).matches(labels)
            {
                set.extend(sel.clone());
            }
        }
        for rc in self.listers.replication_controllers.list_namespace(ns) {
            if let Some(sel) = rc.spec.as_ref().and_then(|s| s.selector.as_ref())
                && !sel.is_empty()
                && Selector::from_map(sel).matches(labels)
            {
                set.extend(sel.clone());
            }
        }
        let mut add_structured =
            |sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector| {
                let s = Selector::from_label_selector(Some(sel));
                if let Selector::All(r) = &s
                    && !r.is_empty()
                    && s.matches(labels)
                {
                    reqs.extend(r.iter().cloned());
                }
            };
        for rs in self.listers.replica_sets.list_namespace(ns) {
            if let Some(spec) = rs.spec.as_ref() {
                add_structured(&spec.selector);
            }
        }
        for ss in self.listers.stateful_sets.list_namespace(ns) {
            if let Some(spec) = ss.spec.as_ref() {
                add_structured(&spec.selector);
            }
        }
        for (k, v) in set {
            reqs.push(Requirement {
                key: k,
                op: Op::In,
                values: vec![v],
            });
        }
        Selector::All(reqs)
    }
}

fn compile(
    cs: &[TopologySpreadConstraint],
    pod: &PodInfo,
    action: &str,
    selector: Option<Selector>,
) -> Vec<Constraint> {
    cs.iter()
        .filter(|c| c.when_unsatisfiable == action)
        .map(|c| {
            let mut sel = selector
                .clone()
                .unwrap_or_else(|| Selector::from_label_selector(c.label_selector.as_ref()));
            if let Selector::All(reqs) = &mut sel {
                for k in c.match_label_keys.iter().flatten() {
                    if let Some(v) = pod.labels().get(k) {
                        reqs.push(Requirement {
                            key: k.clone(),
                            op: Op::In,
                            values: vec![v.clone()],
                        });
                    }
                }
            }
            Constraint {
                max_skew: c.max_skew as i64,
                topology_key: c.topology_key.clone(),
                key_id: label_ids::lookup(&c.topology_key),
                selector: sel,
                min_domains: c.min_domains.unwrap_or(1) as i64,
                honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
            }
        })
        .collect()
}

#[derive(Clone)]
struct PreFilterState {
    constraints: Vec<Constraint>,
    /// Per constraint: topology value -> matching pods.
    counts: Vec<Counts>,
    /// Per constraint: the global minimum over eligible domains.
    min: Vec<i64>,
    /// Per constraint: 1 if the incoming pod matches its own selector (Filter asks per node).
    self_match: Vec<i64>,
}

impl PreFilterState {
    fn recompute_min(&mut self, i: usize) {
        self.min[i] = self.counts[i]
            .values()
            .copied()
            .min()
            .unwrap_or(i32::MAX as i64);
    }

    fn update(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, delta: i64) {
        if other.namespace() != pod.namespace() || !node_has_all_keys(node, &self.constraints) {
            return;
        }
        let aff = NodeAffinityCheck::of(pod);
        for i in 0..self.constraints.len() {
            let c = &self.constraints[i];
            if !c.includes_node(pod, &aff, node) || !c.selector.matches(other.labels()) {
                continue;
            }
            let Some(v) = value_id(node, c) else { continue };
            *self.counts[i].entry(v).or_default() += delta;
            self.recompute_min(i);
        }
    }
}

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let constraints = self.constraints(pod, "DoNotSchedule");
        if constraints.is_empty() {
            return (None, Status::skip());
        }
        let aff = NodeAffinityCheck::of(pod);
        let totals = self.memo.totals(
            Some(spread_memo_key(pod, &constraints)),
            &snapshot.nodes,
            |n| node_counts(pod, &constraints, &aff, n),
        );
        let mut counts: Vec<Counts> = totals
            .0
            .iter()
            .map(|t| t.iter().map(|(d, (_, c))| (*d, *c)).collect())
            .collect();
        counts.resize_with(constraints.len(), Counts::default);
        let mut s = PreFilterState {
            min: vec![0; constraints.len()],
            self_match: constraints
                .iter()
                .map(|c| i64::from(c.selector.matches(pod.labels())))
                .collect(),
            constraints,
            counts,
        };
        for i in 0..s.constraints.len() {
            s.recompute_min(i);
        }
        state.write(PRE_FILTER_KEY, s);
        (None, Status::success())
    }

    fn add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        added: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        if let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            s.update(pod, added, node, 1);
        }
        Status::success()
    }

    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        if let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            s.update(pod, removed, node, -1);
        }
        Status::success()
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return Status::error(format!(
                "reading {PRE_FILTER_KEY:?} from cycleState: not found"
            ));
        };
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(v) = value_id(node, c) else {
                return Status::unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH);
            };
            let mut min = s.min[i];
            if (s.counts[i].len() as i64) < c.min_domains {
                min = 0;
            }
            let self_match = s.self_match[i];
            let matched = s.counts[i].get(&v).copied().unwrap_or(0);
            if matched + self_match - min > c.max_skew {
                return Status::unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH);
            }
        }
        Status::success()
    }
}

#[derive(Clone)]
struct PreScoreState {
    constraints: Vec<Constraint>,
    ignored: HashSet<String>,
    counts: Vec<Counts>,
    /// Per hostname constraint: each snapshot node's matching pods.
    per_node: Vec<Option<PerNode>>,
    weights: Vec<f64>,
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        feasible: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        if feasible.is_empty() || snapshot.is_empty() {
            return Status::success();
        }
        let constraints = self.constraints(pod, "ScheduleAnyway");
        if constraints.is_empty() {
            return Status::skip();
        }
        let has_own = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_ref())
            .is_some_and(|c| !c.is_empty());
        let require_all = has_own || !self.system_defaulted;
        let mut ignored = HashSet::new();
        let mut counts: Vec<Counts> = vec![Counts::default(); constraints.len()];
        let mut sizes = vec![0usize; constraints.len()];
        // A node without the key counts under the empty value, as upstream's map lookup gives.
        let empty = label_ids::intern("");
        for n in feasible {
            if require_all && !node_has_all_keys(n, &constraints) {
                ignored.insert(n.name().to_string());
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if c.topology_key == HOSTNAME {
                    continue;
                }
                let v = value_id(n, c).unwrap_or(empty);
                if let std::collections::hash_map::Entry::Vacant(e) = counts[i].entry(v) {
                    e.insert(0);
                    sizes[i] += 1;
                }
            }
        }
        let aff = NodeAffinityCheck::of(pod);
        // Hostname constraints count each node's own pods in Score; only other topology keys
        // need every node of the cluster.
        let all_hostname = constraints.iter().all(|c| c.topology_key == HOSTNAME);
        let all_nodes: &[Arc<NodeInfo>] = if all_hostname { &[] } else { &snapshot.nodes };
        for n in all_nodes {
            if require_all && !node_has_all_keys(n, &constraints) {
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if c.topology_key == HOSTNAME || !c.includes_node(pod, &aff, n) {
                    continue;
                }
                let v = value_id(n, c).unwrap_or(empty);
                if let Some(e) = counts[i].get_mut(&v) {
                    *e += count_matching(n, &c.selector, pod.namespace());
                }
            }
        }
        // Hostname constraints count each node's own pods; a node's count changes only with
        // its pods, so the counts are kept from cycle to cycle and only changed nodes counted.
        let per_node = constraints
            .iter()
            .map(|c| {
                (c.topology_key == HOSTNAME).then(|| {
                    let key = format!("{}\u{0}{:?}", pod.namespace(), c.selector);
                    self.host_memo.totals(Some(key), &snapshot.nodes, |n| {
                        (node_key(n), count_matching(n, &c.selector, pod.namespace()))
                    })
                })
            })
            .collect();
        let weights = constraints
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let size = if c.topology_key == HOSTNAME {
                    feasible.len() - ignored.len()
                } else {
                    sizes[i]
                };
                ((size + 2) as f64).ln()
            })
            .collect();
        state.write(
            PRE_SCORE_KEY,
            PreScoreState {
                constraints,
                ignored,
                counts,
                per_node,
                weights,
            },
        );
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return (0, Status::success());
        };
        if !s.ignored.is_empty() && s.ignored.contains(node.name()) {
            return (IGNORED, Status::success());
        }
        let mut score = 0.0;
        for (i, c) in s.constraints.iter().enumerate() {
            if let Some(v) = value_id(node, c) {
                let cnt = if let Some(PerNode(m)) = &s.per_node[i] {
                    match m.get(&node_key(node)) {
                        Some(n) => *n,
                        // Not a node of the snapshot PreScore saw.
                        None => count_matching(node, &c.selector, pod.namespace()),
                    }
                } else {
                    s.counts[i].get(&v).copied().unwrap_or(0)
                };
                score += cnt as f64 * s.weights[i] + (c.max_skew - 1) as f64;
            }
        }
        (score.round() as i64, Status::success())
    }

    fn normalize(&self, state: &CycleState, _: &PodInfo, scores: &mut [i64]) -> Status {
        if state.read::<PreScoreState>(PRE_SCORE_KEY).is_none() {
            return Status::success();
        }
        let kept = scores.iter().copied().filter(|s| *s != IGNORED);
        let min = kept.clone().min().unwrap_or(0);
        let max = kept.max().unwrap_or(0);
        for s in scores.iter_mut() {
            *s = if *s == IGNORED {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
        Status::success()
    }
}

/// PodTopologySpreadArgs: defaultConstraints, defaultingType (System | List).
pub fn new(args: &serde_json::Value, handle: &Arc<Handle>) -> Result<PluginInstance, String> {
    let defaulting = args
        .get("defaultingType")
        .and_then(|v| v.as_str())
        .unwrap_or("System");
    let listed: Vec<TopologySpreadConstraint> = match args.get("defaultConstraints") {
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| e.to_string())?,
        None => Vec::new(),
    };
    let (default_constraints, system_defaulted) = match defaulting {
        "System" => {
            if !listed.is_empty() {
                return Err(
                    "defaultConstraints: Invalid value: when .defaultingType is \"System\"".into(),
                );
            }
            let c = |key: &str, skew: i32| TopologySpreadConstraint {
                max_skew: skew,
                topology_key: key.into(),
                when_unsatisfiable: "ScheduleAnyway".into(),
                ..Default::default()
            };
            (vec![c(HOSTNAME, 3), c(ZONE, 5)], true)
        }
        "List" => (listed, false),
        other => return Err(format!("defaultingType: Unsupported value: {other:?}")),
    };
    let p = Arc::new(PodTopologySpread {
        listers: handle.listers.clone(),
        default_constraints,
        system_defaulted,
        memo: Memos::new(MEMOS_KEPT),
        host_memo: Memos::new(MEMOS_KEPT),
    });
    Ok(PluginInstance {
        pre_filter: Some(p.clone()),
        filter: Some(p.clone()),
        pre_score: Some(p.clone()),
        score: Some(p),
        events: &[
            ClusterEvent::AssignedPodAdd,
            ClusterEvent::AssignedPodUpdate,
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
            ClusterEvent::NodeDelete,
            ClusterEvent::UnscheduledPodUpdate,
        ],
        ..PluginInstance::new(NAME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn plugin() -> PodTopologySpread {
        PodTopologySpread {
            listers: Listers::detached(),
            default_constraints: Vec::new(),
            system_defaulted: false,
            memo: Memos::new(MEMOS_KEPT),
            host_memo: Memos::new(MEMOS_KEPT),
        }
    }

    fn web(name: &str) -> PodBuilder {
        pod(name).label("app", "web")
    }

    fn spread(key: &str, skew: i32, when: &str) -> serde_json::Value {
        json!({"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": when,
               "labelSelector": {"matchLabels": {"app": "web"}}})
    }

    fn filter_all(p: &Arc<PodInfo>, nodes: Vec<NodeInfo>) -> Vec<Status> {
        let snap = Snapshot::from_nodes(nodes);
        let pl = plugin();
        let mut st = CycleState::new();
        let (_, s) = pl.pre_filter(&mut st, p, &snap);
        assert!(s.is_success());
        snap.nodes.iter().map(|n| pl.filter(&st, p, n)).collect()
    }

    fn pre_filter_counts(
        pl: &PodTopologySpread,
        p: &Arc<PodInfo>,
        snap: &Snapshot,
    ) -> Vec<(String, i64)> {
        let mut st = CycleState::new();
        let (_, s) = pl.pre_filter(&mut st, p, snap);
        assert!(s.is_success());
        let mut counts: Vec<(String, i64)> =
            st.read::<PreFilterState>(PRE_FILTER_KEY).unwrap().counts[0]
                .iter()
                .map(|(d, c)| (label_ids::name(*d).unwrap().to_string(), *c))
                .collect();
        counts.sort();
        counts
    }

    #[test]
    fn counts_kept_across_cycles_follow_changed_added_and_removed_nodes() {
        let pl = plugin();
        let p = web("p").spread(spread("zone", 1, "DoNotSchedule")).obj();
        let a = Arc::new(
            node("a")
                .label("zone", "z1")
                .with_pod(web("x").obj())
                .info(),
        );
        let b = Arc::new(node("b").label("zone", "z2").info());
        let mut snap = Snapshot {
            nodes: vec![a.clone(), b],
            ..Default::default()
        };
        snap.reindex();
        let z = |v: &[(&str, i64)]| {
            v.iter()
                .map(|(d, c)| (d.to_string(), *c))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            pre_filter_counts(&pl, &p, &snap),
            z(&[("z1", 1), ("z2", 0)])
        );
        // b gains two matching pods and one that does not match: only b is a new NodeInfo.
        snap.nodes[1] = Arc::new(
            node("b")
                .label("zone", "z2")
                .with_pod(web("y").obj())
                .with_pod(web("w").obj())
                .with_pod(pod("other").label("app", "db").obj())
                .info(),
        );
        assert_eq!(
            pre_filter_counts(&pl, &p, &snap),
            z(&[("z1", 1), ("z2", 2)])
        );
        // A node joins in a new zone; then b leaves with its pods.
        snap.nodes
            .push(Arc::new(node("c").label("zone", "z3").info()));
        snap.reindex();
        assert_eq!(
            pre_filter_counts(&pl, &p, &snap),
            z(&[("z1", 1), ("z2", 2), ("z3", 0)])
        );
        snap.nodes.remove(1);
        snap.reindex();
        assert_eq!(
            pre_filter_counts(&pl, &p, &snap),
            z(&[("z1", 1), ("z3", 0)])
        );
        // Another namespace is another set of counts: x is not in it.
        let q = pod("q")
            .namespace("other")
            .label("app", "web")
            .spread(spread("zone", 1, "DoNotSchedule"))
            .obj();
        assert_eq!(
            pre_filter_counts(&pl, &q, &snap),
            z(&[("z1", 0), ("z3", 0)])
        );
        assert_eq!(
            pre_filter_counts(&pl, &p, &snap),
            z(&[("z1", 1), ("z3", 0)])
        );
    }

    #[test]
    fn max_skew_keeps_zones_even() {
        let p = web("p").spread(spread("zone", 1, "DoNotSchedule")).obj();
        let st = filter_all(
            &p,
            vec![
                node("a")
                    .label("zone", "z1")
                    .with_pod(web("x").obj())
                    .info(),
                node("b").label("zone", "z2").info(),
                node("c").info(),
            ],
        );
        assert_eq!(
            st[0],
            Status::unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH)
        );
        assert!(st[1].is_success());
        assert_eq!(st[2], Status::unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH));
    }

    #[test]
    fn min_domains_treats_the_global_minimum_as_zero() {
        let mut c = spread("zone", 1, "DoNotSchedule");
        c["minDomains"] = json!(3);
        let p = web("p").spread(c).obj();
        let st = filter_all(
            &p,
            vec![
                node("a")
                    .label("zone", "z1")
                    .with_pod(web("x").obj())
                    .info(),
                node("b")
                    .label("zone", "z2")
                    .with_pod(web("y").obj())
                    .info(),
            ],
        );
        // Only two domains exist: the minimum counts as 0, so 1 + 1 - 0 > 1 everywhere.
        assert!(st.iter().all(|s| s.code == Code::Unschedulable));
    }

    #[test]
    fn node_affinity_policy_leaves_out_nodes_the_pod_cannot_use() {
        let p = web("p")
            .node_selector("pool", "a")
            .spread(spread("zone", 1, "DoNotSchedule"))
            .obj();
        // z2's only node is outside the pod's nodeSelector: z2 is not an eligible domain.
        let st = filter_all(
            &p,
            vec![
                node("a")
                    .label("zone", "z1")
                    .label("pool", "a")
                    .with_pod(web("x").obj())
                    .info(),
                node("b").label("zone", "z2").info(),
            ],
        );
        assert!(st[0].is_success());
    }

    #[test]
    fn schedule_anyway_scores_emptier_domains_higher() {
        let p = web("p").spread(spread("zone", 1, "ScheduleAnyway")).obj();
        let snap = Snapshot::from_nodes(vec![
            node("a")
                .label("zone", "z1")
                .with_pod(web("x").obj())
                .with_pod(web("y").obj())
                .info(),
            node("b")
                .label("zone", "z2")
                .with_pod(web("z").obj())
                .info(),
            node("c").label("zone", "z3").info(),
            node("d").info(),
        ]);
        let pl = plugin();
        let mut st = CycleState::new();
        assert!(pl.pre_score(&mut st, &p, &snap.nodes, &snap).is_success());
        let mut scores: Vec<i64> = snap.nodes.iter().map(|n| pl.score(&st, &p, n).0).collect();
        pl.normalize(&st, &p, &mut scores);
        assert!(scores[2] > scores[1] && scores[1] > scores[0], "{scores:?}");
        assert_eq!(scores[3], 0, "nodes without the key are ignored");
    }

    #[test]
    fn hostname_scores_kept_across_cycles_follow_the_nodes_that_changed() {
        let p = web("p").spread(spread(HOSTNAME, 1, "ScheduleAnyway")).obj();
        let host = |name: &str| node(name).label(HOSTNAME, name);
        let a = Arc::new(host("a").with_pod(web("x").obj()).info());
        let b = Arc::new(host("b").info());
        let pl = plugin();
        let raw = |nodes: &[Arc<NodeInfo>]| {
            let mut snap = Snapshot {
                nodes: nodes.to_vec(),
                ..Default::default()
            };
            snap.reindex();
            let mut st = CycleState::new();
            assert!(pl.pre_score(&mut st, &p, &snap.nodes, &snap).is_success());
            snap.nodes
                .iter()
                .map(|n| pl.score(&st, &p, n).0)
                .collect::<Vec<_>>()
        };
        let first = raw(&[a.clone(), b.clone()]);
        assert!(first[0] > first[1], "{first:?}");
        // b gains two pods (a new NodeInfo, as the cache makes one on write); a is the same.
        let b2 = Arc::new(
            host("b")
                .with_pod(web("y").obj())
                .with_pod(web("z").obj())
                .info(),
        );
        let second = raw(&[a.clone(), b2]);
        assert_eq!(second[0], first[0], "{second:?}");
        assert!(second[1] > second[0], "{second:?}");
        // A node Score was not shown in PreScore is counted directly.
        let mut snap = Snapshot {
            nodes: vec![a.clone()],
            ..Default::default()
        };
        snap.reindex();
        let mut st = CycleState::new();
        assert!(pl.pre_score(&mut st, &p, &snap.nodes, &snap).is_success());
        let other = host("c").with_pod(web("w").obj()).info();
        assert_eq!(pl.score(&st, &p, &other).0, first[0]);
    }

    #[test]
    fn system_default_constraints_need_an_owner_selector() {
        let h = handle();
        let inst = new(&serde_json::Value::Null, &h).unwrap();
        let pre = inst.pre_score.unwrap();
        let snap = Snapshot::from_nodes(vec![node("a").info()]);
        let p = web("p").obj();
        assert!(
            pre.pre_score(&mut CycleState::new(), &p, &snap.nodes, &snap)
                .is_skip()
        );
        h.listers.services.apply(
            serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}}}))
            .unwrap(),
        );
        assert!(
            pre.pre_score(&mut CycleState::new(), &p, &snap.nodes, &snap)
                .is_success()
        );
    }
}
