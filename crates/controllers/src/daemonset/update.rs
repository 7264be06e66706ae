//! DaemonSet rollouts and history (upstream `update.go`): replacing old pods node by node
//! within maxUnavailable, or surging a new pod next to an old one within maxSurge, and the
//! ControllerRevisions that record each template.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch};
use serde_json::json;

use super::{
    DaemonSetController, ds_selector, ds_template, is_pod_updated, min_ready_seconds,
    node_should_run, template_generation,
};
use crate::controller_utils::{
    claim_candidates, is_pod_available, labels_of, new_controller_ref, patch_params, post_params,
};
use crate::deployment::util::scaled_value;
use crate::history::{
    CONTROLLER_REVISION_HASH, data, max_revision, sort_by_revision, template_hash, template_patch,
};
use crate::ref_manager::RefManager;
use crate::{Error, Result};

fn rolling(ds: &DaemonSet) -> Option<&k8s_openapi::api::apps::v1::RollingUpdateDaemonSet> {
    let u = ds.spec.as_ref()?.update_strategy.as_ref()?;
    if u.type_.as_deref().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return None;
    }
    u.rolling_update.as_ref()
}

/// `SurgeCount`: maxSurge of `n` nodes, rounded up.
pub fn surge_count(ds: &DaemonSet, n: i32) -> i32 {
    rolling(ds)
        .and_then(|r| r.max_surge.as_ref())
        .map(|v| scaled_value(v, n, true))
        .unwrap_or(0)
}

/// `UnavailableCount`: maxUnavailable of `n` nodes, rounded up.
pub fn unavailable_count(ds: &DaemonSet, n: i32) -> i32 {
    rolling(ds)
        .map(|r| {
            scaled_value(
                r.max_unavailable.as_ref().unwrap_or(&IntOrString::Int(1)),
                n,
                true,
            )
        })
        .unwrap_or(0)
}

pub fn allows_surge(ds: &DaemonSet) -> bool {
    surge_count(ds, 1) != 0
}

/// A node's pod of the current template and its pod of an older one.
type NewAndOld = (Option<Arc<Pod>>, Option<Arc<Pod>>);

/// `findUpdatedPodsOnNode`: the node's new and old pod, or not ok if it has several of one.
fn updated_pods_on_node(ds: &DaemonSet, pods: &[Arc<Pod>], hash: &str) -> Option<NewAndOld> {
    let (mut new, mut old) = (None, None);
    let generation = template_generation(ds);
    for p in pods {
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let slot = if is_pod_updated(p, hash, generation) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(p.clone());
    }
    Some((new, old))
}

