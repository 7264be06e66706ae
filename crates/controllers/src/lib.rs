//! ferrokube-controllers: the controller manager. One module per controller; each is
//! level-triggered (read desired and observed state, converge, return), fed by the shared
//! informers, and driven by the one work queue of `ferrokube-client`.
//!
//! [`run`] starts the enabled controllers; `ferrokube server` runs them in process against the
//! API server's in-process transport, `ferrokube controller-manager` against a kubeconfig with
//! leader election on the Lease `kube-system/kube-controller-manager`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferrokube_client::Informers;
use ferrokube_client::events::EventRecorder;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub mod clock;
pub mod controller_utils;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoint_slice;
pub mod endpoints;
pub mod error;
pub mod expectations;
pub mod garbage_collector;
pub mod history;
pub mod job;
pub mod local_path;
pub mod namespace;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod node_predicates;
pub mod persistent_volume;
pub mod pod_gc;
pub mod ref_manager;
pub mod replicaset;
pub mod resource_quota;
pub mod root_ca_publisher;
pub mod service_account;
pub mod statefulset;
pub mod taint_eviction;
#[cfg(test)]
mod testing;
pub mod ttl_after_finished;
pub mod util;
pub mod volume_protection;

pub use clock::Clock;
pub use error::{Error, Result};

/// Settings of the controller manager, with kube-controller-manager's defaults.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a node may stop reporting before it is marked unreachable.
    pub node_monitor_grace_period: Duration,
    /// How often node health is checked (`--node-monitor-period`).
    pub node_monitor_period: Duration,
    /// Grace for a node that never reported (`--node-startup-grace-period`).
    pub node_startup_grace_period: Duration,
    /// How often the pod garbage collector runs, and how long a node must be missing before
    /// its pods are collected.
    pub pod_gc_period: Duration,
    pub pod_gc_quarantine: Duration,
    /// `--terminated-pod-gc-threshold`.
    pub terminated_pod_gc_threshold: usize,
    /// The cluster CA (PEM) the root-ca-cert-publisher puts in `kube-root-ca.crt`.
    pub root_ca_pem: String,
    /// Where the local-path provisioner puts volumes on nodes.
    pub local_path_dir: PathBuf,
    /// Whether the default StorageClass `local-path` is created at startup.
    pub default_storage_class: bool,
    /// Service ClusterIPs come from this range (`--service-cluster-ip-range`).
    pub service_cluster_ip_range: String,
    /// NodePorts come from this range (`--service-node-port-range`).
    pub service_node_port_range: (u16, u16),
    /// Pod CIDRs of nodes come from this range (`--cluster-cidr`), `node_cidr_mask_size` each.
    pub cluster_cidr: String,
    pub node_cidr_mask_size: u8,
    /// Workers per controller (`--concurrent-*-syncs`).
    pub workers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_monitor_grace_period: Duration::from_secs(40),
            node_monitor_period: Duration::from_secs(5),
            node_startup_grace_period: Duration::from_secs(60),
            pod_gc_period: Duration::from_secs(20),
            pod_gc_quarantine: Duration::from_secs(40),
            terminated_pod_gc_threshold: 12500,
            root_ca_pem: String::new(),
            local_path_dir: PathBuf::from("/var/lib/ferrokube/storage"),
            default_storage_class: true,
            service_cluster_ip_range: "10.96.0.0/12".into(),
            service_node_port_range: (30000, 32767),
            cluster_cidr: "10.244.0.0/16".into(),
            node_cidr_mask_size: 24,
            workers: 5,
        }
    }
}

/// What every controller gets.
pub struct Context {
    pub client: kube::Client,
    pub informers: Arc<Informers>,
    pub cancel: CancellationToken,
    pub config: Config,
    /// Wall-clock time, advancing with `tokio::time` (paused in tests).
    pub clock: Clock,
}

impl Context {
    pub fn new(
        client: kube::Client,
        informers: Arc<Informers>,
        cancel: CancellationToken,
        config: Config,
    ) -> Self {
        Context {
            client,
            informers,
            cancel,
            config,
            clock: Clock::new(),
        }
    }

    /// An event recorder reporting as `component` (`deployment-controller`, ...).
    pub fn recorder(&self, component: &str) -> EventRecorder {
        EventRecorder::new(self.client.clone(), component, "")
    }
}

type Starter = fn(Arc<Context>) -> BoxFuture<'static, ()>;

/// Every controller, by the name `--controllers` uses.
pub static CONTROLLERS: &[(&str, Starter)] = &[
    (
        "replicationcontroller",
        replicaset::start_replicationcontroller,
    ),
    ("replicaset", replicaset::start_replicaset),
    ("deployment", deployment::start),
    ("daemonset", daemonset::start),
    ("statefulset", statefulset::start),
    ("job", job::start),
    ("cronjob", cronjob::start),
    ("ttl-after-finished", ttl_after_finished::start),
    (disruption::NAME, disruption::start),
    (endpoints::NAME, endpoints::start),
    (endpoint_slice::NAME, endpoint_slice::start),
    (garbage_collector::NAME, garbage_collector::start),
    (local_path::NAME, local_path::start),
    (namespace::NAME, namespace::start),
    (node_ipam::NAME, node_ipam::start),
    (node_lifecycle::NAME, node_lifecycle::start),
    (persistent_volume::NAME, persistent_volume::start),
    (pod_gc::NAME, pod_gc::start),
    (volume_protection::PV_NAME, volume_protection::start_pv),
    (volume_protection::PVC_NAME, volume_protection::start_pvc),
    (resource_quota::NAME, resource_quota::start),
    (root_ca_publisher::NAME, root_ca_publisher::start),
    (service_account::NAME, service_account::start),
    (taint_eviction::NAME, taint_eviction::start),
];

/// Names of all controllers.
pub fn names() -> Vec<&'static str> {
    CONTROLLERS.iter().map(|(n, _)| *n).collect()
}

/// Runs the controllers named in `enabled` (`*` for all) until the context is cancelled.
pub async fn run(ctx: Arc<Context>, enabled: &[String]) {
    let all = enabled.iter().any(|e| e == "*");
    let mut tasks = Vec::new();
    for (name, start) in CONTROLLERS {
        let on = all && !enabled.iter().any(|e| e == &format!("-{name}"))
            || enabled.iter().any(|e| e == name);
        if on {
            tracing::debug!(controller = name, "starting");
            tasks.push(tokio::spawn(start(ctx.clone())));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
}
