//! `ferrokube agent`, the node flags `ferrokube server` shares with it, `ferrokube
//! simulate-nodes` and `ferrokube agent-cleanup`: wiring of the kubelet crate.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ferrokube_kubelet::agent::{Agent, AgentOptions, RuntimeChoice};
use tokio_util::sync::CancellationToken;

/// Flags of the node agent (on `agent`, and on `server` for its built-in agent).
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// The node's name (default: the hostname).
    #[arg(long)]
    pub node_name: Option<String>,
    /// The address the node reports as InternalIP (default: the default route's source address).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// Labels to register the node with (`key=value`, repeatable).
    #[arg(long = "node-label", value_delimiter = ',')]
    pub node_labels: Vec<String>,
    /// Taints to register the node with (`key=value:Effect`, repeatable).
    #[arg(
        long = "node-taint",
        alias = "register-with-taints",
        value_delimiter = ','
    )]
    pub node_taints: Vec<String>,
    /// `containerd` (default) or `fake` (a simulated node: no containers are really run).
    #[arg(long, default_value = "containerd")]
    pub container_runtime: String,
    /// A running CRI runtime to use instead of the agent's own containerd
    /// (`unix:///run/containerd/containerd.sock`).
    #[arg(long)]
    pub container_runtime_endpoint: Option<String>,
    /// Static pod manifests (default: DATA_DIR/agent/manifests).
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
    /// Cluster DNS server addresses pods use (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Vec<String>,
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The node's pod CIDR until the controller manager assigns one.
    #[arg(long, default_value = "10.244.0.0/24")]
    pub pod_cidr: String,
    /// Address of the kubelet's HTTPS server (logs, exec, port-forward, stats).
    #[arg(long, default_value = "0.0.0.0")]
    pub kubelet_address: IpAddr,
    /// Port of the kubelet's HTTPS server (0 picks a free one).
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// The cgroup under which `kubepods` is created.
    #[arg(long, default_value = "/")]
    pub cgroup_root: String,
    /// The Linux bridge pods attach to.
    #[arg(long, default_value = "cni0")]
    pub cni_bridge: String,
    /// Where the standard CNI plugins are.
    #[arg(long, default_value = "/usr/lib/cni")]
    pub cni_bin_dir: PathBuf,
    /// Let pods open connections to the outside world (masqueraded). Off by default: pod
    /// traffic toward the host's uplink is dropped unless it answers a connection that came in.
    #[arg(long)]
    pub allow_pod_egress: bool,
    /// How often node status is computed and pushed.
    #[arg(long, value_parser = crate::server::parse_duration)]
    pub node_status_update_frequency: Option<Duration>,
}

