//! InterPodAffinity: required pod affinity and anti-affinity by topology domain (with
//! namespaces and namespaceSelector), the symmetric check against existing pods' required
//! anti-affinity, and scoring by preferred terms of both the incoming and existing pods.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::framework::label_ids::{self, LabelId};
use crate::framework::node_memo::{Memos, Totals, fold_counted};
use crate::framework::types::AffinityTerm;
use crate::framework::*;

pub const NAME: &str = "InterPodAffinity";
pub const ERR_REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
pub const ERR_REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
const PRE_FILTER_KEY: &str = "PreFilterInterPodAffinity";
const PRE_SCORE_KEY: &str = "PreScoreInterPodAffinity";

/// topology key -> value -> V, by [`label_ids`] ids: Filter and Score look a node's value up
/// without touching its label strings, and the copy each cycle takes from the memo is a copy
/// of numbers.
type ByDomain<V> = HashMap<LabelId, HashMap<LabelId, V, NameBuildHasher>, NameBuildHasher>;

/// The [`label_ids`] id of a term's topology key; none when no node has the key.
fn key_id(t: &AffinityTerm) -> Option<LabelId> {
    label_ids::lookup(&t.topology_key)
}

/// The node's value (id) for the term's topology key.
fn node_value(n: &NodeInfo, t: &AffinityTerm) -> Option<(LabelId, LabelId)> {
    let k = key_id(t)?;
    Some((k, n.label_id(k)?))
}

/// (topology key, value) -> count.
#[derive(Clone, Default)]
struct Counts(ByDomain<i64>);

impl Counts {
    fn get(&self, key: LabelId, value: LabelId) -> i64 {
        self.0
            .get(&key)
            .and_then(|m| m.get(&value))
            .copied()
            .unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether one of the node's labels has a positive count.
    fn any_label(&self, n: &NodeInfo) -> bool {
        self.0.iter().any(|(k, values)| {
            n.label_id(*k)
                .is_some_and(|v| values.get(&v).is_some_and(|c| *c > 0))
        })
    }

    fn bump(&mut self, key: LabelId, value: LabelId, by: i64) {
        let values = self.0.entry(key).or_default();
        let c = values.entry(value).or_default();
        *c += by;
        if *c == 0 {
            values.remove(&value);
        }
        if values.is_empty() {
            self.0.remove(&key);
        }
    }
}

pub struct InterPodAffinity {
    listers: Listers,
    hard_pod_affinity_weight: i64,
    ignore_preferred_terms_of_existing_pods: bool,
    /// PreFilter's and PreScore's walks over every pod, kept across cycles per incoming pod
    /// shape (namespace, labels, terms), recomputed only for changed nodes.
    filter_memo: Memos<FilterPart, FilterTotals>,
    score_memo: Memos<ScorePart, ScoreTotals>,
}

/// Pod shapes whose walks are kept (the most recently used first).
const MEMOS_KEPT: usize = 4;

/// The three counts of PreFilter.
#[derive(Clone, Copy)]
enum Which {
    /// Existing pods whose required anti-affinity selects the incoming pod.
    ExistingAntiAffinity,
    /// Existing pods that satisfy all of the incoming pod's required affinity terms.
    Affinity,
    /// Existing pods the incoming pod's required anti-affinity selects.
    AntiAffinity,
}

/// Bumps of PreFilter's counts: (which count, topology key, value).
type FilterPart = Vec<(Which, LabelId, LabelId)>;

/// PreFilter's counts by (topology key, value).
#[derive(Clone, Default)]
struct FilterTotals {
    existing_anti_affinity: Counts,
    affinity: Counts,
    anti_affinity: Counts,
}

impl Totals<FilterPart> for FilterTotals {
    fn clear(&mut self) {
        *self = Self::default();
    }

