//! Pods as real containers: a `ferrokube server` with its built-in node agent, which starts and
//! supervises its own containerd under the test's data dir and wires pods to a CNI bridge the
//! test names. Images come from Debian's busybox-static through `ferrokube images build-test`
//! (no registry: nothing leaves the machine). Seen through the real kubectl 1.33 (WebSocket
//! streaming) and 1.27 (SPDY): run, get, logs, exec (output, stdin, exit codes, a tty of the
//! terminal's size), port-forward,
//! delete, CrashLoopBackOff, configMap/secret/emptyDir and the service account's projected
//! token volume; init containers, env from ConfigMap/Secret/fieldRef/resourceFieldRef and
//! envFrom, the downward API volume, a postStart hook, httpGet, tcpSocket and grpc probes;
//! securityContext (also privileged), hostNetwork, a hostPort, a memory-backed emptyDir and
//! the resolv.conf of `--cluster-dns`; hostPath DirectoryOrCreate, a claim bound to a hostPath
//! PersistentVolume, and a preStop hook; ErrImagePull, ImagePullBackOff and ErrImageNeverPull
//! with their events; static pods started while the API server is down, mirrored once it is
//! back.
//!
//! The node's guard stops everything it started, also on panic: the server by SIGTERM (then
//! KILL), then `ferrokube agent-cleanup` (pod sandboxes, containerd, bridge, egress rules,
//! cgroups), then by PID any process still naming the data dir (containerd, shims) or still in
//! the test's cgroups.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Kubectl, eventually, ferrokube_bin, free_port, table};

/// What the node needs on the host, with the Debian package that provides it.
const HOST_NEEDS: &[(&str, &str)] = &[
    ("/usr/bin/containerd", "containerd"),
    ("/usr/bin/containerd-shim-runc-v2", "containerd"),
    ("/usr/sbin/runc", "runc"),
    ("/usr/lib/cni/bridge", "containernetworking-plugins"),
    ("/usr/lib/cni/host-local", "containernetworking-plugins"),
    ("/usr/lib/cni/portmap", "containernetworking-plugins"),
    ("/usr/sbin/iptables", "iptables"),
    ("/bin/busybox", "busybox-static"),
];

fn check_host() {
    let missing: Vec<String> = HOST_NEEDS
        .iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(path, pkg)| format!("{path} (Debian package {pkg})"))
        .collect();
    assert!(
        missing.is_empty(),
        "the pod tests run real containers and need: {}; run scripts/deps or apt-get install \
         containerd runc containernetworking-plugins iptables busybox-static",
        missing.join(", ")
    );
}

/// A one-node cluster: `ferrokube server` with its agent and its own containerd (or, split,
/// `ferrokube server --disable-agent` and a `ferrokube agent` beside it).
struct Node {
    child: Option<Child>,
    /// Split mode: the agent's process and arguments.
    agent: Option<Child>,
    agent_args: Option<Vec<String>>,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
    kubeconfig: PathBuf,
    log: PathBuf,
    name: String,
    cgroup_root: String,
    args: Vec<String>,
    /// The first three octets of pod addresses (`10.N.0.`).
    pod_prefix: String,
}

impl Node {
    fn start() -> Node {
        Node::start_with(&[])
    }

    /// A node whose server gets `extra` arguments besides the test's own.
    fn start_with(extra: &[&str]) -> Node {
        Node::new(extra, false)
    }

    /// The server without its agent, on a fixed port (so an agent outlives a restart of it),
    /// and the node as a separate `ferrokube agent`.
    fn start_split() -> Node {
        Node::new(&[], true)
    }

