//! Small helpers shared by the scheduler and its plugins: pod ordering, the aggregated
//! failure message users read, and status writes.

use std::cmp::Ordering;
use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use rand::Rng;

use crate::framework::{NodeToStatus, PodInfo};

/// The pod's start time in nanoseconds, if it has one.
pub fn start_time(p: &Pod) -> Option<i128> {
    p.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0.as_nanosecond())
}

/// util.MoreImportantPod as an ordering: higher priority first, then the earlier start time
/// (a pod that has not started counts as starting now, after every started pod).
pub fn importance_order(a: &PodInfo, b: &PodInfo) -> Ordering {
    b.priority.cmp(&a.priority).then_with(|| {
        let ta = start_time(&a.pod).unwrap_or(i128::MAX);
        let tb = start_time(&b.pod).unwrap_or(i128::MAX);
        ta.cmp(&tb)
    })
}

pub fn random_below(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    rand::rng().random_range(0..n)
}

/// FitError.Error(): "0/N nodes are available: <prefilter msg>." or the sorted histogram of
/// per-node reasons, then the PostFilter message.
pub fn fit_error_message(
    num_nodes: usize,
    pre_filter_msg: &str,
    statuses: &NodeToStatus,
    post_filter_msg: &str,
) -> String {
    let mut msg = format!("0/{num_nodes} nodes are available:");
    if !pre_filter_msg.is_empty() {
        msg.push_str(&format!(" {pre_filter_msg}."));
    } else {
        let mut reasons: HashMap<&str, usize> = HashMap::new();
        for s in statuses.map.values() {
            for r in &s.reasons {
                *reasons.entry(r).or_default() += 1;
            }
        }
        if statuses.map.len() < num_nodes {
            for r in &statuses.absent.reasons {
                *reasons.entry(r).or_default() += num_nodes - statuses.map.len();
            }
        }
        let mut parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
        parts.sort();
        if !parts.is_empty() {
            msg.push_str(&format!(" {}.", parts.join(", ")));
        }
    }
    if !post_filter_msg.is_empty() {
        msg.push_str(&format!(" {post_filter_msg}"));
    }
    msg
}

/// Clears `status.nominatedNodeName` of a pod that has one.
pub async fn clear_nominated_node_name(client: &kube::Client, pod: &Pod) {
    let has = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    if !has {
        return;
    }
    let api: Api<Pod> = Api::namespaced(
        client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or(""),
    );
    let patch = serde_json::json!({"status": {"nominatedNodeName": null}});
    if let Err(e) = api
        .patch_status(
            pod.metadata.name.as_deref().unwrap_or(""),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        tracing::debug!(error = %e, "clearing nominatedNodeName");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Code, Status};

    #[test]
    fn the_failure_message_is_upstreams_histogram() {
        let mut st = NodeToStatus::default();
        st.map.insert(
            "master".into(),
            Status::unresolvable(
                "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
            ),
        );
        st.map
            .insert("w1".into(), Status::unschedulable("Insufficient cpu"));
        st.map
            .insert("w2".into(), Status::unschedulable("Insufficient cpu"));
        let mut pre = NodeToStatus {
            absent: Status::unresolvable("Preemption is not helpful for scheduling"),
            ..Default::default()
        };
        pre.map.insert(
            "w1".into(),
            Status::unresolvable("No preemption victims found for incoming pod"),
        );
        pre.map.insert(
            "w2".into(),
            Status::unresolvable("No preemption victims found for incoming pod"),
        );
        let post = format!("preemption: {}", fit_error_message(3, "", &pre, ""));
        assert_eq!(
            fit_error_message(3, "", &st, &post),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn a_pre_filter_failure_is_reported_once() {
        let st = NodeToStatus::default();
        assert_eq!(
            fit_error_message(3, "persistentvolumeclaim \"x\" not found", &st, ""),
            "0/3 nodes are available: persistentvolumeclaim \"x\" not found."
        );
        let _ = Code::Success;
    }
}
