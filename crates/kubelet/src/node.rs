//! The node: registration, status (addresses, capacity, allocatable, conditions, nodeInfo,
//! images, the kubelet's endpoint) and the heartbeat Lease in `kube-node-lease`.
//!
//! As upstream: status is computed every `node_status_update_frequency` and pushed when it
//! changed or when `node_status_report_frequency` has passed; the Lease is renewed every quarter
//! of its duration. Conditions keep their `lastTransitionTime` until their status changes.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ferrokube_client::events::EventType;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    ContainerImage, DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints,
    NodeSpec, NodeStatus, NodeSystemInfo, ObjectReference, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use parking_lot::Mutex;
use serde_json::json;

use crate::config::{Config, KUBELET_VERSION};
use crate::cri::Runtime;
use crate::{Error, Result};

/// What the node reports about the host, read once at start.
#[derive(Clone, Debug)]
pub struct MachineInfo {
    pub cpu: String,
    pub memory_bytes: i64,
    pub ephemeral_storage_bytes: i64,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub kernel_version: String,
    pub os_image: String,
}

impl MachineInfo {
    /// Reads the host (or takes the configured capacity of a simulated node).
    pub fn read(cfg: &Config) -> MachineInfo {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let os_image = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "Linux".into());
        let (cpu, memory_bytes, ephemeral_storage_bytes) = match &cfg.capacity {
            Some(c) => (
                c.cpu.clone(),
                quantity_bytes(&c.memory),
                quantity_bytes(&c.ephemeral_storage),
            ),
            None => {
                let cpus = std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1);
                let mem_kib: i64 = read("/proc/meminfo")
                    .lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0);
                let _ = std::fs::create_dir_all(&cfg.root_dir);
                let storage = rustix::fs::statvfs(&cfg.root_dir)
                    .map(|s| (s.f_blocks * s.f_frsize) as i64)
                    .unwrap_or(0);
                (cpus.to_string(), mem_kib * 1024, storage)
            }
        };
        let hollow = cfg.capacity.is_some();
        MachineInfo {
            cpu,
            memory_bytes,
            ephemeral_storage_bytes,
            machine_id: if hollow {
                String::new()
            } else {
                read("/etc/machine-id")
            },
            system_uuid: if hollow {
                String::new()
            } else {
                read("/sys/class/dmi/id/product_uuid")
            },
            boot_id: if hollow {
                String::new()
            } else {
                read("/proc/sys/kernel/random/boot_id")
            },
            kernel_version: rustix::system::uname()
                .release()
                .to_string_lossy()
                .to_string(),
            os_image,
        }
    }
}

fn quantity_bytes(q: &str) -> i64 {
    ferrokube_api::quantity::Quantity::parse(q)
        .map(|q| q.value())
        .unwrap_or(0)
}

/// The node's InternalIP: the configured one, or the source address of the default route.
pub fn detect_node_ip() -> Option<IpAddr> {
    // Connecting a UDP socket sends nothing; it only asks the kernel which source address the
    // default route would use.
    // Documentation addresses: one of them may be this host's own network (or its broadcast
    // address), so several are tried.
    ["198.51.100.1:9", "203.0.113.1:9", "192.0.2.1:9"]
        .iter()
        .find_map(|probe| {
            let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
            s.connect(probe).ok()?;
            let ip = s.local_addr().ok()?.ip();
            (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
        })
}

/// Parses `key=value:Effect` (or `key:Effect`) as `--register-with-taints` takes them.
pub fn parse_taint(s: &str) -> Result<Taint> {
    let (kv, effect) = s
        .rsplit_once(':')
        .ok_or_else(|| Error::Config(format!("invalid taint {s:?}: want key=value:Effect")))?;
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (kv, None),
    };
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(Error::Config(format!(
            "invalid taint effect {effect:?} in {s:?}: want NoSchedule, PreferNoSchedule or NoExecute"
        )));
    }
    Ok(Taint {
        key: key.to_string(),
        value,
        effect: effect.to_string(),
        time_added: None,
    })
}

struct Reported {
    status: Option<NodeStatus>,
    at: Option<tokio::time::Instant>,
    ready: Option<bool>,
}

/// Registers the node and keeps its status and Lease fresh.
pub struct NodeStatusManager {
    cfg: Arc<Config>,
    client: kube::Client,
    runtime: Arc<dyn Runtime>,
    machine: MachineInfo,
    node_ip: Option<IpAddr>,
    kubelet_port: Mutex<i32>,
    reported: Mutex<Reported>,
    recorder: ferrokube_client::events::EventRecorder,
    node_uid: Mutex<Option<String>>,
}

