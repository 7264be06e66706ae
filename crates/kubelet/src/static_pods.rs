//! Static pods: manifests in `--pod-manifest-path` (default `DATA_DIR/agent/manifests`) run on
//! this node with or without an API server, named `<name>-<node>`, and appear in the API as
//! mirror pods. The directory is read again every `--file-check-frequency`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use sha2::Digest;
use tokio_util::sync::CancellationToken;

use crate::kubelet::{CONFIG_HASH_ANNOTATION, CONFIG_SOURCE_ANNOTATION, Kubelet};

/// Reads one manifest into the pod the kubelet runs: defaulted as the API server would, named
/// for this node, its uid a hash of the manifest and the node (stable across restarts).
pub fn load_manifest(path: &Path, node: &str) -> Result<Vec<Pod>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut pods = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let mut v: serde_json::Value =
            serde::Deserialize::deserialize(doc).map_err(|e| format!("{}: {e}", path.display()))?;
        if v.is_null() {
            continue;
        }
        if v.get("kind").and_then(|k| k.as_str()) != Some("Pod") {
            return Err(format!(
                "{}: only kind Pod can be a static pod",
                path.display()
            ));
        }
        let name = v
            .pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .ok_or_else(|| format!("{}: metadata.name is required", path.display()))?
            .to_string();
        let full = format!("{name}-{node}");
        let mut hasher = sha2::Sha256::new();
        hasher.update(node.as_bytes());
        hasher.update(serde_json::to_vec(&v).unwrap_or_default());
        let digest = hasher.finalize();
        let hash: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        let meta = v["metadata"]
            .as_object_mut()
            .ok_or("metadata must be an object")?;
        meta.insert("name".into(), full.into());
        if meta
            .get("namespace")
            .and_then(|n| n.as_str())
            .is_none_or(|n| n.is_empty())
        {
            meta.insert("namespace".into(), "default".into());
        }
        meta.insert("uid".into(), hash.clone().into());
        let ann = meta
            .entry("annotations")
            .or_insert_with(|| serde_json::json!({}));
        ann["kubernetes.io/config.source"] = "file".into();
        ann[CONFIG_HASH_ANNOTATION] = hash.clone().into();
        ann["kubernetes.io/config.seen"] = crate::clock::now().to_string().into();
        let _ = CONFIG_SOURCE_ANNOTATION;
        v["spec"]["nodeName"] = node.into();
        // Static pods tolerate every NoExecute taint, as upstream gives them.
        let tolerations = v["spec"]
            .as_object_mut()
            .ok_or("spec must be an object")?
            .entry("tolerations")
            .or_insert_with(|| serde_json::json!([]));
        if let Some(list) = tolerations.as_array_mut() {
            list.push(serde_json::json!({"operator": "Exists", "effect": "NoExecute"}));
        }
        ferrokube_api::defaults::apply("", "v1", "Pod", &mut v);
        let mut pod: Pod =
            serde_json::from_value(v).map_err(|e| format!("{}: {e}", path.display()))?;
        if pod.status.is_none() {
            pod.status = Some(Default::default());
        }
        pods.push(pod);
    }
    Ok(pods)
}

/// Reads every manifest in `dir` (files that fail are reported and skipped).
pub fn load_dir(dir: &Path, node: &str) -> Vec<Pod> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    let mut pods = Vec::new();
    for p in paths {
        match load_manifest(&p, node) {
            Ok(list) => pods.extend(list),
            Err(e) => tracing::warn!(error = %e, "could not read a static pod manifest"),
        }
    }
    pods
}

/// Keeps the kubelet's static pods in step with the directory until `cancel` fires.
pub async fn run(kubelet: Arc<Kubelet>, dir: PathBuf, cancel: CancellationToken) {
    let _ = std::fs::create_dir_all(&dir);
    let mut interval = tokio::time::interval(kubelet.config().file_check_frequency);
    let mut last: Option<Vec<(String, String)>> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = interval.tick() => {}
        }
        let pods = load_dir(&dir, kubelet.node_name());
        let fingerprint: Vec<(String, String)> = pods
            .iter()
            .map(|p| {
                (
                    p.metadata.uid.clone().unwrap_or_default(),
                    p.metadata.name.clone().unwrap_or_default(),
                )
            })
            .collect();
        if last.as_ref() != Some(&fingerprint) {
            kubelet.set_static_pods(pods);
            last = Some(fingerprint);
        }
        kubelet.set_files_synced(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_become_defaulted_pods_named_for_the_node() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.yaml");
        std::fs::write(
            &p,
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: static-web\nspec:\n  containers:\n  - name: web\n    image: busybox:1.35\n",
        )
        .unwrap();
        let pods = load_manifest(&p, "node1").unwrap();
        assert_eq!(pods.len(), 1);
        let pod = &pods[0];
        assert_eq!(pod.metadata.name.as_deref(), Some("static-web-node1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("node1"));
        assert_eq!(
            spec.restart_policy.as_deref(),
            Some("Always"),
            "API defaults applied"
        );
        assert_eq!(
            spec.containers[0].image_pull_policy.as_deref(),
            Some("IfNotPresent")
        );
        let again = load_manifest(&p, "node1").unwrap();
        assert_eq!(again[0].metadata.uid, pod.metadata.uid, "the uid is stable");
        let other = load_manifest(&p, "node2").unwrap();
        assert_ne!(other[0].metadata.uid, pod.metadata.uid);
        std::fs::write(dir.path().join("bad.yaml"), "kind: Service\n").unwrap();
        assert_eq!(load_dir(dir.path(), "node1").len(), 1);
    }
}
