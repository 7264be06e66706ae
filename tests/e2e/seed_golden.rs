//! The golden test of the course material: every Kubernetes manifest in the shared seeds
//! (`../shared/seeds/*.txt`, fenced YAML blocks and files shown with `cat`) is applied with
//! kubectl 1.33 to a real `ferrokube server`, read back with `-o yaml`, and compared with the
//! checked-in object upstream Kubernetes 1.33 stores for the same input
//! (tests/e2e/testdata/seeds/<kind>-<name>.yaml), ignoring uid, resourceVersion, timestamps,
//! managedFields and randomly allocated cluster IPs and node ports.
//!
//! `extensions/v1beta1` Deployments are translated to `apps/v1` with a selector made from the
//! template's labels, as `kubectl convert` would. Manifests that are not valid for today's API
//! (an unknown field, a kind no longer served) are applied too and must fail with upstream's
//! message, kept next to the golden files as `<kind>-<name>.error`.
//!
//! Run with `FERROKUBE_BLESS=1` to write missing golden files from what the server stores;
//! a blessed file is only a starting point and must be checked against upstream's defaulting
//! before it is committed.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::Server;

fn seeds_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seeds");
    assert!(
        dir.is_dir(),
        "{} is missing: the golden test reads the shared seeds next to the repository",
        dir.display()
    );
    dir
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/testdata/seeds")
}

/// The text of every fenced block of a markdown file.
fn fenced_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            match current.take() {
                Some(lines) => out.push(lines.join("\n")),
                None => current = Some(Vec::new()),
            }
            continue;
        }
        if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    out
}

/// The YAML documents of a block: a manifest block as it is, or in a shell transcript the
/// files printed with `cat FILE.yaml` (up to the next prompt). Documents are split on `---`
/// and on `### file.yaml` headers, which the seeds use between files shown together.
fn documents(block: &str) -> Vec<String> {
    let lines: Vec<&str> = block.lines().collect();
    let is_prompt = |l: &str| l.starts_with("[root@") || l.starts_with("$ ");
    let mut sources: Vec<Vec<&str>> = Vec::new();
    if lines.iter().any(|l| is_prompt(l)) {
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i];
            if is_prompt(l)
                && (l.contains("cat ") || l.contains("tee "))
                && l.trim_end().ends_with(".yaml")
            {
                let mut doc = Vec::new();
                i += 1;
                while i < lines.len() && !is_prompt(lines[i]) && !lines[i].starts_with("# ") {
                    doc.push(lines[i]);
                    i += 1;
                }
                sources.push(doc);
                continue;
            }
            i += 1;
        }
    } else {
        sources.push(lines);
    }
    let mut docs = Vec::new();
    for src in sources {
        let mut cur: Vec<&str> = Vec::new();
        for l in src {
            if l.trim_end() == "---" || (l.starts_with("### ") && l.trim_end().ends_with(".yaml")) {
                docs.push(cur.join("\n"));
                cur.clear();
                continue;
            }
            cur.push(l);
        }
        docs.push(cur.join("\n"));
    }
    docs.into_iter()
        .filter(|d| d.contains("apiVersion:") && d.contains("kind:"))
        .collect()
}

/// One manifest found in the seeds, translated for today's API.
struct Manifest {
    id: String,
    source: String,
    object: Value,
}

fn translate(mut obj: Value) -> Value {
    if obj["apiVersion"] == "extensions/v1beta1" && obj["kind"] == "Deployment" {
        obj["apiVersion"] = json!("apps/v1");
        if obj.pointer("/spec/selector").is_none() {
            let labels = obj
                .pointer("/spec/template/metadata/labels")
                .cloned()
                .unwrap_or(json!({}));
            obj["spec"]["selector"] = json!({"matchLabels": labels});
        }
    }
    obj
}

fn manifests() -> Vec<Manifest> {
    let dir = seeds_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("seeds")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut out: Vec<Manifest> = Vec::new();
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("seed text");
        let fname = f.file_name().unwrap().to_string_lossy().to_string();
        for (bi, block) in fenced_blocks(&text).iter().enumerate() {
            for doc in documents(block) {
                let Ok(obj) = serde_yaml::from_str::<Value>(&doc) else {
                    continue;
                };
                let (Some(kind), Some(name)) = (
                    obj.get("kind").and_then(Value::as_str),
                    obj.pointer("/metadata/name").and_then(Value::as_str),
                ) else {
                    continue;
                };
                // Configuration files of other programs (kubeadm's MasterConfiguration).
                let av = obj["apiVersion"].as_str().unwrap_or("");
                if av.starts_with("kubeadm.k8s.io") {
                    continue;
                }
                let obj = translate(obj.clone());
                if out.iter().any(|m| m.object == obj) {
                    continue;
                }
                let base = format!("{}-{}", kind.to_lowercase(), name);
                let n = by_id.entry(base.clone()).or_insert(0);
                *n += 1;
                let id = if *n == 1 { base } else { format!("{base}-{n}") };
                out.push(Manifest {
                    id,
                    source: format!("{fname} block {bi}"),
                    object: obj,
                });
            }
        }
    }
    out
}

