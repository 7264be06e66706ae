//! The scheduler as a user sees it with the real kubectl 1.33 against a real `ferrokube server`:
//! Nodes registered by hand (no kubelet; status written through the API), the walk-through of
//! seed 003 (`kubectl describe pod` / `kubectl get events` with upstream's Scheduled and
//! FailedScheduling texts, hostPort conflicts, hostNetwork, nodeSelector, taints and
//! tolerations, cordon and uncordon), and two `ferrokube scheduler --kubeconfig` processes
//! with leader election where the leader is killed.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Kubectl, Server, eventually, ferrokube_bin};

/// Node monitoring would mark hand-made nodes unreachable after its grace period (nothing
/// renews their status); these tests are about the scheduler, so the grace period is long.
const SERVER_ARGS: [&str; 2] = ["--node-monitor-grace-period", "1h"];

fn node_yaml(name: &str, taint: bool) -> String {
    let taints = if taint {
        "spec:\n  taints:\n  - key: node-role.kubernetes.io/control-plane\n    effect: NoSchedule\n"
    } else {
        ""
    };
    format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    kubernetes.io/hostname: {name}\n{taints}"
    )
}

const STATUS: &str = r#"{"status":{"capacity":{"cpu":"2","memory":"4Gi","pods":"110"},"allocatable":{"cpu":"2","memory":"4Gi","pods":"110"},"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status","lastHeartbeatTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#;

/// The seed's three nodes: a control-plane node with its NoSchedule taint and two workers,
/// each with 2 CPUs, Ready, and free of the not-ready taint admission put on them.
fn seed_nodes(k: &Kubectl) {
    for (n, taint) in [
        ("master231", true),
        ("worker232", false),
        ("worker233", false),
    ] {
        k.ok_stdin(&["create", "-f", "-"], &node_yaml(n, taint));
        k.ok(&[
            "patch",
            "node",
            n,
            "--subresource=status",
            "--type=merge",
            "-p",
            STATUS,
        ]);
    }
    eventually(
        "the not-ready taints to be lifted",
        Duration::from_secs(30),
        || {
            let t = k.ok(&[
                "get",
                "nodes",
                "-o",
                "jsonpath={.items[*].spec.taints[*].key}",
            ]);
            (!t.contains("node.kubernetes.io/not-ready")).then_some(())
        },
    );
}

fn pod_yaml(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: {name}\nspec:\n{spec}"
    )
}

fn node_of(k: &Kubectl, pod: &str) -> String {
    k.ok(&["get", "pod", pod, "-o", "jsonpath={.spec.nodeName}"])
}

fn wait_bound(k: &Kubectl, pod: &str) -> String {
    eventually(
        &format!("{pod} to be bound"),
        Duration::from_secs(30),
        || {
            let n = node_of(k, pod);
            (!n.is_empty()).then_some(n)
        },
    )
}

/// The PodScheduled=False message once the scheduler has given up on the pod.
fn wait_unschedulable(k: &Kubectl, pod: &str) -> String {
    eventually(
        &format!("{pod} to be unschedulable"),
        Duration::from_secs(30),
        || {
            let reason = k.ok(&[
                "get",
                "pod",
                pod,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].reason}",
            ]);
            (reason == "Unschedulable").then(|| {
                k.ok(&[
                    "get",
                    "pod",
                    pod,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].message}",
                ])
            })
        },
    )
}

/// The message column of `kubectl get events` for a pod and reason, as a user reads it.
fn event_lines(k: &Kubectl, pod: &str, reason: &str) -> Vec<String> {
    let sel = format!("involvedObject.name={pod},reason={reason}");
    k.ok(&["get", "events", "--field-selector", &sel])
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

fn assert_scheduled_event(k: &Kubectl, pod: &str, node: &str) {
    let want = format!("Successfully assigned default/{pod} to {node}");
    let lines = eventually(
        &format!("the Scheduled event of {pod}"),
        Duration::from_secs(30),
        || {
            let l = event_lines(k, pod, "Scheduled");
            (!l.is_empty()).then_some(l)
        },
    );
    assert_eq!(lines.len(), 1, "{lines:?}");
    let cols: Vec<&str> = lines[0].split_whitespace().collect();
    // LAST SEEN  TYPE  REASON  OBJECT  MESSAGE
    assert_eq!(cols[1], "Normal", "{}", lines[0]);
    assert_eq!(cols[2], "Scheduled", "{}", lines[0]);
    assert_eq!(cols[3], format!("pod/{pod}"), "{}", lines[0]);
    assert!(lines[0].trim_end().ends_with(&want), "{}", lines[0]);
}

fn assert_failed_event(k: &Kubectl, pod: &str, want: &str) {
    let lines = eventually(
        &format!("the FailedScheduling event of {pod}"),
        Duration::from_secs(30),
        || {
            let l = event_lines(k, pod, "FailedScheduling");
            l.iter().any(|l| l.trim_end().ends_with(want)).then_some(l)
        },
    );
    let line = lines.iter().find(|l| l.trim_end().ends_with(want)).unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[1], "Warning", "{line}");
    assert_eq!(cols[2], "FailedScheduling", "{line}");
}

