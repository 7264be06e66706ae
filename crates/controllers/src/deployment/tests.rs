//! Deployment controller unit tests: synthetic informer contents, a fake API, and a stand-in
//! for the ReplicaSet controller that reports ReplicaSet statuses between syncs.

use std::sync::Arc;

use ferrokube_client::Informer;
use ferrokube_client::events::EventRecorder;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::DeploymentController;
use super::util::*;
use crate::clock::Clock;
use crate::testing::{FakeApi, obj, settle};

fn deployment(replicas: i32, image: &str, strategy: Value) -> Deployment {
    obj(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 1,
                     "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": strategy, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": image}]}}},
        "status": {}
    }))
}

fn rolling(surge: Value, unavailable: Value) -> Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
}

struct Rig {
    api: FakeApi,
    ds: Arc<Informer<Deployment>>,
    rss: Arc<Informer<ReplicaSet>>,
    c: Arc<DeploymentController>,
}

fn rig(d: Deployment) -> Rig {
    let clock = Clock::at("2024-01-01T01:00:00Z".parse().unwrap());
    let api = FakeApi::new(clock.clone());
    let stored = api.insert(&d);
    let ds = Informer::<Deployment>::detached();
    ds.apply(obj(stored));
    let rss = Informer::<ReplicaSet>::detached();
    let pods = Informer::<Pod>::detached();
    let client = api.client();
    let rec = EventRecorder::new(client.clone(), "deployment-controller", "");
    let c = DeploymentController::new(client, ds.clone(), rss.clone(), pods, rec, clock);
    Rig { api, ds, rss, c }
}

impl Rig {
    /// The informers catch up with the fake API.
    fn observe(&self) {
        for d in self.api.list::<Deployment>() {
            self.ds.apply(d);
        }
        let listed = self.api.list::<ReplicaSet>();
        for rs in self.rss.list() {
            if !listed.iter().any(|l| l.metadata.name == rs.metadata.name) {
                self.rss.delete(&rs);
            }
        }
        for rs in listed {
            self.rss.apply(rs);
        }
    }

    /// Stands in for the ReplicaSet controller: every ReplicaSet runs `spec.replicas` pods;
    /// pods of the ReplicaSets in `unready` are not available yet.
    fn report_replica_sets(&self, unready: &[String]) {
        for mut rs in self.api.list::<ReplicaSet>() {
            let n = rs_replicas(&rs);
            let available = if unready.contains(&rs.metadata.name.clone().unwrap()) {
                0
            } else {
                n
            };
            rs.status = Some(obj(json!({"replicas": n, "readyReplicas": available,
                "availableReplicas": available, "observedGeneration": rs.metadata.generation})));
            self.api.insert(&rs);
        }
        self.observe();
    }

    async fn set_template_image(&self, image: &str) {
        // Every rollout happens at a later second, as ReplicaSets are told apart by age.
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        let mut d: Deployment = self.api.get("default", "web").unwrap();
        d.spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .image = Some(image.into());
        d.metadata.generation = Some(d.metadata.generation.unwrap() + 1);
        self.api.insert(&d);
        self.observe();
    }

    fn replica_sets(&self) -> Vec<ReplicaSet> {
        let mut v = self.api.list::<ReplicaSet>();
        v.sort_by_key(|r| {
            let n: u64 = r
                .metadata
                .uid
                .as_deref()
                .unwrap_or("")
                .trim_start_matches("uid-")
                .parse()
                .unwrap_or(0);
            (r.metadata.creation_timestamp.clone().map(|t| t.0), n)
        });
        v
    }

    fn deployment(&self) -> Deployment {
        self.api.get("default", "web").unwrap()
    }
}