    fn new(extra: &[&str], split: bool) -> Node {
        check_host();
        let tmp = tempfile::Builder::new()
            .prefix("fk-pods-")
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().to_path_buf();
        static NODES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NODES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("e2e-node-{pid}-{n}");
        let cgroup_root = format!("/ferrokube-e2e-{pid}-{n}");
        // A subnet and bridge of this node's own, so concurrent tests and runs do not share
        // addresses.
        let octet = 100 + (pid * 3 + n) % 100;
        let cluster_cidr = format!("10.{octet}.0.0/16");
        let pod_cidr = format!("10.{octet}.0.0/24");
        let bridge = format!("fke{}-{n}", pid % 100_000);

        let images = dir.join("agent/images");
        std::fs::create_dir_all(&images).expect("images dir");
        let out = Command::new(ferrokube_bin())
            .args(["images", "build-test", "--out"])
            .arg(&images)
            .output()
            .expect("run ferrokube images build-test");
        assert!(
            out.status.success(),
            "ferrokube images build-test failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        // A static pod, run from the manifest directory and mirrored into the API.
        let manifests = dir.join("agent/manifests");
        std::fs::create_dir_all(&manifests).expect("manifests dir");
        std::fs::write(manifests.join("static-sleeper.yaml"), STATIC_POD).expect("static pod");

        let port = if split {
            free_port().to_string()
        } else {
            "0".to_string()
        };
        // What the node's agent is told, inside the server or on its own.
        let node_flags: Vec<String> = [
            "--node-name",
            &name,
            "--kubelet-port",
            "0",
            "--cni-bridge",
            &bridge,
            "--cgroup-root",
            &cgroup_root,
            "--pod-cidr",
            &pod_cidr,
            "--data-dir",
            &dir.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let strings = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let kubeconfig = dir.join("admin.kubeconfig").display().to_string();
        let agent_args = split.then(|| {
            [
                strings(&["agent", "--kubeconfig", &kubeconfig]),
                node_flags.clone(),
            ]
            .concat()
        });
        let split_flag: &[&str] = if split { &["--disable-agent"] } else { &[] };
        let args = [
            strings(&[
                "server",
                "--bind-address",
                "127.0.0.1",
                "--port",
                &port,
                "--cluster-cidr",
                &cluster_cidr,
            ]),
            node_flags,
            strings(extra),
            strings(split_flag),
        ]
        .concat();
        let mut node = Node {
            child: None,
            agent: None,
            agent_args,
            kubeconfig: dir.join("admin.kubeconfig"),
            log: dir.join("server.log"),
            dir,
            _tmp: tmp,
            name,
            cgroup_root,
            args,
            pod_prefix: format!("10.{octet}.0."),
        };
        node.launch();
        node
    }

    fn launch(&mut self) {
        self.start_server();
        if self.agent.is_none()
            && let Some(args) = &self.agent_args
        {
            self.agent = Some(self.spawn(args, "start ferrokube agent"));
        }
        self.wait_node();
    }

    /// `ferrokube` with `args`, its output appended to the log.
    fn spawn(&self, args: &[String], what: &str) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log");
        Command::new(ferrokube_bin())
            .args(args)
            .env("FERROKUBE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect(what)
    }

    /// Starts the server and waits until its API answers.
    fn start_server(&mut self) {
        let _ = std::fs::remove_file(&self.kubeconfig);
        self.child = Some(self.spawn(&self.args, "start ferrokube server"));
        self.wait_api();
    }

    /// Split mode: restarts the agent alone (and so its containerd); pods run on.
    fn restart_agent(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            terminate(&mut agent);
        }
        let args = self.agent_args.clone().expect("a split node");
        self.agent = Some(self.spawn(&args, "start ferrokube agent"));
        self.wait_node();
    }

    /// Split mode: stops the API server alone; the agent and its pods run on.
    fn stop_server(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    /// Stops the server (and so its kubelet and containerd) with SIGTERM and starts it again on
    /// the same data dir; pods keep running meanwhile.
    fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
        self.launch();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kubectl(&self, version: &str) -> Kubectl {
        Kubectl::new(
            version,
            &self.kubeconfig,
            &self.dir.join(format!("kubectl-home-{version}")),
        )
    }

    fn wait_api(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if self.kubeconfig.exists() && self.log().contains("API server ready") {
                let out = self.kubectl("1.33").run(&["get", "--raw", "/readyz"]);
                if out.status.success() {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "server not ready within 90s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_node(&self) {
        let k = self.kubectl("1.33");
        eventually("the node to be Ready", Duration::from_secs(60), || {
            let out = k.run(&["get", "node", &self.name, "--no-headers"]).stdout;
            table(&out)
                .first()
                .is_some_and(|r| r.get(1).map(String::as_str) == Some("Ready"))
                .then_some(())
        });
        // The ServiceAccount admission plugin mounts the token volume once `default` exists.
        eventually(
            "the default service account",
            Duration::from_secs(30),
            || {
                k.run(&["get", "serviceaccount", "default"])
                    .status
                    .success()
                    .then_some(())
            },
        );
    }

    /// `kubectl run` bound to this node (the scheduler is not part of this test).
    /// `kubectl apply` of `manifest` with its pods placed on this node (`nodeName: NODE`).
    fn apply(&self, k: &Kubectl, manifest: &str) {
        k.ok_stdin(&["apply", "-f", "-"], &manifest.replace("NODE", &self.name));
    }

    fn overrides(&self) -> String {
        format!(r#"{{"spec":{{"nodeName":"{}"}}}}"#, self.name)
    }

    fn stop(&mut self) {
        let (agent, server) = (self.agent.take(), self.child.take());
        if agent.is_none() && server.is_none() {
            return;
        }
        for mut child in agent.into_iter().chain(server) {
            terminate(&mut child);
        }

        // Pods, containerd, the bridge, egress rules and cgroups.
        if let Ok(mut c) = Command::new(ferrokube_bin())
            .args(["agent-cleanup", "--data-dir"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // Whatever is left: processes naming the data dir (containerd, its shims) and any
        // process still in the test's cgroups.
        let dir = self.dir.display().to_string();
        let mut pids = processes_naming(&dir);
        pids.extend(processes_in_cgroup(&self.cgroup_root));
        for pid in pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- ferrokube server log ----\n{}", self.log());
        }
    }
}

/// SIGTERM, up to 20 s to exit, then SIGKILL.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn processes_naming(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

fn processes_in_cgroup(root: &str) -> Vec<u32> {
    fn walk(dir: &Path, out: &mut Vec<u32>) {
        if let Ok(s) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(s.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out);
                }
            }
        }
    }
    let mut out = vec![];
    walk(
        &Path::new("/sys/fs/cgroup/pids").join(root.trim_start_matches('/')),
        &mut out,
    );
    out
}

/// One HTTP/1.0 GET; returns the whole answer.
fn http_get(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The STATUS, RESTARTS and IP columns of `kubectl get pod -o wide`.
fn pod_row(k: &Kubectl, name: &str) -> Option<(String, String, String)> {
    let out = k
        .run(&["get", "pod", name, "-o", "wide", "--no-headers"])
        .stdout;
    let rows = table(&out);
    let r = rows.first()?;
    // NAME READY STATUS RESTARTS [(AGO ago)] AGE IP NODE ...
    let restarts = r.get(3)?.clone();
    let ip_col = if r.get(4).is_some_and(|c| c.starts_with('(')) {
        7
    } else {
        5
    };
    Some((r.get(2)?.clone(), restarts, r.get(ip_col)?.clone()))
}

fn wait_running(k: &Kubectl, name: &str) -> String {
    eventually(
        &format!("pod {name} to be Running with an IP"),
        Duration::from_secs(60),
        || {
            let (status, _, ip) = pod_row(k, name)?;
            (status == "Running" && ip.parse::<std::net::Ipv4Addr>().is_ok()).then_some(ip)
        },
    )
}

const STATIC_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: static-sleeper
  namespace: default
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sleeper
    image: busybox:1.35
    command: ["sh", "-c", "echo static pod up; trap 'exit 0' TERM; while true; do sleep 1; done"]
"#;

const VOLUMES_POD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: hello from a configmap
---
apiVersion: v1
kind: Secret
metadata:
  name: web-secret
stringData:
  password: s3cr3t
---
apiVersion: v1
kind: Pod
metadata:
  name: two-containers
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 2
  volumes:
  - name: shared
    emptyDir: {}
  - name: config
    configMap:
      name: web-config
  - name: secret
    secret:
      secretName: web-secret
  containers:
  - name: writer
    image: busybox:1.35
    command: ["sh", "-c", "echo written by the writer > /mnt/index.html; trap 'exit 0' TERM; while true; do sleep 1; done"]
    volumeMounts:
    - name: shared
      mountPath: /mnt
  - name: web
    image: busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & while true; do sleep 1; done"]
    volumeMounts:
    - name: shared
      mountPath: /www
    - name: config
      mountPath: /etc/config
    - name: secret
      mountPath: /etc/secret
      readOnly: true
"#;

#[test]
fn pods_run_in_real_containers_and_kubectl_reaches_them() {
    let mut node = Node::start();
    let k = node.kubectl("1.33");
    let k27 = node.kubectl("1.27");
    let overrides = node.overrides();

    // A crash-looping container first: its back-off runs while the rest of the test does.
    k.ok(&[
        "run",
        "crash",
        "--image=busybox:1.35",
        "--overrides",
        &overrides,
        "--",
        "sh",
        "-c",
        "echo dying; exit 1",
    ]);

    // run, get: Running with a pod IP from the node's pod CIDR.
    k.ok(&[
        "run",
        "bb",
        "--image=busybox:1.35",
        "--restart=Never",
        "--overrides",
        &overrides,
        "--",
        "sh",
        "-c",
        "echo hello from bb; trap 'exit 0' TERM; while true; do sleep 1; done",
    ]);
    let ip = wait_running(&k, "bb");
    assert!(
        ip.starts_with(&node.pod_prefix),
        "pod IP {ip} is not from the node's pod CIDR"
    );

    // logs, both protocols.
    for kc in [&k, &k27] {
        let logs = eventually("bb's log", Duration::from_secs(20), || {
            let out = kc.run(&["logs", "bb"]).stdout;
            out.contains("hello from bb").then_some(out)
        });
        assert_eq!(logs, "hello from bb\n");
    }

    // exec: output, stdin, exit codes; 1.33 speaks WebSocket v5, 1.27 SPDY/3.1.
    for kc in [&k, &k27] {
        assert_eq!(kc.ok(&["exec", "bb", "--", "cat", "/etc/hostname"]), "bb\n");
        assert_eq!(
            kc.ok_stdin(&["exec", "-i", "bb", "--", "cat"], "ping\n"),
            "ping\n"
        );
        let r = kc.run(&["exec", "bb", "--", "sh", "-c", "echo out; exit 3"]);
        assert_eq!(r.status.code(), Some(3), "exec exit code: {}", r.stderr);
        assert_eq!(r.stdout, "out\n");
        assert!(
            r.stderr.contains("command terminated with exit code 3"),
            "{}",
            r.stderr
        );
    }

    // The projected service account volume the admission plugin adds: token, CA, namespace.
    assert_eq!(
        k.ok(&[
            "exec",
            "bb",
            "--",
            "cat",
            "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
        ]),
        "default"
    );
    let token = k.ok(&[
        "exec",
        "bb",
        "--",
        "cat",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
    ]);
    assert_eq!(token.split('.').count(), 3, "not a JWT: {token:?}");
    let ca = k.ok(&[
        "exec",
        "bb",
        "--",
        "cat",
        "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
    ]);
    assert!(ca.contains("BEGIN CERTIFICATE"), "{ca}");

    // The nginx stand-in answers HTTP on its pod IP from the node, and through port-forward.
    k.ok(&[
        "run",
        "web",
        "--image=docker.io/ferrokube/busybox-httpd:latest",
        "--image-pull-policy=IfNotPresent",
        "--overrides",
        &overrides,
    ]);
    let web_ip = wait_running(&k, "web");
    let page = eventually(
        "web to answer on its pod IP",
        Duration::from_secs(20),
        || http_get(&format!("{web_ip}:80")).filter(|p| p.contains("200 OK")),
    );
    assert!(page.contains("Welcome to busybox httpd!"), "{page}");
    for (v, kc) in [("1.33", &k), ("1.27", &k27)] {
        let port = free_port();
        let out = node.dir.join(format!("port-forward-{v}.out"));
        let pf = kc.spawn(&["port-forward", "pod/web", &format!("{port}:80")], &out);
        let o = pf.wait_for("Forwarding from", Duration::from_secs(20));
        assert!(
            o.contains("Forwarding from 127.0.0.1"),
            "kubectl {v} port-forward: {o}"
        );
        let page = eventually(
            &format!("an answer through kubectl {v} port-forward"),
            Duration::from_secs(10),
            || http_get(&format!("127.0.0.1:{port}")),
        );
        assert!(page.contains("Welcome to busybox httpd!"), "{page}");
        drop(pf);
    }

    // configMap, secret and a shared emptyDir, inside the containers.
    node.apply(&k, VOLUMES_POD);
    wait_running(&k, "two-containers");
    assert_eq!(
        k.ok(&[
            "exec",
            "two-containers",
            "-c",
            "web",
            "--",
            "cat",
            "/etc/config/greeting"
        ]),
        "hello from a configmap"
    );
    assert_eq!(
        k.ok(&[
            "exec",
            "two-containers",
            "-c",
            "web",
            "--",
            "cat",
            "/etc/secret/password"
        ]),
        "s3cr3t"
    );
    let shared = eventually(
        "the writer's file in the shared emptyDir",
        Duration::from_secs(10),
        || {
            let r = k.run(&[
                "exec",
                "two-containers",
                "-c",
                "web",
                "--",
                "cat",
                "/www/index.html",
            ]);
            r.status.success().then_some(r.stdout)
        },
    );
    assert_eq!(shared, "written by the writer\n");
    let served = k.ok(&[
        "exec",
        "two-containers",
        "-c",
        "writer",
        "--",
        "wget",
        "-q",
        "-O",
        "-",
        "http://127.0.0.1:8080/index.html",
    ]);
    assert_eq!(served, "written by the writer\n");

    // CrashLoopBackOff with growing restarts, and the previous instance's log.
    let restarts = eventually(
        "crash to show CrashLoopBackOff after restarts",
        Duration::from_secs(90),
        || {
            let (status, restarts, _) = pod_row(&k, "crash")?;
            let n: u32 = restarts.parse().ok()?;
            (status == "CrashLoopBackOff" && n >= 2).then_some(n)
        },
    );
    assert!(restarts >= 2);
    let describe = k.ok(&["describe", "pod", "crash"]);
    assert!(
        describe.contains("Reason:       CrashLoopBackOff"),
        "{describe}"
    );
    assert!(describe.contains("Exit Code:    1"), "{describe}");
    assert!(
        describe.contains("Back-off restarting failed container"),
        "{describe}"
    );
    assert_eq!(k.ok(&["logs", "crash", "--previous"]), "dying\n");

    // The static pod runs from the manifest directory and is mirrored as `<name>-<node>`.
    let mirror = format!("static-sleeper-{}", node.name);
    wait_running(&k, &mirror);
    let logs = eventually("the static pod's log", Duration::from_secs(20), || {
        let out = k.run(&["logs", &mirror]).stdout;
        out.contains("static pod up").then_some(out)
    });
    assert_eq!(logs, "static pod up\n");
    let annotations = k.ok(&[
        "get",
        "pod",
        &mirror,
        "-o",
        "jsonpath={.metadata.annotations}",
    ]);
    assert!(
        annotations.contains("kubernetes.io/config.mirror"),
        "{annotations}"
    );

    // A kubelet restart (the whole server here) keeps every container: same IDs, no restarts.
    let ids = |k: &Kubectl| {
        k.ok(&[
            "get",
            "pod",
            "bb",
            "web",
            &mirror,
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.status.containerStatuses[*].containerID}/{.status.containerStatuses[*].restartCount} {end}",
        ])
    };
    let before = ids(&k);
    assert_eq!(before.matches("containerd://").count(), 3, "{before}");
    assert_eq!(before.matches("/0 ").count(), 3, "{before}");
    node.restart();
    assert_eq!(node.log().matches("API server ready").count(), 2);
    let k = node.kubectl("1.33");
    wait_running(&k, "bb");
    assert_eq!(
        ids(&k),
        before,
        "containers changed across a kubelet restart"
    );
    assert_eq!(k.ok(&["exec", "bb", "--", "cat", "/etc/hostname"]), "bb\n");

    // delete completes: containers stopped (TERM), then the pod object is gone.
    let started = Instant::now();
    k.ok(&[
        "delete",
        "pod",
        "bb",
        "two-containers",
        "web",
        "crash",
        "--grace-period=3",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "delete took {:?}",
        started.elapsed()
    );
    let left = k.ok(&["get", "pods", "-o", "name"]);
    assert_eq!(
        left.trim(),
        format!("pod/{mirror}"),
        "pods left after delete (only the static pod's mirror should be)"
    );

    node.stop();
    let dir = node.dir.display().to_string();
    assert!(
        processes_naming(&dir).is_empty(),
        "containerd or shims left running: {:?}",
        processes_naming(&dir)
    );
}

const BEHAVIOUR_PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: oom
spec:
  nodeName: NODE
  restartPolicy: Never
  containers:
  - name: hog
    image: busybox:1.35
    command: ["sh", "-c", "head -c 200m /dev/zero | tail"]
    resources:
      limits:
        memory: 16Mi
---
apiVersion: v1
kind: Pod
metadata:
  name: unhealthy
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox:1.35
    command: ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; trap 'exit 0' TERM; while true; do sleep 1; done"]
    livenessProbe:
      exec:
        command: ["cat", "/tmp/healthy"]
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: gated
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    readinessProbe:
      exec:
        command: ["test", "-f", "/tmp/ready"]
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: counter
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: count
    image: busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; i=0; while true; do echo line $i; i=$((i+1)); sleep 0.3; done"]
---
apiVersion: v1
kind: Pod
metadata:
  name: stubborn
spec:
  nodeName: NODE
  containers:
  - name: app
    image: busybox:1.35
    command: ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]
"#;

/// The READY column of `kubectl get pod`.
fn ready_column(k: &Kubectl, name: &str) -> Option<String> {
    let out = k.run(&["get", "pod", name, "--no-headers"]).stdout;
    table(&out).first()?.get(1).cloned()
}

/// Runs kubectl under `script`, which gives it a pseudo-terminal as its stdin and stdout.
fn kubectl_in_pty(k: &Kubectl, args: &str) -> String {
    kubectl_in_sized_pty(k, None, args)
}

/// kubectl in a pseudo-terminal of `size` (rows, columns) when given.
fn kubectl_in_sized_pty(k: &Kubectl, size: Option<(u16, u16)>, args: &str) -> String {
    let stty = size.map_or(String::new(), |(r, c)| format!("stty rows {r} cols {c}; "));
    let cmd = format!(
        "{stty}{} --cache-dir {} {args}",
        k.bin.display(),
        k.home.join("cache").display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("KUBECONFIG", &k.kubeconfig)
        .env("HOME", &k.home)
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs kubectl in a pty");
    assert!(
        out.status.success(),
        "{cmd} in a pty failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn containers_are_killed_probed_and_streamed_as_upstream() {
    let node = Node::start();
    let k = node.kubectl("1.33");
    let k27 = node.kubectl("1.27");
    node.apply(&k, BEHAVIOUR_PODS);
    for p in ["counter", "gated", "stubborn", "unhealthy"] {
        wait_running(&k, p);
    }

    // logs -f, --tail, --timestamps; attach; both protocols.
    for (v, kc) in [("1.33", &k), ("1.27", &k27)] {
        let out = node.dir.join(format!("logs-f-{v}.out"));
        let follow = kc.spawn(&["logs", "-f", "counter"], &out);
        let o = follow.wait_for("line 5\n", Duration::from_secs(20));
        assert!(
            o.starts_with("line 0\nline 1\n"),
            "kubectl {v} logs -f: {o}"
        );
        drop(follow);
        let tail = kc.ok(&["logs", "counter", "--tail=1"]);
        assert_eq!(tail.lines().count(), 1, "{tail}");
        assert!(tail.starts_with("line "), "{tail}");
        let stamped = kc.ok(&["logs", "counter", "--tail=2", "--timestamps"]);
        for l in stamped.lines() {
            let (ts, rest) = l.split_once(' ').expect("timestamp and line");
            assert!(ts.starts_with("20") && ts.ends_with('Z'), "{l}");
            assert!(rest.starts_with("line "), "{l}");
        }
        let out = node.dir.join(format!("attach-{v}.out"));
        let attach = kc.spawn(&["attach", "counter"], &out);
        let o = attach.wait_for("line", Duration::from_secs(20));
        assert!(o.contains("line "), "kubectl {v} attach: {o}");
    }

    // exec -it through a pseudo-terminal: the command sees a tty, of the size of kubectl's
    // terminal (sent on the resize channel).
    for kc in [&k, &k27] {
        let out = kubectl_in_pty(kc, "exec -it counter -- sh -c 'tty; echo done'");
        assert!(out.contains("/dev/pts/"), "{out}");
        assert!(out.contains("done"), "{out}");
        let out = kubectl_in_sized_pty(
            kc,
            Some((33, 101)),
            "exec -it counter -- sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do [ \"$(stty size)\" = \"33 101\" ] && break; sleep 1; done; stty size'",
        );
        assert!(out.contains("33 101"), "{out}");
    }

    // kubectl run -i --rm: what is piped to kubectl reaches the container's stdin through
    // attach, its output comes back, and the pod is deleted afterwards.
    for (i, kc) in [&k, &k27].into_iter().enumerate() {
        let name = format!("reader-{i}");
        let out = kc.run_stdin(
            &[
                "run",
                &name,
                "-i",
                "--rm",
                "--restart=Never",
                "--image=busybox:1.35",
                &format!("--overrides={}", node.overrides()),
                "--",
                "sh",
                "-c",
                "read line; echo got $line",
            ],
            "hello\n",
        );
        assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("got hello"), "{}", out.stdout);
        assert!(
            out.stdout.contains(&format!("pod \"{name}\" deleted")),
            "{}",
            out.stdout
        );
    }

    // cp out of and into a container (tar through exec).
    let local = node.dir.join("hostname-copy");
    for kc in [&k, &k27] {
        let _ = std::fs::remove_file(&local);
        kc.ok(&["cp", "counter:/etc/hostname", &local.display().to_string()]);
        assert_eq!(
            std::fs::read_to_string(&local).expect("copied file"),
            "counter\n"
        );
    }
    let upload = node.dir.join("upload.txt");
    std::fs::write(&upload, "uploaded\n").expect("upload file");
    k.ok(&[
        "cp",
        &upload.display().to_string(),
        "counter:/tmp/upload.txt",
    ]);
    assert_eq!(
        k.ok(&["exec", "counter", "--", "cat", "/tmp/upload.txt"]),
        "uploaded\n"
    );

    // A memory limit is a cgroup limit: the hog is OOMKilled.
    eventually("oom to be OOMKilled", Duration::from_secs(60), || {
        let (status, _, _) = pod_row(&k, "oom")?;
        (status == "OOMKilled").then_some(())
    });
    let reason = k.ok(&[
        "get",
        "pod",
        "oom",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.terminated.reason}/{.status.phase}",
    ]);
    assert_eq!(reason, "OOMKilled/Failed");

    // A failing liveness probe restarts the container.
    eventually(
        "unhealthy to be restarted by its liveness probe",
        Duration::from_secs(60),
        || {
            let (_, restarts, _) = pod_row(&k, "unhealthy")?;
            (restarts.parse::<u32>().ok()? >= 1).then_some(())
        },
    );
    let describe = k.ok(&["describe", "pod", "unhealthy"]);
    assert!(describe.contains("Liveness probe failed"), "{describe}");
    assert!(
        describe.contains("Container app failed liveness probe, will be restarted"),
        "{describe}"
    );

    // Readiness gates Ready.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ready_column(&k, "gated").as_deref(), Some("0/1"));
    k.ok(&["exec", "gated", "--", "touch", "/tmp/ready"]);
    eventually("gated to become Ready", Duration::from_secs(20), || {
        (ready_column(&k, "gated")? == "1/1").then_some(())
    });

    // A container ignoring TERM is killed when the grace period ends.
    let started = Instant::now();
    k.ok(&["delete", "pod", "stubborn", "--grace-period=3"]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(25),
        "deleting a pod that ignores TERM with a 3 s grace period took {took:?}"
    );
}

const WIRED_POD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  color: blue
  size: large
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: s3cr3t
---
apiVersion: v1
kind: Pod
metadata:
  name: wired
  labels:
    app: wired
    tier: demo
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 2
  volumes:
  - name: work
    emptyDir: {}
  - name: podinfo
    downwardAPI:
      items:
      - path: labels
        fieldRef:
          fieldPath: metadata.labels
      - path: cpu_limit
        resourceFieldRef:
          containerName: main
          resource: limits.cpu
          divisor: 1m
  initContainers:
  - name: first
    image: busybox:1.35
    command: ["sh", "-c", "echo first > /work/order"]
    volumeMounts:
    - name: work
      mountPath: /work
  - name: second
    image: busybox:1.35
    command: ["sh", "-c", "echo second >> /work/order"]
    volumeMounts:
    - name: work
      mountPath: /work
  containers:
  - name: main
    image: busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    resources:
      limits:
        cpu: 250m
        memory: 64Mi
    env:
    - name: COLOR
      valueFrom:
        configMapKeyRef:
          name: settings
          key: color
    - name: PASSWORD
      valueFrom:
        secretKeyRef:
          name: creds
          key: password
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: SCHEDULED_ON
      valueFrom:
        fieldRef:
          fieldPath: spec.nodeName
    - name: POD_IP
      valueFrom:
        fieldRef:
          fieldPath: status.podIP
    - name: MEM_LIMIT
      valueFrom:
        resourceFieldRef:
          resource: limits.memory
          divisor: 1Mi
    envFrom:
    - prefix: CFG_
      configMapRef:
        name: settings
    lifecycle:
      postStart:
        exec:
          command: ["sh", "-c", "echo started > /work/poststart"]
    volumeMounts:
    - name: work
      mountPath: /work
    - name: podinfo
      mountPath: /etc/podinfo
  - name: web
    image: busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /work & while true; do sleep 1; done"]
    readinessProbe:
      httpGet:
        path: /order
        port: 8080
      periodSeconds: 1
    livenessProbe:
      tcpSocket:
        port: 8080
      periodSeconds: 1
    volumeMounts:
    - name: work
      mountPath: /work
"#;

/// Init containers in order before the app containers, every env source, the downward API
/// volume and a postStart hook, checked from inside the container; httpGet readiness and
/// tcpSocket liveness probes that pass.
#[test]
fn init_containers_env_sources_downward_api_and_hooks_reach_the_container() {
    let mut node = Node::start();
    let k = node.kubectl("1.33");
    node.apply(&k, WIRED_POD);
    let ip = wait_running(&k, "wired");
    let init = k.ok(&[
        "get",
        "pod",
        "wired",
        "-o",
        "jsonpath={range .status.initContainerStatuses[*]}{.name}={.state.terminated.reason}/{.state.terminated.exitCode} {end}",
    ]);
    assert_eq!(init, "first=Completed/0 second=Completed/0 ");
    assert_eq!(
        k.ok(&["exec", "wired", "-c", "main", "--", "cat", "/work/order"]),
        "first\nsecond\n"
    );
    let env = k.ok(&[
        "exec",
        "wired",
        "-c",
        "main",
        "--",
        "sh",
        "-c",
        "echo \"$COLOR|$PASSWORD|$POD_NAME|$SCHEDULED_ON|$POD_IP|$MEM_LIMIT|$CFG_color|$CFG_size\"",
    ]);
    assert_eq!(
        env,
        format!("blue|s3cr3t|wired|{}|{ip}|64|blue|large\n", node.name)
    );
    let labels = k.ok(&[
        "exec",
        "wired",
        "-c",
        "main",
        "--",
        "cat",
        "/etc/podinfo/labels",
    ]);
    assert!(
        labels.contains("app=\"wired\"") && labels.contains("tier=\"demo\""),
        "{labels:?}"
    );
    assert_eq!(
        k.ok(&[
            "exec",
            "wired",
            "-c",
            "main",
            "--",
            "cat",
            "/etc/podinfo/cpu_limit"
        ]),
        "250"
    );
    assert_eq!(
        k.ok(&[
            "exec",
            "wired",
            "-c",
            "main",
            "--",
            "cat",
            "/work/poststart"
        ]),
        "started\n"
    );
    eventually(
        "wired to become Ready through its httpGet probe",
        Duration::from_secs(30),
        || (ready_column(&k, "wired")? == "2/2").then_some(()),
    );
    let restarts = k.ok(&[
        "get",
        "pod",
        "wired",
        "-o",
        "jsonpath={.status.containerStatuses[?(@.name==\"web\")].restartCount}",
    ]);
    assert_eq!(restarts, "0", "the tcpSocket liveness probe passes");
    node.stop();
}

const GRPC_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: grpc-ready
spec:
  nodeName: NODE
  hostNetwork: true
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: busybox:1.35
    command: ["sleep", "3600"]
    readinessProbe:
      grpc:
        port: GRPCPORT
      periodSeconds: 1
      failureThreshold: 1
"#;

/// A gRPC health service (grpc.health.v1.Health/Check over cleartext HTTP/2) on every address
/// of the host, as an application on the host network runs one: it answers SERVING while
/// `serving` is set and NOT_SERVING otherwise. It lives as long as the test process.
fn grpc_health_server(serving: std::sync::Arc<std::sync::atomic::AtomicBool>) -> u16 {
    use http_body_util::{BodyExt, StreamBody};
    use hyper::body::{Bytes, Frame};
    let listener = std::net::TcpListener::bind("0.0.0.0:0").expect("bind the health server");
    let port = listener.local_addr().expect("its address").port();
    listener.set_nonblocking(true).expect("non-blocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let serving = serving.clone();
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let serving = serving.load(std::sync::atomic::Ordering::SeqCst);
                        async move {
                            let _ = req.into_body().collect().await;
                            // HealthCheckResponse { status: SERVING (1) or NOT_SERVING (2) }.
                            let status = if serving { 1 } else { 2 };
                            let message = vec![0u8, 0, 0, 0, 2, 0x08, status];
                            let mut trailers = http::HeaderMap::new();
                            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                            let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = vec![
                                Ok(Frame::data(Bytes::from(message))),
                                Ok(Frame::trailers(trailers)),
                            ];
                            http::Response::builder()
                                .header("content-type", "application/grpc")
                                .body(StreamBody::new(futures::stream::iter(frames)))
                        }
                    });
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc),
                );
            }
        });
    });
    port
}

