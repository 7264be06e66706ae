//! VolumeBinding: pods with PersistentVolumeClaims fit nodes their volumes can be used from.
//! Bound claims must point at an existing PV whose node affinity matches; unbound claims of a
//! WaitForFirstConsumer class are matched to an available PV on the node (or left to dynamic
//! provisioning); unbound claims of an Immediate class wait for the PV controller. PreBind
//! writes the decision through the API (PV `claimRef`, or the PVC's
//! `volume.kubernetes.io/selected-node` annotation) and waits until the claims are bound.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferrokube_api::quantity::Quantity;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, Patch, PatchParams};
use parking_lot::Mutex;

use crate::framework::selector::CompiledNodeSelector;
use crate::framework::types::pod_pvc_names;
use crate::framework::*;

pub const NAME: &str = "VolumeBinding";
pub const ERR_REASON_BIND_CONFLICT: &str =
    "node(s) didn't find available persistent volumes to bind";
pub const ERR_REASON_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
pub const ERR_REASON_PV_NOT_EXIST: &str =
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";
pub const ERR_UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";
const STATE_KEY: &str = "PreFilterVolumeBinding";
const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

pub struct VolumeBinding {
    listers: Listers,
    bind_timeout: Duration,
    /// PV name -> claim key, for PVs promised to pods that are not bound yet.
    assumed: Mutex<HashMap<String, String>>,
}

impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        NAME
    }
}

/// What one node would need: static PV bindings and claims to provision.
#[derive(Clone, Debug, Default)]
struct NodeDecision {
    bindings: Vec<(Arc<PersistentVolumeClaim>, String)>,
    provision: Vec<Arc<PersistentVolumeClaim>>,
}

#[derive(Clone, Default)]
struct State {
    bound: Vec<Arc<PersistentVolumeClaim>>,
    to_bind: Vec<Arc<PersistentVolumeClaim>>,
    decisions: Arc<Mutex<HashMap<String, NodeDecision>>>,
    chosen: Option<NodeDecision>,
}

fn claim_key(c: &PersistentVolumeClaim) -> String {
    format!(
        "{}/{}",
        c.metadata.namespace.as_deref().unwrap_or(""),
        c.metadata.name.as_deref().unwrap_or("")
    )
}

fn storage_request(c: &PersistentVolumeClaim) -> i64 {
    c.spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Quantity::parse(&q.0).ok())
        .map(|q| q.value())
        .unwrap_or(0)
}

fn pv_capacity(pv: &PersistentVolume) -> i64 {
    pv.spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| Quantity::parse(&q.0).ok())
        .map(|q| q.value())
        .unwrap_or(0)
}

fn pv_fits_node(pv: &PersistentVolume, node: &NodeInfo) -> bool {
    match pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    {
        None => true,
        Some(req) => CompiledNodeSelector::compile(req).matches(node.name(), node.labels()),
    }
}

