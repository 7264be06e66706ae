//! The kubelet's settings, with upstream's defaults.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Upstream's kubelet version string, reported in `nodeInfo.kubeletVersion`.
pub const KUBELET_VERSION: &str = "v1.33.1";

/// Resources a node reports when they are not read from the host (simulated nodes).
#[derive(Clone, Debug)]
pub struct Capacity {
    pub cpu: String,
    pub memory: String,
    pub ephemeral_storage: String,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The Node's name (`--node-name`, default the hostname).
    pub node_name: String,
    /// The kubelet's own directory (upstream `/var/lib/kubelet`): `pods/<uid>/...`.
    pub root_dir: PathBuf,
    /// Where container logs go (upstream `/var/log/pods`).
    pub pod_logs_dir: PathBuf,
    /// Static pod manifests (`--pod-manifest-path`); None disables static pods.
    pub pod_manifest_path: Option<PathBuf>,
    /// How often the manifest directory is read again (`--file-check-frequency`).
    pub file_check_frequency: Duration,
    /// Cluster DNS servers pods with `dnsPolicy: ClusterFirst` use (`--cluster-dns`).
    pub cluster_dns: Vec<String>,
    /// The cluster's DNS domain (`--cluster-domain`).
    pub cluster_domain: String,
    /// The host's resolver configuration, the base of pods' resolv.conf.
    pub resolv_conf: PathBuf,
    /// The address the node reports as InternalIP (`--node-ip`); default: the address of the
    /// interface holding the default route.
    pub node_ip: Option<IpAddr>,
    /// Labels set at registration (`--node-labels`), on top of upstream's well-known ones.
    pub node_labels: BTreeMap<String, String>,
    /// Taints set at registration (`--register-with-taints`, `key=value:Effect`).
    pub register_with_taints: Vec<String>,
    /// How often node status is computed and, when changed, pushed.
    pub node_status_update_frequency: Duration,
    /// How often node status is pushed even when unchanged.
    pub node_status_report_frequency: Duration,
    /// The node Lease's duration; it is renewed every quarter of it (10 s by default).
    pub node_lease_duration_seconds: i32,
    /// `pods` in capacity (`--max-pods`).
    pub max_pods: i64,
    /// Resources to report instead of the host's (simulated nodes).
    pub capacity: Option<Capacity>,
    /// The pod CIDR used while the node has none (`--pod-cidr`); the node's
    /// `spec.podCIDR` wins once the controller manager assigns one.
    pub default_pod_cidr: Option<String>,
    /// Address and port of the kubelet's HTTPS server (logs, exec, stats); port 0 picks one,
    /// None serves nothing (simulated nodes).
    pub server_address: Option<std::net::SocketAddr>,
    /// The cgroup under which `kubepods` lives (`--cgroup-root`).
    pub cgroup_root: String,
    /// How often every pod is synced even when nothing happened (`--sync-frequency`).
    pub sync_frequency: Duration,
    /// How often the runtime is relisted for container state changes.
    pub pleg_relist_period: Duration,
    /// The runtime handler for sandboxes (empty: the runtime's default).
    pub runtime_handler: String,
    /// Memory the node keeps back from pods (upstream's hard eviction threshold
    /// `memory.available<100Mi` is subtracted from allocatable).
    pub eviction_hard_memory: String,
    /// The sandbox (pause) image.
    pub pod_infra_image: String,
    /// Whether pod volumes and files (/etc/hosts, termination logs) are written to disk.
    /// Simulated nodes do without.
    pub write_pod_files: bool,
    /// `node-role.kubernetes.io/control-plane` on servers' nodes.
    pub control_plane: bool,
    /// Concurrent writers of pod status.
    pub status_workers: usize,
}

impl Config {
    /// Defaults for a node named `node_name` keeping its files under `root_dir`.
    pub fn new(node_name: &str, root_dir: PathBuf) -> Config {
        Config {
            node_name: node_name.to_string(),
            pod_logs_dir: root_dir.join("logs/pods"),
            pod_manifest_path: None,
            file_check_frequency: Duration::from_secs(20),
            root_dir,
            cluster_dns: Vec::new(),
            cluster_domain: "cluster.local".into(),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            node_ip: None,
            node_labels: BTreeMap::new(),
            register_with_taints: Vec::new(),
            node_status_update_frequency: Duration::from_secs(10),
            node_status_report_frequency: Duration::from_secs(300),
            node_lease_duration_seconds: 40,
            max_pods: 110,
            capacity: None,
            default_pod_cidr: None,
            server_address: None,
            cgroup_root: "/".into(),
            sync_frequency: Duration::from_secs(60),
            pleg_relist_period: Duration::from_secs(1),
            runtime_handler: String::new(),
            eviction_hard_memory: "100Mi".into(),
            pod_infra_image: crate::images::build::PAUSE_IMAGE.into(),
            write_pod_files: true,
            control_plane: false,
            status_workers: 16,
        }
    }

    /// Defaults for a simulated node: no host resources read, no files, no server.
    pub fn hollow(node_name: &str, root_dir: PathBuf) -> Config {
        Config {
            capacity: Some(Capacity {
                cpu: "4".into(),
                memory: "16Gi".into(),
                ephemeral_storage: "100Gi".into(),
            }),
            write_pod_files: false,
            status_workers: 2,
            ..Config::new(node_name, root_dir)
        }
    }

    /// The Lease is renewed this often: a quarter of its duration, as upstream.
    pub fn lease_renew_interval(&self) -> Duration {
        Duration::from_secs_f64(self.node_lease_duration_seconds as f64 * 0.25)
    }
}

/// The host's name, as the default node name (lower-cased, as upstream).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_lowercase())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
