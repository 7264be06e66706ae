//! The pvc-protection and pv-protection controllers: a claim being deleted keeps its
//! `kubernetes.io/pvc-protection` finalizer while a pod that has not finished uses it, and a
//! volume being deleted keeps `kubernetes.io/pv-protection` while it is Bound.

use std::sync::Arc;

use ferrokube_client::{Action, Change, Informer, WorkQueue};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::Context;
use crate::util::{self, Result};

pub const PVC_NAME: &str = "pvc-protection";
pub const PV_NAME: &str = "pv-protection";
pub const PVC_FINALIZER: &str = "kubernetes.io/pvc-protection";
pub const PV_FINALIZER: &str = "kubernetes.io/pv-protection";
const BY_CLAIM: &str = "claims";

pub fn start_pvc(ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Box::pin(run_pvc(ctx))
}

pub fn start_pv(ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Box::pin(run_pv(ctx))
}

/// Claims a pod uses: its persistentVolumeClaim volumes and its generic ephemeral volumes.
pub fn claims_of(pod: &Pod) -> Vec<String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let pod_name = pod.metadata.name.as_deref().unwrap_or("");
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| {
            if let Some(c) = &v.persistent_volume_claim {
                Some(format!("{ns}/{}", c.claim_name))
            } else {
                v.ephemeral
                    .as_ref()
                    .map(|_| format!("{ns}/{pod_name}-{}", v.name))
            }
        })
        .collect()
}

fn has_finalizer(meta: &kube::api::ObjectMeta, f: &str) -> bool {
    meta.finalizers
        .as_ref()
        .is_some_and(|fs| fs.iter().any(|x| x == f))
}

/// Removes one finalizer with a merge patch guarded by the resourceVersion.
async fn remove_finalizer<K>(api: &Api<K>, meta: &kube::api::ObjectMeta, f: &str) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let rest: Vec<&String> = meta
        .finalizers
        .iter()
        .flatten()
        .filter(|x| *x != f)
        .collect();
    let patch = json!({"metadata": {
        "resourceVersion": meta.resource_version,
        "finalizers": if rest.is_empty() { serde_json::Value::Null } else { json!(rest) },
    }});
    match api
        .patch(
            meta.name.as_deref().unwrap_or(""),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if util::is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Clone)]
pub struct PvcProtection {
    pub claims: Arc<Informer<PersistentVolumeClaim>>,
    pub pods: Arc<Informer<Pod>>,
}

impl PvcProtection {
    pub fn new(claims: Arc<Informer<PersistentVolumeClaim>>, pods: Arc<Informer<Pod>>) -> Self {
        pods.add_index(BY_CLAIM, claims_of);
        PvcProtection { claims, pods }
    }

    /// Whether a pod that has not finished uses the claim, per the cache.
    pub fn in_use(&self, key: &str) -> bool {
        self.pods
            .by_index(BY_CLAIM, key)
            .iter()
            .any(|p| !util::is_pod_terminal(p))
    }

    pub fn watch(&self, queue: &Arc<WorkQueue<String>>) {
        let q = queue.clone();
        self.claims
            .on_change(move |c: &Change<'_, PersistentVolumeClaim>| {
                let claim = c.object();
                if claim.metadata.deletion_timestamp.is_some()
                    && has_finalizer(&claim.metadata, PVC_FINALIZER)
                {
                    q.add(ferrokube_client::key_of(&**claim));
                }
            });
        let q = queue.clone();
        self.pods.on_change(move |c: &Change<'_, Pod>| {
            let done = match c {
                Change::Deleted(_) => true,
                Change::Updated { new, .. } => util::is_pod_terminal(new),
                Change::Added(_) => false,
            };
            if done {
                for k in claims_of(c.object()) {
                    q.add(k);
                }
            }
        });
    }

    async fn sync(&self, client: &kube::Client, key: &str) -> Result<Action> {
        let Some(claim) = self.claims.get(key) else {
            return Ok(Action::AwaitChange);
        };
        if claim.metadata.deletion_timestamp.is_none()
            || !has_finalizer(&claim.metadata, PVC_FINALIZER)
        {
            return Ok(Action::AwaitChange);
        }
        if self.in_use(key) {
            return Ok(Action::AwaitChange);
        }
        let (ns, name) = ferrokube_client::split_key(key);
        // The cache may not have a new pod yet: ask the API before letting the claim go.
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let live = pods.list(&ListParams::default()).await?;
        if live
            .items
            .iter()
            .any(|p| !util::is_pod_terminal(p) && claims_of(p).iter().any(|k| k == key))
        {
            return Ok(Action::AwaitChange);
        }
        let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        tracing::debug!(claim = %format!("{ns}/{name}"), "removing the pvc-protection finalizer");
        remove_finalizer(&api, &claim.metadata, PVC_FINALIZER).await?;
        Ok(Action::AwaitChange)
    }
}

async fn run_pvc(ctx: Arc<Context>) {
    let c = PvcProtection::new(
        ctx.informers.get::<PersistentVolumeClaim>(),
        ctx.informers.get::<Pod>(),
    );
    c.claims.wait_synced().await;
    c.pods.wait_synced().await;
    let queue = WorkQueue::new();
    c.watch(&queue);
    let client = ctx.client.clone();
    util::run_queue(
        queue,
        ctx.config.workers,
        ctx.cancel.clone(),
        move |key: String| {
            let c = c.clone();
            let client = client.clone();
            async move { c.sync(&client, &key).await }
        },
    )
    .await;
}

async fn run_pv(ctx: Arc<Context>) {
    let volumes = ctx.informers.get::<PersistentVolume>();
    volumes.wait_synced().await;
    let queue = WorkQueue::new();
    let q = queue.clone();
    volumes.on_change(move |c: &Change<'_, PersistentVolume>| {
        let v = c.object();
        if v.metadata.deletion_timestamp.is_some() && has_finalizer(&v.metadata, PV_FINALIZER) {
            q.add(ferrokube_client::key_of(&**v));
        }
    });
    let client = ctx.client.clone();
    util::run_queue(
        queue,
        ctx.config.workers,
        ctx.cancel.clone(),
        move |name: String| {
            let volumes = volumes.clone();
            let client = client.clone();
            async move {
                let Some(v) = volumes.get(&name) else {
                    return Ok(Action::AwaitChange);
                };
                let bound = v.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
                if v.metadata.deletion_timestamp.is_none()
                    || bound
                    || !has_finalizer(&v.metadata, PV_FINALIZER)
                {
                    return Ok(Action::AwaitChange);
                }
                let api: Api<PersistentVolume> = Api::all(client);
                remove_finalizer(&api, &v.metadata, PV_FINALIZER).await?;
                Ok(Action::AwaitChange)
            }
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_pods_hold_their_claims() {
        let c = PvcProtection::new(Informer::detached(), Informer::detached());
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [], "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": "c1"}},
                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}
            ]},
            "status": {"phase": "Running"}
        }))
        .unwrap();
        assert_eq!(
            claims_of(&pod),
            vec!["d/c1".to_string(), "d/p-scratch".to_string()]
        );
        c.pods.apply(pod.clone());
        assert!(c.in_use("d/c1"));
        let mut done = pod;
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        c.pods.apply(done);
        assert!(!c.in_use("d/c1"));
    }
}
