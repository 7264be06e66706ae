//! The PersistentVolume controller (upstream `persistentvolume-binder`): claims are bound to
//! the smallest volume that fits (access modes, capacity, storage class, label selector,
//! volume mode), volumes go Available / Bound / Released / Failed, and released volumes are
//! reclaimed per their policy — Retain keeps them Released, Delete hands them to their
//! provisioner (in-tree deletion is not available), Recycle fails as there is no recycler.
//!
//! Claims of a class with `volumeBindingMode: WaitForFirstConsumer` wait for the scheduler
//! (which binds existing volumes itself, or picks a node in `volume.kubernetes.io/selected-node`
//! for provisioning); claims that need a new volume are handed to their class's provisioner
//! through the `volume.kubernetes.io/storage-provisioner` annotation.

use std::sync::Arc;
use std::time::Duration;

use ferrokube_api::quantity::Quantity;
use ferrokube_client::events::{EventRecorder, EventType};
use ferrokube_client::{Action, Change, Informer, WorkQueue};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimStatus,
    PersistentVolumeStatus,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::Context;
use crate::util::{self, Result};

pub const NAME: &str = "persistentvolume-binder";
const COMPONENT: &str = "persistentvolume-controller";
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
const ANN_BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

pub fn start(ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Box::pin(run(ctx))
}

fn annotation<'a>(meta: &'a kube::api::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// upstream `GetPersistentVolumeClaimClass`.
pub fn claim_class(c: &PersistentVolumeClaim) -> String {
    if let Some(a) = annotation(&c.metadata, ANN_BETA_CLASS) {
        return a.to_string();
    }
    c.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

pub fn volume_class(v: &PersistentVolume) -> String {
    if let Some(a) = annotation(&v.metadata, ANN_BETA_CLASS) {
        return a.to_string();
    }
    v.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

fn requested(c: &PersistentVolumeClaim) -> Option<Quantity> {
    c.spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Quantity::parse(&q.0).ok())
}

fn capacity(v: &PersistentVolume) -> Option<Quantity> {
    v.spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| Quantity::parse(&q.0).ok())
}

fn volume_phase(v: &PersistentVolume) -> &str {
    v.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn claim_phase(c: &PersistentVolumeClaim) -> &str {
    c.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn volume_mode_claim(c: &PersistentVolumeClaim) -> &str {
    c.spec
        .as_ref()
        .and_then(|s| s.volume_mode.as_deref())
        .unwrap_or("Filesystem")
}

fn volume_mode(v: &PersistentVolume) -> &str {
    v.spec
        .as_ref()
        .and_then(|s| s.volume_mode.as_deref())
        .unwrap_or("Filesystem")
}

/// Whether the volume's claimRef names this claim (by UID once it has one).
pub fn bound_to(v: &PersistentVolume, c: &PersistentVolumeClaim) -> bool {
    let Some(r) = v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    if r.name != c.metadata.name || r.namespace != c.metadata.namespace {
        return false;
    }
    match r.uid.as_deref() {
        None | Some("") => true,
        Some(u) => Some(u) == c.metadata.uid.as_deref(),
    }
}

fn selector_matches(c: &PersistentVolumeClaim, v: &PersistentVolume) -> bool {
    let Some(sel) = c.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return true;
    };
    let Ok(value) = serde_json::to_value(sel) else {
        return false;
    };
    let Ok(s) = ferrokube_api::selector::LabelSelector::from_structured(Some(&value)) else {
        return false;
    };
    let labels = v.metadata.labels.clone().unwrap_or_default();
    s.matches(&labels.into_iter().collect())
}

/// upstream `findMatchingVolume`: a volume pre-bound to the claim, or else the smallest
/// available volume that satisfies it. With delayed binding only pre-bound volumes count (the
/// scheduler binds the others once it picked a node).
pub fn best_match(
    claim: &PersistentVolumeClaim,
    volumes: &[Arc<PersistentVolume>],
    delay_binding: bool,
) -> Option<Arc<PersistentVolume>> {
    let want = requested(claim)?;
    let class = claim_class(claim);
    let modes = claim
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.clone())
        .unwrap_or_default();
    let mut best: Option<(Quantity, Arc<PersistentVolume>)> = None;
    for v in volumes {
        if v.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let vmodes = v
            .spec
            .as_ref()
            .and_then(|s| s.access_modes.clone())
            .unwrap_or_default();
        if !modes.iter().all(|m| vmodes.contains(m)) || volume_mode(v) != volume_mode_claim(claim) {
            continue;
        }
        let Some(cap) = capacity(v) else { continue };
        if cap < want {
            continue;
        }
        if bound_to(v, claim) {
            return Some(v.clone());
        }
        if volume_phase(v) != "Available"
            || v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).is_some()
            || !selector_matches(claim, v)
            || volume_class(v) != class
            || delay_binding
        {
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| cap < *b) {
            best = Some((cap, v.clone()));
        }
    }
    best.map(|(_, v)| v)
}

