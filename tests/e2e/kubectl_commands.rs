//! The generators and editors of kubectl against a real `ferrokube server`, with kubectl 1.27,
//! 1.30 (the discovery and streaming boundary) and 1.33 (which sends protobuf bodies): `create
//! <kind>`, `expose`, `run`, `autoscale`, `set`, `replace`, `edit`, `rollout`, `wait`,
//! `get --raw`, `proxy` and `auth can-i`. Assertions are on what the user sees and on what the
//! API server stores; nothing here depends on controllers.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Kubectl, Server};

macro_rules! for_versions {
    ($($name:ident),* $(,)?) => {
        mod v1_27 { $( #[test] fn $name() { super::$name("1.27") } )* }
        mod v1_30 { $( #[test] fn $name() { super::$name("1.30") } )* }
        mod v1_33 { $( #[test] fn $name() { super::$name("1.33") } )* }
    };
}

for_versions!(
    create_generators_store_upstreams_objects,
    expose_run_and_autoscale_build_from_existing_objects,
    set_commands_patch_the_pod_template,
    replace_edit_and_rollout_change_the_stored_object,
    wait_get_raw_proxy_and_auth_can_i_answer,
    create_token_issues_tokens_the_server_accepts,
    drain_evicts_or_deletes_the_pods_of_a_node,
);

fn get(k: &Kubectl, what: &[&str]) -> Value {
    let mut a = vec!["get"];
    a.extend_from_slice(what);
    a.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&k.ok(&a)).expect("json")
}

fn one_line(out: String) -> String {
    out.trim().to_string()
}

fn create_generators_store_upstreams_objects(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "deployment",
                "web",
                "--image=nginx:1.25",
                "--replicas=2",
                "--port=80",
            ],
            "deployment.apps/web created",
        ),
        (
            vec!["service", "clusterip", "cip", "--tcp=80:8080"],
            "service/cip created",
        ),
        (
            vec!["service", "nodeport", "np", "--tcp=80:8080"],
            "service/np created",
        ),
        (
            vec!["service", "loadbalancer", "lb", "--tcp=443:8443"],
            "service/lb created",
        ),
        (
            vec![
                "configmap",
                "cm",
                "--from-literal=a=1",
                "--from-literal=b=2",
            ],
            "configmap/cm created",
        ),
        (
            vec!["secret", "generic", "gen", "--from-literal=password=s3cr3t"],
            "secret/gen created",
        ),
        (
            vec![
                "secret",
                "docker-registry",
                "reg",
                "--docker-server=registry.local",
                "--docker-username=u",
                "--docker-password=p",
            ],
            "secret/reg created",
        ),
        (vec!["namespace", "team-a"], "namespace/team-a created"),
        (
            vec!["job", "once", "--image=busybox", "--", "echo", "hi"],
            "job.batch/once created",
        ),
        (
            vec![
                "cronjob",
                "tick",
                "--image=busybox",
                "--schedule=*/5 * * * *",
            ],
            "cronjob.batch/tick created",
        ),
        (
            vec!["serviceaccount", "robot"],
            "serviceaccount/robot created",
        ),
        (
            vec!["role", "reader", "--verb=get,list", "--resource=pods"],
            "role.rbac.authorization.k8s.io/reader created",
        ),
        (
            vec![
                "rolebinding",
                "read",
                "--role=reader",
                "--serviceaccount=default:robot",
            ],
            "rolebinding.rbac.authorization.k8s.io/read created",
        ),
        (
            vec!["clusterrole", "nodes", "--verb=get", "--resource=nodes"],
            "clusterrole.rbac.authorization.k8s.io/nodes created",
        ),
        (
            vec![
                "clusterrolebinding",
                "nodes",
                "--clusterrole=nodes",
                "--user=alice",
            ],
            "clusterrolebinding.rbac.authorization.k8s.io/nodes created",
        ),
        (
            vec![
                "priorityclass",
                "high",
                "--value=1000",
                "--description=important",
            ],
            "priorityclass.scheduling.k8s.io/high created",
        ),
        (
            vec!["quota", "q", "--hard=pods=10,requests.cpu=2"],
            "resourcequota/q created",
        ),
        (
            vec!["pdb", "web", "--selector=app=web", "--min-available=1"],
            "poddisruptionbudget.policy/web created",
        ),
        (
            vec!["ingress", "site", "--rule=example.com/=cip:80"],
            "ingress.networking.k8s.io/site created",
        ),
    ];
    for (args, printed) in cases {
        let mut a = vec!["create"];
        a.extend_from_slice(&args);
        assert_eq!(one_line(k.ok(&a)), printed, "kubectl create {args:?}");
    }
    // A TLS secret from a generated key pair.
    let (cert, key) = tls_pair(&s);
    assert_eq!(
        one_line(k.ok(&[
            "create", "secret", "tls", "tls", "--cert", &cert, "--key", &key
        ])),
        "secret/tls created"
    );

    let d = get(&k, &["deployment", "web"]);
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["selector"]["matchLabels"], json!({"app": "web"}));
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["name"], "nginx");
    assert_eq!(
        c["ports"][0],
        json!({"containerPort": 80, "protocol": "TCP"})
    );
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");

    let np = get(&k, &["service", "np"]);
    assert_eq!(np["spec"]["type"], "NodePort");
    assert_eq!(np["spec"]["ports"][0]["port"], 80);
    assert_eq!(np["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(np["spec"]["ports"][0]["name"], "80-8080");
    assert_eq!(np["spec"]["selector"], json!({"app": "np"}));
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    let lb = get(&k, &["service", "lb"]);
    assert_eq!(lb["spec"]["type"], "LoadBalancer");
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);

    assert_eq!(
        get(&k, &["configmap", "cm"])["data"],
        json!({"a": "1", "b": "2"})
    );
    let gen_secret = get(&k, &["secret", "gen"]);
    assert_eq!(gen_secret["type"], "Opaque");
    assert_eq!(gen_secret["data"]["password"], "czNjcjN0");
    assert_eq!(
        get(&k, &["secret", "reg"])["type"],
        "kubernetes.io/dockerconfigjson"
    );
    let tls = get(&k, &["secret", "tls"]);
    assert_eq!(tls["type"], "kubernetes.io/tls");
    assert!(
        tls["data"]["tls.crt"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
    );

    let ns = get(&k, &["namespace", "team-a"]);
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team-a"
    );

    let job = get(&k, &["job", "once"]);
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        json!(["echo", "hi"])
    );
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(job["spec"]["backoffLimit"], 6);
    assert!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"].is_string()
    );
    let cj = get(&k, &["cronjob", "tick"]);
    assert_eq!(cj["spec"]["schedule"], "*/5 * * * *");
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);

    let role = get(&k, &["role", "reader"]);
    assert_eq!(
        role["rules"][0],
        json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]})
    );
    let rb = get(&k, &["rolebinding", "read"]);
    assert_eq!(
        rb["subjects"][0],
        json!({"kind": "ServiceAccount", "name": "robot", "namespace": "default"})
    );
    assert_eq!(rb["roleRef"]["kind"], "Role");
    let crb = get(&k, &["clusterrolebinding", "nodes"]);
    assert_eq!(
        crb["subjects"][0],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"})
    );
    let pc = get(&k, &["priorityclass", "high"]);
    assert_eq!(pc["value"], 1000);
    assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
    let q = get(&k, &["quota", "q"]);
    assert_eq!(
        q["spec"]["hard"],
        json!({"pods": "10", "requests.cpu": "2"})
    );
    let pdb = get(&k, &["pdb", "web"]);
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let ing = get(&k, &["ingress", "site"]);
    assert_eq!(ing["spec"]["rules"][0]["host"], "example.com");
    assert_eq!(
        ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"],
        json!({"name": "cip", "port": {"number": 80}})
    );
    assert_eq!(
        ing["spec"]["rules"][0]["http"]["paths"][0]["pathType"],
        "Exact"
    );

    // The table columns users read.
    let rows = support::table(&k.ok(&["get", "svc", "np"]));
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
    assert_eq!(rows[1][1], "NodePort");
}

