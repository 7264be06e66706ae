//! Job controller unit tests.

use std::sync::Arc;
use std::time::Duration;

use ferrokube_client::Informer;
use ferrokube_client::events::EventRecorder;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::*;
use crate::testing::{FakeApi, obj, settle};

fn job(name: &str, spec: Value) -> Job {
    let mut s = json!({
        "parallelism": 1, "completions": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
        "suspend": false, "podReplacementPolicy": "TerminatingOrFailed", "manualSelector": false,
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": format!("{name}-uid")}},
        "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": format!("{name}-uid"), "batch.kubernetes.io/job-name": name}},
                     "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}},
    });
    for (k, v) in spec.as_object().unwrap() {
        s[k] = v.clone();
    }
    obj(json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "default", "uid": format!("{name}-uid"), "generation": 1},
        "spec": s, "status": {}}))
}

struct Rig {
    api: FakeApi,
    jobs: Arc<Informer<Job>>,
    pods: Arc<Informer<Pod>>,
    c: Arc<JobController>,
    name: String,
}

fn rig(j: Job) -> Rig {
    let clock = Clock::at("2024-01-01T01:00:00Z".parse().unwrap());
    let api = FakeApi::new(clock.clone());
    let name = j.metadata.name.clone().unwrap();
    let stored = api.insert(&j);
    let jobs = Informer::<Job>::detached();
    jobs.apply(obj(stored));
    let pods = Informer::<Pod>::detached();
    let client = api.client();
    let rec = EventRecorder::new(client.clone(), "job-controller", "");
    let c = JobController::new(client, jobs.clone(), pods.clone(), rec, clock);
    Rig {
        api,
        jobs,
        pods,
        c,
        name,
    }
}

impl Rig {
    fn observe(&self) {
        let listed = self.api.list::<Pod>();
        for p in self.pods.list() {
            if !listed.iter().any(|l| l.metadata.name == p.metadata.name) {
                self.pods.delete(&p);
            }
        }
        for p in listed {
            self.pods.apply(p);
        }
        for j in self.api.list::<Job>() {
            self.jobs.apply(j);
        }
    }

    async fn step(&self) {
        self.c
            .sync(&format!("default/{}", self.name))
            .await
            .unwrap();
        self.observe();
    }

