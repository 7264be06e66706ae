//! `ferrokube bench controllers`: an API server (memory store) and the controller manager in
//! this process, simulated Node objects, and a stand-in kubelet (also in this process) that
//! binds each new pod to a node and reports it Running and Ready through the API, and finishes
//! pod deletions. It creates N Deployments of R replicas and measures the time until all pods
//! exist, until every Deployment reports all replicas available, and for a rolling update of
//! every Deployment; then the process RSS (API server + controllers + stand-in kubelet).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferrokube_apiserver::in_process::InProcess;
use ferrokube_apiserver::{ApiServer, Config as ServerConfig, Options as ServerOptions};
use ferrokube_client::workqueue::{Action, WorkQueue, run_workers};
use ferrokube_client::{Change, Informers, key_of};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct Options {
    pub deployments: usize,
    pub replicas: usize,
    pub nodes: usize,
    /// Concurrent requests of the stand-in kubelet.
    pub kubelet_workers: usize,
    /// Workers per controller (kube-controller-manager's `--concurrent-*-syncs`, default 5).
    pub controller_workers: usize,
    /// Give up waiting for a phase after this long.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            deployments: 1_000,
            replicas: 10,
            nodes: 100,
            kubelet_workers: 32,
            controller_workers: 5,
            timeout: Duration::from_secs(600),
        }
    }
}

/// The figures, with the key names the issue asks for.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub deployments: usize,
    pub pods: usize,
    pub all_pods_created_s: f64,
    pub all_available_s: f64,
    pub rollout_all_s: f64,
    pub rss_mb: f64,
}

impl Report {
    pub fn text(&self) -> String {
        format!(
            "{} Deployments, {} pods\n\
             all pods created: {:.2} s\n\
             all Deployments available: {:.2} s\n\
             rolling update of all Deployments: {:.2} s\n\
             RSS (API server + controllers + stand-in kubelet, one process): {:.1} MB\n",
            self.deployments,
            self.pods,
            self.all_pods_created_s,
            self.all_available_s,
            self.rollout_all_s,
            self.rss_mb
        )
    }
}

fn kube_err(what: &str) -> impl Fn(kube::Error) -> Error + '_ {
    move |e| Error::Request {
        what: what.to_string(),
        message: e.to_string(),
    }
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Whether a Deployment has rolled out its current spec completely (what `kubectl rollout
/// status` waits for).
fn rolled_out(d: &Deployment, replicas: i32) -> bool {
    let Some(s) = &d.status else { return false };
    s.observed_generation >= d.metadata.generation
        && s.updated_replicas == Some(replicas)
        && s.replicas == Some(replicas)
        && s.available_replicas == Some(replicas)
}

