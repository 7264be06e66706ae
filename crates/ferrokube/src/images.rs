//! `ferrokube images`: loading images into a node with no registry, and building the test images.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use ferrokube_kubelet::cri::Runtime;
use ferrokube_kubelet::cri::remote::RemoteRuntime;

#[derive(Args, Debug)]
pub struct ImagesArgs {
    #[command(subcommand)]
    what: ImagesCommand,
}

#[derive(Subcommand, Debug)]
enum ImagesCommand {
    /// Load OCI layouts, OCI archives or docker-archives into the node's runtime. With the
    /// agent stopped, the files are copied to DATA_DIR/agent/images/ and loaded at its start.
    Import(ImportArgs),
    /// Build the test images (busybox, busybox-httpd; nginx and redis from Debian packages on
    /// request) as OCI archives.
    BuildTest(BuildArgs),
}

#[derive(Args, Debug)]
struct ImportArgs {
    #[arg(long, default_value = "/var/lib/ferrokube")]
    data_dir: PathBuf,
    /// The CRI runtime to load into (default: the agent's own containerd).
    #[arg(long)]
    container_runtime_endpoint: Option<String>,
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
struct BuildArgs {
    /// Where to write the archives (DATA_DIR/agent/images/ makes the agent load them at start).
    #[arg(long)]
    out: PathBuf,
    /// Also build nginx:latest from Debian's nginx package.
    #[arg(long)]
    nginx: bool,
    /// Also build redis:latest from Debian's redis-server package.
    #[arg(long)]
    redis: bool,
}

pub async fn run(args: ImagesArgs) -> anyhow::Result<()> {
    match args.what {
        ImagesCommand::Import(a) => import(a).await,
        ImagesCommand::BuildTest(a) => {
            let written =
                ferrokube_kubelet::images::build::build_test_images(&a.out, a.nginx, a.redis)?;
            for p in written {
                let names = ferrokube_kubelet::images::archive::image_names(&p)?;
                println!("{}\t{}", p.display(), names.join(", "));
            }
            Ok(())
        }
    }
}

async fn import(a: ImportArgs) -> anyhow::Result<()> {
    for f in &a.files {
        ferrokube_kubelet::images::archive::image_names(f)
            .with_context(|| format!("reading {}", f.display()))?;
    }
    let endpoint = a.container_runtime_endpoint.clone().unwrap_or_else(|| {
        format!(
            "unix://{}",
            a.data_dir
                .join("agent/containerd/containerd.sock")
                .display()
        )
    });
    match RemoteRuntime::connect_retrying(&endpoint, Duration::from_secs(1)).await {
        Ok(rt) => {
            for f in &a.files {
                let names = rt.import_images(f).await?;
                for n in names {
                    println!("imported {n}");
                }
            }
        }
        Err(_) if a.container_runtime_endpoint.is_none() => {
            let dir = a.data_dir.join("agent/images");
            std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
            for f in &a.files {
                let name = f.file_name().context("a file name")?;
                let to = dir.join(name);
                if f.is_dir() {
                    ferrokube_kubelet::images::archive::pack_layout(f, &to.with_extension("tar"))?;
                } else {
                    std::fs::copy(f, &to)
                        .with_context(|| format!("copying to {}", to.display()))?;
                }
                println!(
                    "the agent is not running: {} will be imported when it starts",
                    f.display()
                );
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
