//! The local-path provisioner, as k3s ships it (`rancher.io/local-path`): a default
//! StorageClass `local-path` (WaitForFirstConsumer, reclaim Delete) is created at startup, and
//! claims handed to the provisioner get a hostPath PersistentVolume
//! `<base dir>/pvc-<uid>_<namespace>_<claim>` (type DirectoryOrCreate: the kubelet makes the
//! directory) pinned to the node the scheduler selected. Released volumes of this provisioner
//! with reclaim policy Delete are deleted (and their directory removed when it is on this
//! machine).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrokube_client::events::{EventRecorder, EventType};
use ferrokube_client::{Action, Change, Informer, WorkQueue};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec,
    VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ObjectMeta, PostParams};

use crate::Context;
use crate::persistent_volume::{
    ANN_BETA_STORAGE_PROVISIONER, ANN_PROVISIONED_BY, ANN_SELECTED_NODE, ANN_STORAGE_PROVISIONER,
    claim_class,
};
use crate::util::{self, Result};

pub const NAME: &str = "local-path-provisioner";
pub const PROVISIONER: &str = "rancher.io/local-path";
pub const CLASS: &str = "local-path";
const ANN_SELECTED_NODE_LOCAL: &str = "local.path.provisioner/selected-node";
const IS_DEFAULT: &str = "storageclass.kubernetes.io/is-default-class";

pub fn start(ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Box::pin(run(ctx))
}

