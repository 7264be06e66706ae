//! One StatefulSet sync (upstream `stateful_set_control.go` and `stateful_pod_control.go`).

use std::sync::Arc;

use ferrokube_client::events::EventType;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch};
use serde_json::json;

use super::StatefulSetController;
use super::utils::*;
use crate::controller_utils::{new_controller_ref, patch_params, post_params};
use crate::history::{
    CONTROLLER_REVISION_HASH, data, new_revision, sort_by_revision, template_patch,
};
use crate::replicaset::replace_fields;
use crate::{Error, Result};

/// The two templates a sync works with.
struct Revisions {
    current_set: StatefulSet,
    update_set: StatefulSet,
    current: String,
    update: String,
}

fn set_key(set: &StatefulSet) -> String {
    format!("{}/{}", set.namespace().unwrap_or_default(), set.name_any())
}

/// `computeReplicaStatus` over pods (constructed, not yet created pods count for nothing).
fn count(st: &mut StatefulSetStatus, pods: &[Arc<Pod>], min_ready: i32, clock: &crate::Clock) {
    let (mut replicas, mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0, 0);
    let cur = st.current_revision.clone().unwrap_or_default();
    let upd = st.update_revision.clone().unwrap_or_default();
    for p in pods {
        if is_created(p) {
            replicas += 1;
        }
        if is_running_and_ready(p) {
            ready += 1;
            if is_running_and_available(p, min_ready, clock) {
                available += 1;
            }
        }
        if is_created(p) && !is_terminating(p) {
            let r = pod_revision(p);
            if r == cur {
                current += 1;
            }
            if r == upd {
                updated += 1;
            }
        }
    }
    st.replicas = replicas;
    st.ready_replicas = Some(ready);
    st.available_replicas = Some(available);
    st.current_replicas = Some(current);
    st.updated_replicas = Some(updated);
}

fn nz(v: Option<i32>) -> Option<i32> {
    v.filter(|n| *n != 0)
}

impl StatefulSetController {
    /// `UpdateStatefulSet`: returns the status written (None if the revisions could not be set
    /// up).
    pub(super) async fn update_stateful_set(
        &self,
        set: &Arc<StatefulSet>,
        pods: Vec<Arc<Pod>>,
        mut revisions: Vec<ControllerRevision>,
    ) -> Result<Option<StatefulSetStatus>> {
        sort_by_revision(&mut revisions);
        let (current, update, collision) = self.stateful_set_revisions(set, &mut revisions).await?;
        let revs = Revisions {
            current_set: apply_revision(set, &current),
            update_set: apply_revision(set, &update),
            current: current.name_any(),
            update: update.name_any(),
        };
        let mut status = StatefulSetStatus {
            observed_generation: set.metadata.generation,
            current_revision: Some(revs.current.clone()),
            update_revision: Some(revs.update.clone()),
            collision_count: Some(collision),
            ..Default::default()
        };
        let result = self.update_pods(set, &pods, &revs, &mut status).await;
        let status_result = self.update_status(set, &mut status).await;
        let history = self.truncate_history(set, &pods, &revisions, &revs).await;
        result?;
        status_result?;
        history?;
        Ok(Some(status))
    }

