//! CronJob controller unit tests.

use std::sync::Arc;
use std::time::Duration;

use ferrokube_client::Informer;
use ferrokube_client::events::EventRecorder;
use ferrokube_client::workqueue::Action;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use serde_json::{Value, json};

use super::*;
use crate::testing::{FakeApi, obj, settle};

fn cronjob(spec: Value, status: Value) -> CronJob {
    let mut s = json!({
        "schedule": "*/5 * * * *", "concurrencyPolicy": "Allow", "suspend": false,
        "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
        "jobTemplate": {"metadata": {"labels": {"app": "tick"}},
                        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}},
    });
    for (k, v) in spec.as_object().unwrap() {
        s[k] = v.clone();
    }
    obj(json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "tick", "namespace": "default", "uid": "cj-uid", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": s, "status": status}))
}

struct Rig {
    api: FakeApi,
    cronjobs: Arc<Informer<CronJob>>,
    jobs: Arc<Informer<Job>>,
    c: Arc<CronJobController>,
}

fn rig(cj: CronJob, now: &str) -> Rig {
    let clock = Clock::at(now.parse().unwrap());
    let api = FakeApi::new(clock.clone());
    let stored = api.insert(&cj);
    let cronjobs = Informer::<CronJob>::detached();
    cronjobs.apply(obj(stored));
    let jobs = Informer::<Job>::detached();
    let client = api.client();
    let rec = EventRecorder::new(client.clone(), "cronjob-controller", "");
    let c = CronJobController::new(
        client,
        cronjobs.clone(),
        jobs.clone(),
        rec,
        clock,
        TimeZone::UTC,
    );
    Rig {
        api,
        cronjobs,
        jobs,
        c,
    }
}

impl Rig {
    fn observe(&self) {
        for j in self.api.list::<Job>() {
            self.jobs.apply(j);
        }
        for cj in self.api.list::<CronJob>() {
            self.cronjobs.apply(cj);
        }
    }
}

fn finished_job(name: &str, kind: &str, start: &str) -> Job {
    obj(json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "default", "uid": format!("{name}-uid"),
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "tick", "uid": "cj-uid", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"template": {"spec": {"containers": []}}},
        "status": {"startTime": start, "completionTime": start,
            "conditions": [{"type": kind, "status": "True", "lastTransitionTime": start}]}}))
}

#[tokio::test(start_paused = true)]
async fn a_due_schedule_creates_one_job_named_after_the_scheduled_minute() {
    let r = rig(cronjob(json!({}), json!({})), "2024-01-01T00:06:30Z");
    let a = r.c.sync("default/tick").await.unwrap();
    // Next activation 00:10:00 is 3.5 minutes away, plus upstream's 100 ms delta.
    assert_eq!(a, Action::Requeue(Duration::from_millis(210_100)));
    let created = r.api.writes("POST", "/jobs");
    assert_eq!(created.len(), 1);
    let scheduled = "2024-01-01T00:05:00Z".parse::<jiff::Timestamp>().unwrap();
    let name = format!("tick-{}", scheduled.as_second() / 60);
    assert_eq!(created[0].body["metadata"]["name"], name);
    assert_eq!(created[0].body["metadata"]["labels"]["app"], "tick");
    assert_eq!(
        created[0].body["metadata"]["annotations"][SCHEDULED_TIMESTAMP],
        "2024-01-01T00:05:00Z"
    );
    assert_eq!(
        created[0].body["metadata"]["ownerReferences"][0]["kind"],
        "CronJob"
    );
    let cj = r.api.get::<CronJob>("default", "tick").unwrap();
    let st = cj.status.unwrap();
    assert_eq!(st.active.unwrap()[0].name.as_deref(), Some(name.as_str()));
    assert_eq!(st.last_schedule_time.unwrap().0, scheduled);
    settle().await;
    assert!(
        r.api
            .events()
            .iter()
            .any(|(reason, _)| reason == "SuccessfulCreate")
    );

    // A second sync at the same moment creates nothing more.
    r.observe();
    r.api.clear_requests();
    r.c.sync("default/tick").await.unwrap();
    assert!(r.api.writes("POST", "/jobs").is_empty());
}

