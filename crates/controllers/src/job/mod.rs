//! The Job controller (batch/v1, as of 1.33): runs pods until `completions` succeed (or any
//! one, without completions), at most `parallelism` at a time, NonIndexed or Indexed (each pod
//! gets a completion index in an annotation, a label, its hostname and `JOB_COMPLETION_INDEX`).
//! Finished pods are counted through the `batch.kubernetes.io/job-tracking` finalizer and
//! `status.uncountedTerminatedPods`, so no pod is counted twice or lost. Failed pods are
//! replaced after a backoff of 10 s doubling up to 10 minutes; past `backoffLimit` or
//! `activeDeadlineSeconds` the Job gets FailureTarget, its pods are stopped, then Failed.
//! Success gives SuccessCriteriaMet, then Complete once no pod is left terminating. A
//! suspended Job runs no pods.

pub mod indexes;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ferrokube_client::events::{EventRecorder, EventType};
use ferrokube_client::workqueue::{Action, WorkQueue, run_workers};
use ferrokube_client::{Change, Informer, key_of};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch};
use parking_lot::Mutex;
use serde_json::json;

use crate::clock::Clock;
use crate::controller_utils::{
    PodControl, SLOW_START_INITIAL_BATCH_SIZE, add_owner_indexes, claim_candidates, controller_of,
    delete_before, is_pod_active, is_pod_ready, is_pod_terminating, new_controller_ref,
    patch_params, phase, pod_from_template, pod_key, post_params, selector,
};
use crate::expectations::Expectations;
use crate::ref_manager::RefManager;
use crate::{Context, Error, Result};

pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Upstream's `DefaultJobPodFailureBackOff` and `MaxJobPodFailureBackOff`.
pub const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(600);
/// Upstream's `MaxUncountedPods` and `MaxPodCreateDeletePerSync`.
const MAX_UNCOUNTED: usize = 500;
const MAX_CREATE_DELETE: usize = 500;

fn has_finalizer(p: &Pod) -> bool {
    p.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

fn completions(job: &Job) -> Option<i32> {
    job.spec.as_ref().and_then(|s| s.completions)
}

fn parallelism(job: &Job) -> i32 {
    job.spec.as_ref().and_then(|s| s.parallelism).unwrap_or(1)
}

fn backoff_limit(job: &Job) -> i32 {
    job.spec.as_ref().and_then(|s| s.backoff_limit).unwrap_or(6)
}

fn suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false)
}

/// `onlyReplaceFailedPods`: podReplacementPolicy Failed (or a pod failure policy).
fn only_replace_failed(job: &Job) -> bool {
    let s = job.spec.as_ref();
    s.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed")
        || s.is_some_and(|s| s.pod_failure_policy.is_some())
}

/// `isPodFailed`: Failed, or (unless only failed pods are replaced) deleted before succeeding.
fn is_pod_failed(p: &Pod, job: &Job) -> bool {
    if phase(p) == "Failed" {
        return true;
    }
    if only_replace_failed(job) {
        return false;
    }
    p.metadata.deletion_timestamp.is_some() && phase(p) != "Succeeded"
}

/// `IsJobFinished`.
pub fn is_finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
}

/// The condition that finished the Job (`Complete` or `Failed`), if any.
pub fn finished_condition(job: &Job) -> Option<&JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

fn find_condition<'a>(st: &'a JobStatus, type_: &str) -> Option<&'a JobCondition> {
    st.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &Time,
) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: (!reason.is_empty()).then(|| reason.into()),
        message: (!message.is_empty()).then(|| message.into()),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

/// `ensureJobConditionStatus`: returns whether the list changed.
fn ensure_condition(st: &mut JobStatus, c: JobCondition) -> bool {
    let list = st.conditions.get_or_insert_with(Vec::new);
    if let Some(cur) = list.iter_mut().find(|x| x.type_ == c.type_) {
        if cur.status != c.status || cur.reason != c.reason || cur.message != c.message {
            *cur = c;
            return true;
        }
        return false;
    }
    if c.status == "False" {
        return false;
    }
    list.push(c);
    true
}

/// When a pod finished: its last container's finish time, else when it stopped being ready.
fn finished_time(p: &Pod) -> Option<jiff::Timestamp> {
    let st = p.status.as_ref()?;
    let from_containers = st
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| {
            c.state
                .as_ref()?
                .terminated
                .as_ref()?
                .finished_at
                .as_ref()
                .map(|t| t.0)
        })
        .max();
    from_containers.or_else(|| {
        st.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0))
    })
}

/// Failures since the last success, for the pod-failure backoff (upstream `backoffRecord`).
#[derive(Clone, Debug, Default)]
struct BackoffRecord {
    failures_after_last_success: i32,
    last_failure: Option<jiff::Timestamp>,
}