    /// Running pods finish with `phase` (the ones whose names pass `which`).
    fn finish(&self, phase: &str, which: impl Fn(&str) -> bool) {
        for mut p in self.api.list::<Pod>() {
            let n = p.metadata.name.clone().unwrap();
            let cur = p
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            if !which(&n) || cur == "Succeeded" || cur == "Failed" {
                continue;
            }
            p.status = Some(obj(
                json!({"phase": phase, "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0,
                "image": "busybox", "imageID": "", "state": {"terminated": {"exitCode": if phase == "Succeeded" {0} else {1},
                "finishedAt": "2024-01-01T01:00:00Z"}}}]}),
            ));
            self.api.insert(&p);
        }
        self.observe();
    }

    fn job(&self) -> Job {
        self.api.get("default", &self.name).unwrap()
    }

    fn conditions(&self) -> Vec<(String, String, String)> {
        self.job()
            .status
            .unwrap()
            .conditions
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.type_, c.status, c.reason.unwrap_or_default()))
            .collect()
    }

    fn live_pods(&self) -> Vec<Pod> {
        self.api
            .list::<Pod>()
            .into_iter()
            .filter(|p| {
                !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
            })
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn pods_run_parallelism_at_a_time_until_completions_succeed() {
    let r = rig(job("pi", json!({"completions": 3, "parallelism": 2})));
    r.step().await;
    let pods = r.api.list::<Pod>();
    assert_eq!(pods.len(), 2);
    assert_eq!(pods[0].metadata.generate_name.as_deref(), Some("pi-"));
    assert_eq!(
        pods[0].metadata.finalizers.as_deref(),
        Some(&["batch.kubernetes.io/job-tracking".to_string()][..])
    );
    let st = r.job().status.unwrap();
    assert_eq!(
        (st.active, st.ready, st.terminating),
        (Some(2), Some(0), Some(0))
    );
    assert!(st.start_time.is_some());

    r.finish("Succeeded", |_| true);
    r.step().await;
    let st = r.job().status.unwrap();
    assert_eq!(
        st.succeeded,
        Some(2),
        "counted once their finalizers were removed"
    );
    let finished: Vec<Pod> = r
        .api
        .list::<Pod>()
        .into_iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"))
        .collect();
    assert_eq!(finished.len(), 2);
    assert!(
        finished
            .iter()
            .all(|p| p.metadata.finalizers.as_ref().is_none_or(|f| f.is_empty()))
    );
    assert_eq!(r.live_pods().len(), 1, "one completion left: one pod");
    r.finish("Succeeded", |_| true);
    r.step().await;
    let st = r.job().status.unwrap();
    assert_eq!(st.succeeded, Some(3));
    assert_eq!(
        r.conditions(),
        [
            (
                "SuccessCriteriaMet".into(),
                "True".into(),
                "CompletionsReached".into()
            ),
            (
                "Complete".into(),
                "True".into(),
                "CompletionsReached".into()
            )
        ]
    );
    assert!(st.completion_time.is_some());
    assert!(is_finished(&r.job()));
    settle().await;
    assert!(
        r.api
            .events()
            .contains(&("Completed".into(), "Job completed".into()))
    );
    assert_eq!(
        r.api
            .events()
            .iter()
            .filter(|e| e.0 == "SuccessfulCreate")
            .count(),
        3
    );
}

#[tokio::test(start_paused = true)]
async fn failed_pods_are_replaced_after_a_doubling_backoff_until_the_backoff_limit() {
    let r = rig(job("flaky", json!({"backoffLimit": 1})));
    r.step().await;
    r.finish("Failed", |_| true);
    r.step().await;
    assert_eq!(r.job().status.unwrap().failed, Some(1));
    r.step().await;
    assert!(
        r.live_pods().is_empty(),
        "the replacement waits 10 s after the failure"
    );
    tokio::time::advance(Duration::from_secs(11)).await;
    r.step().await;
    assert_eq!(r.live_pods().len(), 1);
    r.finish("Failed", |_| true);
    r.step().await;
    let st = r.job().status.unwrap();
    assert_eq!(st.failed, Some(2));
    assert_eq!(
        r.conditions(),
        [
            (
                "FailureTarget".into(),
                "True".into(),
                "BackoffLimitExceeded".into()
            ),
            (
                "Failed".into(),
                "True".into(),
                "BackoffLimitExceeded".into()
            )
        ]
    );
    let c = st.conditions.unwrap();
    assert_eq!(
        c[1].message.as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    settle().await;
    assert!(r.api.events().contains(&(
        "BackoffLimitExceeded".into(),
        "Job has reached the specified backoff limit".into()
    )));
}

#[test]
fn the_pod_failure_backoff_doubles_from_ten_seconds_up_to_ten_minutes() {
    let now: jiff::Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
    let rec = |n| BackoffRecord {
        failures_after_last_success: n,
        last_failure: Some(now),
    };
    assert_eq!(rec(0).remaining(now), Duration::ZERO);
    assert_eq!(rec(1).remaining(now), Duration::from_secs(10));
    assert_eq!(rec(2).remaining(now), Duration::from_secs(20));
    assert_eq!(rec(4).remaining(now), Duration::from_secs(80));
    assert_eq!(rec(20).remaining(now), Duration::from_secs(600));
    assert_eq!(
        rec(1).remaining(now + jiff::SignedDuration::from_secs(4)),
        Duration::from_secs(6)
    );
}

#[tokio::test(start_paused = true)]
async fn indexed_jobs_give_each_pod_its_completion_index() {
    let r = rig(job(
        "idx",
        json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}),
    ));
    r.step().await;
    let mut pods = r.api.list::<Pod>();
    pods.sort_by_key(|p| {
        p.metadata.annotations.as_ref().unwrap()[indexes::COMPLETION_INDEX].clone()
    });
    for (i, p) in pods.iter().enumerate() {
        let i = i.to_string();
        assert_eq!(
            p.metadata.annotations.as_ref().unwrap()[indexes::COMPLETION_INDEX],
            i
        );
        assert_eq!(
            p.metadata.labels.as_ref().unwrap()[indexes::COMPLETION_INDEX],
            i
        );
        assert_eq!(
            p.metadata.generate_name.as_deref(),
            Some(format!("idx-{i}-").as_str())
        );
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some(format!("idx-{i}").as_str()));
        let env = &spec.containers[0].env.as_ref().unwrap()[0];
        assert_eq!(env.name, "JOB_COMPLETION_INDEX");
    }
    let one = pods[1].metadata.name.clone().unwrap();
    r.finish("Succeeded", |n| n == one);
    r.step().await;
    let st = r.job().status.unwrap();
    assert_eq!(
        (st.completed_indexes.as_deref(), st.succeeded),
        (Some("1"), Some(1))
    );
    // A failed index is recreated with the same index.
    let zero = pods[0].metadata.name.clone().unwrap();
    r.finish("Failed", |n| n == zero);
    r.step().await;
    tokio::time::advance(Duration::from_secs(11)).await;
    r.step().await;
    let idx: Vec<String> = r
        .live_pods()
        .iter()
        .map(|p| p.metadata.annotations.as_ref().unwrap()[indexes::COMPLETION_INDEX].clone())
        .collect();
    let mut idx = idx;
    idx.sort();
    assert_eq!(idx, ["0", "2"]);
    r.finish("Succeeded", |_| true);
    r.step().await;
    let st = r.job().status.unwrap();
    assert_eq!(
        (st.completed_indexes.as_deref(), st.succeeded),
        (Some("0-2"), Some(3))
    );
    assert!(is_finished(&r.job()));
}

