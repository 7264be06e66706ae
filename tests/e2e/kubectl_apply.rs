//! `kubectl apply` (client-side and server-side), `diff`, `--dry-run=server`, `explain` and
//! field validation against a real `ferrokube server`, with kubectl 1.27 and 1.33: what the user
//! sees printed and what the objects become.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{Kubectl, Server};

macro_rules! for_versions {
    ($($name:ident),* $(,)?) => {
        mod v1_27 { $( #[test] fn $name() { super::$name("1.27") } )* }
        mod v1_33 { $( #[test] fn $name() { super::$name("1.33") } )* }
    };
}

for_versions!(
    client_side_apply_creates_configures_and_reports_unchanged,
    apply_takes_multi_document_files_directories_and_prunes_by_label,
    server_side_apply_owns_fields_reports_conflicts_and_forces,
    diff_and_server_dry_run_change_nothing,
    explain_reads_the_openapi_schema,
    field_validation_rejects_or_warns_about_unknown_and_duplicate_fields,
);

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
    tier: front
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, text).expect("write manifest");
    p.display().to_string()
}

fn get_json(k: &Kubectl, args: &[&str]) -> Value {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "json", "--show-managed-fields"]);
    serde_json::from_str(&k.ok(&a)).expect("json")
}

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap_or("").to_string(),
                        e["operation"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn client_side_apply_creates_configures_and_reports_unchanged(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    let f = write(&s.dir, "web.yaml", DEPLOYMENT);
    assert_eq!(
        k.ok(&["apply", "-f", &f]).trim(),
        "deployment.apps/web created"
    );
    let d = get_json(&k, &["deployment", "web"]);
    let last: Value = serde_json::from_str(
        d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .expect("last-applied annotation"),
    )
    .expect("annotation is JSON");
    assert_eq!(last["spec"]["replicas"], 2);
    assert_eq!(last["metadata"]["namespace"], "default");
    assert!(
        managers(&d).contains(&("kubectl-client-side-apply".into(), "Update".into())),
        "{:?}",
        managers(&d)
    );

    assert_eq!(
        k.ok(&["apply", "-f", &f]).trim(),
        "deployment.apps/web unchanged"
    );

    // Three-way merge: a field removed from the file goes, a changed one changes, and what
    // someone else set (an annotation from `kubectl annotate`) stays.
    k.ok(&["annotate", "deployment", "web", "owner=ops"]);
    let changed = DEPLOYMENT
        .replace("    tier: front\n", "")
        .replace("replicas: 2", "replicas: 3")
        .replace("nginx:1.25", "nginx:1.26");
    write(&s.dir, "web.yaml", &changed);
    assert_eq!(
        k.ok(&["apply", "-f", &f]).trim(),
        "deployment.apps/web configured"
    );
    let d = get_json(&k, &["deployment", "web"]);
    assert_eq!(d["metadata"]["labels"], serde_json::json!({"app": "web"}));
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.26"
    );
    assert_eq!(d["metadata"]["annotations"]["owner"], "ops");
    assert_eq!(d["metadata"]["generation"], 2);

    // A container port removed from the file is removed from the object.
    write(
        &s.dir,
        "web.yaml",
        &changed.replace("        ports:\n        - containerPort: 80\n", ""),
    );
    k.ok(&["apply", "-f", &f]);
    let d = get_json(&k, &["deployment", "web"]);
    assert!(
        d["spec"]["template"]["spec"]["containers"][0]
            .get("ports")
            .is_none(),
        "{d}"
    );
}

fn apply_takes_multi_document_files_directories_and_prunes_by_label(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    let multi = write(
        &s.dir,
        "multi.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\ndata:\n  a: \"1\"\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: two\nspec:\n  selector:\n    app: two\n  ports:\n  - port: 80\n    targetPort: 8080\n",
    );
    let out = k.ok(&["apply", "-f", &multi]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["configmap/one created", "service/two created"]
    );

    let dir = s.dir.join("manifests");
    let cm = |name: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels:\n    app: pr\ndata:\n  k: v\n"
        )
    };
    write(&dir, "a.yaml", &cm("pa"));
    write(&dir, "b.yaml", &cm("pb"));
    write(&dir, "nested/c.yaml", &cm("pc"));
    let d = dir.display().to_string();
    let flat = k.ok(&["apply", "-f", &d]);
    assert_eq!(
        flat.lines().collect::<Vec<_>>(),
        ["configmap/pa created", "configmap/pb created"]
    );
    let rec = k.ok(&["apply", "-R", "-f", &d]);
    assert_eq!(
        rec.lines().collect::<Vec<_>>(),
        [
            "configmap/pa unchanged",
            "configmap/pb unchanged",
            "configmap/pc created"
        ]
    );

    // A configmap with the label that was never applied is pruned only if it carries the
    // last-applied annotation: `--prune` deletes what apply created and the files dropped.
    k.ok(&["create", "configmap", "manual", "--from-literal=x=y"]);
    k.ok(&["label", "configmap", "manual", "app=pr"]);
    std::fs::remove_file(dir.join("b.yaml")).expect("rm");
    let pruned = k.ok(&["apply", "-R", "-f", &d, "--prune", "-l", "app=pr"]);
    let lines: Vec<&str> = pruned.lines().collect();
    assert!(lines.contains(&"configmap/pb pruned"), "{pruned}");
    assert!(!pruned.contains("manual"), "{pruned}");
    let left = k.ok(&["get", "configmaps", "-l", "app=pr", "-o", "name"]);
    assert_eq!(
        left.lines().collect::<Vec<_>>(),
        ["configmap/manual", "configmap/pa", "configmap/pc"]
    );
}