/// A self-signed certificate and key, written by the server's own PKI-free helper: openssl.
fn tls_pair(s: &Server) -> (String, String) {
    let cert = s.dir.join("tls.crt");
    let key = s.dir.join("tls.key");
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=example.com",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed to make a TLS key pair");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert.display().to_string(), key.display().to_string())
}

fn expose_run_and_autoscale_build_from_existing_objects(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    k.ok(&["create", "deployment", "web", "--image=nginx", "--port=80"]);
    assert_eq!(
        one_line(k.ok(&[
            "expose",
            "deployment",
            "web",
            "--port=8080",
            "--target-port=80"
        ])),
        "service/web exposed"
    );
    let svc = get(&k, &["service", "web"]);
    assert_eq!(svc["spec"]["selector"], json!({"app": "web"}));
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);

    let out = k.ok(&[
        "run",
        "pod1",
        "--image=busybox",
        "--labels=app=pod1,tier=x",
        "--env=A=1",
        "--env=B=two",
        "--port=9000",
        "--restart=Never",
        "--command",
        "--",
        "sleep",
        "3600",
    ]);
    assert_eq!(one_line(out), "pod/pod1 created");
    let pod = get(&k, &["pod", "pod1"]);
    assert_eq!(
        pod["metadata"]["labels"],
        json!({"app": "pod1", "tier": "x"})
    );
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["name"], "pod1");
    assert_eq!(c["command"], json!(["sleep", "3600"]));
    assert_eq!(
        c["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "two"}])
    );
    assert_eq!(c["ports"][0]["containerPort"], 9000);
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    assert_eq!(pod["status"]["phase"], "Pending");
    k.ok(&[
        "run",
        "pod2",
        "--image=busybox",
        "--restart=OnFailure",
        "--",
        "echo",
        "x",
    ]);
    let pod2 = get(&k, &["pod", "pod2"]);
    assert_eq!(pod2["spec"]["restartPolicy"], "OnFailure");
    assert_eq!(pod2["spec"]["containers"][0]["args"], json!(["echo", "x"]));
    assert_eq!(pod2["metadata"]["labels"], json!({"run": "pod2"}));

    assert_eq!(
        one_line(k.ok(&["expose", "pod", "pod1", "--name=pod1-svc"])),
        "service/pod1-svc exposed"
    );
    let ps = get(&k, &["service", "pod1-svc"]);
    assert_eq!(ps["spec"]["ports"][0]["port"], 9000);
    assert_eq!(ps["spec"]["selector"], json!({"app": "pod1", "tier": "x"}));
    assert_eq!(
        one_line(k.ok(&["expose", "service", "web", "--name=web-copy", "--port=81"])),
        "service/web-copy exposed"
    );
    assert_eq!(
        get(&k, &["service", "web-copy"])["spec"]["ports"][0]["port"],
        81
    );

    k.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: rc\nspec:\n  replicas: 1\n  selector:\n    app: rc\n  template:\n    metadata:\n      labels:\n        app: rc\n    spec:\n      containers:\n      - name: c\n        image: nginx\n        ports:\n        - containerPort: 80\n",
    );
    assert_eq!(
        one_line(k.ok(&["expose", "rc", "rc", "--port=80", "--type=NodePort"])),
        "service/rc exposed"
    );
    let rcs = get(&k, &["service", "rc"]);
    assert_eq!(rcs["spec"]["type"], "NodePort");
    assert_eq!(rcs["spec"]["selector"], json!({"app": "rc"}));

    assert_eq!(
        one_line(k.ok(&[
            "autoscale",
            "deployment",
            "web",
            "--min=2",
            "--max=5",
            "--cpu-percent=70"
        ])),
        "horizontalpodautoscaler.autoscaling/web autoscaled"
    );
    let hpa = get(&k, &["hpa.v2.autoscaling", "web"]);
    assert_eq!(hpa["spec"]["minReplicas"], 2);
    assert_eq!(hpa["spec"]["maxReplicas"], 5);
    assert_eq!(
        hpa["spec"]["scaleTargetRef"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"})
    );
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        70
    );
    let rows = support::table(&k.ok(&["get", "hpa"]));
    assert_eq!(rows[1][0], "web");
    assert_eq!(rows[1][1], "Deployment/web");
}

