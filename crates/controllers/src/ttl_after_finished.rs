//! The TTL-after-finished controller: a finished Job with `ttlSecondsAfterFinished` is deleted
//! (foreground, so its pods go first) that many seconds after it finished, after re-reading it
//! to be sure the TTL was not changed meanwhile.

use std::sync::Arc;
use std::time::Duration;

use ferrokube_client::workqueue::{Action, WorkQueue, run_workers};
use ferrokube_client::{Change, Informer, key_of};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};

use crate::clock::Clock;
use crate::job::finished_condition;
use crate::{Context, Error, Result};

pub struct TtlAfterFinishedController {
    client: kube::Client,
    jobs: Arc<Informer<Job>>,
    queue: Arc<WorkQueue<String>>,
    clock: Clock,
}

fn needs_cleanup(j: &Job) -> bool {
    j.spec
        .as_ref()
        .and_then(|s| s.ttl_seconds_after_finished)
        .is_some()
        && finished_condition(j).is_some()
}

impl TtlAfterFinishedController {
    pub fn new(client: kube::Client, jobs: Arc<Informer<Job>>, clock: Clock) -> Arc<Self> {
        let queue: Arc<WorkQueue<String>> = WorkQueue::new();
        {
            let q = queue.clone();
            jobs.on_change(move |c| {
                if let Change::Added(j) | Change::Updated { new: j, .. } = c
                    && j.metadata.deletion_timestamp.is_none()
                    && needs_cleanup(j)
                {
                    q.add(key_of(&***j));
                }
            });
        }
        Arc::new(TtlAfterFinishedController {
            client,
            jobs,
            queue,
            clock,
        })
    }

    pub fn queue(&self) -> &Arc<WorkQueue<String>> {
        &self.queue
    }

    pub async fn run(self: Arc<Self>, workers: usize, cancel: tokio_util::sync::CancellationToken) {
        tokio::select! {
            _ = self.jobs.wait_synced() => {}
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
            async move { me.sync(&key).await }
        })
        .await;
    }

    /// Seconds left until `j` expires (zero or negative: expired); None if it never does.
    fn time_left(&self, j: &Job) -> Option<i64> {
        if j.metadata.deletion_timestamp.is_some() || !needs_cleanup(j) {
            return None;
        }
        let ttl = j.spec.as_ref()?.ttl_seconds_after_finished? as i64;
        let finished = finished_condition(j)?.last_transition_time.as_ref()?.0;
        let expire_at_ms = finished.as_millisecond() + ttl * 1000;
        Some(expire_at_ms - self.clock.now().as_millisecond())
    }

    pub async fn sync(&self, key: &str) -> Result<Action> {
        let Some(j) = self.jobs.get(key) else {
            return Ok(Action::AwaitChange);
        };
        match self.time_left(&j) {
            None => return Ok(Action::AwaitChange),
            Some(ms) if ms > 0 => return Ok(Action::Requeue(Duration::from_millis(ms as u64))),
            Some(_) => {}
        }
        let api: Api<Job> =
            Api::namespaced(self.client.clone(), &j.namespace().unwrap_or_default());
        let fresh = match api.get_opt(&j.name_any()).await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(Action::AwaitChange),
            Err(e) => return Err(Error::api("reading", key, e)),
        };
        match self.time_left(&fresh) {
            None => return Ok(Action::AwaitChange),
            Some(ms) if ms > 0 => return Ok(Action::Requeue(Duration::from_millis(ms as u64))),
            Some(_) => {}
        }
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            preconditions: Some(Preconditions {
                uid: fresh.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&fresh.name_any(), &dp).await {
            Ok(_) => Ok(Action::AwaitChange),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(Action::AwaitChange),
            Err(e) => Err(Error::api("deleting", key, e)),
        }
    }
}

pub fn start(ctx: Arc<Context>) -> futures::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        let c = TtlAfterFinishedController::new(
            ctx.client.clone(),
            ctx.informers.get::<Job>(),
            ctx.clock.clone(),
        );
        c.run(ctx.config.workers, ctx.cancel.clone()).await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeApi, obj};
    use serde_json::json;

    #[tokio::test(start_paused = true)]
    async fn a_finished_job_is_deleted_once_its_ttl_has_passed() {
        let clock = Clock::at("2024-01-01T00:00:10Z".parse().unwrap());
        let api = FakeApi::new(clock.clone());
        let j: Job = obj(json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "done", "namespace": "default", "uid": "j-uid"},
            "spec": {"ttlSecondsAfterFinished": 100, "template": {"spec": {"containers": []}}},
            "status": {"conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}));
        api.insert(&j);
        let jobs = Informer::<Job>::detached();
        jobs.apply(j);
        let c = TtlAfterFinishedController::new(api.client(), jobs, clock);
        let a = c.sync("default/done").await.unwrap();
        assert_eq!(a, Action::Requeue(Duration::from_secs(90)));
        tokio::time::advance(Duration::from_secs(91)).await;
        assert_eq!(c.sync("default/done").await.unwrap(), Action::AwaitChange);
        let deletes = api.writes("DELETE", "/jobs/done");
        assert_eq!(deletes.len(), 1);
        assert_eq!(deletes[0].body["propagationPolicy"], "Foreground");
        assert_eq!(deletes[0].body["preconditions"]["uid"], "j-uid");
    }
}
