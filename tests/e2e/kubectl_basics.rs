//! Everyday kubectl against a real `ferrokube server` (sqlite), with kubectl 1.27 and 1.33:
//! what the user sees printed, and what the objects become.

mod support;

use std::time::Duration;

use support::{Server, table, testdata};

/// Runs each test body once per kubectl version.
macro_rules! for_versions {
    ($($name:ident),* $(,)?) => {
        mod v1_27 { $( #[test] fn $name() { super::$name("1.27") } )* }
        mod v1_33 { $( #[test] fn $name() { super::$name("1.33") } )* }
    };
}

for_versions!(
    get_namespaces_lists_the_system_namespaces,
    created_seed_pod_reads_back_in_every_output_format,
    labels_and_annotations_are_added_overwritten_and_removed,
    patches_of_all_three_types_apply,
    get_watch_prints_a_change,
    get_all_and_describe_show_the_pod,
    nodes_are_cordoned_and_tainted,
    deployments_scale,
    delete_by_name_file_selector_and_all,
    namespaces_and_contexts_scope_work,
    discovery_lists_every_kind_with_short_names,
    errors_read_as_upstream,
);

fn get_namespaces_lists_the_system_namespaces(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    let out = k.ok(&["get", "ns"]);
    let rows = table(&out);
    assert_eq!(rows[0], ["NAME", "STATUS", "AGE"]);
    let names: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    assert!(rows[1..].iter().all(|r| r[1] == "Active"), "{out}");
}

fn created_seed_pod_reads_back_in_every_output_format(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    assert_eq!(
        k.ok(&["create", "-f", &testdata("nginx-pod.yaml")]).trim(),
        "pod/nginx created"
    );
    k.ok(&["create", "-f", &testdata("web-pod.yaml")]);

    let rows = table(&k.ok(&["get", "pods"]));
    assert_eq!(rows[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(&rows[1][..4], ["nginx", "0/1", "Pending", "0"]);
    assert_eq!(table(&k.ok(&["get", "po"]))[1][..4], rows[1][..4]);

    let wide = table(&k.ok(&["get", "po", "-o", "wide"]));
    assert_eq!(
        wide[0],
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );
    assert_eq!(&wide[1][5..], ["<none>", "<none>", "<none>", "<none>"]);

    let yaml = k.ok(&["get", "pod", "nginx", "-o", "yaml"]);
    let obj: serde_json::Value = serde_yaml::from_str(&yaml).expect("yaml");
    assert_eq!(obj["kind"], "Pod");
    assert_eq!(obj["metadata"]["namespace"], "default");
    assert!(
        obj["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    assert!(
        obj["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|rv| rv.parse::<u64>().is_ok())
    );
    assert_eq!(obj["spec"]["containers"][0]["image"], "nginx:latest");
    assert_eq!(obj["status"]["phase"], "Pending");
    assert_eq!(obj["status"]["qosClass"], "BestEffort");

    let json: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "pod", "nginx", "-o", "json"])).expect("json");
    assert_eq!(json["metadata"]["name"], "nginx");
    assert_eq!(
        k.ok(&["get", "pods", "-o", "name"])
            .lines()
            .collect::<Vec<_>>(),
        ["pod/nginx", "pod/web"]
    );
    assert_eq!(
        k.ok(&[
            "get",
            "pod",
            "nginx",
            "-o",
            "jsonpath={.spec.containers[0].ports[0].containerPort}"
        ]),
        "80"
    );
    let cc = table(&k.ok(&[
        "get",
        "pods",
        "-o",
        "custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[0].image",
    ]));
    assert_eq!(
        cc,
        [
            vec!["NAME", "IMAGE"],
            vec!["nginx", "nginx:latest"],
            vec!["web", "nginx:latest"]
        ]
    );

    let all_ns = table(&k.ok(&["get", "pods", "-A"]));
    assert_eq!(all_ns[0][..2], ["NAMESPACE", "NAME"]);
    assert_eq!(all_ns[1][..2], ["default", "nginx"]);

    let by_label = table(&k.ok(&["get", "pods", "-l", "app=nginx-web"]));
    assert_eq!(by_label.len(), 2);
    assert_eq!(by_label[1][0], "web");
    assert_eq!(k.ok(&["get", "pods", "-l", "app=nope"]), "");

    let labels = table(&k.ok(&["get", "pods", "--show-labels"]));
    assert_eq!(labels[0].last().map(String::as_str), Some("LABELS"));
    assert_eq!(labels[1].last().map(String::as_str), Some("<none>"));
    assert_eq!(labels[2].last().map(String::as_str), Some("app=nginx-web"));

    let col = table(&k.ok(&["get", "pods", "-L", "app"]));
    assert_eq!(col[0].last().map(String::as_str), Some("APP"));
    assert_eq!(col[2].last().map(String::as_str), Some("nginx-web"));
}

fn labels_and_annotations_are_added_overwritten_and_removed(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    k.ok(&["create", "-f", &testdata("nginx-pod.yaml")]);
    assert_eq!(
        k.ok(&["label", "pod", "nginx", "tier=web"]).trim(),
        "pod/nginx labeled"
    );
    let err = k.fails(&["label", "pod", "nginx", "tier=db"]);
    assert!(
        err.contains("'tier' already has a value (web), and --overwrite is false"),
        "{err}"
    );
    k.ok(&["label", "pod", "nginx", "tier=db", "--overwrite"]);
    assert_eq!(
        k.ok(&[
            "get",
            "pod",
            "nginx",
            "-o",
            "jsonpath={.metadata.labels.tier}"
        ]),
        "db"
    );
    assert_eq!(
        k.ok(&["label", "pod", "nginx", "tier-"]).trim(),
        "pod/nginx unlabeled"
    );
    assert_eq!(
        k.ok(&["get", "pod", "nginx", "-o", "jsonpath={.metadata.labels}"]),
        ""
    );
    // kubectl 1.27 prints "annotate" where later versions print "annotated".
    assert!(
        k.ok(&["annotate", "pod", "nginx", "owner=ops"])
            .starts_with("pod/nginx annotate")
    );
    assert_eq!(
        k.ok(&[
            "get",
            "pod",
            "nginx",
            "-o",
            "jsonpath={.metadata.annotations.owner}"
        ]),
        "ops"
    );
    k.ok(&["annotate", "pod", "nginx", "owner-"]);
    assert_eq!(
        k.ok(&[
            "get",
            "pod",
            "nginx",
            "-o",
            "jsonpath={.metadata.annotations.owner}"
        ]),
        ""
    );
}

fn patches_of_all_three_types_apply(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    k.ok(&["create", "-f", &testdata("nginx-pod.yaml")]);
    assert_eq!(
        k.ok(&[
            "patch",
            "pod",
            "nginx",
            "-p",
            r#"{"spec":{"containers":[{"name":"nginx","image":"nginx:1.25"}]}}"#
        ])
        .trim(),
        "pod/nginx patched"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "pod",
            "nginx",
            "-o",
            "jsonpath={.spec.containers[*].name} {.spec.containers[0].image}"
        ]),
        "nginx nginx:1.25"
    );
    k.ok(&[
        "patch",
        "pod",
        "nginx",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"a":"1"}}}"#,
    ]);
    k.ok(&[
        "patch",
        "pod",
        "nginx",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/b","value":"2"}]"#,
    ]);
    assert_eq!(
        k.ok(&[
            "get",
            "pod",
            "nginx",
            "-o",
            "jsonpath={.metadata.labels.a}{.metadata.labels.b}"
        ]),
        "12"
    );
    let err = k.fails(&[
        "patch",
        "pod",
        "nginx",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/labels/zzz"}]"#,
    ]);
    assert!(
        err.contains("The request is invalid: : error in remove for path: '/metadata/labels/zzz'"),
        "{err}"
    );
    assert_eq!(
        k.ok(&[
            "patch",
            "pod",
            "nginx",
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"a":"1"}}}"#
        ])
        .trim(),
        "pod/nginx patched (no change)"
    );
}

