//! The scheduler inside `ferrokube server`, as a user sees it with the real kubectl 1.33:
//! Nodes registered by hand (no kubelet), a pod that cannot fit, and `kubectl describe pod`
//! showing upstream's FailedScheduling text; a pod that fits shows its Scheduled event.

mod support;

use std::time::Duration;

use support::{Server, eventually};

fn node_yaml(name: &str, taint: bool) -> String {
    let taints = if taint {
        "  taints:\n  - key: node-role.kubernetes.io/control-plane\n    effect: NoSchedule\n"
    } else {
        ""
    };
    format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    kubernetes.io/hostname: {name}\nspec:\n{taints}"
    )
}

const STATUS: &str = r#"{"status":{"capacity":{"cpu":"2","memory":"4Gi","pods":"110"},"allocatable":{"cpu":"2","memory":"4Gi","pods":"110"},"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status","lastHeartbeatTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#;

#[test]
fn describe_pod_shows_upstreams_failed_scheduling_and_scheduled_events() {
    let s = Server::start();
    let k = s.kubectl("1.33");
    for (n, taint) in [("master231", true), ("worker232", false), ("worker233", false)] {
        k.ok_stdin(&["create", "-f", "-"], &node_yaml(n, taint));
        k.ok(&["patch", "node", n, "--subresource=status", "--type=merge", "-p", STATUS]);
    }
    k.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: big\nspec:\n  containers:\n  - name: c\n    image: nginx\n    resources:\n      limits:\n        cpu: \"3\"\n",
    );
    let want = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.";
    let out = eventually("FailedScheduling in describe", Duration::from_secs(30), || {
        let out = k.ok(&["describe", "pod", "big"]);
        out.contains("FailedScheduling").then_some(out)
    });
    let line = out
        .lines()
        .find(|l| l.contains("FailedScheduling"))
        .expect("event line");
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[0], "Warning", "{line}");
    assert_eq!(cols[1], "FailedScheduling", "{line}");
    assert!(line.contains("default-scheduler"), "{line}");
    assert!(line.trim_end().ends_with(want), "{out}");
    assert!(out.contains("Status:           Pending"), "{out}");
    assert_eq!(
        k.ok(&["get", "pod", "big", "-o", "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].reason}"]),
        "Unschedulable"
    );

    k.ok(&["run", "web", "--image=nginx"]);
    let out = eventually("Scheduled in describe", Duration::from_secs(30), || {
        let out = k.ok(&["describe", "pod", "web"]);
        out.contains("Successfully assigned").then_some(out)
    });
    let line = out.lines().find(|l| l.contains("Scheduled")).expect("event line");
    assert!(line.trim_start().starts_with("Normal"), "{line}");
    assert!(line.contains("default-scheduler"), "{line}");
    let node = k.ok(&["get", "pod", "web", "-o", "jsonpath={.spec.nodeName}"]);
    assert!(node == "worker232" || node == "worker233", "{node}");
    assert!(line.trim_end().ends_with(&format!("Successfully assigned default/web to {node}")), "{line}");
    let wide = k.ok(&["get", "pod", "web", "-o", "wide"]);
    assert!(wide.contains(&node), "{wide}");
}
