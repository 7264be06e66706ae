//! Real kubectl binaries (1.27, 1.28, 1.33) against the generated OpenAPI documents.
//!
//! The test serves the documents plus just enough discovery and object endpoints over plain
//! HTTP from a thread in this process (kubectl fetches OpenAPI without credentials, so TLS is not
//! needed here), runs kubectl, and checks what a user would see: `create -f` and `apply -f` do
//! not fail with `failed to download openapi` and send `fieldValidation=Strict`, and `explain`
//! prints field documentation with the right types. Every request is logged per kubectl version;
//! run with `--nocapture` to see which endpoints each version asks for.
//!
//! Skips (passing) when the kubectl binaries are not installed.

use ferrokube_api::resources::{self, RESOURCES};
use ferrokube_apiserver::openapi;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;

const KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";
/// 1.27, 1.28 and 1.33 are required; the versions between run when installed.
const VERSIONS: [&str; 7] = ["1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33"];

/// One request as the stub saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    accept: String,
    accept_encoding: String,
    content_type: String,
    body: String,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.target)?;
        if !self.accept.is_empty() {
            write!(f, "  [Accept: {}]", self.accept)?;
        }
        if self.target.starts_with("/openapi/") && !self.accept_encoding.is_empty() {
            write!(f, "  [Accept-Encoding: {}]", self.accept_encoding)?;
        }
        if !self.content_type.is_empty() {
            write!(f, "  [Content-Type: {}]", self.content_type)?;
        }
        Ok(())
    }
}

/// The stub API server: a listener thread that lives as long as the test process and answers
/// each connection on its own thread.
struct Stub {
    url: String,
    log: Arc<Mutex<Vec<Seen>>>,
    /// Objects that exist, by URL path: GET answers them, PATCH answers them unchanged.
    objects: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Stub {
    fn start() -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("listener address")
        );
        let log = Arc::new(Mutex::new(Vec::new()));
        let objects = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&log);
        let shared_objects = Arc::clone(&objects);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = Arc::clone(&shared);
                let objects = Arc::clone(&shared_objects);
                thread::spawn(move || {
                    // A client that hangs up mid-request only ends its own connection.
                    let _ = serve_connection(stream, &log, &objects);
                });
            }
        });
        Stub { url, log, objects }
    }

    fn put_object(&self, path: &str, object: Value) {
        let mut objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        objects.retain(|(p, _)| p != path);
        objects.push((path.to_string(), object));
    }

    fn take_log(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

fn serve_connection(
    stream: TcpStream,
    log: &Mutex<Vec<Seen>>,
    objects: &Mutex<Vec<(String, Value)>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut body = Vec::new();
        if header("transfer-encoding").eq_ignore_ascii_case("chunked") {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size)?;
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                reader.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else if let Ok(n) = header("content-length").parse::<usize>() {
            body = vec![0; n];
            reader.read_exact(&mut body)?;
        }
        let seen = Seen {
            method,
            target,
            accept: header("accept"),
            accept_encoding: header("accept-encoding"),
            content_type: header("content-type"),
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        log.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(seen.clone());
        let existing = {
            let path = seen.target.split('?').next().unwrap_or_default();
            let objects = objects.lock().unwrap_or_else(|e| e.into_inner());
            objects
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, o)| o.clone())
        };
        let (status, content_type, data) = match existing {
            Some(object) if matches!(seen.method.as_str(), "GET" | "PATCH") => {
                json_answer(200, object)
            }
            _ => answer(&seen, &body),
        };
        let (data, encoding) = compress_openapi(&seen, status, data);
        let reason = match status {
            200 => "OK",
            201 => "Created",
            404 => "Not Found",
            _ => "Error",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n{encoding}Content-Length: {}\r\n\r\n",
            data.len()
        );
        writer.write_all(head.as_bytes())?;
        writer.write_all(&data)?;
        writer.flush()?;
    }
}

/// OpenAPI documents go out as the module keeps them, gzip-compressed, to clients that accept
/// gzip (every kubectl: Go's transport asks for it and inflates transparently).
fn compress_openapi(req: &Seen, status: u16, data: Vec<u8>) -> (Vec<u8>, &'static str) {
    let path = req.target.split('?').next().unwrap_or_default();
    if status != 200 || !req.accept_encoding.contains("gzip") {
        return (data, "");
    }
    let gzip = if path == "/openapi/v2" {
        openapi::v2_negotiate(&req.accept).map(|f| f.body_gzip())
    } else if let Some(doc) = path.strip_prefix("/openapi/v3/") {
        openapi::v3_document_gzip(doc).map(|(b, _)| b)
    } else {
        None
    };
    match gzip {
        Some(body) => (body.to_vec(), "Content-Encoding: gzip\r\n"),
        None => (data, ""),
    }
}