const CONFINED_PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: confined
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 2
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
  containers:
  - name: app
    image: busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    securityContext:
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities:
        drop: ["ALL"]
---
apiVersion: v1
kind: Pod
metadata:
  name: on-host
spec:
  nodeName: NODE
  hostNetwork: true
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /tmp/www; echo on the host > /tmp/www/index.html; httpd -f -p HOSTPORT -h /tmp/www & while true; do sleep 1; done"]
---
apiVersion: v1
kind: Pod
metadata:
  name: privileged
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 2
  volumes:
  - name: scratch
    emptyDir:
      medium: Memory
      sizeLimit: 16Mi
  containers:
  - name: web
    image: busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /tmp/www; echo through the host port > /tmp/www/index.html; httpd -f -p 8080 -h /tmp/www & while true; do sleep 1; done"]
    ports:
    - containerPort: 8080
      hostPort: PORTMAPPED
    securityContext:
      privileged: true
    volumeMounts:
    - name: scratch
      mountPath: /scratch
---
apiVersion: v1
kind: Pod
metadata:
  name: unpullable
spec:
  nodeName: NODE
  containers:
  - name: app
    image: 127.0.0.1:9/ferrokube/none:1
---
apiVersion: v1
kind: Pod
metadata:
  name: never-pulled