/// Replaces the random suffix of the service account token volume (`kube-api-access-x7k2p`).
fn mask_token_volume_names(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == "name"
                    && let Some(n) = x.as_str()
                    && n.starts_with("kube-api-access-")
                    && n.len() == "kube-api-access-".len() + 5
                {
                    *x = json!("kube-api-access-<random>");
                } else {
                    mask_token_volume_names(x);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_token_volume_names),
        _ => {}
    }
}

/// Fields the controllers and the scheduler write after the create (pod CIDR allocation, the
/// volume binder's phases and bindings, the scheduler's PodScheduled condition): they depend
/// on timing, not on how the input was stored.
const CONTROLLER_WRITTEN: &[(&str, &str)] = &[
    ("Pod", "/status/conditions"),
    ("Node", "/spec/podCIDR"),
    ("Node", "/spec/podCIDRs"),
    ("PersistentVolume", "/status/phase"),
    ("PersistentVolume", "/spec/claimRef"),
    ("PersistentVolumeClaim", "/status"),
    ("PersistentVolumeClaim", "/spec/volumeName"),
    ("Deployment", "/status"),
    ("ReplicaSet", "/status"),
    ("ReplicationController", "/status"),
    ("DaemonSet", "/status"),
    ("StatefulSet", "/status"),
    ("Job", "/status"),
    ("CronJob", "/status"),
];

/// Removes what differs between any two stores of the same input.
fn mask(obj: &mut Value) {
    mask_token_volume_names(obj);
    let kind = obj["kind"].as_str().unwrap_or("").to_string();
    for (k, pointer) in CONTROLLER_WRITTEN {
        if *k == kind {
            let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
            remove_pointer(obj, &parts);
        }
    }
    if kind == "Deployment"
        && let Some(a) = obj
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
    {
        // The deployment controller's revision annotation (timing, not storage).
        a.remove("deployment.kubernetes.io/revision");
    }
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
        ] {
            m.remove(k);
        }
    }
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        if spec.contains_key("clusterIP") {
            spec.insert("clusterIP".into(), json!("<allocated>"));
        }
        if spec.contains_key("clusterIPs") {
            spec.insert("clusterIPs".into(), json!(["<allocated>"]));
        }
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports {
                if p.get("nodePort").is_some() {
                    p["nodePort"] = json!("<allocated>");
                }
            }
        }
    }
    if let Some(t) = obj.pointer_mut("/status/lastPhaseTransitionTime") {
        *t = json!("<time>");
    }
    if let Some(conds) = obj
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    {
        for c in conds {
            for k in [
                "lastTransitionTime",
                "lastHeartbeatTime",
                "lastProbeTime",
                "lastUpdateTime",
            ] {
                if c.get(k).is_some_and(|t| !t.is_null()) {
                    c[k] = json!("<time>");
                }
            }
        }
    }
}

/// Fields upstream stores that come from parts of the cluster this server does not run yet.
/// While the server stores none of a field, it is taken out of the golden object (and
/// reported); once the server stores it, it is compared like everything else.
const PENDING: &[(&str, &str, &str)] = &[
    (
        "Service",
        "/spec/clusterIP",
        "cluster IP allocation (the service IP allocator)",
    ),
    (
        "Service",
        "/spec/clusterIPs",
        "cluster IP allocation (the service IP allocator)",
    ),
    (
        "Service",
        "/spec/ipFamilies",
        "IP family defaulting done with cluster IP allocation",
    ),
    (
        "Service",
        "/spec/ipFamilyPolicy",
        "IP family defaulting done with cluster IP allocation",
    ),
    ("Service", "/spec/ports/*/nodePort", "node port allocation"),
    (
        "PersistentVolume",
        "/metadata/finalizers",
        "StorageObjectInUseProtection admission, useful only with the pv-protection controller",
    ),
    (
        "PersistentVolumeClaim",
        "/metadata/finalizers",
        "StorageObjectInUseProtection admission, useful only with the pvc-protection controller",
    ),
];

/// Removes `pointer` (`*` matches every array item) from `v`; true if anything was there.
fn remove_pointer(v: &mut Value, pointer: &[&str]) -> bool {
    match pointer {
        [] => false,
        [last] => match v {
            Value::Object(m) => m.remove(*last).is_some(),
            _ => false,
        },
        ["*", rest @ ..] => match v {
            Value::Array(items) => {
                // Every item, not just up to the first hit.
                let mut any = false;
                for x in items.iter_mut() {
                    any |= remove_pointer(x, rest);
                }
                any
            }
            _ => false,
        },
        [first, rest @ ..] => v.get_mut(*first).is_some_and(|x| remove_pointer(x, rest)),
    }
}