#[test]
fn describe_pod_shows_upstreams_failed_scheduling_and_scheduled_events() {
    let s = Server::start_with(&SERVER_ARGS);
    let k = s.kubectl("1.33");
    seed_nodes(&k);
    k.ok_stdin(
        &["create", "-f", "-"],
        &pod_yaml(
            "big",
            "  containers:\n  - name: c\n    image: nginx\n    resources:\n      limits:\n        cpu: \"3\"\n",
        ),
    );
    let want = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.";
    let out = eventually(
        "FailedScheduling in describe",
        Duration::from_secs(30),
        || {
            let out = k.ok(&["describe", "pod", "big"]);
            out.contains("FailedScheduling").then_some(out)
        },
    );
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
    assert!(out.contains("Node:             <none>"), "{out}");
    assert_eq!(wait_unschedulable(&k, "big"), want);
    assert_failed_event(&k, "big", want);

    k.ok(&["run", "web", "--image=nginx"]);
    let out = eventually("Scheduled in describe", Duration::from_secs(30), || {
        let out = k.ok(&["describe", "pod", "web"]);
        out.contains("Successfully assigned").then_some(out)
    });
    let line = out
        .lines()
        .find(|l| l.contains("Successfully assigned"))
        .expect("event line");
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[..2], ["Normal", "Scheduled"], "{line}");
    assert!(line.contains("default-scheduler"), "{line}");
    let node = node_of(&k, "web");
    assert!(node == "worker232" || node == "worker233", "{node}");
    assert!(
        line.trim_end()
            .ends_with(&format!("Successfully assigned default/web to {node}")),
        "{line}"
    );
    assert_scheduled_event(&k, "web", &node);
    let wide = k.ok(&["get", "pod", "web", "-o", "wide"]);
    assert!(wide.contains(&node), "{wide}");
    assert_eq!(
        k.ok(&[
            "get",
            "pod",
            "web",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].status}"
        ]),
        "True"
    );

    // nodeName bypasses the scheduler: no Scheduled event, even onto the tainted node.
    k.ok_stdin(
        &["create", "-f", "-"],
        &pod_yaml(
            "pinned",
            "  nodeName: master231\n  containers:\n  - name: c\n    image: nginx\n",
        ),
    );
    assert_eq!(node_of(&k, "pinned"), "master231");
    std::thread::sleep(Duration::from_secs(1));
    assert!(event_lines(&k, "pinned", "Scheduled").is_empty());
}