spec:
  nodeName: NODE
  containers:
  - name: app
    image: busybox:not-here
    imagePullPolicy: Never
"#;

/// securityContext (user, group, read-only root, dropped capabilities, privileged),
/// hostNetwork, a hostPort, a memory-backed emptyDir and the resolv.conf `--cluster-dns`
/// makes, seen from inside the containers and from the host.
#[test]
fn security_context_and_host_network_apply_to_the_containers() {
    let mut node = Node::start_with(&["--cluster-dns", "10.96.0.10"]);
    let k = node.kubectl("1.33");
    let port = free_port();
    let mapped = free_port();
    node.apply(
        &k,
        &CONFINED_PODS
            .replace("HOSTPORT", &port.to_string())
            .replace("PORTMAPPED", &mapped.to_string()),
    );
    wait_running(&k, "confined");
    assert_eq!(
        k.ok(&["exec", "confined", "--", "sh", "-c", "id -u; id -g"]),
        "1000\n3000\n"
    );
    let r = k.run(&["exec", "confined", "--", "touch", "/written"]);
    assert_ne!(r.status.code(), Some(0), "the root filesystem is writable");
    assert!(r.stderr.contains("Read-only file system"), "{}", r.stderr);
    let caps = k.ok(&[
        "exec",
        "confined",
        "--",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert_eq!(
        caps.split_whitespace().last(),
        Some("0000000000000000"),
        "{caps}"
    );

    let ip = wait_running(&k, "on-host");
    let host_ip = k.ok(&["get", "pod", "on-host", "-o", "jsonpath={.status.hostIP}"]);
    assert_eq!(ip, host_ip, "a hostNetwork pod has the node's address");
    let page = eventually(
        "the hostNetwork pod to answer on the host's loopback",
        Duration::from_secs(20),
        || http_get(&format!("127.0.0.1:{port}")).filter(|p| p.contains("200 OK")),
    );
    assert!(page.contains("on the host"), "{page}");

    // dnsPolicy ClusterFirst (the default) points at --cluster-dns with the namespace's
    // search path; on the host network it falls back to the node's own resolver.
    let resolv = k.ok(&["exec", "confined", "--", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 10.96.0.10\n"), "{resolv}");
    assert!(
        resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{resolv}"
    );
    assert!(resolv.contains("options ndots:5"), "{resolv}");
    let host_resolv = k.ok(&["exec", "on-host", "--", "cat", "/etc/resolv.conf"]);
    assert!(!host_resolv.contains("10.96.0.10"), "{host_resolv}");

    // privileged: every capability the host allows, and mounts work; a memory-backed
    // emptyDir is a tmpfs of the sizeLimit; the hostPort reaches the container from the host.
    wait_running(&k, "privileged");
    let caps = k.ok(&[
        "exec",
        "privileged",
        "--",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert_ne!(
        caps.split_whitespace().last(),
        Some("0000000000000000"),
        "{caps}"
    );
    let out = k.ok(&[
        "exec",
        "privileged",
        "--",
        "sh",
        "-c",
        "mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && echo mounted",
    ]);
    assert_eq!(out, "mounted\n");
    let r = k.run(&[
        "exec",
        "confined",
        "--",
        "sh",
        "-c",
        "mount -t tmpfs none /tmp",
    ]);
    assert_ne!(
        r.status.code(),
        Some(0),
        "an unprivileged container mounted"
    );
    let mounts = k.ok(&[
        "exec",
        "privileged",
        "--",
        "grep",
        " /scratch ",
        "/proc/mounts",
    ]);
    assert!(mounts.starts_with("tmpfs /scratch tmpfs "), "{mounts}");
    assert!(mounts.contains("size=16384k"), "{mounts}");
    let page = eventually(
        "the hostPort to reach the container",
        Duration::from_secs(20),
        || http_get(&format!("127.0.0.1:{mapped}")).filter(|p| p.contains("200 OK")),
    );
    assert!(page.contains("through the host port"), "{page}");

    // A gRPC readiness probe on the host network: the application's health service (here a
    // server of the test's on the host) decides whether the pod is Ready.
    let serving = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let grpc_port = grpc_health_server(serving.clone());
    node.apply(&k, &GRPC_POD.replace("GRPCPORT", &grpc_port.to_string()));
    eventually(
        "the gRPC-probed pod to be Ready",
        Duration::from_secs(60),
        || ready_column(&k, "grpc-ready").filter(|r| r == "1/1"),
    );
    serving.store(false, std::sync::atomic::Ordering::SeqCst);
    eventually(
        "the pod to turn unready when its health service says NOT_SERVING",
        Duration::from_secs(30),
        || ready_column(&k, "grpc-ready").filter(|r| r == "0/1"),
    );
    let describe = eventually("the probe failure event", Duration::from_secs(30), || {
        Some(k.ok(&["describe", "pod", "grpc-ready"])).filter(|d| {
            d.contains("Readiness probe failed: service unhealthy (responded with \"NOT_SERVING\")")
        })
    });
    assert!(describe.contains("Unhealthy"), "{describe}");
    serving.store(true, std::sync::atomic::Ordering::SeqCst);
    eventually("the pod to be Ready again", Duration::from_secs(30), || {
        ready_column(&k, "grpc-ready").filter(|r| r == "1/1")
    });

    // Images that cannot be had: a registry on a closed loopback port (nothing leaves the
    // machine), and a missing image with pull policy Never.
    let waiting = |pod: &str| {
        let w = k.ok(&[
            "get",
            "pod",
            pod,
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.reason}|{.status.containerStatuses[0].state.waiting.message}",
        ]);
        let (reason, message) = w.split_once('|').unwrap_or((&w, ""));
        (reason.to_string(), message.to_string())
    };
    let image = "127.0.0.1:9/ferrokube/none:1";
    let (_, message) = eventually(
        "the unpullable image to back off",
        Duration::from_secs(60),
        || Some(waiting("unpullable")).filter(|(r, _)| r == "ImagePullBackOff"),
    );
    assert!(
        message.starts_with(&format!("Back-off pulling image \"{image}\"")),
        "{message}"
    );
    let events = k.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=unpullable",
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ]);
    for line in [
        format!("Pulling: Pulling image \"{image}\""),
        format!("Failed: Failed to pull image \"{image}\": "),
        "Failed: Error: ErrImagePull".to_string(),
        format!("BackOff: Back-off pulling image \"{image}\""),
        "Failed: Error: ImagePullBackOff".to_string(),
    ] {
        assert!(
            events.lines().any(|l| l.starts_with(&line)),
            "no event {line:?} in\n{events}"
        );
    }
    let row = pod_row(&k, "unpullable").expect("unpullable pod");
    assert!(
        row.0 == "ImagePullBackOff" || row.0 == "ErrImagePull",
        "{row:?}"
    );
    let (reason, message) = eventually(
        "the missing image with pull policy Never",
        Duration::from_secs(30),
        || Some(waiting("never-pulled")).filter(|(r, _)| !r.is_empty()),
    );
    assert_eq!(reason, "ErrImageNeverPull");
    assert_eq!(
        message,
        "Container image \"busybox:not-here\" is not present with pull policy of Never"
    );
    node.stop();
}

const LONELY_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: lonely
  namespace: default
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done # MARKER"]
"#;

/// A static pod added while the API server is down starts anyway, the running ones keep
/// running, and once the API server is back the new one is mirrored into the API; then the
/// agent restarted alone picks its pods up again without restarting or duplicating them.
#[test]
fn static_pods_run_without_the_api_server() {
    let mut node = Node::start_split();
    let k = node.kubectl("1.33");
    wait_running(&k, &format!("static-sleeper-{}", node.name));
    node.stop_server();

    let marker = format!("lonely-{}", node.name);
    std::fs::write(
        node.dir.join("agent/manifests/lonely.yaml"),
        LONELY_POD.replace("MARKER", &marker),
    )
    .expect("write the manifest");
    eventually(
        "the static pod to start with no API server",
        Duration::from_secs(60),
        || (!processes_naming(&marker).is_empty()).then_some(()),
    );
    let sleepers = least_of_looks(|| {
        processes_in_cgroup(&node.cgroup_root)
            .into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains("static pod up"))
            })
            .count()
    });
    assert_eq!(sleepers, 1, "the static pod from before kept running");

    node.start_server();
    let ip = wait_running(&k, &format!("lonely-{}", node.name));
    assert!(ip.starts_with(&node.pod_prefix), "{ip}");
    assert_eq!(
        containers_running(&marker),
        1,
        "one container, not a second one for the mirror pod"
    );

    // The agent restarted alone finds its pods running and starts nothing twice.
    let lonely = format!("lonely-{}", node.name);
    let started = |k: &Kubectl| {
        k.ok(&[
            "get",
            "pod",
            &lonely,
            "-o",
            "jsonpath={.status.containerStatuses[0].state.running.startedAt} {.status.containerStatuses[0].restartCount}",
        ])
    };
    let before = started(&k);
    node.restart_agent();
    eventually(
        "the same container, not restarted, reported",
        Duration::from_secs(20),
        || (started(&k) == before).then_some(()),
    );
    assert_eq!(containers_running(&marker), 1, "a second container");
    node.stop();
}

