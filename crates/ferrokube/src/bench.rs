//! `ferrokube bench ...`: benchmarks of a running cluster.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchCommand,
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// The API server: creates/s and latency, gets/s, big Table lists, watch fan-out, memory.
    Api(ApiArgs),
    /// The controller manager: N Deployments x R replicas against an in-process server with
    /// simulated nodes and a stand-in kubelet; pods created, available, rolled out; RSS.
    Controllers(ControllersArgs),
}

#[derive(Args, Debug)]
struct ControllersArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = 1_000)]
    deployments: usize,
    #[arg(long, default_value_t = 10)]
    replicas: usize,
    /// Simulated Node objects the pods are bound to.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Workers per controller (kube-controller-manager's --concurrent-*-syncs).
    #[arg(long, default_value_t = 5)]
    workers: usize,
}

#[derive(Args, Debug)]
struct ApiArgs {
    /// Kubeconfig of the cluster (default $KUBECONFIG, then /var/lib/ferrokube/admin.kubeconfig).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = 64)]
    clients: usize,
    #[arg(long, default_value_t = 100_000)]
    total_pods: usize,
    #[arg(long, default_value_t = 10_000)]
    small_list: usize,
    #[arg(long, default_value_t = 50_000)]
    gets: usize,
    #[arg(long, default_value_t = 1_000)]
    watchers: usize,
    /// Leave the benchmark's pods in the cluster.
    #[arg(long)]
    keep: bool,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchCommand::Controllers(a) => {
            let opts = ferrokube_bench::controllers::Options {
                deployments: a.deployments,
                replicas: a.replicas,
                nodes: a.nodes,
                controller_workers: a.workers,
                ..Default::default()
            };
            let quiet = a.json;
            let report = ferrokube_bench::controllers::run(&opts, |line| {
                if !quiet {
                    eprintln!("  {line}");
                }
            })
            .await?;
            if a.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.text());
            }
            Ok(())
        }
        BenchCommand::Api(a) => {
            let path = ferrokube_client::kubeconfig_path(a.kubeconfig.as_deref());
            let conn = ferrokube_client::load(&path).await?;
            let opts = ferrokube_bench::api::Options {
                clients: a.clients,
                total_pods: a.total_pods,
                small_list: a.small_list.min(a.total_pods),
                gets: a.gets,
                watchers: a.watchers,
                keep: a.keep,
            };
            let quiet = a.json;
            let report = ferrokube_bench::api::run(&conn, &opts, |line| {
                if !quiet {
                    eprintln!("  {line}");
                }
            })
            .await?;
            if a.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.text(&opts));
            }
            Ok(())
        }
    }
}
