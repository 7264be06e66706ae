//! NodeAffinity: `spec.nodeSelector` and required node affinity filter nodes (all operators,
//! `matchFields` on `metadata.name`); preferred terms add their weights to the score. A
//! profile can enforce extra affinity for all its pods (`addedAffinity`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::NodeAffinity as V1NodeAffinity;

use super::helper::default_normalize_score;
use crate::framework::selector::{CompiledNodeSelector, NodeTerm, Selector};
use crate::framework::*;

pub const NAME: &str = "NodeAffinity";
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";
pub const ERR_REASON_ENFORCED: &str = "node(s) didn't match scheduler-enforced node affinity";
pub const ERR_REASON_CONFLICT: &str = "pod affinity terms conflict";
const PRE_FILTER_KEY: &str = "PreFilterNodeAffinity";
const PRE_SCORE_KEY: &str = "PreScoreNodeAffinity";

#[derive(Default)]
pub struct NodeAffinity {
    added_required: Option<CompiledNodeSelector>,
    added_preferred: Vec<(i64, NodeTerm)>,
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
}

/// nodeaffinity.RequiredNodeAffinity: nodeSelector AND (required terms ORed).
#[derive(Clone)]
struct Required {
    selector: Option<Selector>,
    affinity: Option<CompiledNodeSelector>,
}

impl Required {
    fn of(pod: &PodInfo) -> Self {
        let spec = pod.pod.spec.as_ref();
        Required {
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

    fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.selector.as_ref().is_none_or(|s| s.matches(labels))
            && self
                .affinity
                .as_ref()
                .is_none_or(|a| a.matches(name, labels))
    }
}

impl PreFilterPlugin for NodeAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let req = Required::of(pod);
        if req.affinity.is_none() && req.selector.is_none() && self.added_required.is_none() {
            return (None, Status::skip());
        }
        state.write(PRE_FILTER_KEY, req);
        let terms = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|r| r.node_selector_terms.as_slice())
            .unwrap_or(&[]);
        if terms.is_empty() {
            return (None, Status::success());
        }
        let mut names: Option<HashSet<String>> = None;
        for t in terms {
            let mut term_names: Option<HashSet<String>> = None;
            for r in t.match_fields.iter().flatten() {
                if r.key == "metadata.name" && r.operator == "In" {
                    let s: HashSet<String> = r.values.iter().flatten().cloned().collect();
                    term_names = Some(match term_names {
                        None => s,
                        Some(prev) => prev.intersection(&s).cloned().collect(),
                    });
                }
            }
            let Some(term_names) = term_names else {
                return (None, Status::success());
            };
            names.get_or_insert_with(HashSet::new).extend(term_names);
        }
        match names {
            Some(n) if n.is_empty() => (None, Status::unresolvable(ERR_REASON_CONFLICT)),
            Some(n) => (
                Some(PreFilterResult {
                    node_names: Some(n),
                }),
                Status::success(),
            ),
            None => (None, Status::success()),
        }
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if let Some(added) = &self.added_required
            && !added.matches(node.name(), node.labels())
        {
            return Status::unresolvable(ERR_REASON_ENFORCED);
        }
        let ok = match state.read::<Required>(PRE_FILTER_KEY) {
            Some(r) => r.matches(node.name(), node.labels()),
            None => Required::of(pod).matches(node.name(), node.labels()),
        };
        if ok {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_POD)
        }
    }
}

#[derive(Clone)]
struct Preferred(Vec<(i64, NodeTerm)>);

impl PreScorePlugin for NodeAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &[Arc<NodeInfo>],
        _: &Snapshot,
    ) -> Status {
        let mut terms: Vec<(i64, NodeTerm)> = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .filter(|t| t.weight != 0)
            .map(|t| (t.weight as i64, NodeTerm::compile(&t.preference)))
            .collect();
        terms.extend(self.added_preferred.iter().cloned());
        if terms.is_empty() {
            return Status::skip();
        }
        state.write(PRE_SCORE_KEY, Preferred(terms));
        Status::success()
    }
}

impl ScorePlugin for NodeAffinity {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(p) = state.read::<Preferred>(PRE_SCORE_KEY) else {
            return (0, Status::success());
        };
        let s =
            p.0.iter()
                .filter(|(_, t)| t.matches(node.name(), node.labels()))
                .map(|(w, _)| *w)
                .sum();
        (s, Status::success())
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
        Status::success()
    }
}