    fn apply(&mut self, part: &FilterPart, sign: i64) {
        for (which, key, value) in part {
            let counts = match which {
                Which::ExistingAntiAffinity => &mut self.existing_anti_affinity,
                Which::Affinity => &mut self.affinity,
                Which::AntiAffinity => &mut self.anti_affinity,
            };
            counts.bump(*key, *value, sign);
        }
    }
}

/// One node's additions to PreScore's scores: (topology key, value, weight).
type ScorePart = Vec<(LabelId, LabelId, i64)>;

/// topology key -> value -> (additions, summed weight); an entry lives while any addition does.
#[derive(Clone, Default)]
struct ScoreTotals(ByDomain<(usize, i64)>);

impl Totals<ScorePart> for ScoreTotals {
    fn clear(&mut self) {
        self.0.clear();
    }

    fn apply(&mut self, part: &ScorePart, sign: i64) {
        for (key, value, w) in part {
            let per_key = self.0.entry(*key).or_default();
            fold_counted(per_key, value, *w, sign);
            if per_key.is_empty() {
                self.0.remove(key);
            }
        }
    }
}

/// What the walks depend on besides the nodes: the incoming pod's namespace, its labels, its
/// namespace's labels, and the given terms. None when a term has a namespaceSelector: then the
/// walk also depends on other namespaces' labels, which no node change reveals.
fn memo_key<'a>(
    pod: &PodInfo,
    ns_labels: Option<&BTreeMap<String, String>>,
    terms: impl Iterator<Item = &'a AffinityTerm>,
) -> Option<String> {
    let mut key = format!(
        "{}\u{0}{:?}\u{0}{ns_labels:?}",
        pod.namespace(),
        pod.labels()
    );
    for t in terms {
        if t.namespace_selector.is_some() {
            return None;
        }
        let mut namespaces: Vec<&String> = t.namespaces.iter().collect();
        namespaces.sort();
        key.push_str(&format!(
            "\u{0}{namespaces:?}\u{0}{:?}\u{0}{}",
            t.selector, t.topology_key
        ));
    }
    Some(key)
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
}

#[derive(Clone)]
struct PreFilterState {
    counts: FilterTotals,
    ns_labels: Option<BTreeMap<String, String>>,
    /// The topology key ids of the pod's required affinity and anti-affinity terms.
    affinity_keys: Vec<Option<LabelId>>,
    anti_affinity_keys: Vec<Option<LabelId>>,
}

impl InterPodAffinity {
    /// What `other`, on `node`, adds to PreFilter's counts for `pod`.
    fn pod_bumps(
        &self,
        out: &mut FilterPart,
        pod: &PodInfo,
        ns_labels: Option<&BTreeMap<String, String>>,
        other: &PodInfo,
        node: &NodeInfo,
    ) {
        for t in &other.required_anti_affinity {
            if let Some((k, v)) = node_value(node, t)
                && self.term_matches(t, pod, ns_labels)
            {
                out.push((Which::ExistingAntiAffinity, k, v));
            }
        }
        if self.all_terms_match(&pod.required_affinity, other) {
            for t in &pod.required_affinity {
                if let Some((k, v)) = node_value(node, t) {
                    out.push((Which::Affinity, k, v));
                }
            }
        }
        for t in &pod.required_anti_affinity {
            if let Some((k, v)) = node_value(node, t)
                && self.term_matches(t, other, None)
            {
                out.push((Which::AntiAffinity, k, v));
            }
        }
    }

    /// Every pod on `n`, for PreFilter's counts.
    fn filter_part(
        &self,
        pod: &PodInfo,
        ns_labels: Option<&BTreeMap<String, String>>,
        n: &NodeInfo,
    ) -> FilterPart {
        let mut part = Vec::new();
        for existing in &n.pods {
            self.pod_bumps(&mut part, pod, ns_labels, existing, n);
        }
        part
    }

    fn ns_labels(&self, ns: &str) -> Option<BTreeMap<String, String>> {
        self.listers.namespace_labels(ns)
    }

    /// Does `term` (of some pod) select `target`?
    fn term_matches(
        &self,
        term: &AffinityTerm,
        target: &PodInfo,
        target_ns_labels: Option<&BTreeMap<String, String>>,
    ) -> bool {
        if term.namespace_selector.is_some() && target_ns_labels.is_none() {
            let l = self.ns_labels(target.namespace());
            return term.matches(target, l.as_ref());
        }
        term.matches(target, target_ns_labels)
    }

