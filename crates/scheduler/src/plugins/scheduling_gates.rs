//! SchedulingGates: a pod with `spec.schedulingGates` stays out of the active queue until
//! every gate is removed.

use crate::framework::*;

pub const NAME: &str = "SchedulingGates";

pub struct SchedulingGates;

impl Plugin for SchedulingGates {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl PreEnqueuePlugin for SchedulingGates {
    fn pre_enqueue(&self, pod: &PodInfo) -> Status {
        let gates: Vec<&str> = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduling_gates.as_ref())
            .into_iter()
            .flatten()
            .map(|g| g.name.as_str())
            .collect();
        if gates.is_empty() {
            return Status::success();
        }
        Status::unresolvable(format!(
            "waiting for scheduling gates: [{}]",
            gates.join(" ")
        ))
    }
}

pub fn new() -> PluginInstance {
    PluginInstance {
        pre_enqueue: Some(std::sync::Arc::new(SchedulingGates)),
        events: &[ClusterEvent::UnscheduledPodUpdate],
        ..PluginInstance::new(NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn gated_pods_wait_for_every_gate() {
        let cases = [
            (pod("p").obj(), None),
            (
                pod("p").gate("a").gate("b").obj(),
                Some("waiting for scheduling gates: [a b]"),
            ),
        ];
        for (p, want) in cases {
            let s = SchedulingGates.pre_enqueue(&p);
            match want {
                None => assert!(s.is_success()),
                Some(m) => assert_eq!(s.message(), m),
            }
        }
    }
}