async fn wait_until(
    what: &str,
    timeout: Duration,
    progress: &(dyn Fn(&str) + Sync),
    mut done: impl FnMut() -> (bool, String),
) -> Result<()> {
    let start = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let (ok, state) = done();
        if ok {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(Error::Request {
                what: what.into(),
                message: format!("not done after {timeout:?}: {state}"),
            });
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            progress(&format!("{what}: {state}"));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The stand-in kubelet: pods are bound round-robin, then reported Running and Ready; pods
/// being deleted are deleted for good (grace period 0), as a kubelet does once containers stop.
fn start_kubelet(
    client: kube::Client,
    informers: &Arc<Informers>,
    o: &Options,
    cancel: CancellationToken,
) {
    let pods = informers.get::<Pod>();
    let queue: Arc<WorkQueue<String>> = WorkQueue::new();
    {
        let q = queue.clone();
        pods.on_change(move |c| {
            if !matches!(c, Change::Deleted(_)) {
                q.add(key_of(&**c.object()));
            }
        });
    }
    {
        let q = queue.clone();
        tokio::spawn(async move {
            cancel.cancelled().await;
            q.shut_down();
        });
    }
    let nodes = o.nodes.max(1);
    let next = Arc::new(AtomicUsize::new(0));
    tokio::spawn(run_workers(queue, o.kubelet_workers, move |key: String| {
        let (client, pods, next) = (client.clone(), pods.clone(), next.clone());
        async move {
            let Some(p) = pods.get(&key) else {
                return Ok::<_, kube::Error>(Action::AwaitChange);
            };
            let api: Api<Pod> = Api::namespaced(client, &p.namespace().unwrap_or_default());
            let name = p.name_any();
            if p.metadata.deletion_timestamp.is_some() {
                match api
                    .delete(
                        &name,
                        &DeleteParams {
                            grace_period_seconds: Some(0),
                            ..Default::default()
                        },
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e),
                }
                return Ok(Action::AwaitChange);
            }
            if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none() {
                let node = format!("node-{}", next.fetch_add(1, Ordering::Relaxed) % nodes);
                let binding = json!({"apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": name},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
                match api
                    .create_subresource::<_, serde_json::Value>(
                        "binding",
                        &name,
                        &PostParams::default(),
                        &binding,
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {
                        return Ok(Action::AwaitChange);
                    }
                    Err(e) => return Err(e),
                }
            }
            if !ready(&p) {
                let now = jiff::Timestamp::now().to_string();
                let status = json!({"status": {"phase": "Running", "podIP": "10.244.0.10", "startTime": now,
                    "conditions": [
                        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                        {"type": "Ready", "status": "True", "lastTransitionTime": now},
                        {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}]}});
                match api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(Action::AwaitChange)
        }
    }));
}

pub async fn run(o: &Options, progress: impl Fn(&str) + Sync) -> Result<Report> {
    let cancel = CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    let server_config = ServerConfig {
        advertise_address: "127.0.0.1:6443".into(),
        serving_cert_pem: String::new(),
        serving_key_pem: String::new(),
        client_ca_pem: String::new(),
        compaction_interval: Duration::from_secs(300),
    };
    let backend = Arc::new(ferrokube_store::memory::MemoryBackend::new());
    let srv = ApiServer::with_options(
        server_config,
        ServerOptions::default(),
        backend,
        cancel.clone(),
    )
    .await
    .map_err(|e| Error::Request {
        what: "starting the API server".into(),
        message: e.to_string(),
    })?;
    let client = ferrokube_client::in_process(InProcess::new(srv));

    // The controller manager, as `ferrokube server` runs it.
    let ctx = Arc::new(ferrokube_controllers::Context::new(
        client.clone(),
        ferrokube_client::Informers::new(client.clone(), cancel.clone()),
        cancel.clone(),
        ferrokube_controllers::Config {
            root_ca_pem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".into(),
            default_storage_class: false,
            workers: o.controller_workers.max(1),
            ..Default::default()
        },
    ));
    tokio::spawn(async move { ferrokube_controllers::run(ctx, &["*".to_string()]).await });

    // Simulated nodes, and what the kubelet and the benchmark see.
    let node_api: Api<Node> = Api::all(client.clone());
    for i in 0..o.nodes.max(1) {
        let n: Node = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": format!("node-{i}"), "labels": {"kubernetes.io/hostname": format!("node-{i}")}},
            "status": {"capacity": {"cpu": "64", "memory": "256Gi", "pods": "250"},
                       "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "250"}}}))
        .expect("node");
        node_api
            .create(&PostParams::default(), &n)
            .await
            .map_err(kube_err("creating a node"))?;
    }
    let ns = "bench";
    let ns_api: Api<Namespace> = Api::all(client.clone());
    ns_api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("ns"),
        )
        .await
        .map_err(kube_err("creating the namespace"))?;
    let observer = Informers::new(client.clone(), cancel.clone());
    start_kubelet(client.clone(), &observer, o, cancel.clone());
    let pods = observer.get::<Pod>();
    let deploys = observer.get::<Deployment>();
    pods.wait_synced().await;
    deploys.wait_synced().await;

    let total = o.deployments * o.replicas;
    let replicas = o.replicas as i32;
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    progress(&format!(
        "creating {} Deployments of {} replicas",
        o.deployments, o.replicas
    ));
    let start = Instant::now();
    let creates = futures::stream::iter(0..o.deployments)
        .map(|i| {
            let api = api.clone();
            async move {
                let name = format!("web-{i}");
                let d: Deployment =
                    serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": name},
                    "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                        "template": {"metadata": {"labels": {"app": name}},
                            "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}}))
                    .expect("deployment");
                api.create(&PostParams::default(), &d).await.map(|_| ())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    if let Some(Err(e)) = creates.into_iter().find(|r| r.is_err()) {
        return Err(kube_err("creating a Deployment")(e));
    }
    progress(&format!(
        "created {} Deployments in {:.2} s",
        o.deployments,
        start.elapsed().as_secs_f64()
    ));
    let live =
        |p: &Pod| p.metadata.deletion_timestamp.is_none() && p.namespace().as_deref() == Some(ns);
    wait_until("all pods created", o.timeout, &progress, || {
        let n = pods.list().iter().filter(|p| live(p)).count();
        (n >= total, format!("{n}/{total} pods"))
    })
    .await?;
    let all_pods_created_s = start.elapsed().as_secs_f64();
    progress(&format!(
        "all {total} pods exist after {all_pods_created_s:.2} s"
    ));
    wait_until("all Deployments available", o.timeout, &progress, || {
        let n = deploys
            .list()
            .iter()
            .filter(|d| rolled_out(d, replicas))
            .count();
        (
            n >= o.deployments,
            format!("{n}/{} available", o.deployments),
        )
    })
    .await?;
    let all_available_s = start.elapsed().as_secs_f64();
    progress(&format!(
        "all Deployments available after {all_available_s:.2} s"
    ));

    progress("rolling update of every Deployment");
    let start = Instant::now();
    let patches = futures::stream::iter(0..o.deployments)
        .map(|i| {
            let api = api.clone();
            async move {
                let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}}});
                api.patch(&format!("web-{i}"), &PatchParams::default(), &Patch::Strategic(&patch)).await.map(|_| ())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    if let Some(Err(e)) = patches.into_iter().find(|r| r.is_err()) {
        return Err(kube_err("updating a Deployment")(e));
    }
    wait_until("rolling update of all Deployments", o.timeout, &progress, || {
        let n = deploys
            .list()
            .iter()
            .filter(|d| d.metadata.generation == Some(2) && rolled_out(d, replicas))
            .count();
        let sample = deploys.get_named(ns, "web-0").map(|d| {
            let st = d.status.clone().unwrap_or_default();
            format!(
                "web-0: generation {:?} observed {:?} replicas {:?} updated {:?} available {:?}",
                d.metadata.generation, st.observed_generation, st.replicas, st.updated_replicas, st.available_replicas
            )
        });
        (n >= o.deployments, format!("{n}/{} rolled out ({})", o.deployments, sample.unwrap_or_default()))
    })
    .await?;
    let rollout_all_s = start.elapsed().as_secs_f64();
    progress(&format!("rolled out after {rollout_all_s:.2} s"));
    Ok(Report {
        deployments: o.deployments,
        pods: total,
        all_pods_created_s,
        all_available_s,
        rollout_all_s,
        rss_mb: rss_mb(),
    })
}
