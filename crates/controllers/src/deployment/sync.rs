//! Scaling, revisions, clean-up and status: the parts of a sync every strategy shares
//! (upstream `sync.go`).

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::DeploymentController;
use super::util::*;
use crate::controller_utils::{by_creation, controller_of, new_controller_ref};
use crate::{Error, Result};
use ferrokube_client::events::EventType;

/// Go omits zero counters: compare and store them as absent.
pub(super) fn nz(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

pub(super) fn with_new(old: &[ReplicaSet], new: Option<&ReplicaSet>) -> Vec<ReplicaSet> {
    let mut all = old.to_vec();
    if let Some(n) = new {
        all.push(n.clone());
    }
    all
}

impl DeploymentController {
    pub(super) async fn sync_status_only(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> Result<()> {
        let (new, old) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, false)
            .await?;
        let all = with_new(&old, new.as_ref());
        self.sync_deployment_status(d, &all, new.as_ref()).await
    }

    /// `sync`: scaling events and paused Deployments.
    pub(super) async fn sync_scale(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> Result<()> {
        let (new, old) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, false)
            .await?;
        self.scale(d, new.as_ref(), &old).await?;
        if d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false) {
            self.cleanup_deployment(d, &old).await?;
        }
        let all = with_new(&old, new.as_ref());
        self.sync_deployment_status(d, &all, new.as_ref()).await
    }

    /// `checkPausedConditions`: an Unknown Progressing condition while paused, so a resumed
    /// Deployment does not time out for the time it spent paused.
    pub(super) async fn check_paused_conditions(&self, d: &mut Deployment) -> Result<()> {
        if !has_progress_deadline(d) {
            return Ok(());
        }
        let st = d.status.clone().unwrap_or_default();
        let cond = get_condition(&st, "Progressing");
        if cond.is_some_and(|c| c.reason.as_deref() == Some(TIMED_OUT)) {
            return Ok(());
        }
        let paused_cond = cond.is_some_and(|c| c.reason.as_deref() == Some(PAUSED));
        let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        let now = self.clock.now_time();
        let c = if paused && !paused_cond {
            new_condition(
                "Progressing",
                "Unknown",
                PAUSED,
                "Deployment is paused".into(),
                &now,
            )
        } else if !paused && paused_cond {
            new_condition(
                "Progressing",
                "Unknown",
                RESUMED,
                "Deployment is resumed".into(),
                &now,
            )
        } else {
            return Ok(());
        };
        set_condition(d.status.get_or_insert_with(Default::default), c);
        self.update_status(d).await
    }

    /// `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (created if asked) and the old
    /// ones, with the new one's revision raised above every old one.
    pub(super) async fn get_all_replica_sets_and_sync_revision(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let old = find_old_replica_sets(d, rs_list);
        let new = self.get_new_replica_set(d, rs_list, &old, create).await?;
        // Later steps of this sync see what was just written.
        if let Some(n) = &new {
            match rs_list
                .iter_mut()
                .find(|r| r.metadata.uid == n.metadata.uid)
            {
                Some(slot) => *slot = n.clone(),
                None => rs_list.push(n.clone()),
            }
        }
        Ok((new, old))
    }

    async fn get_new_replica_set(
        &self,
        d: &mut Deployment,
        rs_list: &[ReplicaSet],
        old: &[ReplicaSet],
        create: bool,
    ) -> Result<Option<ReplicaSet>> {
        let existing = find_new_replica_set(d, rs_list);
        let new_revision = (max_revision(old) + 1).to_string();
        let now = self.clock.now_time();
        if let Some(existing) = existing {
            let mut rs = existing.clone();
            let annotations_updated = set_new_replica_set_annotations(
                d,
                &mut rs,
                &new_revision,
                true,
                MAX_REV_HISTORY_LENGTH_IN_CHARS,
            );
            let mrs = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let rs_mrs = rs.spec.as_ref().and_then(|s| s.min_ready_seconds);
            if annotations_updated || mrs.unwrap_or(0) != rs_mrs.unwrap_or(0) {
                rs.spec
                    .get_or_insert_with(Default::default)
                    .min_ready_seconds = mrs;
                return self.update_replica_set(&rs).await.map(Some);
            }
            let rev = annotation(&rs.metadata, REVISION).unwrap_or("").to_string();
            let mut needs_update = set_deployment_revision(d, &rev);
            let no_progress = d
                .status
                .as_ref()
                .is_none_or(|st| get_condition(st, "Progressing").is_none());
            if has_progress_deadline(d) && no_progress {
                let c = new_condition(
                    "Progressing",
                    "True",
                    FOUND_NEW_RS,
                    format!("Found new replica set {:?}", rs.name_any()),
                    &now,
                );
                set_condition(d.status.get_or_insert_with(Default::default), c);
                needs_update = true;
            }
            if needs_update {
                self.update_status(d).await?;
            }
            return Ok(Some(rs));
        }
        if !create {
            return Ok(None);
        }

        let mut template = template(d);
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = compute_hash(&template, collision);
        template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector = d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{}-{hash}", d.name_any())),
                namespace: d.namespace(),
                owner_references: Some(vec![new_controller_ref(d)]),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: d.spec.as_ref().and_then(|s| s.min_ready_seconds),
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let mut all = old.to_vec();
        all.push(rs.clone());
        let count = new_rs_new_replicas(d, &all, &rs);
        set_rs_replicas(&mut rs, count);
        set_new_replica_set_annotations(
            d,
            &mut rs,
            &new_revision,
            false,
            MAX_REV_HISTORY_LENGTH_IN_CHARS,
        );

        let mut already_exists = false;
        let created = match self.create_replica_set(&rs).await {
            Ok(c) => c,
            Err(e) if e.code() == Some(409) => {
                already_exists = true;
                let name = rs.name_any();
                let existing = self
                    .sets
                    .get_named(&d.namespace().unwrap_or_default(), &name)
                    .ok_or(e)?;
                let ours = controller_of(&existing.metadata)
                    .is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref());
                if ours && equal_ignore_hash(&template_of(d), &rs_template(&existing)) {
                    (*existing).clone()
                } else {
                    // A hash collision: count it, so the next sync computes another name.
                    let st = d.status.get_or_insert_with(Default::default);
                    st.collision_count = Some(st.collision_count.unwrap_or(0) + 1);
                    self.update_status(d).await?;
                    return Err(Error::Retry(format!(
                        "hash collision creating replica set {name}; collisionCount is now {}",
                        d.status
                            .as_ref()
                            .and_then(|s| s.collision_count)
                            .unwrap_or(0)
                    )));
                }
            }
            Err(e) if e.is_namespace_terminating() => return Err(e),
            Err(e) => {
                let msg = format!(
                    "Failed to create new replica set {:?}: {}",
                    rs.name_any(),
                    e.api_message()
                );
                if has_progress_deadline(d) {
                    let c =
                        new_condition("Progressing", "False", FAILED_RS_CREATE, msg.clone(), &now);
                    set_condition(d.status.get_or_insert_with(Default::default), c);
                    let _ = self.update_status(d).await;
                }
                self.recorder
                    .record(&*d, EventType::Warning, FAILED_RS_CREATE, &msg);
                return Err(e);
            }
        };
        if !already_exists && count > 0 {
            self.recorder.record(
                &*d,
                EventType::Normal,
                "ScalingReplicaSet",
                &format!(
                    "Scaled up replica set {} from 0 to {count}",
                    created.name_any()
                ),
            );
        }
        let mut needs_update = set_deployment_revision(d, &new_revision);
        if !already_exists && has_progress_deadline(d) {
            let c = new_condition(
                "Progressing",
                "True",
                NEW_RS_CREATED,
                format!("Created new replica set {:?}", created.name_any()),
                &now,
            );
            set_condition(d.status.get_or_insert_with(Default::default), c);
            needs_update = true;
        }
        if needs_update {
            self.update_status(d).await?;
        }
        Ok(Some(created))
    }

    /// `scale`: a resize of the Deployment outside a rollout goes to the only active
    /// ReplicaSet, or proportionally to all of them during a rolling update.
    pub(super) async fn scale(
        &self,
        d: &Deployment,
        new: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> Result<()> {
        let want = replicas(d);
        if let Some(rs) = find_active_or_latest(new, old) {
            if rs_replicas(&rs) == want {
                return Ok(());
            }
            self.scale_rs_and_record(&rs, want, d).await?;
            return Ok(());
        }
        if is_saturated(d, new) {
            for o in filter_active(old) {
                self.scale_rs_and_record(&o, 0, d).await?;
            }
            return Ok(());
        }
        if !is_rolling(d) {
            return Ok(());
        }
        let mut all = filter_active(&with_new(old, new));
        let all_replicas = replica_count(&all);
        let allowed = if want > 0 { want + max_surge(d) } else { 0 };
        let to_add = allowed - all_replicas;
        let op = if to_add > 0 {
            // Bigger first; newer first among equals.
            all.sort_by(|a, b| {
                rs_replicas(b)
                    .cmp(&rs_replicas(a))
                    .then_with(|| by_creation(&b.metadata, &a.metadata))
            });
            "up"
        } else if to_add < 0 {
            // Bigger first; older first among equals.
            all.sort_by(|a, b| {
                rs_replicas(b)
                    .cmp(&rs_replicas(a))
                    .then_with(|| by_creation(&a.metadata, &b.metadata))
            });
            "down"
        } else {
            ""
        };
        let mut added = 0;
        let mut sizes: Vec<i32> = Vec::with_capacity(all.len());
        for rs in &all {
            if to_add != 0 {
                let p = get_proportion(rs, d, to_add, added);
                sizes.push(rs_replicas(rs) + p);
                added += p;
            } else {
                sizes.push(rs_replicas(rs));
            }
        }
        for (i, rs) in all.iter().enumerate() {
            if i == 0 && to_add != 0 {
                sizes[0] = (sizes[0] + to_add - added).max(0);
            }
            self.scale_replica_set(rs, sizes[i], d, op).await?;
        }
        Ok(())
    }

    pub(super) async fn scale_rs_and_record(
        &self,
        rs: &ReplicaSet,
        new_scale: i32,
        d: &Deployment,
    ) -> Result<(bool, ReplicaSet)> {
        if rs_replicas(rs) == new_scale {
            return Ok((false, rs.clone()));
        }
        let op = if rs_replicas(rs) < new_scale {
            "up"
        } else {
            "down"
        };
        self.scale_replica_set(rs, new_scale, d, op).await
    }

    async fn scale_replica_set(
        &self,
        rs: &ReplicaSet,
        new_scale: i32,
        d: &Deployment,
        op: &str,
    ) -> Result<(bool, ReplicaSet)> {
        let size_changes = rs_replicas(rs) != new_scale;
        let (desired, max) = (replicas(d), replicas(d) + max_surge(d));
        if !size_changes && !replicas_annotations_need_update(rs, desired, max) {
            return Ok((false, rs.clone()));
        }
        let old_scale = rs_replicas(rs);
        let mut copy = rs.clone();
        set_rs_replicas(&mut copy, new_scale);
        set_replicas_annotations(&mut copy, desired, max);
        let updated = self.update_replica_set(&copy).await?;
        if size_changes {
            self.recorder.record(
                d,
                EventType::Normal,
                "ScalingReplicaSet",
                &format!(
                    "Scaled {op} replica set {} from {old_scale} to {new_scale}",
                    updated.name_any()
                ),
            );
        }
        Ok((size_changes, updated))
    }

    /// `cleanupDeployment`: deletes the oldest revisions beyond revisionHistoryLimit that no
    /// longer run anything.
    pub(super) async fn cleanup_deployment(
        &self,
        d: &Deployment,
        old: &[ReplicaSet],
    ) -> Result<()> {
        let Some(limit) = d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = old
            .iter()
            .filter(|r| r.metadata.deletion_timestamp.is_none())
            .collect();
        let diff = cleanable.len() as i64 - limit as i64;
        if diff <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| {
            revision(&a.metadata)
                .cmp(&revision(&b.metadata))
                .then_with(|| by_creation(&a.metadata, &b.metadata))
        });
        for rs in cleanable.into_iter().take(diff as usize) {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if rs_status_replicas(rs) != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            self.delete_replica_set(rs).await?;
        }
        Ok(())
    }

    /// `syncDeploymentStatus`.
    pub(super) async fn sync_deployment_status(
        &self,
        d: &mut Deployment,
        all: &[ReplicaSet],
        new: Option<&ReplicaSet>,
    ) -> Result<()> {
        let st = self.calculate_status(d, all, new);
        if d.status.as_ref() == Some(&st) {
            return Ok(());
        }
        d.status = Some(st);
        self.update_status(d).await
    }

    /// `calculateStatus`: counts from the ReplicaSets and the Available condition.
    pub(super) fn calculate_status(
        &self,
        d: &Deployment,
        all: &[ReplicaSet],
        new: Option<&ReplicaSet>,
    ) -> DeploymentStatus {
        let available = available_replica_count(all);
        let total = replica_count(all);
        let unavailable = (total - available).max(0);
        let cur = d.status.clone().unwrap_or_default();
        let mut st = DeploymentStatus {
            observed_generation: d.metadata.generation.filter(|g| *g != 0),
            replicas: nz(actual_replica_count(all)),
            updated_replicas: nz(new.map(rs_status_replicas).unwrap_or(0)),
            ready_replicas: nz(ready_replica_count(all)),
            available_replicas: nz(available),
            unavailable_replicas: nz(unavailable),
            collision_count: cur.collision_count,
            conditions: cur.conditions.clone(),
            ..Default::default()
        };
        let now = self.clock.now_time();
        let c = if available >= replicas(d) - max_unavailable(d) {
            new_condition(
                "Available",
                "True",
                MIN_AVAILABLE,
                "Deployment has minimum availability.".into(),
                &now,
            )
        } else {
            new_condition(
                "Available",
                "False",
                MIN_UNAVAILABLE,
                "Deployment does not have minimum availability.".into(),
                &now,
            )
        };
        set_condition(&mut st, c);
        st
    }

    /// `isScalingEvent`: an active ReplicaSet was sized for a different replica count.
    pub(super) async fn is_scaling_event(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> Result<bool> {
        let (new, old) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, false)
            .await?;
        let want = replicas(d);
        Ok(filter_active(&with_new(&old, new.as_ref()))
            .iter()
            .any(|rs| desired_replicas_annotation(rs).is_some_and(|v| v != want)))
    }
}

fn template_of(d: &Deployment) -> k8s_openapi::api::core::v1::PodTemplateSpec {
    template(d)
}
