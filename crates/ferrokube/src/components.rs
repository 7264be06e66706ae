//! The cluster components `ferrokube server` runs in its own process, each talking to the API
//! server through the in-process transport as the loopback identity.

use std::sync::Arc;

use ferrokube_apiserver::ApiServer;
use ferrokube_apiserver::in_process::InProcess;
use ferrokube_client::Informers;
use tokio_util::sync::CancellationToken;

/// Starts the controller manager (and, as they are added, the scheduler and the node agent)
/// inside the server process.
pub fn start_in_process(
    srv: Arc<ApiServer>,
    cancel: CancellationToken,
    controllers: Vec<String>,
    config: ferrokube_controllers::Config,
) {
    let client = ferrokube_client::in_process(InProcess::new(srv));
    let informers = Informers::new(client.clone(), cancel.clone());
    let ctx = Arc::new(ferrokube_controllers::Context::new(
        client, informers, cancel, config,
    ));
    tokio::spawn(async move { ferrokube_controllers::run(ctx, &controllers).await });
}