fn json_answer(status: u16, value: Value) -> (u16, String, Vec<u8>) {
    (
        status,
        "application/json".into(),
        serde_json::to_vec(&value).unwrap_or_default(),
    )
}

fn resource_list(group: &str, version: &str) -> Value {
    let mut out = Vec::new();
    for r in resources::in_group_version(group, version) {
        out.push(json!({
            "name": r.resource,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
            "shortNames": r.short_names,
            "categories": r.categories,
        }));
        for s in r.subresources {
            let mut entry = json!({
                "name": format!("{}/{}", r.resource, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": if s.kind.is_empty() { r.kind } else { s.kind },
                "verbs": s.verbs,
            });
            if !s.group.is_empty() {
                entry["group"] = json!(s.group);
                entry["version"] = json!(s.version);
            }
            out.push(entry);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out})
}

fn not_found(what: &str) -> (u16, String, Vec<u8>) {
    json_answer(
        404,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("{what} not found"), "reason": "NotFound", "code": 404}),
    )
}

fn answer(req: &Seen, body: &[u8]) -> (u16, String, Vec<u8>) {
    let path = req.target.split('?').next().unwrap_or_default();
    match (req.method.as_str(), path) {
        ("GET", "/version") => json_answer(
            200,
            json!({"major": "1", "minor": "33", "gitVersion": openapi::KUBERNETES_VERSION,
                   "platform": "linux/amd64"}),
        ),
        ("GET", "/api") => json_answer(
            200,
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
        ),
        ("GET", "/apis") => {
            let groups: Vec<Value> = resources::GROUPS
                .iter()
                .map(|(g, versions)| {
                    let vs: Vec<Value> = versions
                        .iter()
                        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                        .collect();
                    json!({"name": g, "versions": vs, "preferredVersion": vs[0]})
                })
                .collect();
            json_answer(
                200,
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            )
        }
        ("GET", "/api/v1") => json_answer(200, resource_list("", "v1")),
        ("GET", "/openapi/v2") => match openapi::v2_negotiate(&req.accept) {
            Some(format) => (200, format.content_type().into(), format.body().to_vec()),
            None => (406, "text/plain".into(), Vec::new()),
        },
        ("GET", "/openapi/v3") => (200, "application/json".into(), openapi::v3_index().to_vec()),
        ("GET", p) if p.starts_with("/openapi/v3/") => {
            match openapi::v3_document(&p["/openapi/v3/".len()..]) {
                Some((data, _)) => (200, "application/json".into(), data.to_vec()),
                None => not_found(p),
            }
        }
        ("GET", p) if p.starts_with("/apis/") => {
            let parts: Vec<&str> = p.trim_start_matches("/apis/").split('/').collect();
            if parts.len() == 2 && RESOURCES.iter().any(|r| r.group == parts[0]) {
                json_answer(200, resource_list(parts[0], parts[1]))
            } else {
                not_found(p)
            }
        }
        ("POST", _) => {
            // Created: the object back, as the server would store it.
            let mut object: Value = serde_json::from_slice(body).unwrap_or(json!({}));
            if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("uid".into(), json!("3e5c7a0e-0000-4000-8000-000000000001"));
                meta.insert("resourceVersion".into(), json!("1"));
                meta.insert("creationTimestamp".into(), json!("2025-01-01T00:00:00Z"));
                meta.entry("namespace").or_insert(json!("default"));
            }
            json_answer(201, object)
        }
        (_, p) => not_found(p),
    }
}

fn kubectl_path(version: &str) -> PathBuf {
    Path::new(KUBECTL_DIR).join(format!("kubectl.{version}"))
}

fn have_kubectl() -> bool {
    ["1.27", "1.28", "1.33"]
        .iter()
        .all(|v| kubectl_path(v).exists())
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
    requests: Vec<Seen>,
}