fn set_commands_patch_the_pod_template(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    k.ok(&["create", "deployment", "web", "--image=nginx:1.25"]);
    k.ok(&["create", "serviceaccount", "robot"]);
    assert_eq!(
        one_line(k.ok(&["set", "image", "deployment/web", "nginx=nginx:1.26"])),
        "deployment.apps/web image updated"
    );
    assert_eq!(
        one_line(k.ok(&["set", "env", "deployment/web", "MODE=prod", "LEVEL=3"])),
        "deployment.apps/web env updated"
    );
    assert_eq!(
        one_line(k.ok(&[
            "set",
            "resources",
            "deployment",
            "web",
            "--limits=cpu=200m,memory=256Mi",
            "--requests=cpu=100m"
        ])),
        "deployment.apps/web resource requirements updated"
    );
    assert_eq!(
        one_line(k.ok(&["set", "serviceaccount", "deployment", "web", "robot"])),
        "deployment.apps/web serviceaccount updated"
    );
    let d = get(&k, &["deployment", "web"]);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx:1.26");
    assert_eq!(
        c["env"],
        json!([{"name": "MODE", "value": "prod"}, {"name": "LEVEL", "value": "3"}])
    );
    assert_eq!(
        c["resources"],
        json!({"limits": {"cpu": "200m", "memory": "256Mi"}, "requests": {"cpu": "100m"}})
    );
    assert_eq!(d["spec"]["template"]["spec"]["serviceAccountName"], "robot");
    assert_eq!(d["spec"]["template"]["spec"]["serviceAccount"], "robot");
    assert_eq!(d["metadata"]["generation"], 5);
    let env = k.ok(&["set", "env", "deployment/web", "--list"]);
    assert!(
        env.contains("MODE=prod") && env.contains("LEVEL=3"),
        "{env}"
    );
    k.ok(&["set", "env", "deployment/web", "MODE-"]);
    let d = get(&k, &["deployment", "web"]);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "LEVEL", "value": "3"}])
    );

    k.ok(&["create", "service", "clusterip", "web", "--tcp=80:80"]);
    assert_eq!(
        one_line(k.ok(&["set", "selector", "service", "web", "app=other,tier=x"])),
        "service/web selector updated"
    );
    assert_eq!(
        get(&k, &["service", "web"])["spec"]["selector"],
        json!({"app": "other", "tier": "x"})
    );
}