impl NodeArgs {
    /// The agent's settings for a data dir.
    pub fn options(&self, data_dir: PathBuf) -> anyhow::Result<AgentOptions> {
        let node_name = self
            .node_name
            .clone()
            .unwrap_or_else(ferrokube_kubelet::config::hostname);
        let mut o = AgentOptions::new(data_dir, node_name);
        o.node_ip = self.node_ip;
        for l in &self.node_labels {
            let (k, v) = l
                .split_once('=')
                .with_context(|| format!("invalid --node-label {l:?}: want key=value"))?;
            o.node_labels.push((k.to_string(), v.to_string()));
        }
        o.register_with_taints = self.node_taints.clone();
        o.runtime = match self.container_runtime.as_str() {
            "containerd" => RuntimeChoice::Containerd {
                endpoint: self.container_runtime_endpoint.clone(),
            },
            "fake" => RuntimeChoice::Fake,
            other => {
                anyhow::bail!("unknown --container-runtime {other:?}: want containerd or fake")
            }
        };
        o.pod_manifest_path = self.pod_manifest_path.clone();
        o.cluster_dns = self.cluster_dns.clone();
        o.cluster_domain = self.cluster_domain.clone();
        o.default_pod_cidr = self.pod_cidr.clone();
        o.server_address = Some(SocketAddr::new(self.kubelet_address, self.kubelet_port));
        o.cgroup_root = self.cgroup_root.clone();
        o.cni_bridge = self.cni_bridge.clone();
        o.cni_bin_dir = self.cni_bin_dir.clone();
        o.allow_pod_egress = self.allow_pod_egress;
        o.node_status_update_frequency = self.node_status_update_frequency;
        Ok(o)
    }
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The API server (overrides the kubeconfig's).
    #[arg(long)]
    server: Option<String>,
    /// Kubeconfig to reach the API server (default $KUBECONFIG, then
    /// /var/lib/ferrokube/admin.kubeconfig).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// A bootstrap token (`ferrokube join` will use it; not yet supported).
    #[arg(long)]
    token: Option<String>,
    /// Where the agent keeps its state (`agent/` inside).
    #[arg(long, default_value = "/var/lib/ferrokube")]
    data_dir: PathBuf,
    /// The kubelet's serving certificate (PEM); a self-signed one otherwise.
    #[arg(long)]
    tls_cert_file: Option<PathBuf>,
    #[arg(long)]
    tls_private_key_file: Option<PathBuf>,
    #[command(flatten)]
    node: NodeArgs,
}

fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        s.push('\n');
    }
    s.push_str("-----END CERTIFICATE-----\n");
    s
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    if args.token.is_some() {
        anyhow::bail!(
            "--token: joining with a bootstrap token is not supported yet; use --kubeconfig"
        );
    }
    let path = ferrokube_client::kubeconfig_path(args.kubeconfig.as_deref());
    let mut conn = ferrokube_client::load(&path).await?;
    if let Some(s) = &args.server {
        conn.config.cluster_url = s
            .parse()
            .with_context(|| format!("invalid --server {s:?}"))?;
    }
    let ca = conn
        .config
        .root_cert
        .as_ref()
        .and_then(|certs| certs.first())
        .map(|der| der_to_pem(der))
        .context(
            "the kubeconfig has no certificate-authority-data: the kubelet needs the cluster CA",
        )?;
    let client = kube::Client::try_from(conn.config.clone())?;
    let mut opts = args.node.options(args.data_dir.clone())?;
    opts.client_ca_pem = Some(ca);
    if let (Some(c), Some(k)) = (&args.tls_cert_file, &args.tls_private_key_file) {
        opts.serving = Some((
            std::fs::read_to_string(c).with_context(|| c.display().to_string())?,
            std::fs::read_to_string(k).with_context(|| k.display().to_string())?,
        ));
    }
    let cancel = CancellationToken::new();
    let agent = Agent::start(opts, client, cancel.clone()).await?;
    crate::server::shutdown_signal().await;
    tracing::info!("stopping the node agent");
    agent.stop().await;
    Ok(())
}

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// How many simulated nodes to run.
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Node names are this prefix and a number.
    #[arg(long, default_value = "hollow-node-")]
    name_prefix: String,
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// CPU capacity of each node.
    #[arg(long, default_value = "4")]
    cpu: String,
    /// Memory capacity of each node.
    #[arg(long, default_value = "16Gi")]
    memory: String,
    #[arg(long, default_value_t = 110)]
    max_pods: i64,
    /// Extra labels on every node (`key=value`).
    #[arg(long = "node-label", value_delimiter = ',')]
    node_labels: Vec<String>,
}

/// `ferrokube simulate-nodes`: N hollow nodes in this process until interrupted.
pub async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let path = ferrokube_client::kubeconfig_path(args.kubeconfig.as_deref());
    let client = ferrokube_client::client(&path).await?;
    let names: Vec<String> = (0..args.count)
        .map(|i| format!("{}{i}", args.name_prefix))
        .collect();
    let mut labels = Vec::new();
    for l in &args.node_labels {
        let (k, v) = l
            .split_once('=')
            .with_context(|| format!("invalid --node-label {l:?}: want key=value"))?;
        labels.push((k.to_string(), v.to_string()));
    }
    let opts = ferrokube_kubelet::hollow::HollowOptions {
        cpu: args.cpu,
        memory: args.memory,
        max_pods: args.max_pods,
        labels,
    };
    let cancel = CancellationToken::new();
    let nodes = ferrokube_kubelet::hollow::start(client, &names, &opts, cancel.clone()).await;
    tracing::info!(count = nodes.kubelets.len(), "simulated nodes started");
    let report = tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(30));
        loop {
            interval.tick().await;
            let rss = ferrokube_kubelet::metrics::rss_bytes(std::process::id()).unwrap_or(0);
            tracing::info!(
                nodes = names.len(),
                rss_mb = rss / (1 << 20),
                "simulated nodes running"
            );
        }
    });
    crate::server::shutdown_signal().await;
    report.abort();
    cancel.cancel();
    drop(nodes);
    Ok(())
}

#[derive(Args, Debug)]
pub struct CleanupArgs {
    /// The data dir of the agent to clean up after.
    #[arg(long, default_value = "/var/lib/ferrokube")]
    data_dir: PathBuf,
}

/// `ferrokube agent-cleanup`: stops every pod the agent ran and removes its network setup.
pub async fn cleanup(args: CleanupArgs) -> anyhow::Result<()> {
    ferrokube_kubelet::agent::cleanup(&args.data_dir).await?;
    Ok(())
}
