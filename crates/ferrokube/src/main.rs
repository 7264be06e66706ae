//! The ferrokube binary: command-line wiring only.

use clap::{Parser, Subcommand};

mod bench;
mod components;
mod controller_manager;
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
    /// Run the control plane: API server (and, with later releases, scheduler, controllers and a node agent).
    Server(server::ServerArgs),
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Server(args) => rt.block_on(server::run(args)),
        Command::ControllerManager(args) => rt.block_on(controller_manager::run(args)),
        Command::Bench(args) => rt.block_on(bench::run(args)),
    }
}