impl BackoffRecord {
    fn next(
        &self,
        succeeded: &[Arc<Pod>],
        failed: &[Arc<Pod>],
        now: jiff::Timestamp,
    ) -> BackoffRecord {
        let mut b = self.clone();
        let time = |p: &Arc<Pod>| finished_time(p).unwrap_or(now);
        let mut failed: Vec<jiff::Timestamp> = failed.iter().map(time).collect();
        failed.sort();
        if succeeded.is_empty() {
            if failed.is_empty() {
                return b;
            }
            b.failures_after_last_success += failed.len() as i32;
            b.last_failure = failed.last().copied();
            return b;
        }
        let last_success = succeeded.iter().map(time).max().unwrap_or(now);
        b.failures_after_last_success = 0;
        b.last_failure = None;
        for f in failed.iter().rev() {
            if *f <= last_success {
                break;
            }
            if b.last_failure.is_none() {
                b.last_failure = Some(*f);
            }
            b.failures_after_last_success += 1;
        }
        b
    }

    /// How long new pods must still wait: 10 s doubling per failure, capped at 10 min.
    fn remaining(&self, now: jiff::Timestamp) -> Duration {
        if self.failures_after_last_success == 0 {
            return Duration::ZERO;
        }
        let mut d = POD_FAILURE_BACKOFF;
        for _ in 1..self.failures_after_last_success {
            d *= 2;
            if d >= MAX_POD_FAILURE_BACKOFF {
                d = MAX_POD_FAILURE_BACKOFF;
                break;
            }
        }
        let since = self
            .last_failure
            .map(|t| Duration::try_from(now.duration_since(t)).unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::ZERO);
        d.saturating_sub(since)
    }
}

pub struct JobController {
    client: kube::Client,
    jobs: Arc<Informer<Job>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<WorkQueue<String>>,
    expectations: Arc<Expectations>,
    /// Pods whose finalizer removal was requested but not yet seen, per Job.
    finalizer_expectations: Arc<Mutex<HashMap<String, HashSet<String>>>>,
    backoff: Mutex<HashMap<String, BackoffRecord>>,
    pod_control: PodControl,
    recorder: EventRecorder,
    clock: Clock,
}

