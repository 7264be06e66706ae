//! Every placement rule of the course material (seed 003) through the API: Nodes without
//! kubelets, pods created directly, and what users read in events and conditions.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::json;
use support::*;

const NOT_HELPFUL_1: &str = "1 Preemption is not helpful for scheduling";

fn count_by_node(pods: &[(String, String)]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (_, n) in pods {
        if !n.is_empty() {
            *m.entry(n.clone()).or_default() += 1;
        }
    }
    m
}

#[tokio::test]
async fn node_name_bypasses_the_scheduler() {
    let c = cluster().await;
    c.three_nodes().await;
    c.create_pods("nodename", 3, web(json!({"nodeName": "worker233"})))
        .await;
    let pods = c.wait_bound("nodename", 3).await;
    assert!(pods.iter().all(|(_, n)| n == "worker233"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (p, _) in &pods {
        assert!(c.events(p).await.is_empty(), "no scheduling events for {p}");
    }
}

#[tokio::test]
async fn host_port_conflicts_leave_replicas_pending_with_upstreams_message() {
    let c = cluster().await;
    c.three_nodes().await;
    c.create_pods(
        "hostport",
        3,
        web(json!({"containers": [{"name": "c1", "image": "nginx", "ports": [{"containerPort": 80, "hostPort": 90}]}]})),
    )
    .await;
    let pods = c.wait_bound("hostport", 2).await;
    let by_node = count_by_node(&pods);
    assert_eq!(by_node.get("worker232"), Some(&1));
    assert_eq!(by_node.get("worker233"), Some(&1));
    let pending = &pods.iter().find(|(_, n)| n.is_empty()).unwrap().0;
    let want = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) didn't have free ports for the requested pod ports. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.";
    assert_eq!(c.wait_event(pending, "FailedScheduling").await, want);
    assert_eq!(
        c.wait_unschedulable_condition(pending).await,
        ("Unschedulable".to_string(), want.to_string())
    );
    for (p, n) in pods.iter().filter(|(_, n)| !n.is_empty()) {
        assert_eq!(
            c.wait_event(p, "Scheduled").await,
            format!("Successfully assigned default/{p} to {n}")
        );
    }
}

#[tokio::test]
async fn host_network_pods_hold_their_container_ports() {
    let c = cluster().await;
    c.three_nodes().await;
    c.create_pods(
        "hostnet",
        3,
        web(json!({"hostNetwork": true, "containers": [{"name": "c1", "image": "nginx", "ports": [{"containerPort": 80}]}]})),
    )
    .await;
    let pods = c.wait_bound("hostnet", 2).await;
    let pending = &pods.iter().find(|(_, n)| n.is_empty()).unwrap().0;
    let msg = c.wait_event(pending, "FailedScheduling").await;
    assert!(
        msg.starts_with("0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) didn't have free ports for the requested pod ports."),
        "{msg}"
    );
}

#[tokio::test]
async fn pods_that_do_not_fit_report_insufficient_cpu() {
    let c = cluster().await;
    c.three_nodes().await;
    c.create_pods(
        "resources",
        5,
        web(json!({"containers": [{"name": "c1", "image": "nginx",
            "resources": {"limits": {"cpu": "1", "memory": "500Mi"}}}]})),
    )
    .await;
    let pods = c.wait_bound("resources", 4).await;
    let by_node = count_by_node(&pods);
    assert_eq!(by_node.get("worker232"), Some(&2));
    assert_eq!(by_node.get("worker233"), Some(&2));
    let pending = &pods.iter().find(|(_, n)| n.is_empty()).unwrap().0;
    assert_eq!(
        c.wait_event(pending, "FailedScheduling").await,
        format!(
            "0/3 nodes are available: 1 node(s) had untolerated taint {{node-role.kubernetes.io/control-plane: }}, 2 Insufficient cpu. preemption: 0/3 nodes are available: {NOT_HELPFUL_1}, 2 No preemption victims found for incoming pod."
        )
    );
}

#[tokio::test]
async fn node_selector_picks_labelled_nodes() {
    let c = cluster().await;
    c.three_nodes().await;
    c.patch_node(
        "worker232",
        json!({"metadata": {"labels": {"zhu": "xixi"}}}),
    )
    .await;
    c.patch_node(
        "worker233",
        json!({"metadata": {"labels": {"zhu": "haha"}}}),
    )
    .await;
    c.create_pods("selector", 5, web(json!({"nodeSelector": {"zhu": "haha"}})))
        .await;
    let pods = c.wait_bound("selector", 5).await;
    assert!(pods.iter().all(|(_, n)| n == "worker233"), "{pods:?}");
    c.create_pods("nomatch", 1, web(json!({"nodeSelector": {"zhu": "none"}})))
        .await;
    assert_eq!(
        c.wait_event("nomatch-0", "FailedScheduling").await,
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
}

#[tokio::test]
async fn taints_of_every_effect_with_and_without_tolerations() {
    let c = cluster().await;
    c.three_nodes().await;
    let cpu1 = || {
        web(
            json!({"containers": [{"name": "c1", "image": "nginx", "resources": {"limits": {"cpu": "1", "memory": "500Mi"}}}]}),
        )
    };

    // NoSchedule: nothing new lands on worker233.
    c.patch_node(
        "worker233",
        json!({"spec": {"taints": [{"key": "zhu", "effect": "NoSchedule"}]}}),
    )
    .await;
    c.create_pods("noschedule", 3, cpu1()).await;
    let pods = c.wait_bound("noschedule", 2).await;
    assert!(
        pods.iter().all(|(_, n)| n.is_empty() || n == "worker232"),
        "{pods:?}"
    );
    let pending = &pods.iter().find(|(_, n)| n.is_empty()).unwrap().0;
    assert_eq!(
        c.wait_event(pending, "FailedScheduling").await,
        "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 1 node(s) had untolerated taint {zhu: }. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
    );

    // PreferNoSchedule: the pending pod may now go to worker233 (only a score penalty).
    c.patch_node(
        "worker233",
        json!({"spec": {"taints": [{"key": "zhu", "effect": "PreferNoSchedule"}]}}),
    )
    .await;
    let pods = c.wait_bound("noschedule", 3).await;
    assert_eq!(count_by_node(&pods).get("worker233"), Some(&1));

    // With room on both workers, PreferNoSchedule steers pods away from worker233.
    c.create_pods("prefer", 1, web(json!({}))).await;
    let pods = c.wait_bound("prefer", 1).await;
    // worker232 holds 2 cpu of requests, worker233 1: LeastAllocated favours 233, the taint
    // (weight 3) outweighs it.
    assert_eq!(pods[0].1, "worker232", "{pods:?}");

    // NoExecute keeps new pods out as NoSchedule does.
    c.patch_node(
        "worker233",
        json!({"spec": {"taints": [{"key": "zhu", "value": "haha", "effect": "NoExecute"}]}}),
    )
    .await;
    c.create_pods(
        "noexecute",
        1,
        web(json!({"nodeSelector": {"kubernetes.io/hostname": "worker233"}})),
    )
    .await;
    let msg = c.wait_event("noexecute-0", "FailedScheduling").await;
    assert!(
        msg.contains("1 node(s) had untolerated taint {zhu: haha}"),
        "{msg}"
    );

    // Start the toleration case on empty nodes (pods deleted at once, as a kubelet would confirm).
    c.pods()
        .delete_collection(
            &kube::api::DeleteParams::default().grace_period(0),
            &kube::api::ListParams::default(),
        )
        .await
        .unwrap();
    // Tolerations from the seed: every node tainted zhu=haha:NoSchedule, worker233 also
    // zhu=xixi:NoExecute; the pods tolerate all of it and land on all three nodes.
    for n in ["master231", "worker232", "worker233"] {
        let mut taints = vec![json!({"key": "zhu", "value": "haha", "effect": "NoSchedule"})];
        if n == "master231" {
            taints.push(
                json!({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}),
            );
        }
        if n == "worker233" {
            taints.push(json!({"key": "zhu", "value": "xixi", "effect": "NoExecute"}));
        }
        c.patch_node(n, json!({"spec": {"taints": taints}})).await;
    }
    c.create_pods(
        "tolerations",
        6,
        web(json!({"tolerations": [
            {"key": "zhu", "value": "haha", "effect": "NoSchedule"},
            {"key": "zhu", "operator": "Exists", "effect": "NoExecute"},
            {"key": MASTER_TOLERATION, "effect": "NoSchedule"}]})),
    )
    .await;
    let pods = c.wait_bound("tolerations", 6).await;
    let nodes: BTreeSet<String> = pods.iter().map(|(_, n)| n.clone()).collect();
    assert_eq!(
        nodes.len(),
        3,
        "all three nodes take tolerating pods: {pods:?}"
    );
    // Without the NoExecute toleration worker233 stays closed.
    c.create_pods(
        "partial",
        1,
        web(
            json!({"nodeSelector": {"kubernetes.io/hostname": "worker233"},
                   "tolerations": [{"key": "zhu", "value": "haha", "effect": "NoSchedule"}]}),
        ),
    )
    .await;
    let msg = c.wait_event("partial-0", "FailedScheduling").await;
    assert!(
        msg.contains("1 node(s) had untolerated taint {zhu: xixi}"),
        "{msg}"
    );
}

#[tokio::test]
async fn node_affinity_in_chooses_among_listed_values() {
    let c = cluster().await;
    c.three_nodes().await;
    for (n, dc) in [
        ("master231", "hangzhou"),
        ("worker232", "beijing"),
        ("worker233", "shanghai"),
    ] {
        c.patch_node(n, json!({"metadata": {"labels": {"dc": dc}}}))
            .await;
    }
    c.create_pods(
        "nodeaffinity",
        5,
        web(json!({
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "dc", "operator": "In", "values": ["hangzhou", "shanghai"]}]}]}}},
            "tolerations": [{"key": MASTER_TOLERATION, "effect": "NoSchedule"}],
            "containers": [{"name": "c1", "image": "nginx", "resources": {"limits": {"cpu": "200m", "memory": "100Mi"}}}]})),
    )
    .await;
    let pods = c.wait_bound("nodeaffinity", 5).await;
    let by_node = count_by_node(&pods);
    assert!(!by_node.contains_key("worker232"), "{pods:?}");
    assert_eq!(
        by_node.len(),
        2,
        "both hangzhou and shanghai are used: {pods:?}"
    );
}