#[tokio::test(start_paused = true)]
async fn an_active_deadline_fails_the_job_and_stops_its_pods() {
    let r = rig(job("slow", json!({"activeDeadlineSeconds": 30})));
    r.step().await;
    assert_eq!(r.live_pods().len(), 1);
    tokio::time::advance(Duration::from_secs(31)).await;
    r.step().await;
    assert!(
        r.api.list::<Pod>().is_empty()
            || r.api.list::<Pod>().iter().all(|p| p
                .metadata
                .finalizers
                .as_ref()
                .is_none_or(|f| f.is_empty()))
    );
    r.step().await;
    assert_eq!(
        r.conditions(),
        [
            (
                "FailureTarget".into(),
                "True".into(),
                "DeadlineExceeded".into()
            ),
            ("Failed".into(), "True".into(), "DeadlineExceeded".into())
        ]
    );
    assert_eq!(
        r.job().status.unwrap().failed,
        Some(1),
        "the stopped pod counts as failed"
    );
}

#[tokio::test(start_paused = true)]
async fn suspending_a_job_deletes_its_pods_and_resuming_starts_them_again() {
    let r = rig(job("s", json!({"parallelism": 2, "completions": 4})));
    r.step().await;
    assert_eq!(r.live_pods().len(), 2);
    let mut j = r.job();
    j.spec.as_mut().unwrap().suspend = Some(true);
    r.api.insert(&j);
    r.observe();
    r.step().await;
    assert!(r.api.list::<Pod>().is_empty());
    assert!(
        r.conditions()
            .contains(&("Suspended".into(), "True".into(), "JobSuspended".into()))
    );
    let mut j = r.job();
    j.spec.as_mut().unwrap().suspend = Some(false);
    r.api.insert(&j);
    r.observe();
    r.step().await;
    assert_eq!(r.live_pods().len(), 2);
    assert!(
        r.conditions()
            .contains(&("Suspended".into(), "False".into(), "JobResumed".into()))
    );
    settle().await;
    let ev = r.api.events();
    assert!(
        ev.contains(&("Suspended".into(), "Job suspended".into()))
            && ev.contains(&("Resumed".into(), "Job resumed".into()))
    );
}