impl DaemonSetController {
    /// `rollingUpdate`.
    pub(super) async fn rolling_update(
        &self,
        ds: &Arc<DaemonSet>,
        nodes: &[Arc<Node>],
        hash: &str,
    ) -> Result<()> {
        let mut node_pods = self.nodes_to_daemon_pods(ds, false).await?;
        let mut desired = 0;
        for n in nodes {
            if node_should_run(n, ds).0 {
                desired += 1;
                node_pods.entry(n.name_any()).or_default();
            }
        }
        let mut max_unavailable = unavailable_count(ds, desired);
        let max_surge = surge_count(ds, desired);
        if desired > 0 && max_unavailable == 0 && max_surge == 0 {
            max_unavailable = 1;
        }
        let now = self.clock.now();
        let mrs = min_ready_seconds(ds);
        let available = |p: &Pod| is_pod_available(p, mrs, now);
        // Deterministic order (Go iterates a map; any order is correct).
        let mut entries: Vec<(&String, &Vec<Arc<Pod>>)> = node_pods.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));

        if max_surge == 0 {
            let mut unavailable = 0;
            let mut allowed: Vec<String> = Vec::new();
            let mut candidates: Vec<String> = Vec::new();
            for (_, pods) in &entries {
                let Some((new, old)) = updated_pods_on_node(ds, pods, hash) else {
                    unavailable += 1;
                    continue;
                };
                match (new, old) {
                    (None, None) | (Some(_), Some(_)) => unavailable += 1,
                    (Some(n), None) => {
                        if !available(&n) {
                            unavailable += 1;
                        }
                    }
                    (None, Some(o)) => {
                        if !available(&o) {
                            allowed.push(o.name_any());
                            unavailable += 1;
                        } else if unavailable < max_unavailable {
                            candidates.push(o.name_any());
                        }
                    }
                }
            }
            let remaining = (max_unavailable - unavailable)
                .max(0)
                .min(candidates.len() as i32) as usize;
            allowed.extend(candidates.into_iter().take(remaining));
            return self.sync_nodes(ds, &allowed, &[], hash).await;
        }

        let mut old_to_delete: Vec<String> = Vec::new();
        let mut should_not_run: Vec<String> = Vec::new();
        let mut candidates: Vec<String> = Vec::new();
        let mut allowed_new: Vec<String> = Vec::new();
        let (mut surge, mut num_available) = (0, 0);
        for (node_name, pods) in &entries {
            let Some((new, old)) = updated_pods_on_node(ds, pods, hash) else {
                surge += 1;
                continue;
            };
            match (&old, &new) {
                (Some(o), _) if available(o) => num_available += 1,
                (None, Some(n)) if available(n) => num_available += 1,
                _ => {}
            }
            let should_run = || {
                self.nodes
                    .get(node_name)
                    .map(|n| node_should_run(&n, ds).0)
                    .ok_or_else(|| {
                        Error::invalid(
                            key_of_ds(ds),
                            format!("couldn't get node for nodeName {node_name:?}"),
                        )
                    })
            };
            match (old, new) {
                (None, _) => {}
                (Some(o), None) => {
                    if !available(&o) {
                        if !should_run()? {
                            old_to_delete.push(o.name_any());
                            continue;
                        }
                        allowed_new.push((*node_name).clone());
                    } else {
                        if !should_run()? {
                            should_not_run.push(o.name_any());
                            continue;
                        }
                        if surge >= max_surge {
                            continue;
                        }
                        candidates.push((*node_name).clone());
                    }
                }
                (Some(o), Some(n)) => {
                    if !available(&n) {
                        surge += 1;
                        continue;
                    }
                    old_to_delete.push(o.name_any());
                }
            }
        }
        let deletable = (num_available - desired)
            .max(0)
            .min(should_not_run.len() as i32) as usize;
        let ns = ds.namespace().unwrap_or_default();
        for name in &should_not_run[..deletable] {
            if let Some(p) = self.pods.get_named(&ns, name)
                && p.metadata.deletion_timestamp.is_none()
            {
                old_to_delete.push(name.clone());
            }
        }
        let remaining = (max_surge - surge).max(0).min(candidates.len() as i32) as usize;
        allowed_new.extend(candidates.into_iter().take(remaining));
        self.sync_nodes(ds, &old_to_delete, &allowed_new, hash)
            .await
    }

    /// The DaemonSet's ControllerRevisions after claiming.
    async fn controlled_histories(&self, ds: &DaemonSet) -> Result<Vec<ControllerRevision>> {
        let sel = ds_selector(ds);
        let candidates = claim_candidates(
            &self.revisions,
            &ds.uid().unwrap_or_default(),
            &ds.namespace().unwrap_or_default(),
        );
        let claimed = RefManager::new(self.client.clone(), ds, new_controller_ref(ds), &sel)
            .claim(candidates, |_| true)
            .await?;
        Ok(claimed.into_iter().map(|r| (*r).clone()).collect())
    }

    /// `constructHistory`: the current revision (created if the template is new, renumbered
    /// above the old ones if it came back) and the old ones.
    pub(super) async fn construct_history(
        &self,
        ds: &Arc<DaemonSet>,
    ) -> Result<(ControllerRevision, Vec<ControllerRevision>)> {
        let ns = ds.namespace().unwrap_or_default();
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &ns);
        let patch = template_patch(&ds_template(ds));
        let mut current = Vec::new();
        let mut old = Vec::new();
        for mut h in self.controlled_histories(ds).await? {
            if !labels_of(&h.metadata).contains_key(CONTROLLER_REVISION_HASH) {
                let name = h.name_any();
                h.metadata
                    .labels
                    .get_or_insert_with(Default::default)
                    .insert(CONTROLLER_REVISION_HASH.into(), name);
                h = api
                    .replace(&h.name_any(), &post_params(), &h)
                    .await
                    .map_err(|e| {
                        Error::api("labelling revision", format!("{ns}/{}", h.name_any()), e)
                    })?;
            }
            if data(&h) == Some(&patch) {
                current.push(h);
            } else {
                old.push(h);
            }
        }
        let next = max_revision(&old) + 1;
        let cur = if current.is_empty() {
            self.snapshot(ds, next, &patch).await?
        } else {
            let mut cur = self.dedup_current(ds, current).await?;
            if cur.revision < next {
                cur.revision = next;
                cur = api
                    .replace(&cur.name_any(), &post_params(), &cur)
                    .await
                    .map_err(|e| {
                        Error::api("updating revision", format!("{ns}/{}", cur.name_any()), e)
                    })?;
            }
            cur
        };
        Ok((cur, old))
    }

    async fn snapshot(
        &self,
        ds: &DaemonSet,
        revision: i64,
        patch: &serde_json::Value,
    ) -> Result<ControllerRevision> {
        let ns = ds.namespace().unwrap_or_default();
        let collision = ds.status.as_ref().and_then(|s| s.collision_count);
        let template = ds_template(ds);
        let hash = template_hash(&template, collision);
        let mut labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(CONTROLLER_REVISION_HASH.into(), hash.clone());
        let h = ControllerRevision {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(format!("{}-{hash}", ds.name_any())),
                namespace: Some(ns.clone()),
                labels: Some(labels),
                annotations: ds.metadata.annotations.clone(),
                owner_references: Some(vec![new_controller_ref(ds)]),
                ..Default::default()
            },
            data: Some(k8s_openapi::apimachinery::pkg::runtime::RawExtension(
                patch.clone(),
            )),
            revision,
        };
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &ns);
        match api.create(&post_params(), &h).await {
            Ok(c) => Ok(c),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let name = h.name_any();
                let existing = api
                    .get(&name)
                    .await
                    .map_err(|e| Error::api("reading revision", format!("{ns}/{name}"), e))?;
                if data(&existing) == Some(patch) {
                    return Ok(existing);
                }
                let dss: Api<DaemonSet> = Api::namespaced(self.client.clone(), &ns);
                let cur = dss
                    .get(&ds.name_any())
                    .await
                    .map_err(|e| Error::api("reading", key_of_ds(ds), e))?;
                let cur_cc = cur.status.as_ref().and_then(|s| s.collision_count);
                if cur_cc != collision {
                    return Err(Error::Retry(format!(
                        "found a stale collision count ({collision:?}, expected {cur_cc:?}) of DaemonSet {:?} while processing; will retry until it is updated",
                        ds.name_any()
                    )));
                }
                let next = cur_cc.unwrap_or(0) + 1;
                dss.patch_status(
                    &ds.name_any(),
                    &patch_params(),
                    &Patch::Merge(json!({"status": {"collisionCount": next}})),
                )
                .await
                .map_err(|e| Error::api("updating collision count of", key_of_ds(ds), e))?;
                Err(Error::Retry(format!(
                    "hash collision for DaemonSet {}; collisionCount is now {next}",
                    key_of_ds(ds)
                )))
            }
            Err(e) => Err(Error::api("creating revision for", key_of_ds(ds), e)),
        }
    }

    /// `dedupCurHistories`: keeps the highest revision among equal ones, moving pods over.
    async fn dedup_current(
        &self,
        ds: &DaemonSet,
        mut current: Vec<ControllerRevision>,
    ) -> Result<ControllerRevision> {
        if current.len() == 1 {
            return Ok(current.pop().expect("one"));
        }
        sort_by_revision(&mut current);
        let keep = current.pop().expect("several");
        let keep_hash = labels_of(&keep.metadata)
            .get(CONTROLLER_REVISION_HASH)
            .cloned()
            .unwrap_or_default();
        let ns = ds.namespace().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let revs: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &ns);
        for dup in current {
            let dup_hash = labels_of(&dup.metadata)
                .get(CONTROLLER_REVISION_HASH)
                .cloned()
                .unwrap_or_default();
            for p in self.daemon_pods(ds).await? {
                if labels_of(&p.metadata).get(CONTROLLER_REVISION_HASH) == Some(&dup_hash) {
                    let patch =
                        json!({"metadata": {"labels": {CONTROLLER_REVISION_HASH: keep_hash}}});
                    pods.patch(&p.name_any(), &patch_params(), &Patch::Merge(&patch))
                        .await
                        .map_err(|e| {
                            Error::api("relabelling pod", format!("{ns}/{}", p.name_any()), e)
                        })?;
                }
            }
            match revs.delete(&dup.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    return Err(Error::api(
                        "deleting revision",
                        format!("{ns}/{}", dup.name_any()),
                        e,
                    ));
                }
            }
        }
        Ok(keep)
    }

    /// `cleanupHistory`: deletes the oldest revisions beyond revisionHistoryLimit that no
    /// running pod uses.
    pub(super) async fn cleanup_history(
        &self,
        ds: &DaemonSet,
        old: &[ControllerRevision],
    ) -> Result<()> {
        let keep = ds
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10)
            .max(0) as usize;
        if old.len() <= keep {
            return Ok(());
        }
        let mut kill = old.len() - keep;
        let live: HashSet<String> = self
            .nodes_to_daemon_pods(ds, false)
            .await?
            .values()
            .flatten()
            .filter_map(|p| {
                labels_of(&p.metadata)
                    .get(CONTROLLER_REVISION_HASH)
                    .cloned()
            })
            .collect();
        let mut old = old.to_vec();
        sort_by_revision(&mut old);
        let ns = ds.namespace().unwrap_or_default();
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &ns);
        for h in old {
            if kill == 0 {
                break;
            }
            if labels_of(&h.metadata)
                .get(CONTROLLER_REVISION_HASH)
                .is_some_and(|x| live.contains(x))
            {
                continue;
            }
            match api.delete(&h.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    return Err(Error::api(
                        "deleting revision",
                        format!("{ns}/{}", h.name_any()),
                        e,
                    ));
                }
            }
            kill -= 1;
        }
        Ok(())
    }
}

fn key_of_ds(ds: &DaemonSet) -> String {
    format!("{}/{}", ds.namespace().unwrap_or_default(), ds.name_any())
}

#[allow(dead_code)]
type NodePods = HashMap<String, Vec<Arc<Pod>>>;
