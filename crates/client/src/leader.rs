//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does:
//! a candidate takes the lease when its holder has not renewed it within the lease duration
//! (measured on the candidate's own clock from when it last saw the record change, so clock
//! skew between hosts does not matter), renews it every retry period, and steps down when it
//! cannot renew within the renew deadline.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// client-go's defaults for kube-scheduler and kube-controller-manager.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderElection {
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        LeaderElection {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Runs the election until `cancel`; the receiver says whether this candidate leads now.
    /// On cancel a leader releases the lease so another candidate can take over at once.
    pub fn spawn(self, client: kube::Client, cancel: CancellationToken) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move { self.run(client, tx, cancel).await });
        rx
    }

    async fn run(self, client: kube::Client, tx: watch::Sender<bool>, cancel: CancellationToken) {
        let api: Api<Lease> = Api::namespaced(client, &self.namespace);
        let mut observed: Option<(LeaseSpec, Instant)> = None;
        let mut last_renew = Instant::now();
        loop {
            let ok = self.try_acquire_or_renew(&api, &mut observed).await;
            let leading = *tx.borrow();
            if ok {
                last_renew = Instant::now();
                if !leading {
                    tracing::info!(lease = %format!("{}/{}", self.namespace, self.name), identity = %self.identity, "became leader");
                    tx.send_replace(true);
                }
            } else if leading && last_renew.elapsed() > self.renew_deadline {
                tracing::warn!(lease = %format!("{}/{}", self.namespace, self.name), "failed to renew the lease in time; stepping down");
                tx.send_replace(false);
            }
            tokio::select! {
                _ = cancel.cancelled() => {
                    if *tx.borrow() {
                        self.release(&api).await;
                        tx.send_replace(false);
                    }
                    return;
                }
                _ = tokio::time::sleep(self.retry_period) => {}
            }
        }
    }

    async fn try_acquire_or_renew(
        &self,
        api: &Api<Lease>,
        observed: &mut Option<(LeaseSpec, Instant)>,
    ) -> bool {
        let now = MicroTime(jiff::Timestamp::now());
        let secs = self.lease_duration.as_secs() as i32;
        let current = match api.get_opt(&self.name).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "reading the leader lease failed");
                return false;
            }
        };
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return api.create(&PostParams::default(), &lease).await.is_ok();
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if observed.as_ref().is_none_or(|(o, _)| o != &spec) {
            *observed = Some((spec.clone(), Instant::now()));
        }
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let duration =
            Duration::from_secs(spec.lease_duration_seconds.unwrap_or(secs).max(1) as u64);
        let seen_at = observed
            .as_ref()
            .map(|(_, t)| *t)
            .unwrap_or_else(Instant::now);
        let held_by_other = !holder.is_empty() && holder != self.identity;
        if held_by_other && seen_at + duration > Instant::now() {
            return false;
        }
        let mut new = spec.clone();
        new.holder_identity = Some(self.identity.clone());
        new.lease_duration_seconds = Some(secs);
        new.renew_time = Some(now.clone());
        if holder != self.identity {
            new.acquire_time = Some(now);
            new.lease_transitions =
                Some(spec.lease_transitions.unwrap_or(0) + if holder.is_empty() { 0 } else { 1 });
        }
        lease.spec = Some(new);
        match api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(l) => {
                *observed = l.spec.map(|s| (s, Instant::now()));
                true
            }
            Err(_) => false,
        }
    }

    async fn release(&self, api: &Api<Lease>) {
        if let Ok(Some(mut lease)) = api.get_opt(&self.name).await
            && let Some(spec) = lease.spec.as_mut()
            && spec.holder_identity.as_deref() == Some(self.identity.as_str())
        {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            let _ = api
                .replace(&self.name, &PostParams::default(), &lease)
                .await;
        }
    }
}
