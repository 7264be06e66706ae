//! Workload controllers inside a real `ferrokube server` (and alone as `ferrokube
//! controller-manager`), seen through kubectl 1.33: create/scale/get rs, set image, rollout
//! status/history/undo, describe deployment with ScalingReplicaSet events, a rolling update that
//! keeps within maxSurge and maxUnavailable, a Job to completion and a CronJob creating a Job.
//! There is no kubelet yet: a stand-in thread binds pods to the test's Node objects and reports
//! them Running and Ready (or Succeeded, for Job pods) through the status API, as a kubelet would.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Kubectl, Server, eventually, ferrokube_bin, table};

const V: &str = "1.33";

fn clone_kubectl(k: &Kubectl) -> Kubectl {
    Kubectl {
        bin: k.bin.clone(),
        kubeconfig: k.kubeconfig.clone(),
        home: k.home.clone(),
    }
}

fn create_nodes(k: &Kubectl, names: &[&str]) {
    for n in names {
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n,
            "labels": {"kubernetes.io/hostname": n}},
            "status": {"capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                       "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"}}});
        k.ok_stdin(&["create", "-f", "-"], &node.to_string());
    }
}

/// What the stand-in kubelet saw of the watched Deployment's pods, one list (one moment) at a
/// time: the most non-terminating pods and the fewest ready ones.
#[derive(Default, Debug)]
struct Observed {
    snapshots: usize,
    max_pods: usize,
    min_ready: usize,
}

