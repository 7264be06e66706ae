//! The CronJob controller (upstream's v2): creates a Job named
//! `<cronjob>-<scheduled minutes since the epoch>` at each scheduled time (in `timeZone`, or the
//! controller's local zone), honours concurrencyPolicy Allow / Forbid / Replace,
//! startingDeadlineSeconds and suspend, reports `status.active`, `lastScheduleTime` and
//! `lastSuccessfulTime`, warns about too many missed start times, and keeps
//! successfulJobsHistoryLimit / failedJobsHistoryLimit finished Jobs.

pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use ferrokube_client::events::{EventRecorder, EventType};
use ferrokube_client::workqueue::{Action, WorkQueue, run_workers};
use ferrokube_client::{Informer, key_of};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PropagationPolicy};

use crate::clock::Clock;
use crate::controller_utils::{
    INDEX_CONTROLLER, add_owner_indexes, controller_of, new_controller_ref, post_params,
};
use crate::job::{finished_condition, is_finished};
use crate::{Context, Error, Result};
use schedule::{Schedule, parse_standard};

pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Upstream's `nextScheduleDelta`.
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);

pub struct CronJobController {
    client: kube::Client,
    cronjobs: Arc<Informer<CronJob>>,
    jobs: Arc<Informer<Job>>,
    queue: Arc<WorkQueue<String>>,
    recorder: EventRecorder,
    clock: Clock,
    /// The zone of schedules without `timeZone` (kube-controller-manager's local time).
    local: TimeZone,
}

/// `getMostRecentScheduleTime`: the latest activation in (earliest, now] and roughly how many
/// there were.
fn most_recent(
    earliest: Timestamp,
    now: Timestamp,
    s: &Schedule,
) -> Result<(Option<Timestamp>, i64), String> {
    let Some(t1) = s.next(earliest) else {
        return Ok((None, 0));
    };
    let Some(t2) = s.next(t1) else {
        return Ok((if t1 <= now { Some(t1) } else { None }, 1));
    };
    if now < t1 {
        return Ok((None, 0));
    }
    if now < t2 {
        return Ok((Some(t1), 1));
    }
    let between = (t2.as_second() - t1.as_second()).max(0);
    if between < 1 {
        return Err("time difference between two schedules is less than 1 second".into());
    }
    let elapsed = now.as_second() - t1.as_second();
    let missed = elapsed / between + 1;
    let earliest_guess = t1.as_second() + (missed - 2) * between;
    let mut t = s.next(Timestamp::from_second(earliest_guess).map_err(|e| e.to_string())?);
    let mut recent = None;
    while let Some(x) = t {
        if x > now {
            break;
        }
        recent = Some(x);
        t = s.next(x);
    }
    Ok((recent, missed))
}

fn in_active_list(cj: &CronJob, uid: &str) -> bool {
    cj.status
        .iter()
        .flat_map(|s| s.active.iter().flatten())
        .any(|r| r.uid.as_deref() == Some(uid))
}

fn delete_from_active(cj: &mut CronJob, uid: &str) {
    if let Some(a) = cj.status.as_mut().and_then(|s| s.active.as_mut()) {
        a.retain(|r| r.uid.as_deref() != Some(uid));
        if a.is_empty() {
            cj.status.as_mut().expect("status").active = None;
        }
    }
}

/// `getJobName`.
pub fn job_name(cj: &CronJob, scheduled: Timestamp) -> String {
    format!("{}-{}", cj.name_any(), scheduled.as_second() / 60)
}

