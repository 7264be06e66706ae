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
    /// The scheduler: pods bound per second, creation-to-binding latency, RSS.
    Scheduler(SchedulerArgs),
    /// The controller manager: N Deployments x R replicas against an in-process server with
    /// simulated nodes and a stand-in kubelet; pods created, available, rolled out; RSS.
    Controllers(ControllersArgs),
}

#[derive(Args, Debug)]
struct SchedulerArgs {
    /// Kubeconfig of the cluster (default $KUBECONFIG, then /var/lib/ferrokube/admin.kubeconfig).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Run an API server over the memory store and the scheduler inside this process, so the
    /// figures are about the scheduler (pods are created first, then the scheduler starts).
    #[arg(long)]
    in_process: bool,
    #[arg(long, default_value_t = 5000)]
    nodes: usize,
    #[arg(long, default_value_t = 10000)]
    pods: usize,
    /// basic, affinity, spread or preemption.
    #[arg(long, default_value = "basic")]
    workload: String,
    /// Concurrent API calls while creating nodes and pods.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Give up waiting for bindings after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
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

async fn scheduler(a: SchedulerArgs) -> anyhow::Result<()> {
    use ferrokube_bench::scheduler as b;
    let workload = b::Workload::parse(&a.workload).ok_or_else(|| {
        anyhow::anyhow!("--workload must be basic, affinity, spread or preemption")
    })?;
    let opts = b::Options {
        nodes: a.nodes,
        pods: a.pods,
        workload,
        clients: a.clients,
        timeout: std::time::Duration::from_secs(a.timeout),
    };
    let say = |m: &str| {
        if !a.json {
            eprintln!("  {m}");
        }
    };
    let report = if a.in_process {
        let cancel = tokio_util::sync::CancellationToken::new();
        let _stop = cancel.clone().drop_guard();
        let config = ferrokube_apiserver::Config {
            advertise_address: "127.0.0.1:6443".into(),
            serving_cert_pem: String::new(),
            serving_key_pem: String::new(),
            client_ca_pem: String::new(),
            compaction_interval: std::time::Duration::from_secs(300),
        };
        let srv = ferrokube_apiserver::ApiServer::new(
            config,
            std::sync::Arc::new(ferrokube_store::memory::MemoryBackend::new()),
            cancel.clone(),
        )
        .await?;
        let client =
            ferrokube_client::in_process(ferrokube_apiserver::in_process::InProcess::new(srv));
        say(&format!("creating {} nodes", opts.nodes));
        b::prepare(&client, &opts).await?;
        say(&format!(
            "creating {} pods, then starting the scheduler",
            opts.pods
        ));
        let c = client.clone();
        let token = cancel.clone();
        let start: Box<dyn FnOnce() + Send> = Box::new(move || {
            let mut config = ferrokube_scheduler::Config::default();
            config.leader_election.leader_elect = false;
            let informers = ferrokube_client::Informers::new(c.clone(), token.clone());
            tokio::spawn(ferrokube_scheduler::run(
                c,
                informers,
                config,
                "bench".into(),
                token,
            ));
        });
        b::measure(&client, &opts, Some(start), b::self_rss_mb).await?
    } else {
        let path = ferrokube_client::kubeconfig_path(a.kubeconfig.as_deref());
        let client = ferrokube_client::client(&path).await?;
        say("removing what an earlier run left");
        b::cleanup(&client).await?;
        say(&format!("creating {} nodes", opts.nodes));
        b::prepare(&client, &opts).await?;
        say(&format!(
            "creating {} pods (the server's scheduler binds them meanwhile)",
            opts.pods
        ));
        let mut report = b::measure(&client, &opts, None, || 0.0).await?;
        // Read once the pods are bound: the server process, scheduler included.
        report.rss_mb = server_rss_mb(client.clone()).await;
        b::cleanup(&client).await?;
        report
    };
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(())
}

/// The server's RSS from its /metrics (the scheduler runs inside `ferrokube server`).
async fn server_rss_mb(client: kube::Client) -> f64 {
    let req = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("request");
    match client.request_text(req).await {
        Ok(text) => text
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|b| b / 1_048_576.0)
            .unwrap_or(0.0),
        Err(_) => 0.0,
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchCommand::Pods(a) => crate::bench_pods::run(a).await,
        BenchCommand::Scheduler(a) => scheduler(a).await,
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
