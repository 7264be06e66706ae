//! The ferrokube binary: command-line wiring only.

use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's malloc: the control plane allocates and frees many small JSON
/// trees from several threads, where glibc spent a third of the CPU (arena consolidation) and
/// kept freed memory fragmented (see `ferrokube bench controllers`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod agent;
mod bench;
mod bench_pods;
mod components;
mod controller_manager;
mod images;
mod scheduler;
mod server;

#[derive(Parser)]
#[command(
    name = "ferrokube",
    version,
    about = "A Kubernetes-compatible cluster in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (API server, controllers) and, unless --disable-agent, a node agent.
    Server(server::ServerArgs),
    /// Run a node agent (kubelet and pod network) that joins a cluster.
    Agent(agent::AgentArgs),
    /// Run N simulated nodes in this process (the real kubelet over a fake runtime), as
    /// Kubernetes' kubemark does.
    SimulateNodes(agent::SimulateArgs),
    /// Stop every pod an agent ran on this host and remove its containerd, network and cgroups.
    AgentCleanup(agent::CleanupArgs),
    /// Load or build container images without a registry.
    Images(images::ImagesArgs),
    /// Run the scheduler alone against a cluster.
    Scheduler(scheduler::SchedulerArgs),
    /// Run the controllers against an API server (with leader election).
    ControllerManager(controller_manager::ControllerManagerArgs),
    /// Measure a running cluster.
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERROKUBE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    allocator_options(&cli.command);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Server(args) => rt.block_on(server::run(args)),
        Command::Agent(args) => rt.block_on(agent::run(args)),
        Command::SimulateNodes(args) => rt.block_on(agent::simulate(args)),
        Command::AgentCleanup(args) => rt.block_on(agent::cleanup(args)),
        Command::Images(args) => rt.block_on(images::run(args)),
        Command::Scheduler(args) => rt.block_on(scheduler::run(args)),
        Command::ControllerManager(args) => rt.block_on(controller_manager::run(args)),
        Command::Bench(args) => rt.block_on(bench::run(args)),
    }
}

/// mimalloc's options for this command. It reads them from the environment when it
/// initialises, before `main`, so when one is missing the process re-executes itself once with
/// them set (same PID, same arguments).
/// - Every command: no transparent huge pages. The control plane's heap grows quickly and each
///   fresh 2 MiB page is zeroed on first touch; `bench controllers` created its 10,000 pods in
///   7.95-8.54 s without them against 9.25-10.67 s with them.
/// - The node agent, which lives beside the workloads it runs, also trades a little CPU for
///   memory: freed pages go back to the OS at once and arenas are committed on demand
///   (`bench pods`: agent RSS 40 -> 27 MB idle, 60 -> 42 MB with 100 pods). The control plane
///   keeps the default delay (immediate purging made `bench controllers` 30% slower).
fn allocator_options(command: &Command) {
    use std::os::unix::process::CommandExt;
    const ALL: [(&str, &str); 1] = [("MIMALLOC_ALLOW_THP", "0")];
    const AGENT: [(&str, &str); 3] = [
        ("MIMALLOC_ALLOW_THP", "0"),
        ("MIMALLOC_PURGE_DELAY", "0"),
        ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
    ];
    let options: &[(&str, &str)] = match command {
        Command::Agent(_) => &AGENT,
        _ => &ALL,
    };
    if options.iter().all(|(k, _)| std::env::var_os(k).is_some()) {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let err = std::process::Command::new(&exe)
        .arg0(argv0)
        .args(args)
        .envs(options.iter().copied())
        .exec();
    // Only reached if exec failed: run on with the defaults.
    tracing::warn!(error = %err, "could not re-execute with the allocator settings");
}
