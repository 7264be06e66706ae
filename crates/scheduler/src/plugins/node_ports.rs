//! NodePorts: a pod asking for host ports fits only nodes where no other pod holds them
//! (hostNetwork pods hold their container ports).

use std::sync::Arc;

use crate::framework::types::HostPort;
use crate::framework::*;

pub const NAME: &str = "NodePorts";
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";
const STATE_KEY: &str = "PreFilterNodePorts";

pub struct NodePorts;

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }
}

#[derive(Clone)]
struct Ports(Vec<HostPort>);

impl PreFilterPlugin for NodePorts {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        if pod.host_ports.is_empty() {
            return (None, Status::skip());
        }
        state.write(STATE_KEY, Ports(pod.host_ports.clone()));
        (None, Status::success())
    }
}

impl FilterPlugin for NodePorts {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let ports = match state.read::<Ports>(STATE_KEY) {
            Some(p) => &p.0,
            None => &pod.host_ports,
        };
        if ports.iter().any(|p| node.port_conflicts(p)) {
            Status::unschedulable(ERR_REASON)
        } else {
            Status::success()
        }
    }
}

pub fn new() -> PluginInstance {
    let p = Arc::new(NodePorts);
    PluginInstance {
        pre_filter: Some(p.clone()),
        filter: Some(p),
        events: &[
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::NodeAdd,
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
    fn host_ports_conflict_as_upstream() {
        let web = |ip: &str, port: i32| pod("p").container_port(80, Some(port), ip).obj();
        let cases = [
            ("free port", web("", 90), node("n").info(), true),
            (
                "same port on all addresses",
                web("", 90),
                node("n").with_pod(web("", 90)).info(),
                false,
            ),
            (
                "different ports",
                web("", 91),
                node("n").with_pod(web("", 90)).info(),
                true,
            ),
            (
                "specific address against wildcard",
                web("127.0.0.1", 90),
                node("n").with_pod(web("", 90)).info(),
                false,
            ),
            (
                "two specific addresses",
                web("127.0.0.1", 90),
                node("n").with_pod(web("127.0.0.2", 90)).info(),
                true,
            ),
            (
                "hostNetwork pod holds its container port",
                web("", 80),
                node("n")
                    .with_pod(pod("h").host_network().container_port(80, None, "").obj())
                    .info(),
                false,
            ),
        ];
        for (name, p, n, fits) in cases {
            let mut st = CycleState::new();
            let (_, s) = NodePorts.pre_filter(&mut st, &p, &Snapshot::default());
            assert!(s.is_success(), "{name}");
            let s = NodePorts.filter(&st, &p, &n);
            assert_eq!(s.is_success(), fits, "{name}");
            if !fits {
                assert_eq!(s, Status::unschedulable(ERR_REASON));
            }
        }
    }

    #[test]
    fn pods_without_host_ports_skip_the_plugin() {
        let (_, s) = NodePorts.pre_filter(
            &mut CycleState::new(),
            &pod("p").obj(),
            &Snapshot::default(),
        );
        assert!(s.is_skip());
    }
}