fn class_of(c: &PersistentVolumeClaim) -> String {
    c.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

impl VolumeBinding {
    fn pv_matches_claim(
        &self,
        pv: &PersistentVolume,
        claim: &PersistentVolumeClaim,
        taken: &HashSet<String>,
    ) -> bool {
        let name = pv.metadata.name.clone().unwrap_or_default();
        let Some(spec) = pv.spec.as_ref() else {
            return false;
        };
        if taken.contains(&name) || pv.metadata.deletion_timestamp.is_some() {
            return false;
        }
        if let Some(r) = spec.claim_ref.as_ref()
            && (r.name.as_deref() != claim.metadata.name.as_deref()
                || r.namespace.as_deref() != claim.metadata.namespace.as_deref())
        {
            return false;
        }
        if let Some(owner) = self.assumed.lock().get(&name)
            && owner != &claim_key(claim)
        {
            return false;
        }
        let phase = pv
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Available");
        if phase != "Available" && phase != "Pending" {
            return false;
        }
        if spec.storage_class_name.clone().unwrap_or_default() != class_of(claim) {
            return false;
        }
        let cspec = claim.spec.as_ref();
        let want_modes = cspec
            .and_then(|s| s.access_modes.clone())
            .unwrap_or_default();
        let have_modes = spec.access_modes.clone().unwrap_or_default();
        if !want_modes.iter().all(|m| have_modes.contains(m)) {
            return false;
        }
        let vm = |v: Option<&String>| v.map(String::as_str).unwrap_or("Filesystem").to_string();
        if vm(cspec.and_then(|s| s.volume_mode.as_ref())) != vm(spec.volume_mode.as_ref()) {
            return false;
        }
        pv_capacity(pv) >= storage_request(claim)
    }
}

impl PreFilterPlugin for VolumeBinding {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let names = pod_pvc_names(&pod.pod);
        if names.is_empty() {
            return (None, Status::skip());
        }
        let mut s = State::default();
        for n in names {
            let Some(c) = self.listers.pvcs.get_named(pod.namespace(), &n) else {
                return (
                    None,
                    Status::unresolvable(format!("persistentvolumeclaim \"{n}\" not found")),
                );
            };
            if c.metadata.deletion_timestamp.is_some() {
                return (
                    None,
                    Status::unresolvable(format!("persistentvolumeclaim \"{n}\" is being deleted")),
                );
            }
            let bound = c
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .is_some_and(|v| !v.is_empty());
            if bound {
                s.bound.push(c);
                continue;
            }
            let delayed = self
                .listers
                .storage_classes
                .get(&class_of(&c))
                .is_some_and(|sc| {
                    sc.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer")
                });
            if !delayed {
                return (None, Status::unresolvable(ERR_UNBOUND_IMMEDIATE));
            }
            s.to_bind.push(c);
        }
        state.write(STATE_KEY, s);
        (None, Status::success())
    }
}

impl FilterPlugin for VolumeBinding {
    fn filter(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<State>(STATE_KEY) else {
            return Status::success();
        };
        for c in &s.bound {
            let pv_name = c
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.clone())
                .unwrap_or_default();
            let Some(pv) = self.listers.pvs.get(&pv_name) else {
                return Status::unresolvable(ERR_REASON_PV_NOT_EXIST);
            };
            if !pv_fits_node(&pv, node) {
                return Status::unresolvable(ERR_REASON_NODE_CONFLICT);
            }
        }
        if s.to_bind.is_empty() {
            return Status::success();
        }
        let mut decision = NodeDecision::default();
        let mut taken = HashSet::new();
        let pvs = self.listers.pvs.list();
        for c in &s.to_bind {
            let mut candidates: Vec<&Arc<PersistentVolume>> = pvs
                .iter()
                .filter(|pv| self.pv_matches_claim(pv, c, &taken) && pv_fits_node(pv, node))
                .collect();
            // The smallest PV that fits, as upstream's FindMatchingVolume.
            candidates.sort_by_key(|pv| pv_capacity(pv));
            if let Some(pv) = candidates.first() {
                let name = pv.metadata.name.clone().unwrap_or_default();
                taken.insert(name.clone());
                decision.bindings.push((c.clone(), name));
                continue;
            }
            let sc = self.listers.storage_classes.get(&class_of(c));
            let can_provision = sc.as_ref().is_some_and(|sc| {
                sc.provisioner != NO_PROVISIONER
                    && sc.allowed_topologies.as_ref().is_none_or(|tops| {
                        tops.is_empty()
                            || tops.iter().any(|t| {
                                t.match_label_expressions.iter().flatten().all(|e| {
                                    node.labels()
                                        .get(&e.key)
                                        .is_some_and(|v| e.values.contains(v))
                                })
                            })
                    })
            });
            if !can_provision {
                return Status::unresolvable(ERR_REASON_BIND_CONFLICT);
            }
            decision.provision.push(c.clone());
        }
        s.decisions.lock().insert(node.name().to_string(), decision);
        Status::success()
    }
}

