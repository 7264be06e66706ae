//! The Deployment controller: a Deployment owns ReplicaSets named `<deployment>-<hash>` (the
//! hash of the pod template, also the `pod-template-hash` label of their pods) and moves
//! replicas from old ReplicaSets to the new one: RollingUpdate within maxSurge and
//! maxUnavailable, or Recreate. It numbers rollouts with the revision annotation (what
//! `kubectl rollout history` / `undo` read), scales proportionally when a Deployment is resized
//! mid-rollout, stops while paused, reports progress against progressDeadlineSeconds with the
//! Progressing and Available conditions, and keeps revisionHistoryLimit old ReplicaSets.

mod progress;
mod recreate;
mod rolling;
mod sync;
pub mod util;

use std::sync::Arc;

use ferrokube_api::selector::LabelSelector as Selector;
use ferrokube_client::events::{EventRecorder, EventType};
use ferrokube_client::workqueue::{Action, WorkQueue, run_workers};
use ferrokube_client::{Change, Informer, key_of};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch};
use serde_json::json;

use crate::clock::Clock;
use crate::controller_utils::{
    INDEX_CONTROLLER, add_owner_indexes, claim_candidates, controller_of, labels_of,
    new_controller_ref, patch_params, post_params, selector,
};
use crate::ref_manager::RefManager;
use crate::{Context, Error, Result};

pub struct DeploymentController {
    client: kube::Client,
    deployments: Arc<Informer<Deployment>>,
    sets: Arc<Informer<ReplicaSet>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<WorkQueue<String>>,
    recorder: EventRecorder,
    clock: Clock,
}

