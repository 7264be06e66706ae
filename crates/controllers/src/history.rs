//! ControllerRevisions, as upstream's `controller/history`: snapshots of a workload's pod
//! template (a strategic merge patch that replaces `spec.template`), named
//! `<owner>-<hash>`, numbered by revision, labelled with `controller-revision-hash`. DaemonSets
//! and StatefulSets keep them for rollouts, `kubectl rollout history` and `rollout undo`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{Value, json};

use crate::deployment::util::{fnv32a, safe_encode};

/// The label carrying a revision's hash on revisions and pods.
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";

/// The patch a revision stores: `{"spec":{"template":{..., "$patch":"replace"}}}`, keys
/// sorted as Go encodes maps.
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Some(o) = t.as_object_mut() {
        o.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// FNV-1 (not 1a), 32 bits, as `hash/fnv.New32`.
fn fnv32(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in data {
        h = h.wrapping_mul(0x01000193);
        h ^= *b as u32;
    }
    h
}

/// `HashControllerRevision`: FNV-1 of the data and the collision count.
pub fn hash_revision(data: &Value, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(data).unwrap_or_default();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(c.to_string().as_bytes());
    }
    safe_encode(&fnv32(&bytes).to_string())
}

/// `ControllerRevisionName`.
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let p = if prefix.len() > 223 {
        &prefix[..223]
    } else {
        prefix
    };
    format!("{p}-{hash}")
}

/// `NewControllerRevision`.
pub fn new_revision(
    owner: OwnerReference,
    namespace: &str,
    template_labels: Option<&BTreeMap<String, String>>,
    data: Value,
    revision: i64,
    collision_count: Option<i32>,
) -> ControllerRevision {
    let hash = hash_revision(&data, collision_count);
    let mut labels = template_labels.cloned().unwrap_or_default();
    labels.insert(CONTROLLER_REVISION_HASH.into(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(&owner.name, &hash)),
            namespace: Some(namespace.into()),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

pub fn data(r: &ControllerRevision) -> Option<&Value> {
    r.data.as_ref().map(|d| &d.0)
}

/// Sorts by revision, then creation time, then name (`byRevision`).
pub fn sort_by_revision(rs: &mut [ControllerRevision]) {
    rs.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| crate::controller_utils::by_creation(&a.metadata, &b.metadata))
    });
}

pub fn max_revision(rs: &[ControllerRevision]) -> i64 {
    rs.iter().map(|r| r.revision).max().unwrap_or(0)
}

/// Kept for callers that hash pod templates like Deployments do (DaemonSet revision names).
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut data = serde_json::to_vec(template).unwrap_or_default();
    if let Some(c) = collision_count {
        data.extend_from_slice(&(c as u32).to_le_bytes());
    }
    safe_encode(&fnv32a(&data).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_are_named_by_the_hash_of_their_data() {
        let t = PodTemplateSpec::default();
        let d = template_patch(&t);
        assert_eq!(d["spec"]["template"]["$patch"], "replace");
        let a = hash_revision(&d, None);
        assert_ne!(a, hash_revision(&d, Some(1)));
        assert_eq!(fnv32(b""), 0x811c9dc5);
        assert_eq!(fnv32(b"a"), 0x050c5d7e);
        assert_eq!(revision_name("web", &a), format!("web-{a}"));
    }
}