#[test]
fn host_ports_host_network_node_selector_and_taints_place_pods_as_in_the_seed() {
    let s = Server::start_with(&SERVER_ARGS);
    let k = s.kubectl("1.33");
    seed_nodes(&k);

    // Three replicas of a hostPort pod: one per worker, the third Pending.
    let hp = "  containers:\n  - name: c\n    image: nginx\n    ports:\n    - containerPort: 80\n      hostPort: 90\n";
    for i in 1..=3 {
        k.ok_stdin(
            &["create", "-f", "-"],
            &pod_yaml(&format!("hostport-{i}"), hp),
        );
    }
    let want_ports = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) didn't have free ports for the requested pod ports. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.";
    let placed = eventually("two hostPort pods bound", Duration::from_secs(30), || {
        let nodes: Vec<String> = (1..=3)
            .map(|i| node_of(&k, &format!("hostport-{i}")))
            .collect();
        (nodes.iter().filter(|n| !n.is_empty()).count() == 2).then_some(nodes)
    });
    let mut workers: Vec<&String> = placed.iter().filter(|n| !n.is_empty()).collect();
    workers.sort();
    assert_eq!(workers, ["worker232", "worker233"]);
    let pending = format!(
        "hostport-{}",
        placed.iter().position(|n| n.is_empty()).unwrap() + 1
    );
    assert_eq!(wait_unschedulable(&k, &pending), want_ports);
    assert_failed_event(&k, &pending, want_ports);
    let get = k.ok(&["get", "pod", &pending]);
    assert!(get.contains("Pending"), "{get}");

    // A hostNetwork pod holds its container ports on the node as well.
    k.ok_stdin(
        &["create", "-f", "-"],
        &pod_yaml(
            "hostnet",
            "  hostNetwork: true\n  containers:\n  - name: c\n    image: nginx\n    ports:\n    - containerPort: 90\n",
        ),
    );
    assert_eq!(wait_unschedulable(&k, "hostnet"), want_ports);
    k.ok(&["delete", "pod", &pending, "hostnet", "--wait=false"]);

    // nodeSelector: onto the labelled worker; a label no node has stays Pending.
    k.ok(&["label", "node", "worker233", "school=oldboyedu"]);
    k.ok_stdin(
        &["create", "-f", "-"],
        &pod_yaml(
            "selected",
            "  nodeSelector:\n    school: oldboyedu\n  containers:\n  - name: c\n    image: nginx\n",
        ),
    );
    assert_eq!(wait_bound(&k, "selected"), "worker233");
    assert_scheduled_event(&k, "selected", "worker233");
    k.ok_stdin(
        &["create", "-f", "-"],
        &pod_yaml(
            "nowhere",
            "  nodeSelector:\n    school: laonanhai\n  containers:\n  - name: c\n    image: nginx\n",
        ),
    );
    let want_selector = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";
    assert_eq!(wait_unschedulable(&k, "nowhere"), want_selector);
    // Labelling a node is a cluster event that brings the pod back: it is bound.
    k.ok(&["label", "node", "worker232", "school=laonanhai"]);
    assert_eq!(wait_bound(&k, "nowhere"), "worker232");
    assert_scheduled_event(&k, "nowhere", "worker232");

    // Taints: NoSchedule on one worker, NoExecute on the other; a pod without tolerations
    // fits nowhere, one tolerating everything (empty key, Exists) fits anywhere, one
    // tolerating only the NoSchedule taint lands on that worker.
    k.ok(&["taint", "node", "worker232", "school=oldboyedu:NoSchedule"]);
    k.ok(&["taint", "node", "worker233", "class=linux:NoExecute"]);
    let t = k.ok(&["describe", "node", "worker233"]);
    assert!(
        t.contains("Taints:             class=linux:NoExecute"),
        "{t}"
    );
    k.ok(&["run", "plain", "--image=nginx"]);
    let want_taints = "0/3 nodes are available: 1 node(s) had untolerated taint {class: linux}, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 1 node(s) had untolerated taint {school: oldboyedu}. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";
    assert_eq!(wait_unschedulable(&k, "plain"), want_taints);
    assert_failed_event(&k, "plain", want_taints);
    k.ok_stdin(
        &["create", "-f", "-"],
        &pod_yaml(
            "tolerant",
            "  tolerations:\n  - key: school\n    operator: Equal\n    value: oldboyedu\n    effect: NoSchedule\n  containers:\n  - name: c\n    image: nginx\n",
        ),
    );
    assert_eq!(wait_bound(&k, "tolerant"), "worker232");
    k.ok_stdin(
        &["create", "-f", "-"],
        &pod_yaml(
            "anywhere",
            "  nodeSelector:\n    kubernetes.io/hostname: master231\n  tolerations:\n  - operator: Exists\n  containers:\n  - name: c\n    image: nginx\n",
        ),
    );
    assert_eq!(wait_bound(&k, "anywhere"), "master231");
    assert_scheduled_event(&k, "anywhere", "master231");
    // Removing the taint is a node update: the waiting pod gets bound.
    k.ok(&["taint", "node", "worker233", "class-"]);
    assert_eq!(wait_bound(&k, "plain"), "worker233");
    assert_scheduled_event(&k, "plain", "worker233");
}

#[test]
fn cordoned_nodes_leave_pods_pending_until_uncordoned() {
    let s = Server::start_with(&SERVER_ARGS);
    let k = s.kubectl("1.33");
    seed_nodes(&k);
    let out = k.ok(&["cordon", "worker232", "worker233"]);
    assert_eq!(out, "node/worker232 cordoned\nnode/worker233 cordoned\n");
    let nodes = k.ok(&["get", "nodes"]);
    assert!(
        nodes
            .lines()
            .any(|l| l.starts_with("worker233") && l.contains("Ready,SchedulingDisabled")),
        "{nodes}"
    );
    k.ok(&["run", "waiting", "--image=nginx"]);
    let want = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) were unschedulable. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";
    assert_eq!(wait_unschedulable(&k, "waiting"), want);
    assert_failed_event(&k, "waiting", want);
    let out = k.ok(&["describe", "pod", "waiting"]);
    assert!(out.contains(want), "{out}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(node_of(&k, "waiting"), "");

    let out = k.ok(&["uncordon", "worker233"]);
    assert_eq!(out, "node/worker233 uncordoned\n");
    assert_eq!(wait_bound(&k, "waiting"), "worker233");
    assert_scheduled_event(&k, "waiting", "worker233");
}