/// A stand-in kubelet: binds unscheduled pods round-robin to `nodes`, reports them Running and
/// Ready (Job pods: Succeeded), and finishes pod deletions. While `watching` is set it records,
/// per pod list, how many pods labelled `app=<label>` exist and how many are ready.
struct Kubelet {
    stop: Arc<AtomicBool>,
    watching: Arc<AtomicBool>,
    observed: Arc<Mutex<Observed>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Kubelet {
    fn start(k: &Kubectl, nodes: &[&str], label: &str) -> Kubelet {
        let stop = Arc::new(AtomicBool::new(false));
        let watching = Arc::new(AtomicBool::new(false));
        let observed = Arc::new(Mutex::new(Observed {
            min_ready: usize::MAX,
            ..Default::default()
        }));
        let (s, w, o) = (stop.clone(), watching.clone(), observed.clone());
        let k = clone_kubectl(k);
        let nodes: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
        let label = label.to_string();
        let thread = std::thread::spawn(move || {
            let mut next = 0usize;
            while !s.load(Ordering::SeqCst) {
                let out = k.run(&["get", "pods", "-A", "-o", "json"]);
                if !out.status.success() {
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
                let list: Value = serde_json::from_str(&out.stdout).expect("pod list");
                let items = list["items"].as_array().cloned().unwrap_or_default();
                if w.load(Ordering::SeqCst) {
                    let mine: Vec<&Value> = items
                        .iter()
                        .filter(|p| p["metadata"]["labels"]["app"] == label.as_str())
                        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                        .collect();
                    let ready = mine.iter().filter(|p| is_ready(p)).count();
                    let mut o = o.lock().unwrap();
                    o.snapshots += 1;
                    o.max_pods = o.max_pods.max(mine.len());
                    o.min_ready = o.min_ready.min(ready);
                }
                for p in &items {
                    let ns = p["metadata"]["namespace"].as_str().unwrap_or_default();
                    let name = p["metadata"]["name"].as_str().unwrap_or_default();
                    if !p["metadata"]["deletionTimestamp"].is_null() {
                        k.run(&[
                            "delete",
                            "pod",
                            name,
                            "-n",
                            ns,
                            "--grace-period=0",
                            "--force",
                            "--wait=false",
                        ]);
                        continue;
                    }
                    let phase = p["status"]["phase"].as_str().unwrap_or("Pending");
                    if phase == "Succeeded" || phase == "Failed" {
                        continue;
                    }
                    if p["spec"]["nodeName"].as_str().unwrap_or("").is_empty() {
                        let node = &nodes[next % nodes.len()];
                        next += 1;
                        let binding = json!({"apiVersion": "v1", "kind": "Binding",
                            "metadata": {"name": name, "namespace": ns},
                            "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
                        let path = format!("/api/v1/namespaces/{ns}/pods/{name}/binding");
                        if !k
                            .run_stdin(&["create", "--raw", &path, "-f", "-"], &binding.to_string())
                            .status
                            .success()
                        {
                            continue;
                        }
                    }
                    let job = !p["metadata"]["labels"]["batch.kubernetes.io/job-name"].is_null();
                    let status = if job {
                        json!({"status": {"phase": "Succeeded",
                            "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}],
                            "containerStatuses": [{"name": p["spec"]["containers"][0]["name"], "image": p["spec"]["containers"][0]["image"],
                                "imageID": "", "ready": false, "restartCount": 0,
                                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}})
                    } else if is_ready(p) {
                        continue;
                    } else {
                        let ip = format!("10.244.0.{}", 2 + next % 250);
                        json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                            "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}]}})
                    };
                    k.run(&[
                        "patch",
                        "pod",
                        name,
                        "-n",
                        ns,
                        "--subresource=status",
                        "--type=merge",
                        "-p",
                        &status.to_string(),
                    ]);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Kubelet {
            stop,
            watching,
            observed,
            thread: Some(thread),
        }
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn is_ready(p: &Value) -> bool {
    p["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn image_of(k: &Kubectl, deploy: &str) -> String {
    k.ok(&[
        "get",
        "deployment",
        deploy,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ])
}

#[test]
fn kubectl_creates_scales_rolls_out_and_undoes_a_deployment_within_surge_and_unavailability() {
    let s = Server::start();
    let k = s.kubectl(V);
    create_nodes(&k, &["node-a", "node-b"]);
    let kubelet = Kubelet::start(&k, &["node-a", "node-b"], "web");

    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=4",
    ]);
    let out = k.ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let rs = table(&k.ok(&["get", "rs"]));
    assert_eq!(rs[0], ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    assert_eq!(rs.len(), 2, "{rs:?}");
    assert!(rs[1][0].starts_with("web-"), "{rs:?}");
    assert_eq!(&rs[1][1..4], ["4", "4", "4"]);

    let out = k.ok(&["scale", "deployment/web", "--replicas=6"]);
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    k.ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    let rs = table(&k.ok(&["get", "rs"]));
    assert_eq!(&rs[1][1..4], ["6", "6", "6"], "{rs:?}");

    // 6 replicas with the default 25%/25%: surge rounds up to 2, unavailability down to 1.
    kubelet.watching.store(true, Ordering::SeqCst);
    let out = k.ok(&["set", "image", "deployment/web", "nginx=nginx:1.26"]);
    assert_eq!(out.trim(), "deployment.apps/web image updated");
    let out = k.ok(&["rollout", "status", "deployment/web", "--timeout=180s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    kubelet.watching.store(false, Ordering::SeqCst);
    {
        let o = kubelet.observed.lock().unwrap();
        // The new ReplicaSet can hold at most 3 pods before any of them is ready (8 pods at
        // most, 5 of them available old ones), so reaching 6 ready new pods takes at least two
        // passes of the stand-in, each of which starts with a snapshot. More is timing.
        assert!(o.snapshots >= 2, "too few observations: {o:?}");
        assert!(
            o.max_pods <= 8,
            "more than replicas + maxSurge pods at once: {o:?}"
        );
        assert!(
            o.min_ready >= 5,
            "fewer than replicas - maxUnavailable ready pods: {o:?}"
        );
    }
    let rs = table(&k.ok(&["get", "rs"]));
    assert_eq!(rs.len(), 3, "old and new ReplicaSets: {rs:?}");
    assert!(
        rs.iter().skip(1).any(|r| r[1..4] == ["6", "6", "6"]),
        "{rs:?}"
    );
    assert!(
        rs.iter().skip(1).any(|r| r[1..4] == ["0", "0", "0"]),
        "{rs:?}"
    );

    let history = k.ok(&["rollout", "history", "deployment/web"]);
    let h = table(&history.lines().skip(1).collect::<Vec<_>>().join("\n"));
    assert_eq!(h[0], ["REVISION", "CHANGE-CAUSE"], "{history}");
    assert_eq!(
        h.iter().skip(1).map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["1", "2"],
        "{history}"
    );
    let rev1 = k.ok(&["rollout", "history", "deployment/web", "--revision=1"]);
    assert!(rev1.contains("nginx:1.25"), "{rev1}");

    let out = k.ok(&["rollout", "undo", "deployment/web"]);
    assert_eq!(out.trim(), "deployment.apps/web rolled back");
    k.ok(&["rollout", "status", "deployment/web", "--timeout=180s"]);
    assert_eq!(image_of(&k, "web"), "nginx:1.25");
    let history = k.ok(&["rollout", "history", "deployment/web"]);
    let revs: Vec<String> = table(&history.lines().skip(1).collect::<Vec<_>>().join("\n"))
        .into_iter()
        .skip(1)
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(revs, ["2", "3"], "revision 1 became 3: {history}");

    k.ok(&["rollout", "undo", "deployment/web", "--to-revision=2"]);
    k.ok(&["rollout", "status", "deployment/web", "--timeout=180s"]);
    assert_eq!(image_of(&k, "web"), "nginx:1.26");
    let ann = k.ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
    ]);
    assert_eq!(ann, "4");

    let describe = k.ok(&["describe", "deployment", "web"]);
    assert!(
        describe.contains("StrategyType:           RollingUpdate"),
        "{describe}"
    );
    assert!(
        describe.contains("RollingUpdateStrategy:  25% max unavailable, 25% max surge"),
        "{describe}"
    );
    assert!(
        describe.contains("Available      True    MinimumReplicasAvailable"),
        "{describe}"
    );
    assert!(
        describe.contains("Progressing    True    NewReplicaSetAvailable"),
        "{describe}"
    );
    assert!(describe.contains("NewReplicaSet:"), "{describe}");
    let events: Vec<&str> = describe
        .lines()
        .filter(|l| l.contains("ScalingReplicaSet"))
        .collect();
    assert!(
        events.iter().any(
            |l| l.contains("deployment-controller") && l.contains("Scaled up replica set web-")
        ),
        "{describe}"
    );
    assert!(
        events
            .iter()
            .any(|l| l.contains("Scaled down replica set web-")),
        "{describe}"
    );

    let out = k.ok(&["scale", "deployment/web", "--replicas=2"]);
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    eventually("scale down to 2 pods", Duration::from_secs(60), || {
        let pods = k.ok(&["get", "pods", "-l", "app=web", "-o", "name"]);
        (pods.lines().count() == 2).then_some(())
    });
}

#[test]
fn a_job_runs_to_completion_and_a_cronjob_creates_jobs() {
    let s = Server::start();
    let k = s.kubectl(V);
    create_nodes(&k, &["node-a"]);
    let _kubelet = Kubelet::start(&k, &["node-a"], "none");

    k.ok(&["create", "job", "once", "--image=busybox", "--", "true"]);
    let out = k.ok(&[
        "wait",
        "--for=condition=complete",
        "job/once",
        "--timeout=90s",
    ]);
    assert_eq!(out.trim(), "job.batch/once condition met");
    let jobs = table(&k.ok(&["get", "jobs"]));
    assert_eq!(jobs[0][..3], ["NAME", "STATUS", "COMPLETIONS"]);
    assert_eq!(jobs[1][..3], ["once", "Complete", "1/1"], "{jobs:?}");
    let describe = k.ok(&["describe", "job", "once"]);
    assert!(describe.contains("SuccessfulCreate"), "{describe}");
    assert!(describe.contains("Completed"), "{describe}");

    k.ok(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=* * * * *",
        "--",
        "true",
    ]);
    let cj = table(&k.ok(&["get", "cronjob", "tick"]));
    assert_eq!(cj[0][..3], ["NAME", "SCHEDULE", "TIMEZONE"]);
    // The next minute boundary is at most 60 s away.
    let job = eventually("a Job from the CronJob", Duration::from_secs(90), || {
        let out = k.ok(&["get", "jobs", "-o", "jsonpath={range .items[*]}{.metadata.name} {.metadata.ownerReferences[0].kind}{\"\\n\"}{end}"]);
        out.lines()
            .find(|l| l.starts_with("tick-") && l.ends_with(" CronJob"))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
    });
    let minutes: i64 = job
        .trim_start_matches("tick-")
        .parse()
        .expect("scheduled minute");
    assert!(minutes > 28_000_000, "{job}");
    k.ok(&[
        "wait",
        "--for=condition=complete",
        &format!("job/{job}"),
        "--timeout=60s",
    ]);
    eventually("lastSuccessfulTime", Duration::from_secs(30), || {
        let t = k.ok(&[
            "get",
            "cronjob",
            "tick",
            "-o",
            "jsonpath={.status.lastSuccessfulTime}",
        ]);
        (!t.is_empty()).then_some(())
    });
    let describe = k.ok(&["describe", "cronjob", "tick"]);
    assert!(
        describe.contains(&format!("Created job {job}")),
        "{describe}"
    );
}

/// A `ferrokube controller-manager` process; killed when dropped.
struct ControllerManager(Child);

impl Drop for ControllerManager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_standalone_controller_manager_takes_the_lease_and_runs_deployments() {
    // The server runs no controllers of its own.
    let s = Server::start_with(&["--controllers=none"]);
    let k = s.kubectl(V);
    k.ok(&[
        "create",
        "deployment",
        "solo",
        "--image=nginx",
        "--replicas=2",
    ]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        k.ok(&["get", "rs", "-o", "name"]).trim(),
        "",
        "nothing runs controllers yet"
    );

    let log = s.dir.join("controller-manager.log");
    let f = std::fs::File::create(&log).expect("log");
    let cm = ControllerManager(
        Command::new(ferrokube_bin())
            .args(["controller-manager", "--leader-elect=true", "--kubeconfig"])
            .arg(&s.kubeconfig)
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("log"))
            .stderr(f)
            .spawn()
            .expect("start ferrokube controller-manager"),
    );
    let holder = eventually("the leader lease", Duration::from_secs(30), || {
        let r = k.run(&[
            "get",
            "lease",
            "kube-controller-manager",
            "-n",
            "kube-system",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]);
        (r.status.success() && !r.stdout.is_empty()).then_some(r.stdout)
    });
    assert!(holder.contains('_'), "hostname_id identity: {holder}");
    eventually("pods of the deployment", Duration::from_secs(60), || {
        let out = k.ok(&["get", "pods", "-l", "app=solo", "-o", "name"]);
        (out.lines().count() == 2).then_some(())
    });
    let rs = table(&k.ok(&["get", "rs"]));
    assert_eq!(&rs[1][1..3], ["2", "2"], "{rs:?}");
    drop(cm);
    let _ = std::fs::read_to_string(&log);
}
