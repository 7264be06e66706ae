//! TaintToleration: NoSchedule and NoExecute taints keep out pods that do not tolerate them;
//! PreferNoSchedule taints only lower the node's score.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Toleration;

use super::helper::default_normalize_score;
use crate::framework::types::{tolerates, tolerations_tolerate};
use crate::framework::*;

pub const NAME: &str = "TaintToleration";
pub const ERR_REASON_NOT_MATCH: &str = "node(s) had taints that the pod didn't tolerate";
const PRE_SCORE_KEY: &str = "PreScoreTaintToleration";

pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }
}

fn tolerations(pod: &PodInfo) -> &[Toleration] {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

impl FilterPlugin for TaintToleration {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let tols = tolerations(pod);
        let untolerated = node.taints().iter().find(|t| {
            (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerations_tolerate(tols, t)
        });
        match untolerated {
            None => Status::success(),
            Some(t) => Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key,
                t.value.as_deref().unwrap_or("")
            )),
        }
    }
}

#[derive(Clone)]
struct PreScoreState(Vec<Toleration>);

impl PreScorePlugin for TaintToleration {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        feasible: &[Arc<NodeInfo>],
        _: &Snapshot,
    ) -> Status {
        if feasible.is_empty() {
            return Status::success();
        }
        let tols: Vec<Toleration> = tolerations(pod)
            .iter()
            .filter(|t| {
                matches!(
                    t.effect.as_deref(),
                    None | Some("") | Some("PreferNoSchedule")
                )
            })
            .cloned()
            .collect();
        state.write(PRE_SCORE_KEY, PreScoreState(tols));
        Status::success()
    }
}

impl ScorePlugin for TaintToleration {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let tols = state
            .read::<PreScoreState>(PRE_SCORE_KEY)
            .map(|s| s.0.as_slice())
            .unwrap_or(&[]);
        let n = node
            .taints()
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule" && !tols.iter().any(|tol| tolerates(tol, t)))
            .count();
        (n as i64, Status::success())
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, true, scores);
        Status::success()
    }
}

pub fn new() -> PluginInstance {
    let p = Arc::new(TaintToleration);
    PluginInstance {
        filter: Some(p.clone()),
        pre_score: Some(p.clone()),
        score: Some(p),
        events: &[
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
            ClusterEvent::UnscheduledPodUpdate,
        ],
        ..PluginInstance::new(NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    #[test]
    fn filter_keeps_out_untolerated_no_schedule_and_no_execute_taints() {
        let cases = [
            ("no taints", pod("p").obj(), node("n").info(), None),
            (
                "control plane taint",
                pod("p").obj(),
                node("n")
                    .taint("node-role.kubernetes.io/control-plane", "", "NoSchedule")
                    .info(),
                Some("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"),
            ),
            (
                "NoExecute with value",
                pod("p").obj(),
                node("n").taint("zhu", "haha", "NoExecute").info(),
                Some("node(s) had untolerated taint {zhu: haha}"),
            ),
            (
                "PreferNoSchedule does not filter",
                pod("p").obj(),
                node("n").taint("zhu", "haha", "PreferNoSchedule").info(),
                None,
            ),
            (
                "Equal toleration",
                pod("p")
                    .toleration(json!({"key": "zhu", "value": "haha", "effect": "NoSchedule"}))
                    .obj(),
                node("n").taint("zhu", "haha", "NoSchedule").info(),
                None,
            ),
            (
                "Exists toleration for NoExecute only",
                pod("p")
                    .toleration(json!({"key": "zhu", "operator": "Exists", "effect": "NoExecute"}))
                    .obj(),
                node("n").taint("zhu", "haha", "NoSchedule").info(),
                Some("node(s) had untolerated taint {zhu: haha}"),
            ),
            (
                "empty key with Exists tolerates everything",
                pod("p").toleration(json!({"operator": "Exists"})).obj(),
                node("n")
                    .taint("a", "", "NoSchedule")
                    .taint("b", "x", "NoExecute")
                    .info(),
                None,
            ),
            (
                "every taint must be tolerated",
                pod("p")
                    .toleration(json!({"key": "zhu", "value": "haha", "effect": "NoSchedule"}))
                    .obj(),
                node("n")
                    .taint("zhu", "haha", "NoSchedule")
                    .taint("zhu", "xixi", "NoExecute")
                    .info(),
                Some("node(s) had untolerated taint {zhu: xixi}"),
            ),
        ];
        for (name, p, n, want) in cases {
            let s = TaintToleration.filter(&CycleState::new(), &p, &n);
            match want {
                None => assert!(s.is_success(), "{name}: {s:?}"),
                Some(m) => {
                    assert_eq!(s.code, Code::UnschedulableAndUnresolvable, "{name}");
                    assert_eq!(s.message(), m, "{name}");
                }
            }
        }
    }

    #[test]
    fn prefer_no_schedule_taints_lower_the_score() {
        let p = pod("p").obj();
        let nodes = [
            Arc::new(node("clean").info()),
            Arc::new(node("one").taint("a", "", "PreferNoSchedule").info()),
            Arc::new(
                node("two")
                    .taint("a", "", "PreferNoSchedule")
                    .taint("b", "", "PreferNoSchedule")
                    .info(),
            ),
        ];
        let mut st = CycleState::new();
        TaintToleration.pre_score(&mut st, &p, &nodes, &Snapshot::default());
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| TaintToleration.score(&st, &p, n).0)
            .collect();
        TaintToleration.normalize(&st, &p, &mut scores);
        assert_eq!(scores, vec![100, 50, 0]);
    }
}
