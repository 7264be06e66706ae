//! DaemonSet controller unit tests.

use std::sync::Arc;

use ferrokube_client::Informer;
use ferrokube_client::events::EventRecorder;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use super::*;
use crate::testing::{FakeApi, obj, settle};

fn ds(strategy: Value, template_extra: Value) -> DaemonSet {
    let mut spec = json!({"containers": [{"name": "agent", "image": "agent:1"}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), template_extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    obj(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "default", "uid": "ds-uid", "generation": 1},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "updateStrategy": strategy,
                 "revisionHistoryLimit": 10,
                 "template": {"metadata": {"labels": {"app": "agent"}}, "spec": spec}},
        "status": {"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0}
    }))
}

fn node(name: &str, labels: Value, taints: Value) -> Node {
    obj(json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}}))
}

struct Rig {
    api: FakeApi,
    dss: Arc<Informer<DaemonSet>>,
    pods: Arc<Informer<Pod>>,
    revs: Arc<Informer<ControllerRevision>>,
    c: Arc<DaemonSetController>,
}

fn rig(d: DaemonSet, nodes: Vec<Node>) -> Rig {
    let clock = Clock::at("2024-01-01T01:00:00Z".parse().unwrap());
    let api = FakeApi::new(clock.clone());
    let stored = api.insert(&d);
    let dss = Informer::<DaemonSet>::detached();
    dss.apply(obj(stored));
    let ns = Informer::<Node>::detached();
    for n in nodes {
        api.insert(&n);
        ns.apply(n);
    }
    let pods = Informer::<Pod>::detached();
    let revs = Informer::<ControllerRevision>::detached();
    let client = api.client();
    let rec = EventRecorder::new(client.clone(), "daemonset-controller", "");
    let c = DaemonSetController::new(
        client,
        dss.clone(),
        ns,
        pods.clone(),
        revs.clone(),
        rec,
        clock,
    );
    Rig {
        api,
        dss,
        pods,
        revs,
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
        for d in self.api.list::<DaemonSet>() {
            self.dss.apply(d);
        }
    }

    /// Binds every pod to its target node and makes it Ready, as scheduler and kubelet would.
    fn run_pods(&self) {
        for mut p in self.api.list::<Pod>() {
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let n = target_node(&p).unwrap();
            p.spec.as_mut().unwrap().node_name = Some(n);
            p.status = Some(obj(json!({"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]})));
            self.api.insert(&p);
        }
        self.observe();
    }

    fn pods_by_node(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .api
            .list::<Pod>()
            .iter()
            .map(|p| {
                (
                    target_node(p).unwrap(),
                    p.spec.as_ref().unwrap().containers[0]
                        .image
                        .clone()
                        .unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    }
}

#[tokio::test(start_paused = true)]
async fn one_pod_goes_to_every_eligible_node_with_the_daemon_tolerations() {
    let r = rig(
        ds(
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}),
            json!({"nodeSelector": {"role": "worker"}}),
        ),
        vec![
            node("n1", json!({"role": "worker"}), json!([])),
            node(
                "n2",
                json!({"role": "worker"}),
                json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
            ),
            node(
                "n3",
                json!({"role": "worker"}),
                json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
            ),
            node("n4", json!({"role": "control-plane"}), json!([])),
        ],
    );
    r.c.sync("default/agent").await.unwrap();
    let creates = r.api.writes("POST", "/pods");
    let mut targets: Vec<String> = creates
        .iter()
        .map(|c| c.body["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchFields"][0]["values"][0].as_str().unwrap().to_string())
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        ["n1", "n2"],
        "cordoned nodes are tolerated, foreign taints and selectors are not"
    );
    let body = &creates[0].body;
    assert!(
        body["spec"]["nodeName"].is_null(),
        "the scheduler binds daemon pods"
    );
    assert_eq!(body["metadata"]["generateName"], "agent-");
    assert!(body["metadata"]["labels"]["controller-revision-hash"].is_string());
    let keys: Vec<&str> = body["spec"]["tolerations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
            "node.kubernetes.io/disk-pressure",
            "node.kubernetes.io/memory-pressure",
            "node.kubernetes.io/pid-pressure",
            "node.kubernetes.io/unschedulable",
        ]
    );
    let revs = r.api.list::<ControllerRevision>();
    assert_eq!(revs.len(), 1);
    assert_eq!(revs[0].revision, 1);
    assert_eq!(
        revs[0].data.as_ref().unwrap().0["spec"]["template"]["$patch"],
        "replace"
    );

    r.observe();
    r.run_pods();
    r.c.sync("default/agent").await.unwrap();
    let st = r
        .api
        .get::<DaemonSet>("default", "agent")
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        (
            st.desired_number_scheduled,
            st.current_number_scheduled,
            st.number_ready,
            st.updated_number_scheduled,
            st.number_available,
            st.number_misscheduled
        ),
        (2, 2, 2, Some(2), Some(2), 0)
    );
    assert_eq!(st.observed_generation, Some(1));
    settle().await;
    assert_eq!(
        r.api
            .events()
            .iter()
            .filter(|e| e.0 == "SuccessfulCreate")
            .count(),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn a_rolling_update_replaces_at_most_max_unavailable_pods_at_a_time() {
    let nodes: Vec<Node> = (1..=4)
        .map(|i| node(&format!("n{i}"), json!({}), json!([])))
        .collect();
    let r = rig(
        ds(
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            json!({}),
        ),
        nodes,
    );
    r.c.sync("default/agent").await.unwrap();
    r.observe();
    r.run_pods();
    let mut d = r.api.get::<DaemonSet>("default", "agent").unwrap();
    d.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = Some("agent:2".into());
    d.metadata.generation = Some(2);
    r.api.insert(&d);
    r.observe();
    for _ in 0..12 {
        r.c.sync("default/agent").await.unwrap();
        r.observe();
        let live = r.api.list::<Pod>();
        let old_ready = live
            .iter()
            .filter(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("agent:1"))
            .count();
        let new_ready = live
            .iter()
            .filter(|p| {
                p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                    && p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("agent:2")
            })
            .count();
        assert!(
            old_ready + new_ready >= 3,
            "more than one node without an available pod"
        );
        r.run_pods();
    }
    assert_eq!(
        r.pods_by_node(),
        (1..=4)
            .map(|i| (format!("n{i}"), "agent:2".to_string()))
            .collect::<Vec<_>>()
    );
    let mut revs = r.api.list::<ControllerRevision>();
    revs.sort_by_key(|x| x.revision);
    assert_eq!(revs.iter().map(|x| x.revision).collect::<Vec<_>>(), [1, 2]);
    r.c.sync("default/agent").await.unwrap();
    let st = r
        .api
        .get::<DaemonSet>("default", "agent")
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        (
            st.updated_number_scheduled,
            st.number_available,
            st.observed_generation
        ),
        (Some(4), Some(4), Some(2))
    );
}

#[tokio::test(start_paused = true)]
async fn surging_starts_the_new_pod_before_removing_the_old_one() {
    let r = rig(
        ds(
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}),
            json!({}),
        ),
        vec![node("n1", json!({}), json!([]))],
    );
    r.c.sync("default/agent").await.unwrap();
    r.observe();
    r.run_pods();
    let mut d = r.api.get::<DaemonSet>("default", "agent").unwrap();
    d.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = Some("agent:2".into());
    r.api.insert(&d);
    r.observe();
    r.c.sync("default/agent").await.unwrap();
    r.observe();
    assert_eq!(
        r.pods_by_node(),
        [
            ("n1".to_string(), "agent:1".to_string()),
            ("n1".to_string(), "agent:2".to_string())
        ]
    );
    r.run_pods();
    r.c.sync("default/agent").await.unwrap();
    r.observe();
    assert_eq!(
        r.pods_by_node(),
        [("n1".to_string(), "agent:2".to_string())]
    );
}

#[tokio::test(start_paused = true)]
async fn on_delete_waits_for_pods_to_be_deleted_and_failed_pods_are_replaced() {
    let r = rig(
        ds(json!({"type": "OnDelete"}), json!({})),
        vec![node("n1", json!({}), json!([]))],
    );
    r.c.sync("default/agent").await.unwrap();
    r.observe();
    r.run_pods();
    let mut d = r.api.get::<DaemonSet>("default", "agent").unwrap();
    d.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = Some("agent:2".into());
    r.api.insert(&d);
    r.observe();
    r.c.sync("default/agent").await.unwrap();
    r.observe();
    assert_eq!(
        r.pods_by_node(),
        [("n1".to_string(), "agent:1".to_string())],
        "OnDelete leaves running pods alone"
    );
    let mut p = r.api.list::<Pod>().remove(0);
    p.status.as_mut().unwrap().phase = Some("Failed".into());
    r.api.insert(&p);
    r.observe();
    r.c.sync("default/agent").await.unwrap();
    r.observe();
    assert!(r.api.list::<Pod>().is_empty(), "the failed pod was deleted");
    settle().await;
    assert!(
        r.api
            .events()
            .iter()
            .any(|e| e.0 == "FailedDaemonPod" && e.1.contains("will try to kill it"))
    );
    r.c.sync("default/agent").await.unwrap();
    assert_eq!(
        r.pods_by_node(),
        [("n1".to_string(), "agent:2".to_string())]
    );
}
