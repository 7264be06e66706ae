//! Simulated ("hollow") nodes, as Kubernetes' kubemark has them: the real kubelet code over the
//! in-memory fake runtime, with no cgroups, mounts or files. Many of them share one process, one
//! API client and one set of informers, so a thousand nodes cost one watch per resource.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use ferrokube_client::Informers;
use ferrokube_client::events::EventRecorder;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use tokio_util::sync::CancellationToken;

use crate::cgroups::NoCgroups;
use crate::config::Config;
use crate::cri::fake::FakeRuntime;
use crate::kubelet::{Deps, Kubelet};
use crate::objects::ApiObjects;
use crate::volumes::FakeMounter;

/// Images every hollow node has from the start, so pods with `imagePullPolicy: Never` run.
pub const PRELOADED_IMAGES: &[&str] = &[
    crate::images::build::PAUSE_IMAGE,
    "docker.io/library/busybox:latest",
    "docker.io/library/busybox:1.35",
    crate::images::build::HTTPD_IMAGE,
    "docker.io/library/nginx:latest",
];

/// What the simulated nodes look like.
#[derive(Clone, Debug)]
pub struct HollowOptions {
    pub cpu: String,
    pub memory: String,
    pub max_pods: i64,
    pub labels: Vec<(String, String)>,
}

impl Default for HollowOptions {
    fn default() -> Self {
        HollowOptions {
            cpu: "4".into(),
            memory: "16Gi".into(),
            max_pods: 110,
            labels: Vec::new(),
        }
    }
}

/// A set of hollow nodes sharing one client and one set of informers.
pub struct HollowNodes {
    pub kubelets: Arc<HashMap<String, Arc<Kubelet>>>,
    pub runtimes: HashMap<String, FakeRuntime>,
}

impl std::fmt::Debug for HollowNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HollowNodes")
            .field("count", &self.kubelets.len())
            .finish()
    }
}

/// The default pod CIDR of the i-th hollow node while it has none assigned: 10.64.0.0/10 cut
/// into /24s, clear of the default cluster CIDR 10.244.0.0/16.
pub fn default_pod_cidr(i: usize) -> String {
    format!("10.{}.{}.0/24", 64 + (i / 256) % 64, i % 256)
}

/// Starts hollow kubelets named `names`; they stop when `cancel` fires.
pub async fn start(
    client: kube::Client,
    names: &[String],
    opts: &HollowOptions,
    cancel: CancellationToken,
) -> HollowNodes {
    let informers = Informers::new(client.clone(), cancel.clone());
    let pods = informers.get::<Pod>();
    let services = informers.get::<Service>();
    let nodes = informers.get::<Node>();
    let objects = ApiObjects::new(client.clone());
    let mounter = Arc::new(FakeMounter::default());
    let cgroups = Arc::new(NoCgroups);
    let mut kubelets = HashMap::new();
    let mut runtimes = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        let runtime = FakeRuntime::new();
        for img in PRELOADED_IMAGES {
            runtime.add_image(img);
        }
        let mut cfg = Config::hollow(name, PathBuf::from(format!("/nonexistent/hollow/{name}")));
        if let Some(c) = cfg.capacity.as_mut() {
            c.cpu = opts.cpu.clone();
            c.memory = opts.memory.clone();
        }
        cfg.max_pods = opts.max_pods;
        cfg.default_pod_cidr = Some(default_pod_cidr(i));
        cfg.node_labels = opts.labels.iter().cloned().collect();
        let kubelet = Kubelet::new(
            cfg,
            Deps {
                client: client.clone(),
                runtime: Arc::new(runtime.clone()),
                cgroups: cgroups.clone(),
                mounter: mounter.clone(),
                objects: objects.clone(),
                services: services.clone(),
                nodes: nodes.clone(),
                recorder: EventRecorder::new(client.clone(), "kubelet", name),
            },
        );
        kubelet.start(cancel.clone()).await;
        kubelets.insert(name.clone(), kubelet);
        runtimes.insert(name.clone(), runtime);
    }
    let kubelets = Arc::new(kubelets);
    // One pod watch for every node: each change goes to the kubelet of the pod's node.
    let route = kubelets.clone();
    pods.on_change(move |c| {
        let node_of = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone());
        match c {
            ferrokube_client::Change::Added(p) => {
                if let Some(k) = node_of(p).and_then(|n| route.get(&n)) {
                    k.api_pod_updated((*p).clone());
                }
            }
            ferrokube_client::Change::Updated { old, new } => {
                let (before, after) = (node_of(old), node_of(new));
                if before != after
                    && let Some(k) = before.and_then(|n| route.get(&n))
                {
                    k.api_pod_deleted(old);
                }
                if let Some(k) = after.and_then(|n| route.get(&n)) {
                    k.api_pod_updated((*new).clone());
                }
            }
            ferrokube_client::Change::Deleted(p) => {
                if let Some(k) = node_of(p).and_then(|n| route.get(&n)) {
                    k.api_pod_deleted(p);
                }
            }
        }
    });
    let synced = kubelets.clone();
    tokio::spawn(async move {
        pods.wait_synced().await;
        for k in synced.values() {
            k.set_api_synced();
        }
    });
    HollowNodes { kubelets, runtimes }
}
