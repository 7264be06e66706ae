//! The controller manager inside a real `ferrokube server`, seen through kubectl 1.33 as a user
//! sees it: namespace deletion, Service addresses and endpoints, the seed's PersistentVolume
//! walk-through, quota descriptions, and `kubectl drain` against a disruption budget. The test
//! plays the kubelet where one is needed (pod status, finishing pod deletions).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::{Kubectl, Server, eventually, table};

const V: &str = "1.33";

/// The port the server listens on, from the kubeconfig it wrote.
fn server_port(s: &Server) -> u16 {
    let kc = std::fs::read_to_string(&s.kubeconfig).expect("kubeconfig");
    let url = kc
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("server URL");
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .expect("port")
}

/// The value of a `Field:   value` line of `kubectl describe`.
fn field<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(str::trim)
}

/// The whitespace-separated cells of each line, to compare aligned output without its padding.
fn cells(out: &str) -> Vec<Vec<&str>> {
    out.lines()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// Marks a pod Running and Ready with an IP, as its kubelet would.
fn run_pod(k: &Kubectl, ns: &str, name: &str, ip: &str) {
    let patch = serde_json::json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}]}})
    .to_string();
    k.ok(&[
        "patch",
        "pod",
        name,
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ]);
}

/// A stand-in kubelet: pods whose deletion started are finished off (deleted with grace 0),
/// as the kubelet does once their containers stopped. Stops when dropped.
struct PodReaper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PodReaper {
    fn start(k: &Kubectl) -> PodReaper {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let k = Kubectl {
            bin: k.bin.clone(),
            kubeconfig: k.kubeconfig.clone(),
            home: k.home.clone(),
        };
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let out = k.run(&[
                    "get",
                    "pods",
                    "-A",
                    "-o",
                    "jsonpath={range .items[?(@.metadata.deletionTimestamp)]}{.metadata.namespace}/{.metadata.name} {end}",
                ]);
                for p in out.stdout.split_whitespace() {
                    if let Some((ns, name)) = p.split_once('/') {
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
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        PodReaper {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for PodReaper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn kubectl_delete_namespace_removes_everything_inside() {
    let s = Server::start();
    let k = s.kubectl(V);
    k.ok(&["create", "namespace", "shop"]);
    k.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "shop",
        "--from-literal=a=1",
    ]);
    k.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        "shop",
        "--from-literal=p=x",
    ]);
    k.ok(&[
        "create",
        "service",
        "clusterip",
        "web",
        "-n",
        "shop",
        "--tcp=80:8080",
    ]);
    k.ok(&["create", "deployment", "web", "-n", "shop", "--image=nginx"]);
    eventually(
        "the default service account",
        Duration::from_secs(20),
        || {
            k.run(&["get", "sa", "default", "-n", "shop"])
                .status
                .success()
                .then_some(())
        },
    );
    let cms = k.ok(&["get", "cm", "-n", "shop", "-o", "name"]);
    assert!(cms.contains("configmap/kube-root-ca.crt"), "{cms}");
    let out = k.ok(&["delete", "ns", "shop", "--timeout=60s"]);
    assert_eq!(out.trim(), "namespace \"shop\" deleted");
    let err = k.fails(&["get", "ns", "shop"]);
    assert!(
        err.contains("Error from server (NotFound): namespaces \"shop\" not found"),
        "{err}"
    );
    let left = k.ok(&[
        "get",
        "configmaps,secrets,services,deployments",
        "-n",
        "shop",
        "-o",
        "name",
    ]);
    assert_eq!(left.trim(), "", "nothing is left in the namespace");
}

#[test]
fn get_svc_and_get_ep_show_addresses_ports_and_pending_load_balancers() {
    let s = Server::start();
    let k = s.kubectl(V);
    let svc = r#"
apiVersion: v1
kind: Service
metadata:
  name: nginx-service-pv
spec:
  ports:
  - port: 8000
    targetPort: 80
    protocol: TCP
  selector:
    app: nginx-pv
  type: LoadBalancer
---
apiVersion: v1
kind: Service
metadata:
  name: dns
spec:
  clusterIP: 10.96.0.10
  selector:
    app: dns
  ports:
  - name: dns
    port: 53
    protocol: UDP
"#;
    k.ok_stdin(&["create", "-f", "-"], svc);
    let rows = table(&k.ok(&["get", "svc"]));
    assert_eq!(
        rows[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    let row = |name: &str| rows.iter().find(|r| r[0] == name).cloned().expect(name);
    assert_eq!(
        row("kubernetes")[1..5],
        ["ClusterIP", "10.96.0.1", "<none>", "443/TCP"]
    );
    assert_eq!(
        row("dns")[1..5],
        ["ClusterIP", "10.96.0.10", "<none>", "53/UDP"]
    );
    let lb = row("nginx-service-pv");
    assert_eq!(lb[1], "LoadBalancer");
    assert!(lb[2].starts_with("10."), "{lb:?}");
    assert_eq!(lb[3], "<pending>");
    let (port, node_port) = lb[4]
        .trim_end_matches("/TCP")
        .split_once(':')
        .expect("port:nodePort");
    assert_eq!(port, "8000");
    let np: u16 = node_port.parse().unwrap();
    assert!((30000..=32767).contains(&np));

    let err = k.fails(&[
        "create",
        "service",
        "clusterip",
        "dns2",
        "--clusterip=10.96.0.10",
        "--tcp=53:53",
    ]);
    assert!(
        err.contains(r#"Service "dns2" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.0.10"}: failed to allocate IP 10.96.0.10: provided IP is already allocated"#),
        "{err}"
    );

    for (name, ip) in [("web-1", "10.244.0.11"), ("web-2", "10.244.0.12")] {
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: nginx-pv\nspec:\n  containers:\n  - name: nginx\n    image: nginx\n    ports:\n    - containerPort: 80\n"
        );
        k.ok_stdin(&["create", "-f", "-"], &pod);
        run_pod(&k, "default", name, ip);
    }
    let ep = eventually("endpoints for both pods", Duration::from_secs(20), || {
        let out = k.ok(&["get", "ep", "nginx-service-pv"]);
        out.contains("10.244.0.11:80,10.244.0.12:80").then_some(out)
    });
    let rows = table(&ep);
    assert_eq!(rows[0], ["NAME", "ENDPOINTS", "AGE"]);
    let kube = table(&k.ok(&["get", "ep", "kubernetes"]));
    let port = server_port(&s);
    assert_eq!(kube[1][1], format!("127.0.0.1:{port}"));
    let described = k.ok(&["describe", "svc", "nginx-service-pv"]);
    assert!(described.contains("LoadBalancer"), "{described}");
    assert!(
        described.contains("10.244.0.11:80,10.244.0.12:80"),
        "{described}"
    );
}

#[test]
fn get_pv_pvc_shows_the_seeds_volume_bound_to_its_claim() {
    let s = Server::start();
    let k = s.kubectl(V);
    // With the default class in place, a claim without a class waits for its first consumer.
    eventually("the default StorageClass", Duration::from_secs(20), || {
        k.run(&["get", "sc", "local-path"])
            .status
            .success()
            .then_some(())
    });
    let sc = table(&k.ok(&["get", "sc"]));
    assert_eq!(sc[1][0], "local-path", "{sc:?}");
    assert_eq!(sc[1][1], "(default)");
    assert_eq!(
        sc[1][2..5],
        ["rancher.io/local-path", "Delete", "WaitForFirstConsumer"]
    );
    k.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: later\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n",
    );
    let described = eventually(
        "the claim waits for a consumer",
        Duration::from_secs(20),
        || {
            let out = k.ok(&["describe", "pvc", "later"]);
            out.contains("waiting for first consumer to be created before binding")
                .then_some(out)
        },
    );
    assert_eq!(
        field(&described, "StorageClass"),
        Some("local-path"),
        "{described}"
    );
    assert_eq!(field(&described, "Status"), Some("Pending"), "{described}");
    k.ok(&["delete", "pvc", "later"]);
    k.ok(&["delete", "sc", "local-path"]);

    // The seed's walk-through: a 5Gi NFS volume and a 3Gi claim without a class.
    let seed = r#"
apiVersion: v1
kind: PersistentVolume
metadata:
  name: nfspv001
spec:
  capacity:
    storage: 5Gi
  accessModes:
    - ReadWriteMany
  nfs:
    path: /mnt/share/nfs/k8s
    server: 172.25.0.8
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: myclaim001
spec:
  accessModes:
    - ReadWriteMany
  resources:
    requests:
      storage: 3Gi
"#;
    let out = k.ok_stdin(&["create", "-f", "-"], seed);
    assert!(out.contains("persistentvolume/nfspv001 created"), "{out}");
    assert!(
        out.contains("persistentvolumeclaim/myclaim001 created"),
        "{out}"
    );
    let out = eventually("both bound", Duration::from_secs(30), || {
        let out = k.ok(&["get", "pv,pvc"]);
        (out.matches("Bound").count() == 2).then_some(out)
    });
    let rows = table(&out);
    let pv_header = &rows[0];
    assert_eq!(
        pv_header[..8],
        [
            "NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY", "STATUS", "CLAIM"
        ]
    );
    let pv = rows
        .iter()
        .find(|r| r[0] == "persistentvolume/nfspv001")
        .expect("pv row");
    assert_eq!(
        pv[1..6],
        ["5Gi", "RWX", "Retain", "Bound", "default/myclaim001"]
    );
    let pvc = rows
        .iter()
        .find(|r| r[0] == "persistentvolumeclaim/myclaim001")
        .expect("pvc row");
    assert_eq!(pvc[1..5], ["Bound", "nfspv001", "5Gi", "RWX"]);
    let described = k.ok(&["describe", "pvc", "myclaim001"]);
    assert_eq!(field(&described, "Volume"), Some("nfspv001"), "{described}");
    assert_eq!(field(&described, "Capacity"), Some("5Gi"), "{described}");
    assert_eq!(
        field(&described, "Access Modes"),
        Some("RWX"),
        "{described}"
    );
    k.ok(&["delete", "pvc", "myclaim001"]);
    eventually("the volume is released", Duration::from_secs(30), || {
        let rows = table(&k.ok(&["get", "pv", "nfspv001"]));
        (rows[1][4] == "Released").then_some(())
    });
}

#[test]
fn describe_quota_shows_usage_and_quota_and_limit_range_refuse_pods() {
    let s = Server::start();
    let k = s.kubectl(V);
    k.ok(&["create", "namespace", "team"]);
    k.ok(&[
        "create",
        "quota",
        "compute",
        "-n",
        "team",
        "--hard=pods=2,requests.cpu=1,requests.memory=1Gi",
    ]);
    let described = eventually("the quota is computed", Duration::from_secs(20), || {
        let out = k.ok(&["describe", "quota", "compute", "-n", "team"]);
        out.contains("requests.memory  0     1Gi").then_some(out)
    });
    assert_eq!(
        cells(&described),
        vec![
            vec!["Name:", "compute"],
            vec!["Namespace:", "team"],
            vec!["Resource", "Used", "Hard"],
            vec!["--------", "----", "----"],
            vec!["pods", "0", "2"],
            vec!["requests.cpu", "0", "1"],
            vec!["requests.memory", "0", "1Gi"],
        ],
        "{described}"
    );
    let err = k.fails(&["run", "bare", "-n", "team", "--image=busybox"]);
    assert!(
        err.contains(r#"pods "bare" is forbidden: failed quota: compute: must specify requests.cpu for: bare; requests.memory for: bare"#),
        "{err}"
    );
    k.ok_stdin(
        &["create", "-n", "team", "-f", "-"],
        "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: defaults\nspec:\n  limits:\n  - type: Container\n    defaultRequest:\n      cpu: 400m\n      memory: 128Mi\n    max:\n      cpu: \"1\"\n",
    );
    std::thread::sleep(Duration::from_millis(500));
    k.ok(&["run", "a", "-n", "team", "--image=busybox"]);
    k.ok(&["run", "b", "-n", "team", "--image=busybox"]);
    let err = k.fails(&["run", "c", "-n", "team", "--image=busybox"]);
    assert!(
        err.contains(r#"Error from server (Forbidden): pods "c" is forbidden: exceeded quota: compute, requested: pods=1,requests.cpu=400m, used: pods=2,requests.cpu=800m, limited: pods=2,requests.cpu=1"#),
        "{err}"
    );
    let big = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: big\nspec:\n  containers:\n  - name: c\n    image: busybox\n    resources:\n      limits:\n        cpu: \"2\"\n";
    let r = k.run_stdin(&["create", "-n", "team", "-f", "-"], big);
    assert!(!r.status.success());
    assert!(
        r.stderr
            .contains("maximum cpu usage per Container is 1, but limit is 2"),
        "{}",
        r.stderr
    );
    let described = eventually("usage follows the pods", Duration::from_secs(20), || {
        let out = k.ok(&["describe", "quota", "compute", "-n", "team"]);
        cells(&out).contains(&vec!["pods", "2", "2"]).then_some(out)
    });
    let c = cells(&described);
    assert!(
        c.contains(&vec!["requests.cpu", "800m", "1"]),
        "{described}"
    );
    assert!(
        c.contains(&vec!["requests.memory", "256Mi", "1Gi"]),
        "{described}"
    );
}

#[test]
fn kubectl_drain_stops_at_a_disruption_budget_and_proceeds_when_it_allows() {
    let s = Server::start();
    let k = s.kubectl(V);
    for n in ["n1", "n2"] {
        let node = format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {n}\n  labels:\n    kubernetes.io/hostname: {n}\n"
        );
        k.ok_stdin(&["create", "-f", "-"], &node);
    }
    for (name, node, ip) in [
        ("db-1", "n1", "10.244.0.5"),
        ("db-2", "n1", "10.244.0.6"),
        ("db-3", "n2", "10.244.1.5"),
    ] {
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: db\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 5\n  containers:\n  - name: db\n    image: busybox\n"
        );
        k.ok_stdin(&["create", "-f", "-"], &pod);
        run_pod(&k, "default", name, ip);
    }
    k.ok(&[
        "create",
        "pdb",
        "db",
        "--selector=app=db",
        "--min-available=3",
    ]);
    eventually("the budget is computed", Duration::from_secs(20), || {
        let rows = table(&k.ok(&["get", "pdb", "db"]));
        (rows[0]
            == [
                "NAME",
                "MIN",
                "AVAILABLE",
                "MAX",
                "UNAVAILABLE",
                "ALLOWED",
                "DISRUPTIONS",
                "AGE",
            ]
            && rows[1][1..4] == ["3", "N/A", "0"])
        .then_some(())
    });
    let _kubelet = PodReaper::start(&k);
    let r = k.run(&["drain", "n1", "--force", "--timeout=12s"]);
    assert!(
        !r.status.success(),
        "drain must stop at the budget: {}",
        r.stdout
    );
    assert!(r.stdout.contains("node/n1 cordoned"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{}",
        r.stderr
    );
    assert_eq!(
        table(&k.ok(&["get", "pods"])).len(),
        4,
        "nothing was evicted"
    );

    k.ok(&[
        "patch",
        "pdb",
        "db",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":1}}"#,
    ]);
    eventually(
        "the budget allows disruptions",
        Duration::from_secs(20),
        || {
            let rows = table(&k.ok(&["get", "pdb", "db"]));
            (rows[1][3] == "2").then_some(())
        },
    );
    let r = k.run(&["drain", "n1", "--force", "--timeout=60s"]);
    assert!(r.status.success(), "drain: {}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("pod/db-1 evicted"), "{}", r.stdout);
    assert!(r.stdout.contains("pod/db-2 evicted"), "{}", r.stdout);
    assert!(r.stdout.contains("node/n1 drained"), "{}", r.stdout);
    let rows = table(&k.ok(&["get", "pods", "-o", "wide"]));
    let names: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, ["db-3"]);
    let nodes = table(&k.ok(&["get", "nodes"]));
    let n1 = nodes.iter().find(|r| r[0] == "n1").unwrap();
    assert!(n1[1].ends_with("SchedulingDisabled"), "{n1:?}");
}
