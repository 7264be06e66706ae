//! Preemption with PriorityClasses (victims marked, deleted with their grace period, the
//! preemptor nominated and bound once they are gone) and volume binding through the API.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::*;

async fn priority_class(c: &Cluster, name: &str, value: i32) {
    let api: Api<PriorityClass> = Api::all(c.client.clone());
    let pc: PriorityClass =
        serde_json::from_value(json!({"metadata": {"name": name}, "value": value})).unwrap();
    api.create(&PostParams::default(), &pc).await.unwrap();
}

fn cpu_pod(class: &str, cpu: &str) -> serde_json::Value {
    web(json!({"priorityClassName": class,
        "containers": [{"name": "c1", "image": "nginx", "resources": {"requests": {"cpu": cpu}}}]}))
}

async fn wait_for<F: Fn(&Pod) -> bool>(c: &Cluster, name: &str, f: F, what: &str) -> Pod {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(p) = c.pods().get_opt(name).await.unwrap()
            && f(&p)
        {
            return p;
        }
        assert!(tokio::time::Instant::now() < deadline, "{name}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn higher_priority_pods_preempt_lower_ones_gracefully() {
    let c = cluster().await;
    priority_class(&c, "low", 100).await;
    priority_class(&c, "high", 1000).await;
    c.node("n1", "2", json!({}), json!([])).await;
    c.create_pods("low", 2, cpu_pod("low", "1")).await;
    c.wait_bound("low", 2).await;

    c.create_pods("high", 1, cpu_pod("high", "1")).await;
    let high = wait_for(
        &c,
        "high-0",
        |p| {
            p.status
                .as_ref()
                .and_then(|s| s.nominated_node_name.as_deref())
                == Some("n1")
        },
        "never nominated to n1",
    )
    .await;
    assert_eq!(
        c.wait_event("high-0", "FailedScheduling").await,
        "0/1 nodes are available: 1 Insufficient cpu."
    );
    // Exactly one victim, marked and gracefully deleted (it stays Terminating: no kubelet).
    let mut victims = Vec::new();
    for name in ["low-0", "low-1"] {
        let p = c.pods().get(name).await.unwrap();
        if p.metadata.deletion_timestamp.is_some() {
            let cond = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "DisruptionTarget").cloned());
            let cond = cond.expect("victim has DisruptionTarget");
            assert_eq!(cond.reason.as_deref(), Some("PreemptionByScheduler"));
            assert_eq!(
                cond.message.as_deref(),
                Some("default-scheduler: preempting to accommodate a higher priority pod")
            );
            assert_eq!(p.metadata.deletion_grace_period_seconds, Some(30));
            victims.push(name);
        }
    }
    assert_eq!(victims.len(), 1, "one victim is enough");
    assert_eq!(
        c.wait_event(victims[0], "Preempted").await,
        format!("Preempted by pod {} on node n1", high.metadata.uid.unwrap())
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        c.node_of("high-0").await,
        None,
        "waits for the victim to go"
    );
    // The kubelet would confirm the deletion after the grace period; do it here.
    c.pods()
        .delete(victims[0], &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let pods = c.wait_bound("high", 1).await;
    assert_eq!(pods[0].1, "n1");
    let survivor = if victims[0] == "low-0" {
        "low-1"
    } else {
        "low-0"
    };
    assert!(
        c.pods()
            .get(survivor)
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );
}

#[tokio::test]
async fn pods_that_cannot_preempt_say_why() {
    let c = cluster().await;
    priority_class(&c, "low", 100).await;
    let api: Api<PriorityClass> = Api::all(c.client.clone());
    let never: PriorityClass = serde_json::from_value(
        json!({"metadata": {"name": "never"}, "value": 1000, "preemptionPolicy": "Never"}),
    )
    .unwrap();
    api.create(&PostParams::default(), &never).await.unwrap();
    c.node("n1", "1", json!({}), json!([])).await;
    c.create_pods("low", 1, cpu_pod("low", "1")).await;
    c.wait_bound("low", 1).await;
    c.create_pods("polite", 1, cpu_pod("never", "1")).await;
    assert_eq!(
        c.wait_event("polite-0", "FailedScheduling").await,
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    );
}

#[tokio::test]
async fn wait_for_first_consumer_claims_bind_to_a_volume_on_the_chosen_node() {
    let c = cluster().await;
    c.node("worker232", "2", json!({}), json!([])).await;
    c.node("worker233", "2", json!({}), json!([])).await;
    let sc: StorageClass = serde_json::from_value(json!({"metadata": {"name": "local"},
        "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer"})).unwrap();
    Api::<StorageClass>::all(c.client.clone())
        .create(&PostParams::default(), &sc)
        .await
        .unwrap();
    let pv: PersistentVolume = serde_json::from_value(json!({"metadata": {"name": "pv-233"},
        "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "local",
                 "local": {"path": "/data"},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["worker233"]}]}]}}}})).unwrap();
    let pvs: Api<PersistentVolume> = Api::all(c.client.clone());
    pvs.create(&PostParams::default(), &pv).await.unwrap();
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local",
                 "resources": {"requests": {"storage": "1Gi"}}}}))
    .unwrap();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "default");
    pvcs.create(&PostParams::default(), &pvc).await.unwrap();
    c.create_pods(
        "db",
        1,
        web(json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]})),
    )
    .await;
    // The scheduler claims the PV for the PVC through the API...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let pv = pvs.get("pv-233").await.unwrap();
        if let Some(r) = pv.spec.and_then(|s| s.claim_ref) {
            assert_eq!(r.name.as_deref(), Some("data"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "PV never claimed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        c.node_of("db-0").await,
        None,
        "binding waits for the claim to be bound"
    );
    // ...and binds the pod once the PV controller has bound the claim.
    pvcs.patch(
        "data",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"volumeName": "pv-233"}})),
    )
    .await
    .unwrap();
    let pods = c.wait_bound("db", 1).await;
    assert_eq!(pods[0].1, "worker233");

    // An Immediate claim that nothing bound keeps its pod pending.
    let imm: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": "imm"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                 "resources": {"requests": {"storage": "1Gi"}}}}))
    .unwrap();
    pvcs.create(&PostParams::default(), &imm).await.unwrap();
    c.create_pods(
        "waiting",
        1,
        web(json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "imm"}}]})),
    )
    .await;
    assert_eq!(
        c.wait_event("waiting-0", "FailedScheduling").await,
        "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
}