impl NodeStatusManager {
    pub fn new(
        cfg: Arc<Config>,
        client: kube::Client,
        runtime: Arc<dyn Runtime>,
        recorder: ferrokube_client::events::EventRecorder,
    ) -> Arc<Self> {
        let machine = MachineInfo::read(&cfg);
        let node_ip = cfg.node_ip.or_else(|| {
            // Simulated nodes write no files and have no address of their own.
            if !cfg.write_pod_files {
                None
            } else {
                detect_node_ip()
            }
        });
        Arc::new(NodeStatusManager {
            cfg,
            client,
            runtime,
            machine,
            node_ip,
            kubelet_port: Mutex::new(0),
            reported: Mutex::new(Reported {
                status: None,
                at: None,
                ready: None,
            }),
            recorder,
            node_uid: Mutex::new(None),
        })
    }

    pub fn node_ip(&self) -> Option<IpAddr> {
        self.node_ip
    }

    pub fn machine(&self) -> &MachineInfo {
        &self.machine
    }

    /// The port of the kubelet's server, reported in `daemonEndpoints`.
    pub fn set_kubelet_port(&self, port: u16) {
        *self.kubelet_port.lock() = port as i32;
    }

    fn node_ref(&self) -> ObjectReference {
        ObjectReference {
            kind: Some("Node".into()),
            name: Some(self.cfg.node_name.clone()),
            // Upstream's node events carry the node name as the uid.
            uid: Some(self.cfg.node_name.clone()),
            ..Default::default()
        }
    }

    fn event(&self, reason: &str, message: &str) {
        self.recorder
            .record_ref(self.node_ref(), EventType::Normal, reason, message);
    }

    fn labels(&self) -> BTreeMap<String, String> {
        let arch = crate::images::build::go_arch().to_string();
        let mut l = BTreeMap::from([
            ("beta.kubernetes.io/arch".to_string(), arch.clone()),
            ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
            ("kubernetes.io/arch".to_string(), arch),
            (
                "kubernetes.io/hostname".to_string(),
                self.cfg.node_name.clone(),
            ),
            ("kubernetes.io/os".to_string(), "linux".to_string()),
        ]);
        if self.cfg.control_plane {
            l.insert(
                "node-role.kubernetes.io/control-plane".into(),
                "true".into(),
            );
        }
        l.extend(self.cfg.node_labels.clone());
        l
    }

