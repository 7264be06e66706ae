//! The node agent: what `ferrokube agent` runs, and what `ferrokube server` runs in-process
//! unless `--disable-agent`. It sets up the container runtime (its own containerd, an external
//! CRI endpoint, or the fake), the pod network's CNI config and egress guard, imports images,
//! and runs the kubelet with its HTTPS server.
//!
//! Everything lives under `DATA_DIR/agent`: `containerd/`, `etc/cni/net.d/`, `cni/` (address
//! allocations), `images/` (tarballs imported at start), `manifests/` (static pods), `pods/`,
//! `logs/pods/`, and `agent.json`, which records what `ferrokube agent-cleanup` must undo.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferrokube_client::Informers;
use ferrokube_client::events::EventRecorder;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::runtime::watcher;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::cgroups::{Cgroupfs, NoCgroups, PodCgroups};
use crate::config::Config;
use crate::cri::Runtime;
use crate::cri::containerd::{Containerd, ContainerdOptions};
use crate::cri::fake::FakeRuntime;
use crate::cri::remote::RemoteRuntime;
use crate::kubelet::{Deps, Kubelet};
use crate::objects::ApiObjects;
use crate::volumes::{FakeMounter, Mounter, SystemMounter};
use crate::{Error, Result};

/// Which container runtime the agent uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeChoice {
    /// The agent's own containerd (default), or one at the given CRI endpoint.
    Containerd { endpoint: Option<String> },
    /// The in-memory fake: a simulated node.
    Fake,
}

/// The agent's settings (its command-line flags).
#[derive(Clone, Debug)]
pub struct AgentOptions {
    pub data_dir: PathBuf,
    pub node_name: String,
    pub node_ip: Option<IpAddr>,
    pub node_labels: Vec<(String, String)>,
    pub register_with_taints: Vec<String>,
    pub runtime: RuntimeChoice,
    pub pod_manifest_path: Option<PathBuf>,
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    /// Used until the node's `spec.podCIDR` is assigned.
    pub default_pod_cidr: String,
    /// The kubelet server's address; port 0 picks a free one; None: no server.
    pub server_address: Option<SocketAddr>,
    pub cgroup_root: String,
    pub cni_bin_dir: PathBuf,
    pub cni_bridge: String,
    pub allow_pod_egress: bool,
    pub control_plane: bool,
    /// The kubelet's serving certificate and key (PEM); a self-signed one otherwise.
    pub serving: Option<(String, String)>,
    /// CA whose client certificates may call the kubelet server (the API server's).
    pub client_ca_pem: Option<String>,
    pub node_status_update_frequency: Option<Duration>,
}

impl AgentOptions {
    pub fn new(data_dir: PathBuf, node_name: String) -> Self {
        AgentOptions {
            data_dir,
            node_name,
            node_ip: None,
            node_labels: Vec::new(),
            register_with_taints: Vec::new(),
            runtime: RuntimeChoice::Containerd { endpoint: None },
            pod_manifest_path: None,
            cluster_dns: Vec::new(),
            cluster_domain: "cluster.local".into(),
            default_pod_cidr: "10.244.0.0/24".into(),
            server_address: Some(SocketAddr::from(([0, 0, 0, 0], 10250))),
            cgroup_root: "/".into(),
            cni_bin_dir: PathBuf::from("/usr/lib/cni"),
            cni_bridge: "cni0".into(),
            allow_pod_egress: false,
            control_plane: false,
            serving: None,
            client_ca_pem: None,
            node_status_update_frequency: None,
        }
    }

    pub fn agent_dir(&self) -> PathBuf {
        self.data_dir.join("agent")
    }
}

/// What `agent-cleanup` needs to undo an agent's work, written at start.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentRecord {
    pub containerd_dir: Option<PathBuf>,
    pub cni_conf_dir: PathBuf,
    pub cni_bin_dir: PathBuf,
    pub bridge: String,
    pub network_name: String,
    pub ipam_dir: PathBuf,
    pub cgroup_root: String,
    pub pause_image: String,
}