fn replace_edit_and_rollout_change_the_stored_object(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=2",
    ]);
    let path = s.dir.join("web.json");
    let p = path.display().to_string();
    // The deployment controller writes status and its revision annotation meanwhile: a
    // replace from a read that raced with it conflicts, so read again and retry as a user would.
    let mut replaced = None;
    for _ in 0..10 {
        let mut d = get(&k, &["deployment", "web"]);
        d["spec"]["replicas"] = json!(3);
        std::fs::write(&path, serde_json::to_vec(&d).unwrap()).unwrap();
        let r = k.run(&["replace", "-f", &p]);
        if r.status.success() {
            replaced = Some(r.stdout);
            break;
        }
        assert!(
            r.stderr.contains("the object has been modified"),
            "{}",
            r.stderr
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(
        one_line(replaced.expect("replace kept conflicting")),
        "deployment.apps/web replaced"
    );
    let after = get(&k, &["deployment", "web"]);
    assert_eq!(after["spec"]["replicas"], 3);
    // The file's resourceVersion is stale now: a plain replace conflicts, --force recreates.
    let err = k.fails(&["replace", "-f", &p]);
    assert!(
        err.contains("Conflict") || err.contains("the object has been modified"),
        "{err}"
    );
    let out = k.ok(&["replace", "--force", "-f", &p]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "deployment.apps \"web\" deleted",
            "deployment.apps/web replaced"
        ]
    );
    let forced = get(&k, &["deployment", "web"]);
    assert_ne!(forced["metadata"]["uid"], after["metadata"]["uid"]);
    assert_eq!(forced["metadata"]["generation"], 1);

    // edit through an EDITOR script.
    let editor = s.dir.join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/replicas: 3/replicas: 6/' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(&k.bin)
        .args(["edit", "deployment", "web", "--cache-dir"])
        .arg(k.home.join("cache"))
        .env("KUBECONFIG", &k.kubeconfig)
        .env("HOME", &k.home)
        .env("EDITOR", &editor)
        .output()
        .expect("kubectl edit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "deployment.apps/web edited"
    );
    let edited = get(&k, &["deployment", "web"]);
    assert_eq!(edited["spec"]["replicas"], 6);

    assert_eq!(
        one_line(k.ok(&["rollout", "pause", "deployment/web"])),
        "deployment.apps/web paused"
    );
    assert_eq!(get(&k, &["deployment", "web"])["spec"]["paused"], true);
    assert_eq!(
        one_line(k.ok(&["rollout", "resume", "deployment/web"])),
        "deployment.apps/web resumed"
    );
    assert!(
        get(&k, &["deployment", "web"])["spec"]
            .get("paused")
            .is_none()
    );
    assert_eq!(
        one_line(k.ok(&["rollout", "restart", "deployment/web"])),
        "deployment.apps/web restarted"
    );
    let restarted = get(&k, &["deployment", "web"]);
    assert!(
        restarted["spec"]["template"]["metadata"]["annotations"]
            ["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{restarted}"
    );
    // replace --force made generation 1; edit, pause, resume and restart each changed the spec.
    assert_eq!(restarted["metadata"]["generation"], 5);
}

fn wait_get_raw_proxy_and_auth_can_i_answer(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ]);
    let out = k.ok(&[
        "wait",
        "--for=jsonpath={.spec.replicas}=2",
        "deployment/web",
        "--timeout=10s",
    ]);
    assert_eq!(one_line(out), "deployment.apps/web condition met");

    // A condition the API server itself sets: namespaces are not involved, so use a node's
    // status written through the status subresource, as a kubelet would.
    k.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n",
    );
    let waiter = k.spawn(
        &["wait", "--for=condition=Ready", "node/n1", "--timeout=20s"],
        &s.dir.join("wait.out"),
    );
    std::thread::sleep(Duration::from_millis(500));
    k.ok(&[
        "patch",
        "node",
        "n1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"ok"}]}}"#,
    ]);
    let printed = waiter.wait_for("condition met", Duration::from_secs(15));
    assert!(printed.contains("node/n1 condition met"), "{printed}");

    k.ok(&["run", "gone", "--image=busybox", "--restart=Never"]);
    let waiter = k.spawn(
        &["wait", "--for=delete", "pod/gone", "--timeout=20s"],
        &s.dir.join("wait-delete.out"),
    );
    std::thread::sleep(Duration::from_millis(500));
    k.ok(&["delete", "pod", "gone", "--wait=false"]);
    let printed = waiter.wait_for("condition met", Duration::from_secs(15));
    assert!(printed.contains("pod/gone condition met"), "{printed}");

    let raw: Value = serde_json::from_str(&k.ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/web",
    ]))
    .expect("json");
    assert_eq!(raw["kind"], "Deployment");
    let version: Value = serde_json::from_str(&k.ok(&["get", "--raw", "/version"])).expect("json");
    assert!(
        version["gitVersion"]
            .as_str()
            .is_some_and(|g| g.starts_with("v1."))
    );
    assert_eq!(k.ok(&["get", "--raw", "/readyz"]).trim(), "ok");

    assert_eq!(one_line(k.ok(&["auth", "can-i", "create", "pods"])), "yes");
    assert_eq!(
        one_line(k.ok(&[
            "auth",
            "can-i",
            "delete",
            "deployments.apps",
            "-n",
            "kube-system"
        ])),
        "yes"
    );

    // kubectl proxy serves the API on a local port.
    let port = support::free_port();
    let proxy = k.spawn(
        &["proxy", &format!("--port={port}")],
        &s.dir.join("proxy.out"),
    );
    let listening = proxy.wait_for("Starting to serve", Duration::from_secs(10));
    assert!(
        listening.contains(&format!("127.0.0.1:{port}")),
        "{listening}"
    );
    let body = http_get(port, "/apis/apps/v1/namespaces/default/deployments/web");
    let dep: Value = serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(dep["metadata"]["name"], "web");
    assert_eq!(dep["spec"]["replicas"], 2);
}