    /// Creates the Node, or adopts an existing one (keeping what others set on it). Retries
    /// until the API server answers or `cancel` fires.
    pub async fn register(&self, cancel: &tokio_util::sync::CancellationToken) -> Result<()> {
        let taints = self
            .cfg
            .register_with_taints
            .iter()
            .map(|t| parse_taint(t))
            .collect::<Result<Vec<_>>>()?;
        let api: Api<Node> = Api::all(self.client.clone());
        let mut delay = Duration::from_millis(100);
        self.event("Starting", "Starting kubelet.");
        loop {
            let node = Node {
                metadata: ObjectMeta {
                    name: Some(self.cfg.node_name.clone()),
                    labels: Some(self.labels()),
                    annotations: Some(BTreeMap::from([
                        ("node.alpha.kubernetes.io/ttl".into(), "0".into()),
                        (
                            "volumes.kubernetes.io/controller-managed-attach-detach".into(),
                            "true".into(),
                        ),
                    ])),
                    ..Default::default()
                },
                spec: Some(NodeSpec {
                    taints: (!taints.is_empty()).then(|| taints.clone()),
                    ..Default::default()
                }),
                status: Some(self.compute_status(None).await),
            };
            let result = match api.create(&PostParams::default(), &node).await {
                Ok(n) => {
                    tracing::info!(node = %self.cfg.node_name, "registered node");
                    Ok(n)
                }
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    // Already registered (a restart): bring the well-known labels up to date
                    // and keep everything else as it is.
                    let patch = json!({"metadata": {"labels": self.labels()}});
                    api.patch(
                        &self.cfg.node_name,
                        &PatchParams::default(),
                        &Patch::Strategic(&patch),
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(n) => {
                    *self.node_uid.lock() = n.metadata.uid.clone();
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(node = %self.cfg.node_name, error = %e, "unable to register node with the API server; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return Err(Error::Cancelled),
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(7));
                }
            }
        }
    }

    /// The node's status as of now. `old` supplies condition transition times.
    pub async fn compute_status(&self, old: Option<&NodeStatus>) -> NodeStatus {
        let now = Time(jiff::Timestamp::now());
        let runtime_status = self.runtime.status().await;
        let version = self.runtime.version().await.ok();
        let not_ready = match &runtime_status {
            Err(e) => Some(format!("container runtime is down: {e}")),
            Ok(s) => {
                let failing: Vec<String> = s
                    .conditions
                    .iter()
                    .filter(|c| !c.status)
                    .map(|c| {
                        format!(
                            "{}=false reason:{} message:{}",
                            c.r#type, c.reason, c.message
                        )
                    })
                    .collect();
                if failing.is_empty() {
                    None
                } else if failing.iter().any(|f| f.starts_with("NetworkReady")) {
                    Some(format!(
                        "container runtime network not ready: {}",
                        failing.join(", ")
                    ))
                } else {
                    Some(format!(
                        "container runtime not ready: {}",
                        failing.join(", ")
                    ))
                }
            }
        };
        let old_cond = |t: &str| {
            old.and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == t))
                .cloned()
        };
        let cond = |t: &str, status: &str, reason: &str, message: &str| {
            let transition = match old_cond(t) {
                Some(o) if o.status == status => o.last_transition_time.clone(),
                _ => Some(now.clone()),
            };
            NodeCondition {
                type_: t.into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_heartbeat_time: Some(now.clone()),
                last_transition_time: transition,
            }
        };
        let conditions = vec![
            cond(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            cond(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            cond(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            match &not_ready {
                None => cond(
                    "Ready",
                    "True",
                    "KubeletReady",
                    "kubelet is posting ready status",
                ),
                Some(m) => cond("Ready", "False", "KubeletNotReady", m),
            },
        ];
        let m = &self.machine;
        let mem_kib = m.memory_bytes / 1024;
        let reserved = quantity_bytes(&self.cfg.eviction_hard_memory);
        let q = |s: String| Quantity(s);
        let capacity = BTreeMap::from([
            ("cpu".to_string(), q(m.cpu.clone())),
            (
                "ephemeral-storage".to_string(),
                q(format!("{}Ki", m.ephemeral_storage_bytes / 1024)),
            ),
            ("hugepages-1Gi".to_string(), q("0".into())),
            ("hugepages-2Mi".to_string(), q("0".into())),
            ("memory".to_string(), q(format!("{mem_kib}Ki"))),
            ("pods".to_string(), q(self.cfg.max_pods.to_string())),
        ]);
        let allocatable = BTreeMap::from([
            ("cpu".to_string(), q(m.cpu.clone())),
            (
                // Upstream keeps 10% back for the nodefs.available eviction threshold.
                "ephemeral-storage".to_string(),
                q((m.ephemeral_storage_bytes / 10 * 9).to_string()),
            ),
            ("hugepages-1Gi".to_string(), q("0".into())),
            ("hugepages-2Mi".to_string(), q("0".into())),
            (
                "memory".to_string(),
                q(format!("{}Ki", ((m.memory_bytes - reserved).max(0)) / 1024)),
            ),
            ("pods".to_string(), q(self.cfg.max_pods.to_string())),
        ]);
        let mut addresses = Vec::new();
        if let Some(ip) = self.node_ip {
            addresses.push(NodeAddress {
                type_: "InternalIP".into(),
                address: ip.to_string(),
            });
        }
        addresses.push(NodeAddress {
            type_: "Hostname".into(),
            address: self.cfg.node_name.clone(),
        });
        let images = match self.runtime.list_images().await {
            Ok(mut list) => {
                // Upstream reports the 50 largest images.
                list.sort_by_key(|i| std::cmp::Reverse(i.size));
                list.truncate(50);
                list.into_iter()
                    .map(|i| {
                        let mut names: Vec<String> = i.repo_digests.clone();
                        names.extend(i.repo_tags.iter().cloned());
                        ContainerImage {
                            names: Some(names),
                            size_bytes: Some(i.size as i64),
                        }
                    })
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        let runtime_version = version
            .map(|v| format!("{}://{}", v.runtime_name, v.runtime_version))
            .unwrap_or_default();
        NodeStatus {
            addresses: Some(addresses),
            allocatable: Some(allocatable),
            capacity: Some(capacity),
            conditions: Some(conditions),
            daemon_endpoints: Some(NodeDaemonEndpoints {
                kubelet_endpoint: Some(DaemonEndpoint {
                    port: *self.kubelet_port.lock(),
                }),
            }),
            images: Some(images),
            node_info: Some(NodeSystemInfo {
                architecture: crate::images::build::go_arch().into(),
                boot_id: m.boot_id.clone(),
                container_runtime_version: runtime_version,
                kernel_version: m.kernel_version.clone(),
                kube_proxy_version: String::new(),
                kubelet_version: KUBELET_VERSION.into(),
                machine_id: m.machine_id.clone(),
                operating_system: "linux".into(),
                os_image: m.os_image.clone(),
                system_uuid: m.system_uuid.clone(),
                swap: None,
            }),
            ..Default::default()
        }
    }

    /// Computes the status and pushes it when it changed or is due; reports whether it pushed.
    pub async fn sync_status(&self) -> Result<bool> {
        let old = self.reported.lock().status.clone();
        let status = self.compute_status(old.as_ref()).await;
        let due = {
            let r = self.reported.lock();
            let changed = match &r.status {
                None => true,
                Some(prev) => !same_status(prev, &status),
            };
            changed
                || r.at
                    .is_none_or(|at| at.elapsed() >= self.cfg.node_status_report_frequency)
        };
        if !due {
            return Ok(false);
        }
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .is_some_and(|c| c.status == "True");
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = json!({ "status": status });
        api.patch_status(
            &self.cfg.node_name,
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await?;
        let became = {
            let mut r = self.reported.lock();
            let before = r.ready;
            r.status = Some(status);
            r.at = Some(tokio::time::Instant::now());
            r.ready = Some(ready);
            before
        };
        if became.is_none() {
            let n = &self.cfg.node_name;
            for reason in [
                "NodeHasSufficientMemory",
                "NodeHasNoDiskPressure",
                "NodeHasSufficientPID",
            ] {
                self.event(reason, &format!("Node {n} status is now: {reason}"));
            }
            self.event(
                "NodeAllocatableEnforced",
                "Updated Node Allocatable limit across pods",
            );
        }
        if became != Some(ready) {
            let n = &self.cfg.node_name;
            let reason = if ready { "NodeReady" } else { "NodeNotReady" };
            if ready || became.is_some() {
                self.event(reason, &format!("Node {n} status is now: {reason}"));
            }
        }
        Ok(true)
    }

    /// Renews (creating if needed) the node's Lease.
    pub async fn renew_lease(&self) -> Result<()> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), "kube-node-lease");
        let name = &self.cfg.node_name;
        let now = MicroTime(jiff::Timestamp::now());
        match api.get_opt(name).await? {
            Some(mut lease) => {
                let spec = lease.spec.get_or_insert_with(Default::default);
                spec.holder_identity = Some(name.clone());
                spec.lease_duration_seconds = Some(self.cfg.node_lease_duration_seconds);
                spec.renew_time = Some(now);
                if lease.metadata.owner_references.is_none() {
                    lease.metadata.owner_references = self.owner();
                }
                api.replace(name, &PostParams::default(), &lease).await?;
            }
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some("kube-node-lease".into()),
                        owner_references: self.owner(),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(name.clone()),
                        lease_duration_seconds: Some(self.cfg.node_lease_duration_seconds),
                        renew_time: Some(now),
                        ..Default::default()
                    }),
                };
                api.create(&PostParams::default(), &lease).await?;
            }
        }
        Ok(())
    }

    fn owner(&self) -> Option<Vec<OwnerReference>> {
        let uid = self.node_uid.lock().clone()?;
        Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: self.cfg.node_name.clone(),
            uid,
            ..Default::default()
        }])
    }

    /// Registers, then keeps status and Lease fresh until `cancel` fires.
    pub async fn run(self: Arc<Self>, cancel: tokio_util::sync::CancellationToken) {
        if self.register(&cancel).await.is_err() {
            return;
        }
        let lease = {
            let me = self.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(me.cfg.lease_renew_interval());
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = interval.tick() => {}
                    }
                    if let Err(e) = me.renew_lease().await {
                        tracing::warn!(node = %me.cfg.node_name, error = %e, "failed to renew the node lease");
                    }
                }
            })
        };
        let mut interval = tokio::time::interval(self.cfg.node_status_update_frequency);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = interval.tick() => {}
            }
            if let Err(e) = self.sync_status().await {
                tracing::warn!(node = %self.cfg.node_name, error = %e, "error updating node status");
            }
        }
        let _ = lease.await;
    }
}

/// Whether two statuses differ in anything but heartbeat times.
fn same_status(a: &NodeStatus, b: &NodeStatus) -> bool {
    let strip = |s: &NodeStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_heartbeat_time = None;
        }
        s
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints_parse_as_register_with_taints_takes_them() {
        let t = parse_taint("dedicated=gpu:NoSchedule").unwrap();
        assert_eq!(
            (t.key.as_str(), t.value.as_deref(), t.effect.as_str()),
            ("dedicated", Some("gpu"), "NoSchedule")
        );
        let t = parse_taint("node-role.kubernetes.io/control-plane:NoSchedule").unwrap();
        assert_eq!(t.value, None);
        assert!(parse_taint("x=y:Sometimes").is_err());
        assert!(parse_taint("novalue").is_err());
    }
}