#[derive(Clone)]
pub struct PersistentVolumeController {
    pub volumes: Arc<Informer<PersistentVolume>>,
    pub claims: Arc<Informer<PersistentVolumeClaim>>,
    pub classes: Arc<Informer<StorageClass>>,
}

/// What to do with an unbound claim that has no volume.
#[derive(Debug, PartialEq, Eq)]
pub enum Waiting {
    ForFirstConsumer,
    /// For this provisioner to create a volume.
    Provisioner(String),
    MissingClass(String),
    NoClass,
}

impl PersistentVolumeController {
    fn delay_binding(&self, claim: &PersistentVolumeClaim) -> bool {
        let class = claim_class(claim);
        !class.is_empty()
            && self
                .classes
                .get(&class)
                .is_some_and(|c| c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"))
    }

    /// Why an unbound claim without a matching volume waits.
    pub fn waiting(&self, claim: &PersistentVolumeClaim) -> Waiting {
        let selected = annotation(&claim.metadata, ANN_SELECTED_NODE).is_some();
        if self.delay_binding(claim) && !selected {
            return Waiting::ForFirstConsumer;
        }
        let class = claim_class(claim);
        if class.is_empty() {
            return Waiting::NoClass;
        }
        match self.classes.get(&class) {
            Some(c) => Waiting::Provisioner(c.provisioner.clone()),
            None => Waiting::MissingClass(class),
        }
    }

    pub fn watch(&self, queue: &Arc<WorkQueue<String>>) {
        let q = queue.clone();
        self.claims
            .on_change(move |c: &Change<'_, PersistentVolumeClaim>| {
                let claim = c.object();
                q.add(format!("pvc:{}", ferrokube_client::key_of(&**claim)));
                // A deleted claim releases its volume.
                if let Change::Deleted(_) = c
                    && let Some(v) = claim.spec.as_ref().and_then(|s| s.volume_name.clone())
                {
                    q.add(format!("pv:{v}"));
                }
            });
        let q = queue.clone();
        self.volumes
            .on_change(move |c: &Change<'_, PersistentVolume>| {
                let v = c.object();
                q.add(format!("pv:{}", ferrokube_client::key_of(&**v)));
                if let Some(r) = v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
                    q.add(format!(
                        "pvc:{}/{}",
                        r.namespace.as_deref().unwrap_or(""),
                        r.name.as_deref().unwrap_or("")
                    ));
                }
            });
        let q = queue.clone();
        let claims = self.claims.clone();
        self.classes
            .on_change(move |_c: &Change<'_, StorageClass>| {
                for c in claims.list() {
                    if c.spec
                        .as_ref()
                        .and_then(|s| s.volume_name.as_deref())
                        .is_none_or(str::is_empty)
                    {
                        q.add(format!("pvc:{}", ferrokube_client::key_of(&*c)));
                    }
                }
            });
    }

    async fn set_claim_phase(
        &self,
        client: &kube::Client,
        claim: &PersistentVolumeClaim,
        phase: &str,
        volume: Option<&PersistentVolume>,
    ) -> Result<()> {
        let mut status = claim.status.clone().unwrap_or_default();
        let mut want = PersistentVolumeClaimStatus {
            phase: Some(phase.into()),
            ..status.clone()
        };
        if let Some(v) = volume {
            want.access_modes = v.spec.as_ref().and_then(|s| s.access_modes.clone());
            want.capacity = v.spec.as_ref().and_then(|s| s.capacity.clone());
        } else if phase != "Bound" {
            want.access_modes = None;
            want.capacity = None;
        }
        if want == status {
            return Ok(());
        }
        status = want;
        let mut c = claim.clone();
        c.status = Some(status);
        let api: Api<PersistentVolumeClaim> = Api::namespaced(
            client.clone(),
            c.metadata.namespace.as_deref().unwrap_or(""),
        );
        api.replace_status(
            c.metadata.name.as_deref().unwrap_or(""),
            &PostParams::default(),
            &c,
        )
        .await?;
        Ok(())
    }

    async fn set_volume_phase(
        &self,
        client: &kube::Client,
        v: &PersistentVolume,
        phase: &str,
        message: Option<&str>,
    ) -> Result<()> {
        if volume_phase(v) == phase
            && v.status.as_ref().and_then(|s| s.message.as_deref()) == message
        {
            return Ok(());
        }
        let mut v2 = v.clone();
        v2.status = Some(PersistentVolumeStatus {
            phase: Some(phase.into()),
            message: message.map(String::from),
            reason: None,
            last_phase_transition_time: Some(util::now()),
        });
        let api: Api<PersistentVolume> = Api::all(client.clone());
        api.replace_status(
            v.metadata.name.as_deref().unwrap_or(""),
            &PostParams::default(),
            &v2,
        )
        .await?;
        Ok(())
    }

    /// Binds both ways: the volume's claimRef, its phase, the claim's volumeName and status.
    async fn bind(
        &self,
        client: &kube::Client,
        volume: &PersistentVolume,
        claim: &PersistentVolumeClaim,
    ) -> Result<()> {
        let pv_api: Api<PersistentVolume> = Api::all(client.clone());
        let pv_name = volume.metadata.name.clone().unwrap_or_default();
        let ns = claim.metadata.namespace.clone().unwrap_or_default();
        let claim_name = claim.metadata.name.clone().unwrap_or_default();
        let needs_ref = !bound_to(volume, claim)
            || volume
                .spec
                .as_ref()
                .and_then(|s| s.claim_ref.as_ref())
                .and_then(|r| r.uid.as_deref())
                .is_none_or(str::is_empty);
        let mut volume = volume.clone();
        if needs_ref {
            let by_controller = volume
                .spec
                .as_ref()
                .and_then(|s| s.claim_ref.as_ref())
                .is_none();
            let mut ann = serde_json::Map::new();
            if by_controller {
                ann.insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
            }
            let reference = ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("PersistentVolumeClaim".into()),
                name: Some(claim_name.clone()),
                namespace: Some(ns.clone()),
                uid: claim.metadata.uid.clone(),
                resource_version: claim.metadata.resource_version.clone(),
                ..Default::default()
            };
            let mut patch = serde_json::json!({
                "metadata": {"resourceVersion": volume.metadata.resource_version},
                "spec": {"claimRef": reference},
            });
            if !ann.is_empty() {
                patch["metadata"]["annotations"] = serde_json::Value::Object(ann);
            }
            volume = pv_api
                .patch(&pv_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        self.set_volume_phase(client, &volume, "Bound", None)
            .await?;

        let pvc_api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
        let mut claim = claim.clone();
        let current_volume = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_default();
        let completed = annotation(&claim.metadata, ANN_BIND_COMPLETED).is_some();
        if current_volume != pv_name || !completed {
            let mut ann = serde_json::Map::new();
            ann.insert(ANN_BIND_COMPLETED.into(), "yes".into());
            if current_volume.is_empty() {
                ann.insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
            }
            let patch = serde_json::json!({
                "metadata": {"resourceVersion": claim.metadata.resource_version, "annotations": ann},
                "spec": {"volumeName": pv_name},
            });
            claim = pvc_api
                .patch(&claim_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        self.set_claim_phase(client, &claim, "Bound", Some(&volume))
            .await?;
        tracing::debug!(claim = %format!("{ns}/{claim_name}"), volume = %pv_name, "bound claim");
        Ok(())
    }

    async fn sync_claim(
        &self,
        client: &kube::Client,
        recorder: &EventRecorder,
        key: &str,
    ) -> Result<Action> {
        let Some(claim) = self.claims.get(key) else {
            return Ok(Action::AwaitChange);
        };
        let volume_name = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_default();
        if volume_name.is_empty() {
            let volumes = self.volumes.list();
            if let Some(v) = best_match(&claim, &volumes, self.delay_binding(&claim)) {
                self.bind(client, &v, &claim).await?;
                return Ok(Action::AwaitChange);
            }
            match self.waiting(&claim) {
                Waiting::ForFirstConsumer => recorder.record(
                    &*claim,
                    EventType::Normal,
                    "WaitForFirstConsumer",
                    "waiting for first consumer to be created before binding",
                ),
                Waiting::NoClass => recorder.record(
                    &*claim,
                    EventType::Normal,
                    "FailedBinding",
                    "no persistent volumes available for this claim and no storage class is set",
                ),
                Waiting::MissingClass(class) => recorder.record(
                    &*claim,
                    EventType::Warning,
                    "ProvisioningFailed",
                    &format!("storageclass.storage.k8s.io {class:?} not found"),
                ),
                Waiting::Provisioner(p) => {
                    if annotation(&claim.metadata, ANN_STORAGE_PROVISIONER) != Some(p.as_str()) {
                        let api: Api<PersistentVolumeClaim> = Api::namespaced(
                            client.clone(),
                            claim.metadata.namespace.as_deref().unwrap_or(""),
                        );
                        let patch = serde_json::json!({"metadata": {"annotations": {
                            ANN_STORAGE_PROVISIONER: p, ANN_BETA_STORAGE_PROVISIONER: p,
                        }}});
                        api.patch(
                            claim.metadata.name.as_deref().unwrap_or(""),
                            &PatchParams::default(),
                            &Patch::Merge(&patch),
                        )
                        .await?;
                    }
                    recorder.record(
                        &*claim,
                        EventType::Normal,
                        "ExternalProvisioning",
                        &format!("Waiting for a volume to be created either by the external provisioner '{p}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."),
                    );
                }
            }
            if claim_phase(&claim) != "Pending" {
                self.set_claim_phase(client, &claim, "Pending", None)
                    .await?;
            }
            return Ok(Action::AwaitChange);
        }
        let Some(volume) = self.volumes.get(&volume_name) else {
            if claim_phase(&claim) == "Bound" {
                recorder.record(
                    &*claim,
                    EventType::Warning,
                    "ClaimLost",
                    "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
                );
                self.set_claim_phase(client, &claim, "Lost", None).await?;
            }
            return Ok(Action::AwaitChange);
        };
        let free = volume
            .spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .is_none();
        if free || bound_to(&volume, &claim) {
            self.bind(client, &volume, &claim).await?;
        } else if claim_phase(&claim) != "Lost" {
            recorder.record(
                &*claim,
                EventType::Warning,
                "ClaimMisbound",
                "Two claims are bound to the same volume, this one is bound incorrectly",
            );
            self.set_claim_phase(client, &claim, "Lost", None).await?;
        }
        Ok(Action::AwaitChange)
    }

    async fn sync_volume(
        &self,
        client: &kube::Client,
        recorder: &EventRecorder,
        name: &str,
    ) -> Result<Action> {
        let Some(volume) = self.volumes.get(name) else {
            return Ok(Action::AwaitChange);
        };
        if volume.metadata.deletion_timestamp.is_some() {
            return Ok(Action::AwaitChange);
        }
        let Some(r) = volume.spec.as_ref().and_then(|s| s.claim_ref.clone()) else {
            if !matches!(volume_phase(&volume), "Available" | "Failed") {
                self.set_volume_phase(client, &volume, "Available", None)
                    .await?;
            }
            return Ok(Action::AwaitChange);
        };
        let ns = r.namespace.clone().unwrap_or_default();
        let claim_name = r.name.clone().unwrap_or_default();
        let ref_uid = r.uid.clone().unwrap_or_default();
        if ref_uid.is_empty() {
            // Reserved for a claim that has not been bound yet: the claim's sync binds.
            if volume_phase(&volume) != "Available" {
                self.set_volume_phase(client, &volume, "Available", None)
                    .await?;
            }
            return Ok(Action::AwaitChange);
        }
        let mut claim = self
            .claims
            .get_named(&ns, &claim_name)
            .map(|c| (*c).clone());
        if claim.as_ref().and_then(|c| c.metadata.uid.as_deref()) != Some(ref_uid.as_str()) {
            // The cache may lag; a volume is released only when the API agrees.
            let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
            claim = api.get_opt(&claim_name).await?;
        }
        let gone = claim
            .as_ref()
            .is_none_or(|c| c.metadata.uid.as_deref() != Some(ref_uid.as_str()));
        if !gone {
            let c = claim.expect("checked above");
            let vol = c
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.clone())
                .unwrap_or_default();
            if vol == name {
                if volume_phase(&volume) != "Bound" {
                    self.set_volume_phase(client, &volume, "Bound", None)
                        .await?;
                }
            } else if !vol.is_empty()
                && annotation(&volume.metadata, ANN_BOUND_BY_CONTROLLER).is_some()
            {
                // The claim went to another volume: give this one back.
                let api: Api<PersistentVolume> = Api::all(client.clone());
                let patch = serde_json::json!({"metadata": {"resourceVersion": volume.metadata.resource_version}, "spec": {"claimRef": null}});
                api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
            return Ok(Action::AwaitChange);
        }
        // The claim is gone: the volume is released and reclaimed per its policy.
        let policy = volume
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.clone())
            .unwrap_or_else(|| "Retain".into());
        if volume_phase(&volume) == "Failed" {
            return Ok(Action::AwaitChange);
        }
        if volume_phase(&volume) != "Released" {
            self.set_volume_phase(client, &volume, "Released", None)
                .await?;
            return Ok(Action::AwaitChange);
        }
        match policy.as_str() {
            "Retain" => {}
            "Recycle" => {
                recorder.record(
                    &*volume,
                    EventType::Warning,
                    "VolumeFailedRecycle",
                    "No recycler plugin found for the volume!",
                );
                self.set_volume_phase(
                    client,
                    &volume,
                    "Failed",
                    Some("No recycler plugin found for the volume!"),
                )
                .await?;
            }
            _ => {
                // Dynamically provisioned volumes are deleted by their provisioner.
                if annotation(&volume.metadata, ANN_PROVISIONED_BY).is_none() {
                    let msg = format!(
                        "error getting deleter volume plugin for volume {name:?}: no deletable volume plugin matched"
                    );
                    recorder.record(&*volume, EventType::Warning, "VolumeFailedDelete", &msg);
                    self.set_volume_phase(client, &volume, "Failed", Some(&msg))
                        .await?;
                }
            }
        }
        Ok(Action::AwaitChange)
    }
}

async fn run(ctx: Arc<Context>) {
    let c = PersistentVolumeController {
        volumes: ctx.informers.get::<PersistentVolume>(),
        claims: ctx.informers.get::<PersistentVolumeClaim>(),
        classes: ctx.informers.get::<StorageClass>(),
    };
    c.volumes.wait_synced().await;
    c.claims.wait_synced().await;
    c.classes.wait_synced().await;
    let queue = WorkQueue::new();
    c.watch(&queue);
    // upstream `--pvclaimbinder-sync-period`: everything is looked at again every 15 s.
    {
        let q = queue.clone();
        let c = c.clone();
        let cancel = ctx.cancel.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(15)) => {}
                }
                for v in c.volumes.list() {
                    q.add(format!("pv:{}", ferrokube_client::key_of(&*v)));
                }
                for cl in c.claims.list() {
                    q.add(format!("pvc:{}", ferrokube_client::key_of(&*cl)));
                }
            }
        });
    }
    let recorder = ctx.recorder(COMPONENT);
    let client = ctx.client.clone();
    util::run_queue(
        queue,
        ctx.config.workers,
        ctx.cancel.clone(),
        move |key: String| {
            let c = c.clone();
            let client = client.clone();
            let recorder = recorder.clone();
            async move {
                match key.split_once(':') {
                    Some(("pvc", k)) => c.sync_claim(&client, &recorder, k).await,
                    Some(("pv", k)) => c.sync_volume(&client, &recorder, k).await,
                    _ => Ok(Action::AwaitChange),
                }
            }
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub fn pv(
        name: &str,
        size: &str,
        modes: &[&str],
        class: &str,
        extra: serde_json::Value,
    ) -> Arc<PersistentVolume> {
        let mut v = json!({"metadata": {"name": name, "labels": {"tier": "gold"}},
            "spec": {"capacity": {"storage": size}, "accessModes": modes, "storageClassName": class,
                     "hostPath": {"path": "/tmp"}},
            "status": {"phase": "Available"}});
        if let Some(e) = extra.as_object() {
            for (k, x) in e {
                v["spec"][k] = x.clone();
            }
        }
        Arc::new(serde_json::from_value(v).unwrap())
    }

    pub fn pvc(
        name: &str,
        size: &str,
        modes: &[&str],
        class: Option<&str>,
    ) -> PersistentVolumeClaim {
        let mut v = json!({"metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": {"accessModes": modes, "resources": {"requests": {"storage": size}}}});
        if let Some(c) = class {
            v["spec"]["storageClassName"] = json!(c);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_smallest_volume_that_fits_wins() {
        let vols = vec![
            pv("big", "10Gi", &["ReadWriteMany"], "", json!({})),
            pv("seed", "5Gi", &["ReadWriteMany"], "", json!({})),
            pv("tiny", "1Gi", &["ReadWriteMany"], "", json!({})),
            pv("rwo", "4Gi", &["ReadWriteOnce"], "", json!({})),
            pv("other-class", "4Gi", &["ReadWriteMany"], "fast", json!({})),
        ];
        let claim = pvc("myclaim001", "3Gi", &["ReadWriteMany"], None);
        assert_eq!(
            best_match(&claim, &vols, false)
                .unwrap()
                .metadata
                .name
                .as_deref(),
            Some("seed")
        );
        let fast = pvc("f", "3Gi", &["ReadWriteMany"], Some("fast"));
        assert_eq!(
            best_match(&fast, &vols, false)
                .unwrap()
                .metadata
                .name
                .as_deref(),
            Some("other-class")
        );
        let huge = pvc("h", "20Gi", &["ReadWriteMany"], None);
        assert!(best_match(&huge, &vols, false).is_none());
        assert!(
            best_match(&claim, &vols, true).is_none(),
            "delayed binding leaves it to the scheduler"
        );
    }

    #[test]
    fn pre_bound_volumes_and_selectors_are_honoured() {
        let claim = pvc("c", "1Gi", &["ReadWriteOnce"], None);
        let pre = pv(
            "pre",
            "8Gi",
            &["ReadWriteOnce"],
            "",
            json!({"claimRef": {"name": "c", "namespace": "default"}}),
        );
        let small = pv("small", "1Gi", &["ReadWriteOnce"], "", json!({}));
        let vols = vec![small, pre];
        assert_eq!(
            best_match(&claim, &vols, true)
                .unwrap()
                .metadata
                .name
                .as_deref(),
            Some("pre")
        );
        let mut sel = pvc("s", "1Gi", &["ReadWriteOnce"], None);
        sel.spec.as_mut().unwrap().selector =
            Some(serde_json::from_value(json!({"matchLabels": {"tier": "silver"}})).unwrap());
        assert!(best_match(&sel, &vols[..1], false).is_none());
    }

    #[test]
    fn unbound_claims_say_what_they_wait_for() {
        let c = PersistentVolumeController {
            volumes: Informer::detached(),
            claims: Informer::detached(),
            classes: Informer::detached(),
        };
        c.classes.apply(serde_json::from_value(json!({"metadata": {"name": "local-path"}, "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"})).unwrap());
        let mut claim = pvc("c", "1Gi", &["ReadWriteOnce"], Some("local-path"));
        assert_eq!(c.waiting(&claim), Waiting::ForFirstConsumer);
        claim.metadata.annotations =
            Some([(ANN_SELECTED_NODE.to_string(), "n1".to_string())].into());
        assert_eq!(
            c.waiting(&claim),
            Waiting::Provisioner("rancher.io/local-path".into())
        );
        assert_eq!(c.waiting(&pvc("x", "1Gi", &[], None)), Waiting::NoClass);
        assert_eq!(
            c.waiting(&pvc("x", "1Gi", &[], Some("nope"))),
            Waiting::MissingClass("nope".into())
        );
    }
}
