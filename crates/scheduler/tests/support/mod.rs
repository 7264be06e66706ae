//! An in-process API server over the memory store, Nodes without kubelets (status written
//! through the API), and a scheduler running against it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use ferrokube_apiserver::in_process::InProcess;
use ferrokube_apiserver::{ApiServer, Config as ApiConfig};
use ferrokube_client::{Informers, in_process};
use ferrokube_scheduler::Config;
use ferrokube_store::memory::MemoryBackend;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub struct Cluster {
    pub client: kube::Client,
    pub cancel: CancellationToken,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub async fn api_server() -> (kube::Client, CancellationToken) {
    let cancel = CancellationToken::new();
    let config = ApiConfig {
        advertise_address: "127.0.0.1:6443".into(),
        serving_cert_pem: String::new(),
        serving_key_pem: String::new(),
        client_ca_pem: String::new(),
        compaction_interval: Duration::from_secs(300),
    };
    let srv = ApiServer::new(config, Arc::new(MemoryBackend::new()), cancel.clone())
        .await
        .expect("api server");
    (in_process(InProcess::new(srv)), cancel)
}

/// Starts a scheduler (its own informers) on `client`; it stops with `cancel`.
pub fn start_scheduler(
    client: &kube::Client,
    config: Config,
    identity: &str,
    cancel: CancellationToken,
) {
    let informers = Informers::new(client.clone(), cancel.clone());
    let c = client.clone();
    let id = identity.to_string();
    tokio::spawn(async move {
        ferrokube_scheduler::run(c, informers, config, id, cancel)
            .await
            .expect("scheduler");
    });
}

pub fn no_leader_election() -> Config {
    let mut c = Config::default();
    c.leader_election.leader_elect = false;
    c
}

/// An API server and a scheduler (without leader election).
pub async fn cluster() -> Cluster {
    let (client, cancel) = api_server().await;
    start_scheduler(&client, no_leader_election(), "test", cancel.clone());
    Cluster { client, cancel }
}

impl Cluster {
    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    /// A Ready node with `cpu` cores, 4Gi and 110 pods, labels and taints as given.
    pub async fn node(&self, name: &str, cpu: &str, labels: Value, taints: Value) {
        add_node(&self.client, name, cpu, labels, taints).await;
    }

    /// The seed's cluster: master231 (control-plane taint), worker232 and worker233, 2 cores each.
    pub async fn three_nodes(&self) {
        self.node(
            "master231",
            "2",
            json!({"node-role.kubernetes.io/control-plane": ""}),
            json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
        )
        .await;
        self.node("worker232", "2", json!({}), json!([])).await;
        self.node("worker233", "2", json!({}), json!([])).await;
    }

    pub async fn create_pod(&self, spec: Value) -> Pod {
        let p: Pod = serde_json::from_value(spec).expect("pod json");
        self.pods()
            .create(&PostParams::default(), &p)
            .await
            .expect("create pod")
    }

    /// Creates `n` pods `prefix-0..n` from a spec template (metadata.name is set here).
    pub async fn create_pods(&self, prefix: &str, n: usize, template: Value) {
        for i in 0..n {
            let mut v = template.clone();
            v["metadata"]["name"] = json!(format!("{prefix}-{i}"));
            self.create_pod(v).await;
            // Replica controllers create pods one by one too; keep creation order = age order.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn node_of(&self, name: &str) -> Option<String> {
        self.pods()
            .get(name)
            .await
            .ok()
            .and_then(|p| p.spec.and_then(|s| s.node_name))
            .filter(|n| !n.is_empty())
    }

    /// Waits until the pods named `prefix-*` have exactly `bound` bound pods, then returns
    /// pod name -> node ("" if pending).
    pub async fn wait_bound(&self, prefix: &str, bound: usize) -> Vec<(String, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let list = self
                .pods()
                .list(&ListParams::default())
                .await
                .expect("list");
            let mut out: Vec<(String, String)> = list
                .items
                .iter()
                .filter(|p| {
                    p.metadata
                        .name
                        .as_deref()
                        .unwrap_or("")
                        .starts_with(&format!("{prefix}-"))
                })
                .map(|p| {
                    (
                        p.metadata.name.clone().unwrap_or_default(),
                        p.spec
                            .as_ref()
                            .and_then(|s| s.node_name.clone())
                            .unwrap_or_default(),
                    )
                })
                .collect();
            out.sort();
            let n = out.iter().filter(|(_, node)| !node.is_empty()).count();
            if n == bound {
                // Stay a moment to make sure no more get bound.
                tokio::time::sleep(Duration::from_millis(300)).await;
                let again = self
                    .pods()
                    .list(&ListParams::default())
                    .await
                    .expect("list");
                let n2 = again
                    .items
                    .iter()
                    .filter(|p| {
                        p.metadata
                            .name
                            .as_deref()
                            .unwrap_or("")
                            .starts_with(&format!("{prefix}-"))
                    })
                    .filter(|p| {
                        p.spec
                            .as_ref()
                            .and_then(|s| s.node_name.as_deref())
                            .is_some_and(|n| !n.is_empty())
                    })
                    .count();
                assert_eq!(n2, bound, "more pods got bound than expected: {out:?}");
                return out;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {bound} bound pods of {prefix}, have {n}: {out:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Events about a pod, as `kubectl describe` finds them.
    pub async fn events(&self, pod: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), "default");
        api.list(&ListParams::default().fields(&format!("involvedObject.name={pod}")))
            .await
            .expect("events")
            .items
    }

    /// Waits for an event with this reason on the pod and returns its message.
    pub async fn wait_event(&self, pod: &str, reason: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let evs = self.events(pod).await;
            if let Some(e) = evs
                .iter()
                .rev()
                .find(|e| e.reason.as_deref() == Some(reason))
            {
                assert_eq!(
                    e.source.as_ref().and_then(|s| s.component.as_deref()),
                    Some("default-scheduler")
                );
                return e.message.clone().unwrap_or_default();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {reason} event for {pod}: {evs:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the pod's PodScheduled condition is False and returns (reason, message).
    pub async fn wait_unschedulable_condition(&self, pod: &str) -> (String, String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let p = self.pods().get(pod).await.expect("get pod");
            if let Some(c) = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
                && c.status == "False"
            {
                return (
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{pod} never got PodScheduled=False"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn patch_node(&self, name: &str, patch: Value) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("patch node");
    }
}

pub async fn add_node(
    client: &kube::Client,
    name: &str,
    cpu: &str,
    mut labels: Value,
    taints: Value,
) {
    let nodes: Api<Node> = Api::all(client.clone());
    labels["kubernetes.io/hostname"] = json!(name);
    let n: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints},
    }))
    .unwrap();
    nodes
        .create(&PostParams::default(), &n)
        .await
        .expect("create node");
    let status = json!({"status": {
        "capacity": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
        "allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                        "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("node status");
    // Admission (TaintNodesByCondition) creates nodes with the not-ready NoSchedule taint;
    // the node lifecycle controller, not running here, lifts it once the node is Ready.
    nodes
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"taints": taints}})),
        )
        .await
        .expect("node taints");
}

/// A pod template like the seed's Deployments: app=xiuxian, one container.
pub fn web(extra_spec: Value) -> Value {
    let mut v = json!({
        "metadata": {"labels": {"app": "xiuxian", "version": "v1"}},
        "spec": {"containers": [{"name": "c1", "image": "registry.cn-hangzhou.aliyuncs.com/yinzhengjie-k8s/apps:v2"}]},
    });
    if let Value::Object(m) = extra_spec {
        for (k, val) in m {
            v["spec"][k] = val;
        }
    }
    v
}

pub const MASTER_TOLERATION: &str = "node-role.kubernetes.io/control-plane";