impl ReservePlugin for VolumeBinding {
    fn reserve(&self, state: &mut CycleState, _: &PodInfo, node: &str) -> Status {
        let Some(s) = state.read_mut::<State>(STATE_KEY) else {
            return Status::success();
        };
        let d = s.decisions.lock().get(node).cloned();
        if let Some(d) = &d {
            let mut a = self.assumed.lock();
            for (c, pv) in &d.bindings {
                a.insert(pv.clone(), claim_key(c));
            }
        }
        s.chosen = d;
        Status::success()
    }

    fn unreserve(&self, state: &mut CycleState, _: &PodInfo, _: &str) {
        if let Some(s) = state.read_mut::<State>(STATE_KEY)
            && let Some(d) = s.chosen.take()
        {
            let mut a = self.assumed.lock();
            for (_, pv) in &d.bindings {
                a.remove(pv);
            }
        }
    }
}

#[async_trait]
impl PreBindPlugin for VolumeBinding {
    async fn pre_bind(
        &self,
        handle: &Handle,
        state: &CycleState,
        _: &PodInfo,
        node: &str,
    ) -> Status {
        let Some(s) = state.read::<State>(STATE_KEY) else {
            return Status::skip();
        };
        let Some(d) = s.chosen.clone() else {
            return Status::success();
        };
        if d.bindings.is_empty() && d.provision.is_empty() {
            return Status::success();
        }
        let pvs: Api<PersistentVolume> = Api::all(handle.client.clone());
        for (c, pv) in &d.bindings {
            let patch = serde_json::json!({"spec": {"claimRef": {
                "kind": "PersistentVolumeClaim", "apiVersion": "v1",
                "namespace": c.metadata.namespace, "name": c.metadata.name, "uid": c.metadata.uid}}});
            if let Err(e) = pvs
                .patch(pv, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                return Status::error(format!("binding volume {pv:?}: {e}"));
            }
        }
        for c in &d.provision {
            let api: Api<PersistentVolumeClaim> = Api::namespaced(
                handle.client.clone(),
                c.metadata.namespace.as_deref().unwrap_or(""),
            );
            let patch = serde_json::json!({"metadata": {"annotations": {SELECTED_NODE: node}}});
            if let Err(e) = api
                .patch(
                    c.metadata.name.as_deref().unwrap_or(""),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                return Status::error(format!("selecting node for {}: {e}", claim_key(c)));
            }
        }
        // Wait for the PV controller (and provisioner) to finish binding the claims.
        let claims: Vec<_> = d
            .bindings
            .iter()
            .map(|(c, _)| c.clone())
            .chain(d.provision.iter().cloned())
            .collect();
        let deadline = tokio::time::Instant::now() + self.bind_timeout;
        loop {
            let all_bound = claims.iter().all(|c| {
                self.listers
                    .pvcs
                    .get(&claim_key(c))
                    .and_then(|c| c.spec.as_ref().and_then(|s| s.volume_name.clone()))
                    .is_some_and(|v| !v.is_empty())
            });
            if all_bound {
                let mut a = self.assumed.lock();
                for (_, pv) in &d.bindings {
                    a.remove(pv);
                }
                return Status::success();
            }
            if tokio::time::Instant::now() >= deadline {
                return Status::error("binding volumes: context deadline exceeded");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// VolumeBindingArgs: bindTimeoutSeconds (default 600).
pub fn new(args: &serde_json::Value, handle: &Arc<Handle>) -> Result<PluginInstance, String> {
    let secs = args
        .get("bindTimeoutSeconds")
        .and_then(|v| v.as_i64())
        .unwrap_or(600);
    if secs < 0 {
        return Err(format!(
            "bindTimeoutSeconds: Invalid value: {secs}: invalid BindTimeoutSeconds, should not be a negative value"
        ));
    }
    let p = Arc::new(VolumeBinding {
        listers: handle.listers.clone(),
        bind_timeout: Duration::from_secs(secs as u64),
        assumed: Mutex::new(HashMap::new()),
    });
    Ok(PluginInstance {
        pre_filter: Some(p.clone()),
        filter: Some(p.clone()),
        reserve: Some(p.clone()),
        pre_bind: Some(p),
        events: &[
            ClusterEvent::PvcChange,
            ClusterEvent::PvChange,
            ClusterEvent::StorageClassChange,
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
        ],
        ..PluginInstance::new(NAME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::json;

    fn plugin(h: &Arc<Handle>) -> PluginInstance {
        new(&serde_json::Value::Null, h).unwrap()
    }

    fn pvc(name: &str, class: &str, volume: &str) -> PersistentVolumeClaim {
        let mut v = json!({"metadata": {"name": name, "namespace": "default", "uid": "c1"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                     "resources": {"requests": {"storage": "1Gi"}}}});
        if !volume.is_empty() {
            v["spec"]["volumeName"] = json!(volume);
        }
        serde_json::from_value(v).unwrap()
    }

    fn pv(name: &str, class: &str, host: &str) -> PersistentVolume {
        serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class, "capacity": {"storage": "2Gi"},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}}},
            "status": {"phase": "Available"}})).unwrap()
    }

    fn class(
        name: &str,
        mode: &str,
        provisioner: &str,
    ) -> k8s_openapi::api::storage::v1::StorageClass {
        serde_json::from_value(json!({"metadata": {"name": name}, "provisioner": provisioner, "volumeBindingMode": mode})).unwrap()
    }

    fn run(h: &Arc<Handle>, p: &Arc<PodInfo>, nodes: &[&str]) -> Result<Vec<Status>, Status> {
        let inst = plugin(h);
        let mut st = CycleState::new();
        let (_, s) = inst
            .pre_filter
            .unwrap()
            .pre_filter(&mut st, p, &Snapshot::default());
        if !s.is_success() {
            return Err(s);
        }
        let f = inst.filter.unwrap();
        Ok(nodes
            .iter()
            .map(|n| f.filter(&st, p, &node(n).info()))
            .collect())
    }

    #[test]
    fn claims_are_checked_as_upstream() {
        let h = handle();
        let p = pod("p").pvc("data").obj();
        assert_eq!(
            run(&h, &p, &["a"]).unwrap_err().message(),
            "persistentvolumeclaim \"data\" not found"
        );
        h.listers
            .storage_classes
            .apply(class("fast", "Immediate", "x.io/p"));
        h.listers.pvcs.apply(pvc("data", "fast", ""));
        assert_eq!(
            run(&h, &p, &["a"]).unwrap_err().message(),
            ERR_UNBOUND_IMMEDIATE
        );
        h.listers.pvcs.apply(pvc("data", "fast", "pv1"));
        assert_eq!(
            run(&h, &p, &["a"]).unwrap()[0].message(),
            ERR_REASON_PV_NOT_EXIST
        );
        h.listers.pvs.apply(pv("pv1", "fast", "a"));
        let st = run(&h, &p, &["a", "b"]).unwrap();
        assert!(st[0].is_success());
        assert_eq!(st[1].message(), ERR_REASON_NODE_CONFLICT);
    }

    #[test]
    fn wait_for_first_consumer_claims_need_a_local_volume_or_a_provisioner() {
        let h = handle();
        let p = pod("p").pvc("data").obj();
        h.listers
            .storage_classes
            .apply(class("local", "WaitForFirstConsumer", NO_PROVISIONER));
        h.listers.pvcs.apply(pvc("data", "local", ""));
        h.listers.pvs.apply(pv("pv-a", "local", "a"));
        let st = run(&h, &p, &["a", "b"]).unwrap();
        assert!(st[0].is_success());
        assert_eq!(st[1].message(), ERR_REASON_BIND_CONFLICT);
        h.listers
            .storage_classes
            .apply(class("local", "WaitForFirstConsumer", "x.io/p"));
        let st = run(&h, &p, &["b"]).unwrap();
        assert!(
            st[0].is_success(),
            "dynamic provisioning can serve any node"
        );
    }
}
