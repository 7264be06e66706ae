//! NodeName: a pod that names a node (`spec.nodeName`) fits only that node.

use crate::framework::*;

pub const NAME: &str = "NodeName";
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let want = pod.node_name();
        if want.is_empty() || want == node.name() {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON)
        }
    }
}

pub fn new() -> PluginInstance {
    let p = std::sync::Arc::new(NodeName);
    PluginInstance {
        filter: Some(p),
        events: &[ClusterEvent::NodeAdd, ClusterEvent::NodeUpdate],
        ..PluginInstance::new(NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn pods_fit_only_the_node_they_name() {
        let cases = [
            ("no node name fits anywhere", pod("p").obj(), "n1", true),
            (
                "the named node fits",
                pod("p").node_name("n1").obj(),
                "n1",
                true,
            ),
            (
                "another node does not",
                pod("p").node_name("n2").obj(),
                "n1",
                false,
            ),
        ];
        for (name, p, node_name, fits) in cases {
            let s = NodeName.filter(&CycleState::new(), &p, &node(node_name).info());
            assert_eq!(s.is_success(), fits, "{name}");
            if !fits {
                assert_eq!(s, Status::unresolvable(ERR_REASON), "{name}");
            }
        }
    }
}