/// How many processes run a command line naming `marker`.
fn containers_running(marker: &str) -> usize {
    least_of_looks(|| processes_naming(marker).len())
}

/// The least of a few counts of processes: a shell forking a child shows its own command line
/// in the child until the child execs, so one look can see a container's shell twice.
fn least_of_looks(count: impl Fn() -> usize) -> usize {
    (0..5)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            count()
        })
        .min()
        .unwrap_or(0)
}

const HOOKED_POD: &str = r#"
apiVersion: v1
kind: PersistentVolume
metadata:
  name: hooked-pv
spec:
  capacity:
    storage: 1Gi
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  hostPath:
    path: PVDIR
    type: DirectoryOrCreate
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: hooked-claim
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  resources:
    requests:
      storage: 1Gi
---
apiVersion: v1
kind: Pod
metadata:
  name: hooked
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 10
  volumes:
  - name: host
    hostPath:
      path: HOSTDIR
      type: DirectoryOrCreate
  - name: claim
    persistentVolumeClaim:
      claimName: hooked-claim
  containers:
  - name: app
    image: busybox:1.35
    command: ["sh", "-c", "echo kept > /data/file; echo running > /host/state; trap 'echo got TERM >> /host/state; exit 0' TERM; while true; do sleep 1; done"]
    lifecycle:
      preStop:
        exec:
          command: ["sh", "-c", "echo preStop ran >> /host/state"]
    volumeMounts:
    - name: host
      mountPath: /host
    - name: claim
      mountPath: /data
