//! `ferrokube scheduler`: the scheduler alone, against a cluster by kubeconfig.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ferrokube_client::Informers;
use ferrokube_scheduler::Config;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct SchedulerArgs {
    /// Kubeconfig of the cluster (default $KUBECONFIG, then /var/lib/ferrokube/admin.kubeconfig).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// A KubeSchedulerConfiguration file (profiles, plugins, weights, plugin args).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Take part in leader election on the Lease kube-system/kube-scheduler (default true,
    /// or the configuration file's leaderElection.leaderElect).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    leader_elect: Option<bool>,
}

pub async fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    let path = ferrokube_client::kubeconfig_path(args.kubeconfig.as_deref());
    let client = ferrokube_client::client(&path).await?;
    let mut config = match &args.config {
        Some(f) => Config::load(f)?,
        None => Config::default(),
    };
    if let Some(le) = args.leader_elect {
        config.leader_election.leader_elect = le;
    }
    let cancel = CancellationToken::new();
    let informers = Informers::new(client.clone(), cancel.clone());
    let task = tokio::spawn(ferrokube_scheduler::run(
        client,
        informers,
        config,
        ferrokube_scheduler::identity(),
        cancel.clone(),
    ));
    tracing::info!(kubeconfig = %path.display(), "scheduler started");
    crate::server::shutdown_signal().await;
    cancel.cancel();
    task.await.context("scheduler task")??;
    Ok(())
}
