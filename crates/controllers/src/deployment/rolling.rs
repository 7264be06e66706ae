//! RollingUpdate (upstream `rolling.go`): grow the new ReplicaSet within maxSurge, shrink old
//! ones within maxUnavailable, first the unhealthy replicas, then the oldest ReplicaSets.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::DeploymentController;
use super::sync::with_new;
use super::util::*;
use crate::controller_utils::by_creation;
use crate::{Error, Result};

/// Available replicas of a ReplicaSet as far as scaling down may rely on them: a ReplicaSet
/// whose spec was just lowered still reports the pods it is about to delete.
fn safe_available(rs: &ReplicaSet) -> i32 {
    rs_available(rs).min(rs_replicas(rs))
}

impl DeploymentController {
    pub(super) async fn rollout_rolling(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> Result<()> {
        let (new, old) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, true)
            .await?;
        let Some(new) = new else {
            return Err(Error::Retry(format!(
                "{}: new replica set not found",
                Self::name_of(d)
            )));
        };
        let all = with_new(&old, Some(&new));
        if self.reconcile_new_replica_set(&all, &new, d).await? {
            return self.sync_rollout_status(d, &all, Some(&new)).await;
        }
        if self
            .reconcile_old_replica_sets(&all, &filter_active(&old), &new, d)
            .await?
        {
            return self.sync_rollout_status(d, &all, Some(&new)).await;
        }
        let st = d.status.clone().unwrap_or_default();
        if deployment_complete(d, &st) {
            self.cleanup_deployment(d, &old).await?;
        }
        self.sync_rollout_status(d, &all, Some(&new)).await
    }

    async fn reconcile_new_replica_set(
        &self,
        all: &[ReplicaSet],
        new: &ReplicaSet,
        d: &Deployment,
    ) -> Result<bool> {
        let want = replicas(d);
        if rs_replicas(new) == want {
            return Ok(false);
        }
        if rs_replicas(new) > want {
            return Ok(self.scale_rs_and_record(new, want, d).await?.0);
        }
        let count = new_rs_new_replicas(d, all, new);
        Ok(self.scale_rs_and_record(new, count, d).await?.0)
    }

    async fn reconcile_old_replica_sets(
        &self,
        all: &[ReplicaSet],
        old: &[ReplicaSet],
        new: &ReplicaSet,
        d: &Deployment,
    ) -> Result<bool> {
        if replica_count(old) == 0 {
            return Ok(false);
        }
        let all_pods = replica_count(all);
        let min_available = replicas(d) - max_unavailable(d);
        let new_unavailable = rs_replicas(new) - rs_available(new);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        let (old, cleaned) = self
            .cleanup_unhealthy_replicas(old, d, max_scaled_down)
            .await?;
        let all = with_new(&old, Some(new));
        let scaled = self
            .scale_down_old_replica_sets(&all, &old, d, max_scaled_down - cleaned)
            .await?;
        Ok(cleaned + scaled > 0)
    }

    /// Scales down old replicas that are not available, at most `max_cleanup`.
    async fn cleanup_unhealthy_replicas(
        &self,
        old: &[ReplicaSet],
        d: &Deployment,
        max_cleanup: i32,
    ) -> Result<(Vec<ReplicaSet>, i32)> {
        let mut old = old.to_vec();
        old.sort_by(|a, b| by_creation(&a.metadata, &b.metadata));
        let mut total = 0;
        for rs in old.iter_mut() {
            if total >= max_cleanup {
                break;
            }
            let r = rs_replicas(rs);
            if r == 0 || r == rs_available(rs) {
                continue;
            }
            let n = (max_cleanup - total).min(r - rs_available(rs));
            let (_, updated) = self.scale_rs_and_record(rs, r - n, d).await?;
            total += n;
            *rs = updated;
        }
        Ok((old, total))
    }

    /// Scales down old ReplicaSets, oldest first, while enough replicas stay available.
    async fn scale_down_old_replica_sets(
        &self,
        all: &[ReplicaSet],
        old: &[ReplicaSet],
        d: &Deployment,
        budget: i32,
    ) -> Result<i32> {
        let min_available = replicas(d) - max_unavailable(d);
        let available: i32 = all.iter().map(safe_available).sum();
        if available <= min_available {
            return Ok(0);
        }
        let mut old = old.to_vec();
        old.sort_by(|a, b| by_creation(&a.metadata, &b.metadata));
        let target = (available - min_available).min(budget.max(0));
        let mut total = 0;
        for rs in &old {
            if total >= target {
                break;
            }
            let r = rs_replicas(rs);
            if r == 0 {
                continue;
            }
            let n = r.min(target - total);
            self.scale_rs_and_record(rs, r - n, d).await?;
            total += n;
        }
        Ok(total)
    }
}