"#;

/// A hostPath volume of type DirectoryOrCreate is created on the node, a claim bound to a
/// hostPath PersistentVolume is mounted from the volume's directory, and on deletion the
/// preStop hook runs before the container gets TERM, all seen in files on the host.
#[test]
fn host_path_volumes_and_pre_stop_hooks_work_on_the_node() {
    let mut node = Node::start();
    let k = node.kubectl("1.33");
    let host_dir = node.dir.join("hostpath/created-by-the-kubelet");
    let pv_dir = node.dir.join("hostpath/persistent-volume");
    node.apply(
        &k,
        &HOOKED_POD
            .replace("HOSTDIR", &host_dir.display().to_string())
            .replace("PVDIR", &pv_dir.display().to_string()),
    );
    wait_running(&k, "hooked");
    let claim = k.ok(&["get", "pvc", "hooked-claim", "--no-headers"]);
    let row = table(&claim);
    assert_eq!(row[0][1..3], ["Bound", "hooked-pv"], "{claim}");
    eventually(
        "the container to write into the claim's volume",
        Duration::from_secs(20),
        || {
            std::fs::read_to_string(pv_dir.join("file"))
                .ok()
                .filter(|s| s == "kept\n")
        },
    );
    let state = host_dir.join("state");
    eventually(
        "the container to write into the hostPath",
        Duration::from_secs(20),
        || {
            std::fs::read_to_string(&state)
                .ok()
                .filter(|s| s.starts_with("running"))
        },
    );
    assert!(host_dir.is_dir(), "DirectoryOrCreate made {host_dir:?}");
    k.ok(&["delete", "pod", "hooked"]);
    let text = std::fs::read_to_string(&state).unwrap_or_default();
    assert_eq!(text, "running\npreStop ran\ngot TERM\n", "hook, then TERM");
    node.stop();
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("FERROKUBE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: create it with `python3 -m venv .venv && .venv/bin/pip install kubernetes` (scripts/deps does)",
        venv.display()
    );
    venv
}

#[test]
fn the_python_client_execs_and_port_forwards_over_websockets() {
    let node = Node::start();
    let k = node.kubectl("1.33");
    k.ok(&[
        "run",
        "pyweb",
        "--image=docker.io/ferrokube/busybox-httpd:latest",
        "--image-pull-policy=IfNotPresent",
        "--overrides",
        &node.overrides(),
    ]);
    wait_running(&k, "pyweb");
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/python/test_pods.py");
    let mut child = Command::new(python())
        .arg(&script)
        .env("KUBECONFIG", &node.kubeconfig)
        .env("POD", "pyweb")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let timed_out = matches!(child.try_wait(), Ok(None));
    if timed_out {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("python output");
    assert!(
        !timed_out,
        "the python pod streaming suite did not finish within 120 s:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python pod streaming suite failed:\n{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("Ran 4 tests") && stderr.contains("\nOK"),
        "{stderr}"
    );
}