#[tokio::test(start_paused = true)]
async fn a_new_deployment_gets_a_hashed_replica_set_at_revision_one() {
    let r = rig(deployment(
        3,
        "nginx:1.10",
        rolling(json!("25%"), json!("25%")),
    ));
    r.c.sync("default/web").await.unwrap();
    let rss = r.replica_sets();
    assert_eq!(rss.len(), 1);
    let rs = &rss[0];
    let hash = rs.metadata.labels.as_ref().unwrap()[POD_TEMPLATE_HASH].clone();
    assert_eq!(
        rs.metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    let spec = rs.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(
        spec.selector.match_labels.as_ref().unwrap()[POD_TEMPLATE_HASH],
        hash
    );
    assert_eq!(
        spec.template
            .as_ref()
            .unwrap()
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap()[POD_TEMPLATE_HASH],
        hash
    );
    let a = rs.metadata.annotations.as_ref().unwrap();
    assert_eq!(a[REVISION], "1");
    assert_eq!(a[DESIRED_REPLICAS], "3");
    assert_eq!(a[MAX_REPLICAS], "4");
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.controller,
            owner.block_owner_deletion
        ),
        ("Deployment", Some(true), Some(true))
    );

    let d = r.deployment();
    assert_eq!(d.metadata.annotations.as_ref().unwrap()[REVISION], "1");
    let st = d.status.unwrap();
    let c = get_condition(&st, "Progressing").unwrap();
    assert_eq!(c.reason.as_deref(), Some(NEW_RS_CREATED));
    assert_eq!(
        c.message.as_deref(),
        Some(format!("Created new replica set \"web-{hash}\"").as_str())
    );
    settle().await;
    assert!(
        r.api.events().contains(&(
            "ScalingReplicaSet".into(),
            format!("Scaled up replica set web-{hash} from 0 to 3")
        )),
        "{:?}",
        r.api.events()
    );

    // Once the pods are available the rollout completes.
    r.observe();
    r.report_replica_sets(&[]);
    r.c.sync("default/web").await.unwrap();
    let st = r.deployment().status.unwrap();
    assert_eq!(
        (
            st.replicas,
            st.updated_replicas,
            st.available_replicas,
            st.observed_generation
        ),
        (Some(3), Some(3), Some(3), Some(1))
    );
    assert_eq!(
        get_condition(&st, "Progressing").unwrap().reason.as_deref(),
        Some(NEW_RS_AVAILABLE)
    );
    assert_eq!(
        get_condition(&st, "Available").unwrap().reason.as_deref(),
        Some(MIN_AVAILABLE)
    );
}