fn resolve(
    deployments: &Informer<Deployment>,
    ns: &str,
    r: &OwnerReference,
) -> Option<Arc<Deployment>> {
    if r.kind != "Deployment" {
        return None;
    }
    let d = deployments.get_named(ns, &r.name)?;
    (d.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(d)
}

fn deployment_selector(d: &Deployment) -> Selector {
    selector(d.spec.as_ref().map(|s| &s.selector))
}

/// Deployments whose selector matches an orphan ReplicaSet.
fn deployments_for(deployments: &Informer<Deployment>, rs: &ReplicaSet) -> Vec<Arc<Deployment>> {
    let labels = labels_of(&rs.metadata);
    if labels.is_empty() {
        return Vec::new();
    }
    deployments
        .list_namespace(&rs.namespace().unwrap_or_default())
        .into_iter()
        .filter(|d| {
            let s = deployment_selector(d);
            !s.is_everything() && s.matches(labels)
        })
        .collect()
}

impl DeploymentController {
    pub fn new(
        client: kube::Client,
        deployments: Arc<Informer<Deployment>>,
        sets: Arc<Informer<ReplicaSet>>,
        pods: Arc<Informer<Pod>>,
        recorder: EventRecorder,
        clock: Clock,
    ) -> Arc<Self> {
        add_owner_indexes(&sets);
        add_owner_indexes(&pods);
        let queue: Arc<WorkQueue<String>> = WorkQueue::new();
        {
            let q = queue.clone();
            deployments.on_change(move |c| q.add(key_of(&**c.object())));
        }
        {
            let (q, ds) = (queue.clone(), deployments.clone());
            sets.on_change(move |c| {
                let enqueue_owner = |rs: &ReplicaSet, r: &OwnerReference| {
                    if let Some(d) = resolve(&ds, &rs.namespace().unwrap_or_default(), r) {
                        q.add(key_of(&*d));
                    }
                };
                match c {
                    Change::Added(rs) | Change::Deleted(rs) => match controller_of(&rs.metadata) {
                        Some(r) => enqueue_owner(rs, r),
                        None if matches!(c, Change::Added(_)) => {
                            for d in deployments_for(&ds, rs) {
                                q.add(key_of(&*d));
                            }
                        }
                        None => {}
                    },
                    Change::Updated { old, new } => {
                        if old.metadata.resource_version == new.metadata.resource_version {
                            return;
                        }
                        let (cur, prev) =
                            (controller_of(&new.metadata), controller_of(&old.metadata));
                        let changed = cur != prev;
                        if changed && let Some(p) = prev {
                            enqueue_owner(old, p);
                        }
                        match cur {
                            Some(r) => enqueue_owner(new, r),
                            None => {
                                if changed || old.metadata.labels != new.metadata.labels {
                                    for d in deployments_for(&ds, new) {
                                        q.add(key_of(&*d));
                                    }
                                }
                            }
                        }
                    }
                }
            });
        }
        {
            let (q, ds, rss) = (queue.clone(), deployments.clone(), sets.clone());
            pods.on_change(move |c| {
                // A Recreate rollout waits for the old pods to be gone.
                let Change::Deleted(pod) = c else { return };
                let ns = pod.namespace().unwrap_or_default();
                let Some(r) = controller_of(&pod.metadata) else {
                    return;
                };
                if r.kind != "ReplicaSet" {
                    return;
                }
                let Some(rs) = rss.get_named(&ns, &r.name) else {
                    return;
                };
                if let Some(dr) = controller_of(&rs.metadata)
                    && let Some(d) = resolve(&ds, &ns, dr)
                    && util::is_recreate(&d)
                {
                    q.add(key_of(&*d));
                }
            });
        }
        Arc::new(DeploymentController {
            client,
            deployments,
            sets,
            pods,
            queue,
            recorder,
            clock,
        })
    }

    pub fn queue(&self) -> &Arc<WorkQueue<String>> {
        &self.queue
    }

    pub async fn run(self: Arc<Self>, workers: usize, cancel: tokio_util::sync::CancellationToken) {
        tokio::select! {
            _ = async {
                self.deployments.wait_synced().await;
                self.sets.wait_synced().await;
                self.pods.wait_synced().await;
            } => {}
            _ = cancel.cancelled() => return,
        }
        let q = self.queue.clone();
        let stop = cancel.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            q.shut_down();
        });
        let me = self.clone();
        run_workers(self.queue.clone(), workers, move |key: String| {
            let me = me.clone();
            async move { me.sync(&key).await.map(|_| Action::AwaitChange) }
        })
        .await;
    }

    /// `syncDeployment`.
    pub async fn sync(&self, key: &str) -> Result<()> {
        let Some(cached) = self.deployments.get(key) else {
            return Ok(());
        };
        let mut d: Deployment = (*cached).clone();
        let sel_everything = d.spec.as_ref().is_some_and(|s| {
            s.selector
                .match_labels
                .as_ref()
                .is_none_or(|m| m.is_empty())
                && s.selector
                    .match_expressions
                    .as_ref()
                    .is_none_or(|m| m.is_empty())
        });
        if sel_everything {
            self.recorder.record(
                &d,
                EventType::Warning,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            );
            let st = d.status.get_or_insert_with(Default::default);
            if st.observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
                st.observed_generation = d.metadata.generation;
                self.update_status(&mut d).await?;
            }
            return Ok(());
        }
        let mut rs_list = self.replica_sets_for(&d).await?;
        if d.metadata.deletion_timestamp.is_some() {
            return self.sync_status_only(&mut d, &mut rs_list).await;
        }
        self.check_paused_conditions(&mut d).await?;
        if d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false) {
            return self.sync_scale(&mut d, &mut rs_list).await;
        }
        if self.is_scaling_event(&mut d, &mut rs_list).await? {
            return self.sync_scale(&mut d, &mut rs_list).await;
        }
        if util::is_recreate(&d) {
            self.rollout_recreate(&mut d, &mut rs_list).await
        } else {
            self.rollout_rolling(&mut d, &mut rs_list).await
        }
    }

    /// `getReplicaSetsForDeployment`: the ReplicaSets this Deployment controls, after adopting
    /// matching orphans and releasing ones that stopped matching.
    async fn replica_sets_for(&self, d: &Deployment) -> Result<Vec<ReplicaSet>> {
        let sel = deployment_selector(d);
        let ns = d.namespace().unwrap_or_default();
        let uid = d.uid().unwrap_or_default();
        let candidates = claim_candidates(&self.sets, &uid, &ns);
        let refs = RefManager::new(self.client.clone(), d, new_controller_ref(d), &sel);
        let claimed = refs.claim(candidates, |_| true).await?;
        Ok(claimed.into_iter().map(|r| (*r).clone()).collect())
    }

    /// Pods of each of the Deployment's ReplicaSets (by ReplicaSet UID).
    fn pods_by_replica_set(
        &self,
        d: &Deployment,
        rs_list: &[ReplicaSet],
    ) -> Vec<(String, Vec<Arc<Pod>>)> {
        let sel = deployment_selector(d);
        rs_list
            .iter()
            .map(|rs| {
                let uid = rs.uid().unwrap_or_default();
                let pods = self
                    .pods
                    .by_index(INDEX_CONTROLLER, &uid)
                    .into_iter()
                    .filter(|p| sel.matches(labels_of(&p.metadata)))
                    .collect();
                (uid, pods)
            })
            .collect()
    }

    fn name_of(d: &Deployment) -> String {
        format!("{}/{}", d.namespace().unwrap_or_default(), d.name_any())
    }

    /// `UpdateStatus`: writes the status (with the revision annotation, which upstream's status
    /// strategy lets through and ours writes on the main resource) and keeps `d` current.
    async fn update_status(&self, d: &mut Deployment) -> Result<()> {
        let ns = d.namespace().unwrap_or_default();
        let name = d.name_any();
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
        let stored_rev = self
            .deployments
            .get_named(&ns, &name)
            .and_then(|c| util::annotation(&c.metadata, util::REVISION).map(String::from));
        let want_rev = util::annotation(&d.metadata, util::REVISION).map(String::from);
        if want_rev.is_some() && stored_rev != want_rev {
            let patch = json!({"metadata": {"annotations": {util::REVISION: want_rev}}});
            let patched = api
                .patch(&name, &patch_params(), &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::api("updating revision of", Self::name_of(d), e))?;
            if patched.metadata.generation != d.metadata.generation {
                return Err(Error::Retry(format!(
                    "{} changed while syncing",
                    Self::name_of(d)
                )));
            }
            d.metadata.resource_version = patched.metadata.resource_version;
        }
        let updated = api
            .replace_status(&name, &post_params(), d)
            .await
            .map_err(|e| Error::api("updating status of", Self::name_of(d), e))?;
        d.metadata.resource_version = updated.metadata.resource_version;
        d.status = updated.status;
        Ok(())
    }

    async fn update_replica_set(&self, rs: &ReplicaSet) -> Result<ReplicaSet> {
        let ns = rs.namespace().unwrap_or_default();
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &ns);
        api.replace(&rs.name_any(), &post_params(), rs)
            .await
            .map_err(|e| Error::api("updating replica set", format!("{ns}/{}", rs.name_any()), e))
    }

    async fn create_replica_set(&self, rs: &ReplicaSet) -> Result<ReplicaSet> {
        let ns = rs.namespace().unwrap_or_default();
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &ns);
        api.create(&post_params(), rs)
            .await
            .map_err(|e| Error::api("creating replica set", format!("{ns}/{}", rs.name_any()), e))
    }

    async fn delete_replica_set(&self, rs: &ReplicaSet) -> Result<()> {
        let ns = rs.namespace().unwrap_or_default();
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &ns);
        match api.delete(&rs.name_any(), &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = Error::api("deleting replica set", format!("{ns}/{}", rs.name_any()), e);
                if err.is_not_found() { Ok(()) } else { Err(err) }
            }
        }
    }
}

pub fn start(ctx: Arc<Context>) -> futures::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        let c = DeploymentController::new(
            ctx.client.clone(),
            ctx.informers.get::<Deployment>(),
            ctx.informers.get::<ReplicaSet>(),
            ctx.informers.get::<Pod>(),
            ctx.recorder("deployment-controller"),
            ctx.clock.clone(),
        );
        c.run(ctx.config.workers, ctx.cancel.clone()).await;
    })
}

#[cfg(test)]
mod tests;