/// The StorageClass k3s installs.
pub fn default_class() -> StorageClass {
    StorageClass {
        metadata: ObjectMeta {
            name: Some(CLASS.into()),
            annotations: Some(BTreeMap::from([(
                IS_DEFAULT.to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        provisioner: PROVISIONER.into(),
        reclaim_policy: Some("Delete".into()),
        volume_binding_mode: Some("WaitForFirstConsumer".into()),
        ..Default::default()
    }
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

#[derive(Clone)]
pub struct LocalPathProvisioner {
    pub claims: Arc<Informer<PersistentVolumeClaim>>,
    pub volumes: Arc<Informer<PersistentVolume>>,
    pub classes: Arc<Informer<StorageClass>>,
    pub nodes: Arc<Informer<Node>>,
    pub base_dir: PathBuf,
}

/// What the provisioner does for a claim.
#[derive(Debug, PartialEq)]
pub enum Provision {
    Nothing,
    Create(Box<PersistentVolume>),
    Fail(String),
}

impl LocalPathProvisioner {
    fn ours(&self, claim: &PersistentVolumeClaim) -> Option<Arc<StorageClass>> {
        let class = self.classes.get(&claim_class(claim))?;
        (class.provisioner == PROVISIONER).then_some(class)
    }

    /// The volume a claim should get, if it is this provisioner's to provision now.
    pub fn plan(&self, claim: &PersistentVolumeClaim) -> Provision {
        if claim.metadata.deletion_timestamp.is_some()
            || claim
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .is_some_and(|v| !v.is_empty())
        {
            return Provision::Nothing;
        }
        let Some(class) = self.ours(claim) else {
            return Provision::Nothing;
        };
        let asked = annotation(&claim.metadata, ANN_STORAGE_PROVISIONER)
            .or_else(|| annotation(&claim.metadata, ANN_BETA_STORAGE_PROVISIONER));
        if asked != Some(PROVISIONER) {
            return Provision::Nothing;
        }
        let uid = claim.metadata.uid.clone().unwrap_or_default();
        let pv_name = format!("pvc-{uid}");
        if self.volumes.get(&pv_name).is_some() {
            return Provision::Nothing;
        }
        let Some(node) = annotation(&claim.metadata, ANN_SELECTED_NODE) else {
            return Provision::Fail("configuration error, no node was specified".into());
        };
        let spec = claim.spec.clone().unwrap_or_default();
        if spec.selector.is_some() {
            return Provision::Fail("claim.Spec.Selector is not supported".into());
        }
        let Some(size) = spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage").cloned())
        else {
            return Provision::Fail("claim has no storage request".into());
        };
        let ns = claim.metadata.namespace.clone().unwrap_or_default();
        let name = claim.metadata.name.clone().unwrap_or_default();
        let path = self.base_dir.join(format!("{pv_name}_{ns}_{name}"));
        // The node affinity names the node by its hostname label, as local-path does.
        let host = self
            .nodes
            .get(node)
            .and_then(|n| {
                n.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("kubernetes.io/hostname").cloned())
            })
            .unwrap_or_else(|| node.to_string());
        let pv = PersistentVolume {
            metadata: ObjectMeta {
                name: Some(pv_name),
                annotations: Some(BTreeMap::from([
                    (ANN_PROVISIONED_BY.to_string(), PROVISIONER.to_string()),
                    (ANN_SELECTED_NODE_LOCAL.to_string(), node.to_string()),
                ])),
                ..Default::default()
            },
            spec: Some(PersistentVolumeSpec {
                capacity: Some(BTreeMap::from([("storage".to_string(), size)])),
                access_modes: spec.access_modes.clone(),
                persistent_volume_reclaim_policy: Some(
                    class
                        .reclaim_policy
                        .clone()
                        .unwrap_or_else(|| "Delete".into()),
                ),
                storage_class_name: Some(claim_class(claim)),
                volume_mode: Some(
                    spec.volume_mode
                        .clone()
                        .unwrap_or_else(|| "Filesystem".into()),
                ),
                claim_ref: Some(ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("PersistentVolumeClaim".into()),
                    name: Some(name),
                    namespace: Some(ns),
                    uid: Some(uid),
                    resource_version: claim.metadata.resource_version.clone(),
                    ..Default::default()
                }),
                host_path: Some(HostPathVolumeSource {
                    path: path.display().to_string(),
                    type_: Some("DirectoryOrCreate".into()),
                }),
                node_affinity: Some(VolumeNodeAffinity {
                    required: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_expressions: Some(vec![NodeSelectorRequirement {
                                key: "kubernetes.io/hostname".into(),
                                operator: "In".into(),
                                values: Some(vec![host]),
                            }]),
                            match_fields: None,
                        }],
                    }),
                }),
                mount_options: class.mount_options.clone(),
                ..Default::default()
            }),
            status: None,
        };
        Provision::Create(Box::new(pv))
    }

    /// Whether a volume of ours is released and to be deleted.
    pub fn to_delete(&self, v: &PersistentVolume) -> bool {
        annotation(&v.metadata, ANN_PROVISIONED_BY) == Some(PROVISIONER)
            && v.metadata.deletion_timestamp.is_none()
            && v.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released")
            && v.spec
                .as_ref()
                .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
                == Some("Delete")
    }

    pub fn watch(&self, queue: &Arc<WorkQueue<String>>) {
        let q = queue.clone();
        self.claims
            .on_change(move |c: &Change<'_, PersistentVolumeClaim>| {
                if !matches!(c, Change::Deleted(_)) {
                    q.add(format!("pvc:{}", ferrokube_client::key_of(&**c.object())));
                }
            });
        let q = queue.clone();
        self.volumes
            .on_change(move |c: &Change<'_, PersistentVolume>| {
                if !matches!(c, Change::Deleted(_)) {
                    q.add(format!("pv:{}", ferrokube_client::key_of(&**c.object())));
                }
            });
    }

    /// Removes a provisioned directory if it exists on this machine (nodes of `ferrokube up`
    /// share it); only paths under the base directory named as provisioned volumes.
    fn remove_dir(&self, v: &PersistentVolume) {
        let Some(p) = v
            .spec
            .as_ref()
            .and_then(|s| s.host_path.as_ref())
            .map(|h| PathBuf::from(&h.path))
        else {
            return;
        };
        let named = p
            .file_name()
            .and_then(|f| f.to_str())
            .is_some_and(|f| f.starts_with("pvc-"));
        if named
            && p.parent() == Some(self.base_dir.as_path())
            && p.is_dir()
            && let Err(e) = std::fs::remove_dir_all(&p)
        {
            tracing::warn!(path = %p.display(), error = %e, "could not remove a deleted volume's directory");
        }
    }

    async fn sync(
        &self,
        client: &kube::Client,
        recorder: &EventRecorder,
        key: &str,
    ) -> Result<Action> {
        if let Some(name) = key.strip_prefix("pv:") {
            let Some(v) = self.volumes.get(name) else {
                return Ok(Action::AwaitChange);
            };
            if self.to_delete(&v) {
                self.remove_dir(&v);
                let api: Api<PersistentVolume> = Api::all(client.clone());
                match api.delete(name, &Default::default()).await {
                    Ok(_) => tracing::info!(volume = name, "deleted released local-path volume"),
                    Err(e) if util::is_not_found(&e) => {}
                    Err(e) => {
                        recorder.record(
                            &*v,
                            EventType::Warning,
                            "VolumeFailedDelete",
                            &e.to_string(),
                        );
                        return Err(e.into());
                    }
                }
            }
            return Ok(Action::AwaitChange);
        }
        let Some(k) = key.strip_prefix("pvc:") else {
            return Ok(Action::AwaitChange);
        };
        let Some(claim) = self.claims.get(k) else {
            return Ok(Action::AwaitChange);
        };
        match self.plan(&claim) {
            Provision::Nothing => Ok(Action::AwaitChange),
            Provision::Fail(why) => {
                recorder.record(
                    &*claim,
                    EventType::Warning,
                    "ProvisioningFailed",
                    &format!(
                        "failed to provision volume with StorageClass {:?}: {why}",
                        claim_class(&claim)
                    ),
                );
                Ok(Action::AwaitChange)
            }
            Provision::Create(pv) => {
                recorder.record(
                    &*claim,
                    EventType::Normal,
                    "Provisioning",
                    &format!("External provisioner is provisioning volume for claim \"{k}\""),
                );
                let api: Api<PersistentVolume> = Api::all(client.clone());
                let name = pv.metadata.name.clone().unwrap_or_default();
                match api.create(&PostParams::default(), &pv).await {
                    Ok(_) => recorder.record(
                        &*claim,
                        EventType::Normal,
                        "ProvisioningSucceeded",
                        &format!("Successfully provisioned volume {name}"),
                    ),
                    Err(e) if util::is_conflict(&e) => {}
                    Err(e) => {
                        recorder.record(
                            &*claim,
                            EventType::Warning,
                            "ProvisioningFailed",
                            &format!(
                                "failed to provision volume with StorageClass {:?}: {e}",
                                claim_class(&claim)
                            ),
                        );
                        return Err(e.into());
                    }
                }
                Ok(Action::AwaitChange)
            }
        }
    }
}