fn record_path(agent_dir: &Path) -> PathBuf {
    agent_dir.join("agent.json")
}

/// What runs a node's pods: the runtime and the host side effects.
type NodeParts = (
    Arc<dyn Runtime>,
    Arc<dyn PodCgroups>,
    Arc<dyn Mounter>,
    bool,
);

/// A running agent.
pub struct Agent {
    pub kubelet: Arc<Kubelet>,
    pub containerd: Option<Arc<Containerd>>,
    pub fake: Option<FakeRuntime>,
    pub server_addr: Option<SocketAddr>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("node", &self.kubelet.node_name())
            .field("server", &self.server_addr)
            .finish()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn pod_network(o: &AgentOptions, cidr: &str) -> Result<ferrokube_net::PodNetwork> {
    Ok(ferrokube_net::PodNetwork {
        name: format!("ferrokube-{}", o.cni_bridge),
        bridge: o.cni_bridge.clone(),
        cidr: ferrokube_net::Cidr::parse(cidr).map_err(|e| Error::Config(e.to_string()))?,
        ipam_data_dir: o.agent_dir().join("cni"),
        allow_egress: o.allow_pod_egress,
    })
}

impl Agent {
    /// Sets the node up and starts the kubelet; returns once the runtime answers.
    pub async fn start(
        o: AgentOptions,
        client: kube::Client,
        cancel: CancellationToken,
    ) -> Result<Agent> {
        let agent_dir = o.agent_dir();
        let images_dir = agent_dir.join("images");
        let cni_conf_dir = agent_dir.join("etc/cni/net.d");
        for d in [&agent_dir, &images_dir, &cni_conf_dir] {
            std::fs::create_dir_all(d).map_err(io_err(d))?;
        }
        let manifests = o
            .pod_manifest_path
            .clone()
            .unwrap_or_else(|| agent_dir.join("manifests"));
        let mut containerd = None;
        let mut fake = None;
        let (runtime, cgroups, mounter, write_files): NodeParts = match &o.runtime {
            RuntimeChoice::Fake => {
                let f = FakeRuntime::with_logs();
                for img in crate::hollow::PRELOADED_IMAGES {
                    f.add_image(img);
                }
                fake = Some(f.clone());
                (
                    Arc::new(f),
                    Arc::new(NoCgroups),
                    Arc::new(FakeMounter::default()),
                    true,
                )
            }
            RuntimeChoice::Containerd { endpoint } => {
                let net = pod_network(&o, &o.default_pod_cidr)?;
                let containerd_dir = agent_dir.join("containerd");
                let record = AgentRecord {
                    containerd_dir: endpoint.is_none().then(|| containerd_dir.clone()),
                    cni_conf_dir: cni_conf_dir.clone(),
                    cni_bin_dir: o.cni_bin_dir.clone(),
                    bridge: net.bridge.clone(),
                    network_name: net.name.clone(),
                    ipam_dir: net.ipam_data_dir.clone(),
                    cgroup_root: o.cgroup_root.clone(),
                    pause_image: crate::images::build::PAUSE_IMAGE.into(),
                };
                let rp = record_path(&agent_dir);
                std::fs::write(
                    &rp,
                    serde_json::to_vec_pretty(&record).expect("record serializes"),
                )
                .map_err(io_err(&rp))?;
                net.write_conflist(&cni_conf_dir)
                    .map_err(|e| Error::Config(e.to_string()))?;
                if let Err(e) = ferrokube_net::install_egress_guard(&net) {
                    tracing::warn!(error = %e, "could not install the pod egress guard");
                }
                let endpoint = match endpoint {
                    Some(e) => e.clone(),
                    None => {
                        let c = Containerd::start(ContainerdOptions {
                            dir: containerd_dir,
                            cni_bin_dir: o.cni_bin_dir.clone(),
                            cni_conf_dir: cni_conf_dir.clone(),
                            sandbox_image: crate::images::build::PAUSE_IMAGE.into(),
                        })
                        .await?;
                        let e = c.endpoint();
                        containerd = Some(c);
                        e
                    }
                };
                let remote =
                    RemoteRuntime::connect_retrying(&endpoint, Duration::from_secs(30)).await?;
                (
                    Arc::new(remote),
                    Arc::new(Cgroupfs::new(&o.cgroup_root)),
                    Arc::new(SystemMounter),
                    true,
                )
            }
        };
        crate::images::ensure_pause_image(&*runtime, &agent_dir).await?;
        let imported = crate::images::import_dir(&*runtime, &images_dir).await;
        if !imported.is_empty() {
            tracing::info!(images = ?imported, "imported air-gap images");
        }

        let mut cfg = Config::new(&o.node_name, agent_dir.clone());
        cfg.pod_manifest_path = Some(manifests);
        cfg.cluster_dns = o.cluster_dns.clone();
        cfg.cluster_domain = o.cluster_domain.clone();
        cfg.node_ip = o.node_ip;
        cfg.node_labels = o.node_labels.iter().cloned().collect();
        cfg.register_with_taints = o.register_with_taints.clone();
        cfg.default_pod_cidr = Some(o.default_pod_cidr.clone());
        cfg.server_address = o.server_address;
        cfg.cgroup_root = o.cgroup_root.clone();
        cfg.write_pod_files = write_files;
        cfg.control_plane = o.control_plane;
        if let Some(f) = o.node_status_update_frequency {
            // Set explicitly, it is the report frequency too (upstream's rule).
            cfg.node_status_update_frequency = f;
            cfg.node_status_report_frequency = f;
        }
        if fake.is_some() {
            cfg.capacity = Some(crate::config::Capacity {
                cpu: "4".into(),
                memory: "16Gi".into(),
                ephemeral_storage: "100Gi".into(),
            });
        }

        let informers = Informers::new(client.clone(), cancel.clone());
        let node_selector = format!("spec.nodeName={}", o.node_name);
        let pods = informers.get_with::<Pod>(
            watcher::Config::default().fields(&node_selector),
            &node_selector,
        );
        let own = format!("metadata.name={}", o.node_name);
        let nodes = informers.get_with::<Node>(watcher::Config::default().fields(&own), &own);
        let services = informers.get::<Service>();
        let kubelet = Kubelet::new(
            cfg,
            Deps {
                client: client.clone(),
                runtime,
                cgroups,
                mounter,
                objects: ApiObjects::new(client.clone()),
                services,
                nodes,
                recorder: EventRecorder::new(client.clone(), "kubelet", &o.node_name),
            },
        );
        kubelet.set_runtime_pid(containerd.as_ref().and_then(|c| c.pid()));
        if containerd.is_some() || matches!(o.runtime, RuntimeChoice::Containerd { .. }) {
            let opts = o.clone();
            let conf_dir = cni_conf_dir.clone();
            kubelet.on_pod_cidr(move |cidr| match pod_network(&opts, cidr) {
                Ok(net) => {
                    if let Err(e) = net.write_conflist(&conf_dir) {
                        tracing::warn!(error = %e, "could not write the CNI config");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, pod_cidr = cidr, "ignoring an unusable pod CIDR")
                }
            });
        }
        let server_addr = match o.server_address {
            Some(addr) => {
                let (cert, key) = match &o.serving {
                    Some(p) => p.clone(),
                    None => {
                        let mut names =
                            vec![o.node_name.clone(), "localhost".into(), "127.0.0.1".into()];
                        if let Some(ip) = kubelet.node_status().node_ip() {
                            names.push(ip.to_string());
                        }
                        crate::server::tls::self_signed(&names)?
                    }
                };
                let ca = match &o.client_ca_pem {
                    Some(ca) => ca.clone(),
                    None => return Err(Error::Config(
                        "the kubelet server needs the cluster CA to authenticate the API server"
                            .into(),
                    )),
                };
                let tls = crate::server::tls::server_config(&cert, &key, &ca)?;
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| Error::Config(format!("kubelet server on {addr}: {e}")))?;
                let local = listener
                    .local_addr()
                    .map_err(|e| Error::Config(e.to_string()))?;
                kubelet.node_status().set_kubelet_port(local.port());
                tokio::spawn(crate::server::serve(
                    kubelet.clone(),
                    listener,
                    tls,
                    cancel.clone(),
                ));
                Some(local)
            }
            None => None,
        };
        kubelet.start(cancel.clone()).await;
        kubelet.watch_pods(pods);
        tracing::info!(node = %o.node_name, kubelet = ?server_addr, "node agent started");
        Ok(Agent {
            kubelet,
            containerd,
            fake,
            server_addr,
            cancel,
        })
    }