    fn all_terms_match(&self, terms: &[AffinityTerm], target: &PodInfo) -> bool {
        !terms.is_empty() && terms.iter().all(|t| self.term_matches(t, target, None))
    }

    /// PreFilterState.updateWithPod: the counts with `other` added on `node` (by = 1) or
    /// removed from it (by = -1).
    fn update_with_pod(
        &self,
        s: &mut PreFilterState,
        pod: &PodInfo,
        other: &PodInfo,
        node: &NodeInfo,
        by: i64,
    ) {
        let mut part = Vec::new();
        self.pod_bumps(&mut part, pod, s.ns_labels.as_ref(), other, node);
        s.counts.apply(&part, by);
    }
}

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let ns_labels = self.ns_labels(pod.namespace());
        let counts = if pod.required_affinity.is_empty() && pod.required_anti_affinity.is_empty() {
            // Only existing pods' required anti-affinity can matter: walk the nodes that have
            // such pods.
            let mut counts = FilterTotals::default();
            for n in snapshot.nodes_with_required_anti_affinity() {
                counts.apply(&self.filter_part(pod, ns_labels.as_ref(), n), 1);
            }
            if counts.existing_anti_affinity.is_empty() {
                return (None, Status::skip());
            }
            counts
        } else {
            let key = memo_key(
                pod,
                ns_labels.as_ref(),
                pod.required_affinity
                    .iter()
                    .chain(&pod.required_anti_affinity),
            );
            self.filter_memo.totals(key, &snapshot.nodes, |n| {
                self.filter_part(pod, ns_labels.as_ref(), n)
            })
        };
        let s = PreFilterState {
            counts,
            ns_labels,
            affinity_keys: pod.required_affinity.iter().map(key_id).collect(),
            anti_affinity_keys: pod.required_anti_affinity.iter().map(key_id).collect(),
        };
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
        let Some(mut s) = state.read::<PreFilterState>(PRE_FILTER_KEY).cloned() else {
            return Status::success();
        };
        self.update_with_pod(&mut s, pod, added, node, 1);
        state.write(PRE_FILTER_KEY, s);
        Status::success()
    }

    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        let Some(mut s) = state.read::<PreFilterState>(PRE_FILTER_KEY).cloned() else {
            return Status::success();
        };
        self.update_with_pod(&mut s, pod, removed, node, -1);
        state.write(PRE_FILTER_KEY, s);
        Status::success()
    }
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return Status::error(format!(
                "reading {PRE_FILTER_KEY:?} from cycleState: not found"
            ));
        };
        // Pod affinity: every term's topology must exist on the node with a matching pod in
        // that domain, unless no pod matches anywhere and the pod matches its own terms (the
        // first of a group that attracts itself).
        let mut pods_exist = true;
        for k in &s.affinity_keys {
            match k.and_then(|k| Some((k, node.label_id(k)?))) {
                Some((k, v)) => {
                    if s.counts.affinity.get(k, v) <= 0 {
                        pods_exist = false;
                    }
                }
                None => return Status::unresolvable(ERR_REASON_AFFINITY),
            }
        }
        // With no matching pod anywhere, only a pod matching its own terms may start a group.
        if !(pods_exist
            || (s.counts.affinity.is_empty() && self.all_terms_match(&pod.required_affinity, pod)))
        {
            return Status::unresolvable(ERR_REASON_AFFINITY);
        }
        if !s.counts.anti_affinity.is_empty() {
            for k in s.anti_affinity_keys.iter().flatten() {
                if let Some(v) = node.label_id(*k)
                    && s.counts.anti_affinity.get(*k, v) > 0
                {
                    return Status::unschedulable(ERR_REASON_ANTI_AFFINITY);
                }
            }
        }
        if s.counts.existing_anti_affinity.any_label(node) {
            return Status::unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY);
        }
        Status::success()
    }
}

#[derive(Clone)]
struct PreScoreState {
    /// topology key -> value -> score
    scores: ByDomain<i64>,
}

