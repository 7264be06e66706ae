//! The cluster components `ferrokube server` runs in its own process, each talking to the API
//! server through the in-process transport as the loopback identity.

use std::sync::Arc;

use ferrokube_apiserver::ApiServer;
use ferrokube_apiserver::in_process::InProcess;
use ferrokube_client::Informers;
use tokio_util::sync::CancellationToken;

/// Starts the controller manager and the scheduler (and, as it is added, the node agent)
/// inside the server process.
pub fn start_in_process(
    srv: Arc<ApiServer>,
    cancel: CancellationToken,
    controllers: Vec<String>,
    config: ferrokube_controllers::Config,
    scheduler: bool,
) {
    let client = ferrokube_client::in_process(InProcess::new(srv));
    let informers = Informers::new(client.clone(), cancel.clone());
    if scheduler {
        let sched = ferrokube_scheduler::run(
            client.clone(),
            informers.clone(),
            ferrokube_scheduler::Config::default(),
            ferrokube_scheduler::identity(),
            cancel.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) = sched.await {
                tracing::error!(error = %e, "scheduler stopped");
            }
        });
    }
    let ctx = Arc::new(ferrokube_controllers::Context::new(
        client, informers, cancel, config,
    ));
    tokio::spawn(async move { ferrokube_controllers::run(ctx, &controllers).await });
}

/// Starts the node agent inside the server process: its kubelet talks to the API server in
/// process, serves with a certificate from the cluster CA, and accepts the API server's client
/// certificate.
pub async fn start_agent(
    srv: Arc<ApiServer>,
    pki: &ferrokube_bootstrap::pki::Pki,
    mut opts: ferrokube_kubelet::agent::AgentOptions,
    cancel: CancellationToken,
) -> anyhow::Result<ferrokube_kubelet::agent::Agent> {
    let mut sans = vec![
        opts.node_name.clone(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ];
    if let Some(ip) = opts
        .node_ip
        .or_else(ferrokube_kubelet::node::detect_node_ip)
    {
        sans.push(ip.to_string());
    }
    let serving = pki.issue_serving(&format!("system:node:{}", opts.node_name), &sans)?;
    opts.serving = Some((serving.cert_pem, serving.key_pem));
    opts.client_ca_pem = Some(pki.ca.cert_pem.clone());
    let client = ferrokube_client::in_process(InProcess::new(srv));
    Ok(ferrokube_kubelet::agent::Agent::start(opts, client, cancel).await?)
}
