//! StatefulSet controller unit tests.

use std::sync::Arc;

use ferrokube_client::Informer;
use ferrokube_client::events::EventRecorder;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use serde_json::{Value, json};

use super::StatefulSetController;
use super::utils::*;
use crate::clock::Clock;
use crate::testing::{FakeApi, obj, settle};

fn sts(replicas: i32, policy: &str, extra: Value) -> StatefulSet {
    let mut spec = json!({
        "replicas": replicas, "serviceName": "nginx", "podManagementPolicy": policy,
        "selector": {"matchLabels": {"app": "nginx"}},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "revisionHistoryLimit": 10,
        "template": {"metadata": {"labels": {"app": "nginx"}},
                     "spec": {"containers": [{"name": "nginx", "image": "nginx:1", "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "www"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    obj(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default", "uid": "sts-uid", "generation": 1},
        "spec": spec, "status": {"replicas": 0, "availableReplicas": 0}}))
}

struct Rig {
    api: FakeApi,
    sets: Arc<Informer<StatefulSet>>,
    pods: Arc<Informer<Pod>>,
    revs: Arc<Informer<ControllerRevision>>,
    claims: Arc<Informer<PersistentVolumeClaim>>,
    c: Arc<StatefulSetController>,
}

fn rig(s: StatefulSet) -> Rig {
    let clock = Clock::at("2024-01-01T01:00:00Z".parse().unwrap());
    let api = FakeApi::new(clock.clone());
    let stored = api.insert(&s);
    let sets = Informer::<StatefulSet>::detached();
    sets.apply(obj(stored));
    let pods = Informer::<Pod>::detached();
    let revs = Informer::<ControllerRevision>::detached();
    let claims = Informer::<PersistentVolumeClaim>::detached();
    let client = api.client();
    let rec = EventRecorder::new(client.clone(), "statefulset-controller", "");
    let c = StatefulSetController::new(
        client,
        sets.clone(),
        pods.clone(),
        revs.clone(),
        claims.clone(),
        rec,
        clock,
    );
    Rig {
        api,
        sets,
        pods,
        revs,
        claims,
        c,
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
        for r in self.api.list::<ControllerRevision>() {
            self.revs.apply(r);
        }
        for c in self.api.list::<PersistentVolumeClaim>() {
            self.claims.apply(c);
        }
        for s in self.api.list::<StatefulSet>() {
            self.sets.apply(s);
        }
    }

    /// Pods become Running and Ready (the ones named, or all).
    fn run(&self, names: Option<&[&str]>) {
        for mut p in self.api.list::<Pod>() {
            let n = p.metadata.name.clone().unwrap();
            if names.is_some_and(|ns| !ns.contains(&n.as_str())) {
                continue;
            }
            p.status = Some(obj(json!({"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]})));
            self.api.insert(&p);
        }
        self.observe();
    }

    fn pod_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .api
            .list::<Pod>()
            .into_iter()
            .map(|p| p.metadata.name.unwrap())
            .collect();
        v.sort();
        v
    }

    async fn step(&self) {
        self.c.sync("default/web").await.unwrap();
        self.observe();
    }
}

#[tokio::test(start_paused = true)]
async fn ordered_ready_creates_one_pod_at_a_time_with_its_claim() {
    let r = rig(sts(3, "OrderedReady", json!({})));
    r.step().await;
    assert_eq!(r.pod_names(), ["web-0"]);
    let p: Pod = r.api.get("default", "web-0").unwrap();
    let spec = p.spec.as_ref().unwrap();
    assert_eq!(spec.hostname.as_deref(), Some("web-0"));
    assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
    let labels = p.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[POD_NAME_LABEL], "web-0");
    assert_eq!(labels[POD_INDEX_LABEL], "0");
    assert!(labels["controller-revision-hash"].starts_with("web-"));
    let vol = &spec.volumes.as_ref().unwrap()[0];
    assert_eq!(
        (
            vol.name.as_str(),
            vol.persistent_volume_claim
                .as_ref()
                .unwrap()
                .claim_name
                .as_str()
        ),
        ("www", "www-web-0")
    );
    let claim: PersistentVolumeClaim = r.api.get("default", "www-web-0").unwrap();
    assert_eq!(claim.metadata.labels.unwrap()["app"], "nginx");

    r.step().await;
    assert_eq!(
        r.pod_names(),
        ["web-0"],
        "web-1 waits for web-0 to be Running and Ready"
    );
    r.run(None);
    r.step().await;
    assert_eq!(r.pod_names(), ["web-0", "web-1"]);
    r.run(None);
    r.step().await;
    r.run(None);
    r.step().await;
    assert_eq!(r.pod_names(), ["web-0", "web-1", "web-2"]);
    let st = r
        .api
        .get::<StatefulSet>("default", "web")
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        (
            st.replicas,
            st.ready_replicas,
            st.current_replicas,
            st.updated_replicas
        ),
        (3, Some(3), Some(3), Some(3))
    );
    assert_eq!(st.current_revision, st.update_revision);
    settle().await;
    let events = r.api.events();
    assert!(
        events.contains(&(
            "SuccessfulCreate".into(),
            "create Pod web-0 in StatefulSet web successful".into()
        )),
        "{events:?}"
    );
    assert!(events.contains(&(
        "SuccessfulCreate".into(),
        "create Claim www-web-0 Pod web-0 in StatefulSet web success".into()
    )));
}

#[tokio::test(start_paused = true)]
async fn parallel_creates_every_pod_at_once() {
    let r = rig(sts(3, "Parallel", json!({})));
    r.step().await;
    assert_eq!(r.pod_names(), ["web-0", "web-1", "web-2"]);
}

#[tokio::test(start_paused = true)]
async fn scaling_down_deletes_the_highest_ordinal_first_and_waits_for_it() {
    let r = rig(sts(3, "OrderedReady", json!({})));
    for _ in 0..3 {
        r.step().await;
        r.run(None);
    }
    let mut s = r.api.get::<StatefulSet>("default", "web").unwrap();
    s.spec.as_mut().unwrap().replicas = Some(1);
    r.api.insert(&s);
    r.observe();
    r.step().await;
    assert_eq!(r.pod_names(), ["web-0", "web-1"]);
    r.step().await;
    assert_eq!(r.pod_names(), ["web-0"]);
    assert!(
        r.api
            .get::<PersistentVolumeClaim>("default", "www-web-2")
            .is_some(),
        "claims are retained by default"
    );
}

#[tokio::test(start_paused = true)]
async fn a_partitioned_rolling_update_replaces_pods_from_the_highest_ordinal_down_to_the_partition()
{
    let r = rig(sts(3, "OrderedReady", json!({})));
    for _ in 0..3 {
        r.step().await;
        r.run(None);
    }
    let first_rev = r
        .api
        .get::<StatefulSet>("default", "web")
        .unwrap()
        .status
        .unwrap()
        .current_revision
        .unwrap();
    let mut s = r.api.get::<StatefulSet>("default", "web").unwrap();
    let spec = s.spec.as_mut().unwrap();
    spec.template.spec.as_mut().unwrap().containers[0].image = Some("nginx:2".into());
    spec.update_strategy
        .as_mut()
        .unwrap()
        .rolling_update
        .as_mut()
        .unwrap()
        .partition = Some(1);
    s.metadata.generation = Some(2);
    r.api.insert(&s);
    r.observe();
    let image = |n: &str| {
        r.api
            .get::<Pod>("default", n)
            .map(|p| p.spec.unwrap().containers[0].image.clone().unwrap())
    };
    r.step().await;
    assert_eq!(image("web-2"), None, "web-2 deleted first");
    assert_eq!(image("web-1").as_deref(), Some("nginx:1"));
    r.step().await;
    assert_eq!(
        image("web-2").as_deref(),
        Some("nginx:2"),
        "recreated at the update revision"
    );
    r.step().await;
    assert_eq!(
        image("web-1").as_deref(),
        Some("nginx:1"),
        "not before web-2 is ready"
    );
    r.run(None);
    r.step().await;
    assert_eq!(image("web-1"), None);
    r.step().await;
    r.run(None);
    for _ in 0..3 {
        r.step().await;
        r.run(None);
    }
    assert_eq!(
        (
            image("web-0").as_deref(),
            image("web-1").as_deref(),
            image("web-2").as_deref()
        ),
        (Some("nginx:1"), Some("nginx:2"), Some("nginx:2")),
        "web-0 is below the partition"
    );
    let st = r
        .api
        .get::<StatefulSet>("default", "web")
        .unwrap()
        .status
        .unwrap();
    assert_eq!(st.current_revision.as_deref(), Some(first_rev.as_str()));
    assert_ne!(st.update_revision, st.current_revision);
    assert_eq!(
        (st.current_replicas, st.updated_replicas),
        (Some(1), Some(2))
    );
    assert_eq!(r.api.list::<ControllerRevision>().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn claims_of_scaled_down_pods_are_owned_by_the_pod_when_the_policy_says_delete() {
    let r = rig(sts(
        2,
        "Parallel",
        json!({"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"}}),
    ));
    r.step().await;
    r.run(None);
    r.step().await;
    let c0: PersistentVolumeClaim = r.api.get("default", "www-web-0").unwrap();
    let refs: Vec<String> = c0
        .metadata
        .owner_references
        .unwrap()
        .into_iter()
        .map(|o| o.kind)
        .collect();
    assert_eq!(
        refs,
        ["StatefulSet"],
        "whenDeleted=Delete: the set owns its claims"
    );
    let mut s = r.api.get::<StatefulSet>("default", "web").unwrap();
    s.spec.as_mut().unwrap().replicas = Some(1);
    r.api.insert(&s);
    r.observe();
    r.step().await;
    let c1: PersistentVolumeClaim = r.api.get("default", "www-web-1").unwrap();
    let refs: Vec<String> = c1
        .metadata
        .owner_references
        .unwrap()
        .into_iter()
        .map(|o| format!("{}/{}", o.kind, o.name))
        .collect();
    assert_eq!(
        refs,
        ["Pod/web-1"],
        "whenScaled=Delete: the condemned pod owns its claim, so it goes with it"
    );
    assert_eq!(r.pod_names(), ["web-0"]);
}