/// A `ferrokube scheduler` process, killed by PID when dropped.
struct SchedulerProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl SchedulerProcess {
    fn start(kubeconfig: &Path, log: PathBuf) -> SchedulerProcess {
        let f = std::fs::File::create(&log).expect("scheduler log");
        let child = Command::new(ferrokube_bin())
            .args(["scheduler", "--kubeconfig"])
            .arg(kubeconfig)
            .env("FERROKUBE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("log"))
            .stderr(f)
            .spawn()
            .expect("start ferrokube scheduler");
        SchedulerProcess {
            child: Some(child),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn leading(&self) -> bool {
        self.log().contains("leading: scheduling")
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for SchedulerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- {} ----\n{}", self.log.display(), self.log());
        }
    }
}

fn lease_holder(k: &Kubectl) -> String {
    k.run(&[
        "get",
        "lease",
        "-n",
        "kube-system",
        "kube-scheduler",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
    .stdout
}

fn create_pods(k: &Kubectl, prefix: &str, n: usize) -> Vec<String> {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let docs: Vec<String> = names
        .iter()
        .map(|n| {
            pod_yaml(
                n,
                "  containers:\n  - name: c\n    image: nginx\n    resources:\n      requests:\n        cpu: 10m\n",
            )
        })
        .collect();
    k.ok_stdin(&["create", "-f", "-"], &docs.join("---\n"));
    names
}

fn all_bound(k: &Kubectl, names: &[String]) -> bool {
    let out = k.ok(&[
        "get",
        "pods",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.spec.nodeName}{\"\\n\"}{end}",
    ]);
    let nodes: HashMap<&str, &str> = out.lines().filter_map(|l| l.split_once('=')).collect();
    names
        .iter()
        .all(|n| nodes.get(n.as_str()).is_some_and(|v| !v.is_empty()))
}

#[test]
fn two_scheduler_processes_elect_one_leader_and_the_other_takes_over_when_it_is_killed() {
    let s = Server::start_with(&["--node-monitor-grace-period", "1h", "--disable-scheduler"]);
    let k = s.kubectl("1.33");
    seed_nodes(&k);
    let mut a = SchedulerProcess::start(&s.kubeconfig, s.dir.join("scheduler-a.log"));
    eventually(
        "the first scheduler to lead",
        Duration::from_secs(30),
        || a.leading().then_some(()),
    );
    let holder_a = lease_holder(&k);
    assert!(!holder_a.is_empty());
    let b = SchedulerProcess::start(&s.kubeconfig, s.dir.join("scheduler-b.log"));
    std::thread::sleep(Duration::from_secs(3));
    assert!(!b.leading(), "{}", b.log());

    let first = create_pods(&k, "before", 10);
    eventually("pods bound by the leader", Duration::from_secs(30), || {
        all_bound(&k, &first).then_some(())
    });
    assert!(!b.leading(), "{}", b.log());

    // Kill the leader without letting it release the lease; pods created meanwhile wait.
    a.kill();
    let killed = Instant::now();
    let second = create_pods(&k, "after", 10);
    eventually(
        "the second scheduler to take over",
        Duration::from_secs(30),
        || {
            let h = lease_holder(&k);
            (!h.is_empty() && h != holder_a && b.leading()).then_some(())
        },
    );
    let took = killed.elapsed();
    // Lease duration 15 s, plus one retry period (2 s) for the standby to notice.
    assert!(took <= Duration::from_secs(17), "took over after {took:?}");
    eventually(
        "pods bound by the new leader",
        Duration::from_secs(30),
        || all_bound(&k, &second).then_some(()),
    );

    // Nothing was bound twice: one Scheduled event per pod, each seen once.
    let out = k.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=Scheduled",
        "-o",
        "jsonpath={range .items[*]}{.involvedObject.name} {.count}{\"\\n\"}{end}",
    ]);
    let mut per_pod: HashMap<String, u32> = HashMap::new();
    for l in out.lines() {
        let (name, count) = l.split_once(' ').expect("name count");
        *per_pod.entry(name.to_string()).or_default() += count.parse::<u32>().unwrap_or(1);
    }
    for n in first.iter().chain(&second) {
        assert_eq!(per_pod.get(n), Some(&1), "{n}: {out}");
    }
    assert_eq!(per_pod.len(), 20, "{out}");
}
