//! `ferrokube bench scheduler`: how fast pods get bound. Creates N Nodes (status written
//! through the API: capacity, allocatable, Ready) and M pending pods, lets the scheduler run,
//! and watches the pods: pods bound per second from the first binding seen to the last, p99
//! from a pod's creation to its binding being visible, and the scheduler's RSS.
//!
//! Workloads (after upstream's scheduler_perf): `basic` (requests only), `affinity`
//! (required anti-affinity on the hostname within a group, preferred affinity to the group's
//! zone), `spread` (maxSkew 1 across zones, DoNotSchedule, plus hostname ScheduleAnyway),
//! `preemption` (every node full of low-priority pods; each high-priority pod must evict one).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{Error, Result};

pub const NAMESPACE: &str = "bench-scheduler";
const ZONES: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Basic,
    Affinity,
    Spread,
    Preemption,
}

impl Workload {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "basic" => Workload::Basic,
            "affinity" => Workload::Affinity,
            "spread" => Workload::Spread,
            "preemption" => Workload::Preemption,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Workload::Basic => "basic",
            Workload::Affinity => "affinity",
            Workload::Spread => "spread",
            Workload::Preemption => "preemption",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub nodes: usize,
    pub pods: usize,
    pub workload: Workload,
    /// Concurrent API calls while creating objects.
    pub clients: usize,
    pub timeout: Duration,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub workload: String,
    pub nodes: usize,
    pub pods: usize,
    pub bound: usize,
    pub pods_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub rss_mb: f64,
    pub create_pods_per_s: f64,
}

impl Report {
    pub fn text(&self) -> String {
        format!(
            "workload {}: {} nodes, {} pods ({} bound)\n\
             binding rate: {:.0} pods/s (first binding to last, as seen through the API)\n\
             creation to binding: p50 {:.0} ms, p99 {:.0} ms\n\
             pods created at {:.0}/s\n\
             scheduler RSS: {:.1} MB\n",
            self.workload,
            self.nodes,
            self.pods,
            self.bound,
            self.pods_per_s,
            self.p50_ms,
            self.p99_ms,
            self.create_pods_per_s,
            self.rss_mb
        )
    }
}

fn api_err(what: &str, e: kube::Error) -> Error {
    Error::Request {
        what: what.to_string(),
        message: e.to_string(),
    }
}

fn node_json(i: usize, w: Workload) -> Value {
    let name = format!("bench-node-{i}");
    let (cpu, mem) = match w {
        Workload::Preemption => ("1", "4Gi"),
        _ => ("4", "32Gi"),
    };
    json!({
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name,
            "topology.kubernetes.io/zone": format!("zone-{}", i % ZONES),
            "ferrokube.io/bench": "scheduler"}},
        "status": {
            "capacity": {"cpu": cpu, "memory": mem, "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": mem, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
    })
}

/// The measured pods. `groups` bounds how many affinity pods share an anti-affinity group so
/// that each group fits on the nodes.
fn pod_json(i: usize, o: &Options) -> Value {
    let mut p = json!({
        "metadata": {"name": format!("pod-{i}"), "namespace": NAMESPACE, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}],
            "terminationGracePeriodSeconds": 0},
    });
    match o.workload {
        Workload::Basic => {}
        Workload::Affinity => {
            let groups = o.pods.div_ceil(o.nodes.max(1)) + 1;
            let color = format!("c{}", i % groups);
            p["metadata"]["labels"]["color"] = json!(color);
            p["spec"]["affinity"] = json!({
                "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                    "topologyKey": "kubernetes.io/hostname",
                    "labelSelector": {"matchLabels": {"color": color}}}]},
                "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                    "weight": 1, "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone",
                    "labelSelector": {"matchLabels": {"color": color}}}}]},
            });
        }
        Workload::Spread => {
            p["spec"]["topologySpreadConstraints"] = json!([
                {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
                 "labelSelector": {"matchLabels": {"app": "bench"}}},
                {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
                 "labelSelector": {"matchLabels": {"app": "bench"}}}]);
        }
        Workload::Preemption => {
            p["spec"]["priorityClassName"] = json!("bench-high");
            p["spec"]["priority"] = json!(1000);
            p["spec"]["containers"][0]["resources"]["requests"] =
                json!({"cpu": "900m", "memory": "100Mi"});
        }
    }
    p
}

/// A low-priority pod already running on node `i` (preemption workload).
fn victim_json(i: usize) -> Value {
    json!({
        "metadata": {"name": format!("victim-{i}"), "namespace": NAMESPACE, "labels": {"app": "victim"}},
        "spec": {"nodeName": format!("bench-node-{i}"), "priorityClassName": "bench-low", "priority": 10,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                "resources": {"requests": {"cpu": "900m", "memory": "100Mi"}}}]},
    })
}

async fn create_all<F>(n: usize, clients: usize, f: F) -> Result<Vec<Instant>>
where
    F: Fn(usize) -> futures::future::BoxFuture<'static, Result<()>>,
{
    let created: Vec<Result<(usize, Instant)>> = futures::stream::iter(0..n)
        .map(|i| {
            let fut = f(i);
            async move {
                let t = Instant::now();
                fut.await?;
                Ok((i, t))
            }
        })
        .buffer_unordered(clients.max(1))
        .collect()
        .await;
    let mut times = vec![Instant::now(); n];
    for r in created {
        let (i, t) = r?;
        times[i] = t;
    }
    Ok(times)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Removes what a previous run left.
pub async fn cleanup(client: &kube::Client) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let _ = pods
        .delete_collection(
            &DeleteParams::default().grace_period(0),
            &ListParams::default(),
        )
        .await;
    let nodes: Api<Node> = Api::all(client.clone());
    let _ = nodes
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("ferrokube.io/bench=scheduler"),
        )
        .await;
    Ok(())
}