fn get_watch_prints_a_change(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    k.ok(&["create", "-f", &testdata("nginx-pod.yaml")]);
    let watch = k.spawn(
        &["get", "pods", "-w"],
        &s.dir.join(format!("watch-{v}.out")),
    );
    let first = watch.wait_for("nginx", Duration::from_secs(20));
    assert!(first.starts_with("NAME"), "{first}");
    k.ok(&["create", "-f", &testdata("web-pod.yaml")]);
    let out = watch.wait_for("web", Duration::from_secs(20));
    let rows = table(&out);
    assert_eq!(
        rows.iter().filter(|r| r[0] == "NAME").count(),
        1,
        "headers printed once:\n{out}"
    );
    assert!(
        rows.iter().any(|r| r[0] == "web" && r[2] == "Pending"),
        "{out}"
    );
}

fn get_all_and_describe_show_the_pod(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    k.ok(&["create", "-f", &testdata("web-pod.yaml")]);
    k.ok(&["create", "-f", &testdata("nginx-deployment.yaml")]);
    let all = k.ok(&["get", "all"]);
    assert!(all.contains("pod/web"), "{all}");
    assert!(all.contains("deployment.apps/nginx-deployment"), "{all}");
    let d = k.ok(&["describe", "pod", "web"]);
    for want in [
        "Name:",
        "web",
        "Namespace:",
        "default",
        "app=nginx-web",
        "Status:",
        "Pending",
        "nginx:latest",
        "QoS Class:",
        "BestEffort",
    ] {
        assert!(d.contains(want), "describe lacks {want:?}:\n{d}");
    }
}