    /// Stops the kubelet and the agent's containerd. Pods keep running (as k3s leaves them).
    pub async fn stop(&self) {
        self.cancel.cancel();
        if let Some(c) = &self.containerd {
            c.stop().await;
        }
    }
}

/// Undoes an agent's work on this host: every pod sandbox stopped and removed (through its
/// containerd, started for the purpose if needed), containerd stopped, the pod network's bridge
/// and egress rules, mounts and cgroups removed. For tests and `ferrokube agent-cleanup`.
pub async fn cleanup(data_dir: &Path) -> Result<()> {
    let agent_dir = data_dir.join("agent");
    let rp = record_path(&agent_dir);
    let Ok(text) = std::fs::read(&rp) else {
        return Ok(());
    };
    let record: AgentRecord = serde_json::from_slice(&text)
        .map_err(|e| Error::Config(format!("{}: {e}", rp.display())))?;
    let mut started = None;
    if let Some(dir) = &record.containerd_dir {
        let opts = ContainerdOptions {
            dir: dir.clone(),
            cni_bin_dir: record.cni_bin_dir.clone(),
            cni_conf_dir: record.cni_conf_dir.clone(),
            sandbox_image: record.pause_image.clone(),
        };
        let endpoint = format!("unix://{}", opts.socket().display());
        let runtime = match RemoteRuntime::connect_retrying(&endpoint, Duration::from_secs(2)).await
        {
            Ok(r) => Some(r),
            Err(_) => match Containerd::start(opts).await {
                Ok(c) => {
                    let r = RemoteRuntime::connect_retrying(&endpoint, Duration::from_secs(20))
                        .await
                        .ok();
                    started = Some(c);
                    r
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not start containerd to clean up");
                    None
                }
            },
        };
        if let Some(rt) = runtime {
            for s in rt.list_pod_sandbox(None).await.unwrap_or_default() {
                let _ = rt.stop_pod_sandbox(&s.id).await;
                let _ = rt.remove_pod_sandbox(&s.id).await;
            }
            for c in rt.list_containers(None).await.unwrap_or_default() {
                let _ = rt.remove_container(&c.id).await;
            }
        }
        match started {
            Some(c) => c.stop().await,
            None => {
                if let Some(pid) = std::fs::read_to_string(dir.join("containerd.pid"))
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
                {
                    crate::cri::containerd::stop_pid(pid, Duration::from_secs(10)).await;
                }
            }
        }
    }
    // Whatever is still mounted under the agent's directory (volumes, leftovers of containers).
    let mounter = SystemMounter;
    for m in mounter.mounts_under(&agent_dir) {
        let _ = mounter.unmount(&m);
    }
    ferrokube_net::teardown(&ferrokube_net::PodNetwork {
        name: record.network_name.clone(),
        bridge: record.bridge.clone(),
        cidr: ferrokube_net::Cidr::parse("10.244.0.0/24").expect("valid"),
        ipam_data_dir: record.ipam_dir.clone(),
        allow_egress: false,
    });
    let root = record.cgroup_root.trim_matches('/');
    if !root.is_empty()
        && let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup")
    {
        for h in rd.flatten() {
            let d = h.path().join(root);
            if d.exists() {
                remove_cgroup_tree(&d);
            }
        }
    }
    let _ = std::fs::remove_file(&rp);
    Ok(())
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}