/// Creates the nodes and (for preemption) the victims; the cluster is ready for the pods.
pub async fn prepare(client: &kube::Client, o: &Options) -> Result<()> {
    let ns: Api<Namespace> = Api::all(client.clone());
    let nsobj: Namespace =
        serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).expect("ns");
    match ns.create(&PostParams::default(), &nsobj).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(api_err("create namespace", e)),
    }
    if o.workload == Workload::Preemption {
        let pcs: Api<PriorityClass> = Api::all(client.clone());
        for (name, v) in [("bench-low", 10), ("bench-high", 1000)] {
            let pc: PriorityClass =
                serde_json::from_value(json!({"metadata": {"name": name}, "value": v}))
                    .expect("pc");
            match pcs.create(&PostParams::default(), &pc).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(api_err("create priority class", e)),
            }
        }
    }
    let nodes: Api<Node> = Api::all(client.clone());
    let w = o.workload;
    create_all(o.nodes, o.clients, |i| {
        let nodes = nodes.clone();
        Box::pin(async move {
            let v = node_json(i, w);
            let n: Node = serde_json::from_value(v.clone()).expect("node json");
            let name = n.metadata.name.clone().unwrap_or_default();
            match nodes.create(&PostParams::default(), &n).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(api_err("create node", e)),
            }
            nodes
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": v["status"]})),
                )
                .await
                .map_err(|e| api_err("node status", e))?;
            // Nodes are created with admission's not-ready NoSchedule taint; the node
            // lifecycle controller lifts it once the node is Ready, but the in-process run
            // has no controllers, so lift it here for both.
            nodes
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"taints": null}})),
                )
                .await
                .map_err(|e| api_err("node taints", e))?;
            Ok(())
        })
    })
    .await?;
    if w == Workload::Preemption {
        let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
        create_all(o.nodes, o.clients, |i| {
            let pods = pods.clone();
            Box::pin(async move {
                let p: Pod = serde_json::from_value(victim_json(i)).expect("pod json");
                pods.create(&PostParams::default(), &p)
                    .await
                    .map_err(|e| api_err("create victim", e))?;
                Ok(())
            })
        })
        .await?;
    }
    Ok(())
}

/// Creates the measured pods (once a watch on them is established) and waits for them to
/// be bound. `start_scheduler` runs after all pods exist (None: the scheduler is already running). `rss` reads the scheduler's RSS.
pub async fn measure(
    client: &kube::Client,
    o: &Options,
    start_scheduler: Option<Box<dyn FnOnce() + Send>>,
    rss: impl Fn() -> f64,
) -> Result<Report> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let bound_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let watch = {
        let bound_at = bound_at.clone();
        let cfg = watcher::Config::default().labels("app=bench");
        let stream = watcher(pods.clone(), cfg);
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut s = std::pin::pin!(stream);
            while let Ok(Some(ev)) = s.try_next().await {
                let objs: Vec<Pod> = match ev {
                    watcher::Event::Apply(p) | watcher::Event::InitApply(p) => vec![p],
                    watcher::Event::InitDone => {
                        if let Some(t) = ready.take() {
                            let _ = t.send(());
                        }
                        continue;
                    }
                    _ => continue,
                };
                let now = Instant::now();
                let mut m = bound_at.lock();
                for p in objs {
                    if p.spec
                        .as_ref()
                        .and_then(|s| s.node_name.as_deref())
                        .is_some_and(|n| !n.is_empty())
                    {
                        m.entry(p.metadata.name.unwrap_or_default()).or_insert(now);
                    }
                }
            }
        })
    };
    let _ = tokio::time::timeout(Duration::from_secs(60), ready_rx).await;
    let t0 = Instant::now();
    let created = create_all(o.pods, o.clients, |i| {
        let pods = pods.clone();
        let v = pod_json(i, o);
        Box::pin(async move {
            let p: Pod = serde_json::from_value(v).expect("pod json");
            pods.create(&PostParams::default(), &p)
                .await
                .map_err(|e| api_err("create pod", e))?;
            Ok(())
        })
    })
    .await?;
    let create_rate = o.pods as f64 / t0.elapsed().as_secs_f64().max(1e-9);
    if let Some(start) = start_scheduler {
        start();
    }
    let deadline = Instant::now() + o.timeout;
    while bound_at.lock().len() < o.pods && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watch.abort();
    let rss_mb = rss();
    let m = bound_at.lock().clone();
    let mut lat: Vec<Duration> = Vec::with_capacity(m.len());
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for (name, at) in &m {
        let i: usize = name.trim_start_matches("pod-").parse().unwrap_or(0);
        if let Some(c) = created.get(i) {
            lat.push(at.saturating_duration_since(*c));
        }
        first = Some(first.map_or(*at, |f: Instant| f.min(*at)));
        last = Some(last.map_or(*at, |l: Instant| l.max(*at)));
    }
    lat.sort();
    let span = match (first, last) {
        (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
        _ => 0.0,
    };
    Ok(Report {
        workload: o.workload.name().into(),
        nodes: o.nodes,
        pods: o.pods,
        bound: m.len(),
        pods_per_s: if span > 0.0 {
            (m.len().saturating_sub(1)) as f64 / span
        } else {
            0.0
        },
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        rss_mb,
        create_pods_per_s: create_rate,
    })
}

/// This process's resident set (in-process runs).
pub fn self_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| {
                    v.split_whitespace()
                        .next()
                        .and_then(|k| k.parse::<f64>().ok())
                })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}