impl InterPodAffinity {
    /// What `existing` on `node` adds to the incoming pod's scores, appended to `out`.
    fn process_existing(
        &self,
        out: &mut ScorePart,
        pod: &PodInfo,
        ns_labels: Option<&BTreeMap<String, String>>,
        existing: &PodInfo,
        node: &NodeInfo,
    ) {
        if node.labels().is_empty() {
            return;
        }
        let mut add = |t: &AffinityTerm, w: i64| {
            if let Some((k, v)) = node_value(node, t) {
                out.push((k, v, w));
            }
        };
        for t in &pod.preferred_affinity {
            if self.term_matches(&t.term, existing, None) {
                add(&t.term, t.weight as i64);
            }
        }
        for t in &pod.preferred_anti_affinity {
            if self.term_matches(&t.term, existing, None) {
                add(&t.term, -(t.weight as i64));
            }
        }
        if self.hard_pod_affinity_weight > 0 {
            for t in &existing.required_affinity {
                if self.term_matches(t, pod, ns_labels) {
                    add(t, self.hard_pod_affinity_weight);
                }
            }
        }
        for t in &existing.preferred_affinity {
            if self.term_matches(&t.term, pod, ns_labels) {
                add(&t.term, t.weight as i64);
            }
        }
        for t in &existing.preferred_anti_affinity {
            if self.term_matches(&t.term, pod, ns_labels) {
                add(&t.term, -(t.weight as i64));
            }
        }
    }

    /// Every pod on `node`, for a pod with preferred terms of its own.
    fn score_part(
        &self,
        pod: &PodInfo,
        ns_labels: Option<&BTreeMap<String, String>>,
        node: &NodeInfo,
    ) -> ScorePart {
        let mut part = Vec::new();
        for existing in &node.pods {
            self.process_existing(&mut part, pod, ns_labels, existing, node);
        }
        part
    }
}

impl PreScorePlugin for InterPodAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        feasible: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        if feasible.is_empty() {
            return Status::success();
        }
        let has_constraints =
            !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        if self.ignore_preferred_terms_of_existing_pods && !has_constraints {
            return Status::skip();
        }
        let ns_labels = self.ns_labels(pod.namespace());
        let totals_to_scores = |t: &ScoreTotals| -> ByDomain<i64> {
            t.0.iter()
                .map(|(k, per)| (*k, per.iter().map(|(v, (_, w))| (*v, *w)).collect()))
                .collect()
        };
        let scores = if has_constraints {
            let key = memo_key(
                pod,
                ns_labels.as_ref(),
                pod.preferred_affinity
                    .iter()
                    .chain(&pod.preferred_anti_affinity)
                    .map(|t| &t.term),
            );
            let totals = self.score_memo.totals(key, &snapshot.nodes, |n| {
                self.score_part(pod, ns_labels.as_ref(), n)
            });
            totals_to_scores(&totals)
        } else {
            let mut totals = ScoreTotals::default();
            for n in snapshot.nodes_with_affinity() {
                let mut part = Vec::new();
                for existing in n.pods.iter().filter(|p| p.has_affinity()) {
                    self.process_existing(&mut part, pod, ns_labels.as_ref(), existing, n);
                }
                totals.apply(&part, 1);
            }
            totals_to_scores(&totals)
        };
        if scores.is_empty() {
            return Status::skip();
        }
        state.write(PRE_SCORE_KEY, PreScoreState { scores });
        Status::success()
    }
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return (0, Status::success());
        };
        let mut score = 0;
        for (k, values) in &s.scores {
            if let Some(v) = node.label_id(*k) {
                score += values.get(&v).copied().unwrap_or(0);
            }
        }
        (score, Status::success())
    }

    fn normalize(&self, state: &CycleState, _: &PodInfo, scores: &mut [i64]) -> Status {
        if state
            .read::<PreScoreState>(PRE_SCORE_KEY)
            .is_none_or(|s| s.scores.is_empty())
        {
            return Status::success();
        }
        let min = scores.iter().copied().min().unwrap_or(0);
        let max = scores.iter().copied().max().unwrap_or(0);
        let diff = max - min;
        for s in scores.iter_mut() {
            *s = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
        Status::success()
    }
}

