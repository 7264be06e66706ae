//! The StatefulSet controller: pods with stable names `<set>-<ordinal>`, hostnames and
//! PersistentVolumeClaims `<claim>-<set>-<ordinal>`, created in order and deleted in reverse
//! order, each waiting for its predecessors to be Running and Ready (OrderedReady) or all at
//! once (Parallel). Updates replace pods from the highest ordinal down to the partition; the
//! templates are ControllerRevisions whose names label the pods (`currentRevision`,
//! `updateRevision`). The PVC retention policy decides, through owner references, whether
//! claims go away with the set or its scaled-down pods.

mod control;
pub mod utils;

use std::sync::Arc;
use std::time::Duration;

use ferrokube_api::selector::LabelSelector as Selector;
use ferrokube_client::events::EventRecorder;
use ferrokube_client::workqueue::{Action, WorkQueue, run_workers};
use ferrokube_client::{Change, Informer, key_of};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;

use crate::clock::Clock;
use crate::controller_utils::{
    add_owner_indexes, claim_candidates, controller_of, is_pod_ready, labels_of,
    new_controller_ref, selector,
};
use crate::ref_manager::RefManager;
use crate::{Context, Result};

pub struct StatefulSetController {
    client: kube::Client,
    sets: Arc<Informer<StatefulSet>>,
    pods: Arc<Informer<Pod>>,
    revisions: Arc<Informer<ControllerRevision>>,
    claims: Arc<Informer<PersistentVolumeClaim>>,
    queue: Arc<WorkQueue<String>>,
    recorder: EventRecorder,
    clock: Clock,
}

fn resolve(sets: &Informer<StatefulSet>, ns: &str, r: &OwnerReference) -> Option<Arc<StatefulSet>> {
    if r.kind != "StatefulSet" {
        return None;
    }
    let s = sets.get_named(ns, &r.name)?;
    (s.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(s)
}

fn set_selector(s: &StatefulSet) -> Selector {
    selector(s.spec.as_ref().map(|s| &s.selector))
}

fn matching(sets: &Informer<StatefulSet>, p: &Pod) -> Vec<String> {
    let labels = labels_of(&p.metadata);
    if labels.is_empty() {
        return Vec::new();
    }
    sets.list_namespace(&p.namespace().unwrap_or_default())
        .into_iter()
        .filter(|s| {
            let sel = set_selector(s);
            !sel.is_everything() && sel.matches(labels)
        })
        .map(|s| key_of(&*s))
        .collect()
}

impl StatefulSetController {
    pub fn new(
        client: kube::Client,
        sets: Arc<Informer<StatefulSet>>,
        pods: Arc<Informer<Pod>>,
        revisions: Arc<Informer<ControllerRevision>>,
        claims: Arc<Informer<PersistentVolumeClaim>>,
        recorder: EventRecorder,
        clock: Clock,
    ) -> Arc<Self> {
        add_owner_indexes(&pods);
        add_owner_indexes(&revisions);
        let queue: Arc<WorkQueue<String>> = WorkQueue::new();
        {
            let q = queue.clone();
            sets.on_change(move |c| q.add(key_of(&**c.object())));
        }
        {
            let (q, s2) = (queue.clone(), sets.clone());
            pods.on_change(move |c| {
                let p = c.object();
                let ns = p.namespace().unwrap_or_default();
                if let Change::Updated { old, new } = c {
                    if old.metadata.resource_version == new.metadata.resource_version {
                        return;
                    }
                    let (cur, prev) = (controller_of(&new.metadata), controller_of(&old.metadata));
                    if cur != prev
                        && let Some(pr) = prev
                        && let Some(s) = resolve(&s2, &ns, pr)
                    {
                        q.add(key_of(&*s));
                    }
                    if let Some(r) = cur
                        && let Some(s) = resolve(&s2, &ns, r)
                    {
                        let mrs = utils::min_ready_seconds(&s);
                        if !is_pod_ready(old) && is_pod_ready(new) && mrs > 0 {
                            q.add_after(key_of(&*s), Duration::from_secs(mrs as u64 + 1));
                        }
                    }
                    if cur.is_none() && (cur != prev || old.metadata.labels != new.metadata.labels)
                    {
                        for k in matching(&s2, new) {
                            q.add(k);
                        }
                        return;
                    }
                }
                match controller_of(&p.metadata) {
                    Some(r) => {
                        if let Some(s) = resolve(&s2, &ns, r) {
                            q.add(key_of(&*s));
                        }
                    }
                    None if matches!(c, Change::Added(_)) => {
                        for k in matching(&s2, p) {
                            q.add(k);
                        }
                    }
                    None => {}
                }
            });
        }
        {
            let (q, s2) = (queue.clone(), sets.clone());
            revisions.on_change(move |c| {
                let r = c.object();
                if let Some(o) = controller_of(&r.metadata)
                    && let Some(s) = resolve(&s2, &r.namespace().unwrap_or_default(), o)
                {
                    q.add(key_of(&*s));
                }
            });
        }
        Arc::new(StatefulSetController {
            client,
            sets,
            pods,
            revisions,
            claims,
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
                self.sets.wait_synced().await;
                self.pods.wait_synced().await;
                self.revisions.wait_synced().await;
                self.claims.wait_synced().await;
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

    /// `syncStatefulSet`.
    pub async fn sync(&self, key: &str) -> Result<()> {
        let Some(set) = self.sets.get(key) else {
            return Ok(());
        };
        let sel = set_selector(&set);
        let uid = set.uid().unwrap_or_default();
        let ns = set.namespace().unwrap_or_default();
        let refs = RefManager::new(self.client.clone(), &*set, new_controller_ref(&*set), &sel);
        // Revisions first (adopting orphans), then pods that are members of this set.
        let revisions: Vec<ControllerRevision> = refs
            .claim(claim_candidates(&self.revisions, &uid, &ns), |_| true)
            .await?
            .into_iter()
            .map(|r| (*r).clone())
            .collect();
        let pods = refs
            .claim(claim_candidates(&self.pods, &uid, &ns), |p| {
                utils::is_member_of(&set, p)
            })
            .await?;
        let status = self.update_stateful_set(&set, pods, revisions).await?;
        if let Some(st) = status
            && utils::min_ready_seconds(&set) > 0
            && st.available_replicas.unwrap_or(0) != utils::replicas(&set)
        {
            self.queue.add_after(
                key.to_string(),
                Duration::from_secs(utils::min_ready_seconds(&set) as u64),
            );
        }
        Ok(())
    }
}

pub fn start(ctx: Arc<Context>) -> futures::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        let c = StatefulSetController::new(
            ctx.client.clone(),
            ctx.informers.get::<StatefulSet>(),
            ctx.informers.get::<Pod>(),
            ctx.informers.get::<ControllerRevision>(),
            ctx.informers.get::<PersistentVolumeClaim>(),
            ctx.recorder("statefulset-controller"),
            ctx.clock.clone(),
        );
        c.run(ctx.config.workers, ctx.cancel.clone()).await;
    })
}

#[cfg(test)]
mod tests;