fn dc_term() -> serde_json::Value {
    json!({"topologyKey": "dc", "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["xiuxian"]}]}})
}

#[tokio::test]
async fn pod_affinity_keeps_replicas_in_one_topology_domain() {
    let c = cluster().await;
    c.three_nodes().await;
    for (n, dc) in [
        ("master231", "shanghai"),
        ("worker232", "beijing"),
        ("worker233", "shanghai"),
    ] {
        c.patch_node(n, json!({"metadata": {"labels": {"dc": dc}}}))
            .await;
    }
    c.create_pods(
        "podaffinity",
        5,
        web(json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [dc_term()]}},
                   "tolerations": [{"key": MASTER_TOLERATION, "effect": "NoSchedule"}]})),
    )
    .await;
    let pods = c.wait_bound("podaffinity", 5).await;
    let dcs: BTreeSet<&str> = pods
        .iter()
        .map(|(_, n)| {
            if n == "worker232" {
                "beijing"
            } else {
                "shanghai"
            }
        })
        .collect();
    assert_eq!(dcs.len(), 1, "all replicas share one dc: {pods:?}");
}

#[tokio::test]
async fn pod_anti_affinity_spreads_five_replicas_over_three_zones() {
    let c = cluster().await;
    c.three_nodes().await;
    for (n, dc) in [
        ("master231", "hangzhou"),
        ("worker232", "beijing"),
        ("worker233", "shanghai"),
    ] {
        c.patch_node(n, json!({"metadata": {"labels": {"dc": dc}}}))
            .await;
    }
    c.create_pods(
        "antiaffinity",
        5,
        web(json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [dc_term()]}},
                   "tolerations": [{"key": MASTER_TOLERATION, "effect": "NoSchedule"}]})),
    )
    .await;
    let pods = c.wait_bound("antiaffinity", 3).await;
    assert_eq!(count_by_node(&pods).len(), 3, "one per dc: {pods:?}");
    let want = "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.";
    for (p, _) in pods.iter().filter(|(_, n)| n.is_empty()) {
        assert_eq!(c.wait_event(p, "FailedScheduling").await, want);
        assert_eq!(c.wait_unschedulable_condition(p).await.1, want);
    }
    // Relabel worker233 into hangzhou: its pod now shares a dc; a fresh zone lets one more in.
    c.node("worker234", "2", json!({"dc": "guangzhou"}), json!([]))
        .await;
    c.wait_bound("antiaffinity", 4).await;
}