/// Creates the default StorageClass unless a class of that name exists (as k3s applies its
/// manifest at startup; a deleted class stays deleted until the next start).
pub async fn ensure_default_class(client: &kube::Client) -> Result<()> {
    let api: Api<StorageClass> = Api::all(client.clone());
    match api.create(&PostParams::default(), &default_class()).await {
        Ok(_) => Ok(()),
        Err(e) if util::is_conflict(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn run(ctx: Arc<Context>) {
    if ctx.config.default_storage_class {
        for attempt in 0..30 {
            match ensure_default_class(&ctx.client).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::debug!(attempt, error = %e, "could not create the default StorageClass yet");
                    tokio::select! {
                        _ = ctx.cancel.cancelled() => return,
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }
    let c = LocalPathProvisioner {
        claims: ctx.informers.get::<PersistentVolumeClaim>(),
        volumes: ctx.informers.get::<PersistentVolume>(),
        classes: ctx.informers.get::<StorageClass>(),
        nodes: ctx.informers.get::<Node>(),
        base_dir: ctx.config.local_path_dir.clone(),
    };
    c.claims.wait_synced().await;
    c.volumes.wait_synced().await;
    c.classes.wait_synced().await;
    c.nodes.wait_synced().await;
    let queue = WorkQueue::new();
    c.watch(&queue);
    let identity = format!(
        "{PROVISIONER}_{}_{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "ferrokube".into()),
        uuid_like()
    );
    let recorder = ctx.recorder(&identity);
    let client = ctx.client.clone();
    util::run_queue(
        queue,
        ctx.config.workers,
        ctx.cancel.clone(),
        move |key: String| {
            let c = c.clone();
            let client = client.clone();
            let recorder = recorder.clone();
            async move { c.sync(&client, &recorder, &key).await }
        },
    )
    .await;
}

/// A random identity suffix, as sig-storage-lib-external-provisioner gives each instance.
fn uuid_like() -> String {
    use rand::Rng;
    let mut r = rand::rng();
    let b: [u8; 16] = r.random();
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0],
        b[1],
        b[2],
        b[3],
        b[4],
        b[5],
        b[6],
        b[7],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

/// The directory a claim's volume lives in.
pub fn volume_dir(base: &Path, claim_uid: &str, ns: &str, name: &str) -> PathBuf {
    base.join(format!("pvc-{claim_uid}_{ns}_{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provisioner() -> LocalPathProvisioner {
        let p = LocalPathProvisioner {
            claims: Informer::detached(),
            volumes: Informer::detached(),
            classes: Informer::detached(),
            nodes: Informer::detached(),
            base_dir: PathBuf::from("/var/lib/ferrokube/storage"),
        };
        p.classes.apply(default_class());
        p
    }

    fn claim(annotations: serde_json::Value) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "default", "uid": "1234", "annotations": annotations},
            "spec": {"storageClassName": "local-path", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "2Gi"}}}
        }))
        .unwrap()
    }

    #[test]
    fn claims_handed_over_with_a_node_get_a_pinned_host_path_volume() {
        let p = provisioner();
        assert_eq!(
            p.plan(&claim(json!({}))),
            Provision::Nothing,
            "not handed over yet"
        );
        assert_eq!(
            p.plan(&claim(json!({ANN_STORAGE_PROVISIONER: PROVISIONER}))),
            Provision::Fail("configuration error, no node was specified".into())
        );
        let Provision::Create(pv) = p.plan(&claim(
            json!({ANN_STORAGE_PROVISIONER: PROVISIONER, ANN_SELECTED_NODE: "node-1"}),
        )) else {
            panic!("expected a volume");
        };
        assert_eq!(pv.metadata.name.as_deref(), Some("pvc-1234"));
        let spec = pv.spec.unwrap();
        let hp = spec.host_path.unwrap();
        assert_eq!(hp.path, "/var/lib/ferrokube/storage/pvc-1234_default_data");
        assert_eq!(hp.type_.as_deref(), Some("DirectoryOrCreate"));
        assert_eq!(spec.claim_ref.unwrap().uid.as_deref(), Some("1234"));
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        let term = &spec
            .node_affinity
            .unwrap()
            .required
            .unwrap()
            .node_selector_terms[0];
        assert_eq!(
            term.match_expressions.as_ref().unwrap()[0].values,
            Some(vec!["node-1".to_string()])
        );
        assert_eq!(
            volume_dir(Path::new("/b"), "u", "n", "c"),
            PathBuf::from("/b/pvc-u_n_c")
        );
    }
}
