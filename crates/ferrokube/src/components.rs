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
    let ctx = Arc::new(ferrokube_controllers::Context {
        client,
        informers,
        cancel,
        config,
    });
    tokio::spawn(async move { ferrokube_controllers::run(ctx, &controllers).await });
}
