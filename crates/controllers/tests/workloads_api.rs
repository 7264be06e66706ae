//! ReplicaSets, ReplicationControllers and Deployments through the real API server (memory
//! store, in-process transport), with a stand-in kubelet driving pods to Running and Ready.

mod support;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use parking_lot::Mutex;
use serde_json::json;
use support::{Cluster, eventually};

const T: Duration = Duration::from_secs(30);

async fn pods_with(client: &kube::Client, selector: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_sets_and_replication_controllers_scale_up_and_down() {
    let c = Cluster::start(&["replicaset", "replicationcontroller"]).await;
    c.create_nodes(&["n1", "n2"]).await;
    c.kubelet(&["n1", "n2"]);
    let rss: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "default");
    rss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    let rcs: Api<ReplicationController> = Api::namespaced(c.client.clone(), "default");
    rcs.create(&PostParams::default(), &serde_json::from_value(json!({
        "metadata": {"name": "test-rollingupdate-v1"},
        "spec": {"replicas": 4, "selector": {"name": "nginx", "version": "v1"},
                 "template": {"metadata": {"labels": {"name": "nginx", "version": "v1"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx:1.10.2"}]}}}
    })).unwrap()).await.unwrap();

    for (sel, n) in [("app=web", 3), ("name=nginx", 4)] {
        eventually("pods created", T, async || {
            (pods_with(&c.client, sel).await.len() == n).then_some(())
        })
        .await;
    }
    let rs = eventually("rs status", T, async || {
        let rs = rss.get("web").await.unwrap();
        let st = rs.status.clone().unwrap();
        (st.ready_replicas == Some(3) && st.available_replicas == Some(3)).then_some(rs)
    })
    .await;
    let st = rs.status.unwrap();
    assert_eq!(
        (
            st.replicas,
            st.fully_labeled_replicas,
            st.observed_generation
        ),
        (3, Some(3), Some(1))
    );
    for p in pods_with(&c.client, "app=web").await {
        assert!(
            p.name_any().starts_with("web-") && p.name_any().len() == "web-".len() + 5,
            "{}",
            p.name_any()
        );
    }

    rss.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await
    .unwrap();
    rcs.patch_scale(
        "test-rollingupdate-v1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    eventually("rs scaled up", T, async || {
        (pods_with(&c.client, "app=web").await.len() == 5).then_some(())
    })
    .await;
    eventually("rc scaled down", T, async || {
        (pods_with(&c.client, "name=nginx").await.len() == 1).then_some(())
    })
    .await;
    let rc = eventually("rc status", T, async || {
        let rc = rcs.get("test-rollingupdate-v1").await.unwrap();
        (rc.status.as_ref().unwrap().replicas == 1).then_some(rc)
    })
    .await;
    assert_eq!(rc.status.unwrap().observed_generation, Some(2));

    // A pod whose labels stop matching is released, and replaced.
    let victim = pods_with(&c.client, "app=web").await[0].name_any();
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    pods.patch(
        &victim,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "debug"}}})),
    )
    .await
    .unwrap();
    eventually("replacement", T, async || {
        (pods_with(&c.client, "app=web").await.len() == 5).then_some(())
    })
    .await;
    let released = eventually("released", T, async || {
        let p = pods.get(&victim).await.unwrap();
        p.metadata
            .owner_references
            .clone()
            .unwrap_or_default()
            .is_empty()
            .then_some(p)
    })
    .await;
    assert_eq!(released.labels()["app"], "debug");

    // Events as upstream words them.
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(c.client.clone(), "default");
    let evs = eventually("events", T, async || {
        let evs = events.list(&ListParams::default()).await.unwrap().items;
        (evs.iter()
            .filter(|e| e.reason.as_deref() == Some("SuccessfulDelete"))
            .count()
            >= 3)
            .then_some(evs)
    })
    .await;
    let created = evs
        .iter()
        .find(|e| {
            e.reason.as_deref() == Some("SuccessfulCreate")
                && e.involved_object.kind.as_deref() == Some("ReplicationController")
        })
        .unwrap();
    assert!(
        created
            .message
            .as_deref()
            .unwrap()
            .starts_with("Created pod: test-rollingupdate-v1-")
    );
    assert_eq!(
        created.source.as_ref().unwrap().component.as_deref(),
        Some("replication-controller")
    );
}

fn deployment(
    name: &str,
    replicas: i32,
    surge: serde_json::Value,
    unavailable: serde_json::Value,
) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx:1.10.2"}]}}}
    }))
    .unwrap()
}

