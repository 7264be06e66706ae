//! `ferrokube server`: PKI and kubeconfig on first start, the datastore, the API server.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ferrokube_apiserver::{ApiServer, Config};
use ferrokube_bootstrap::{kubeconfig, pki};
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Where the server keeps its state: pki/, db/, admin.kubeconfig.
    #[arg(long, default_value = "/var/lib/ferrokube")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// HTTPS port (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    port: u16,
    /// Datastore: sqlite://PATH (default DATA_DIR/db/state.db), etcd://HOST:PORT[,...], memory://
    #[arg(long)]
    datastore_endpoint: Option<String>,
    /// Where to write the admin kubeconfig (default DATA_DIR/admin.kubeconfig).
    #[arg(long)]
    write_kubeconfig: Option<PathBuf>,
    /// Extra names or addresses for the serving certificate.
    #[arg(long = "tls-san")]
    tls_san: Vec<String>,
    /// How often old revisions are compacted away.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    compaction_interval: Duration,
    /// Run only the control plane, without a node agent on this host.
    #[arg(long)]
    disable_agent: bool,
    /// Controllers to run: `*` for all, `-name` to leave one out, or names.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    controllers: Vec<String>,
    /// Service ClusterIPs come from this CIDR.
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cluster_ip_range: String,
    /// NodePorts come from this range (`30000-32767`).
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
    /// Where the local-path provisioner keeps volumes on nodes.
    #[arg(long, default_value = "/var/lib/ferrokube/storage")]
    default_local_storage_path: PathBuf,
    /// Admission plugins to leave out (upstream names, comma-separated).
    #[arg(long, value_delimiter = ',')]
    disable_admission_plugins: Vec<String>,
}

/// `30000-32767`.
pub fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("invalid port range {s:?} (use FROM-TO)"))?;
    let lo: u16 = a
        .trim()
        .parse()
        .map_err(|_| format!("invalid port {a:?}"))?;
    let hi: u16 = b
        .trim()
        .parse()
        .map_err(|_| format!("invalid port {b:?}"))?;
    if hi < lo {
        return Err(format!("empty port range {s:?}"));
    }
    Ok((lo, hi))
}

/// `300ms`, `10s`, `5m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?} (use ms, s, m or h)"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let data_dir = &args.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let pki = pki::Pki::load_or_create(&data_dir.join("pki"))?;
    let bind = args.bind_address.to_string();
    let sans = pki::default_sans(&bind, "10.96.0.1", &args.tls_san);
    let serving = pki.ensure_serving(&sans)?;
    let admin = pki.ensure_client("admin", "kubernetes-admin", &["system:masters"])?;

    let endpoint = args.datastore_endpoint.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            data_dir.join("db").join("state.db").display()
        )
    });
    let store = ferrokube_store::open(&endpoint)
        .await
        .with_context(|| format!("opening datastore {endpoint}"))?;

    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.bind_address, args.port))
        .await
        .with_context(|| format!("listening on {}:{}", args.bind_address, args.port))?;
    let local = listener.local_addr()?;
    let host = if args.bind_address.is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        bind.clone()
    };
    let url_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let server_url = format!("https://{url_host}:{}", local.port());

    let kubeconfig_path = args
        .write_kubeconfig
        .clone()
        .unwrap_or_else(|| data_dir.join("admin.kubeconfig"));
    kubeconfig::write_client_cert_kubeconfig(
        &kubeconfig_path,
        "kubernetes",
        &server_url,
        &pki.ca.cert_pem,
        "kubernetes-admin",
        &admin,
    )?;

    let cancel = CancellationToken::new();
    let config = Config {
        advertise_address: format!("{url_host}:{}", local.port()),
        serving_cert_pem: serving.cert_pem,
        serving_key_pem: serving.key_pem,
        client_ca_pem: pki.ca.cert_pem.clone(),
        compaction_interval: args.compaction_interval,
    };
    let options = ferrokube_apiserver::Options {
        service_network: ferrokube_apiserver::service_alloc::ServiceNetwork {
            cluster_ip_range: args.service_cluster_ip_range.clone(),
            node_port_range: args.service_node_port_range,
        },
        admission: ferrokube_apiserver::admission::Settings {
            disabled: args.disable_admission_plugins.clone(),
            verify_service_accounts: true,
        },
        kubernetes_service: true,
    };
    let srv = ApiServer::with_options(config, options, store, cancel.clone()).await?;
    srv.enable_service_account_tokens(&data_dir.join("pki").join("sa.key"))?;
    let controller_config = ferrokube_controllers::Config {
        node_monitor_grace_period: args.node_monitor_grace_period,
        node_monitor_period: args.node_monitor_period,
        service_cluster_ip_range: args.service_cluster_ip_range.clone(),
        service_node_port_range: args.service_node_port_range,
        cluster_cidr: args.cluster_cidr.clone(),
        root_ca_pem: pki.ca.cert_pem.clone(),
        local_path_dir: args.default_local_storage_path.clone(),
        ..Default::default()
    };
    crate::components::start_in_process(
        srv.clone(),
        cancel.clone(),
        args.controllers.clone(),
        controller_config,
    );
    tracing::info!(url = %server_url, kubeconfig = %kubeconfig_path.display(), datastore = %endpoint, "API server ready");
    if !args.disable_agent {
        tracing::info!("no node agent yet in this build: running the control plane only");
    }
    let serve = tokio::spawn(srv.serve(listener, cancel.clone()));
    shutdown_signal().await;
    tracing::info!("shutting down");
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), serve).await;
    Ok(())
}

pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