#[tokio::test(start_paused = true)]
async fn forbid_skips_a_run_while_the_previous_job_is_active() {
    let r = rig(
        cronjob(json!({"concurrencyPolicy": "Forbid"}), json!({})),
        "2024-01-01T00:06:00Z",
    );
    r.c.sync("default/tick").await.unwrap();
    r.observe();
    assert_eq!(r.api.writes("POST", "/jobs").len(), 1);
    r.api.clear_requests();
    tokio::time::advance(Duration::from_secs(300)).await;
    r.c.sync("default/tick").await.unwrap();
    assert!(r.api.writes("POST", "/jobs").is_empty());
    settle().await;
    assert!(
        r.api
            .events()
            .iter()
            .any(|(reason, _)| reason == "JobAlreadyActive")
    );
}

#[tokio::test(start_paused = true)]
async fn a_suspended_cronjob_creates_nothing() {
    let r = rig(
        cronjob(json!({"suspend": true}), json!({})),
        "2024-01-01T00:06:00Z",
    );
    assert_eq!(r.c.sync("default/tick").await.unwrap(), Action::AwaitChange);
    assert!(r.api.writes("POST", "/jobs").is_empty());
}

#[tokio::test(start_paused = true)]
async fn finished_jobs_beyond_the_history_limit_are_deleted_oldest_first() {
    let r = rig(
        cronjob(
            json!({"successfulJobsHistoryLimit": 1, "suspend": true}),
            json!({}),
        ),
        "2024-01-01T01:00:00Z",
    );
    for (n, t) in [
        ("tick-a", "2024-01-01T00:10:00Z"),
        ("tick-b", "2024-01-01T00:20:00Z"),
        ("tick-c", "2024-01-01T00:30:00Z"),
    ] {
        let j = finished_job(n, "Complete", t);
        r.api.insert(&j);
        r.jobs.apply(j);
    }
    r.c.sync("default/tick").await.unwrap();
    let deleted: Vec<String> = r
        .api
        .writes("DELETE", "")
        .iter()
        .map(|w| w.path.clone())
        .collect();
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert!(
        deleted[0].ends_with("/jobs/tick-a") && deleted[1].ends_with("/jobs/tick-b"),
        "{deleted:?}"
    );
    let cj = r.api.get::<CronJob>("default", "tick").unwrap();
    assert_eq!(
        cj.status.unwrap().last_successful_time.unwrap().0,
        "2024-01-01T00:30:00Z".parse::<jiff::Timestamp>().unwrap()
    );
}

#[tokio::test(start_paused = true)]
async fn a_missed_start_past_the_starting_deadline_is_skipped() {
    // Last ran at 00:00; now 00:07:10 with a 60 s deadline: the 00:05 run is too late.
    let r = rig(
        cronjob(
            json!({"startingDeadlineSeconds": 60}),
            json!({"lastScheduleTime": "2024-01-01T00:00:00Z"}),
        ),
        "2024-01-01T00:07:10Z",
    );
    r.c.sync("default/tick").await.unwrap();
    assert!(r.api.writes("POST", "/jobs").is_empty());
    let cj = r.api.get::<CronJob>("default", "tick").unwrap();
    assert_eq!(
        cj.status.unwrap().last_schedule_time.unwrap().0,
        "2024-01-01T00:00:00Z".parse::<jiff::Timestamp>().unwrap()
    );
}

#[test]
fn the_most_recent_missed_time_and_the_miss_count_are_found() {
    let s = parse_standard("*/5 * * * *", &TimeZone::UTC).unwrap();
    let t = |x: &str| x.parse::<jiff::Timestamp>().unwrap();
    let (recent, missed) =
        most_recent(t("2024-01-01T00:00:00Z"), t("2024-01-01T00:31:00Z"), &s).unwrap();
    assert_eq!(recent, Some(t("2024-01-01T00:30:00Z")));
    assert_eq!(missed, 6);
    let (none, zero) =
        most_recent(t("2024-01-01T00:00:00Z"), t("2024-01-01T00:04:00Z"), &s).unwrap();
    assert_eq!((none, zero), (None, 0));
}