async fn rolled_out(api: &Api<Deployment>, name: &str) -> Deployment {
    eventually("rollout complete", T, async || {
        let d = api.get(name).await.unwrap();
        let want = d.spec.as_ref().unwrap().replicas.unwrap();
        let st = d.status.clone().unwrap_or_default();
        (st.observed_generation == d.metadata.generation
            && st.updated_replicas.unwrap_or(0) == want
            && st.replicas.unwrap_or(0) == want
            && st.available_replicas.unwrap_or(0) == want)
            .then_some(d)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_never_exceeds_max_surge_nor_drops_below_max_unavailable() {
    let c = Cluster::start(&["*"]).await;
    c.create_nodes(&["n1", "n2", "n3"]).await;
    let kubelet = c.kubelet(&["n1", "n2", "n3"]);
    *kubelet.ready_after.lock() = Duration::from_millis(150);
    let api: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    api.create(
        &PostParams::default(),
        &deployment("web", 6, json!(2), json!(1)),
    )
    .await
    .unwrap();
    rolled_out(&api, "web").await;

    // Watch every pod change from here on: (pods, ready pods) at each observed moment.
    let seen: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
    {
        let (seen, pods) = (seen.clone(), kubelet.pods.clone());
        let pods2 = pods.clone();
        pods.on_change(move |_| {
            let live: Vec<_> = pods2
                .list()
                .into_iter()
                .filter(|p| {
                    p.labels().get("app").map(String::as_str) == Some("web")
                        && p.metadata.deletion_timestamp.is_none()
                })
                .collect();
            let ready = live
                .iter()
                .filter(|p| ferrokube_controllers::controller_utils::is_pod_ready(p))
                .count();
            seen.lock().push((live.len(), ready));
        });
    }
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "nginx"}],
        "containers": [{"name": "nginx", "image": "nginx:1.11.5"}]}}}})),
    )
    .await
    .unwrap();
    let d = rolled_out(&api, "web").await;
    eventually("old pods gone", T, async || {
        let pods = pods_with(&c.client, "app=web").await;
        (pods.len() == 6
            && pods.iter().all(|p| {
                p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("nginx:1.11.5")
            }))
        .then_some(())
    })
    .await;
    let seen = seen.lock().clone();
    assert!(seen.len() > 10, "the rollout was observed: {seen:?}");
    let max_pods = seen.iter().map(|s| s.0).max().unwrap();
    let min_ready = seen.iter().map(|s| s.1).min().unwrap();
    assert!(
        max_pods <= 6 + 2,
        "more than replicas+maxSurge pods at some moment: {seen:?}"
    );
    assert!(
        min_ready >= 6 - 1,
        "fewer than replicas-maxUnavailable ready at some moment: {seen:?}"
    );
    assert_eq!(max_pods, 8, "the surge was used");

    assert_eq!(d.annotations()["deployment.kubernetes.io/revision"], "2");
    let rss: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "default");
    let list = rss.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(list.len(), 2);
    let st = d.status.unwrap();
    let conds: Vec<(String, String, String)> = st
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| (c.type_, c.status, c.reason.unwrap()))
        .collect();
    assert!(
        conds.contains(&(
            "Available".into(),
            "True".into(),
            "MinimumReplicasAvailable".into()
        )),
        "{conds:?}"
    );
    assert!(
        conds.contains(&(
            "Progressing".into(),
            "True".into(),
            "NewReplicaSetAvailable".into()
        )),
        "{conds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_scale_up_and_down() {
    let c = Cluster::start(&["*"]).await;
    c.create_nodes(&["n1"]).await;
    c.kubelet(&["n1"]);
    let api: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    api.create(
        &PostParams::default(),
        &deployment("api", 2, json!("25%"), json!("25%")),
    )
    .await
    .unwrap();
    rolled_out(&api, "api").await;
    for n in [7, 3, 0, 2] {
        api.patch_scale(
            "api",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": n}})),
        )
        .await
        .unwrap();
        rolled_out(&api, "api").await;
        eventually("pods", T, async || {
            (pods_with(&c.client, "app=api").await.len() == n as usize).then_some(())
        })
        .await;
    }
    let rss: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "default");
    let list = rss.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(list.len(), 1, "scaling is not a rollout");
    let a = list[0].annotations();
    assert_eq!(a["deployment.kubernetes.io/desired-replicas"], "2");
    assert_eq!(a["deployment.kubernetes.io/max-replicas"], "3");
}