fn server_side_apply_owns_fields_reports_conflicts_and_forces(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    let f = write(&s.dir, "web.yaml", DEPLOYMENT);
    assert_eq!(
        k.ok(&["apply", "--server-side", "-f", &f]).trim(),
        "deployment.apps/web serverside-applied"
    );
    let d = get_json(&k, &["deployment", "web"]);
    // The deployment controller's status and revision writes are its own entries.
    let users: Vec<_> = managers(&d)
        .into_iter()
        .filter(|(m, _)| m != "kube-controller-manager")
        .collect();
    assert_eq!(users, [("kubectl".into(), "Apply".into())]);
    let fields = &d["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(fields["f:spec"]["f:replicas"], serde_json::json!({}));
    assert_eq!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]["f:image"],
        serde_json::json!({})
    );
    assert!(
        d["metadata"]["annotations"]
            .get("kubectl.kubernetes.io/last-applied-configuration")
            .is_none(),
        "server-side apply keeps no last-applied annotation: {d}"
    );
    // Defaults were applied on create.
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");

    // Another manager changing an owned field conflicts, with upstream's message.
    let other = write(
        &s.dir,
        "other.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 5\n",
    );
    let err = k.fails(&[
        "apply",
        "--server-side",
        "--field-manager=tuner",
        "-f",
        &other,
    ]);
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"),
        "{err}"
    );
    assert_eq!(get_json(&k, &["deployment", "web"])["spec"]["replicas"], 2);
    k.ok(&[
        "apply",
        "--server-side",
        "--field-manager=tuner",
        "--force-conflicts",
        "-f",
        &other,
    ]);
    let d = get_json(&k, &["deployment", "web"]);
    assert_eq!(d["spec"]["replicas"], 5);
    let tuner = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "tuner")
        .expect("tuner entry")
        .clone();
    assert_eq!(
        tuner["fieldsV1"]["f:spec"]["f:replicas"],
        serde_json::json!({})
    );
    let kubectl = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "kubectl")
        .expect("kubectl entry")
        .clone();
    assert!(
        kubectl["fieldsV1"]["f:spec"].get("f:replicas").is_none(),
        "{kubectl}"
    );

    // kubectl still applying replicas: 2 now conflicts with tuner.
    let err = k.fails(&["apply", "--server-side", "-f", &f]);
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"tuner\": .spec.replicas"),
        "{err}"
    );
    // The original manager stops applying the label and replicas: the label goes, since
    // nobody else owns it; replicas stays, since tuner owns it.
    write(
        &s.dir,
        "web.yaml",
        &DEPLOYMENT
            .replace("    tier: front\n", "")
            .replace("  replicas: 2\n", ""),
    );
    k.ok(&["apply", "--server-side", "-f", &f]);
    let d = get_json(&k, &["deployment", "web"]);
    assert_eq!(d["metadata"]["labels"], serde_json::json!({"app": "web"}));
    assert_eq!(d["spec"]["replicas"], 5);

    // A field owned through client-side apply: kubectl upgrades it without a conflict, but a
    // different manager meets the client-side owner.
    let cs = write(
        &s.dir,
        "cs.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cs\ndata:\n  a: \"1\"\n",
    );
    k.ok(&["apply", "-f", &cs]);
    let cs2 = write(
        &s.dir,
        "cs2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cs\ndata:\n  a: \"2\"\n",
    );
    let err = k.fails(&["apply", "--server-side", "--field-manager=x", "-f", &cs2]);
    assert!(
        err.contains(
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .data.a"
        ),
        "{err}"
    );
    k.ok(&["apply", "--server-side", "-f", &cs2]);
    let cm = get_json(&k, &["configmap", "cs"]);
    assert_eq!(cm["data"]["a"], "2");

    // Server-side apply creates in other namespaces and kinds too, and dry run stores nothing.
    let out = k.ok(&[
        "apply",
        "--server-side",
        "--dry-run=server",
        "-f",
        &multi_ns(&s),
    ]);
    assert!(out.contains("(server dry run)"), "{out}");
    let err = k.fails(&["get", "configmap", "dry"]);
    assert!(err.contains("NotFound"), "{err}");
}

fn multi_ns(s: &Server) -> String {
    write(
        &s.dir,
        "dry.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dry\ndata:\n  a: \"1\"\n",
    )
}