fn format_rfc3339(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

impl CronJobController {
    pub fn new(
        client: kube::Client,
        cronjobs: Arc<Informer<CronJob>>,
        jobs: Arc<Informer<Job>>,
        recorder: EventRecorder,
        clock: Clock,
        local: TimeZone,
    ) -> Arc<Self> {
        add_owner_indexes(&jobs);
        let queue: Arc<WorkQueue<String>> = WorkQueue::new();
        {
            let q = queue.clone();
            cronjobs.on_change(move |c| q.add(key_of(&**c.object())));
        }
        {
            let (q, cjs) = (queue.clone(), cronjobs.clone());
            jobs.on_change(move |c| {
                let j = c.object();
                if let Some(r) = controller_of(&j.metadata)
                    && r.kind == "CronJob"
                    && let Some(cj) = cjs.get_named(&j.namespace().unwrap_or_default(), &r.name)
                    && cj.metadata.uid.as_deref() == Some(r.uid.as_str())
                {
                    q.add(key_of(&*cj));
                }
            });
        }
        Arc::new(CronJobController {
            client,
            cronjobs,
            jobs,
            queue,
            recorder,
            clock,
            local,
        })
    }

    pub fn queue(&self) -> &Arc<WorkQueue<String>> {
        &self.queue
    }

    pub async fn run(self: Arc<Self>, workers: usize, cancel: tokio_util::sync::CancellationToken) {
        tokio::select! {
            _ = async { self.cronjobs.wait_synced().await; self.jobs.wait_synced().await } => {}
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

    pub async fn sync(&self, key: &str) -> Result<Action> {
        let Some(cached) = self.cronjobs.get(key) else {
            return Ok(Action::AwaitChange);
        };
        let mut cj: CronJob = (*cached).clone();
        let jobs: Vec<Arc<Job>> = self
            .jobs
            .by_index(INDEX_CONTROLLER, &cj.uid().unwrap_or_default());
        let (requeue, mut update, sync_err) = match self.sync_cron_job(&mut cj, &jobs).await {
            Ok((r, u)) => (r, u, None),
            Err((u, e)) => (None, u, Some(e)),
        };
        if self.cleanup_finished_jobs(&mut cj, &jobs).await {
            update = true;
        }
        if update {
            let api: Api<CronJob> =
                Api::namespaced(self.client.clone(), &cj.namespace().unwrap_or_default());
            api.replace_status(&cj.name_any(), &post_params(), &cj)
                .await
                .map_err(|e| Error::api("updating status of", key, e))?;
        }
        if let Some(e) = sync_err {
            return Err(e);
        }
        Ok(match requeue {
            Some(d) => Action::Requeue(d),
            None => Action::AwaitChange,
        })
    }

    /// `syncCronJob`: (requeue after, status changed) or (status changed, error).
    async fn sync_cron_job(
        &self,
        cj: &mut CronJob,
        jobs: &[Arc<Job>],
    ) -> std::result::Result<(Option<Duration>, bool), (bool, Error)> {
        let now = self.clock.now();
        let mut update = false;
        let ns = cj.namespace().unwrap_or_default();
        let job_api: Api<Job> = Api::namespaced(self.client.clone(), &ns);
        for j in jobs {
            let uid = j.uid().unwrap_or_default();
            let found = in_active_list(cj, &uid);
            if !found && !is_finished(j) {
                let api: Api<CronJob> = Api::namespaced(self.client.clone(), &ns);
                if let Ok(fresh) = api.get(&cj.name_any()).await
                    && in_active_list(&fresh, &uid)
                {
                    *cj = fresh;
                    continue;
                }
                self.recorder.record(
                    &*cj,
                    EventType::Warning,
                    "UnexpectedJob",
                    &format!(
                        "Saw a job that the controller did not create or forgot: {}",
                        j.name_any()
                    ),
                );
            } else if found && is_finished(j) {
                let cond = finished_condition(j)
                    .map(|c| c.type_.clone())
                    .unwrap_or_default();
                delete_from_active(cj, &uid);
                self.recorder.record(
                    &*cj,
                    EventType::Normal,
                    "SawCompletedJob",
                    &format!("Saw completed job: {}, condition: {cond}", j.name_any()),
                );
                update = true;
            }
            if finished_condition(j).is_some_and(|c| c.type_ == "Complete")
                && let Some(ct) = j.status.as_ref().and_then(|s| s.completion_time.clone())
            {
                let st = cj.status.get_or_insert_with(Default::default);
                if st.last_successful_time.as_ref().is_none_or(|t| ct.0 > t.0) {
                    st.last_successful_time = Some(ct);
                    update = true;
                }
            }
        }
        let active: Vec<ObjectReference> = cj
            .status
            .iter()
            .flat_map(|s| s.active.clone().unwrap_or_default())
            .collect();
        for r in active {
            let uid = r.uid.clone().unwrap_or_default();
            if jobs
                .iter()
                .any(|j| j.uid().as_deref() == Some(uid.as_str()))
            {
                continue;
            }
            let name = r.name.clone().unwrap_or_default();
            match job_api.get_opt(&name).await {
                Ok(None) => {
                    self.recorder.record(
                        &*cj,
                        EventType::Normal,
                        "MissingJob",
                        &format!("Active job went missing: {name}"),
                    );
                    delete_from_active(cj, &uid);
                    update = true;
                }
                Ok(Some(_)) => {}
                Err(e) => {
                    return Err((update, Error::api("reading job", format!("{ns}/{name}"), e)));
                }
            }
        }
        if cj.metadata.deletion_timestamp.is_some() {
            return Ok((None, update));
        }
        let spec = cj.spec.clone().unwrap_or_default();
        let mut tz = self.local.clone();
        if let Some(name) = &spec.time_zone {
            match TimeZone::get(name) {
                Ok(z) => tz = z,
                Err(e) => {
                    self.recorder.record(
                        &*cj,
                        EventType::Warning,
                        "UnknownTimeZone",
                        &format!("invalid timeZone: {name:?}: {e}"),
                    );
                    return Ok((None, update));
                }
            }
        }
        if spec.suspend == Some(true) {
            return Ok((None, update));
        }
        if spec.schedule.contains("TZ") {
            self.recorder.record(&*cj, EventType::Warning, "UnsupportedSchedule", &format!(
                "CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
                spec.schedule
            ));
        }
        let sched = match parse_standard(&spec.schedule, &tz) {
            Ok(s) => s,
            Err(e) => {
                self.recorder.record(
                    &*cj,
                    EventType::Warning,
                    "UnparseableSchedule",
                    &format!("unparseable schedule: {:?} : {e}", spec.schedule),
                );
                return Ok((None, update));
            }
        };
        let scheduled = match self.next_schedule_time(cj, now, &sched) {
            Ok(t) => t,
            Err(e) => {
                self.recorder.record(
                    &*cj,
                    EventType::Warning,
                    "InvalidSchedule",
                    &format!("invalid schedule: {} : {e}", spec.schedule),
                );
                return Ok((None, update));
            }
        };
        let Some(scheduled) = scheduled else {
            return Ok((Some(self.next_duration(cj, now, &sched)), update));
        };
        if let Some(sds) = spec.starting_deadline_seconds
            && scheduled.as_second() + sds < now.as_second()
        {
            self.recorder.record(
                &*cj,
                EventType::Warning,
                "MissSchedule",
                &format!(
                    "Missed scheduled time to start a job: {}",
                    scheduled
                        .to_zoned(TimeZone::UTC)
                        .strftime("%a, %d %b %Y %H:%M:%S %z")
                ),
            );
            return Ok((Some(self.next_duration(cj, now, &sched)), update));
        }
        let name = job_name(cj, scheduled);
        let in_active_by_name = cj
            .status
            .iter()
            .flat_map(|s| s.active.iter().flatten())
            .any(|r| r.name.as_deref() == Some(name.as_str()));
        let last = cj
            .status
            .as_ref()
            .and_then(|s| s.last_schedule_time.as_ref())
            .map(|t| t.0.as_second());
        if in_active_by_name || last == Some(scheduled.as_second()) {
            return Ok((Some(self.next_duration(cj, now, &sched)), update));
        }
        let policy = spec
            .concurrency_policy
            .clone()
            .unwrap_or_else(|| "Allow".into());
        let has_active = cj
            .status
            .as_ref()
            .and_then(|s| s.active.as_ref())
            .is_some_and(|a| !a.is_empty());
        if policy == "Forbid" && has_active {
            self.recorder.record(&*cj, EventType::Normal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid");
            return Ok((Some(self.next_duration(cj, now, &sched)), update));
        }
        if policy == "Replace" {
            let active: Vec<ObjectReference> = cj
                .status
                .iter()
                .flat_map(|s| s.active.clone().unwrap_or_default())
                .collect();
            for r in active {
                let jname = r.name.clone().unwrap_or_default();
                let job = match job_api.get(&jname).await {
                    Ok(j) => j,
                    Err(e) => {
                        self.recorder.record(
                            &*cj,
                            EventType::Warning,
                            "FailedGet",
                            &format!("Get job: {e}"),
                        );
                        return Err((
                            update,
                            Error::api("reading job", format!("{ns}/{jname}"), e),
                        ));
                    }
                };
                if !self.delete_job(cj, &job).await {
                    return Err((
                        update,
                        Error::Retry(format!("could not replace job {ns}/{jname}")),
                    ));
                }
                update = true;
            }
        }
        let template = spec.job_template.clone();
        let mut labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let _ = &mut labels;
        let mut annotations = template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.clone())
            .unwrap_or_default();
        let ann_tz = match &spec.time_zone {
            Some(n) => TimeZone::get(n).unwrap_or(TimeZone::UTC),
            None => TimeZone::UTC,
        };
        annotations.insert(
            SCHEDULED_TIMESTAMP.into(),
            format_rfc3339(scheduled, &ann_tz),
        );
        let job = Job {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                labels: Some(labels),
                annotations: Some(annotations),
                owner_references: Some(vec![new_controller_ref(&*cj)]),
                ..Default::default()
            },
            spec: template.spec,
            status: None,
        };
        let created = match job_api.create(&post_params(), &job).await {
            Ok(j) => {
                self.recorder.record(
                    &*cj,
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!("Created job {}", j.name_any()),
                );
                j
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let existing = job_api
                    .get(&name)
                    .await
                    .map_err(|e| (update, Error::api("reading job", format!("{ns}/{name}"), e)))?;
                let ours = controller_of(&existing.metadata)
                    .is_some_and(|r| Some(&r.uid) == cj.metadata.uid.as_ref());
                if !ours || in_active_list(cj, &existing.uid().unwrap_or_default()) {
                    return Ok((None, update));
                }
                existing
            }
            Err(e) => {
                let err = Error::api("creating job for", key_of(&*cj), e);
                if err.is_namespace_terminating() {
                    return Err((update, err));
                }
                self.recorder.record(
                    &*cj,
                    EventType::Warning,
                    "FailedCreate",
                    &format!("Error creating job: {}", err.api_message()),
                );
                return Err((update, err));
            }
        };
        let st = cj.status.get_or_insert_with(Default::default);
        st.active
            .get_or_insert_with(Vec::new)
            .push(ObjectReference {
                api_version: Some("batch/v1".into()),
                kind: Some("Job".into()),
                name: created.metadata.name.clone(),
                namespace: created.metadata.namespace.clone(),
                uid: created.metadata.uid.clone(),
                resource_version: created.metadata.resource_version.clone(),
                ..Default::default()
            });
        st.last_schedule_time = Some(Time(scheduled));
        Ok((Some(self.next_duration(cj, now, &sched)), true))
    }

    /// `nextScheduleTime`: the most recent unmet schedule time, warning about many misses.
    fn next_schedule_time(
        &self,
        cj: &CronJob,
        now: Timestamp,
        s: &Schedule,
    ) -> std::result::Result<Option<Timestamp>, String> {
        let mut earliest = cj
            .status
            .as_ref()
            .and_then(|st| st.last_schedule_time.as_ref())
            .or(cj.metadata.creation_timestamp.as_ref())
            .map(|t| t.0)
            .unwrap_or(now);
        if let Some(sds) = cj.spec.as_ref().and_then(|s| s.starting_deadline_seconds) {
            let deadline = Timestamp::from_second(now.as_second() - sds).unwrap_or(now);
            if deadline > earliest {
                earliest = deadline;
            }
        }
        let (t, missed) = most_recent(earliest, now, s)?;
        if missed > 100 {
            self.recorder.record(cj, EventType::Warning, "TooManyMissedTimes", &format!(
                "too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"
            ));
        }
        Ok(t)
    }

    /// `nextScheduleTimeDuration`: until the next activation, plus a little.
    fn next_duration(&self, cj: &CronJob, now: Timestamp, s: &Schedule) -> Duration {
        let earliest = cj
            .status
            .as_ref()
            .and_then(|st| st.last_schedule_time.as_ref())
            .or(cj.metadata.creation_timestamp.as_ref())
            .map(|t| t.0)
            .unwrap_or(now);
        let recent = match most_recent(earliest, now, s) {
            Ok((Some(t), _)) => t,
            Ok((None, _)) => earliest,
            Err(_) => now,
        };
        match s.next(recent) {
            Some(n) => {
                Duration::try_from(n.duration_since(now)).unwrap_or(Duration::ZERO)
                    + NEXT_SCHEDULE_DELTA
            }
            None => Duration::from_secs(3600),
        }
    }

    /// `deleteJob`: deletes (background propagation) and forgets a Job.
    async fn delete_job(&self, cj: &mut CronJob, job: &Job) -> bool {
        let api: Api<Job> =
            Api::namespaced(self.client.clone(), &job.namespace().unwrap_or_default());
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        match api.delete(&job.name_any(), &dp).await {
            Ok(_) => {
                delete_from_active(cj, &job.uid().unwrap_or_default());
                self.recorder.record(
                    &*cj,
                    EventType::Normal,
                    "SuccessfulDelete",
                    &format!("Deleted job {}", job.name_any()),
                );
                true
            }
            Err(e) => {
                self.recorder.record(
                    &*cj,
                    EventType::Warning,
                    "FailedDelete",
                    &format!("Deleted job: {e}"),
                );
                false
            }
        }
    }

    /// `cleanupFinishedJobs`: keeps the newest finished Jobs within the history limits.
    async fn cleanup_finished_jobs(&self, cj: &mut CronJob, jobs: &[Arc<Job>]) -> bool {
        let spec = cj.spec.clone().unwrap_or_default();
        if spec.successful_jobs_history_limit.is_none() && spec.failed_jobs_history_limit.is_none()
        {
            return false;
        }
        let mut ok: Vec<&Arc<Job>> = Vec::new();
        let mut failed: Vec<&Arc<Job>> = Vec::new();
        for j in jobs {
            match finished_condition(j).map(|c| c.type_.as_str()) {
                Some("Complete") => ok.push(j),
                Some("Failed") => failed.push(j),
                _ => {}
            }
        }
        let mut update = false;
        for (mut list, limit) in [
            (ok, spec.successful_jobs_history_limit),
            (failed, spec.failed_jobs_history_limit),
        ] {
            let Some(limit) = limit else { continue };
            let excess = list.len() as i64 - limit as i64;
            if excess <= 0 {
                continue;
            }
            list.sort_by(|a, b| {
                let ta = a
                    .status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref())
                    .map(|t| t.0);
                let tb = b
                    .status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref())
                    .map(|t| t.0);
                match (ta, tb) {
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    _ => ta
                        .cmp(&tb)
                        .then_with(|| a.metadata.name.cmp(&b.metadata.name)),
                }
            });
            for j in list.into_iter().take(excess as usize) {
                if self.delete_job(cj, j).await {
                    update = true;
                }
            }
        }
        update
    }
}

pub fn start(ctx: Arc<Context>) -> futures::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        let c = CronJobController::new(
            ctx.client.clone(),
            ctx.informers.get::<CronJob>(),
            ctx.informers.get::<Job>(),
            ctx.recorder("cronjob-controller"),
            ctx.clock.clone(),
            TimeZone::system(),
        );
        c.run(ctx.config.workers, ctx.cancel.clone()).await;
    })
}

#[cfg(test)]
mod tests;