/// InterPodAffinityArgs: hardPodAffinityWeight (default 1), ignorePreferredTermsOfExistingPods.
pub fn new(args: &serde_json::Value, handle: &Arc<Handle>) -> Result<PluginInstance, String> {
    let weight = args
        .get("hardPodAffinityWeight")
        .and_then(|v| v.as_i64())
        .unwrap_or(1);
    if !(0..=100).contains(&weight) {
        return Err(format!(
            "hardPodAffinityWeight: Invalid value: {weight}: not in valid range [0-100]"
        ));
    }
    let p = Arc::new(InterPodAffinity {
        listers: handle.listers.clone(),
        hard_pod_affinity_weight: weight,
        ignore_preferred_terms_of_existing_pods: args
            .get("ignorePreferredTermsOfExistingPods")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        filter_memo: Memos::new(MEMOS_KEPT),
        score_memo: Memos::new(MEMOS_KEPT),
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
            ClusterEvent::NamespaceChange,
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

    fn plugin() -> InterPodAffinity {
        InterPodAffinity {
            listers: Listers::detached(),
            hard_pod_affinity_weight: 1,
            ignore_preferred_terms_of_existing_pods: false,
            filter_memo: Memos::new(MEMOS_KEPT),
            score_memo: Memos::new(MEMOS_KEPT),
        }
    }

    fn term(key: &str, app: &str) -> serde_json::Value {
        json!({"topologyKey": key, "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": [app]}]}})
    }

    fn filter_all(p: &Arc<PodInfo>, nodes: Vec<NodeInfo>) -> Vec<Status> {
        let snap = Snapshot::from_nodes(nodes);
        let pl = plugin();
        let mut st = CycleState::new();
        let (_, s) = pl.pre_filter(&mut st, p, &snap);
        if s.is_skip() {
            return snap.nodes.iter().map(|_| Status::success()).collect();
        }
        snap.nodes.iter().map(|n| pl.filter(&st, p, n)).collect()
    }

    #[test]
    fn required_affinity_follows_the_topology_domain() {
        let web = || pod("w").label("app", "xiuxian");
        let affine = pod("p")
            .label("app", "xiuxian")
            .affinity(json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("dc", "xiuxian")]}}))
            .obj();
        // First of its group: no matching pod anywhere, it matches itself -> any node with dc.
        let st = filter_all(
            &affine,
            vec![node("a").label("dc", "sh").info(), node("b").info()],
        );
        assert!(st[0].is_success());
        assert_eq!(st[1], Status::unresolvable(ERR_REASON_AFFINITY));
        // A matching pod in dc=sh: only nodes in dc=sh.
        let st = filter_all(
            &affine,
            vec![
                node("a").label("dc", "sh").with_pod(web().obj()).info(),
                node("b").label("dc", "sh").info(),
                node("c").label("dc", "bj").info(),
            ],
        );
        assert!(st[0].is_success() && st[1].is_success());
        assert_eq!(st[2], Status::unresolvable(ERR_REASON_AFFINITY));
    }

    #[test]
    fn walks_kept_across_cycles_follow_changed_added_and_removed_nodes() {
        let pl = plugin();
        let anti = |name: &str| {
            pod(name)
                .label("app", "xiuxian")
                .affinity(json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("dc", "xiuxian")]},
                    "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm": term("dc", "xiuxian")}]}}))
                .obj()
        };
        let p = anti("p");
        let check = |snap: &Snapshot| -> (Vec<bool>, Vec<i64>) {
            let mut st = CycleState::new();
            let (_, s) = pl.pre_filter(&mut st, &p, snap);
            assert!(s.is_success());
            let fits = snap
                .nodes
                .iter()
                .map(|n| pl.filter(&st, &p, n).is_success())
                .collect();
            assert!(pl.pre_score(&mut st, &p, &snap.nodes, snap).is_success());
            let scores = snap.nodes.iter().map(|n| pl.score(&st, &p, n).0).collect();
            (fits, scores)
        };
        // The pod's own preferred term and x's (symmetric) preferred term: 10 each.
        let mut snap = Snapshot::from_nodes(vec![
            node("a").label("dc", "sh").with_pod(anti("x")).info(),
            node("b").label("dc", "bj").info(),
        ]);
        assert_eq!(check(&snap), (vec![false, true], vec![20, 0]));
        // b gets a pod of the group: only b is a new NodeInfo.
        snap.nodes[1] = Arc::new(node("b").label("dc", "bj").with_pod(anti("y")).info());
        assert_eq!(check(&snap), (vec![false, false], vec![20, 20]));
        // a node joins in a third domain; then a leaves with its pod.
        snap.nodes
            .push(Arc::new(node("c").label("dc", "gz").info()));
        snap.reindex();
        assert_eq!(check(&snap), (vec![false, false, true], vec![20, 20, 0]));
        snap.nodes.remove(0);
        snap.reindex();
        assert_eq!(check(&snap), (vec![false, true], vec![20, 0]));
    }

    #[test]
    fn required_anti_affinity_keeps_one_per_domain_and_is_symmetric() {
        let anti = |name: &str| {
            pod(name)
                .label("app", "xiuxian")
                .affinity(json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("dc", "xiuxian")]}}))
                .obj()
        };
        let st = filter_all(
            &anti("p"),
            vec![
                node("a").label("dc", "sh").with_pod(anti("x")).info(),
                node("b").label("dc", "bj").info(),
            ],
        );
        assert_eq!(st[0], Status::unschedulable(ERR_REASON_ANTI_AFFINITY));
        assert!(st[1].is_success());
        // Symmetry: a plain pod labelled app=xiuxian cannot join the anti-affine pod's domain.
        let plain = pod("q").label("app", "xiuxian").obj();
        let st = filter_all(
            &plain,
            vec![
                node("a").label("dc", "sh").with_pod(anti("x")).info(),
                node("b").label("dc", "bj").info(),
            ],
        );
        assert_eq!(
            st[0],
            Status::unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY)
        );
        assert!(st[1].is_success());
    }

    #[test]
    fn namespaces_limit_which_pods_a_term_sees() {
        let other_ns = pod("w").namespace("other").label("app", "db").obj();
        let mut t = term("kubernetes.io/hostname", "db");
        let p = pod("p")
            .affinity(json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [t.clone()]}}))
            .obj();
        let st = filter_all(&p, vec![node("a").with_pod(other_ns.clone()).info()]);
        assert!(
            st[0].is_success(),
            "same-namespace term ignores other namespaces"
        );
        t["namespaces"] = json!(["other"]);
        let p = pod("p")
            .affinity(json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [t.clone()]}}))
            .obj();
        let st = filter_all(&p, vec![node("a").with_pod(other_ns.clone()).info()]);
        assert!(!st[0].is_success(), "listed namespace");
        t.as_object_mut().unwrap().remove("namespaces");
        t["namespaceSelector"] = json!({});
        let p = pod("p")
            .affinity(
                json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [t]}}),
            )
            .obj();
        let st = filter_all(&p, vec![node("a").with_pod(other_ns).info()]);
        assert!(
            !st[0].is_success(),
            "empty namespaceSelector selects all namespaces"
        );
    }

    #[test]
    fn preferred_terms_score_domains() {
        let p = pod("p")
            .affinity(
                json!({"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "podAffinityTerm": term("zone", "db")}]}}),
            )
            .obj();
        let snap = Snapshot::from_nodes(vec![
            node("a")
                .label("zone", "z1")
                .with_pod(pod("db").label("app", "db").obj())
                .info(),
            node("b").label("zone", "z1").info(),
            node("c").label("zone", "z2").info(),
        ]);
        let pl = plugin();
        let mut st = CycleState::new();
        assert!(pl.pre_score(&mut st, &p, &snap.nodes, &snap).is_success());
        let mut scores: Vec<i64> = snap.nodes.iter().map(|n| pl.score(&st, &p, n).0).collect();
        pl.normalize(&st, &p, &mut scores);
        assert_eq!(scores, vec![100, 100, 0]);
    }
}