fn has_pointer(v: &Value, pointer: &[&str]) -> bool {
    match pointer {
        [] => true,
        ["*", rest @ ..] => v
            .as_array()
            .is_some_and(|items| items.iter().any(|x| has_pointer(x, rest))),
        [first, rest @ ..] => v.get(*first).is_some_and(|x| has_pointer(x, rest)),
    }
}

/// Takes the pending fields the server does not store yet out of `want`; returns the reasons.
fn tolerate_pending(want: &mut Value, got: &Value) -> Vec<String> {
    let kind = got["kind"].as_str().unwrap_or("");
    let mut notes = Vec::new();
    for (k, pointer, why) in PENDING {
        if *k != kind {
            continue;
        }
        let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        if !has_pointer(got, &parts) && remove_pointer(want, &parts) {
            notes.push(format!("{pointer}: {why}"));
        }
    }
    notes
}

fn resource_of(obj: &Value) -> String {
    let kind = obj["kind"].as_str().unwrap_or("").to_lowercase();
    let av = obj["apiVersion"].as_str().unwrap_or("");
    match av.split_once('/') {
        Some((group, version)) => format!("{kind}.{version}.{group}"),
        None => kind,
    }
}

#[test]
fn seed_manifests_are_stored_as_upstream_stores_them() {
    let found = manifests();
    assert!(found.len() >= 10, "only {} manifests found", found.len());
    let s = Server::start();
    let k = s.kubectl("1.33");
    // The service account controller gives every namespace a `default` account, which the
    // ServiceAccount admission plugin then mounts into pods: wait for it, as upstream's
    // stored pods assume it.
    for ns in ["default", "kube-system"] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !k
            .run(&["get", "serviceaccount", "default", "-n", ns])
            .status
            .success()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no default service account in {ns}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let bless = std::env::var_os("FERROKUBE_BLESS").is_some();
    let golden = golden_dir();
    let mut failures = Vec::new();
    for m in &found {
        let file = s.dir.join(format!("{}.yaml", m.id));
        std::fs::write(&file, serde_yaml::to_string(&m.object).unwrap()).unwrap();
        let f = file.display().to_string();
        let run = k.run(&["apply", "-f", &f]);
        let error_file = golden.join(format!("{}.error", m.id));
        let golden_file = golden.join(format!("{}.yaml", m.id));
        if !run.status.success() {
            let err = run.stderr.trim().replace(&f, "<file>");
            match std::fs::read_to_string(&error_file) {
                Ok(want) if want.trim() == err => {}
                Ok(want) => failures.push(format!(
                    "{} ({}): failed with\n{err}\nbut upstream fails with\n{}",
                    m.id,
                    m.source,
                    want.trim()
                )),
                Err(_) if bless => std::fs::write(&error_file, format!("{err}\n")).unwrap(),
                Err(_) => failures.push(format!(
                    "{} ({}): apply failed and no {} says upstream fails too:\n{err}",
                    m.id,
                    m.source,
                    error_file.display()
                )),
            }
            continue;
        }
        assert!(
            !error_file.exists(),
            "{}: upstream rejects it ({}), but it was accepted",
            m.id,
            error_file.display()
        );
        let ns = m.object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default");
        let name = m.object["metadata"]["name"].as_str().unwrap();
        let resource = resource_of(&m.object);
        let yaml = k.ok(&["get", &resource, name, "-n", ns, "-o", "yaml"]);
        let mut got: Value = serde_yaml::from_str(&yaml).expect("yaml");
        mask(&mut got);
        match std::fs::read_to_string(&golden_file) {
            Ok(text) => {
                let mut want: Value = serde_yaml::from_str(&text).expect("golden yaml");
                mask(&mut want);
                for note in tolerate_pending(&mut want, &got) {
                    eprintln!("{}: not stored yet: {note}", m.id);
                }
                if want != got {
                    failures.push(format!(
                        "{} ({}): stored object differs from upstream's.\n--- upstream\n{}\n--- ferrokube\n{}",
                        m.id,
                        m.source,
                        serde_yaml::to_string(&want).unwrap(),
                        serde_yaml::to_string(&got).unwrap()
                    ));
                }
            }
            Err(_) if bless => {
                std::fs::create_dir_all(&golden).unwrap();
                std::fs::write(&golden_file, serde_yaml::to_string(&got).unwrap()).unwrap();
            }
            Err(_) => failures.push(format!(
                "{} ({}): no golden file {}; ferrokube stores:\n{}",
                m.id,
                m.source,
                golden_file.display(),
                serde_yaml::to_string(&got).unwrap()
            )),
        }
        // Delete so later manifests with the same name start fresh.
        k.ok(&["delete", &resource, name, "-n", ns, "--wait=false"]);
    }
    // Every golden file belongs to a manifest (a removed seed leaves no stale expectation).
    if let Ok(entries) = std::fs::read_dir(&golden) {
        for e in entries.flatten() {
            let p = e.path();
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            if !found.iter().any(|m| m.id == stem) {
                failures.push(format!("{} matches no seed manifest", p.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