/// Drives a rollout to the end, checking the bounds after every step. New pods become
/// available one step after their ReplicaSet grows.
async fn roll_out(r: &Rig, replicas: i32, surge: i32, unavailable: i32) -> usize {
    let mut steps = 0;
    let mut lagging: Vec<String>;
    loop {
        steps += 1;
        assert!(
            steps < 100,
            "rollout does not converge: {:?}",
            r.replica_sets()
        );
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        let before: Vec<(String, i32)> = r
            .replica_sets()
            .iter()
            .map(|x| (x.metadata.name.clone().unwrap(), rs_replicas(x)))
            .collect();
        let available_before: i32 = r
            .replica_sets()
            .iter()
            .map(|x| rs_available(x).min(rs_replicas(x)))
            .sum();
        r.c.sync("default/web").await.unwrap();
        r.observe();
        let after = r.replica_sets();
        let total: i32 = after.iter().map(rs_replicas).sum();
        assert!(
            total <= replicas + surge,
            "surge exceeded: {total} > {replicas}+{surge}"
        );
        // Pods that were available stay so unless their ReplicaSet shrank.
        // What stays available: the pods of each ReplicaSet that were available, less the
        // ones its shrinking deletes.
        let available: i32 = after
            .iter()
            .map(|x| rs_available(x).min(rs_replicas(x)))
            .sum();
        assert!(
            available_before < replicas - unavailable || available >= replicas - unavailable,
            "too few available: {available} < {replicas}-{unavailable}: {after:?}"
        );
        // ReplicaSets that grew get their new pods available only at the next step.
        lagging = after
            .iter()
            .filter(|x| {
                let old = before
                    .iter()
                    .find(|(n, _)| Some(n) == x.metadata.name.as_ref())
                    .map(|(_, v)| *v)
                    .unwrap_or(0);
                rs_replicas(x) > old
            })
            .map(|x| x.metadata.name.clone().unwrap())
            .collect();
        // Report: grown sets keep their previous availability until the next step.
        for mut rs in r.api.list::<ReplicaSet>() {
            let n = rs_replicas(&rs);
            let name = rs.metadata.name.clone().unwrap();
            let avail = if lagging.contains(&name) {
                rs_available(&rs).min(n)
            } else {
                n
            };
            rs.status = Some(obj(
                json!({"replicas": n, "readyReplicas": avail, "availableReplicas": avail,
                                        "observedGeneration": rs.metadata.generation}),
            ));
            r.api.insert(&rs);
        }
        r.observe();
        let d = r.deployment();
        let st = d.status.clone().unwrap_or_default();
        if deployment_complete(&d, &st)
            && r.replica_sets()
                .iter()
                .filter(|x| rs_replicas(x) > 0)
                .count()
                == 1
        {
            return steps;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn rolling_updates_stay_within_max_surge_and_max_unavailable() {
    for (surge, unavail, s, u) in [
        (json!("25%"), json!("25%"), 3, 2),
        (json!(1), json!(0), 1, 0),
        (json!(0), json!(1), 0, 1),
        (json!("50%"), json!(3), 5, 3),
    ] {
        let r = rig(deployment(
            10,
            "nginx:1.10",
            rolling(surge.clone(), unavail.clone()),
        ));
        roll_out(&r, 10, s, u).await;
        r.set_template_image("nginx:1.11").await;
        roll_out(&r, 10, s, u).await;
        let rss = r.replica_sets();
        assert_eq!(rss.len(), 2);
        assert_eq!(
            rs_replicas(&rss[0]),
            0,
            "old scaled to zero ({surge} {unavail})"
        );
        assert_eq!(rs_replicas(&rss[1]), 10);
        assert_eq!(rss[1].metadata.annotations.as_ref().unwrap()[REVISION], "2");
        assert_eq!(r.deployment().metadata.annotations.unwrap()[REVISION], "2");
    }
}

#[tokio::test(start_paused = true)]
async fn recreate_removes_every_old_pod_before_creating_new_ones() {
    let r = rig(deployment(3, "nginx:1.10", json!({"type": "Recreate"})));
    r.c.sync("default/web").await.unwrap();
    r.observe();
    r.report_replica_sets(&[]);
    r.set_template_image("nginx:1.11").await;
    r.c.sync("default/web").await.unwrap();
    r.observe();
    let rss = r.replica_sets();
    assert_eq!(rss.len(), 1, "no new ReplicaSet while old pods run");
    assert_eq!(rs_replicas(&rss[0]), 0);
    // The old ReplicaSet still reports its pods: wait.
    r.c.sync("default/web").await.unwrap();
    assert_eq!(r.replica_sets().len(), 1);
    r.report_replica_sets(&[]);
    r.c.sync("default/web").await.unwrap();
    r.observe();
    let rss = r.replica_sets();
    assert_eq!(rss.len(), 2);
    assert_eq!(rs_replicas(&rss[1]), 3);
}

#[tokio::test(start_paused = true)]
async fn resizing_mid_rollout_scales_every_replica_set_proportionally() {
    let r = rig(deployment(
        10,
        "nginx:1.10",
        rolling(json!("25%"), json!("25%")),
    ));
    r.c.sync("default/web").await.unwrap();
    r.observe();
    r.report_replica_sets(&[]);
    r.set_template_image("nginx:1.11").await;
    r.c.sync("default/web").await.unwrap();
    r.observe();
    let rss = r.replica_sets();
    // 3 new (surge 3 over 10), and 2 old ones go (3 of 13 may be unavailable, 3 new are).
    assert_eq!((rs_replicas(&rss[0]), rs_replicas(&rss[1])), (8, 3));
    r.report_replica_sets(&[rss[1].metadata.name.clone().unwrap()]);

    let mut d = r.deployment();
    d.spec.as_mut().unwrap().replicas = Some(20);
    r.api.insert(&d);
    r.observe();
    r.c.sync("default/web").await.unwrap();
    r.observe();
    let rss = r.replica_sets();
    // 25 allowed (20 + surge 5), 11 wanted: 14 more, in proportion to 8:3 of the 13 they were
    // sized for (+7 and +3), the rest to the biggest.
    let sizes = (rs_replicas(&rss[0]), rs_replicas(&rss[1]));
    assert_eq!(sizes, (19, 6));
    for rs in &rss {
        let a = rs.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            (a[DESIRED_REPLICAS].as_str(), a[MAX_REPLICAS].as_str()),
            ("20", "25")
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_paused_deployment_does_not_roll_out_and_says_so() {
    let r = rig(deployment(2, "nginx:1.10", rolling(json!(1), json!(0))));
    r.c.sync("default/web").await.unwrap();
    r.observe();
    r.report_replica_sets(&[]);
    let mut d = r.deployment();
    d.spec.as_mut().unwrap().paused = Some(true);
    d.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = Some("nginx:2".into());
    r.api.insert(&d);
    r.observe();
    r.c.sync("default/web").await.unwrap();
    assert_eq!(r.replica_sets().len(), 1, "no rollout while paused");
    let st = r.deployment().status.unwrap();
    let c = get_condition(&st, "Progressing").unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("Unknown", Some(PAUSED))
    );

    let mut d = r.deployment();
    d.spec.as_mut().unwrap().paused = None;
    r.api.insert(&d);
    r.observe();
    r.c.sync("default/web").await.unwrap();
    r.observe();
    assert_eq!(r.replica_sets().len(), 2, "resumed");
}

#[tokio::test(start_paused = true)]
async fn no_progress_within_the_deadline_is_reported() {
    let mut d = deployment(2, "nginx:1.10", rolling(json!(1), json!(0)));
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(60);
    let r = rig(d);
    r.c.sync("default/web").await.unwrap();
    r.observe();
    // Pods never become available.
    let name = r.replica_sets()[0].metadata.name.clone().unwrap();
    r.report_replica_sets(std::slice::from_ref(&name));
    r.c.sync("default/web").await.unwrap();
    r.observe();
    tokio::time::advance(std::time::Duration::from_secs(61)).await;
    r.c.sync("default/web").await.unwrap();
    let st = r.deployment().status.unwrap();
    let c = get_condition(&st, "Progressing").unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some(TIMED_OUT))
    );
    assert_eq!(
        c.message.as_deref(),
        Some(format!("ReplicaSet \"{name}\" has timed out progressing.").as_str())
    );
    let a = get_condition(&st, "Available").unwrap();
    assert_eq!(a.reason.as_deref(), Some(MIN_UNAVAILABLE));
}

#[tokio::test(start_paused = true)]
async fn going_back_to_an_old_template_reuses_its_replica_set_with_a_new_revision() {
    let r = rig(deployment(1, "nginx:1.10", rolling(json!(1), json!(0))));
    roll_out(&r, 1, 1, 0).await;
    r.set_template_image("nginx:1.11").await;
    roll_out(&r, 1, 1, 0).await;
    r.set_template_image("nginx:1.10").await;
    roll_out(&r, 1, 1, 0).await;
    let rss = r.replica_sets();
    assert_eq!(rss.len(), 2);
    let first = &rss[0].metadata.annotations.as_ref().unwrap();
    assert_eq!(
        (first[REVISION].as_str(), first[REVISION_HISTORY].as_str()),
        ("3", "1")
    );
    assert_eq!(rs_replicas(&rss[0]), 1);
    assert_eq!(r.deployment().metadata.annotations.unwrap()[REVISION], "3");
}

#[tokio::test(start_paused = true)]
async fn old_replica_sets_beyond_the_history_limit_are_deleted() {
    let mut d = deployment(1, "v0", rolling(json!(1), json!(0)));
    d.spec.as_mut().unwrap().revision_history_limit = Some(2);
    let r = rig(d);
    roll_out(&r, 1, 1, 0).await;
    for i in 1..=4 {
        r.set_template_image(&format!("v{i}")).await;
        roll_out(&r, 1, 1, 0).await;
        // One more sync after completion cleans up.
        r.c.sync("default/web").await.unwrap();
        r.observe();
    }
    let revs: Vec<String> = r
        .replica_sets()
        .iter()
        .map(|x| x.metadata.annotations.as_ref().unwrap()[REVISION].clone())
        .collect();
    let mut revs = revs;
    revs.sort();
    assert_eq!(revs, ["3", "4", "5"]);
}

#[tokio::test(start_paused = true)]
async fn a_selector_that_selects_everything_is_refused_with_an_event() {
    let mut d = deployment(1, "v0", rolling(json!(1), json!(0)));
    d.spec.as_mut().unwrap().selector = Default::default();
    let r = rig(d);
    r.c.sync("default/web").await.unwrap();
    assert!(r.replica_sets().is_empty());
    assert_eq!(r.deployment().status.unwrap().observed_generation, Some(1));
    settle().await;
    assert!(
        r.api
            .events()
            .iter()
            .any(|(reason, _)| reason == "SelectingAll")
    );
}