fn resolve(
    jobs: &Informer<Job>,
    ns: &str,
    r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Option<Arc<Job>> {
    if r.kind != "Job" {
        return None;
    }
    let j = jobs.get_named(ns, &r.name)?;
    (j.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(j)
}

/// Per-sync state (upstream `syncJobCtx`).
struct Ctx {
    job: Job,
    pods: Vec<Arc<Pod>>,
    active_pods: Vec<Arc<Pod>>,
    ready: i32,
    terminating: i32,
    succeeded: i32,
    failed: i32,
    uncounted_succeeded: HashSet<String>,
    uncounted_failed: HashSet<String>,
    expected_rm_finalizers: HashSet<String>,
    finished: Option<JobCondition>,
    prev_succeeded_indexes: BTreeSet<i32>,
    succeeded_indexes: BTreeSet<i32>,
    new_backoff: BackoffRecord,
}

impl JobController {
    pub fn new(
        client: kube::Client,
        jobs: Arc<Informer<Job>>,
        pods: Arc<Informer<Pod>>,
        recorder: EventRecorder,
        clock: Clock,
    ) -> Arc<Self> {
        add_owner_indexes(&pods);
        let queue: Arc<WorkQueue<String>> = WorkQueue::new();
        let expectations = Arc::new(Expectations::new());
        let finalizer_expectations: Arc<Mutex<HashMap<String, HashSet<String>>>> = Arc::default();
        {
            let (q, exp) = (queue.clone(), expectations.clone());
            jobs.on_change(move |c| {
                let key = key_of(&**c.object());
                if let Change::Deleted(_) = c {
                    exp.delete(&key);
                }
                q.add(key);
            });
        }
        {
            let (q, exp, fexp, j2) = (
                queue.clone(),
                expectations.clone(),
                finalizer_expectations.clone(),
                jobs.clone(),
            );
            pods.on_change(move |c| {
                let pod = c.object();
                let ns = pod.namespace().unwrap_or_default();
                let Some(r) = controller_of(&pod.metadata) else {
                    return;
                };
                let Some(job) = resolve(&j2, &ns, r) else {
                    return;
                };
                let key = key_of(&*job);
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                match c {
                    Change::Added(p) => {
                        if p.metadata.deletion_timestamp.is_some() {
                            exp.deletion_observed(&key, &pod_key(p));
                        } else {
                            exp.creation_observed(&key);
                        }
                    }
                    Change::Updated { old, new } => {
                        if old.metadata.resource_version == new.metadata.resource_version {
                            return;
                        }
                        if new.metadata.deletion_timestamp.is_some() {
                            exp.deletion_observed(&key, &pod_key(new));
                        }
                    }
                    Change::Deleted(p) => {
                        exp.deletion_observed(&key, &pod_key(p));
                    }
                }
                if (matches!(c, Change::Deleted(_)) || !has_finalizer(pod))
                    && let Some(s) = fexp.lock().get_mut(&key)
                {
                    s.remove(&uid);
                }
                q.add(key);
            });
        }
        Arc::new(JobController {
            pod_control: PodControl::new(client.clone(), recorder.clone()),
            client,
            jobs,
            pods,
            queue,
            expectations,
            finalizer_expectations,
            backoff: Mutex::new(HashMap::new()),
            recorder,
            clock,
        })
    }

    pub fn queue(&self) -> &Arc<WorkQueue<String>> {
        &self.queue
    }

    pub async fn run(self: Arc<Self>, workers: usize, cancel: tokio_util::sync::CancellationToken) {
        tokio::select! {
            _ = async { self.jobs.wait_synced().await; self.pods.wait_synced().await } => {}
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

    fn expected_rm(&self, key: &str) -> HashSet<String> {
        self.finalizer_expectations
            .lock()
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// `syncJob`.
    pub async fn sync(&self, key: &str) -> Result<()> {
        let Some(shared) = self.jobs.get(key) else {
            self.expectations.delete(key);
            self.finalizer_expectations.lock().remove(key);
            self.backoff.lock().remove(key);
            return Ok(());
        };
        if shared
            .spec
            .as_ref()
            .and_then(|s| s.managed_by.as_deref())
            .is_some_and(|m| m != "kubernetes.io/job-controller")
        {
            return Ok(());
        }
        let mut job: Job = (*shared).clone();
        if is_finished(&job) {
            self.backoff.lock().remove(key);
            return Ok(());
        }
        if let Some(m) = job.spec.as_ref().and_then(|s| s.completion_mode.as_deref())
            && m != "NonIndexed"
            && m != "Indexed"
        {
            self.recorder.record(
                &job,
                EventType::Warning,
                "UnknownCompletionMode",
                "Skipped Job sync because completion mode is unknown",
            );
            return Ok(());
        }
        let status = job.status.get_or_insert_with(Default::default);
        let uncounted = status
            .uncounted_terminated_pods
            .get_or_insert_with(UncountedTerminatedPods::default)
            .clone();
        let satisfied = self.expectations.satisfied(key);

        let pods = self.pods_for_job(&job).await?;
        let active_pods: Vec<Arc<Pod>> =
            pods.iter().filter(|p| is_pod_active(p)).cloned().collect();
        let now = self.clock.now();
        let mut ctx = Ctx {
            ready: active_pods.iter().filter(|p| is_pod_ready(p)).count() as i32,
            terminating: pods.iter().filter(|p| is_pod_terminating(p)).count() as i32,
            uncounted_succeeded: uncounted.succeeded.iter().flatten().cloned().collect(),
            uncounted_failed: uncounted.failed.iter().flatten().cloned().collect(),
            expected_rm_finalizers: self.expected_rm(key),
            job,
            pods,
            active_pods,
            succeeded: 0,
            failed: 0,
            finished: None,
            prev_succeeded_indexes: BTreeSet::new(),
            succeeded_indexes: BTreeSet::new(),
            new_backoff: BackoffRecord::default(),
        };
        let mut active = ctx.active_pods.len() as i32;
        let (new_succeeded, new_failed) = self.new_finished_pods(&ctx);
        let st = ctx.job.status.clone().unwrap_or_default();
        ctx.succeeded = st.succeeded.unwrap_or(0)
            + new_succeeded.len() as i32
            + ctx.uncounted_succeeded.len() as i32;
        ctx.failed =
            st.failed.unwrap_or(0) + new_failed.len() as i32 + ctx.uncounted_failed.len() as i32;

        let now_time = self.clock.now_time();
        if st.start_time.is_none() && !suspended(&ctx.job) {
            ctx.job.status.as_mut().expect("status").start_time = Some(now_time.clone());
        }
        ctx.new_backoff = self
            .backoff
            .lock()
            .get(key)
            .cloned()
            .unwrap_or_default()
            .next(&new_succeeded, &new_failed, now);

        let exceeds_backoff = ctx.failed > backoff_limit(&ctx.job);
        let st = ctx.job.status.clone().unwrap_or_default();
        if let Some(c) = find_condition(&st, "SuccessCriteriaMet").filter(|c| c.status == "True") {
            ctx.finished = Some(c.clone());
        } else if let Some(c) = find_condition(&st, "FailureTarget").filter(|c| c.status == "True")
        {
            ctx.finished = Some(new_condition(
                "Failed",
                "True",
                c.reason.as_deref().unwrap_or(""),
                c.message.as_deref().unwrap_or(""),
                &now_time,
            ));
        }
        if ctx.finished.is_none() {
            if exceeds_backoff || self.past_backoff_limit_on_failure(&ctx.job, &ctx.pods) {
                ctx.finished = Some(new_condition(
                    "FailureTarget",
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    &now_time,
                ));
            } else if self.past_active_deadline(&ctx.job) {
                ctx.finished = Some(new_condition(
                    "FailureTarget",
                    "True",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                    &now_time,
                ));
            } else if let Some(ads) = ctx
                .job
                .spec
                .as_ref()
                .and_then(|s| s.active_deadline_seconds)
                && !suspended(&ctx.job)
                && let Some(start) = ctx.job.status.as_ref().and_then(|s| s.start_time.as_ref())
            {
                let since =
                    Duration::try_from(now.duration_since(start.0)).unwrap_or(Duration::ZERO);
                let left = Duration::from_secs(ads.max(0) as u64).saturating_sub(since);
                self.queue.add_after(key.to_string(), left);
            }
        }
        if is_indexed(&ctx.job) {
            let c = completions(&ctx.job).unwrap_or(0);
            let prev = indexes::parse(st.completed_indexes.as_deref().unwrap_or(""), c);
            let mut now_set = prev.clone();
            for p in &ctx.pods {
                if phase(p) == "Succeeded"
                    && has_finalizer(p)
                    && let Some(ix) = indexes::completion_index(p)
                    && ix < c
                {
                    now_set.insert(ix);
                }
            }
            ctx.succeeded = now_set.len() as i32;
            ctx.prev_succeeded_indexes = prev;
            ctx.succeeded_indexes = now_set;
        }

        let mut manage_err = None;
        let mut suspend_changed = false;
        if ctx.finished.is_some() {
            let (deleted_ready, deleted, err) =
                self.delete_active_pods(&ctx.job, &ctx.active_pods).await;
            if deleted != active || !satisfied {
                ctx.finished = None;
            }
            active -= deleted;
            ctx.terminating += deleted;
            ctx.ready -= deleted_ready;
            manage_err = err;
        } else {
            let mut manage_called = false;
            if satisfied && ctx.job.metadata.deletion_timestamp.is_none() {
                match self.manage_job(key, &mut ctx).await {
                    Ok(a) => active = a,
                    Err((a, e)) => {
                        active = a;
                        manage_err = Some(e);
                    }
                }
                manage_called = true;
            }
            let complete = match completions(&ctx.job) {
                None => ctx.succeeded > 0 && active == 0,
                Some(c) => ctx.succeeded >= c && active == 0,
            };
            if complete {
                ctx.finished = Some(new_condition(
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    &now_time,
                ));
            } else if manage_called {
                let is_suspended = suspended(&ctx.job);
                let job_ref = ctx.job.clone();
                let st = ctx.job.status.as_mut().expect("status");
                if is_suspended {
                    if ensure_condition(
                        st,
                        new_condition(
                            "Suspended",
                            "True",
                            "JobSuspended",
                            "Job suspended",
                            &now_time,
                        ),
                    ) {
                        suspend_changed = true;
                        self.recorder.record(
                            &job_ref,
                            EventType::Normal,
                            "Suspended",
                            "Job suspended",
                        );
                    }
                } else if ensure_condition(
                    st,
                    new_condition("Suspended", "False", "JobResumed", "Job resumed", &now_time),
                ) {
                    suspend_changed = true;
                    st.start_time = Some(now_time.clone());
                    self.recorder
                        .record(&job_ref, EventType::Normal, "Resumed", "Job resumed");
                }
            }
        }

        let st = ctx.job.status.as_mut().expect("status");
        let needs_update = suspend_changed
            || active != st.active.unwrap_or(0)
            || Some(ctx.ready) != st.ready
            || Some(ctx.terminating) != st.terminating;
        st.active = (active != 0).then_some(active);
        st.ready = Some(ctx.ready);
        st.terminating = Some(ctx.terminating);
        self.track_status_and_remove_finalizers(key, &mut ctx, needs_update)
            .await?;
        match manage_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The Job's pods after claiming, including finished ones.
    async fn pods_for_job(&self, job: &Job) -> Result<Vec<Arc<Pod>>> {
        let sel = selector(job.spec.as_ref().and_then(|s| s.selector.as_ref()));
        let candidates = claim_candidates(
            &self.pods,
            &job.uid().unwrap_or_default(),
            &job.namespace().unwrap_or_default(),
        );
        RefManager::new(self.client.clone(), job, new_controller_ref(job), &sel)
            .claim(candidates, |_| true)
            .await
    }

    /// `getNewFinishedPods`: finished pods not counted yet (still carrying the finalizer).
    fn new_finished_pods(&self, ctx: &Ctx) -> (Vec<Arc<Pod>>, Vec<Arc<Pod>>) {
        let c = completions(&ctx.job).unwrap_or(0);
        let valid = |p: &Pod, uncounted: &HashSet<String>| {
            let uid = p.metadata.uid.clone().unwrap_or_default();
            if !has_finalizer(p)
                || uncounted.contains(&uid)
                || ctx.expected_rm_finalizers.contains(&uid)
            {
                return false;
            }
            !is_indexed(&ctx.job) || indexes::completion_index(p).is_some_and(|i| i < c)
        };
        let succeeded = ctx
            .pods
            .iter()
            .filter(|p| valid(p, &ctx.uncounted_succeeded) && phase(p) == "Succeeded")
            .cloned()
            .collect();
        let failed = ctx
            .pods
            .iter()
            .filter(|p| valid(p, &ctx.uncounted_failed) && is_pod_failed(p, &ctx.job))
            .cloned()
            .collect();
        (succeeded, failed)
    }

    /// `pastBackoffLimitOnFailure`: container restarts count for restartPolicy OnFailure.
    fn past_backoff_limit_on_failure(&self, job: &Job, pods: &[Arc<Pod>]) -> bool {
        let rp = job
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.restart_policy.as_deref());
        if rp != Some("OnFailure") {
            return false;
        }
        let restarts: i32 = pods
            .iter()
            .filter(|p| matches!(phase(p), "Running" | "Pending"))
            .filter_map(|p| p.status.as_ref())
            .map(|s| {
                s.init_container_statuses
                    .iter()
                    .flatten()
                    .map(|c| c.restart_count)
                    .sum::<i32>()
                    + s.container_statuses
                        .iter()
                        .flatten()
                        .map(|c| c.restart_count)
                        .sum::<i32>()
            })
            .sum();
        let limit = backoff_limit(job);
        if limit == 0 {
            restarts > 0
        } else {
            restarts >= limit
        }
    }

    fn past_active_deadline(&self, job: &Job) -> bool {
        let (Some(ads), Some(start)) = (
            job.spec.as_ref().and_then(|s| s.active_deadline_seconds),
            job.status.as_ref().and_then(|s| s.start_time.as_ref()),
        ) else {
            return false;
        };
        if suspended(job) {
            return false;
        }
        let since =
            Duration::try_from(self.clock.now().duration_since(start.0)).unwrap_or(Duration::ZERO);
        since >= Duration::from_secs(ads.max(0) as u64)
    }

    /// `deleteActivePods`: (ready deleted, deleted, first error). Finalizers stay: the pods
    /// are counted as failed when they are gone.
    async fn delete_active_pods(&self, job: &Job, pods: &[Arc<Pod>]) -> (i32, i32, Option<Error>) {
        let ns = job.namespace().unwrap_or_default();
        let results = futures::future::join_all(pods.iter().map(|p| {
            let ns = ns.clone();
            async move {
                (
                    is_pod_ready(p),
                    self.pod_control.delete_pod(&ns, &p.name_any(), job).await,
                )
            }
        }))
        .await;
        let (mut ready, mut deleted, mut first) = (0, 0, None);
        for (r, res) in results {
            match res {
                Ok(()) => deleted += 1,
                Err(e) if e.is_not_found() => deleted += 1,
                Err(e) => {
                    if first.is_none() {
                        first = Some(e);
                    }
                    continue;
                }
            }
            if r {
                ready += 1;
            }
        }
        (ready, deleted, first)
    }

    /// `deleteJobPods`: removes the finalizer, then deletes (suspension, surplus pods).
    async fn delete_job_pods(
        &self,
        job: &Job,
        key: &str,
        pods: &[Arc<Pod>],
    ) -> (i32, i32, Option<Error>) {
        let ns = job.namespace().unwrap_or_default();
        let keys: Vec<String> = pods.iter().map(|p| pod_key(p)).collect();
        self.expectations.expect(key, 0, &keys);
        let results = futures::future::join_all(pods.iter().map(|p| {
            let ns = ns.clone();
            async move {
                if has_finalizer(p)
                    && let Err(e) = self.remove_finalizer(p).await
                {
                    return (p.clone(), Err(e));
                }
                (
                    p.clone(),
                    self.pod_control.delete_pod(&ns, &p.name_any(), job).await,
                )
            }
        }))
        .await;
        let (mut ready, mut deleted, mut first) = (0, pods.len() as i32, None);
        for (p, res) in results {
            if let Err(e) = res {
                self.expectations.deletion_observed(key, &pod_key(&p));
                if !e.is_not_found() {
                    deleted -= 1;
                    if first.is_none() {
                        first = Some(e);
                    }
                }
            }
            if is_pod_ready(&p) {
                ready += 1;
            }
        }
        (ready, deleted, first)
    }

    async fn remove_finalizer(&self, p: &Pod) -> Result<()> {
        let api: Api<Pod> =
            Api::namespaced(self.client.clone(), &p.namespace().unwrap_or_default());
        let patch =
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}});
        match api
            .patch(&p.name_any(), &patch_params(), &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(Error::api(
                "removing tracking finalizer from",
                pod_key(p),
                e,
            )),
        }
    }

    /// `manageJob`: deletes surplus pods or creates missing ones; returns the active count.
    async fn manage_job(&self, key: &str, ctx: &mut Ctx) -> std::result::Result<i32, (i32, Error)> {
        let job = ctx.job.clone();
        let mut active = ctx.active_pods.len() as i32;
        if suspended(&job) {
            let rm = self.pods_for_removal(&job, &ctx.active_pods, active as usize);
            let (ready, removed, err) = self.delete_job_pods(&job, key, &rm).await;
            active -= removed;
            ctx.terminating += removed;
            ctx.ready -= ready;
            return match err {
                Some(e) => Err((active, e)),
                None => Ok(active),
            };
        }
        let want = match completions(&job) {
            None => {
                if ctx.succeeded > 0 {
                    active
                } else {
                    parallelism(&job)
                }
            }
            Some(c) => (c - ctx.succeeded).min(parallelism(&job)).max(0),
        };
        let rm_at_least = (active - want).max(0) as usize;
        let mut rm = self.pods_for_removal(&job, &ctx.active_pods, rm_at_least);
        rm.truncate(MAX_CREATE_DELETE);
        if !rm.is_empty() {
            let (ready, removed, err) = self.delete_job_pods(&job, key, &rm).await;
            active -= removed;
            ctx.terminating += removed;
            ctx.ready -= ready;
            return match err {
                Some(e) => Err((active, e)),
                None => Ok(active),
            };
        }
        let terminating = if only_replace_failed(&job) {
            ctx.terminating
        } else {
            0
        };
        let mut diff = want - terminating - active;
        if diff <= 0 {
            return Ok(active);
        }
        let remaining = ctx.new_backoff.remaining(self.clock.now());
        if !remaining.is_zero() {
            self.queue.add_after(key.to_string(), remaining);
            return Ok(0);
        }
        diff = diff.min(MAX_CREATE_DELETE as i32);
        let mut to_add: Vec<Option<i32>> = vec![None; diff as usize];
        if is_indexed(&job) {
            let c = completions(&job).unwrap_or(0);
            let taken: HashSet<i32> = ctx
                .active_pods
                .iter()
                .filter_map(|p| indexes::completion_index(p))
                .collect();
            let pending: Vec<Option<i32>> = (0..c)
                .filter(|i| !ctx.succeeded_indexes.contains(i) && !taken.contains(i))
                .take(diff as usize)
                .map(Some)
                .collect();
            diff = pending.len() as i32;
            to_add = pending;
            if diff == 0 {
                return Ok(active);
            }
        }
        self.expectations.expect_creations(key, diff as usize);
        let mut template: PodTemplateSpec = job
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        if is_indexed(&job) {
            add_completion_index_env(&mut template);
        }
        {
            let fins = template
                .metadata
                .get_or_insert_with(Default::default)
                .finalizers
                .get_or_insert_with(Vec::new);
            if !fins.iter().any(|f| f == TRACKING_FINALIZER) {
                fins.push(TRACKING_FINALIZER.into());
            }
        }
        let ns = job.namespace().unwrap_or_default();
        let name = job.name_any();
        let controller_ref = new_controller_ref(&job);
        active += diff;
        let mut first_err = None;
        let mut pos = 0usize;
        let total = diff as usize;
        let mut batch = total.min(SLOW_START_INITIAL_BATCH_SIZE);
        while pos < total {
            let results = futures::future::join_all(to_add[pos..pos + batch].iter().map(|ix| {
                let mut pod = pod_from_template(&template, &name, Some(controller_ref.clone()));
                if let Some(ix) = ix {
                    let ann = pod
                        .metadata
                        .annotations
                        .get_or_insert_with(Default::default);
                    ann.insert(indexes::COMPLETION_INDEX.into(), ix.to_string());
                    pod.metadata
                        .labels
                        .get_or_insert_with(Default::default)
                        .insert(indexes::COMPLETION_INDEX.into(), ix.to_string());
                    if let Some(s) = pod.spec.as_mut() {
                        s.hostname = Some(format!("{name}-{ix}"));
                    }
                    let mut prefix = format!("{name}-{ix}-");
                    if prefix.len() > 58 {
                        let suffix = format!("-{ix}-");
                        prefix = format!("{}{suffix}", &name[..58 - suffix.len()]);
                    }
                    pod.metadata.generate_name = Some(prefix);
                }
                let ns = ns.clone();
                let job = &job;
                async move { self.pod_control.create_pod_object(&ns, pod, job).await }
            }))
            .await;
            let mut failed = false;
            for r in results {
                if let Err(e) = r {
                    if e.is_namespace_terminating() {
                        continue;
                    }
                    self.expectations.creation_observed(key);
                    active -= 1;
                    failed = true;
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
            pos += batch;
            if failed {
                let skipped = (total - pos) as i32;
                if skipped > 0 {
                    active -= skipped;
                    self.expectations.lower(key, skipped as i64, 0);
                }
                break;
            }
            batch = (2 * batch).min(total - pos);
        }
        match first_err {
            Some(e) => Err((active, e)),
            None => Ok(active),
        }
    }

    /// `activePodsForRemoval`: pods with duplicate or invalid indexes first, then the least far
    /// along.
    fn pods_for_removal(&self, job: &Job, pods: &[Arc<Pod>], at_least: usize) -> Vec<Arc<Pod>> {
        let mut rm: Vec<Arc<Pod>> = Vec::new();
        let mut left: Vec<Arc<Pod>> = Vec::new();
        let now = self.clock.now();
        let sort = |v: &mut Vec<Arc<Pod>>| {
            v.sort_by(|a, b| {
                if delete_before(a, 0, b, 0, now) {
                    std::cmp::Ordering::Less
                } else if delete_before(b, 0, a, 0, now) {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
        };
        if is_indexed(job) {
            let c = completions(job).unwrap_or(0);
            let mut by_index: HashMap<i32, Vec<Arc<Pod>>> = HashMap::new();
            for p in pods {
                match indexes::completion_index(p).filter(|i| *i < c) {
                    Some(i) => by_index.entry(i).or_default().push(p.clone()),
                    None => rm.push(p.clone()),
                }
            }
            let mut keys: Vec<i32> = by_index.keys().copied().collect();
            keys.sort();
            for k in keys {
                let mut group = by_index.remove(&k).expect("key");
                sort(&mut group);
                let keep = group.pop().expect("non-empty");
                rm.extend(group);
                left.push(keep);
            }
        } else {
            left = pods.to_vec();
        }
        if rm.len() < at_least {
            sort(&mut left);
            let n = at_least - rm.len();
            rm.extend(left.into_iter().take(n));
        }
        rm
    }

    /// `trackJobStatusAndRemoveFinalizers`: records finished pods as uncounted, removes their
    /// finalizers, moves them into the counters, and finishes the Job when it is done.
    async fn track_status_and_remove_finalizers(
        &self,
        key: &str,
        ctx: &mut Ctx,
        mut needs_flush: bool,
    ) -> Result<()> {
        let indexed = is_indexed(&ctx.job);
        let c = completions(&ctx.job).unwrap_or(0);
        let mut with_finalizer: HashSet<String> = ctx
            .pods
            .iter()
            .filter(|p| has_finalizer(p))
            .filter_map(|p| p.metadata.uid.clone())
            .filter(|u| !ctx.expected_rm_finalizers.contains(u))
            .collect();
        if clean_uncounted(ctx.job.status.as_mut().expect("status"), &with_finalizer) {
            needs_flush = true;
        }
        let mut to_remove: Vec<Arc<Pod>> = Vec::new();
        let mut new_indexes: Vec<i32> = Vec::new();
        let mut pods = ctx.pods.clone();
        if indexed {
            pods.sort_by_key(|p| indexes::completion_index(p).unwrap_or(i32::MAX));
        }
        let mut reached_max = false;
        let finished_failing = ctx
            .finished
            .as_ref()
            .is_some_and(|f| f.type_ != "SuccessCriteriaMet");
        for p in &pods {
            let uid = p.metadata.uid.clone().unwrap_or_default();
            if !has_finalizer(p) || ctx.expected_rm_finalizers.contains(&uid) {
                continue;
            }
            let failed = is_pod_failed(p, &ctx.job);
            let can_remove = ctx.job.metadata.deletion_timestamp.is_some()
                || ctx.finished.is_some()
                || phase(p) == "Succeeded"
                || failed;
            if !can_remove {
                continue;
            }
            to_remove.push(p.clone());
            let unc = ctx
                .job
                .status
                .as_mut()
                .expect("status")
                .uncounted_terminated_pods
                .get_or_insert_with(Default::default);
            if phase(p) == "Succeeded" && !ctx.uncounted_failed.contains(&uid) {
                if indexed {
                    if let Some(ix) = indexes::completion_index(p)
                        .filter(|i| *i < c && !ctx.prev_succeeded_indexes.contains(i))
                    {
                        new_indexes.push(ix);
                        needs_flush = true;
                    }
                } else if !ctx.uncounted_succeeded.contains(&uid) {
                    needs_flush = true;
                    unc.succeeded.get_or_insert_with(Vec::new).push(uid.clone());
                }
            } else if (failed || finished_failing)
                && !ctx.uncounted_failed.contains(&uid)
                && (!indexed || indexes::completion_index(p).is_some_and(|i| i < c))
            {
                needs_flush = true;
                unc.failed.get_or_insert_with(Vec::new).push(uid.clone());
            }
            let n = new_indexes.len()
                + unc.succeeded.as_ref().map_or(0, Vec::len)
                + unc.failed.as_ref().map_or(0, Vec::len);
            if n >= MAX_UNCOUNTED {
                reached_max = true;
                break;
            }
        }
        let now_time = self.clock.now_time();
        {
            let st = ctx.job.status.as_mut().expect("status");
            if indexed {
                ctx.succeeded_indexes.extend(new_indexes);
                let s = indexes::format(&ctx.succeeded_indexes);
                if Some(&s) != st.completed_indexes.as_ref()
                    && !(s.is_empty() && st.completed_indexes.is_none())
                {
                    needs_flush = true;
                }
                st.succeeded = Some(ctx.succeeded_indexes.len() as i32).filter(|n| *n != 0);
                st.completed_indexes = (!s.is_empty()).then_some(s);
            }
        }
        // The interim conditions go in before the finalizers come off.
        if let Some(f) = ctx.finished.clone() {
            let st = ctx.job.status.as_mut().expect("status");
            if f.type_ == "FailureTarget" {
                st.conditions.get_or_insert_with(Vec::new).push(f.clone());
                needs_flush = true;
                ctx.finished = Some(new_condition(
                    "Failed",
                    "True",
                    f.reason.as_deref().unwrap_or(""),
                    f.message.as_deref().unwrap_or(""),
                    &now_time,
                ));
            } else if f.type_ == "SuccessCriteriaMet" {
                if find_condition(st, "SuccessCriteriaMet").is_none() {
                    st.conditions.get_or_insert_with(Vec::new).push(f.clone());
                    needs_flush = true;
                }
                ctx.finished = Some(new_condition(
                    "Complete",
                    "True",
                    f.reason.as_deref().unwrap_or(""),
                    f.message.as_deref().unwrap_or(""),
                    &now_time,
                ));
            }
        }
        // 1. Flush the uncounted pods.
        if needs_flush {
            self.update_status(&mut ctx.job).await?;
            self.backoff
                .lock()
                .insert(key.to_string(), ctx.new_backoff.clone());
            needs_flush = false;
        }
        // 2. Remove finalizers.
        let mut rm_err = None;
        if !to_remove.is_empty() {
            {
                let mut fe = self.finalizer_expectations.lock();
                let set = fe.entry(key.to_string()).or_default();
                for p in &to_remove {
                    set.insert(p.metadata.uid.clone().unwrap_or_default());
                }
            }
            let results = futures::future::join_all(
                to_remove
                    .iter()
                    .map(|p| async move { (p.clone(), self.remove_finalizer(p).await) }),
            )
            .await;
            for (p, r) in results {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                match r {
                    Ok(()) => {
                        with_finalizer.remove(&uid);
                    }
                    Err(e) => {
                        if let Some(s) = self.finalizer_expectations.lock().get_mut(key) {
                            s.remove(&uid);
                        }
                        if e.is_not_found() {
                            with_finalizer.remove(&uid);
                        } else if rm_err.is_none() {
                            rm_err = Some(e);
                        }
                    }
                }
            }
        }
        // 3. Count what lost its finalizer.
        if clean_uncounted(ctx.job.status.as_mut().expect("status"), &with_finalizer) {
            needs_flush = true;
        }
        if let Some(e) = rm_err {
            if needs_flush {
                self.update_status(&mut ctx.job).await?;
            }
            return Err(e);
        }
        // 4. Finish the Job once nothing is uncounted or terminating.
        let finished = !reached_max && self.enact_finished(ctx);
        if finished {
            needs_flush = true;
        }
        if needs_flush {
            self.update_status(&mut ctx.job).await?;
            if finished {
                self.record_finished(&ctx.job);
            }
        }
        Ok(())
    }

    fn enact_finished(&self, ctx: &mut Ctx) -> bool {
        let Some(f) = ctx.finished.clone() else {
            return false;
        };
        let st = ctx.job.status.as_mut().expect("status");
        if let Some(u) = &st.uncounted_terminated_pods
            && u.succeeded.as_ref().map_or(0, Vec::len) + u.failed.as_ref().map_or(0, Vec::len) > 0
        {
            return false;
        }
        if ctx.terminating > 0 {
            return false;
        }
        let now = self.clock.now_time();
        ensure_condition(
            st,
            new_condition(
                &f.type_,
                &f.status,
                f.reason.as_deref().unwrap_or(""),
                f.message.as_deref().unwrap_or(""),
                &now,
            ),
        );
        if f.type_ == "Complete" {
            st.completion_time = Some(now);
        }
        true
    }

    fn record_finished(&self, job: &Job) {
        let Some(c) = finished_condition(job) else {
            return;
        };
        if c.type_ == "Complete" {
            if let Some(n) = completions(job)
                && job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) > n
            {
                self.recorder.record(
                    job,
                    EventType::Warning,
                    "TooManySucceededPods",
                    "Too many succeeded pods running after completion count reached",
                );
            }
            self.recorder
                .record(job, EventType::Normal, "Completed", "Job completed");
        } else {
            self.recorder.record(
                job,
                EventType::Warning,
                c.reason.as_deref().unwrap_or(""),
                c.message.as_deref().unwrap_or(""),
            );
        }
    }

    /// `UpdateStatus`, keeping `job` current.
    async fn update_status(&self, job: &mut Job) -> Result<()> {
        let api: Api<Job> =
            Api::namespaced(self.client.clone(), &job.namespace().unwrap_or_default());
        let updated = api
            .replace_status(&job.name_any(), &post_params(), job)
            .await
            .map_err(|e| Error::api("updating status of", key_of(job), e))?;
        job.metadata.resource_version = updated.metadata.resource_version;
        Ok(())
    }
}

/// `cleanUncountedPodsWithoutFinalizers`: uncounted pods whose finalizer is gone move into
/// the counters.
fn clean_uncounted(st: &mut JobStatus, with_finalizer: &HashSet<String>) -> bool {
    let mut changed = false;
    let (mut add_s, mut add_f) = (0, 0);
    let unc = st
        .uncounted_terminated_pods
        .get_or_insert_with(Default::default);
    for (list, add) in [
        (&mut unc.succeeded, &mut add_s),
        (&mut unc.failed, &mut add_f),
    ] {
        if let Some(v) = list.as_mut() {
            let before = v.len();
            v.retain(|u| with_finalizer.contains(u));
            if v.len() != before {
                changed = true;
                *add = (before - v.len()) as i32;
            }
            if v.is_empty() {
                *list = None;
            }
        }
    }
    if add_s > 0 {
        st.succeeded = Some(st.succeeded.unwrap_or(0) + add_s);
    }
    if add_f > 0 {
        st.failed = Some(st.failed.unwrap_or(0) + add_f);
    }
    changed
}

/// `addCompletionIndexEnvVariables`: `JOB_COMPLETION_INDEX` from the annotation.
fn add_completion_index_env(t: &mut PodTemplateSpec) {
    let Some(spec) = t.spec.as_mut() else { return };
    let var = EnvVar {
        name: "JOB_COMPLETION_INDEX".into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: format!("metadata.annotations['{}']", indexes::COMPLETION_INDEX),
            }),
            ..Default::default()
        }),
    };
    let containers = spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut());
    for c in containers {
        let env = c.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.name == var.name) {
            env.push(var.clone());
        }
    }
}

pub fn start(ctx: Arc<Context>) -> futures::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        let c = JobController::new(
            ctx.client.clone(),
            ctx.informers.get::<Job>(),
            ctx.informers.get::<Pod>(),
            ctx.recorder("job-controller"),
            ctx.clock.clone(),
        );
        c.run(ctx.config.workers, ctx.cancel.clone()).await;
    })
}

#[cfg(test)]
mod tests;
