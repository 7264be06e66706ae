//! A cluster for controller tests: the real API server over the memory store, reached through
//! the in-process transport, the controllers under test, Node objects, and a stand-in kubelet
//! that binds pods to nodes round-robin (there is no scheduler here), reports them Running and
//! Ready, and removes pods being deleted, as a kubelet would once their containers stopped.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ferrokube_apiserver::in_process::InProcess;
use ferrokube_apiserver::{ApiServer, Config};
use ferrokube_client::workqueue::{Action, WorkQueue, run_workers};
use ferrokube_client::{Informer, Informers, key_of};
use ferrokube_controllers::Context;
use ferrokube_store::memory::MemoryBackend;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use parking_lot::Mutex;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub struct Cluster {
    pub srv: Arc<ApiServer>,
    pub client: kube::Client,
    pub informers: Arc<Informers>,
    pub cancel: CancellationToken,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Cluster {
    /// The API server and the named controllers (`*` for all).
    pub async fn start(controllers: &[&str]) -> Cluster {
        let cancel = CancellationToken::new();
        let config = Config {
            advertise_address: "127.0.0.1:6443".into(),
            serving_cert_pem: String::new(),
            serving_key_pem: String::new(),
            client_ca_pem: String::new(),
            compaction_interval: Duration::from_secs(300),
        };
        let srv = ApiServer::new(config, Arc::new(MemoryBackend::new()), cancel.clone())
            .await
            .expect("api server");
        let client = ferrokube_client::in_process(InProcess::new(srv.clone()));
        let informers = Informers::new(client.clone(), cancel.clone());
        let ctx = Arc::new(Context::new(
            client.clone(),
            informers.clone(),
            cancel.clone(),
            ferrokube_controllers::Config::default(),
        ));
        let enabled: Vec<String> = controllers.iter().map(|s| s.to_string()).collect();
        tokio::spawn(async move { ferrokube_controllers::run(ctx, &enabled).await });
        Cluster {
            srv,
            client,
            informers,
            cancel,
        }
    }

    pub async fn create_nodes(&self, names: &[&str]) {
        let api: Api<Node> = Api::all(self.client.clone());
        for n in names {
            let node: Node = serde_json::from_value(json!({
                "metadata": {"name": n, "labels": {"kubernetes.io/hostname": n}},
                "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
                    "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                    "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"}}
            }))
            .unwrap();
            let created = api.create(&PostParams::default(), &node).await.unwrap();
            // Status is reset on create: write it as the kubelet would.
            api.patch_status(
                n,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": node.status})),
            )
            .await
            .unwrap();
            let _ = created;
        }
    }

    /// Starts the stand-in kubelet on these nodes.
    pub fn kubelet(&self, nodes: &[&str]) -> Arc<Kubelet> {
        Kubelet::start(self, nodes)
    }
}

pub fn now() -> String {
    jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
        .unwrap()
        .to_string()
}

/// Binds, starts, readies and finally removes pods.
pub struct Kubelet {
    client: kube::Client,
    pub pods: Arc<Informer<Pod>>,
    nodes: Vec<String>,
    next: AtomicUsize,
    /// While false, pods are started but not reported Ready.
    pub ready: AtomicBool,
    /// Pods the kubelet should report as exited with this code instead of running.
    pub exit_codes: Mutex<HashMap<String, i32>>,
    /// Delay before a started pod turns Ready.
    pub ready_after: Mutex<Duration>,
}

impl Kubelet {
    fn start(c: &Cluster, nodes: &[&str]) -> Arc<Kubelet> {
        let pods = c.informers.get::<Pod>();
        let k = Arc::new(Kubelet {
            client: c.client.clone(),
            pods: pods.clone(),
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            next: AtomicUsize::new(0),
            ready: AtomicBool::new(true),
            exit_codes: Mutex::new(HashMap::new()),
            ready_after: Mutex::new(Duration::from_millis(20)),
        });
        let q: Arc<WorkQueue<String>> = WorkQueue::new();
        {
            let q = q.clone();
            pods.on_change(move |ch| q.add(key_of(&**ch.object())));
        }
        let stop = c.cancel.clone();
        {
            let q = q.clone();
            tokio::spawn(async move {
                stop.cancelled().await;
                q.shut_down();
            });
        }
        let me = k.clone();
        tokio::spawn(run_workers(q, 8, move |key: String| {
            let me = me.clone();
            async move { me.sync(&key).await }
        }));
        k
    }

    /// Re-examines every pod (after `ready` changed).
    pub fn resync(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            for p in me.pods.list() {
                let _ = me.sync(&key_of(&*p)).await;
            }
        });
    }

    async fn sync(&self, key: &str) -> Result<Action, kube::Error> {
        let Some(pod) = self.pods.get(key) else {
            return Ok(Action::AwaitChange);
        };
        let ns = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let name = pod.name_any();
        if pod.metadata.deletion_timestamp.is_some() {
            if pod
                .metadata
                .finalizers
                .as_ref()
                .is_some_and(|f| !f.is_empty())
            {
                // Stopped: report it finished so the owner can drop its finalizer.
                if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
                    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": {
                        "phase": "Failed", "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now()}]}})))
                        .await?;
                }
                return Ok(Action::AwaitChange);
            }
            return match api
                .delete(
                    &name,
                    &DeleteParams {
                        grace_period_seconds: Some(0),
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(_) => Ok(Action::AwaitChange),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(Action::AwaitChange),
                Err(e) => Err(e),
            };
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let node = spec.node_name.clone().unwrap_or_default();
        if node.is_empty() {
            // DaemonSet pods name their node through affinity.
            let wanted = spec
                .affinity
                .as_ref()
                .and_then(|a| a.node_affinity.as_ref())
                .and_then(|n| {
                    n.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .and_then(|r| r.node_selector_terms.first())
                .and_then(|t| t.match_fields.as_ref())
                .and_then(|f| f.first())
                .and_then(|f| f.values.as_ref())
                .and_then(|v| v.first().cloned());
            let target = wanted.unwrap_or_else(|| {
                let i = self.next.fetch_add(1, Ordering::SeqCst);
                self.nodes[i % self.nodes.len()].clone()
            });
            let binding = json!({"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "namespace": ns},
                "target": {"apiVersion": "v1", "kind": "Node", "name": target}});
            let r: Result<serde_json::Value, _> = api
                .create_subresource("binding", &name, &PostParams::default(), &binding)
                .await;
            return match r {
                Ok(_) => Ok(Action::AwaitChange),
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {
                    Ok(Action::AwaitChange)
                }
                Err(e) => Err(e),
            };
        }
        let status = pod.status.clone().unwrap_or_default();
        let phase = status.phase.clone().unwrap_or_default();
        if phase == "Succeeded" || phase == "Failed" {
            return Ok(Action::AwaitChange);
        }
        let exit = self.exit_codes.lock().get(&name).copied();
        if let Some(code) = exit {
            let phase = if code == 0 { "Succeeded" } else { "Failed" };
            let cname = spec
                .containers
                .first()
                .map(|c| c.name.clone())
                .unwrap_or_default();
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": {
                "phase": phase,
                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now()}],
                "containerStatuses": [{"name": cname, "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                    "state": {"terminated": {"exitCode": code, "reason": if code == 0 {"Completed"} else {"Error"},
                        "startedAt": now(), "finishedAt": now()}}}]}})))
                .await?;
            return Ok(Action::AwaitChange);
        }
        let ready = status
            .conditions
            .as_ref()
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True");
        if phase != "Running" {
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": {
                "phase": "Running", "podIP": "10.244.0.10", "startTime": now(), "hostIP": "192.0.2.1",
                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now()}]}})))
                .await?;
            return Ok(Action::Requeue(*self.ready_after.lock()));
        }
        if !ready && self.ready.load(Ordering::SeqCst) {
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": {
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now()}]}})))
                .await?;
        }
        Ok(Action::AwaitChange)
    }
}

/// Polls `f` until it returns Some, failing after `timeout`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