/// A plain HTTP/1.0 GET against kubectl proxy on loopback.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut last = String::new();
    for _ in 0..50 {
        if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            c.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let _ = write!(c, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
            let mut out = String::new();
            let _ = c.read_to_string(&mut out);
            if out.starts_with("HTTP/1.") && out.contains("200 OK") {
                return out;
            }
            last = out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("kubectl proxy did not answer: {last}")
}

fn create_token_issues_tokens_the_server_accepts(v: &str) {
    use base64::Engine;
    let s = Server::start();
    let k = s.kubectl(v);
    k.ok(&["create", "serviceaccount", "robot"]);
    let token = one_line(k.ok(&["create", "token", "robot", "--duration=20m"]));
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("claims");
    assert_eq!(claims["sub"], "system:serviceaccount:default:robot");
    assert_eq!(
        claims["iss"],
        "https://kubernetes.default.svc.cluster.local"
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        1200
    );
    let sa = get(&k, &["serviceaccount", "robot"]);
    assert_eq!(
        claims["kubernetes.io"]["serviceaccount"]["uid"],
        sa["metadata"]["uid"]
    );
    assert!(s.dir.join("pki").join("sa.key").exists());

    let err = k.fails(&["create", "token", "robot", "--duration=5m"]);
    assert!(
        err.contains("spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes"),
        "{err}"
    );
    let err = k.fails(&["create", "token", "nobody"]);
    assert!(
        err.contains("serviceaccounts \"nobody\" not found"),
        "{err}"
    );

    // The token authenticates as the service account, until the account is gone.
    let kc = s.dir.join(format!("robot-{v}.kubeconfig"));
    std::fs::copy(&s.kubeconfig, &kc).expect("copy kubeconfig");
    let robot = support::Kubectl::new(v, &kc, &s.dir.join(format!("robot-home-{v}")));
    robot.ok(&[
        "config",
        "set-credentials",
        "robot",
        &format!("--token={token}"),
    ]);
    let listed = robot.ok(&["--user=robot", "get", "serviceaccounts", "-o", "name"]);
    assert!(listed.contains("serviceaccount/robot"), "{listed}");
    k.ok(&["delete", "serviceaccount", "robot"]);
    let err = robot.fails(&["--user=robot", "get", "serviceaccounts"]);
    assert!(err.contains("Unauthorized"), "{err}");
}

fn drain_evicts_or_deletes_the_pods_of_a_node(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    k.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n",
    );
    let pod = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: n1\n  containers:\n  - name: c\n    image: busybox\n"
        )
    };
    // The fallback without eviction: DELETE with a DeleteOptions body (protobuf from 1.32 on).
    k.ok_stdin(&["create", "-f", "-"], &pod("deleted"));
    let out = k.ok(&[
        "drain",
        "n1",
        "--disable-eviction",
        "--force",
        "--grace-period=0",
        "--timeout=30s",
    ]);
    assert!(out.contains("pod/deleted deleted"), "{out}");
    assert!(out.contains("node/n1 drained"), "{out}");
    assert!(k.fails(&["get", "pod", "deleted"]).contains("NotFound"));
    assert_eq!(get(&k, &["node", "n1"])["spec"]["unschedulable"], true);

    // Through the policy/v1 eviction subresource.
    k.ok(&["uncordon", "n1"]);
    k.ok_stdin(&["create", "-f", "-"], &pod("evicted"));
    let out = k.ok(&[
        "drain",
        "n1",
        "--force",
        "--grace-period=0",
        "--timeout=30s",
    ]);
    assert!(out.contains("evicting pod default/evicted"), "{out}");
    assert!(out.contains("pod/evicted evicted"), "{out}");
    assert!(k.fails(&["get", "pod", "evicted"]).contains("NotFound"));
}