fn diff_and_server_dry_run_change_nothing(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    let f = write(&s.dir, "web.yaml", DEPLOYMENT);
    let created = k.ok(&["create", "--dry-run=server", "-f", &f]);
    assert_eq!(
        created.trim(),
        "deployment.apps/web created (server dry run)"
    );
    assert!(k.fails(&["get", "deployment", "web"]).contains("NotFound"));

    k.ok(&["apply", "-f", &f]);
    let same = k.run(&["diff", "-f", &f]);
    assert_eq!(same.status.code(), Some(0), "{}", same.stderr);
    assert!(same.stdout.is_empty(), "{}", same.stdout);

    write(
        &s.dir,
        "web.yaml",
        &DEPLOYMENT.replace("replicas: 2", "replicas: 4"),
    );
    let diff = k.run(&["diff", "-f", &f]);
    assert_eq!(diff.status.code(), Some(1), "{}", diff.stderr);
    assert!(diff.stdout.contains("-  replicas: 2"), "{}", diff.stdout);
    assert!(diff.stdout.contains("+  replicas: 4"), "{}", diff.stdout);
    let ssa_diff = k.run(&["diff", "--server-side", "-f", &f]);
    assert_eq!(ssa_diff.status.code(), Some(1), "{}", ssa_diff.stderr);
    assert!(
        ssa_diff.stdout.contains("+  replicas: 4"),
        "{}",
        ssa_diff.stdout
    );

    let out = k.ok(&["apply", "--dry-run=server", "-f", &f]);
    assert_eq!(
        out.trim(),
        "deployment.apps/web configured (server dry run)"
    );
    let out = k.ok(&[
        "scale",
        "deployment",
        "web",
        "--replicas=7",
        "--dry-run=server",
    ]);
    assert!(out.contains("(server dry run)"), "{out}");
    let out = k.ok(&["delete", "deployment", "web", "--dry-run=server"]);
    assert_eq!(
        out.trim(),
        "deployment.apps \"web\" deleted (server dry run)"
    );
    let d = get_json(&k, &["deployment", "web"]);
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["metadata"]["generation"], 1);
}

fn explain_reads_the_openapi_schema(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    let out = k.ok(&["explain", "pods.spec.containers"]);
    assert!(
        out.contains("KIND:       Pod") || out.contains("KIND:     Pod"),
        "{out}"
    );
    assert!(
        out.contains("containers <[]Container>") || out.contains("containers <[]Object>"),
        "{out}"
    );
    assert!(out.contains("image\t<string>"), "{out}");
    assert!(
        out.contains("List of containers belonging to the pod."),
        "{out}"
    );
    let rec = k.ok(&["explain", "deployment", "--recursive"]);
    assert!(
        rec.contains("GROUP:      apps") || rec.contains("VERSION:  apps/v1"),
        "{rec}"
    );
    for field in [
        "replicas\t<integer>",
        "strategy\t<",
        "maxSurge\t<",
        "containers\t<[]",
    ] {
        assert!(rec.contains(field), "{field} missing:\n{rec}");
    }
    let svc = k.ok(&["explain", "service.spec.type"]);
    assert!(
        svc.contains("type <string>") || svc.contains("FIELD:    type"),
        "{svc}"
    );
}

fn field_validation_rejects_or_warns_about_unknown_and_duplicate_fields(v: &str) {
    let s = Server::start();
    let k = s.kubectl(v);
    let bad = write(
        &s.dir,
        "bad.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: typo\nspec:\n  containers:\n  - name: c\n    imagee: nginx\n    image: nginx\n    env:\n    - name: A\n      valu: x\n",
    );
    let err = k.fails(&["create", "-f", &bad]);
    assert!(
        err.contains(
            "strict decoding error: unknown field \"spec.containers[0].env[0].valu\", unknown field \"spec.containers[0].imagee\""
        ),
        "{err}"
    );
    let warn = k.run(&["create", "--validate=warn", "-f", &bad]);
    assert!(warn.status.success(), "{}", warn.stderr);
    assert!(
        warn.stderr
            .contains("Warning: unknown field \"spec.containers[0].imagee\""),
        "{}",
        warn.stderr
    );
    let quiet = write(
        &s.dir,
        "quiet.yaml",
        &std::fs::read_to_string(&bad)
            .expect("read")
            .replace("name: typo", "name: quiet"),
    );
    let ignored = k.run(&["create", "--validate=false", "-f", &quiet]);
    assert!(ignored.status.success(), "{}", ignored.stderr);
    assert!(!ignored.stderr.contains("Warning"), "{}", ignored.stderr);

    // Duplicate keys in a JSON body (kubectl sends YAML files as JSON, so use --raw).
    let body = write(
        &s.dir,
        "dup.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","name":"dup"},"data":{"a":"1"}}"#,
    );
    let err = k.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
        "-f",
        &body,
    ]);
    assert!(
        err.contains("strict decoding error: duplicate field \"metadata.name\""),
        "{err}"
    );
    let ok = k.run(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps?fieldValidation=Warn",
        "-f",
        &body,
    ]);
    assert!(ok.status.success(), "{}", ok.stderr);
    assert!(
        ok.stderr
            .contains("Warning: duplicate field \"metadata.name\""),
        "{}",
        ok.stderr
    );
}
