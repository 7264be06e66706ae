//! ferrokube-scheduler: kube-scheduler's behaviour on ferrokube's client.
//!
//! [`framework`] has one trait per extension point, the cycle state and status codes;
//! [`plugins`] one module per in-tree plugin and the registry; [`queue`] the scheduling queue
//! (active, backoff, unschedulable); [`cache`] the node/pod cache with assumed pods;
//! [`scheduler`] the loop that ties them together and talks to the API (bindings through
//! `pods/binding`, events, the PodScheduled condition). [`run`] adds leader election on the
//! Lease `kube-system/kube-scheduler`: standby schedulers keep their cache warm and start
//! scheduling as soon as they acquire the lease.

pub mod cache;
pub mod config;
pub mod framework;
pub mod plugins;
pub mod queue;
pub mod scheduler;
pub mod util;

#[cfg(test)]
mod testing;

use std::sync::Arc;

use ferrokube_client::Informers;
use ferrokube_client::events::EventRecorder;
use ferrokube_client::leader::LeaderElection;
use k8s_openapi::api::core::v1::Pod;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use scheduler::Scheduler;

pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("scheduler configuration: {0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The profile a pod asks for (`spec.schedulerName`, default `default-scheduler`).
pub fn scheduler_name(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_SCHEDULER_NAME)
}

/// This process's identity in the leader election: hostname and a random suffix.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}_{:016x}", rand::random::<u64>())
}

/// Builds the scheduler and runs it until `cancel`: with leader election (as configured),
/// it schedules only while it holds the lease.
pub async fn run(
    client: kube::Client,
    informers: Arc<Informers>,
    config: Config,
    identity: String,
    cancel: CancellationToken,
) -> Result<()> {
    let recorder = EventRecorder::new(client.clone(), DEFAULT_SCHEDULER_NAME, "");
    let le = config.leader_election.clone();
    let sched = Scheduler::new(client.clone(), &informers, config, Some(recorder))?;
    sched.register_handlers();
    if !le.leader_elect {
        sched.run(cancel).await;
        return Ok(());
    }
    let election = LeaderElection {
        namespace: le.resource_namespace.clone(),
        name: le.resource_name.clone(),
        identity: identity.clone(),
        lease_duration: le.lease_duration,
        renew_deadline: le.renew_deadline,
        retry_period: le.retry_period,
    };
    let mut leading = election.spawn(client, cancel.clone());
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            r = leading.wait_for(|l| *l) => if r.is_err() { return Ok(()) },
        }
        tracing::info!(identity = %identity, "leading: scheduling");
        let term = cancel.child_token();
        let task = tokio::spawn(sched.clone().run(term.clone()));
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = leading.wait_for(|l| !*l) => {
                tracing::error!(identity = %identity, "leader election lost: scheduling stops until the lease is acquired again");
            }
        }
        term.cancel();
        let _ = task.await;
        if cancel.is_cancelled() {
            return Ok(());
        }
    }
}
