//! Progress reporting (upstream `progress.go`): the Progressing condition against
//! progressDeadlineSeconds, ReplicaFailure copied from the ReplicaSets, and a requeue for when
//! the deadline would pass.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, ReplicaSet};
use kube::ResourceExt;

use super::DeploymentController;
use super::util::*;
use crate::Result;

impl DeploymentController {
    pub(super) async fn sync_rollout_status(
        &self,
        d: &mut Deployment,
        all: &[ReplicaSet],
        new: Option<&ReplicaSet>,
    ) -> Result<()> {
        let mut st = self.calculate_status(d, all, new);
        if !has_progress_deadline(d) {
            remove_condition(&mut st, "Progressing");
        }
        let cur_status = d.status.clone().unwrap_or_default();
        let cur = get_condition(&cur_status, "Progressing").cloned();
        let complete = st.replicas == st.updated_replicas
            && cur.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE);
        let now = self.clock.now_time();
        if has_progress_deadline(d) && !complete {
            let subject = |what: &str| match new {
                Some(n) => format!("ReplicaSet {:?} {what}", n.name_any()),
                None => format!("Deployment {:?} {what}", d.name_any()),
            };
            if deployment_complete(d, &st) {
                let c = new_condition(
                    "Progressing",
                    "True",
                    NEW_RS_AVAILABLE,
                    subject("has successfully progressed."),
                    &now,
                );
                set_condition(&mut st, c);
            } else if deployment_progressing(d, &st) {
                let mut c = new_condition(
                    "Progressing",
                    "True",
                    RS_UPDATED,
                    subject("is progressing."),
                    &now,
                );
                if let Some(cur) = &cur {
                    if cur.status == "True" {
                        c.last_transition_time = cur.last_transition_time.clone();
                    }
                    remove_condition(&mut st, "Progressing");
                }
                set_condition(&mut st, c);
            } else if deployment_timed_out(d, &st, self.clock.now()) {
                let c = new_condition(
                    "Progressing",
                    "False",
                    TIMED_OUT,
                    subject("has timed out progressing."),
                    &now,
                );
                set_condition(&mut st, c);
            }
        }
        match replica_failures(all, new).into_iter().next() {
            Some(c) => set_condition(&mut st, c),
            None => remove_condition(&mut st, "ReplicaFailure"),
        }
        if d.status.as_ref() == Some(&st) {
            self.requeue_stuck(d, &st);
            return Ok(());
        }
        d.status = Some(st);
        self.update_status(d).await
    }

    /// `requeueStuckDeployment`: look again when the progress deadline would pass.
    fn requeue_stuck(&self, d: &Deployment, new: &k8s_openapi::api::apps::v1::DeploymentStatus) {
        let st = d.status.clone().unwrap_or_default();
        let Some(cur) = get_condition(&st, "Progressing") else {
            return;
        };
        if !has_progress_deadline(d)
            || deployment_complete(d, new)
            || cur.reason.as_deref() == Some(TIMED_OUT)
        {
            return;
        }
        let Some(updated) = cur.last_update_time.as_ref() else {
            return;
        };
        let deadline = updated.0 + jiff::SignedDuration::from_secs(progress_deadline(d) as i64);
        let after = deadline.duration_since(self.clock.now());
        let after = Duration::try_from(after).unwrap_or(Duration::ZERO);
        let key = format!("{}/{}", d.namespace().unwrap_or_default(), d.name_any());
        self.queue
            .add_after(key, after.max(Duration::from_millis(100)));
    }
}

/// `getReplicaFailures`: ReplicaFailure of the new ReplicaSet first, else of any.
fn replica_failures(all: &[ReplicaSet], new: Option<&ReplicaSet>) -> Vec<DeploymentCondition> {
    let conv = |rs: &ReplicaSet| -> Vec<DeploymentCondition> {
        rs.status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.type_ == "ReplicaFailure")
            .map(|c| DeploymentCondition {
                type_: c.type_,
                status: c.status,
                reason: c.reason,
                message: c.message,
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time,
            })
            .collect()
    };
    if let Some(n) = new {
        let v = conv(n);
        if !v.is_empty() {
            return v;
        }
    }
    all.iter().flat_map(conv).collect()
}