fn nodes_are_cordoned_and_tainted(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    k.ok(&["create", "-f", &testdata("node.yaml")]);
    let n = "nodeb0.example.com";
    assert_eq!(k.ok(&["cordon", n]).trim(), format!("node/{n} cordoned"));
    let rows = table(&k.ok(&["get", "nodes"]));
    assert_eq!(rows[1][1], "Unknown,SchedulingDisabled");
    assert_eq!(
        k.ok(&["uncordon", n]).trim(),
        format!("node/{n} uncordoned")
    );
    assert_eq!(
        k.ok(&["get", "node", n, "-o", "jsonpath={.spec.unschedulable}"]),
        ""
    );
    assert_eq!(
        k.ok(&["taint", "nodes", n, "dedicated=db:NoSchedule"])
            .trim(),
        format!("node/{n} tainted")
    );
    k.ok(&["taint", "nodes", n, "other=x:PreferNoSchedule"]);
    let err = k.fails(&["taint", "nodes", n, "dedicated=web:NoSchedule"]);
    assert!(
        err.contains("already has dedicated taint(s) with same effect(s) and --overwrite is false"),
        "{err}"
    );
    assert_eq!(
        k.ok(&[
            "taint",
            "nodes",
            n,
            "dedicated=web:NoSchedule",
            "--overwrite"
        ])
        .trim(),
        format!("node/{n} modified")
    );
    // The node lifecycle controller manages the `node.kubernetes.io/*` taints of a node
    // without a kubelet (not-ready, unschedulable); only the user's taints are compared.
    let user_taints = |out: String| {
        out.split_whitespace()
            .filter(|t| !t.starts_with("node.kubernetes.io/"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        user_taints(k.ok(&[
            "get",
            "node",
            n,
            "-o",
            "jsonpath={range .spec.taints[*]}{.key}={.value}:{.effect} {end}"
        ])),
        "dedicated=web:NoSchedule other=x:PreferNoSchedule"
    );
    assert_eq!(
        k.ok(&["taint", "nodes", n, "dedicated:NoSchedule-"]).trim(),
        format!("node/{n} untainted")
    );
    assert_eq!(
        user_taints(k.ok(&["get", "node", n, "-o", "jsonpath={.spec.taints[*].key}"])),
        "other"
    );
}

fn deployments_scale(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    k.ok(&["create", "-f", &testdata("nginx-deployment.yaml")]);
    assert_eq!(
        k.ok(&["scale", "deployment", "nginx-deployment", "--replicas=5"])
            .trim(),
        "deployment.apps/nginx-deployment scaled"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "nginx-deployment",
            "-o",
            "jsonpath={.spec.replicas} {.metadata.generation}"
        ]),
        "5 2"
    );
    // kubectl checks --resource-version itself before it sends the scale.
    let err = k.fails(&[
        "scale",
        "deployment",
        "nginx-deployment",
        "--replicas=3",
        "--resource-version=1",
    ]);
    assert!(err.contains("Expected resource version to be 1"), "{err}");
}

