//! `ferrokube controller-manager`: the controllers of `ferrokube-controllers` against a remote
//! API server, with leader election on the Lease `kube-system/kube-controller-manager` as
//! kube-controller-manager does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use ferrokube_client::Informers;
use ferrokube_client::leader::LeaderElection;
use tokio_util::sync::CancellationToken;

use crate::server::{parse_duration, parse_port_range};

#[derive(Args, Debug)]
pub struct ControllerManagerArgs {
    /// Kubeconfig of the API server to manage (default: $KUBECONFIG, then ferrokube's).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Run only while holding the Lease kube-system/kube-controller-manager.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    leader_elect: bool,
    /// Name of the Lease used for leader election.
    #[arg(long, default_value = "kube-controller-manager")]
    leader_elect_resource_name: String,
    /// Namespace of the Lease used for leader election.
    #[arg(long, default_value = "kube-system")]
    leader_elect_resource_namespace: String,
    /// Controllers to run: `*` for all, `-name` to leave one out, or names.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    controllers: Vec<String>,
    /// Service ClusterIPs come from this CIDR.
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cluster_ip_range: String,
    /// NodePorts come from this range.
    #[arg(long, default_value = "30000-32767", value_parser = parse_port_range)]
    service_node_port_range: (u16, u16),
    /// Pod CIDRs of nodes are carved (a /24 each) from this CIDR.
    #[arg(long, default_value = "10.244.0.0/16")]
    cluster_cidr: String,
    /// How long a node may stop reporting before it is marked unreachable.
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    node_monitor_grace_period: Duration,
    /// How often node health is checked.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    node_monitor_period: Duration,
    /// The cluster CA (PEM) published as `kube-root-ca.crt` in every namespace.
    #[arg(long)]
    root_ca_file: Option<PathBuf>,
    /// Where the local-path provisioner keeps volumes on nodes.
    #[arg(long, default_value = "/var/lib/ferrokube/storage")]
    default_local_storage_path: PathBuf,
    /// Workers per controller.
    #[arg(long, default_value_t = 5)]
    concurrent_syncs: usize,
}

pub async fn run(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let path = ferrokube_client::kubeconfig_path(args.kubeconfig.as_deref());
    let client = ferrokube_client::client(&path).await?;
    let root_ca_pem = match &args.root_ca_file {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => String::new(),
    };
    let config = ferrokube_controllers::Config {
        node_monitor_grace_period: args.node_monitor_grace_period,
        node_monitor_period: args.node_monitor_period,
        service_cluster_ip_range: args.service_cluster_ip_range.clone(),
        service_node_port_range: args.service_node_port_range,
        cluster_cidr: args.cluster_cidr.clone(),
        root_ca_pem,
        local_path_dir: args.default_local_storage_path.clone(),
        workers: args.concurrent_syncs.max(1),
        ..Default::default()
    };
    let shutdown = CancellationToken::new();
    {
        let s = shutdown.clone();
        tokio::spawn(async move {
            crate::server::shutdown_signal().await;
            s.cancel();
        });
    }
    let cancel = shutdown.child_token();
    let start = |cancel: CancellationToken| {
        let informers = Informers::new(client.clone(), cancel.clone());
        let ctx = Arc::new(ferrokube_controllers::Context::new(
            client.clone(),
            informers,
            cancel,
            config.clone(),
        ));
        let controllers = args.controllers.clone();
        tokio::spawn(async move { ferrokube_controllers::run(ctx, &controllers).await })
    };
    if !args.leader_elect {
        tracing::info!(kubeconfig = %path.display(), "controller manager running without leader election");
        let running = start(cancel.clone());
        shutdown.cancelled().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
        return Ok(());
    }
    let identity = format!("{}_{}", hostname(), std::process::id());
    let election = LeaderElection::new(
        &args.leader_elect_resource_namespace,
        &args.leader_elect_resource_name,
        &identity,
    );
    let election_cancel = CancellationToken::new();
    let mut leading = election.spawn(client.clone(), election_cancel.clone());
    tracing::info!(identity = %identity, lease = %format!("{}/{}", args.leader_elect_resource_namespace, args.leader_elect_resource_name), "waiting to acquire the leader lease");
    tokio::select! {
        r = leading.wait_for(|l| *l) => { r.context("leader election stopped")?; }
        _ = shutdown.cancelled() => { election_cancel.cancel(); return Ok(()); }
    }
    let running = start(cancel.clone());
    // As kube-controller-manager: losing the lease ends the process, so a restart begins
    // from a clean state rather than racing the new leader.
    let lost = tokio::select! {
        r = leading.wait_for(|l| !*l) => r.is_ok(),
        _ = shutdown.cancelled() => false,
    };
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
    election_cancel.cancel();
    // Give the election task a moment to release the lease.
    tokio::time::sleep(Duration::from_millis(200)).await;
    if lost {
        anyhow::bail!("leaderelection lost");
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
