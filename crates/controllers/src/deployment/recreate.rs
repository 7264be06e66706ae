//! Recreate (upstream `recreate.go`): scale every old ReplicaSet to zero, wait until their
//! pods are gone, then create and scale up the new one.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::DeploymentController;
use super::sync::with_new;
use super::util::*;
use crate::Result;

impl DeploymentController {
    pub(super) async fn rollout_recreate(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> Result<()> {
        let (mut new, mut old) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, false)
            .await?;
        let mut all = with_new(&old, new.as_ref());
        let mut scaled_down = false;
        for rs in filter_active(&old) {
            if self.scale_rs_and_record(&rs, 0, d).await?.0 {
                scaled_down = true;
            }
        }
        if scaled_down {
            return self.sync_rollout_status(d, &all, new.as_ref()).await;
        }
        if self.old_pods_running(d, new.as_ref(), &old, rs_list) {
            return self.sync_rollout_status(d, &all, new.as_ref()).await;
        }
        if new.is_none() {
            (new, old) = self
                .get_all_replica_sets_and_sync_revision(d, rs_list, true)
                .await?;
            all = with_new(&old, new.as_ref());
        }
        if let Some(n) = &new {
            self.scale_rs_and_record(n, replicas(d), d).await?;
        }
        let st = d.status.clone().unwrap_or_default();
        if deployment_complete(d, &st) {
            self.cleanup_deployment(d, &old).await?;
        }
        self.sync_rollout_status(d, &all, new.as_ref()).await
    }

    /// `oldPodsRunning`: old ReplicaSets still report pods, or any of their pods is not finished.
    fn old_pods_running(
        &self,
        d: &Deployment,
        new: Option<&ReplicaSet>,
        old: &[ReplicaSet],
        rs_list: &[ReplicaSet],
    ) -> bool {
        if actual_replica_count(old) > 0 {
            return true;
        }
        let new_uid = new.and_then(|n| n.metadata.uid.clone());
        self.pods_by_replica_set(d, rs_list)
            .into_iter()
            .filter(|(uid, _)| Some(uid) != new_uid.as_ref())
            .any(|(_, pods)| {
                pods.iter().any(|p| {
                    let ph = crate::controller_utils::phase(p);
                    ph != "Failed" && ph != "Succeeded"
                })
            })
    }
}
