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
    /// Pod startup on one real node (its own server, agent and containerd): p50/p99, pods/s,
    /// agent and containerd RSS.
    Pods(crate::bench_pods::PodsArgs),
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
        BenchCommand::Pods(a) => crate::bench_pods::run(a).await,
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