#[tokio::test]
async fn cordoned_nodes_take_no_new_pods_until_uncordoned() {
    let c = cluster().await;
    c.three_nodes().await;
    c.patch_node("worker233", json!({"spec": {"unschedulable": true}}))
        .await;
    c.create_pods("cordon", 4, web(json!({}))).await;
    let pods = c.wait_bound("cordon", 4).await;
    assert!(pods.iter().all(|(_, n)| n == "worker232"), "{pods:?}");
    c.patch_node("worker232", json!({"spec": {"unschedulable": true}}))
        .await;
    c.create_pods("cordoned", 1, web(json!({}))).await;
    assert_eq!(
        c.wait_event("cordoned-0", "FailedScheduling").await,
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) were unschedulable. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
    c.patch_node("worker233", json!({"spec": {"unschedulable": null}}))
        .await;
    let pods = c.wait_bound("cordoned", 1).await;
    assert_eq!(pods[0].1, "worker233");
}

#[tokio::test]
async fn topology_spread_keeps_zones_within_max_skew() {
    let c = cluster().await;
    for (n, z) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("c1", "c")] {
        c.node(n, "8", json!({"topology.kubernetes.io/zone": z}), json!([]))
            .await;
    }
    c.create_pods(
        "spread",
        6,
        web(json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "xiuxian"}}}]})),
    )
    .await;
    let pods = c.wait_bound("spread", 6).await;
    let mut zones: BTreeMap<char, usize> = BTreeMap::new();
    for (_, n) in &pods {
        *zones.entry(n.chars().next().unwrap()).or_default() += 1;
    }
    assert_eq!(
        zones.values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2],
        "{pods:?}"
    );
    // A node without the zone label is never used and says why.
    c.create_pods(
        "nolabel",
        1,
        web(json!({"nodeSelector": {"kubernetes.io/hostname": "a1"}, "topologySpreadConstraints": [{"maxSkew": 1,
            "topologyKey": "rack", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "xiuxian"}}}]})),
    )
    .await;
    let msg = c.wait_event("nolabel-0", "FailedScheduling").await;
    assert!(
        msg.contains("didn't match pod topology spread constraints (missing required label)")
            || msg.contains("didn't match Pod's node affinity/selector"),
        "{msg}"
    );
}

#[tokio::test]
async fn scheduling_gates_hold_pods_until_removed() {
    let c = cluster().await;
    c.three_nodes().await;
    c.create_pods(
        "gated",
        1,
        web(json!({"schedulingGates": [{"name": "example.com/wait"}]})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.node_of("gated-0").await, None);
    let pods = c.pods();
    pods.patch(
        "gated-0",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"spec": {"schedulingGates": null}})),
    )
    .await
    .unwrap();
    c.wait_bound("gated", 1).await;
}