/// NodeAffinityArgs: `{"addedAffinity": <v1.NodeAffinity>}`.
pub fn new(args: &serde_json::Value) -> Result<PluginInstance, String> {
    let mut p = NodeAffinity::default();
    if let Some(a) = args.get("addedAffinity") {
        let a: V1NodeAffinity = serde_json::from_value(a.clone()).map_err(|e| e.to_string())?;
        p.added_required = a
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .map(CompiledNodeSelector::compile);
        p.added_preferred = a
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .map(|t| (t.weight as i64, NodeTerm::compile(&t.preference)))
            .collect();
    }
    let p = Arc::new(p);
    Ok(PluginInstance {
        pre_filter: Some(p.clone()),
        filter: Some(p.clone()),
        pre_score: Some(p.clone()),
        score: Some(p),
        events: &[
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
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

    fn required(exprs: serde_json::Value) -> serde_json::Value {
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": exprs}}})
    }

    fn run(p: &Arc<PodInfo>, n: &NodeInfo) -> Status {
        let pl = NodeAffinity::default();
        let mut st = CycleState::new();
        let (_, s) = pl.pre_filter(&mut st, p, &Snapshot::default());
        if s.is_skip() {
            return Status::success();
        }
        if !s.is_success() {
            return s;
        }
        pl.filter(&st, p, n)
    }

    #[test]
    fn node_selector_and_required_affinity_filter_nodes() {
        let hz = || {
            node("master231")
                .label("dc", "hangzhou")
                .label("zhu", "haha")
        };
        let bj = || node("worker232").label("dc", "beijing");
        let cases = [
            ("no constraints", pod("p").obj(), bj().info(), true),
            ("nodeSelector match", pod("p").node_selector("zhu", "haha").obj(), hz().info(), true),
            ("nodeSelector miss", pod("p").node_selector("zhu", "haha").obj(), bj().info(), false),
            (
                "In",
                pod("p").affinity(required(json!([{"matchExpressions": [{"key": "dc", "operator": "In", "values": ["hangzhou", "shanghai"]}]}]))).obj(),
                hz().info(),
                true,
            ),
            (
                "In miss",
                pod("p").affinity(required(json!([{"matchExpressions": [{"key": "dc", "operator": "In", "values": ["hangzhou", "shanghai"]}]}]))).obj(),
                bj().info(),
                false,
            ),
            (
                "NotIn",
                pod("p").affinity(required(json!([{"matchExpressions": [{"key": "dc", "operator": "NotIn", "values": ["beijing"]}]}]))).obj(),
                bj().info(),
                false,
            ),
            (
                "DoesNotExist",
                pod("p").affinity(required(json!([{"matchExpressions": [{"key": "zhu", "operator": "DoesNotExist"}]}]))).obj(),
                bj().info(),
                true,
            ),
            (
                "Gt",
                pod("p").affinity(required(json!([{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]}]))).obj(),
                node("n").label("cores", "8").info(),
                true,
            ),
            (
                "terms are ORed",
                pod("p").affinity(required(json!([
                    {"matchExpressions": [{"key": "dc", "operator": "In", "values": ["x"]}]},
                    {"matchExpressions": [{"key": "dc", "operator": "Exists"}]}]))).obj(),
                bj().info(),
                true,
            ),
            (
                "matchFields on metadata.name",
                pod("p").affinity(required(json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["worker232"]}]}]))).obj(),
                bj().info(),
                true,
            ),
            (
                "nodeSelector and affinity both apply",
                pod("p").node_selector("zhu", "haha").affinity(required(json!([{"matchExpressions": [{"key": "dc", "operator": "In", "values": ["beijing"]}]}]))).obj(),
                bj().info(),
                false,
            ),
        ];
        for (name, p, n, fits) in cases {
            let s = run(&p, &n);
            assert_eq!(s.is_success(), fits, "{name}: {s:?}");
            if !fits {
                assert_eq!(s, Status::unresolvable(ERR_REASON_POD), "{name}");
            }
        }
    }

    #[test]
    fn match_fields_narrow_the_nodes_in_pre_filter() {
        let p = pod("p")
            .affinity(required(json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a", "b"]}]}])))
            .obj();
        let (r, s) =
            NodeAffinity::default().pre_filter(&mut CycleState::new(), &p, &Snapshot::default());
        assert!(s.is_success());
        assert_eq!(r.unwrap().node_names.unwrap().len(), 2);
    }

    #[test]
    fn preferred_terms_score_by_weight() {
        let p = pod("p")
            .affinity(json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 2, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
                {"weight": 8, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}}]}}))
            .obj();
        let nodes = [
            Arc::new(node("none").info()),
            Arc::new(node("ssd").label("disk", "ssd").info()),
            Arc::new(node("both").label("disk", "ssd").label("zone", "a").info()),
        ];
        let pl = NodeAffinity::default();
        let mut st = CycleState::new();
        assert!(
            pl.pre_score(&mut st, &p, &nodes, &Snapshot::default())
                .is_success()
        );
        let mut scores: Vec<i64> = nodes.iter().map(|n| pl.score(&st, &p, n).0).collect();
        pl.normalize(&st, &p, &mut scores);
        assert_eq!(scores, vec![0, 20, 100]);
    }
}