    /// `getStatefulSetRevisions`: the current revision (from the status) and the update
    /// revision (the template now; an equal older revision is reused with a new number).
    async fn stateful_set_revisions(
        &self,
        set: &StatefulSet,
        revisions: &mut Vec<ControllerRevision>,
    ) -> Result<(ControllerRevision, ControllerRevision, i32)> {
        let mut collision = set
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);
        let next = revisions.last().map(|r| r.revision + 1).unwrap_or(1);
        let template = set
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let patch = template_patch(&template);
        let ns = set.namespace().unwrap_or_default();
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &ns);
        let equal: Vec<&ControllerRevision> = revisions
            .iter()
            .filter(|r| data(r) == Some(&patch))
            .collect();
        let update = if let Some(last_equal) = equal.last() {
            if revisions.last().map(|r| r.name_any()) == Some(last_equal.name_any()) {
                (*last_equal).clone()
            } else {
                let mut r = (*last_equal).clone();
                r.revision = next;
                let updated = api
                    .replace(&r.name_any(), &post_params(), &r)
                    .await
                    .map_err(|e| {
                        Error::api("updating revision", format!("{ns}/{}", r.name_any()), e)
                    })?;
                if let Some(slot) = revisions
                    .iter_mut()
                    .find(|x| x.name_any() == updated.name_any())
                {
                    *slot = updated.clone();
                }
                sort_by_revision(revisions);
                updated
            }
        } else {
            loop {
                let mut cr = new_revision(
                    new_controller_ref(set),
                    &ns,
                    template.metadata.as_ref().and_then(|m| m.labels.as_ref()),
                    patch.clone(),
                    next,
                    Some(collision),
                );
                if let Some(a) = &set.metadata.annotations {
                    cr.metadata.annotations = Some(a.clone());
                }
                match api.create(&post_params(), &cr).await {
                    Ok(c) => {
                        revisions.push(c.clone());
                        break c;
                    }
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        let existing = api.get(&cr.name_any()).await.map_err(|e| {
                            Error::api("reading revision", format!("{ns}/{}", cr.name_any()), e)
                        })?;
                        if data(&existing) == Some(&patch) {
                            break existing;
                        }
                        collision += 1;
                    }
                    Err(e) => return Err(Error::api("creating revision for", set_key(set), e)),
                }
            }
        };
        let current_name = set.status.as_ref().and_then(|s| s.current_revision.clone());
        let current = revisions
            .iter()
            .find(|r| Some(r.name_any()) == current_name)
            .cloned()
            .unwrap_or_else(|| update.clone());
        Ok((current, update, collision))
    }

    /// `updateStatefulSet`: creates, replaces and deletes pods; fills in `status`.
    async fn update_pods(
        &self,
        set: &Arc<StatefulSet>,
        pods: &[Arc<Pod>],
        revs: &Revisions,
        status: &mut StatefulSetStatus,
    ) -> Result<()> {
        let mrs = min_ready_seconds(set);
        count(status, pods, mrs, &self.clock);
        let n = replicas(set).max(0) as usize;
        let start = start_ordinal(set);
        let mut slots: Vec<Option<Arc<Pod>>> = vec![None; n];
        let mut condemned: Vec<Arc<Pod>> = Vec::new();
        for p in pods {
            if in_ordinal_range(p, set) {
                slots[(ordinal(p) - start) as usize] = Some(p.clone());
            } else if ordinal(p) >= 0 {
                condemned.push(p.clone());
            }
        }
        let mut replicas: Vec<Arc<Pod>> = slots
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                p.unwrap_or_else(|| {
                    Arc::new(new_versioned_pod(
                        &revs.current_set,
                        &revs.update_set,
                        &revs.current,
                        &revs.update,
                        start + i as i32,
                    ))
                })
            })
            .collect();
        condemned.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
        let first_unhealthy: Option<String> = replicas
            .iter()
            .chain(condemned.iter().rev())
            .find(|p| !is_healthy(p))
            .map(|p| p.name_any());
        if set.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let monotonic = !allows_burst(set);

        // Each living replica, in order.
        let exit = if monotonic {
            let mut exit = Ok(false);
            for slot in replicas.iter_mut() {
                let (p, stop, r) = self
                    .process_replica(set, revs, monotonic, slot.clone())
                    .await;
                *slot = p;
                if let Err(e) = r {
                    exit = Err(e);
                    break;
                }
                if stop {
                    exit = Ok(true);
                    break;
                }
            }
            exit
        } else {
            let mut exit = Ok(false);
            let mut pos = 0;
            let mut batch = 1.min(replicas.len());
            while pos < replicas.len() {
                let outs = futures::future::join_all(
                    replicas[pos..pos + batch]
                        .iter()
                        .map(|p| self.process_replica(set, revs, monotonic, p.clone())),
                )
                .await;
                let mut failed = None;
                for (i, (p, _, r)) in outs.into_iter().enumerate() {
                    replicas[pos + i] = p;
                    if let Err(e) = r
                        && failed.is_none()
                    {
                        failed = Some(e);
                    }
                }
                pos += batch;
                if let Some(e) = failed {
                    exit = Err(e);
                    break;
                }
                batch = (2 * batch).min(replicas.len() - pos);
            }
            exit
        };
        let recount =
            |status: &mut StatefulSetStatus, replicas: &[Arc<Pod>], condemned: &[Arc<Pod>]| {
                let all: Vec<Arc<Pod>> = replicas.iter().chain(condemned.iter()).cloned().collect();
                count(status, &all, mrs, &self.clock);
            };
        match exit {
            Err(e) => {
                recount(status, &replicas, &condemned);
                return Err(e);
            }
            Ok(true) => {
                recount(status, &replicas, &condemned);
                return Ok(());
            }
            Ok(false) => {}
        }

        // Claims of condemned pods follow the retention policy for scaled-down pods.
        for p in &condemned {
            if !self.claims_match_retention(set, p) {
                self.update_claims_for_retention(set, p).await?;
            }
        }

        // Condemned pods, highest ordinal first.
        for p in &condemned {
            if is_terminating(p) {
                if monotonic {
                    recount(status, &replicas, &condemned);
                    return Ok(());
                }
                continue;
            }
            let is_first_unhealthy = first_unhealthy.as_deref() == Some(p.name_any().as_str());
            if monotonic
                && !is_first_unhealthy
                && (!is_running_and_ready(p) || !is_running_and_available(p, mrs, &self.clock))
            {
                recount(status, &replicas, &condemned);
                return Ok(());
            }
            let r = self.delete_stateful_pod(set, p).await;
            if monotonic || r.is_err() {
                recount(status, &replicas, &condemned);
                return r;
            }
        }
        recount(status, &replicas, &condemned);

        if strategy(set) == "OnDelete" {
            return Ok(());
        }
        // Rolling update: replace the highest ordinal not at the update revision, down to the
        // partition, one at a time, each only once its successors are healthy.
        let min = partition(set).unwrap_or(0).max(0) as usize;
        for target in (min..replicas.len()).rev() {
            let p = &replicas[target];
            if pod_revision(p) != revs.update && !is_terminating(p) {
                let r = self.delete_stateful_pod(set, p).await;
                if let Some(c) = status.current_replicas.as_mut() {
                    *c -= 1;
                }
                return match r {
                    Err(e) if !e.is_not_found() => Err(e),
                    _ => Ok(()),
                };
            }
            if !is_healthy(p) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// `processReplica`: (the pod now, whether to stop here, result).
    async fn process_replica(
        &self,
        set: &Arc<StatefulSet>,
        revs: &Revisions,
        monotonic: bool,
        mut pod: Arc<Pod>,
    ) -> (Arc<Pod>, bool, Result<()>) {
        let ns = set.namespace().unwrap_or_default();
        let ph = crate::controller_utils::phase(&pod).to_string();
        if ph == "Failed" || ph == "Succeeded" {
            let (reason, what, ty) = if ph == "Failed" {
                ("RecreatingFailedPod", "failed", EventType::Warning)
            } else {
                ("RecreatingTerminatedPod", "terminated", EventType::Normal)
            };
            self.recorder.record(
                &**set,
                ty,
                reason,
                &format!(
                    "StatefulSet {ns}/{} is recreating {what} Pod {}",
                    set.name_any(),
                    pod.name_any()
                ),
            );
            if let Err(e) = self.delete_stateful_pod(set, &pod).await {
                return (pod, true, Err(e));
            }
            let ord = ordinal(&pod);
            pod = Arc::new(new_versioned_pod(
                &revs.current_set,
                &revs.update_set,
                &revs.current,
                &revs.update,
                ord,
            ));
        }
        if !is_created(&pod) {
            if self.pod_claim_is_stale(set, &pod) {
                return (pod, true, Ok(()));
            }
            if let Err(e) = self.create_stateful_pod(set, &pod).await {
                return (pod, true, Err(e));
            }
            if monotonic {
                return (pod, true, Ok(()));
            }
        }
        if ph == "Pending"
            && let Err(e) = self.create_missing_claims(set, &pod).await
        {
            return (pod, true, Err(e));
        }
        if monotonic
            && (is_terminating(&pod)
                || !is_running_and_ready(&pod)
                || !is_running_and_available(&pod, min_ready_seconds(set), &self.clock))
        {
            return (pod, true, Ok(()));
        }
        let retention_ok = !is_created(&pod) || self.claims_match_retention(&revs.update_set, &pod);
        if identity_matches(set, &pod) && storage_matches(set, &pod) && retention_ok {
            return (pod, false, Ok(()));
        }
        let r = self.update_stateful_pod(&revs.update_set, &pod).await;
        (pod, false, r)
    }

    fn record_pod_event(&self, verb: &str, set: &StatefulSet, pod: &Pod, err: Option<&Error>) {
        let title = format!("{}{}", verb[..1].to_uppercase(), &verb[1..]);
        match err {
            None => self.recorder.record(
                set,
                EventType::Normal,
                &format!("Successful{title}"),
                &format!(
                    "{verb} Pod {} in StatefulSet {} successful",
                    pod.name_any(),
                    set.name_any()
                ),
            ),
            Some(e) => self.recorder.record(
                set,
                EventType::Warning,
                &format!("Failed{title}"),
                &format!(
                    "{verb} Pod {} in StatefulSet {} failed error: {}",
                    pod.name_any(),
                    set.name_any(),
                    e.api_message()
                ),
            ),
        }
    }

    fn claim(&self, ns: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.claims.get_named(ns, name)
    }

    /// `createPersistentVolumeClaims`: the pod's claims that do not exist yet.
    async fn create_claims(&self, set: &StatefulSet, pod: &Pod) -> Result<()> {
        let ns = set.namespace().unwrap_or_default();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        let mut first = None;
        for (_, c) in claims_for(set, ordinal(pod)) {
            let name = c.name_any();
            match self.claim(&ns, &name) {
                Some(existing) => {
                    if existing.metadata.deletion_timestamp.is_some() && first.is_none() {
                        first = Some(Error::invalid(
                            format!("{ns}/{name}"),
                            format!("pvc {name} is being deleted"),
                        ));
                    }
                }
                None => match api.create(&post_params(), &c).await {
                    Ok(_) => self.recorder.record(
                        set,
                        EventType::Normal,
                        "SuccessfulCreate",
                        &format!(
                            "create Claim {name} Pod {} in StatefulSet {} success",
                            pod.name_any(),
                            set.name_any()
                        ),
                    ),
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => {
                        let err = Error::api("creating claim", format!("{ns}/{name}"), e);
                        self.recorder.record(
                            set,
                            EventType::Warning,
                            "FailedCreate",
                            &format!(
                                "create Claim {name} for Pod {} in StatefulSet {} failed error: {}",
                                pod.name_any(),
                                set.name_any(),
                                err.api_message()
                            ),
                        );
                        if first.is_none() {
                            first = Some(err);
                        }
                    }
                },
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn create_stateful_pod(&self, set: &StatefulSet, pod: &Pod) -> Result<()> {
        if let Err(e) = self.create_claims(set, pod).await {
            self.record_pod_event("create", set, pod, Some(&e));
            return Err(e);
        }
        let ns = set.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        match api.create(&post_params(), pod).await {
            Ok(created) => {
                if let Err(e) = self.update_claims_for_retention(set, &created).await {
                    self.record_pod_event("update", set, pod, Some(&e));
                    return Err(e);
                }
                self.record_pod_event("create", set, pod, None);
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Err(Error::Retry(format!(
                "pod {ns}/{} already exists",
                pod.name_any()
            ))),
            Err(e) => {
                let err = Error::api("creating pod", format!("{ns}/{}", pod.name_any()), e);
                self.record_pod_event("create", set, pod, Some(&err));
                Err(err)
            }
        }
    }

    async fn delete_stateful_pod(&self, set: &StatefulSet, pod: &Pod) -> Result<()> {
        let ns = set.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        match api.delete(&pod.name_any(), &DeleteParams::default()).await {
            Ok(_) => {
                self.record_pod_event("delete", set, pod, None);
                Ok(())
            }
            Err(e) => {
                let err = Error::api("deleting pod", format!("{ns}/{}", pod.name_any()), e);
                self.record_pod_event("delete", set, pod, Some(&err));
                Err(err)
            }
        }
    }

    /// `UpdateStatefulPod`: restores the identity labels and the claims' owner references.
    /// (A pod's volumes cannot change after creation.)
    async fn update_stateful_pod(&self, set: &StatefulSet, pod: &Pod) -> Result<()> {
        let ns = set.namespace().unwrap_or_default();
        if !storage_matches(set, pod) {
            self.create_claims(set, pod).await?;
        }
        if !self.claims_match_retention(set, pod) {
            self.update_claims_for_retention(set, pod).await?;
        }
        if identity_matches(set, pod) {
            return Ok(());
        }
        let mut fixed = pod.clone();
        update_identity(set, &mut fixed);
        let patch = json!({"metadata": {"labels": fixed.metadata.labels}});
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let r = api
            .patch(&pod.name_any(), &patch_params(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| Error::api("updating pod", format!("{ns}/{}", pod.name_any()), e));
        self.record_pod_event("update", set, pod, r.as_ref().err());
        r
    }

    async fn create_missing_claims(&self, set: &StatefulSet, pod: &Pod) -> Result<()> {
        self.create_claims(set, pod).await?;
        self.update_claims_for_retention(set, pod).await
    }

    /// `ClaimsMatchRetentionPolicy` (missing claims match).
    fn claims_match_retention(&self, set: &StatefulSet, pod: &Pod) -> bool {
        let ns = set.namespace().unwrap_or_default();
        claims_for(set, ordinal(pod))
            .iter()
            .filter_map(|(_, c)| self.claim(&ns, &c.name_any()))
            .all(|c| claim_owner_matches(&c, set, pod))
    }

    /// `UpdatePodClaimForRetentionPolicy`.
    async fn update_claims_for_retention(&self, set: &StatefulSet, pod: &Pod) -> Result<()> {
        let ns = set.namespace().unwrap_or_default();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        for (_, c) in claims_for(set, ordinal(pod)) {
            let Some(cur) = self.claim(&ns, &c.name_any()) else {
                continue;
            };
            let mut claim = (*cur).clone();
            if claim_owner_matches(&claim, set, pod)
                || !update_claim_owner_refs(&mut claim, set, pod)
            {
                continue;
            }
            api.replace(&claim.name_any(), &post_params(), &claim)
                .await
                .map_err(|e| {
                    Error::api("updating claim", format!("{ns}/{}", claim.name_any()), e)
                })?;
        }
        Ok(())
    }

    /// `PodClaimIsStale`: a claim still owned by an earlier pod of the same name (the garbage
    /// collector has not removed it yet).
    fn pod_claim_is_stale(&self, set: &StatefulSet, pod: &Pod) -> bool {
        let ns = set.namespace().unwrap_or_default();
        claims_for(set, ordinal(pod)).iter().any(|(_, c)| {
            self.claim(&ns, &c.name_any()).is_some_and(|c| {
                c.metadata.owner_references.iter().flatten().any(|r| {
                    r.kind == "Pod"
                        && Some(&r.name) == pod.metadata.name.as_ref()
                        && Some(&r.uid) != pod.metadata.uid.as_ref()
                })
            })
        })
    }

    /// `updateStatefulSetStatus`: completes a rolling update and writes changed counts.
    async fn update_status(&self, set: &StatefulSet, st: &mut StatefulSetStatus) -> Result<()> {
        if strategy(set) == "RollingUpdate"
            && st.updated_replicas.unwrap_or(0) == st.replicas
            && st.ready_replicas.unwrap_or(0) == st.replicas
        {
            st.current_replicas = st.updated_replicas;
            st.current_revision = st.update_revision.clone();
        }
        let cur = set.status.clone().unwrap_or_default();
        let consistent = st.observed_generation.unwrap_or(0)
            <= cur.observed_generation.unwrap_or(0)
            && st.replicas == cur.replicas
            && nz(st.current_replicas) == nz(cur.current_replicas)
            && nz(st.ready_replicas) == nz(cur.ready_replicas)
            && nz(st.updated_replicas) == nz(cur.updated_replicas)
            && st.current_revision == cur.current_revision
            && st.available_replicas.unwrap_or(0) == cur.available_replicas.unwrap_or(0)
            && st.update_revision == cur.update_revision
            && st.collision_count.unwrap_or(0) == cur.collision_count.unwrap_or(0);
        if consistent {
            return Ok(());
        }
        let mut v = json!({"replicas": st.replicas, "availableReplicas": st.available_replicas.unwrap_or(0)});
        let o = v.as_object_mut().expect("object");
        for (k, n) in [
            ("readyReplicas", st.ready_replicas),
            ("currentReplicas", st.current_replicas),
            ("updatedReplicas", st.updated_replicas),
            ("collisionCount", st.collision_count),
        ] {
            if let Some(n) = nz(n) {
                o.insert(k.into(), json!(n));
            }
        }
        if let Some(g) = st.observed_generation.filter(|g| *g != 0) {
            o.insert("observedGeneration".into(), json!(g));
        }
        for (k, s) in [
            ("currentRevision", &st.current_revision),
            ("updateRevision", &st.update_revision),
        ] {
            if let Some(s) = s.as_ref().filter(|s| !s.is_empty()) {
                o.insert(k.into(), json!(s));
            }
        }
        let patch = json!({"status": replace_fields(v, &[
            "readyReplicas", "currentReplicas", "updatedReplicas", "collisionCount",
            "observedGeneration", "currentRevision", "updateRevision"])});
        let api: Api<StatefulSet> =
            Api::namespaced(self.client.clone(), &set.namespace().unwrap_or_default());
        api.patch_status(&set.name_any(), &patch_params(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| Error::api("updating status of", set_key(set), e))
    }

    /// `truncateHistory`: deletes the oldest revisions beyond revisionHistoryLimit that
    /// neither the status nor any pod uses.
    async fn truncate_history(
        &self,
        set: &StatefulSet,
        pods: &[Arc<Pod>],
        revisions: &[ControllerRevision],
        revs: &Revisions,
    ) -> Result<()> {
        let mut live: std::collections::HashSet<String> =
            pods.iter().map(|p| pod_revision(p).to_string()).collect();
        live.insert(revs.current.clone());
        live.insert(revs.update.clone());
        let history: Vec<&ControllerRevision> = revisions
            .iter()
            .filter(|r| !live.contains(&r.name_any()))
            .collect();
        let limit = set
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10)
            .max(0) as usize;
        if history.len() <= limit {
            return Ok(());
        }
        let ns = set.namespace().unwrap_or_default();
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &ns);
        for r in &history[..history.len() - limit] {
            match api.delete(&r.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    return Err(Error::api(
                        "deleting revision",
                        format!("{ns}/{}", r.name_any()),
                        e,
                    ));
                }
            }
        }
        Ok(())
    }
}

#[allow(dead_code)]
const _LABEL: &str = CONTROLLER_REVISION_HASH;