/// Runs one kubectl command with a fresh HOME and cache, so nothing is served from disk.
fn kubectl(stub: &Stub, version: &str, args: &[&str], files: &[(&str, &str)]) -> Run {
    let home = tempfile::tempdir().expect("temp home");
    for (name, text) in files {
        std::fs::write(home.path().join(name), text).expect("write manifest");
    }
    let cache = home.path().join("cache");
    let output = Command::new(kubectl_path(version))
        .args([
            "--server",
            &stub.url,
            "--request-timeout=30s",
            "--cache-dir",
        ])
        .arg(&cache)
        .args(args)
        .current_dir(home.path())
        .env("HOME", home.path())
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kubectl");
    let run = Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        requests: stub.take_log(),
    };
    println!(
        "== kubectl {version} {}: {}",
        args.join(" "),
        if run.ok { "ok" } else { "FAILED" }
    );
    for r in &run.requests {
        println!("   {r}");
    }
    if args.first() == Some(&"explain") {
        for line in run.stdout.lines().take(60) {
            println!("   | {line}");
        }
    }
    run
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: nginx:1.27
    ports:
    - containerPort: 80
";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
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
      - name: web
        image: nginx:1.27
        resources:
          limits:
            cpu: 500m
            memory: 128Mi
        ports:
        - containerPort: 80
";

fn assert_strict_post(run: &Run, what: &str) {
    assert!(run.ok, "{what} failed:\n{}\n{}", run.stdout, run.stderr);
    assert!(
        !run.stderr.contains("failed to download openapi")
            && !run.stderr.contains("error validating"),
        "{what}: {}",
        run.stderr
    );
    let post = run
        .requests
        .iter()
        .find(|r| r.method == "POST")
        .unwrap_or_else(|| panic!("{what} sent no POST"));
    assert!(
        post.target.contains("fieldValidation=Strict"),
        "{what}: {}",
        post.target
    );
}

#[test]
fn create_and_apply_use_server_side_field_validation_on_every_kubectl() {
    assert!(
        have_kubectl(),
        "kubectl binaries are missing under {KUBECTL_DIR}: these tests drive the real kubectl"
    );
    let stub = Stub::start();
    for version in VERSIONS {
        assert!(
            kubectl_path(version).exists(),
            "kubectl.{version} is missing under {KUBECTL_DIR}"
        );
        let run = kubectl(
            &stub,
            version,
            &["create", "-f", "pod.yaml", "--dry-run=server"],
            &[("pod.yaml", POD)],
        );
        assert_strict_post(&run, &format!("kubectl {version} create -f pod.yaml"));
        let post = run.requests.iter().find(|r| r.method == "POST").unwrap();
        assert!(post.target.contains("dryRun=All"), "{}", post.target);
        assert!(post.target.starts_with("/api/v1/namespaces/default/pods"));

        let run = kubectl(
            &stub,
            version,
            &["apply", "-f", "deployment.yaml"],
            &[("deployment.yaml", DEPLOYMENT)],
        );
        assert_strict_post(&run, &format!("kubectl {version} apply -f deployment.yaml"));
        let post = run.requests.iter().find(|r| r.method == "POST").unwrap();
        assert!(
            post.target
                .starts_with("/apis/apps/v1/namespaces/default/deployments")
        );
        assert!(
            run.requests
                .iter()
                .any(|r| r.target.starts_with("/openapi/")),
            "kubectl {version} apply never asked for OpenAPI"
        );
    }
}

/// An applied Deployment whose last-applied configuration runs an older image.
fn existing_deployment() -> Value {
    let mut manifest = deployment_manifest();
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
    let last_applied = serde_json::to_string(&manifest).unwrap_or_default();
    let mut object = manifest;
    object["metadata"]["namespace"] = json!("default");
    object["metadata"]["uid"] = json!("3e5c7a0e-0000-4000-8000-000000000002");
    object["metadata"]["resourceVersion"] = json!("7");
    object["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": last_applied});
    object
}

/// [`DEPLOYMENT`] as JSON.
fn deployment_manifest() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "web",
                    "image": "nginx:1.27",
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                    "ports": [{"containerPort": 80}],
                }]},
            },
        },
    })
}