fn delete_by_name_file_selector_and_all(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    k.ok(&["create", "-f", &testdata("nginx-pod.yaml")]);
    k.ok(&["create", "-f", &testdata("web-pod.yaml")]);
    let out = k.ok(&["delete", "pod", "nginx"]);
    assert!(out.starts_with("pod \"nginx\" deleted"), "{out}");
    k.ok(&["create", "-f", &testdata("nginx-pod.yaml")]);
    let out = k.ok(&["delete", "-f", &testdata("nginx-pod.yaml")]);
    assert!(out.starts_with("pod \"nginx\" deleted"), "{out}");
    k.ok(&["create", "-f", &testdata("nginx-pod.yaml")]);
    let out = k.ok(&["delete", "pods", "-l", "app=nginx-web"]);
    assert!(out.starts_with("pod \"web\" deleted"), "{out}");
    assert_eq!(
        k.ok(&["get", "pods", "-o", "name"]).trim(),
        "pod/nginx",
        "the selector must not delete other pods"
    );
    k.ok(&["create", "-f", &testdata("web-pod.yaml")]);
    let out = k.ok(&["delete", "pods", "--all"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let r = k.run(&["get", "pods"]);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr
            .contains("No resources found in default namespace."),
        "{}",
        r.stderr
    );
}

fn namespaces_and_contexts_scope_work(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    assert_eq!(
        k.ok(&["create", "namespace", "dev"]).trim(),
        "namespace/dev created"
    );
    let out = k.ok(&["config", "set-context", "--current", "--namespace=dev"]);
    assert!(out.contains("modified"), "{out}");
    k.ok(&["create", "-f", &testdata("nginx-pod.yaml")]);
    assert_eq!(
        k.ok(&[
            "get",
            "pod",
            "nginx",
            "-o",
            "jsonpath={.metadata.namespace}"
        ]),
        "dev"
    );
    let r = k.run(&["get", "pods", "-n", "default"]);
    assert!(
        r.stderr
            .contains("No resources found in default namespace."),
        "{}",
        r.stderr
    );
    let err = k.fails(&["create", "-f", &testdata("nginx-pod.yaml"), "-n", "nope"]);
    assert!(err.contains(r#"namespaces "nope" not found"#), "{err}");
}

fn discovery_lists_every_kind_with_short_names(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    let out = k.ok(&["api-resources"]);
    let rows = table(&out);
    let find = |name: &str, group_version: &str| {
        rows.iter()
            .find(|r| r[0] == name && r.iter().any(|c| c == group_version))
            .unwrap_or_else(|| panic!("{name} {group_version} missing:\n{out}"))
            .clone()
    };
    assert_eq!(find("pods", "v1"), ["pods", "po", "v1", "true", "Pod"]);
    assert_eq!(
        find("deployments", "apps/v1"),
        ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    );
    assert_eq!(find("nodes", "v1"), ["nodes", "no", "v1", "false", "Node"]);
    assert_eq!(
        find("horizontalpodautoscalers", "autoscaling/v2"),
        [
            "horizontalpodautoscalers",
            "hpa",
            "autoscaling/v2",
            "true",
            "HorizontalPodAutoscaler"
        ]
    );
    for (name, gv) in [
        ("services", "v1"),
        ("endpoints", "v1"),
        ("configmaps", "v1"),
        ("secrets", "v1"),
        ("serviceaccounts", "v1"),
        ("events", "v1"),
        ("events", "events.k8s.io/v1"),
        ("replicationcontrollers", "v1"),
        ("persistentvolumes", "v1"),
        ("persistentvolumeclaims", "v1"),
        ("limitranges", "v1"),
        ("resourcequotas", "v1"),
        ("podtemplates", "v1"),
        ("replicasets", "apps/v1"),
        ("daemonsets", "apps/v1"),
        ("statefulsets", "apps/v1"),
        ("controllerrevisions", "apps/v1"),
        ("jobs", "batch/v1"),
        ("cronjobs", "batch/v1"),
        ("poddisruptionbudgets", "policy/v1"),
        ("leases", "coordination.k8s.io/v1"),
        ("endpointslices", "discovery.k8s.io/v1"),
        ("ingresses", "networking.k8s.io/v1"),
        ("ingressclasses", "networking.k8s.io/v1"),
        ("networkpolicies", "networking.k8s.io/v1"),
        ("roles", "rbac.authorization.k8s.io/v1"),
        ("rolebindings", "rbac.authorization.k8s.io/v1"),
        ("clusterroles", "rbac.authorization.k8s.io/v1"),
        ("clusterrolebindings", "rbac.authorization.k8s.io/v1"),
        ("certificatesigningrequests", "certificates.k8s.io/v1"),
        ("storageclasses", "storage.k8s.io/v1"),
        ("priorityclasses", "scheduling.k8s.io/v1"),
    ] {
        find(name, gv);
    }
    let versions = k.ok(&["api-versions"]);
    for gv in [
        "v1",
        "apps/v1",
        "autoscaling/v1",
        "autoscaling/v2",
        "batch/v1",
        "policy/v1",
        "events.k8s.io/v1",
    ] {
        assert!(
            versions.lines().any(|l| l == gv),
            "{gv} missing from api-versions:\n{versions}"
        );
    }
}

fn errors_read_as_upstream(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    assert_eq!(
        k.fails(&["get", "pod", "nope"]).trim(),
        r#"Error from server (NotFound): pods "nope" not found"#
    );
    assert_eq!(
        k.fails(&["get", "deploy", "nope"]).trim(),
        r#"Error from server (NotFound): deployments.apps "nope" not found"#
    );
    let f = testdata("nginx-pod.yaml");
    k.ok(&["create", "-f", &f]);
    assert_eq!(
        k.fails(&["create", "-f", &f]).trim(),
        format!(
            r#"Error from server (AlreadyExists): error when creating "{f}": pods "nginx" already exists"#
        )
    );
    let bad = testdata("invalid-pod.yaml");
    assert_eq!(
        k.fails(&["create", "-f", &bad]).trim(),
        format!(r#"The Pod "broken" is invalid: spec.containers[0].image: Required value"#)
    );
}
