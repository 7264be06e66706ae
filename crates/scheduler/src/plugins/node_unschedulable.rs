//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take only pods that tolerate the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::Taint;

use crate::framework::types::tolerations_tolerate;
use crate::framework::*;

pub const NAME: &str = "NodeUnschedulable";
pub const ERR_REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !node.unschedulable() {
            return Status::success();
        }
        let taint = Taint {
            key: TAINT_NODE_UNSCHEDULABLE.into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let tolerations = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or(&[]);
        if tolerations_tolerate(tolerations, &taint) {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_UNSCHEDULABLE)
        }
    }
}

pub fn new() -> PluginInstance {
    let p = std::sync::Arc::new(NodeUnschedulable);
    PluginInstance {
        filter: Some(p),
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

    #[test]
    fn cordoned_nodes_take_only_pods_tolerating_the_unschedulable_taint() {
        let tol = serde_json::json!({"key": TAINT_NODE_UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"});
        let cases = [
            ("schedulable node", pod("p").obj(), node("n").info(), true),
            (
                "cordoned node",
                pod("p").obj(),
                node("n").unschedulable().info(),
                false,
            ),
            (
                "cordoned node, tolerated",
                pod("p").toleration(tol).obj(),
                node("n").unschedulable().info(),
                true,
            ),
        ];
        for (name, p, n, fits) in cases {
            let s = NodeUnschedulable.filter(&CycleState::new(), &p, &n);
            assert_eq!(s.is_success(), fits, "{name}");
            if !fits {
                assert_eq!(s.reasons, vec![ERR_REASON_UNSCHEDULABLE]);
                assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
            }
        }
    }
}