#[test]
fn apply_to_an_existing_object_computes_a_strategic_merge_patch_from_openapi() {
    assert!(
        have_kubectl(),
        "kubectl binaries are missing under {KUBECTL_DIR}: these tests drive the real kubectl"
    );
    let stub = Stub::start();
    stub.put_object(
        "/apis/apps/v1/namespaces/default/deployments/web",
        existing_deployment(),
    );
    for version in VERSIONS {
        assert!(
            kubectl_path(version).exists(),
            "kubectl.{version} is missing under {KUBECTL_DIR}"
        );
        let run = kubectl(
            &stub,
            version,
            &["apply", "-f", "deployment.yaml"],
            &[("deployment.yaml", DEPLOYMENT)],
        );
        assert!(run.ok, "{version}: {}\n{}", run.stdout, run.stderr);
        assert!(
            !run.stderr.contains("warning"),
            "{version} could not use the OpenAPI patch metadata: {}",
            run.stderr
        );
        let patch = run
            .requests
            .iter()
            .find(|r| r.method == "PATCH")
            .unwrap_or_else(|| panic!("{version} sent no PATCH"));
        println!("   PATCH body: {}", patch.body);
        assert_eq!(patch.content_type, "application/strategic-merge-patch+json");
        assert!(
            patch.target.contains("fieldValidation=Strict"),
            "{}",
            patch.target
        );
        let body: Value = serde_json::from_str(&patch.body).unwrap_or_default();
        assert_eq!(
            body["spec"]["template"]["spec"]["$setElementOrder/containers"],
            json!([{"name": "web"}]),
            "{version}: {}",
            patch.body
        );
        if !matches!(version, "1.27" | "1.28") {
            // 1.29+ fall back to /openapi/v2 only when the v3 document cannot be used.
            assert!(
                run.requests
                    .iter()
                    .all(|r| !r.target.starts_with("/openapi/v2")),
                "{version} fell back to /openapi/v2"
            );
        }
    }
}

#[test]
fn explain_prints_field_documentation_on_every_kubectl() {
    assert!(
        have_kubectl(),
        "kubectl binaries are missing under {KUBECTL_DIR}: these tests drive the real kubectl"
    );
    let stub = Stub::start();
    for version in VERSIONS {
        assert!(
            kubectl_path(version).exists(),
            "kubectl.{version} is missing under {KUBECTL_DIR}"
        );
        let run = kubectl(&stub, version, &["explain", "pods.spec.containers"], &[]);
        assert!(run.ok, "{version}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("KIND:"), "{}", run.stdout);
        assert!(run.stdout.contains("Pod"), "{}", run.stdout);
        assert!(
            run.stdout
                .contains("List of containers belonging to the pod"),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains("image"), "{}", run.stdout);
        assert!(run.stdout.contains("livenessProbe"), "{}", run.stdout);

        let run = kubectl(
            &stub,
            version,
            &["explain", "pods.spec.containers.ports"],
            &[],
        );
        assert!(run.ok, "{version}: {}\n{}", run.stdout, run.stderr);
        let line = run
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with("containerPort"))
            .unwrap_or_else(|| panic!("{version}: no containerPort in\n{}", run.stdout));
        assert!(
            line.contains("<integer>") && line.contains("-required-"),
            "{version}: {line}"
        );
        let protocol = run
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with("protocol"))
            .unwrap_or_default();
        assert!(protocol.contains("<string>"), "{version}: {protocol}");

        if matches!(version, "1.27" | "1.28") {
            // The Swagger 2.0 explain reads the gnostic protobuf document.
            let run = kubectl(
                &stub,
                version,
                &[
                    "explain",
                    "pods.spec.containers.ports",
                    "--output=plaintext-openapiv2",
                ],
                &[],
            );
            assert!(run.ok, "{version}: {}\n{}", run.stdout, run.stderr);
            let line = run
                .stdout
                .lines()
                .find(|l| l.trim_start().starts_with("containerPort"))
                .unwrap_or_else(|| panic!("{version}: no containerPort in\n{}", run.stdout));
            assert!(
                line.contains("<integer>") && line.contains("-required-"),
                "{version}: {line}"
            );
            assert!(
                run.requests
                    .iter()
                    .all(|r| !r.target.starts_with("/openapi/v3/")),
                "{version} read v3 for the v2 explain"
            );
        }

        let run = kubectl(
            &stub,
            version,
            &["explain", "deployment", "--recursive"],
            &[],
        );
        assert!(run.ok, "{version}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("apps"), "{}", run.stdout);
        assert!(run.stdout.contains("Deployment"), "{}", run.stdout);
        for field in [
            "replicas",
            "strategy",
            "template",
            "containerPort",
            "matchLabels",
        ] {
            assert!(run.stdout.contains(field), "{version}: no {field}");
        }

        let run = kubectl(
            &stub,
            version,
            &["explain", "deployment.spec.strategy.rollingUpdate"],
            &[],
        );
        assert!(run.ok, "{version}: {}\n{}", run.stdout, run.stderr);
        let surge = run
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with("maxSurge"))
            .unwrap_or_default();
        assert!(
            surge.contains("IntOrString") || surge.contains("<string>"),
            "{version}: {surge}"
        );
    }
}
